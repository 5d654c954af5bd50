"""sbuild's command line: parse, call one core function, render, map errors to exit codes.

`sbuild [OPTIONS] [PATH]` is `docker buildx build`; `sbuild stages`, `sbuild warm` and `sbuild version`
are commands of their own. One rule keeps every `docker build` line meaning what it meant: a first word
that names an existing directory is the build context (`sbuild build -t emu` with a `build/` directory
builds it, as `docker build build -t emu` does); otherwise a command's name is the command. `sbuildctl`
(ctl_main) always reads its first word as a command, so every command is reachable in every directory.
The build path avoids importing anything heavy: its start-up adds to every build.
"""

from __future__ import annotations

import sys

from . import __version__, flags
from ._tuple import TYPE_CHECKING
from .errors import SbuildError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from . import build, record, report

# Commands; "build" is docker's verb, so `sbuild build -t x .` works as `docker build -t x .` does.
COMMANDS = ("build", "cache", "diff", "doctor", "explain", "history", "stages", "version", "warm")


def _fail(e: SbuildError) -> int:
    from .errors import BuildxError, BuildxUsageError, DockerfileError
    from .process import debug

    if e.evidence:
        debug(f"what docker said: {e.evidence.strip()[-2000:]}")  # SBUILD_LOG=debug

    if isinstance(e, BuildxUsageError):  # buildx's own words, as its flag parser prints them
        sys.stderr.write(f"{e.message}\nSee 'sbuild --help'.\n")
        return e.exit_code
    if isinstance(e, BuildxError):
        sys.stderr.write(f"ERROR: {e.message}\n")
        return e.exit_code
    where = f"{e.file}: " if isinstance(e, DockerfileError) else ""
    sys.stderr.write(f"error: {where}{e.message}\n")
    return e.exit_code


def build_main(argv: list[str]) -> int:
    from . import flags
    from .resolve import resolve

    cmd, notes = resolve(argv)
    if cmd.flag("help"):
        sys.stdout.write(flags.help_text())
        return 0
    from . import build

    recorder = _recorder(cmd)  # checks --baseline/--history-keep before anything runs
    hooks = build.Hooks(recorder.start, recorder.baseline_times, recorder.deploy_image) if recorder else build.Hooks()
    outcome = build.run(cmd, notes=notes, hooks=hooks)
    if recorder is not None:
        outcome.report = _record(cmd, outcome, recorder)
    written = write_outputs(cmd, outcome)
    if outcome.signal is not None:
        import signal

        sys.stderr.write(f"error: interrupted by {signal.Signals(outcome.signal).name}: build canceled\n")
    # An output that could not be written fails a good build; a failed one keeps buildx's code.
    return outcome.exit_code if outcome.exit_code != 0 or written else 1


def _record(cmd: flags.BuildCommand, outcome: build.BuildOutcome, recorder: record.Recorder) -> report.Report:
    """The report compared with its baseline, and the build recorded. Never fails the build."""
    import os

    from .progress import exported_digest
    from .record import Builder, Image, image_facts

    def image(builder: Builder) -> Image | None:
        # An image someone named: the deploy image's digest, size and layers are worth the engine's
        # ~15 ms (or the registry's) only when it was tagged or pushed.
        if not outcome.report.tags and not outcome.report.pushed:
            return None
        # The engine sbuild would ask (DOCKER_HOST) is the builder's only when no other builder is named:
        # a --builder (another engine's context, a remote BuildKit) keeps its image where sbuild cannot look.
        named = cmd.value("builder") or os.environ.get("BUILDX_BUILDER")
        local = builder.driver if named in (None, "", "default") else None
        return image_facts(cmd, exported_digest(outcome.model), list(outcome.report.pushed), local)

    def say(line: str) -> None:
        if outcome.mode != "quiet":  # -q prints what buildx -q prints
            sys.stderr.write(f"sbuild: {outcome.masker.text(line)}\n")

    try:
        return recorder.finish(outcome, image, say)
    except Exception as e:  # a defect here must not cost the build: say it, keep buildx's outcome
        from .process import debug

        debug(f"history: {e!r}")
        say(f"warning: history: not recorded ({type(e).__name__}: {e})")
        return outcome.report


def _recorder(cmd: flags.BuildCommand) -> record.Recorder | None:
    """The history's part in this build, or None: --no-history without an explicit --baseline."""
    keep_text = cmd.value("history-keep")
    keep = 500
    if keep_text is not None:
        try:
            keep = int(keep_text)
        except ValueError:
            keep = -1
        if keep < 1:
            raise UsageError(f'invalid --history-keep "{keep_text}": give a whole number of builds, 1 or more')
    wanted = cmd.value("baseline") or "auto"
    save = not cmd.flag("no-history")
    if not save and wanted in ("auto", "none"):
        return None
    explicit = None if wanted in ("auto", "none") else _explicit_baseline(wanted)
    from .record import Recorder

    return Recorder(cmd, keep=keep, save=save, auto_baseline=save and wanted == "auto",
                    explicit_baseline=explicit)


def _explicit_baseline(wanted: str) -> tuple[dict[str, object], str]:
    """--baseline FILE.json (a record from `sbuild history show --json`, or a --report file) or an ID."""
    import json
    import os

    if wanted.endswith(".json") or os.sep in wanted or os.path.isfile(wanted):
        try:
            with open(wanted) as f:
                doc = json.load(f)
        except OSError as e:
            raise UsageError(f'--baseline "{wanted}": {e.strerror}: give a record or report JSON file, a history '
                             "ID, auto or none") from None
        except ValueError:
            raise UsageError(f'--baseline "{wanted}": not JSON: give a record (sbuild history show ID --json) '
                             "or a report (--report FILE)") from None
        if isinstance(doc, dict) and isinstance(doc.get("report"), dict) and "id" in doc:
            return doc, "file"
        if isinstance(doc, dict) and isinstance(doc.get("stages"), list) and "schema_version" in doc:
            return {"id": doc.get("id") or os.path.basename(wanted), "branch": None, "commit": None,
                    "finished_at": None, "image": doc.get("image"), "report": doc}, "file"
        raise UsageError(f'--baseline "{wanted}": neither a history record nor an sbuild report')
    from .history import Store, StoreError, default_path

    store = Store(default_path())
    try:
        got = store.get(wanted)
    except StoreError as e:
        raise UsageError(f"--baseline: {e}") from None
    finally:
        store.close()
    if got is None:
        raise UsageError(f'--baseline "{wanted}": no such build in the history (`sbuild history` lists them; '
                         "or give auto, none, or a JSON file)")
    return got, "local"


def write_outputs(cmd: flags.BuildCommand, outcome: build.BuildOutcome) -> bool:
    """The end-of-build table and the report files; every secret masked. A file that cannot be written (a
    full disk, permissions changed during the build) is never silent: one error line naming it, and False
    (each file is written whole or not at all: write_atomic)."""
    import os

    from . import render_report as rr
    from .files import append
    from .files import write_atomic as _write

    report, mask = outcome.report, outcome.masker.text
    ok = True

    def write_atomic(path: str, text: str, flag: str = "") -> None:
        nonlocal ok
        try:
            _write(path, text)
        except OSError as e:
            ok = False
            sys.stderr.write(f"error: could not write {flag or 'file'} {path}: {e.strerror or e}\n")

    if outcome.mode in ("plain", "tty") and (report.stages or report.failure or report.progress != "ok"):
        width = 200  # a CI log keeps whole lines; a terminal's width cuts the WHY column to fit
        if sys.stderr.isatty():
            import shutil  # ~4 ms with its compression modules: only for a terminal

            width = shutil.get_terminal_size((100, 24)).columns
        sys.stderr.write("\n" + mask(rr.terminal(report, width=max(80, width))))
    path = cmd.value("report")
    if path:
        write_atomic(path, mask(rr.json_text(report)), "--report")
    path = cmd.value("trace")
    if path:
        import json

        write_atomic(path, mask(json.dumps(rr.trace(report))), "--trace")
    path = cmd.value("html")
    if path:
        from .render_html import build_page

        asked = ", ".join(s.name for s in report.stages) or "build"
        write_atomic(path, mask(build_page(report, f"sbuild: {asked} {report.status}")), "--html")
    md = None
    path = cmd.value("summary")
    if path:
        md = mask(rr.markdown(report))
        write_atomic(path, md, "--summary")
    gh = os.environ.get("GITHUB_STEP_SUMMARY")
    if gh and summary_wanted(os.environ):
        try:
            append(gh, md or mask(rr.markdown(report)))
        except OSError as e:
            ok = False
            sys.stderr.write(f"error: could not append to $GITHUB_STEP_SUMMARY {gh}: {e.strerror or e}\n")
    return ok


def summary_wanted(env: Mapping[str, str]) -> bool:
    """The GitHub step summary, unless turned off as build-push-action's is (DOCKER_BUILD_SUMMARY=false) or
    with SBUILD_SUMMARY=false."""
    off = {"0", "f", "false", "no", "off"}
    return not any(env.get(k, "").strip().lower() in off for k in ("DOCKER_BUILD_SUMMARY", "SBUILD_SUMMARY"))


def warm_main(argv: list[str]) -> int:
    """`sbuild warm [OPTIONS] [PATH]`: build every stage (or the --stage ones) into the cache, no image."""
    from .resolve import resolve

    cmd, _ = resolve(argv)
    if cmd.flag("help"):
        sys.stdout.write("Usage: sbuild warm [--stage NAME ...] (--cache-repo REF | --cache-dir DIR | --cache-to SPEC)"
                         " [build options] [PATH]\n\nBuild every stage (or the given ones) and export their cache; "
                         "no image is produced.\nExits non-zero only if a stage fails or, with --cache-required, "
                         "its cache was not exported.\n")
        return 0
    if not any(cmd.has(f) for f in ("cache-repo", "cache-dir", "cache-to")):
        raise UsageError("sbuild warm needs somewhere to put the cache: --cache-repo REF, --cache-dir DIR or "
                         "--cache-to SPEC")
    if cmd.has("target"):
        raise UsageError("sbuild warm takes --stage, not --target")
    extra = ["--cache-only"]
    if not any(f.name == "stage" for f, _ in flags.parse(argv).options):  # config stages do not limit warm
        from .plan import load_graph

        graph = load_graph(cmd, required=True)
        assert graph is not None
        extra += ["--stage", ",".join(graph.names)]
    return build_main([*extra, *argv])


def main(argv: Sequence[str] | None = None) -> int:
    """`sbuild`: a build, or a command when the first word names one and is not a directory here."""
    args = list(sys.argv[1:] if argv is None else argv)
    import os

    if args and args[0] in COMMANDS and not os.path.isdir(args[0]):
        return _guarded(lambda: _command(args[0], args[1:]))
    if args == ["--version"]:
        return _guarded(lambda: _command("version", []))
    return _guarded(lambda: build_main(args))


def run() -> None:
    """The `sbuild` executable: main(), then exit without the interpreter's teardown (~8 ms of module
    finalization, added to every build): by now every file sbuild wrote is closed and the history's store
    too; only the standard streams need a flush. Under coverage the normal exit stays (it saves its data)."""
    code = main()
    _exit(code)


def ctl_run() -> None:
    """The `sbuildctl` executable (see run)."""
    _exit(ctl_main())


def _exit(code: int) -> None:
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 141
    except OSError as e:  # stdout on a full disk: say so where possible, never silently
        code = code or 1
        try:
            sys.stderr.write(f"error: could not write the output: {e.strerror or e}\n")
            sys.stderr.flush()
        except OSError:
            pass
    if "coverage" in sys.modules:
        sys.exit(code)
    os._exit(code)


def ctl_main(argv: Sequence[str] | None = None) -> int:
    """`sbuildctl COMMAND ...`: the commands, whatever directories are here."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write("Usage: sbuildctl COMMAND [ARGS]\n\nCommands: " + ", ".join(COMMANDS) +
                         "\n(sbuild COMMAND does the same where no directory is named like the command)\n")
        return 0 if args else 2
    if args[0] not in COMMANDS:
        return _fail(UsageError(f'unknown command "{args[0]}": use one of {", ".join(COMMANDS)}'))
    return _guarded(lambda: _command(args[0], args[1:]))


def _command(name: str, rest: list[str]) -> int:
    if name == "version":
        sys.stdout.write(f"sbuild {__version__}\n")
        return 0
    if name == "build":
        return build_main(rest)
    if name == "warm":
        return warm_main(rest)
    from .commands import cli_group

    return cli_group([name, *rest])


def _guarded(run: Callable[[], int]) -> int:
    """The one error-to-exit-code path."""
    try:
        return run()
    except SbuildError as e:
        return _fail(e)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except BrokenPipeError:
        return 141
    except Exception as e:  # a defect: one line, not a traceback (SBUILD_LOG=debug shows it)
        import traceback

        from .process import debug

        debug(traceback.format_exc())
        sys.stderr.write(f"error: internal error: {type(e).__name__}: {e} (SBUILD_LOG=debug shows where; "
                         "please report it)\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
