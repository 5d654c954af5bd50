"""The build: turn a parsed command line into a buildx run, render progress, return the outcome.

On every build's start-up path: imports stay light (no pathlib, tempfile, dataclasses, logging).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Protocol, TextIO

from . import process
from .errors import UsageError
from .flags import BuildCommand
from .mask import Masker

if TYPE_CHECKING:
    from .progress import BuildModel, StreamSplitter, Update
    from .report import Report

PROGRESS_MODES = ("auto", "plain", "tty", "quiet", "rawjson")


class BuildOutcome:
    __slots__ = ("exit_code", "image_id", "masker", "mode", "model", "report", "signal")

    def __init__(self, exit_code: int, model: BuildModel, image_id: str | None, report: Report,
                 signal: int | None, mode: str, masker: Masker) -> None:
        self.exit_code = exit_code  # buildx's, or 128+signal when interrupted
        self.model = model
        self.image_id = image_id
        self.report = report
        self.signal = signal
        self.mode = mode  # the progress mode used (plain, tty, quiet, rawjson)
        self.masker = masker


def is_remote_context(ctx: str) -> bool:
    return "://" in ctx or ctx.startswith(("git@", "github.com/"))


def check_inputs(cmd: BuildCommand) -> None:
    """Fail fast, without contacting the engine, on a context or Dockerfile that is not there."""
    ctx = cmd.context
    if ctx != "-" and not is_remote_context(ctx):
        if not os.path.exists(ctx):
            raise UsageError(f'build context "{ctx}" not found: give the directory to build (default: .)')
        if not os.path.isdir(ctx):
            raise UsageError(f'build context "{ctx}" is not a directory')
    dockerfile = cmd.value("file")
    if dockerfile == "-" or is_remote_context(ctx) or ctx == "-":
        return
    path = dockerfile or os.path.join(ctx, "Dockerfile")
    if not os.path.isfile(path):
        hint = "pass -f FILE" if not dockerfile else "check the -f path (relative to the current directory)"
        raise UsageError(f'Dockerfile "{path}" not found: {hint}')


def progress_mode(cmd: BuildCommand) -> str:
    mode = cmd.value("progress") or os.environ.get("BUILDKIT_PROGRESS") or "auto"
    if mode not in PROGRESS_MODES:
        raise UsageError(f'invalid --progress "{mode}": use one of {", ".join(PROGRESS_MODES)}')
    if cmd.flag("quiet"):
        if cmd.has("progress") and mode not in ("auto", "quiet"):
            raise UsageError(f"--progress={mode} and --quiet cannot be used together")
        return "quiet"
    if mode == "auto":
        return "tty" if sys.stderr.isatty() else "plain"
    return mode


def masker_for(cmd: BuildCommand) -> Masker:
    return Masker.for_build(cmd.values("build-arg"), cmd.values("secret"))


class Renderer(Protocol):
    """What a progress renderer implements (plain, tty)."""

    def update(self, u: Update) -> None: ...

    def finish(self, model: BuildModel) -> None: ...

    def close(self) -> None: ...


def make_renderer(mode: str, err: TextIO, masker: Masker, model: BuildModel, stages: list[str]) -> Renderer | None:
    if mode in ("quiet", "rawjson"):
        return None
    if mode == "tty":
        from .render_tty import TtyRenderer

        return TtyRenderer(err, masker, model, stages)
    from .render_plain import PlainRenderer

    return PlainRenderer(err, masker)


def image_id_from_metadata(md: dict[str, object]) -> str | None:
    """What buildx writes to --iidfile: the config digest, or the image digest (containerd store)."""
    v = md.get("containerimage.config.digest") or md.get("containerimage.digest")
    return str(v) if v else None


def run(cmd: BuildCommand, *, err: TextIO | None = None, out: TextIO | None = None) -> BuildOutcome:
    """Build as the command line says: one `buildx build`, or one `buildx bake` session for several
    stages. Progress is rendered by sbuild; the exit code is buildx's."""
    import json

    from . import plan as planning

    err = err or sys.stderr
    out = out or sys.stdout
    check_inputs(cmd)
    mode = progress_mode(cmd)
    early = planning.needs_graph_first(cmd)
    plan = planning.make(cmd) if early else planning.EMPTY
    masker = masker_for(cmd)
    for note in plan.notes:
        err.write(f"sbuild: {masker.text(note)}\n")

    tmpdir = None
    iidfile = cmd.value("iidfile")
    metafile = None  # bake's metadata, when sbuild must derive the deploy image's from it

    def tmp(name: str) -> str:
        nonlocal tmpdir
        if tmpdir is None:
            import tempfile

            tmpdir = tempfile.mkdtemp(prefix="sbuild-")
        return os.path.join(tmpdir, name)

    if plan.bake is not None:
        subcommand: tuple[str, ...] = ("buildx", "bake")
        bake_file = tmp("bake.json")
        with open(bake_file, "w") as f:
            json.dump(plan.bake, f)
        metafile = tmp("metadata.json")
        args = ["--file", bake_file, *planning.bake_flags(cmd, plan), f"--metadata-file={metafile}",
                "--progress=rawjson"]
    else:
        subcommand = ("buildx", "build")
        extra, drop = planning.single_stage_args(cmd, plan) if plan.selected else ([], frozenset[str]())
        args = cmd.buildx_args(drop=drop | {"progress", "quiet"})
        if cmd.flag("quiet") and not iidfile and "iidfile" not in drop:
            iidfile = tmp("iid")
            args.append(f"--iidfile={iidfile}")
        args += [*extra, "--progress=rawjson", "--", cmd.context]

    model: BuildModel
    splitter: StreamSplitter
    renderer: Renderer | None = None
    passthrough = mode == "rawjson"

    def spawned() -> None:
        # Runs while buildx starts up (its CLI takes >100 ms before the first event): everything
        # not needed to compose buildx's command line is imported and prepared here, off the clock.
        nonlocal plan, renderer, model, splitter
        from . import render_report, report  # noqa: F401  (used after the build)
        from .progress import BuildModel, StreamSplitter

        model, splitter = BuildModel(), StreamSplitter()
        if not early:
            plan = planning.make(cmd)
        renderer = make_renderer(mode, err, masker, model, [s.key for s in plan.closure])

    def feed(items: list[dict[str, object] | str]) -> None:
        for item in items:
            ups = model.apply_text(item) if isinstance(item, str) else model.apply(item)
            if renderer is not None:
                for u in ups:
                    renderer.update(u)

    def on_output(chunk: str) -> None:
        if passthrough:
            err.write(masker.text(chunk))
        feed(splitter.feed(chunk))

    started = time.time()
    image_id = None
    try:
        result = process.run_build(args, on_output, masker=masker, subcommand=subcommand, on_spawn=spawned)
        feed(splitter.close())
        model.finish_logs()
        finished = time.time()

        if result.exit_code != 0 and model.events == 0:
            diag = process.diagnose(result.exit_code, "\n".join(model.text))
            if diag is not None:
                raise diag
        if renderer is not None:
            renderer.finish(model)
        elif mode == "quiet" and result.exit_code != 0:
            for line in model.text:  # buildx -q prints its error and nothing else
                err.write(masker.text(line) + "\n")

        if result.exit_code == 0 and result.signal is None:
            if metafile is not None:
                image_id = _deploy_metadata(cmd, plan, metafile, iidfile)
            elif iidfile and os.path.exists(iidfile):
                with open(iidfile) as f:
                    image_id = f.read().strip()
            if cmd.flag("quiet") and image_id:
                out.write(image_id + "\n")
                out.flush()
    finally:
        if renderer is not None:
            renderer.close()
        if tmpdir is not None:
            import shutil

            shutil.rmtree(tmpdir, ignore_errors=True)
    exit_code = 128 + result.signal if result.signal is not None else result.exit_code
    report = make_report(cmd, plan, model, exit_code, started, finished, result.signal is not None)
    return BuildOutcome(exit_code, model, image_id, report, result.signal, mode, masker)


def make_report(cmd: BuildCommand, plan: object, model: BuildModel, exit_code: int, started: float,
                finished: float, interrupted: bool) -> Report:
    from .plan import Plan
    from .report import build_report

    assert isinstance(plan, Plan)
    graph = plan.graph
    closure = [s.key for s in plan.closure]
    single = closure[0] if len(closure) == 1 else (graph.default.key if graph else None)
    tags = cmd.values("tag") if (not plan.selected or plan.deploy is not None) else []
    return build_report(model, exit_code=exit_code, stage_order=graph.names if graph else None,
                        expected=closure or None, single_stage=single, started=started, finished=finished,
                        tags=tags, interrupted=interrupted)


def _deploy_metadata(cmd: BuildCommand, plan: object, metafile: str, iidfile: str | None) -> str | None:
    """After a bake session: write the deploy image's --metadata-file and --iidfile as buildx build would."""
    import json

    from .files import write_atomic
    from .plan import Plan, bake_target_name

    assert isinstance(plan, Plan)
    if plan.deploy is None or not os.path.exists(metafile):
        return None
    with open(metafile) as f:
        md = json.load(f).get(bake_target_name(plan.deploy), {})
    image_id = image_id_from_metadata(md)
    user_md = cmd.value("metadata-file")
    if user_md:
        write_atomic(user_md, json.dumps(md, indent=2))
    if iidfile and image_id:
        write_atomic(iidfile, image_id)
    return image_id
