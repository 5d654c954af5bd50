"""Where the time outside the stages went: BuildKit's own steps by category, as busy time. Pure.

A build spends time outside its stages loading the definition, sending the context, importing and
exporting cache, exporting the image and pushing it, and in CI that is often where minutes go. Each of
BuildKit's own steps is put in a category by its name (bake's target word dropped). Pushing is not a
step of its own with the containerd image store: it shows as statuses inside "exporting to image" ("pushing
layers", "pushing manifest for …"), so those statuses' times count as `push` and the rest of the step as
`export`; the docker driver's classic store has a step "pushing <ref> with docker". A category's time is
its busy time, the union of its intervals, not their span: two overlapping exports count once, a gap
between them not at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._tuple import TYPE_CHECKING
from .progress import BuildModel, Step, SubStatus, parse_time

if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from ._tuple import NamedTuple

CATEGORIES = ("definition", "context", "cache-import", "cache-export", "export", "push", "finalize", "other")

Interval = tuple[float, float]


class Category(NamedTuple):
    category: str
    duration_s: float  # busy time: the union of its intervals
    steps: int  # BuildKit steps that did work of this category
    bytes: int | None  # what BuildKit reported transferring (context, push), when it did
    intervals: tuple[Interval, ...]  # merged, absolute (for the trace)


def _plain(name: str) -> str:
    """The name as a single build shows it: bake writes "[test internal] load …" for "[internal] load …"
    and "[test] exporting …" for "exporting …"."""
    if name.startswith("[") and "] " in name:
        head, rest = name[1:].split("] ", 1)
        for word in ("internal", "auth"):
            if head == word or head.endswith(" " + word):
                return f"[{word}] {rest}"
        if not head.startswith("context ") and " " not in head:
            return rest
    return name


def category(name: str) -> str:
    """The category of one of BuildKit's own steps, by its name."""
    n = _plain(name)
    if n.startswith(("[internal] load build definition", "[internal] load metadata for",
                     "[internal] load .dockerignore", "[internal] load remote build context",
                     "resolve image config for", "[internal] load local bake")):
        return "definition"
    if n.startswith("[auth] "):
        return "push" if ":push" in n or "push token" in n else "definition"
    if n.startswith("[internal] load build context") or (n.startswith("[context ") and "] load" in n):
        return "context"
    if n.startswith("importing cache manifest"):
        return "cache-import"
    if n.startswith(("exporting cache", "writing cache", "preparing build cache")):
        return "cache-export"
    if n.startswith("pushing "):  # the docker driver's classic store: "pushing <ref> with docker"
        return "push"
    if n.startswith(("exporting to ", "exporting layers", "sending tarball", "copying files", "exporting attestation",
                     "exporting manifest", "naming to", "unpacking to")):
        return "export"
    return "other"


def _is_push(status_id: str) -> bool:
    return status_id.startswith("pushing ")


def union(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def subtract(whole: list[Interval], holes: list[Interval]) -> list[Interval]:
    """Merged intervals minus merged intervals."""
    out: list[Interval] = []
    for a, b in whole:
        cur = a
        for h0, h1 in holes:
            if h1 <= cur or h0 >= b:
                continue
            if h0 > cur:
                out.append((cur, h0))
            cur = max(cur, h1)
        if cur < b:
            out.append((cur, b))
    return out


def length(intervals: Iterable[Interval]) -> float:
    return sum(b - a for a, b in intervals)


def interval(step: Step) -> Interval | None:
    """When the step ran: from its first start to its completion (None: it did not complete)."""
    if step.first_started is None or step.completed is None:
        return None
    return (step.first_started, step.completed)


def _status_interval(st: SubStatus) -> Interval | None:
    if st.started is None or st.completed is None:
        return None
    return (parse_time(st.started), parse_time(st.completed))


def categories(model: BuildModel, finalize: Interval | None = None, finalize_steps: int = 0) -> list[Category]:
    """The build's time outside its stages, per category that occurred, in CATEGORIES order. `finalize` is
    the interval of sbuild's own second build of the deploy image, when it ran."""
    spans: dict[str, list[Interval]] = {c: [] for c in CATEGORIES}
    steps: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
    sent: dict[str, int] = {}
    for step in model.steps.values():
        if not step.internal:
            continue
        whole = interval(step)
        cat = category(step.name)
        # Push statuses inside another step (the export): their time moves to push. A push step's own
        # statuses ("pushing layer …") are inside its interval already.
        pushes = [] if cat == "push" else \
            [iv for sid, st in step.statuses.items() if _is_push(sid) and (iv := _status_interval(st))]
        if pushes:
            spans["push"] += pushes
            steps["push"] += 1
            total = sum(st.current for sid, st in step.statuses.items() if _is_push(sid) and st.current > 0)
            if total:
                sent["push"] = sent.get("push", 0) + total
        if whole is not None:
            spans[cat] += subtract([whole], union(pushes)) if pushes else [whole]
            steps[cat] += 1
        moved = sum(st.current for st in step.statuses.values() if st.name == "transferring")
        if moved:
            sent[cat] = sent.get(cat, 0) + moved
    if finalize is not None:
        spans["finalize"].append(finalize)
        steps["finalize"] = finalize_steps or 1
    out = []
    for c in CATEGORIES:
        if steps[c]:
            merged = union(spans[c])
            out.append(Category(c, round(length(merged), 3), steps[c], sent.get(c), tuple(merged)))
    return out
