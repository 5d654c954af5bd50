"""What a command line becomes: one `docker buildx build`, or one `docker buildx bake` session.

`--stage a --stage b` builds the stages and what they need in ONE BuildKit session: a generated bake
definition with a target per stage, so shared stages are solved once and independent ones run
concurrently. Only the deploy stage produces an image; the others export to `type=cacheonly`.
Pure apart from reading the Dockerfile.
"""

from __future__ import annotations

import os

from ._tuple import TYPE_CHECKING
from .errors import DockerfileError, UsageError
from .flags import BuildCommand, build_arg_map

if TYPE_CHECKING:  # stages (and BuildKit's parser) load only when a Dockerfile is read
    from typing import Any, NamedTuple

    from .cache import CacheSettings
    from .stages import Stage, StageGraph
else:
    from ._tuple import NamedTuple

# buildx build flags that bake 0.13 cannot set per target.
_NOT_IN_BAKE = ("add-host", "network", "cgroup-parent", "allow")
# docker-build compatibility flags buildx ignores anyway.
_IGNORED = ("compress", "cpu-period", "cpu-quota", "cpu-shares", "cpuset-cpus", "cpuset-mems", "force-rm",
            "isolation", "memory", "memory-swap", "rm", "security-opt", "squash")
# Flags about the image: they go to the deploy stage only.
IMAGE_FLAGS = ("tag", "output", "load", "push", "iidfile", "metadata-file", "annotation", "attest",
                "provenance", "sbom")


class Plan(NamedTuple):
    graph: StageGraph | None
    selected: tuple[Stage, ...]  # the stages asked for (empty: a plain build)
    closure: tuple[Stage, ...]  # what gets built (stages asked for and what they need)
    deploy: Stage | None
    bake: dict[str, Any] | None  # the bake definition, when several stages are built
    targets: dict[str, str]  # bake target -> stage key
    notes: tuple[str, ...]  # one-line notes for the user (e.g. tags not applied)
    # Deploy is built cache-only with the other stages; its image (tags, push, load) is made by a second,
    # fully cached build once every stage passed: nothing is tagged or pushed when a test failed.
    finalize: bool = False

    @property
    def builds_deploy(self) -> bool:
        return self.deploy is not None and (not self.selected or self.deploy in self.selected)


def build_args(cmd: BuildCommand) -> dict[str, str]:
    return build_arg_map(cmd.values("build-arg"))


def load_graph(cmd: BuildCommand, *, required: bool) -> StageGraph | None:
    """Read the stage graph. Without --stage a file sbuild cannot read is left to buildx to judge."""
    path = cmd.dockerfile
    if path is None:
        if required:
            raise UsageError("--stage needs a Dockerfile sbuild can read: not stdin (-f -) or a remote context")
        return None
    from . import stages

    platforms = [p for v in cmd.values("platform") for p in v.split(",") if p]
    try:
        return stages.read(path, build_args=build_args(cmd), target_platform=platforms[0] if platforms else None)
    except DockerfileError:
        if required:
            raise
        return None
    except OSError as e:
        if required:
            raise UsageError(f"cannot read {path}: {e.strerror}") from None
        return None


def selected_stage_names(cmd: BuildCommand) -> list[str]:
    out: list[str] = []
    for v in cmd.values("stage"):
        for name in v.split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out


EMPTY = Plan(None, (), (), None, None, {}, ())


def needs_graph_first(cmd: BuildCommand) -> bool:
    """Whether the buildx command depends on the stage graph. A plain build only needs it for the
    report, so it is read while buildx starts (its own start-up takes longer than reading the file)."""
    return any(cmd.has(f) for f in ("stage", "deploy-stage", "cache-repo", "cache-dir", "cache-only"))


def make(cmd: BuildCommand) -> Plan:
    names = selected_stage_names(cmd)
    if names and cmd.has("target"):
        raise UsageError("--stage and --target cannot be used together: --stage NAME already builds NAME "
                         "and what it needs (use one or the other)")
    graph = load_graph(cmd, required=bool(names) or cmd.has("deploy-stage"))
    if graph is None:
        return EMPTY
    from .stages import check_buildable, unknown_stage_message

    if names:  # sbuild composes the sessions from the graph: one BuildKit would refuse stops here
        check_buildable(graph)

    deploy_name = cmd.value("deploy-stage")
    deploy = graph.find(deploy_name) if deploy_name else graph.default
    if deploy is None:
        assert deploy_name is not None
        raise UsageError(unknown_stage_message(deploy_name, graph) + " (--deploy-stage)")
    if not names:
        target = cmd.value("target")
        built = graph.find(target) if target else graph.default
        closure = tuple(graph.closure([built.key])) if built else ()
        if cmd.flag("cache-only") and built is not None:  # one stage, no image: as --stage NAME
            return Plan(graph, (built,), closure, None, None, {}, _image_flag_note(cmd, deploy))
        return Plan(graph, (), closure, deploy if built is deploy else None, None, {}, ())
    selected: list[Stage] = []
    for n in names:
        st = graph.find(n)
        if st is None:
            raise UsageError(unknown_stage_message(n, graph))
        if st not in selected:
            selected.append(st)
    closure = tuple(graph.closure([s.key for s in selected]))
    notes: list[str] = []
    has_deploy = deploy in selected and not cmd.flag("cache-only") and not evaluates(cmd)
    if not has_deploy:
        notes += _image_flag_note(cmd, deploy)
    if len(selected) == 1:
        return Plan(graph, tuple(selected), closure, deploy if has_deploy else None, None, {}, tuple(notes))
    bake, targets = _bake_definition(cmd, graph, selected, deploy if has_deploy else None)
    return Plan(graph, tuple(selected), closure, deploy if has_deploy else None, bake, targets, tuple(notes),
                finalize=has_deploy)


def _image_flag_note(cmd: BuildCommand, deploy: Stage) -> tuple[str, ...]:
    image_flags = [f for f in ("tag", "push", "load", "output") if cmd.has(f)]
    if not image_flags:
        return ()
    flags = ", ".join("-t" if f == "tag" else f"--{f}" for f in image_flags)
    if cmd.flag("cache-only"):
        return (f"{flags} not applied: --cache-only builds no image",)
    return (f'{flags} not applied: only the deploy stage "{deploy.key}" gets tags and outputs, '
            f"and it is not among the stages built (add --stage {deploy.key})",)


def single_stage_args(cmd: BuildCommand, plan: Plan) -> tuple[list[str], frozenset[str]]:
    """Extra buildx args and dropped flags for a build of one stage (--stage NAME)."""
    stage = plan.selected[0]
    if plan.deploy is not None:
        return [f"--target={stage.key}"], frozenset()
    return [f"--target={stage.key}", "--output=type=cacheonly"], frozenset(IMAGE_FLAGS)


def bake_target_name(stage: Stage) -> str:
    return stage.key.replace(".", "_")


def _kv(values: list[str]) -> dict[str, str]:
    out = {}
    for kv in values:
        k, _, v = kv.partition("=")
        out[k] = v
    return out


def _bake_definition(cmd: BuildCommand, graph: StageGraph, selected: list[Stage],
                     deploy: Stage | None) -> tuple[dict[str, Any], dict[str, str]]:
    for f in _NOT_IN_BAKE:
        if cmd.has(f):
            raise UsageError(f"--{f} cannot be used with several --stage values: buildx 0.13 bake has no "
                             "per-target equivalent (build one --stage at a time)")
    context = os.path.abspath(cmd.context)
    path = cmd.dockerfile
    assert path is not None
    common: dict[str, object] = {"context": context, "dockerfile": os.path.abspath(path)}
    args = build_args(cmd)
    if args:
        common["args"] = args
    if cmd.has("label"):
        common["labels"] = _kv(cmd.values("label"))
    for flag, key in (("secret", "secret"), ("ssh", "ssh"), ("no-cache-filter", "no-cache-filter"),
                      ("cache-from", "cache-from"), ("ulimit", "ulimits")):
        if cmd.has(flag):
            common[key] = cmd.values(flag)
    platforms = [p for v in cmd.values("platform") for p in v.split(",") if p]
    if platforms:
        common["platforms"] = platforms
    if cmd.has("build-context"):
        common["contexts"] = _kv(cmd.values("build-context"))
    if cmd.has("shm-size"):
        common["shm-size"] = cmd.value("shm-size")
    targets: dict[str, dict[str, object]] = {}
    names: dict[str, str] = {}
    for st in selected:
        # Every stage, deploy included, is cache-only here: deploy's image comes after all passed.
        t = dict(common, target=st.key, output=["type=cacheonly"])
        name = bake_target_name(st)
        targets[name] = t
        names[name] = st.key
    if cmd.has("cache-to"):  # the user's own --cache-to: the deploy stage's, else the last one's
        owner = bake_target_name(deploy if deploy is not None else selected[-1])
        targets[owner]["cache-to"] = cmd.values("cache-to")
    return {"group": {"default": {"targets": list(targets)}}, "target": targets}, names


def evaluates(cmd: BuildCommand) -> bool:
    """`--call check|outline|targets`, `--check` or `--print`: buildx evaluates the build instead of running
    it, so no stage is built and none may be reported (buildx 0.15+; --print is 0.13's experimental form)."""
    call = cmd.value("call")
    return (call is not None and call != "build") or cmd.flag("check") or cmd.has("print")


def bake_flags(cmd: BuildCommand, plan: Plan) -> list[str]:
    """Global `docker buildx bake` flags for the session."""
    out = []
    for flag in ("builder", "provenance", "sbom", "call"):
        v = cmd.value(flag)
        if v is not None:
            out.append(f"--{flag}={v}")
    for flag in ("no-cache", "pull", "check"):
        if cmd.flag(flag):
            out.append(f"--{flag}")
    return out


class Invocation(NamedTuple):
    """One buildx run of an attempt: what compose() makes, and all the runner needs."""

    subcommand: tuple[str, ...]  # ("buildx", "build") or ("buildx", "bake")
    args: list[str]
    iidfile: str | None  # where buildx writes the image ID, when sbuild needs it
    bake: dict[str, Any] | None = None  # the bake file's content, written to bake_file before the run
    bake_file: str | None = None


class Setting(NamedTuple):
    """What every attempt's command lines are made from, all of it resolved before the first one runs."""

    cmd: BuildCommand
    plan: Plan
    cache: CacheSettings | None  # sbuild's cache refs per stage (--cache-repo/--cache-dir)
    tag_after: bool  # the deploy image is made unnamed with the stages and tagged after all passed
    prints_id: bool  # -q: buildx prints the image ID (an --iidfile sbuild reads)
    special: dict[str, str]  # --iidfile/--metadata-file naming a device or fifo -> the temp file buildx gets
    tmpdir: str  # where sbuild's own files for buildx go (bake file, image ID)


def compose(s: Setting, *, export: bool, finalizing: bool = False) -> list[Invocation]:
    """The buildx invocations of one attempt: one session (`buildx build`, or `buildx bake` for several
    stages), or one `buildx build` per stage when several stages import sbuild's cache (per_stage_sessions).
    Pure: the same setting gives the same command lines. export=False leaves out every cache export (the
    attempt after a builder refused to export); finalizing builds the deploy stage's image after every
    stage passed (fully cached by then, so it exports nothing)."""
    cmd, plan, cache = s.cmd, s.plan, s.cache
    iidfile = s.special.get("iidfile", cmd.value("iidfile"))
    if plan.bake is not None and not finalizing and per_stage_sessions(cache):
        return _stage_sessions(s, export)
    if plan.bake is not None and not finalizing:
        definition: dict[str, Any] = {**plan.bake, "target": {k: dict(v) for k, v in plan.bake["target"].items()}}
        for name, target in definition["target"].items():
            stage = plan.targets[name]
            if s.tag_after and plan.deploy is not None and stage == plan.deploy.key:
                target["output"] = ["type=docker"]  # an unnamed image in the engine, named once all passed
            if not export:
                target.pop("cache-to", None)
            if cache is not None and stage in cache.per_stage:
                sc = cache.per_stage[stage]
                target["cache-from"] = [*target.get("cache-from", []), *sc.cache_from]
                if export:
                    target["cache-to"] = [*target.get("cache-to", []), *sc.cache_to]
        bake_file = os.path.join(s.tmpdir, "bake.json")
        args = ["--file", bake_file, *bake_flags(cmd, plan), "--progress=rawjson"]
        return [Invocation(("buildx", "bake"), args, None, definition, bake_file)]
    if finalizing:
        assert plan.deploy is not None
        extra, drop, export = [f"--target={plan.deploy.key}"], frozenset[str](), False
    elif plan.selected:
        extra, drop = single_stage_args(cmd, plan)
    else:
        extra, drop = [], frozenset()
    drop = drop | {"progress", "quiet"} | (set() if export else {"cache-to"})
    args = cmd.buildx_args(drop=frozenset(drop | s.special.keys()))
    args += [f"--{flag}={tmp}" for flag, tmp in s.special.items() if flag not in drop]
    if cache is not None:
        built = plan.deploy if finalizing else (plan.selected[0] if plan.selected else None)
        key = built.key if built is not None else next(iter(cache.per_stage), None)
        if key in cache.per_stage:
            args += [f"--cache-from={c}" for c in cache.per_stage[key].cache_from]
        if export:
            for sc in cache.per_stage.values():
                args += [f"--cache-to={c}" for c in sc.cache_to]
    if s.prints_id and not iidfile and "iidfile" not in drop:
        iidfile = os.path.join(s.tmpdir, "iid")
        args.append(f"--iidfile={iidfile}")
    return [Invocation(("buildx", "build"), [*args, *extra, "--progress=rawjson", "--", cmd.context], iidfile)]


def per_stage_sessions(cache: CacheSettings | None) -> bool:
    """Several stages that import sbuild's cache are built one session per stage: in one bake session the
    targets share steps, and BuildKit then finds a shared step's successors only in whichever cache (local
    or imported) answered first for it, so stages lose their cache at random (cache.py)."""
    return cache is not None and any(sc.cache_from for sc in cache.per_stage.values())


def _stage_sessions(s: Setting, export: bool) -> list[Invocation]:
    cmd, plan, cache = s.cmd, s.plan, s.cache
    assert cache is not None and plan.graph is not None
    order = {k: i for i, k in enumerate(plan.graph.names)}
    stages = sorted((st.key for st in plan.selected), key=lambda k: order.get(k, len(order)))
    owner = (plan.deploy.key if plan.deploy is not None else stages[-1])  # gets the user's own --cache-to
    common = cmd.buildx_args(drop=frozenset({"progress", "quiet", "cache-to", *IMAGE_FLAGS}))
    out = []
    for key in stages:
        sc = cache.per_stage.get(key)
        deploy_here = s.tag_after and plan.deploy is not None and key == plan.deploy.key
        args = [*common, f"--target={key}", "--output=type=docker" if deploy_here else "--output=type=cacheonly"]
        if sc is not None:
            args += [f"--cache-from={c}" for c in sc.cache_from]
            if export:
                args += [f"--cache-to={c}" for c in sc.cache_to]
        if export and key == owner:
            args += [f"--cache-to={c}" for c in cmd.values("cache-to")]
        out.append(Invocation(("buildx", "build"), [*args, "--progress=rawjson", "--", cmd.context], None))
    return out
