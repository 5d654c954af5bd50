"""A build's record for the history: what was built, where, from what, and the whole report.

The pure part turns facts into the record (the JSON contract `sbuild history show --json` prints); the
facts themselves (git, builder, image) are gathered by `Recorder` on a thread while buildx runs, so a
build pays for recording only what is left after it ends (bench: scripts/bench-history).

No secret value ever enters a record: build args are kept as a hash of their value (secret-named ones
only as "set", or as an HMAC with the key shared in $SBUILD_HASH_KEY, which is never stored); the report
is masked as every other output; a remote URL loses its credentials.
"""

from __future__ import annotations

import os
import time

from ._tuple import TYPE_CHECKING
from .mask import is_secret_name

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from typing import Any, NamedTuple

    from .build import BuildOutcome
    from .flags import BuildCommand
    from .history import Store
    from .plan import Plan
    from .report import Report
else:
    from ._tuple import NamedTuple

RECORD_SCHEMA = 1
JOIN_TIMEOUT_S = 120.0  # hashing a context beside a build that ended first: bounded, never forever


class Project(NamedTuple):
    id: str  # "<remote>:<dockerfile in repo>", or the Dockerfile's absolute path without git
    remote: str | None  # normalized: host/path, no scheme, no credentials, no .git
    dockerfile: str  # in the repository, or absolute


class GitState(NamedTuple):
    branch: str | None
    default_branch: str | None
    commit: str | None
    dirty: bool | None


class Builder(NamedTuple):
    name: str | None
    driver: str | None


class Image(NamedTuple):
    digest: str | None
    size: int | None
    layers: int | None


_SCP = r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?!//)(?P<path>.+)$"


def normalize_remote(url: str) -> str:
    """git@github.com:Org/Repo.git, https://user:tok@github.com/Org/Repo -> github.com/Org/Repo."""
    url = url.strip()
    import re

    m = re.match(_SCP, url) if "://" not in url else None
    if m:
        host, path = m.group("host"), m.group("path")
    else:
        rest = url.split("://", 1)[-1]
        rest = rest.rsplit("@", 1)[-1] if "@" in rest.split("/", 1)[0] else rest  # credentials
        host, _, path = rest.partition("/")
        host = host.rsplit(":", 1)[0] if host.rsplit(":", 1)[-1].isdigit() and "ssh" in url.split("://")[0] \
            else host
    path = path.strip("/").removesuffix(".git")
    return f"{host.lower()}/{path}" if path else host.lower()


def project_identity(dockerfile: str | None, toplevel: str | None, remote: str | None, context: str) -> Project:
    if dockerfile is None:  # stdin or a remote context: the context names the project
        where = normalize_remote(context) if "://" in context or context.startswith("git@") else context
        return Project(f"{where}:Dockerfile", None, "Dockerfile")
    absolute = os.path.realpath(dockerfile)
    if toplevel:
        rel = os.path.relpath(absolute, os.path.realpath(toplevel))
        if remote:
            norm = normalize_remote(remote)
            return Project(f"{norm}:{rel}", norm, rel)
    return Project(absolute, None, absolute)


def hash_build_args(args: dict[str, str], key: str | None) -> dict[str, str]:
    """Each value as a hash, never the value. Secret-named args: "set", or with a shared key an HMAC (so
    two machines with the key can tell a change without anyone storing the value)."""
    from .fingerprint import arg_hash

    out = {}
    for name, value in sorted(args.items()):
        if is_secret_name(name) and key:  # the record's form: comparable wherever the shared key is set
            import hashlib
            import hmac

            out[name] = "hmac-sha256:" + hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]
        else:  # a plain value's hash, or "set": as the fingerprints keep it
            out[name] = arg_hash(name, value, None)
    return out


def stage_set(cmd: BuildCommand, plan: Plan) -> list[str]:
    """The stages asked for, the key a baseline is looked up by: --stage ones, else --target, else the
    default (last) stage."""
    if plan.selected:
        return sorted(s.key for s in plan.selected)
    target = cmd.value("target")
    if target:
        return [target.lower()]
    if plan.graph is not None:
        return [plan.graph.default.key]
    return []


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def new_id() -> str:
    return os.urandom(6).hex()  # what secrets.token_hex does, without importing random (~1.5 ms)


def make_record(*, build_id: str, report: dict[str, Any], project: Project, git: GitState, builder: Builder,
                platforms: list[str], stages: list[str], build_args: dict[str, str], image: Image | None,
                started_at: float, finished_at: float, version: str,
                fingerprints: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record: the contract of `sbuild history show --json` (key order pinned by a test)."""
    return {
        "schema_version": RECORD_SCHEMA,
        "id": build_id,
        "sbuild_version": version,
        "project": project._asdict(),
        "branch": git.branch,
        "default_branch": git.default_branch,
        "commit": git.commit,
        "dirty": git.dirty,
        "builder": builder._asdict(),
        "platforms": platforms,
        "stages": stages,
        "build_args": build_args,
        "status": report["status"],
        "exit_code": report["exit_code"],
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "finished_at_epoch": round(finished_at, 3),
        "image": image._asdict() if image is not None else None,
        "report": report,
        "fingerprints": fingerprints,
    }


def builder_facts(cmd: BuildCommand) -> Builder:
    """The builder's name and driver, from --builder, $BUILDX_BUILDER or buildx's own state files; no buildx
    process (it takes ~100 ms to start). On the start-up path of a tagged --stage build (build.fast_finalize):
    jsonlite, not json."""
    from .jsonlite import loads
    from .process import docker_config_dir

    name = cmd.value("builder") or os.environ.get("BUILDX_BUILDER")
    state = os.path.join(docker_config_dir(), "buildx")
    if not name:
        try:
            with open(os.path.join(state, "current")) as f:
                name = loads(f.read()).get("Name") or None  # type: ignore[attr-defined]
        except (OSError, ValueError, AttributeError):
            name = None
    if not name or name == "default":
        return Builder(name or "default", "docker")
    try:
        with open(os.path.join(state, "instances", name)) as f:
            return Builder(name, loads(f.read()).get("Driver"))  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        return Builder(name, "docker")  # a docker context used as a builder: the docker driver


def platforms_of(cmd: BuildCommand, report: Report) -> list[str]:
    asked = [p for v in cmd.values("platform") for p in v.split(",") if p]
    if asked:
        return asked
    return sorted({p.platform for s in report.stages for p in s.platforms})


def _toplevel(start: str) -> str | None:
    """The work tree holding `start`, found as git finds it (a .git directory or file): no process."""
    d = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(d, ".git")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def parse_status(text: str) -> tuple[str | None, str | None, bool]:
    """`git status --porcelain=v2 --branch -uno` -> (commit, branch, dirty): one process for all three."""
    commit = branch = None
    dirty = False
    for line in text.splitlines():
        if line.startswith("# branch.oid "):
            oid = line[len("# branch.oid "):]
            commit = oid if oid != "(initial)" else None
        elif line.startswith("# branch.head "):
            head = line[len("# branch.head "):]
            branch = head if head != "(detached)" else None
        elif line and not line.startswith("#"):
            dirty = True
    return commit, branch, dirty


def default_branch_of(refs: str) -> str | None:
    """`git for-each-ref --format='%(refname) %(symref)' refs/remotes/origin/HEAD refs/heads/main
    refs/heads/master` -> origin's HEAD, else main, else master (gitinfo.default_branch's order)."""
    found = dict([*line.split(" ", 1), ""][:2] for line in refs.splitlines() if line)
    head = found.get("refs/remotes/origin/HEAD", "")
    if head.startswith("refs/remotes/origin/"):
        return head[len("refs/remotes/origin/"):]
    return next((n for n in ("main", "master") if f"refs/heads/{n}" in found), None)


def local_facts(cmd: BuildCommand) -> tuple[Project, GitState]:
    """The project and git state of a command line's Dockerfile, in three git processes (this runs beside
    buildx, and on a small machine every process competes with it). CI variables name the branch first."""
    from . import gitinfo, process

    where = cmd.context if os.path.isdir(cmd.context) else "."
    if cmd.dockerfile is not None:
        where = os.path.dirname(os.path.abspath(cmd.dockerfile))
    toplevel = _toplevel(where)
    commit = branch = remote = default = status = None
    dirty = None
    if toplevel:
        status = process.git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], where)
        if status is not None:
            commit, branch, dirty = parse_status(status)
        remote = process.git(["config", "--get", "remote.origin.url"], where)
    project = project_identity(cmd.dockerfile, toplevel if status is not None else None, remote, cmd.context)
    for var in gitinfo.BRANCH_ENV:
        if os.environ.get(var):
            branch = os.environ[var].removeprefix("origin/")
            break
    branch = cmd.value("branch") or branch
    default = cmd.value("default-branch") or os.environ.get("SBUILD_DEFAULT_BRANCH")
    if default is None and toplevel:
        default = default_branch_of(process.git(["for-each-ref", "--format=%(refname) %(symref)",
                                                 "refs/remotes/origin/HEAD", "refs/heads/main", "refs/heads/master"],
                                                where) or "")
    return project, GitState(branch, default or ("main" if branch else None),
                             os.environ.get("SBUILD_SHA") or commit, dirty)


class Recorder:
    """Gathers a build's facts beside it and saves its record after it.

    `start(plan)` is called once buildx is running: a thread opens the store, asks git, and finds the
    baseline (the registry's, when the local store has none). `finish(outcome)` compares the report with
    the baseline, saves the record, pushes it to the registry, and returns the compared report.
    Every failure here is a warning: recording never fails a build."""

    def __init__(self, cmd: BuildCommand, *, keep: int, save: bool, auto_baseline: bool,
                 explicit_baseline: tuple[dict[str, Any], str] | None, store: Store | None = None) -> None:
        self.cmd = cmd
        self.keep = keep
        self.save = save  # False (--no-history): compare with an explicit baseline, record nothing
        self.auto_baseline = auto_baseline
        self.baseline: tuple[dict[str, Any], str] | None = explicit_baseline  # (record, source)
        self.store = store
        self.thread: threading.Thread | None = None
        self.stages: list[str] = []
        self.project: Project | None = None
        self.git = GitState(None, None, None, None)
        self.warnings: list[str] = []
        self.started_at = time.time()
        self.plan: Plan | None = None
        self.fingerprints: dict[str, Any] | None = None
        self.context: Any = None  # fingerprint.Context of this build

    # -- beside the build ----------------------------------------------------------------------

    def start(self, plan: Plan) -> None:
        if self.thread is not None:
            return
        self.stages = stage_set(self.cmd, plan)
        self.plan = plan
        import threading

        self.thread = threading.Thread(target=self._gather, name="sbuild-record", daemon=True)
        self.thread.start()

    def deploy_image(self, image_id: str) -> None:
        """The deploy image is in the engine, unnamed (its export step completed): ask the engine for its
        size and layers (image_facts) now, while buildx still runs, rather than after the tag."""
        from .process import engine_json_soon

        engine_json_soon(f"/images/{image_id}/json")

    def _gather(self) -> None:
        # At the build's priority: niced, this thread was preempted by the engine while it held the GIL, and
        # the main thread (reading the stream, naming the image) waited for it: +55 ms per build on trixie.
        try:
            self._facts()
            if self.store is None and (self.save or self.auto_baseline):
                from .history import Store, StoreError, default_path

                self.store = Store(default_path())
                try:
                    self.store.db()
                except StoreError as e:  # one warning; the build goes on unrecorded
                    self.store = None
                    self.warnings.append(f"history: not recorded: {e}")
                    return
            if self.baseline is None and self.auto_baseline:
                self.baseline = self._find_baseline()
            if self.save:
                self._fingerprint()
            from . import compare, explain  # noqa: F401  (finish() needs them: imported here, off the clock)
        except Exception as e:
            self.warnings.append(f"history: {e}")

    def _fingerprint(self) -> None:
        """This build's step inputs (fingerprint.py), for explaining its misses and the next build's."""
        from . import fingerprint, ignore
        from .fingerprint import sha256
        from .flags import build_arg_map

        cmd, plan = self.cmd, self.plan
        path = cmd.dockerfile
        if plan is None or plan.graph is None or path is None or not os.path.isfile(path):
            return
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        args = build_arg_map(cmd.values("build-arg"))
        context = cmd.context if os.path.isdir(cmd.context) else None
        syntax = args.get("BUILDKIT_SYNTAX") or dict(plan.graph.directives).get("syntax")
        from .history import home

        key = os.environ.get("SBUILD_HASH_KEY") or machine_key(home())
        cache = None
        if context is not None:
            cache = os.path.join(home(), "statcache",
                                 sha256(os.path.realpath(context).encode()).hexdigest()[:16] + ".marshal")
        fp, ctx = fingerprint.fingerprints(text, context, ignore.for_build(context or ".", path), args,
                                           [s.key for s in plan.graph.stages], key, syntax, cache)
        contexts = {}
        for kv in cmd.values("build-context"):
            name, _, value = kv.partition("=")
            contexts[name] = "sha256:" + sha256(value.encode()).hexdigest()[:16]
        fp["build_contexts"] = contexts
        self.fingerprints, self.context = fp, ctx

    def _facts(self) -> None:
        self.project, self.git = local_facts(self.cmd)

    def _branches(self) -> list[str | None]:
        """Where a baseline is looked for: this branch, then the default one (no branch: branchless builds)."""
        out = [b for b in (self.git.branch, self.git.default_branch) if b]
        return list(dict.fromkeys(out)) or [None]

    def _find_baseline(self) -> tuple[dict[str, Any], str] | None:
        assert self.store is not None and self.project is not None
        key = ",".join(self.stages)
        local = self.store.baseline(self.project.id, key, self._branches())
        if local is not None:
            return local, self.store.source_of(local["id"])
        repo = self.cmd.value("cache-repo")
        if not repo:
            return None
        from . import history_registry

        for branch in self._branches():
            try:
                got = history_registry.pull(repo, self.project.id, key, branch or "")
            except history_registry.RecordError as e:
                self.warnings.append(f"history: could not fetch a baseline from the registry ({e})")
                return None
            if got is not None and got.get("status") == "success":
                try:
                    self.store.save(got, keep=self.keep, source="registry", listings=got.pop("_listings", None))
                except Exception as e:
                    self.warnings.append(f"history: {e}")
                return got, "registry"
        return None

    def baseline_times(self) -> dict[str, float] | None:
        """The baseline's stage durations once known (for the live view); None until then."""
        if self.thread is not None and self.thread.is_alive():
            return None
        if self.baseline is None:
            return None
        return {s["name"]: s["duration_s"] for s in self.baseline[0].get("report", {}).get("stages", [])}

    # -- after the build -----------------------------------------------------------------------

    def finish(self, outcome: BuildOutcome, image: Callable[[Builder], Image | None],
               say: Callable[[str], None]) -> Report:
        from . import __version__
        from .compare import apply_baseline
        from .flags import build_arg_map

        if self.thread is None:  # buildx never ran far enough to start us (e.g. an early failure)
            self.stages = stage_set(self.cmd, outcome.plan)
            self.plan = outcome.plan
            self._gather()
        else:
            waited = time.perf_counter()
            self.thread.join(timeout=JOIN_TIMEOUT_S)
            from .process import debug

            # What recording adds to the build's end: the part of its work buildx did not cover.
            debug(f"history: waited {(time.perf_counter() - waited) * 1000:.0f} ms for git, the store and "
                  "the fingerprints")
            if self.thread.is_alive():
                self.warnings.append(f"history: git, the registry or hashing the context took over "
                                     f"{JOIN_TIMEOUT_S:.0f} s after the build; not recorded")
        for w in self.warnings:
            say(f"warning: {w}")
        if (self.thread is not None and self.thread.is_alive()) or self.project is None:
            return outcome.report
        build_id = new_id()
        base = self.baseline
        builder = builder_facts(self.cmd)
        img = image(builder)
        report = apply_baseline(outcome.report, base[0] if base else None, base[1] if base else None, img,
                                build_id)
        platforms = platforms_of(self.cmd, report)
        if self.fingerprints is not None:
            from .progress import base_digests

            graph = self.plan.graph if self.plan is not None else None
            single = graph.stages[0].key if graph is not None and len(graph.stages) == 1 else None
            for stage, digest in base_digests(outcome.model, single).items():
                frm = (self.fingerprints["stages"].get(stage) or {}).get("from") or {}
                if "image" in frm:
                    frm["digest"] = digest
        if not outcome.evaluated:
            report = self._explain(report, outcome, base, builder, platforms)
        if self.store is None or not self.save or outcome.evaluated:
            return report
        import json

        masked = json.loads(outcome.masker.text(json.dumps(report.to_json())))
        record = make_record(build_id=build_id, report=masked, project=self.project, git=self.git,
                             builder=builder, platforms=platforms, stages=self.stages,
                             build_args=hash_build_args(build_arg_map(self.cmd.values("build-arg")),
                                                        os.environ.get("SBUILD_HASH_KEY") or None),
                             image=img, started_at=self.started_at, finished_at=time.time(), version=__version__,
                             fingerprints=self.fingerprints)
        from .history import StoreError

        listings = self.context.listings if self.context is not None else None
        try:
            self.store.save(record, keep=self.keep, listings=listings)
            if self.store.moved_aside:
                say(f"warning: history: {self.store.path} was damaged: moved aside to "
                         f"{self.store.moved_aside}; a new history starts")
        except StoreError as e:
            say(f"warning: history: not recorded: {e}")
        repo = self.cmd.value("cache-repo")
        if repo and record["status"] == "success":  # a failed build never replaces a baseline
            from . import history_registry

            try:
                history_registry.push(repo, record, listings)
            except history_registry.RecordError as e:
                say(f"warning: history: record not pushed to the registry ({e}); the build is fine")
        self.store.close()
        return report

    def _explain(self, report: Report, outcome: BuildOutcome, base: tuple[dict[str, Any], str] | None,
                 builder: Builder, platforms: list[str]) -> Report:
        """Each stage's `why` (explain.py), against the baseline's fingerprints."""
        from .explain import Facts, Side, explain

        cmd = self.cmd
        rec = base[0] if base else None
        now = Side(self.fingerprints, builder.name, tuple(platforms))
        then = Side(rec.get("fingerprints"), (rec.get("builder") or {}).get("name"),
                    tuple(rec.get("platforms") or ())) if rec else None
        filters = tuple(n.strip() for v in cmd.values("no-cache-filter") for n in v.split(",") if n.strip())
        facts = Facts(cmd.flag("no-cache"), filters, tuple(report.cache.imported_from),
                      tuple(w.short for w in outcome.model.warnings if "import" in w.short.lower()),
                      (self.fingerprints or {}).get("build_contexts") or {},
                      ((rec or {}).get("fingerprints") or {}).get("build_contexts"))
        ctx = self.context
        store = self.store

        def now_listing(h: str) -> dict[str, str] | None:
            return ctx.listings.get(h) if ctx is not None else None

        def base_listing(h: str) -> dict[str, str] | None:
            if store is None:
                return None
            try:
                return store.listing(h)
            except Exception:
                return None

        order = [s.key for s in self.plan.graph.stages] if self.plan and self.plan.graph else None
        whys = explain(list(report.stages), now, then, facts, now_listing, base_listing, order)
        return report._replace(stages=tuple(s._replace(why=whys.get(s.name)) for s in report.stages))


def machine_key(where: str) -> str | None:
    """This machine's own key for hashing secret-named args (never stored in a record): made once."""
    path = os.path.join(where, "hash-key")
    try:
        with open(path) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        os.makedirs(where, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return machine_key(where)
    except OSError:
        return None
    key = os.urandom(32).hex()  # secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def image_facts(cmd: BuildCommand, digest: str | None, pushed: list[str], driver: str | None) -> Image | None:
    """The deploy image's digest (as BuildKit's export reported it), size and layer count: from the pushed
    manifest, else from the engine when the image was loaded into it (docker driver, or --load). Asking
    buildx for --metadata-file instead costs ~40 ms per build (scripts/bench-history, measured beside it)."""
    if digest is None:
        return None
    size = layers = None
    if pushed:
        size, layers = _pushed_size(pushed[0], digest)
    elif driver == "docker" or cmd.flag("load"):
        from .process import engine_json

        got = engine_json(f"/images/{digest}/json")
        if isinstance(got, dict):
            size = got.get("Size") if isinstance(got.get("Size"), int) else None
            rootfs = got.get("RootFS") or {}
            layers = len(rootfs.get("Layers") or []) or None
    return Image(digest, size, layers)


def _pushed_size(tag: str, digest: str) -> tuple[int | None, int | None]:
    """The compressed size (config + layers) and layer count of the first image in the pushed manifest."""
    import json

    from . import registry

    try:
        ref = registry.split_ref(tag.split("@")[0])
        client = registry.Client(ref.host)
        got = client.manifest(ref.repo, digest)
        if got is None:
            return None, None
        doc = json.loads(got[1])
        if "manifests" in doc:  # an index: the first image that is not an attestation
            first = next((m for m in doc["manifests"]
                          if (m.get("platform") or {}).get("architecture") != "unknown"), None)
            if first is None:
                return None, None
            got = client.manifest(ref.repo, first["digest"])
            if got is None:
                return None, None
            doc = json.loads(got[1])
        lays = doc.get("layers") or []
        return sum(int(x.get("size", 0)) for x in lays) + int((doc.get("config") or {}).get("size", 0)), len(lays)
    except (registry.RegistryError, ValueError, KeyError, TypeError):
        return None, None
