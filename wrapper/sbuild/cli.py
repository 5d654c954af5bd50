"""sbuild's command line: parse, call one core function, render, map errors to exit codes.

`sbuild [OPTIONS] [PATH]` is `docker buildx build`; `sbuild stages` and `sbuild warm` are commands
of their own. The build path avoids importing anything heavy: its start-up adds to every build.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__, flags
from .errors import SbuildError, UsageError

if TYPE_CHECKING:
    from . import build

SUBCOMMANDS = ("stages",)


def _fail(e: SbuildError) -> int:
    from .errors import BuildxError, BuildxUsageError, DockerfileError

    if isinstance(e, BuildxUsageError):  # buildx's own words, as its flag parser prints them
        sys.stderr.write(f"{e.message}\nSee 'sbuild --help'.\n")
        return e.exit_code
    if isinstance(e, BuildxError):
        sys.stderr.write(f"ERROR: {e.message}\n")
        return e.exit_code
    where = f"{e.file}: " if isinstance(e, DockerfileError) else ""
    sys.stderr.write(f"error: {where}{e.message}\n")
    return e.exit_code


def with_config(argv: list[str]) -> tuple[flags.BuildCommand, list[str]]:
    """The command line with the project config applied (flags override it), tag rules expanded, and
    every tag checked against Docker's reference grammar before anything runs. Returns notes to show."""
    import os

    from . import flags
    from .installed import buildx

    cmd = flags.parse(argv, buildx)
    notes: list[str] = []
    if cmd.flag("help"):
        return cmd, notes
    from . import config

    path = cmd.dockerfile
    cfg = config.load(os.path.dirname(path) or ".", cmd.context) if path is not None else None
    if cfg is not None:
        given = {f.name for f, _ in cmd.options}
        if "target" in given:
            given.add("stage")  # config stages are for builds without --target
        extra = config.as_flags(cfg, given)
        rules = cfg.values.get("tags")
        if rules and not cmd.has("tag"):
            image = cfg.values.get("image")
            if not image:
                raise UsageError(f"{cfg.path}: tags needs image (the name the tag rules apply to)")
            import time

            from . import gitinfo, tags

            where = cmd.context if os.path.isdir(cmd.context) else "."
            facts = gitinfo.facts(where, cmd.value("branch"), cmd.value("default-branch") or
                                  cfg.values.get("default-branch"))
            refs, skipped = tags.expand(rules, image, facts, os.environ, time.strftime("%Y%m%d", time.gmtime()))
            notes += skipped
            extra += [f"--tag={r}" for r in refs]
        if extra:
            cmd = flags.parse(extra + argv, buildx)
    if cmd.has("tag"):
        from .tags import check_reference

        for t in cmd.values("tag"):
            check_reference(t)
    return cmd, notes


def build_main(argv: list[str]) -> int:
    from . import flags

    cmd, notes = with_config(argv)
    if cmd.flag("help"):
        sys.stdout.write(flags.help_text())
        return 0
    from . import build

    outcome = build.run(cmd, notes=notes)
    write_outputs(cmd, outcome)
    if outcome.signal is not None:
        import signal

        sys.stderr.write(f"error: interrupted by {signal.Signals(outcome.signal).name}: build canceled\n")
    return outcome.exit_code


def write_outputs(cmd: flags.BuildCommand, outcome: build.BuildOutcome) -> None:
    """The end-of-build table and the report files; every secret masked."""
    import os

    from . import render_report as rr
    from .files import append, write_atomic

    report, mask = outcome.report, outcome.masker.text
    if outcome.mode in ("plain", "tty") and (report.stages or report.failure or report.progress != "ok"):
        sys.stderr.write("\n" + mask(rr.terminal(report)))
    path = cmd.value("report")
    if path:
        write_atomic(path, mask(rr.json_text(report)))
    path = cmd.value("trace")
    if path:
        import json

        write_atomic(path, mask(json.dumps(rr.trace(report))))
    md = None
    path = cmd.value("summary")
    if path:
        md = mask(rr.markdown(report))
        write_atomic(path, md)
    gh = os.environ.get("GITHUB_STEP_SUMMARY")
    if gh:
        append(gh, md or mask(rr.markdown(report)))


def warm_main(argv: list[str]) -> int:
    """`sbuild warm [OPTIONS] [PATH]`: build every stage (or the --stage ones) into the cache, no image."""
    cmd, _ = with_config(argv)
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
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args in (["--version"], ["version"]):
            sys.stdout.write(f"sbuild {__version__}\n")
            return 0
        if args and args[0] in SUBCOMMANDS:
            from .commands import cli_group

            return cli_group(args)
        if args and args[0] == "warm":
            return warm_main(args[1:])
        if args and args[0] == "build":
            args = args[1:]
        return build_main(args)
    except SbuildError as e:
        return _fail(e)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
