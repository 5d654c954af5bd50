"""The build: turn a parsed command line into buildx runs, render progress, return the outcome.

One sbuild build is one or more *attempts* (buildx invocations): the first with everything asked for;
then, when the builder cannot export cache, one with import only; when only the cache export failed, a
silent one without export that produces buildx's outputs (iidfile, metadata). Each attempt is a single
BuildKit session: `buildx build`, or `buildx bake` for several stages.

On every build's start-up path: imports stay light (no pathlib, tempfile, dataclasses, logging), and
what is not needed to compose buildx's command line is prepared while buildx starts.
"""

from __future__ import annotations

import os
import sys
import time

from . import process
from ._tuple import TYPE_CHECKING
from .errors import BuildxError, SbuildError, UsageError
from .flags import BuildCommand
from .mask import Masker
from .retry_policy import parse_duration, stop_reason

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any, NamedTuple, Protocol, TextIO

    from .cache import CacheSettings
    from .plan import Plan
    from .progress import BuildModel, StreamSplitter, Update
    from .report import Report
    from .retry import FailureClass, Retry
    from .retry_policy import Policy

    class Renderer(Protocol):
        """What a progress renderer implements (plain, tty)."""

        def update(self, u: Update) -> None: ...

        def finish(self, model: BuildModel) -> None: ...

        def close(self) -> None: ...
else:
    from ._tuple import NamedTuple

PROGRESS_MODES = ("auto", "none", "plain", "tty", "quiet", "rawjson")
BUILDER_WAIT_S = 60.0  # how long a lost builder gets to come back before the retry runs anyway


class BuildOutcome:
    __slots__ = ("evaluated", "exit_code", "image_id", "masker", "mode", "model", "plan", "report", "signal")

    def __init__(self, exit_code: int, model: BuildModel, image_id: str | None, report: Report,
                 signal: int | None, mode: str, masker: Masker, plan: Plan, evaluated: bool = False) -> None:
        self.exit_code = exit_code  # buildx's, or 128+signal when interrupted
        self.model = model
        self.image_id = image_id
        self.report = report
        self.signal = signal
        self.mode = mode  # the progress mode used (plain, tty, quiet, rawjson)
        self.masker = masker
        self.plan = plan
        self.evaluated = evaluated  # --call/--check/--print: nothing was built


def check_inputs(cmd: BuildCommand) -> None:
    """Fail fast, without contacting the engine, on a context or Dockerfile that is not there: in buildx's
    words and with its exit code (1), plus what to do."""
    ctx = cmd.context
    if ctx != "-" and not cmd.remote_context and not os.path.isdir(ctx):
        raise BuildxError(f'unable to prepare context: path "{ctx}" not found (give the directory to build; '
                          "default: .)")
    path = cmd.dockerfile
    if path is not None and not os.path.isfile(path):
        hint = "check the -f path (relative to the current directory)" if cmd.has("file") else "pass -f FILE"
        raise BuildxError(f"failed to read dockerfile: open {path}: no such file or directory ({hint})")


SBUILD_FILES = ("report", "summary", "trace", "html")  # sbuild's own output files


def make_tmpdir() -> str:
    """A private directory, as tempfile.mkdtemp makes it (mode 0700, a random name in $TMPDIR), without
    importing tempfile (~6 ms with random and shutil) before buildx starts."""
    base = os.environ.get("TMPDIR") or "/tmp"
    if not os.path.isdir(base) or not os.access(base, os.W_OK):
        import tempfile  # tempfile's own search of the other candidates

        return tempfile.mkdtemp(prefix="sbuild-")
    while True:
        path = os.path.join(base, "sbuild-" + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def _nearest(path: str) -> str:
    """The nearest ancestor of path that exists."""
    d = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(d):
        d = os.path.dirname(d)
    return d


def check_outputs(cmd: BuildCommand) -> None:
    """Every requested output checked before anything runs, so a build is never lost to a path: sbuild's
    own files (a missing parent directory is made, as the build's end makes it; one that cannot be made,
    a directory where a file is wanted, or a place that cannot be written, is a usage error, exit 2), the
    cache directory, and buildx's files whose parent BuildKit does not create (buildx's words, exit 1, as
    buildx itself fails after the whole build)."""
    for flag in SBUILD_FILES:
        path = cmd.value(flag)
        if not path:
            continue
        if os.path.isdir(path):
            raise UsageError(f"--{flag} {path}: is a directory: give a file path (e.g. {path.rstrip('/')}/"
                             f"{flag}.{'md' if flag == 'summary' else 'html' if flag == 'html' else 'json'})")
        _writable(f"--{flag} {path}", path)
    cache_dir = cmd.value("cache-dir")
    if cache_dir:
        if os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
            raise UsageError(f"--cache-dir {cache_dir}: is a file: give a directory (made when missing)")
        _writable(f"--cache-dir {cache_dir}", os.path.join(cache_dir, "x") if os.path.isdir(cache_dir) else cache_dir)
    for flag, words in (("iidfile", "writing image ID file: open {}"), ("metadata-file", "open {}")):
        path = cmd.value(flag)
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise BuildxError(words.format(path) + ": no such file or directory (create its directory first: "
                              f"buildx does not, and would say so only after the build; --{flag})")
    for spec in cmd.values("output"):
        fields = dict(p.split("=", 1) for p in spec.split(",") if "=" in p)
        dest = fields.get("dest")
        if dest and dest != "-" and fields.get("type") in ("tar", "oci", "docker") and \
                not os.path.isdir(os.path.dirname(os.path.abspath(dest))):
            raise BuildxError(f"failed to open {dest}: no such file or directory (create its directory first: "
                              "BuildKit does not; --output)")


def _writable(what: str, path: str) -> None:
    if os.path.exists(path):  # a file to replace, or a special one such as /dev/stdout
        if not os.access(path, os.W_OK):
            raise UsageError(f"{what}: cannot write it (permission denied): give a path you can write")
        return
    near = _nearest(path)
    if not os.path.isdir(near):
        raise UsageError(f"{what}: {near} is a file, so the directory cannot be made: give another path")
    if not os.access(near, os.W_OK):
        raise UsageError(f"{what}: cannot write in {near} (permission denied): give a path you can write")


def _progress_given(cmd: BuildCommand) -> str | None:
    """--progress, else BUILDKIT_PROGRESS (buildx takes its default from it)."""
    return cmd.value("progress") or os.environ.get("BUILDKIT_PROGRESS")


def progress_mode(cmd: BuildCommand) -> str:
    mode = _progress_given(cmd) or "auto"
    if mode not in PROGRESS_MODES:  # buildx's words and exit code (1)
        raise BuildxError(f"invalid progress mode {mode} (use one of {', '.join(PROGRESS_MODES)})")
    if mode == "none":
        # buildx 0.29 added "none" (commit 9c7b9628e): no progress and, unlike quiet, no image ID.
        from .installed import buildx

        if not buildx().at_least(0, 29):
            raise BuildxError("invalid progress mode none")
        mode = "quiet"
    if cmd.flag("quiet"):
        if cmd.has("progress") and mode not in ("auto", "quiet"):
            raise UsageError(f"--progress={mode} and --quiet cannot be used together")
        return "quiet"
    if mode == "auto":
        return "tty" if sys.stderr.isatty() else "plain"
    return mode


def prints_image_id(cmd: BuildCommand) -> bool:
    """`-q`, or `--progress=quiet` (BUILDKIT_PROGRESS=quiet): buildx 0.13 and 0.29 alike print the image ID
    then (measured: docker buildx build --progress=quiet PATH)."""
    return cmd.flag("quiet") or _progress_given(cmd) == "quiet"


def masker_for(cmd: BuildCommand) -> Masker:
    return Masker.for_build(cmd.values("build-arg"), cmd.values("secret"))


def make_renderer(mode: str, err: TextIO, masker: Masker, model: BuildModel, stages: list[str],
                  baseline: Callable[[], dict[str, float] | None] | None = None,
                  single: str | None = None) -> Renderer | None:
    if mode in ("quiet", "rawjson"):
        return None
    if mode == "tty":
        from .render_tty import TtyRenderer

        return TtyRenderer(err, masker, model, stages, baseline, single)
    from .render_plain import PlainRenderer

    return PlainRenderer(err, masker)


class Invocation(NamedTuple):
    """One buildx run of an attempt."""

    subcommand: tuple[str, ...]  # ("buildx", "build") or ("buildx", "bake")
    args: list[str]
    iidfile: str | None  # where buildx writes the image ID, when sbuild needs it


class _Attempt:
    __slots__ = ("classified", "failure", "iidfile", "model", "result")

    def __init__(self, result: process.BuildResult, model: BuildModel, iidfile: str | None) -> None:
        self.result = result
        self.model = model
        self.iidfile = iidfile
        self.classified = False
        self.failure: FailureClass | None = None


class _Build:
    """State shared by the attempts of one sbuild build."""

    def __init__(self, cmd: BuildCommand, err: TextIO, out: TextIO, notes: list[str], hooks: Hooks) -> None:
        from . import plan as planning

        self.cmd, self.err, self.out = cmd, err, out
        self.hooks = hooks
        self.cache_lock: int | None = None  # the shared lock on --cache-dir (cache.hold)
        self.tag_after = False  # the deploy image is built unnamed with the stages and tagged after (_fast_finalize)
        self.planning = planning
        self.tmpdir: str | None = None
        check_inputs(cmd)
        check_outputs(cmd)
        self.mode = progress_mode(cmd)
        self.prints_id = prints_image_id(cmd)
        self.policy = self._policy()  # checks --retries/--retry-* before anything runs
        url = cmd.dockerfile_url
        if url and planning.needs_graph_first(cmd):
            # sbuild must read the stages: fetch the Dockerfile once and give buildx that same file, so the
            # stage graph and the build read one text.
            from .files import download

            path = self.tmp("Dockerfile")
            download(url, path)
            self.cmd = cmd = cmd.replacing("file", path)
        self.early = planning.needs_graph_first(cmd)
        self.plan: Plan = planning.make(cmd) if self.early else planning.EMPTY
        self.masker = masker_for(cmd)
        self.tag_after = self._fast_finalize()
        self.registries: dict[str, Any] = {}  # host -> registry.Client (sbuild's own registry calls)
        self.registry_warned = False
        self.cache: CacheSettings | None = self._cache_settings() if self.early else None
        self.notes: list[str] = [*notes, *self.plan.notes]
        self.export_errors: list[str] = []
        self.retries: list[Retry] = []
        self.attempt_count = 0
        self.retry_stop: str | None = None  # why retrying ended (retry_policy.STOPS); None: interrupted
        self.finalizing = False
        self.finalize_span: tuple[float, float, int] | None = None  # sbuild's second build: when, and its steps
        self.copy_back: list[tuple[str, str]] = []  # (buildx's temp file, the special file it stands for)
        self.stdin_copy: str | None = None  # stdin (context or Dockerfile), kept for further attempts
        for note in self.notes:
            self.say(note)

    def say(self, line: str) -> None:
        # --progress=quiet (-q) prints only what buildx prints in quiet mode: sbuild's errors, nothing else.
        if self.mode == "quiet" and not line.startswith("error"):
            return
        self.err.write(f"sbuild: {self.masker.text(line)}\n")

    def tmp(self, name: str) -> str:
        if self.tmpdir is None:
            self.tmpdir = make_tmpdir()
        return os.path.join(self.tmpdir, name)

    # -- what to run ---------------------------------------------------------------------------

    def _cache_settings(self) -> CacheSettings | None:
        cmd = self.cmd
        if not (cmd.has("cache-repo") or cmd.has("cache-dir")):
            return None
        from . import cache, gitinfo

        plan = self.plan
        if plan.selected:
            stages = [s.key for s in plan.selected]
        elif cmd.value("target"):
            stages = [str(cmd.value("target")).lower()]
        elif plan.graph is not None:
            stages = [plan.graph.default.key]
        else:
            raise UsageError("--cache-repo/--cache-dir need a Dockerfile sbuild can read, or --target")
        where = cmd.context if os.path.isdir(cmd.context) else "."
        cache_dir = cmd.value("cache-dir")
        if cache_dir:  # held until this process ends: no other build removes the version it reads
            self.cache_lock = cache.hold(os.path.abspath(cache_dir))
        branch = cmd.value("branch") or gitinfo.current_branch(where)
        default = cmd.value("default-branch") or gitinfo.default_branch(where)
        return cache.settings(stages=stages, repo=cmd.value("cache-repo"), cache_dir=cmd.value("cache-dir"),
                              branch=branch, default_branch=default, run_id=str(os.getpid()),
                              exists=self._ref_exists)

    def _ref_exists(self, ref: str) -> bool | None:
        """Whether a cache ref is in the registry (None: the registry could not say; warned once)."""
        from . import registry

        r = registry.split_ref(ref)
        client = self.registries.get(r.host)
        if client is None:
            client = self.registries[r.host] = registry.Client(r.host)
        try:
            return client.exists(r.repo, r.tag)
        except registry.RegistryError as e:
            if not self.registry_warned:
                self.registry_warned = True
                self.say(f"warning: cannot tell which cache to import ({e}); importing the branch's")
            return None

    def _special_files(self) -> dict[str, str]:
        """--iidfile/--metadata-file that name something other than a regular file (/dev/stdout, a fifo):
        buildx writes them by rename, which would replace the device. buildx gets a temp file instead
        ({flag: temp path}), copied there afterwards."""
        import stat

        out: dict[str, str] = {}
        for flag in ("iidfile", "metadata-file"):
            path = self.cmd.value(flag)
            if path is None:
                continue
            try:
                special = not stat.S_ISREG(os.stat(path).st_mode) or os.path.islink(path)
            except OSError:
                special = False
            if special:
                out[flag] = self.tmp(flag)
                self.copy_back.append((out[flag], path))
        return out

    def compose(self, export: bool) -> list[Invocation]:
        """The buildx invocations of one attempt: one session, or one per stage (see _per_stage_sessions)."""
        cmd, plan, cache = self.cmd, self.plan, self.cache
        self.copy_back = []
        special = self._special_files()
        iidfile = special.get("iidfile", cmd.value("iidfile"))
        if plan.bake is not None and not self.finalizing and self._per_stage_sessions():
            return self._stage_sessions(export)
        if plan.bake is not None and not self.finalizing:
            import json

            definition = json.loads(json.dumps(plan.bake))
            for name, target in definition["target"].items():
                stage = plan.targets[name]
                if self.tag_after and plan.deploy is not None and stage == plan.deploy.key:
                    target["output"] = ["type=docker"]  # an unnamed image in the engine, named once all passed
                if not export:
                    target.pop("cache-to", None)
                if cache is not None and stage in cache.per_stage:
                    sc = cache.per_stage[stage]
                    target["cache-from"] = [*target.get("cache-from", []), *sc.cache_from]
                    if export:
                        target["cache-to"] = [*target.get("cache-to", []), *sc.cache_to]
            bake_file = self.tmp("bake.json")
            with open(bake_file, "w") as f:
                json.dump(definition, f)
            args = ["--file", bake_file, *self.planning.bake_flags(cmd, plan), "--progress=rawjson"]
            return [Invocation(("buildx", "bake"), args, None)]
        if self.finalizing:
            # The deploy stage's image, after every stage passed: fully cached, so it only exports.
            assert plan.deploy is not None
            extra, drop, export = [f"--target={plan.deploy.key}"], frozenset[str](), False
        elif plan.selected:
            extra, drop = self.planning.single_stage_args(cmd, plan)
        else:
            extra, drop = [], frozenset()
        drop = drop | {"progress", "quiet"} | (set() if export else {"cache-to"})
        args = cmd.buildx_args(drop=frozenset(drop | special.keys()))
        args += [f"--{flag}={tmp}" for flag, tmp in special.items() if flag not in drop]
        if cache is not None:
            built = plan.deploy if self.finalizing else (plan.selected[0] if plan.selected else None)
            key = built.key if built is not None else next(iter(cache.per_stage), None)
            if key in cache.per_stage:
                args += [f"--cache-from={c}" for c in cache.per_stage[key].cache_from]
            if export:
                for sc in cache.per_stage.values():
                    args += [f"--cache-to={c}" for c in sc.cache_to]
        if self.prints_id and not iidfile and "iidfile" not in drop:
            iidfile = self.tmp("iid")
            args.append(f"--iidfile={iidfile}")
        return [Invocation(("buildx", "build"), [*args, *extra, "--progress=rawjson", "--", cmd.context], iidfile)]

    def _per_stage_sessions(self) -> bool:
        """Several stages that import sbuild's cache are built one session per stage: in one bake session
        the targets share steps, and BuildKit then finds a shared step's successors only in whichever cache
        (local or imported) answered first for it, so stages lose their cache at random (cache.py)."""
        cache = self.cache
        return cache is not None and any(sc.cache_from for sc in cache.per_stage.values())

    def _stage_sessions(self, export: bool) -> list[Invocation]:
        cmd, plan, cache = self.cmd, self.plan, self.cache
        assert cache is not None and plan.graph is not None
        order = {k: i for i, k in enumerate(plan.graph.names)}
        stages = sorted((s.key for s in plan.selected), key=lambda k: order.get(k, len(order)))
        owner = (plan.deploy.key if plan.deploy is not None else stages[-1])  # gets the user's own --cache-to
        drop = frozenset({"progress", "quiet", "cache-to", *self.planning.IMAGE_FLAGS})
        common = cmd.buildx_args(drop=drop)
        out = []
        for key in stages:
            sc = cache.per_stage.get(key)
            deploy_here = self.tag_after and plan.deploy is not None and key == plan.deploy.key
            args = [*common, f"--target={key}", "--output=type=docker" if deploy_here else "--output=type=cacheonly"]
            if sc is not None:
                args += [f"--cache-from={c}" for c in sc.cache_from]
                if export:
                    args += [f"--cache-to={c}" for c in sc.cache_to]
            if export and key == owner:
                args += [f"--cache-to={c}" for c in cmd.values("cache-to")]
            out.append(Invocation(("buildx", "build"), [*args, "--progress=rawjson", "--", cmd.context], None))
        return out

    # -- one attempt ---------------------------------------------------------------------------

    def attempt(self, *, export: bool, render: bool) -> _Attempt:
        invocations = self.compose(export)
        passthrough = render and self.mode == "rawjson"
        err, masker = self.err, self.masker
        model: BuildModel | None = None
        renderer: Renderer | None = None
        splitters: list[StreamSplitter] = []

        def feed(items: list[dict[str, object] | str]) -> None:
            assert model is not None
            for item in items:
                ups = model.apply_text(item) if isinstance(item, str) else model.apply(item)
                if renderer is not None:
                    for u in ups:
                        renderer.update(u)

        def spawned() -> Callable[[str], None]:
            # Runs once buildx runs (its CLI takes >100 ms before the first event): the stream's parser, the
            # plan and the renderer are made here, and what the build's end needs is imported, off the clock.
            nonlocal model, renderer
            from .progress import BuildModel, StreamSplitter

            if model is None:
                model = BuildModel()
                renderer = self._prepare(model, render)
            # A session per stage: a step shared with an earlier session is a step of its own here (built
            # there, cached here), as bake's copies of a shared step are.
            model.session = f"{len(splitters)}:" if splitters else ""
            splitter = StreamSplitter()
            splitters.append(splitter)

            def on_output(chunk: str) -> None:
                if passthrough:
                    err.write(masker.text(chunk))
                feed(splitter.feed(chunk))

            return on_output

        result = process.BuildResult(0)
        try:
            for inv in invocations:
                stdin = self._stdin()
                try:
                    result = process.run_build(inv.args, spawned, masker=masker, subcommand=inv.subcommand,
                                               stdin=stdin)
                finally:
                    if stdin is not None:
                        stdin.close()
                feed(splitters[-1].close())
                assert model is not None
                model.unread += splitters[-1].unread
                if result.exit_code != 0 or result.signal is not None:
                    break  # the stages after a failed one are not built (skipped in the report)
            assert model is not None
            model.finish_logs()
            if render and self.mode != "rawjson":
                from .report import progress_unreadable

                if progress_unreadable(model, result.exit_code):
                    self.say("warning: could not read buildx's progress stream (a shape this sbuild does not "
                             "know): stage status unknown; the exit code is buildx's")
            if result.exit_code != 0 and model.events == 0:
                diag = process.diagnose(result.exit_code, "\n".join(model.text))
                if diag is not None:
                    raise diag
            if renderer is not None:
                renderer.finish(model)
            elif render and self.mode == "quiet" and result.exit_code != 0:
                for line in model.text:  # buildx -q prints its error and nothing else
                    err.write(masker.text(line) + "\n")
        finally:
            if renderer is not None:
                renderer.close()
        return _Attempt(result, model, invocations[-1].iidfile)

    def _prepare(self, model: BuildModel, render: bool) -> Renderer | None:
        """The first time buildx runs: the plan (when it was not needed to compose the command line), the
        history's start, the modules the build's end needs; and this attempt's renderer."""
        from . import files, overhead, render_report, report  # noqa: F401  (used after the build)

        if not self.early and self.plan is self.planning.EMPTY:
            self.plan = self.planning.make(self.cmd)
        if self.hooks.on_start is not None:
            self.hooks.on_start(self.plan)
            self.hooks = self.hooks._replace(on_start=None)
        if not render:
            return None
        # The deploy image's build after every stage passed is one line, not every stage "waiting" again.
        single = f'deploy image "{self.plan.deploy.key}"' if self.finalizing and self.plan.deploy else None
        return make_renderer(self.mode, self.err, self.masker, model, [s.key for s in self.plan.closure],
                             self.hooks.baseline, single)

    def _stdin(self) -> IO[bytes] | None:
        """A fresh read of stdin for each attempt when the context or Dockerfile comes from it (`-`):
        the first attempt consumes it, so it is spooled to a file once."""
        if self.cmd.context != "-" and self.cmd.value("file") != "-":
            return None
        if self.stdin_copy is None:
            import shutil

            self.stdin_copy = self.tmp("stdin")
            with open(self.stdin_copy, "wb") as f:
                shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
        return open(self.stdin_copy, "rb")

    # -- the build -----------------------------------------------------------------------------

    def run(self) -> BuildOutcome:
        started = time.time()
        try:
            a = self._attempts()
            a = self._after_cache_trouble(a)
            ok = a.result.exit_code == 0 and a.result.signal is None
            self._settle_cache(ok)
            session = a
            if ok and self.plan.finalize and self.tag_after and self._name_deploy_image(session):
                pass  # the deploy image, built unnamed with the other stages, now carries the tags
            elif ok and self.plan.finalize:
                assert self.plan.deploy is not None
                self.say(f'every stage passed: now the deploy stage "{self.plan.deploy.key}" image'
                         + (" (tags, push)" if self.cmd.has("tag") or self.cmd.flag("push") else ""))
                self.finalizing = True
                t0 = time.time()
                a = self._attempts()
                self.finalize_span = (t0, time.time(), len(a.model.steps))
                ok = a.result.exit_code == 0 and a.result.signal is None
            finished = time.time()
            image_id = self._outputs(a) if ok else None
        finally:
            if self.tmpdir is not None:
                import shutil

                shutil.rmtree(self.tmpdir, ignore_errors=True)
        code = 128 + a.result.signal if a.result.signal is not None else a.result.exit_code
        # The stages' story is the session's; a failed finalize tells its own (the push that failed).
        model = session.model if (ok or a is session) else a.model
        report = self._report(model, code, started, finished, a.result.signal is not None)
        return BuildOutcome(code, a.model, image_id, report, a.result.signal, self.mode, self.masker, self.plan,
                            self.planning.evaluates(self.cmd))

    def _name_deploy_image(self, session: _Attempt) -> bool:
        """After every stage passed: tag the deploy image the session left unnamed in the engine (a few ms,
        against a second, cached build of ~0.4 s). False: do the second build instead."""
        from .progress import exported_digest

        digest = exported_digest(session.model)
        if digest is None or self.plan.deploy is None:
            return False
        if self.hooks.on_image is not None:
            self.hooks.on_image(digest)  # the history may ask the engine about it while it tags
        t0 = time.time()
        for ref in self.cmd.values("tag"):
            if not process.engine_tag(digest, ref):
                return False
        self.finalize_span = (t0, time.time(), 0)
        self.say(f'every stage passed: the deploy stage "{self.plan.deploy.key}" image is now '
                 + ", ".join(self.cmd.values("tag")))
        return True

    def _fast_finalize(self) -> bool:
        """Whether the deploy image can be made in the stages' own session and named afterwards: the docker
        driver of the engine at DOCKER_HOST (a unix socket sbuild can ask), tags and nothing else that
        shapes the image's output (no --push, -o, --iidfile, --metadata-file, -q, attestations, several
        platforms). Everywhere else the second, cached build makes it."""
        cmd = self.cmd
        if not self.plan.finalize or not cmd.has("tag"):
            return False
        if any(cmd.has(f) for f in ("push", "output", "iidfile", "metadata-file", "annotation", "attest",
                                    "provenance", "sbom", "builder")) or cmd.flag("quiet") or self.prints_id:
            return False
        if len([p for v in cmd.values("platform") for p in v.split(",") if p]) > 1:
            return False
        if os.environ.get("BUILDX_BUILDER") or process.engine_socket() is None:
            return False
        from .record import builder_facts

        return builder_facts(cmd) == ("default", "docker")

    def _policy(self) -> Policy:
        from .retry_policy import Policy

        def number(flag: str, default: float, kind: type = float) -> float:
            v = self.cmd.value(flag)
            if v is None:
                return default
            try:
                n = kind(v)
            except ValueError:
                raise UsageError(f'invalid --{flag} "{v}": give a number') from None
            if n < 0:
                raise UsageError(f"invalid --{flag} {v}: must not be negative")
            return float(n)

        timeout = self.cmd.value("retry-timeout")
        return Policy(retries=int(number("retries", 3, int)), first_wait=number("retry-wait", 5.0),
                      max_wait=number("retry-max-wait", 60.0),
                      timeout=parse_duration(timeout, "--retry-timeout") if timeout else None)

    def _failure(self, a: _Attempt) -> FailureClass | None:
        """How an attempt failed, for the retry policy (None: it succeeded, or was interrupted). Classified
        once per attempt."""
        if not a.classified:
            a.classified = True
            if a.result.exit_code != 0 and a.result.signal is None:
                from .retry import classify_failure

                failed = a.model.failed_steps()
                a.failure = classify_failure("\n".join(a.model.text) or (failed[0].error or "" if failed else ""),
                                             failed[0].bare_name if failed else None)
        return a.failure

    def _attempts(self) -> _Attempt:
        """Attempts until one succeeds or fails for good: transient registry trouble is retried."""
        policy = self.policy
        self.attempt_count = 0
        started = time.monotonic()  # --retry-timeout counts from here

        def once() -> _Attempt:
            if self.retries and self.retries[-1].phase == "builder":
                self._wait_for_builder()
            self.attempt_count += 1
            self.last = self.attempt(export=True, render=True)
            return self.last

        # The first attempt runs without the retry machinery: the classifier's patterns cost a few ms to
        # compile, and most builds never need them. The same stop rule decides for it as for the others.
        first = once()
        if first.result.signal is not None:
            self.retry_stop = None
            return first
        self.retry_stop = stop_reason(self._failure(first), 1, policy)
        if self.retry_stop is not None:
            return first
        from .retry import run_with_retries

        def on_retry(r: Retry) -> None:
            self.retries.append(r)
            at = time.strftime("%H:%M:%S", time.localtime(time.time() + r.wait_s))
            left = ""
            if policy.timeout is not None:
                left = f"; {max(0.0, policy.timeout - (time.monotonic() - started) - r.wait_s):.0f}s of " \
                       "--retry-timeout left then"
            self.say(f"attempt {r.attempt} of {policy.retries + 1} failed ({r.phase}: {r.reason}); "
                     f"attempt {r.attempt + 1} starts in {r.wait_s:.1f}s, at {at}{left}")

        import signal

        class _Stop(Exception):
            def __init__(self, signum: int) -> None:
                self.signum = signum

        def stop(signum: int, _frame: object) -> None:
            raise _Stop(signum)

        # Between attempts no buildx runs: Ctrl-C or SIGTERM ends the build as an interrupted one (exit
        # 130/143, report written), not with a traceback.
        old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            done = run_with_retries(once, self._failure, policy, on_retry, first=first,  # type: ignore[arg-type]
                                    started=started)
        except _Stop as e:
            last = self.last
            self.retry_stop = None
            return _Attempt(process.BuildResult(last.result.exit_code, e.signum), last.model, last.iidfile)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        a: _Attempt = done.result  # type: ignore[assignment]
        self.retry_stop = None if a.result.signal is not None else done.stop
        if done.stop == "count":
            self.say(f"no retries left (--retries {policy.retries}): the build failed")
        elif done.stop == "cap":
            f = self._failure(a)
            self.say(f"not retrying again: {f.reason.split(' (', 1)[0] if f else 'this failure'} gets "
                     f"{f.cap if f else 1} retry at most: the build failed")
        elif done.stop == "timeout":
            self.say(f"retrying stopped: the next attempt would start after the --retry-timeout of "
                     f"{policy.timeout:g}s")
        return a

    def _wait_for_builder(self) -> None:
        """After the builder went away mid-build (a crash, a daemon restart): wait until it answers again,
        bounded, saying so; the attempt then runs either way and tells what it finds."""
        builder = self.cmd.value("builder") or os.environ.get("BUILDX_BUILDER")
        if process.builder_ready(builder):
            return
        self.say(f"waiting up to {BUILDER_WAIT_S:.0f}s for the builder{' ' + builder if builder else ''} "
                 "to answer again")
        deadline = time.monotonic() + BUILDER_WAIT_S
        while time.monotonic() < deadline:
            time.sleep(1.0)
            if process.builder_ready(builder):
                self.say("the builder answers again")
                return
        self.say(f"the builder did not answer within {BUILDER_WAIT_S:.0f}s; trying anyway")

    def _after_cache_trouble(self, a: _Attempt) -> _Attempt:
        """A builder that cannot export cache, or an export that failed, need not fail a good build."""
        if a.result.exit_code == 0 or a.result.signal is not None:
            return a
        wants_export = self.cache is not None or self.cmd.has("cache-to")
        if not wants_export:
            return a
        from . import cache as cachemod

        text = "\n".join(a.model.text)
        required = self.cmd.flag("cache-required")
        if cachemod.EXPORT_UNSUPPORTED.search(text) and not any(not s.internal for s in a.model.steps.values()):
            msg = ("this builder cannot export cache (docker driver without the containerd image store): "
                   'enable it with {"features": {"containerd-snapshotter": true}} in /etc/docker/daemon.json, '
                   "or use a docker-container builder (docker buildx create --use)")
            if required:
                raise SbuildError(msg + "; --cache-required given")
            self.say("warning: " + msg + "; building with cache import only")
            self.export_errors.append(msg)
            return self.attempt(export=False, render=True)
        failed = a.model.failed_steps()
        if failed and all(s.internal and cachemod.is_export_step(s.bare_name) for s in failed):
            errors = [f"{s.name}: {s.error}" for s in failed]
            self.export_errors += errors
            if required:
                self.say("error: cache export failed and --cache-required was given: " + errors[0])
                return a
            self.say("warning: cache export failed; the build itself succeeded: " + errors[0])
            # buildx writes its outputs (iidfile, metadata) only on success: get them from a silent run
            # without export (everything is cached by now, so it takes a moment).
            b = self.attempt(export=False, render=False)
            return _Attempt(b.result, a.model, b.iidfile)
        return a

    def _settle_cache(self, ok: bool) -> None:
        if self.cache is None:
            return
        from . import cache as cachemod

        pairs = [p for sc in self.cache.per_stage.values() for p in sc.swap]
        if ok and not self.export_errors:
            cachemod.swap_in(pairs, self.cache_lock)
        else:
            cachemod.discard(pairs)

    def _outputs(self, a: _Attempt) -> str | None:
        for tmp, path in self.copy_back:
            if os.path.exists(tmp):
                with open(tmp) as src, open(path, "w") as dst:
                    dst.write(src.read())

        image_id = None
        if a.iidfile and os.path.exists(a.iidfile):
            with open(a.iidfile) as f:
                image_id = f.read().strip()
        if self.prints_id and image_id:
            self.out.write(image_id + "\n")
            self.out.flush()
        return image_id

    def _report(self, model: BuildModel, exit_code: int, started: float, finished: float,
                interrupted: bool) -> Report:
        from .report import build_report

        plan, cmd = self.plan, self.cmd
        graph = plan.graph
        # An evaluation (--call check, --print) runs no stage: none is expected, none reported as cached.
        closure = [] if self.planning.evaluates(cmd) else [s.key for s in plan.closure]
        single = closure[0] if len(closure) == 1 else (graph.default.key if graph else None)
        tags = cmd.values("tag") if (plan.builds_deploy or not plan.selected) and not cmd.flag("cache-only") else []
        outputs = cmd.values("output")
        pushes = cmd.flag("push") or any("type=registry" in o or "push=true" in o for o in outputs)
        pushed = tags if (pushes and exit_code == 0) else []
        cache = self.cache
        exported = [] if (exit_code != 0 or self.export_errors or cache is None) else cache.exported_to
        from .report import normalize_image

        image_stages: dict[str, str] = {}
        for st in (plan.closure or (graph.stages if graph else ())):
            for img in st.images:
                image_stages.setdefault(normalize_image(img), st.key)
        return build_report(model, exit_code=exit_code, stage_order=graph.names if graph else None,
                            expected=closure or None, single_stage=single, started=started, finished=finished,
                            tags=tags, interrupted=interrupted,
                            cache_imported=[*cmd.values("cache-from"), *(cache.imports if cache else [])],
                            cache_exported=exported, cache_errors=self.export_errors, notes=self.notes,
                            attempts=self.attempt_count, pushed=pushed, retry_stop=self.retry_stop,
                            finalize=self.finalize_span[:2] if self.finalize_span else None,
                            finalize_steps=self.finalize_span[2] if self.finalize_span else 0,
                            retries=[{"attempt": r.attempt, "phase": r.phase, "reason": r.reason, "wait_s": r.wait_s}
                                     for r in self.retries], image_stages=image_stages)


class Hooks(NamedTuple):
    """What the history asks of a build (cli.py): a call once buildx runs, and the baseline's stage times for
    the live view."""

    on_start: Callable[[Plan], None] | None = None
    baseline: Callable[[], dict[str, float] | None] | None = None
    on_image: Callable[[str], None] | None = None  # the deploy image's ID, once every stage passed


def run(cmd: BuildCommand, *, err: TextIO | None = None, out: TextIO | None = None,
        notes: list[str] | None = None, hooks: Hooks | None = None) -> BuildOutcome:
    """Build as the command line says. Progress is rendered by sbuild; the exit code is buildx's."""
    return _Build(cmd, err or sys.stderr, out or sys.stdout, notes or [], hooks or Hooks()).run()
