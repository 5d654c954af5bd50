"""Subcommands (`sbuild stages`, `sbuild warm`): parse with click, call one core function, render."""

from __future__ import annotations

import json
import os
import sys
import tempfile

import click

from .errors import SbuildError, UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """sbuild subcommands."""


@cli.command()
@click.argument("path", default=".", required=False)
@click.option("-f", "--file", "file", metavar="FILE", help='Dockerfile (default: "PATH/Dockerfile")')
@click.option("--build-arg", "build_args", multiple=True, metavar="K=V", help="Set a build-time variable")
@click.option("--platform", default=None, help="Target platform (for TARGETPLATFORM in FROM)")
@click.option("--deploy-stage", default=None, metavar="NAME", help="The stage that ships (default: the last)")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON form")
def stages(path: str, file: str | None, build_args: tuple[str, ...], platform: str | None,
           deploy_stage: str | None, as_json: bool) -> None:
    """List the stages of a Dockerfile: base, what each needs, description."""
    from . import stages as st
    from .flags import build_arg_map, parse
    from .mask import Masker
    from .render_stages import render_table

    cmd = parse([*(["--file", file] if file else []), path])
    with tempfile.TemporaryDirectory(prefix="sbuild-") as tmp:
        if cmd.dockerfile_url:
            from .files import download

            download(cmd.dockerfile_url, os.path.join(tmp, "Dockerfile"))
            dockerfile: str | None = os.path.join(tmp, "Dockerfile")
        else:
            dockerfile = cmd.dockerfile  # PATH/Dockerfile, or a lower-case dockerfile as buildx takes it
        if dockerfile is None or not os.path.isfile(dockerfile):
            raise UsageError(f'Dockerfile "{dockerfile or file}" not found: pass -f FILE')
        graph = st.read(dockerfile, build_args=build_arg_map(build_args), target_platform=platform)
    if deploy_stage and graph.find(deploy_stage) is None:
        raise UsageError(st.unknown_stage_message(deploy_stage, graph))
    deploy = graph.find(deploy_stage).key if deploy_stage else None  # type: ignore[union-attr]
    masker = Masker.for_build(build_args, ())
    if as_json:
        text = json.dumps(st.to_json(graph, deploy), indent=2)
        click.echo(masker.text(text))
    else:
        click.echo(masker.text(render_table(graph, deploy)), nl=False)


def cli_group(args: list[str]) -> int:
    try:
        cli.main(args=args, prog_name="sbuild", standalone_mode=False)
    except click.exceptions.UsageError as e:
        sys.stderr.write(f"error: {e.format_message()}\n")
        return 2
    except click.exceptions.Abort:
        sys.stderr.write("error: interrupted\n")
        return 130
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except SbuildError:
        raise
    return 0
