"""Tag rules, in the spirit of docker/metadata-action, and Docker's reference grammar. Pure.

A rule is a tag template applied to the configured image:
    {sha} {short_sha}            the commit
    {branch}                     the branch, made into a valid tag (feature/x -> feature-x)
    {tag}                        the git tag at HEAD, made into a valid tag
    {version} {major} {minor} {patch}   from a semver tag at HEAD (v1.2.3 -> 1.2.3, 1, 2, 3);
                                 {major} and {minor} rules are skipped for a pre-release (v1.2.3-rc.1)
    {env.NAME}                   an environment variable
    {date}                       today, UTC, YYYYMMDD
    latest                       only on the default branch or at a release tag
A rule whose values are not there (no tag at HEAD, a detached HEAD) is skipped, and said so.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import NamedTuple

from .errors import UsageError

# Compiled where used: checking a -t loads this module, expanding tag rules is rarer.
_SEMVER = (r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
           r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_PLACEHOLDER = r"\{([a-z_]+(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\}"

# Docker's reference grammar (distribution/reference)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_REFERENCE = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
                        rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:"
                        rf"[0-9a-fA-F]{{32,}}))?$")


class GitFacts(NamedTuple):
    sha: str | None
    branch: str | None
    default_branch: str
    tags: tuple[str, ...]  # git tags at HEAD


def check_reference(ref: str) -> None:
    """Raise a UsageError saying what is wrong if `ref` is not a valid image reference."""
    if not ref:
        raise UsageError('invalid tag "": repository name must have at least one component')  # buildx's words
    m = _REFERENCE.match(ref)
    name = ref.split("@", 1)[0]
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    if m is not None:
        if len(name) > 255:
            raise UsageError(f'invalid tag "{ref}": repository name must not be longer than 255 characters')
        return
    if tag is not None and not re.fullmatch(_TAG, tag):
        raise UsageError(f'invalid tag "{ref}": the tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}')
    if name != name.lower() and _REFERENCE.match(name.lower()):
        raise UsageError(f'invalid tag "{ref}": repository name must be lowercase')
    raise UsageError(f'invalid tag "{ref}": not a valid image reference ([HOST[:PORT]/]NAME[:TAG])')


def semver(tags: tuple[str, ...]) -> re.Match[str] | None:
    found = [m for m in (re.match(_SEMVER, t) for t in tags) if m]
    if not found:
        return None

    def key(m: re.Match[str]) -> tuple[int, int, int, int]:
        return int(m["major"]), int(m["minor"]), int(m["patch"]), 0 if m["pre"] else 1

    return max(found, key=key)


def _substitute(m: re.Match[str], *, rule: str, values: Mapping[str, str | None], env: Mapping[str, str],
                missing: list[str]) -> str:
    name = m.group(1)
    v = env.get(name[4:]) if name.startswith("env.") else values.get(name, "\0unknown")
    if v == "\0unknown":
        raise UsageError(f'tag rule "{rule}": unknown placeholder {{{name}}} (known: '
                         f'{", ".join("{" + k + "}" for k in values)}, {{env.NAME}}, latest)')
    if not v:
        missing.append(name)
        return ""
    return v


def expand(rules: list[str], image: str, facts: GitFacts, env: Mapping[str, str],
           today: str) -> tuple[list[str], list[str]]:
    """(references, notes on the rules that were skipped)."""
    from .cache import tag_safe

    sv = semver(facts.tags)
    values: dict[str, str | None] = {
        "sha": facts.sha,
        "short_sha": facts.sha[:7] if facts.sha else None,
        "branch": tag_safe(facts.branch) if facts.branch else None,
        "tag": tag_safe(facts.tags[0]) if facts.tags else None,
        "version": None, "major": None, "minor": None, "patch": None,
        "date": today,
    }
    if sv is not None:
        values["version"] = f"{sv['major']}.{sv['minor']}.{sv['patch']}" + (f"-{sv['pre']}" if sv["pre"] else "")
        values["patch"] = sv["patch"]
        if not sv["pre"]:  # 1.2 and 1 must not move to a pre-release
            values["major"], values["minor"] = sv["major"], sv["minor"]
    refs: list[str] = []
    notes: list[str] = []
    for rule in rules:
        if rule == "latest":
            release = sv is not None and not sv["pre"]
            if facts.branch == facts.default_branch or release:
                refs.append(f"{image}:latest")
            else:
                notes.append(f'tag rule "latest" skipped: not on the default branch ({facts.default_branch}) '
                             "nor at a release tag")
            continue
        missing: list[str] = []
        tag = re.sub(_PLACEHOLDER, functools.partial(_substitute, rule=rule, values=values, env=env, missing=missing),
                               rule)
        if missing:
            notes.append(f'tag rule "{rule}" skipped: no {", ".join(missing)} here')
            continue
        ref = f"{image}:{tag}"
        check_reference(ref)
        if ref not in refs:
            refs.append(ref)
    return refs, notes
