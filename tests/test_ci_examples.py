"""The CI examples the README points to (examples/ci/) parse as YAML, and every sbuild command in them is
one sbuild accepts: real flags, real commands, in sbuild's own parsers."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from sbuild import cli, flags
from sbuild.errors import SbuildError

CI = Path(__file__).parent.parent / "examples" / "ci"


def _scripts(doc: object) -> list[str]:
    """Every shell line of a workflow: GitHub's `run:` values and GitLab's script lists."""
    out: list[str] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "run" and isinstance(v, str):
                out.append(v)
            elif k in ("script", "before_script") and isinstance(v, list):
                out += [x for x in v if isinstance(x, str)]
            else:
                out += _scripts(v)
    elif isinstance(doc, list):
        for v in doc:
            out += _scripts(v)
    return out


def _click_parses(args: list[str]) -> None:
    """Down the command groups, each level's options parsed by click (an unknown one raises)."""
    import click

    from sbuild.commands import cli as group

    cmd: click.Command = group
    ctx = None
    while True:
        ctx = cmd.make_context(cmd.name or "sbuild", list(args), parent=ctx)
        if not isinstance(cmd, click.Group):
            return
        rest = [*ctx._protected_args, *ctx.args] if hasattr(ctx, "_protected_args") else \
            [*ctx.protected_args, *ctx.args]
        if not rest:
            return
        sub = cmd.get_command(ctx, rest[0])
        assert sub is not None, f"no command {rest[0]}"
        cmd, args = sub, rest[1:]


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_use_only_real_sbuild_commands_and_flags(name: str) -> None:
    doc = yaml.safe_load((CI / name).read_text())
    lines = [ln for ln in _scripts(doc) if ln.strip().startswith("sbuild")]
    assert len(lines) >= 3
    for line in lines:
        # CI variables stand for words; the shell would expand them.
        words = shlex.split(re.sub(r"\$\{\{[^}]*\}\}|\$\w+", "X", " ".join(line.split())))
        assert words[0] == "sbuild"
        args = words[1:]
        if args and args[0] in cli.COMMANDS and args[0] not in ("build", "warm"):
            _click_parses(args)
            continue
        try:
            flags.parse(args[1:] if args and args[0] == "warm" else args)
        except SbuildError as e:
            pytest.fail(f"{name}: {line}: {e.message}")
