"""The build: turn a parsed command line into buildx runs, render progress, return the outcome.

One sbuild build is one or more *attempts* (buildx invocations): the first with everything asked for;
then, when the builder cannot export cache, one with import only; when only the cache export failed, a
silent one without export that produces buildx's outputs (iidfile, metadata). Each attempt is a single
BuildKit session: `buildx build`, or `buildx bake` for several stages.

`prepare` checks and resolves everything before buildx runs (the only I/O before the first attempt);
`plan.compose` turns that into each attempt's command lines (pure); `_Build` runs them: the attempt loop,
the cache fallbacks and the finalize step, each returning what happened (Attempts, Finalized) rather than
setting flags. On every build's start-up path imports stay light (see DESIGN.md, "The start-up path"),
and what is not needed to compose buildx's command line is prepared while buildx starts.
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
    from typing import IO, NamedTuple, Protocol, TextIO

    from .cache import CacheSettings
    from .plan import Invocation, Plan, Setting
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


def tmpdir_path() -> str:
    """Where this build's own files for buildx go (a bake file, an image ID file, stdin kept for a retry): a
    random name in $TMPDIR, made only when a file is put there (ensure_dir; tempfile, ~6 ms to import, is not
    needed for that)."""
    base = os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(base if os.path.isdir(base) else "/tmp", "sbuild-" + os.urandom(8).hex())


def ensure_dir(path: str) -> str:
    """path, made private (0700) if it is not there yet (its name is random: see tmpdir_path)."""
    if not os.path.isdir(path):
        os.mkdir(path, 0o700)
    return path


def remove_dir(path: str) -> None:
    """A directory of sbuild's own files (flat: no subdirectories), if it was made."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    # (not contextlib.suppress: its import, ~0.7 ms, would come after buildx exited, on the build's clock)
    for name in names:
        try:  # noqa: SIM105
            os.unlink(os.path.join(path, name))
        except OSError:
            pass
    try:  # noqa: SIM105
        os.rmdir(path)
    except OSError:
        pass


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


class _Attempt:
    __slots__ = ("classified", "failure", "iidfile", "model", "result")

    def __init__(self, result: process.BuildResult, model: BuildModel, iidfile: str | None) -> None:
        self.result = result
        self.model = model
        self.iidfile = iidfile
        self.classified = False
        self.failure: FailureClass | None = None

    @property
    def ok(self) -> bool:
        return self.result.exit_code == 0 and self.result.signal is None


class Attempts(NamedTuple):
    """What the attempt loop ended with."""

    last: _Attempt
    runs: int  # attempts run
    retries: list[Retry]  # the retries made, with why and how long each waited
    stop: str | None  # why retrying ended (retry_policy.STOPS); None: interrupted


class Finalized(NamedTuple):
    """How the deploy image got its name after every stage passed."""

    attempt: _Attempt  # the session's own attempt (named by a tag), or the second build's
    span: tuple[float, float]  # when
    steps: int  # the second build's steps (0: tagged in the engine)
    attempts: Attempts | None  # the second build's attempt loop (None: tagged in the engine)


class Named(NamedTuple):
    """The deploy image named while buildx still ran (the stream showed every stage built): taken back if
    the build then fails after all."""

    image: str
    span: tuple[float, float]  # when
    before: dict[str, str | None]  # each name's image before (None: the name was free)


class Prepared(NamedTuple):
    """A build's inputs, checked and resolved before anything runs (prepare)."""

    setting: Setting  # what every attempt's command lines are made from (plan.compose)
    mode: str  # the progress mode (plain, tty, quiet, rawjson)
    policy: Policy
    masker: Masker
    early: bool  # the plan was needed to compose the command line (else it is read once buildx runs)
    notes: list[str]
    cache_lock: int | None  # the shared lock on --cache-dir, held until this process ends (cache.hold)


def prepare(cmd: BuildCommand, notes: list[str], err: TextIO) -> Prepared:
    """Everything checked and resolved before buildx runs: inputs and outputs, the progress mode, the retry
    policy, a Dockerfile URL fetched once, the plan when the command line needs it, sbuild's cache refs,
    whether the deploy image can be named after the session, and the temp files buildx gets."""
    check_inputs(cmd)
    check_outputs(cmd)
    tmpdir = tmpdir_path()  # made when a file is first put there (ensure_dir)
    try:
        return _prepare(cmd, notes, err, tmpdir)
    except BaseException:
        remove_dir(tmpdir)  # a Dockerfile fetched before the plan failed
        raise


def _prepare(cmd: BuildCommand, notes: list[str], err: TextIO, tmpdir: str) -> Prepared:
    from . import plan as planning

    mode = progress_mode(cmd)
    policy = retry_policy(cmd)
    url = cmd.dockerfile_url
    if url and planning.needs_graph_first(cmd):
        # sbuild must read the stages: fetch the Dockerfile once and give buildx that same file, so the stage
        # graph and the build read one text.
        from .files import download

        path = os.path.join(ensure_dir(tmpdir), "Dockerfile")
        download(url, path)
        cmd = cmd.replacing("file", path)
    early = planning.needs_graph_first(cmd)
    plan = planning.make(cmd) if early else planning.EMPTY
    masker = masker_for(cmd)
    cache, lock = cache_settings(cmd, plan, lambda line: say(line, mode, masker, err)) if early else (None, None)
    special = special_files(cmd, tmpdir)
    prints_id = prints_image_id(cmd)
    setting = planning.Setting(cmd, plan, cache, fast_finalize(cmd, plan), prints_id, special, tmpdir)
    notes = [*notes, *plan.notes]
    for note in notes:
        say(note, mode, masker, err)
    return Prepared(setting, mode, policy, masker, early, notes, lock)


def retry_policy(cmd: BuildCommand) -> Policy:
    """--retries/--retry-wait/--retry-max-wait/--retry-timeout, checked (exit 2 on a bad value)."""
    from .retry_policy import Policy

    def number(flag: str, default: float, kind: type = float) -> float:
        v = cmd.value(flag)
        if v is None:
            return default
        try:
            n = kind(v)
        except ValueError:
            raise UsageError(f'invalid --{flag} "{v}": give a number') from None
        if n < 0:
            raise UsageError(f"invalid --{flag} {v}: must not be negative")
        return float(n)

    timeout = cmd.value("retry-timeout")
    return Policy(retries=int(number("retries", 3, int)), first_wait=number("retry-wait", 5.0),
                  max_wait=number("retry-max-wait", 60.0),
                  timeout=parse_duration(timeout, "--retry-timeout") if timeout else None)


def cache_settings(cmd: BuildCommand, plan: Plan,
                   warn: Callable[[str], None]) -> tuple[CacheSettings | None, int | None]:
    """sbuild's cache refs per stage and branch (--cache-repo/--cache-dir), which of them exist asked of the
    registry; and the --cache-dir lock, taken (held until this process ends: no other build removes the
    version this one reads)."""
    if not (cmd.has("cache-repo") or cmd.has("cache-dir")):
        return None, None
    from . import cache, gitinfo, registry

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
    lock = cache.hold(os.path.abspath(cache_dir)) if cache_dir else None
    clients: dict[str, registry.Client] = {}
    warned: list[bool] = []

    def exists(ref: str) -> bool | None:
        """Whether a cache ref is in the registry (None: the registry could not say; warned once)."""
        r = registry.split_ref(ref)
        client = clients.get(r.host)
        if client is None:
            client = clients[r.host] = registry.Client(r.host)
        try:
            return client.exists(r.repo, r.tag)
        except registry.RegistryError as e:
            if not warned:
                warned.append(True)
                warn(f"warning: cannot tell which cache to import ({e}); importing the branch's")
            return None

    branch = cmd.value("branch") or gitinfo.current_branch(where)
    default = cmd.value("default-branch") or gitinfo.default_branch(where)
    return cache.settings(stages=stages, repo=cmd.value("cache-repo"), cache_dir=cache_dir, branch=branch,
                          default_branch=default, run_id=str(os.getpid()), exists=exists), lock


def special_files(cmd: BuildCommand, tmpdir: str) -> dict[str, str]:
    """--iidfile/--metadata-file that name something other than a regular file (/dev/stdout, a fifo):
    buildx writes them by rename, which would replace the device. buildx gets a temp file instead
    ({flag: temp path}), copied there afterwards."""
    import stat

    out: dict[str, str] = {}
    for flag in ("iidfile", "metadata-file"):
        path = cmd.value(flag)
        if path is None:
            continue
        try:
            special = not stat.S_ISREG(os.stat(path).st_mode) or os.path.islink(path)
        except OSError:
            special = False
        if special:
            out[flag] = os.path.join(tmpdir, flag)
    return out


def fast_finalize(cmd: BuildCommand, plan: Plan) -> bool:
    """Whether the deploy image can be made in the stages' own session and named afterwards: the docker
    driver of the engine at DOCKER_HOST (a unix socket sbuild can ask), tags and nothing else that shapes
    the image's output (no --push, -o, --metadata-file, attestations, several platforms). -q and
    --iidfile get the image ID from the engine (_finalize). Everywhere else the second, cached build
    makes it."""
    if not plan.finalize or not cmd.has("tag"):
        return False
    if any(cmd.has(f) for f in ("push", "output", "metadata-file", "annotation", "attest",
                                "provenance", "sbom", "builder")):
        return False
    if len([p for v in cmd.values("platform") for p in v.split(",") if p]) > 1:
        return False
    if os.environ.get("BUILDX_BUILDER") or process.engine_socket() is None:
        return False
    from .record import builder_facts

    return builder_facts(cmd) == ("default", "docker")


class _Build:
    """One sbuild build: the attempt loop, the cache fallbacks and the finalize step, each a method with an
    explicit result, over a Prepared setting. The constructor does no I/O."""

    def __init__(self, prepared: Prepared, err: TextIO, out: TextIO, hooks: Hooks) -> None:
        from . import plan as planning

        self.planning = planning
        self.setting = prepared.setting
        self.mode, self.policy, self.masker = prepared.mode, prepared.policy, prepared.masker
        self.early, self.notes = prepared.early, prepared.notes
        self.cache_lock = prepared.cache_lock
        self.err, self.out = err, out
        self.hooks = hooks
        self.stdin_copy: str | None = None  # stdin (context or Dockerfile), kept for further attempts
        self.named: Named | None = None  # the deploy image's names, given before buildx exited
        self.image_id: str | None = None  # the named deploy image's ID, for -q and --iidfile (_finalize)

    @property
    def cmd(self) -> BuildCommand:
        return self.setting.cmd

    @property
    def plan(self) -> Plan:
        return self.setting.plan

    def say(self, line: str) -> None:
        say(line, self.mode, self.masker, self.err)

    # -- one attempt ---------------------------------------------------------------------------

    def attempt(self, *, export: bool, render: bool, finalizing: bool = False) -> _Attempt:
        invocations = self.planning.compose(self.setting, export=export, finalizing=finalizing)
        passthrough = render and self.mode == "rawjson"
        err, masker = self.err, self.masker
        model: BuildModel | None = None
        renderer: Renderer | None = None
        splitters: list[StreamSplitter] = []

        # The deploy image exists, unnamed, once its export step completes: the history asks the engine
        # about it then, while the other stages may still run (naming it still waits for all of them).
        early_image = self.hooks.on_image if self.setting.tag_after and not finalizing else None
        # Once the stream also shows every stage built, the image is named while buildx winds down (~40 ms
        # after the last step, on both pairs): after buildx exits, the naming would add to the build's time.
        watch = None if finalizing else self._naming_watch(invocations)
        exported: str | None = None
        ok = False

        def feed(items: list[dict[str, object] | str]) -> None:
            nonlocal early_image, exported, watch
            assert model is not None
            for item in items:
                ups = model.apply_text(item) if isinstance(item, str) else model.apply(item)
                if renderer is not None:
                    for u in ups:
                        renderer.update(u)
                if early_image is None and watch is None:
                    continue
                from .progress import Finished, finished_export, stages_built

                if exported is None:
                    exported = finished_export(model, ups)
                    if exported is None:
                        continue
                    if early_image is not None:
                        early_image(exported)
                        early_image = None
                if watch is not None and any(type(u) is Finished for u in ups) and stages_built(model, watch):
                    watch = None
                    self._name_early(exported)

        def spawned() -> Callable[[str], None]:
            # Runs once buildx runs (its CLI takes >100 ms before the first event): the stream's parser, the
            # plan and the renderer are made here, and what the build's end needs is imported, off the clock.
            nonlocal model, renderer
            from .progress import BuildModel, StreamSplitter

            if model is None:
                model = BuildModel()
                renderer = self._started(model, render, finalizing)
            # A session per stage: a step shared with an earlier session is a step of its own here (built
            # there, cached here), as bake's copies of a shared step are.
            model.session = f"{len(splitters)}:" if splitters else ""
            if watch is not None:
                for ref in self._refs():  # what each name names now, asked while buildx starts
                    process.engine_json_soon(f"/images/{ref}/json")
            splitter = StreamSplitter()
            splitters.append(splitter)

            def on_output(chunk: str) -> None:
                if passthrough:
                    err.write(masker.text(chunk))
                feed(splitter.feed(chunk))

            return on_output

        result = process.BuildResult(0)
        if any(self.setting.tmpdir in arg for inv in invocations for arg in inv.args):
            ensure_dir(self.setting.tmpdir)  # buildx is given files there (a bake file, an image ID, stand-ins)
        try:
            for inv in invocations:
                if inv.bake is not None and inv.bake_file is not None:
                    from .jsonlite import dumps  # (json loads re: ~5 ms before bake could start)

                    with open(inv.bake_file, "w") as f:
                        f.write(dumps(inv.bake))
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
            ok = result.exit_code == 0 and result.signal is None
        finally:
            if renderer is not None:
                renderer.close()
            if self.named is not None and not ok:
                self._take_back_names("was interrupted" if result.signal is not None
                                      else f"exited {result.exit_code}" if result.exit_code else "failed")
        return _Attempt(result, model, invocations[-1].iidfile)

    # -- naming the deploy image while buildx winds down -------------------------------------------

    def _refs(self) -> list[str]:
        return list(dict.fromkeys(self.cmd.values("tag")))

    def _naming_watch(self, invocations: list[Invocation]) -> frozenset[str] | None:
        """The stages the stream must show built before the deploy image is named while buildx still runs:
        one bake session that makes it unnamed, with nothing exported after the stages (a cache export could
        still fail the build). None: it is named after buildx exits, as ever."""
        if not self.setting.tag_after or len(invocations) != 1 or invocations[0].bake is None:
            return None
        if process.engine_socket() is None or any("@" in ref for ref in self._refs()):
            return None
        targets = invocations[0].bake["target"].values()
        if any("cache-to" in t for t in targets):
            return None
        return frozenset(str(t["target"]).lower() for t in targets)

    def _name_early(self, image: str) -> None:
        """Name the deploy image now that the stream showed every stage built, remembering what each name
        named before. When the engine cannot tell that, the naming waits for buildx's exit (_finalize)."""
        import json

        before: dict[str, str | None] = {}
        for ref in self._refs():
            got = process.engine_answer(f"/images/{ref}/json")
            if got is None or got[0] not in (b"200", b"404"):
                return
            try:
                before[ref] = str(json.loads(got[1])["Id"]) if got[0] == b"200" else None
            except (ValueError, KeyError, TypeError):
                return
        t0 = time.time()
        self.named = named = Named(image, (t0, t0), {})  # its `before` holds each name as it is given
        for ref, prev in before.items():
            if not process.engine_tag(image, ref):
                self._take_back_names(None)  # the names given so far; _finalize tries again after the exit
                return
            named.before[ref] = prev
        self.named = named._replace(span=(t0, time.time()))

    def _take_back_names(self, why: str | None) -> None:
        """After the deploy image was named, the build did not finish after all (`why`: buildx failed while
        winding down, or was interrupted): each name goes back to what it named before, and the build says
        so. A name the engine will not take back is a warning with the command that does."""
        named, self.named = self.named, None
        if named is None or not named.before:
            return
        lost = [(ref, prev) for ref, prev in named.before.items()
                if prev != named.image and not (process.engine_tag(prev, ref) if prev else process.engine_untag(ref))]
        if why is not None and not lost:
            self.say(f"bake {why} after every stage had passed: {', '.join(named.before)} taken back from the "
                     "deploy image")
        for ref, prev in lost:
            fix = f"docker tag {prev} {ref}" if prev else f"docker rmi {ref}"
            self.say(f"warning: {ref} still names the deploy image of a build that did not finish (the engine "
                     f"would not take the name back): run `{fix}`")

    def _started(self, model: BuildModel, render: bool, finalizing: bool) -> Renderer | None:
        """The first time buildx runs: the plan (when it was not needed to compose the command line), the
        history's start, the modules the build's end needs; and this attempt's renderer."""
        from . import files, overhead, render_report, report  # noqa: F401  (used after the build)

        if not self.early and self.plan is self.planning.EMPTY:
            self.setting = self.setting._replace(plan=self.planning.make(self.cmd))
        if self.hooks.on_start is not None:
            self.hooks.on_start(self.plan)
            self.hooks = self.hooks._replace(on_start=None)
        if not render:
            return None
        # The deploy image's build after every stage passed is one line, not every stage "waiting" again.
        single = f'deploy image "{self.plan.deploy.key}"' if finalizing and self.plan.deploy else None
        return make_renderer(self.mode, self.err, self.masker, model, [s.key for s in self.plan.closure],
                             self.hooks.baseline, single)

    def _stdin(self) -> IO[bytes] | None:
        """A fresh read of stdin for each attempt when the context or Dockerfile comes from it (`-`):
        the first attempt consumes it, so it is spooled to a file once."""
        if self.cmd.context != "-" and self.cmd.value("file") != "-":
            return None
        if self.stdin_copy is None:
            import shutil

            self.stdin_copy = os.path.join(ensure_dir(self.setting.tmpdir), "stdin")
            with open(self.stdin_copy, "wb") as f:
                shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
        return open(self.stdin_copy, "rb")

    # -- the build -----------------------------------------------------------------------------

    def run(self) -> BuildOutcome:
        started = time.time()
        iidfile = self.cmd.value("iidfile")
        if iidfile and "iidfile" not in self.setting.special:
            # As buildx does first: a failed build leaves no ID of an earlier one (with --stage, the build
            # that writes it may never run, or be none: _take_id).
            try:
                os.remove(iidfile)
            except FileNotFoundError:
                pass
            except OSError as e:  # buildx fails then too, in these words, before it builds
                raise BuildxError(f"removing image ID file: remove {iidfile}: "
                                  f"{(e.strerror or str(e)).lower()}") from e
        try:
            attempts = self._attempts(finalizing=False)
            a, export_errors = self._after_cache_trouble(attempts.last)
            self._settle_cache(a.ok and not export_errors)
            session, final = a, None
            if a.ok and self.plan.finalize:
                final = self._finalize(session)
                a = final.attempt
            finished = time.time()
            image_id = self._outputs(a) if a.ok else None
        finally:
            if self.named is not None:  # named, and then the build did not get to keep it (interrupted)
                self._take_back_names("was interrupted")
            remove_dir(self.setting.tmpdir)
        code = 128 + a.result.signal if a.result.signal is not None else a.result.exit_code
        # The stages' story is the session's; a failed finalize tells its own (the push that failed).
        model = session.model if (a.ok or a is session) else a.model
        report = self._report(model, code, started, finished, a.result.signal is not None, attempts,
                              export_errors, final)
        return BuildOutcome(code, a.model, image_id, report, a.result.signal, self.mode, self.masker, self.plan,
                            self.planning.evaluates(self.cmd))

    def _finalize(self, session: _Attempt) -> Finalized:
        """After every stage passed: tag the deploy image the session left unnamed in the engine (a few ms,
        against a second, cached build of ~0.4 s), else build it again, fully cached, with its tags and
        outputs."""
        from .progress import exported_digest

        assert self.plan.deploy is not None
        deploy = self.plan.deploy.key
        digest = exported_digest(session.model) if self.setting.tag_after else None
        named, self.named = self.named, None  # (another image: the tags below move the names to it)
        if named is not None and named.image == digest and self._take_id(digest):  # named while buildx wound down
            self.say(f'every stage passed: the deploy stage "{deploy}" image is now ' + ", ".join(named.before))
            return Finalized(session, named.span, 0, None)
        if digest is not None:
            if self.hooks.on_image is not None:
                self.hooks.on_image(digest)  # a no-op when the stream showed the export done (asked then)
            t0 = time.time()
            if all(process.engine_tag(digest, ref) for ref in self.cmd.values("tag")) and self._take_id(digest):
                self.say(f'every stage passed: the deploy stage "{deploy}" image is now '
                         + ", ".join(self.cmd.values("tag")))
                return Finalized(session, (t0, time.time()), 0, None)
        self.say(f'every stage passed: now the deploy stage "{deploy}" image'
                 + (" (tags, push)" if self.cmd.has("tag") or self.cmd.flag("push") else ""))
        t0 = time.time()
        again = self._attempts(finalizing=True)
        return Finalized(again.last, (t0, time.time()), len(again.last.model.steps), again)

    def _take_id(self, digest: str) -> bool:
        """-q and --iidfile: the named image's ID as the engine gives it, which is what buildx writes (the
        image's config digest on the classic store, its manifest's on the containerd store). False when the
        engine does not answer: the second build then writes them."""
        if not (self.setting.prints_id or self.cmd.has("iidfile")):
            return True
        got = process.engine_json(f"/images/{digest}/json", keep=True)  # the record's image facts read it too
        image_id = got.get("Id") if isinstance(got, dict) else None
        if not isinstance(image_id, str) or not image_id.startswith("sha256:"):
            return False
        self.image_id = image_id
        return True

    def _failure(self, a: _Attempt) -> FailureClass | None:
        """How an attempt failed, for the retry policy (None: it succeeded, or was interrupted). Classified
        once per attempt."""
        if not a.classified:
            a.classified = True
            if a.result.exit_code != 0 and a.result.signal is None:
                from .retry import classify_failure

                failed = a.model.failed_steps()
                a.failure = classify_failure("\n".join(a.model.text) or (failed[0].error or "" if failed else ""),
                                             failed[0].bare_name if failed else None,
                                             failed[0].logs if failed else ())
        return a.failure

    def _attempts(self, *, finalizing: bool) -> Attempts:
        """Attempts until one succeeds or fails for good: transient registry trouble is retried."""
        policy = self.policy
        started = time.monotonic()  # --retry-timeout counts from here
        retries: list[Retry] = []
        ran: list[_Attempt] = []

        def once() -> _Attempt:
            if retries and retries[-1].phase == "builder":
                self._wait_for_builder()
            ran.append(self.attempt(export=True, render=True, finalizing=finalizing))
            return ran[-1]

        # The first attempt runs without the retry machinery: the classifier's patterns cost a few ms to
        # compile, and most builds never need them. The same stop rule decides for it as for the others.
        first = once()
        if first.result.signal is not None:
            return Attempts(first, 1, retries, None)
        stop = stop_reason(self._failure(first), 1, policy)
        if stop is not None:
            return Attempts(first, 1, retries, stop)
        from .retry import run_with_retries

        def on_retry(r: Retry) -> None:
            retries.append(r)
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

        def stop_now(signum: int, _frame: object) -> None:
            raise _Stop(signum)

        # Between attempts no buildx runs: Ctrl-C or SIGTERM ends the build as an interrupted one (exit
        # 130/143, report written), not with a traceback.
        old = {s: signal.signal(s, stop_now) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            done = run_with_retries(once, self._failure, policy, on_retry, first=first,  # type: ignore[arg-type]
                                    started=started)
        except _Stop as e:
            last = ran[-1]
            return Attempts(_Attempt(process.BuildResult(last.result.exit_code, e.signum), last.model,
                                     last.iidfile), len(ran), retries, None)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        a: _Attempt = done.result  # type: ignore[assignment]
        if done.stop == "count":
            self.say(f"no retries left (--retries {policy.retries}): the build failed")
        elif done.stop == "cap":
            f = self._failure(a)
            self.say(f"not retrying again: {f.reason.split(' (', 1)[0] if f else 'this failure'} gets "
                     f"{f.cap if f else 1} retry at most: the build failed")
        elif done.stop == "timeout":
            self.say(f"retrying stopped: the next attempt would start after the --retry-timeout of "
                     f"{policy.timeout:g}s")
        return Attempts(a, len(ran), retries, None if a.result.signal is not None else done.stop)

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

    def _after_cache_trouble(self, a: _Attempt) -> tuple[_Attempt, list[str]]:
        """A builder that cannot export cache, or an export that failed, need not fail a good build. Returns
        the attempt that stands for the build and the cache export errors."""
        if a.result.exit_code == 0 or a.result.signal is not None:
            return a, []
        if self.setting.cache is None and not self.cmd.has("cache-to"):
            return a, []
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
            return self.attempt(export=False, render=True), [msg]
        failed = a.model.failed_steps()
        if failed and all(s.internal and cachemod.is_export_step(s.bare_name) for s in failed):
            errors = [f"{s.name}: {s.error}" for s in failed]
            if required:
                self.say("error: cache export failed and --cache-required was given: " + errors[0])
                return a, errors
            self.say("warning: cache export failed; the build itself succeeded: " + errors[0])
            # buildx writes its outputs (iidfile, metadata) only on success: get them from a silent run
            # without export (everything is cached by now, so it takes a moment).
            b = self.attempt(export=False, render=False)
            return _Attempt(b.result, a.model, b.iidfile), errors
        return a, []

    def _settle_cache(self, ok: bool) -> None:
        """--cache-dir's new versions swapped in after a good build, dropped after a failed one."""
        cache = self.setting.cache
        if cache is None:
            return
        from . import cache as cachemod

        pairs = [p for sc in cache.per_stage.values() for p in sc.swap]
        if ok:
            cachemod.swap_in(pairs, self.cache_lock)
        else:
            cachemod.discard(pairs)

    def _outputs(self, a: _Attempt) -> str | None:
        for flag, tmp in self.setting.special.items():  # buildx's stand-ins, copied to the special files
            path = str(self.cmd.value(flag))
            if os.path.exists(tmp):
                with open(tmp) as src, open(path, "w") as dst:
                    dst.write(src.read())

        image_id = None
        if a.iidfile and os.path.exists(a.iidfile):
            with open(a.iidfile) as f:
                image_id = f.read().strip()
        elif self.image_id is not None:  # named in the stages' session: no buildx wrote it
            image_id = self.image_id
            dest = self.cmd.value("iidfile")
            if dest:
                from .files import write_atomic

                write_atomic(dest, image_id)  # as buildx writes it: the ID, no newline
        if self.setting.prints_id and image_id:
            self.out.write(image_id + "\n")
            self.out.flush()
        return image_id

    def _report(self, model: BuildModel, exit_code: int, started: float, finished: float, interrupted: bool,
                attempts: Attempts, export_errors: list[str], final: Finalized | None) -> Report:
        from .report import build_report, normalize_image

        plan, cmd, cache = self.plan, self.cmd, self.setting.cache
        graph = plan.graph
        # An evaluation (--call check, --print) runs no stage: none is expected, none reported as cached.
        closure = [] if self.planning.evaluates(cmd) else [s.key for s in plan.closure]
        single = closure[0] if len(closure) == 1 else (graph.default.key if graph else None)
        tags = cmd.values("tag") if (plan.builds_deploy or not plan.selected) and not cmd.flag("cache-only") else []
        outputs = cmd.values("output")
        pushes = cmd.flag("push") or any("type=registry" in o or "push=true" in o for o in outputs)
        pushed = tags if (pushes and exit_code == 0) else []
        exported = [] if (exit_code != 0 or export_errors or cache is None) else cache.exported_to
        # The second build's retries and stop are the build's when it ran; its attempts add to the count.
        again = final.attempts if final is not None else None
        retries = [*attempts.retries, *(again.retries if again else [])]
        image_stages: dict[str, str] = {}
        for st in (plan.closure or (graph.stages if graph else ())):
            for img in st.images:
                image_stages.setdefault(normalize_image(img), st.key)
        return build_report(model, exit_code=exit_code, stage_order=graph.names if graph else None,
                            expected=closure or None, single_stage=single, started=started, finished=finished,
                            tags=tags, interrupted=interrupted,
                            cache_imported=[*cmd.values("cache-from"), *(cache.imports if cache else [])],
                            cache_exported=exported, cache_errors=export_errors, notes=self.notes,
                            attempts=again.runs if again else attempts.runs, pushed=pushed,
                            retry_stop=again.stop if again else attempts.stop,
                            finalize=final.span if final else None, finalize_steps=final.steps if final else 0,
                            retries=[{"attempt": r.attempt, "phase": r.phase, "reason": r.reason, "wait_s": r.wait_s}
                                     for r in retries], image_stages=image_stages)


def say(line: str, mode: str, masker: Masker, err: TextIO | None = None) -> None:
    """One line of sbuild's own, masked. -q (--progress=quiet) prints only what buildx prints in quiet mode:
    sbuild's errors, nothing else."""
    if mode == "quiet" and not line.startswith("error"):
        return
    (err or sys.stderr).write(f"sbuild: {masker.text(line)}\n")


class Hooks(NamedTuple):
    """What the history asks of a build (cli.py): a call once buildx runs, and the baseline's stage times for
    the live view."""

    on_start: Callable[[Plan], None] | None = None
    baseline: Callable[[], dict[str, float] | None] | None = None
    on_image: Callable[[str], None] | None = None  # the deploy image's ID, once it is in the engine unnamed


def run(cmd: BuildCommand, *, err: TextIO | None = None, out: TextIO | None = None,
        notes: list[str] | None = None, hooks: Hooks | None = None) -> BuildOutcome:
    """Build as the command line says. Progress is rendered by sbuild; the exit code is buildx's."""
    err = err or sys.stderr
    prepared = prepare(cmd, notes or [], err)
    return _Build(prepared, err, out or sys.stdout, hooks or Hooks()).run()
