"""The build: turn a parsed command line into buildx runs, render progress, return the outcome."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from . import process
from .errors import UsageError
from .flags import BuildCommand
from .mask import Masker
from .progress import BuildModel, StreamSplitter

PROGRESS_MODES = ("auto", "plain", "tty", "quiet", "rawjson")


@dataclass
class BuildOutcome:
    exit_code: int
    model: BuildModel
    image_id: str | None = None
    started: float = 0.0
    finished: float = 0.0
    notes: list[str] = field(default_factory=list)


def is_remote_context(ctx: str) -> bool:
    return ctx.startswith(("http://", "https://", "git://", "git@", "github.com/")) or "://" in ctx


def check_inputs(cmd: BuildCommand) -> None:
    """Fail fast, without contacting the engine, on a context or Dockerfile that is not there."""
    ctx = cmd.context
    if ctx != "-" and not is_remote_context(ctx):
        if not Path(ctx).exists():
            raise UsageError(f'build context "{ctx}" not found: give the directory to build (default: .)')
        if not Path(ctx).is_dir():
            raise UsageError(f'build context "{ctx}" is not a directory')
    dockerfile = cmd.value("file")
    if dockerfile == "-" or is_remote_context(ctx) or ctx == "-":
        return
    path = Path(dockerfile) if dockerfile else Path(ctx) / "Dockerfile"
    if not path.is_file():
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


def run(cmd: BuildCommand, *, err: TextIO | None = None, out: TextIO | None = None,
        extra_args: list[str] | None = None, drop: frozenset[str] = frozenset()) -> BuildOutcome:
    """One `docker buildx build`, with sbuild's progress rendering. Returns buildx's exit code."""
    import time

    err = err or sys.stderr
    out = out or sys.stdout
    check_inputs(cmd)
    mode = progress_mode(cmd)
    masker = masker_for(cmd)
    quiet = mode == "quiet"

    iidfile = cmd.value("iidfile")
    tmpdir = None
    args = cmd.buildx_args(drop=drop | {"progress", "quiet"})
    if cmd.flag("quiet") and not iidfile:
        tmpdir = tempfile.mkdtemp(prefix="sbuild-")
        iidfile = os.path.join(tmpdir, "iid")
        args.append(f"--iidfile={iidfile}")
    args += list(extra_args or ())
    args += ["--progress=rawjson", "--", cmd.context]

    model = BuildModel()
    splitter = StreamSplitter()
    renderer = _renderer(mode, err, masker)
    passthrough = mode == "rawjson"

    def feed(items: list[dict[str, object] | str]) -> None:
        for item in items:
            ups = model.apply_text(item) if isinstance(item, str) else model.apply(item)
            if renderer is not None:
                for u in ups:
                    renderer.update(u)
            elif quiet and isinstance(item, str):
                model.text  # kept in the model; printed at the end

    def on_output(chunk: str) -> None:
        if passthrough:
            err.write(masker.text(chunk))
        feed(splitter.feed(chunk))

    started = time.time()
    try:
        result = process.run_build(args, on_output, masker=masker)
    finally:
        if tmpdir is None:
            pass
    feed(splitter.close())
    model.finish_logs()
    finished = time.time()

    if result.exit_code != 0 and model.events == 0:
        diag = process.diagnose(result.exit_code, "\n".join(model.text))
        if diag is not None:
            raise diag
    if renderer is not None:
        renderer.finish(model.failed_steps())
    elif quiet and result.exit_code != 0:
        for line in model.text:
            err.write(masker.text(line) + "\n")
    process.raise_if_interrupted(result)

    image_id = None
    if iidfile and result.exit_code == 0 and os.path.exists(iidfile):
        image_id = Path(iidfile).read_text().strip()
        if cmd.flag("quiet"):
            out.write(image_id + "\n")
            out.flush()
    if tmpdir is not None:
        import shutil

        shutil.rmtree(tmpdir, ignore_errors=True)
    return BuildOutcome(result.exit_code, model, image_id, started, finished)


def _renderer(mode: str, err: TextIO, masker: Masker):  # type: ignore[no-untyped-def]
    if mode in ("quiet", "rawjson"):
        return None
    from .render_plain import PlainRenderer

    return PlainRenderer(err, masker)
