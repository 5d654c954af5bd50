"""What a command line means once the project's config and git are taken into account: config values as
flags (flags override them), tag rules expanded from git facts, every tag checked against Docker's
reference grammar, all before anything runs. Reads the config file and asks git (through process.py);
the rules themselves are pure (config.py, tags.py, gitinfo.py)."""

from __future__ import annotations

import os
import time

from ._tuple import TYPE_CHECKING
from .errors import BuildxError, UsageError
from .flags import BuildCommand

if TYPE_CHECKING:
    from .installed import Buildx


def _buildx() -> Buildx:
    # installed.py (json, re) loads only for a command line that needs the installed buildx's flag set.
    from .installed import buildx

    return buildx()


def resolve(argv: list[str]) -> tuple[BuildCommand, list[str]]:
    """The command line with the project config applied (flags override it), tag rules expanded, and
    every tag checked against Docker's reference grammar before anything runs. Returns notes to show."""
    from . import flags

    cmd = flags.parse(argv, _buildx)
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
            from . import gitinfo, tags

            where = cmd.context if os.path.isdir(cmd.context) else "."
            facts = gitinfo.facts(where, cmd.value("branch"), cmd.value("default-branch") or
                                  cfg.values.get("default-branch"))
            refs, skipped = tags.expand(rules, image, facts, os.environ, time.strftime("%Y%m%d", time.gmtime()))
            notes += skipped
            for r in refs:  # a rule that makes a bad reference is the config's error (exit 2)
                try:
                    tags.check_reference(r)
                except UsageError as e:
                    raise UsageError(f"{cfg.path}: tags: {e.message}") from None
            extra += [f"--tag={r}" for r in refs]
        if extra:
            cmd = flags.parse(extra + argv, _buildx)
    for value in (v for f, v in cmd.options if f.name == "stage"):  # as given: values() drops empty items
        if any(not n.strip() for n in value.split(",")):
            raise UsageError(f'--stage "{value}": an empty stage name: give names separated by commas '
                             "(--stage lint,test)")
    repo = cmd.value("cache-repo")
    if repo is not None:
        from .tags import check_reference

        last = repo.rsplit("/", 1)[-1]
        if not repo or ":" in last or "@" in repo:
            raise UsageError(f'--cache-repo "{repo}": give a repository without a tag (sbuild adds '
                             "<stage>-<branch> tags to it): e.g. registry.example.com/team/app-cache")
        try:
            check_reference(repo + ":sbuild")
        except UsageError as e:
            raise UsageError(f'--cache-repo "{repo}": {e.message.split(": ", 1)[-1]}') from None
    if cmd.has("tag"):
        from .reference import plainly_valid

        for t in cmd.values("tag"):
            if plainly_valid(t):
                continue  # the common shapes, without loading tags.py's grammar (~12 ms)
            from .tags import check_reference

            try:
                check_reference(t)
            except UsageError as e:  # buildx refuses a bad -t with exit 1 (measured, 0.13 and 0.29)
                raise BuildxError(e.message) from None
    return cmd, notes
