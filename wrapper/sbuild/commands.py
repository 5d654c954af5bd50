"""Subcommands (`sbuild stages`, `sbuild warm`): parse with click, call one core function, render."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

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


def _project(file: str | None, path: str = ".") -> str:
    """The history's project id for a Dockerfile, as a build there records it."""
    from .flags import parse
    from .record import local_facts

    return local_facts(parse([*(["--file", file] if file else []), path]))[0].id


def _store() -> Any:
    from .history import Store, default_path

    return Store(default_path())


def _store_call(fn: Any) -> Any:
    from .history import StoreError

    try:
        return fn()
    except StoreError as e:
        raise SbuildError(f"history: {e}") from None


@cli.group(invoke_without_command=True)
@click.option("--stage", default=None, metavar="NAME", help="Only builds that ran this stage")
@click.option("--branch", default=None, metavar="NAME", help="Only builds of this branch")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many (newest first)")
@click.option("-f", "--file", "file", metavar="FILE", help='The project\'s Dockerfile (default: "./Dockerfile")')
@click.option("--all", "all_projects", is_flag=True, help="Every project, not only this directory's")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON form")
@click.option("--html", "html_file", metavar="FILE", help="Write per-stage trends as one self-contained HTML page")
@click.pass_context
def history(ctx: click.Context, stage: str | None, branch: str | None, limit: int, file: str | None,
            all_projects: bool, as_json: bool, html_file: str | None) -> None:
    """Builds recorded in $SBUILD_HOME/history.db, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from .render_history import history_json, history_table

    project = None if all_projects else _project(file)
    store = _store()
    rows = _store_call(lambda: store.rows(project=project, stage=stage, branch=branch, limit=limit))
    if html_file:
        from .files import write_atomic
        from .render_html import history_page

        write_atomic(html_file, history_page([_get(store, r.id) for r in rows], project))
        sys.stderr.write(f"wrote {html_file}: {len(rows)} builds\n")
    if as_json:
        click.echo(json.dumps(history_json(rows, project), indent=2))
    elif not rows:
        sys.stderr.write(f"no builds recorded for {project or 'any project'} in {store.path}"
                         + (" (sbuild history --all lists every project)\n" if project else "\n"))
    else:
        click.echo(history_table(rows), nl=False)


def _latest(store: Any, file: str | None, what: str) -> dict[str, Any]:
    """This project's last recorded build (`sbuild diff`, `sbuild explain` without an ID)."""
    project = _project(file)
    latest = _store_call(lambda: store.latest(project))
    if latest is None:
        raise UsageError(f"no builds recorded for {project}: nothing to {what}")
    return dict(latest)


def _get(store: Any, build_id: str) -> dict[str, Any]:
    got = _store_call(lambda: store.get(build_id))
    if got is None:
        raise UsageError(f'no build "{build_id}" in the history ({store.path}): `sbuild history` lists them')
    return dict(got)


@history.command("show")
@click.argument("build_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the record (the stable JSON form)")
@click.option("--html", "html_file", metavar="FILE", help="Write the build as one self-contained HTML page")
def history_show(build_id: str, as_json: bool, html_file: str | None) -> None:
    """One recorded build: where, what, and its report."""
    from .render_history import record_text

    record = _get(_store(), build_id)
    if html_file:
        from .files import write_atomic
        from .render_html import build_page
        from .report import report_from_json

        write_atomic(html_file, build_page(report_from_json(record["report"]), f"sbuild: build {record['id']}"))
    click.echo(json.dumps(record, indent=2) if as_json else record_text(record), nl=bool(as_json))


@cli.command()
@click.argument("a", required=False, metavar="[A")
@click.argument("b", required=False, metavar="[B]]")
@click.option("-f", "--file", "file", metavar="FILE", help='The project\'s Dockerfile, for the default A and B')
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON form")
@click.option("--html", "html_file", metavar="FILE", help="Write the comparison as one self-contained HTML page")
def diff(a: str | None, b: str | None, file: str | None, as_json: bool, html_file: str | None) -> None:
    """Per-stage and per-step time and cache of build B against build A. One ID: that build against its
    baseline; none: this project's last build against its baseline."""
    from .compare import diff as compare
    from .render_history import diff_text

    store = _store()
    if b is not None:
        older, newer = _get(store, a or ""), _get(store, b)
    else:
        newer = _get(store, a) if a is not None else _latest(store, file, "compare")
        base = (newer.get("report") or {}).get("baseline")
        if not base:
            raise UsageError(f"build {newer['id']} has no baseline: give two IDs (sbuild diff A B)")
        older = _get(store, base["id"])
    d = compare(older, newer)
    if html_file:
        from .files import write_atomic
        from .render_html import diff_page

        write_atomic(html_file, diff_page(d))
    click.echo(json.dumps(d, indent=2) if as_json else diff_text(d), nl=bool(as_json))


@cli.command()
@click.argument("build_id", required=False, metavar="[ID]")
@click.option("-f", "--file", "file", metavar="FILE", help="The project's Dockerfile, for the default ID")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON form")
def explain(build_id: str | None, file: str | None, as_json: bool) -> None:
    """Why each stage of a recorded build missed the cache (default: this project's last build)."""
    from .render_history import explain_json, explain_text

    store = _store()
    record = _get(store, build_id) if build_id is not None else _latest(store, file, "explain")
    d = explain_json(record)
    click.echo(json.dumps(d, indent=2) if as_json else explain_text(d), nl=bool(as_json))


@cli.group()
def cache() -> None:
    """Cache housekeeping: list and prune the cache sbuild keeps per stage and branch."""


def _where(cache_repo: str | None, cache_dir: str | None) -> None:
    if bool(cache_repo) == bool(cache_dir):
        raise UsageError("give one of --cache-repo REF or --cache-dir DIR")


@cache.command("ls")
@click.option("--cache-repo", default=None, metavar="REF", help="The registry repository of the cache")
@click.option("--cache-dir", default=None, metavar="DIR", help="The local cache directory")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON form")
def cache_ls(cache_repo: str | None, cache_dir: str | None, as_json: bool) -> None:
    """Each stage × branch cache entry: size, age and the commit that wrote it."""
    from . import cachectl
    from .render_report import _bytes, columns

    _where(cache_repo, cache_dir)
    entries = cachectl.registry_entries(cache_repo) if cache_repo else cachectl.dir_entries(cache_dir or "")
    if as_json:
        click.echo(cachectl.dump(cachectl.ls_json(entries, "registry" if cache_repo else "dir",
                                                  cache_repo or cache_dir or "")))
        return
    rows = [("TAG", "STAGE", "BRANCH", "COMMIT", "AGE", "SIZE")]
    for e in entries:
        rows.append((e.tag, e.stage or "?", e.branch or "?", (e.commit or "?")[:7],
                     _age(e.age_s) if e.age_s is not None else "?", _bytes(e.size) if e.size is not None else "?"))
    click.echo("\n".join(columns(rows, right=(5,))))


def _age(s: float) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{s / n:.0f}{unit}"
    return f"{s:.0f}s"


@cache.command("prune")
@click.option("--cache-repo", default=None, metavar="REF", help="The registry repository of the cache")
@click.option("--cache-dir", default=None, metavar="DIR", help="The local cache directory")
@click.option("--keep", default="", metavar="PATTERNS", help="Branches never pruned, comma-separated globs "
              "('main,release/*')")
@click.option("--gone-branches", is_flag=True, help="Prune branches deleted from the remote (git ls-remote)")
@click.option("--older-than", default=None, metavar="DURATION", help="Prune entries older than this (30d, 12h)")
@click.option("--dry-run", is_flag=True, help="Say what would go; delete nothing")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON form")
def cache_prune(cache_repo: str | None, cache_dir: str | None, keep: str, gone_branches: bool,
                older_than: str | None, dry_run: bool, as_json: bool) -> None:
    """Remove entries of deleted branches or older than a limit; a digest a kept tag uses always stays."""
    from . import cachectl

    _where(cache_repo, cache_dir)
    if not gone_branches and not older_than:
        raise UsageError("say what to prune: --gone-branches, --older-than DURATION, or both")
    if cache_dir and (gone_branches or keep):
        raise UsageError("--cache-dir keeps one cache per stage, not per branch: use --older-than")
    limit = None
    if older_than:
        text = older_than.strip()
        days = text[:-1] if text.endswith("d") else None
        from .retry_policy import parse_duration

        try:
            limit = float(days) * 86400 if days is not None else parse_duration(text, "--older-than")
        except ValueError:
            raise UsageError(f'invalid --older-than "{older_than}": give a duration such as 30d or 12h') from None
    remote = cachectl.remote_branches(".") if gone_branches else None
    entries = cachectl.registry_entries(cache_repo) if cache_repo else cachectl.dir_entries(cache_dir or "")
    plan = cachectl.plan_prune(entries, keep=[p.strip() for p in keep.split(",") if p.strip()], remote=remote,
                               older_than=limit)
    deleted = [] if dry_run else (cachectl.delete_registry(cache_repo, plan) if cache_repo
                                  else cachectl.delete_dirs(plan))
    if as_json:
        click.echo(cachectl.dump(cachectl.prune_json(plan, deleted, dry_run)))
        return
    for e in plan.delete:
        click.echo(f"{'would delete' if dry_run else 'deleted'} {e.ref} ({plan.why[e.tag]})")
    click.echo(f"{len(plan.delete)} {'to delete' if dry_run else 'deleted'}, {len(plan.keep)} kept")


@cli.command()
@click.argument("path", default=".", required=False)
@click.option("-f", "--file", "file", metavar="FILE", help='Dockerfile (default: "PATH/Dockerfile")')
@click.option("--cache-repo", default=None, metavar="REF", help="Check this registry cache: reachable, takes pushes")
@click.option("--builder", default=None, metavar="NAME", help="The builder to check (default: the current one)")
@click.option("--branch", default=None, metavar="NAME", help="The branch sbuild should use")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON form")
def doctor(path: str, file: str | None, cache_repo: str | None, builder: str | None, branch: str | None,
           as_json: bool) -> None:
    """Is this machine ready to build? Each check with a one-line fix where it fails; exit 1 if any fails."""
    from . import doctor as dr
    from .flags import parse

    args = [*(["--file", file] if file else []), *(["--cache-repo", cache_repo] if cache_repo else []),
            *(["--builder", builder] if builder else []), *(["--branch", branch] if branch else []), path]
    checks = dr.run(parse(args))
    click.echo(json.dumps(dr.to_json(checks), indent=2) if as_json else dr.text(checks), nl=bool(as_json))
    if not all(c.ok for c in checks):
        raise click.exceptions.Exit(1)


def cli_group(args: list[str]) -> int:
    try:
        rv = cli.main(args=args, prog_name="sbuild", standalone_mode=False)
        if isinstance(rv, int) and rv:  # a command's own exit code (ctx.exit / Exit, as doctor's)
            return rv
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
