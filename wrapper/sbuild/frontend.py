"""Which Dockerfile frontend will read a file, and which instruction flags that frontend accepts. Pure.

`# syntax=` (or the BUILDKIT_SYNTAX build arg, which overrides it, as in BuildKit) names the frontend:
- `docker/dockerfile:<version>` (`1.7`, `1.7.1`, `1.7-labs`): a pinned version, whose flags are known
  from the table below, labs flags included on the labs channel;
- `docker/dockerfile:<channel or digest>` (`1`, `labs`, `latest`, `@sha256:…`): a version that cannot be
  pinned offline, so nothing that depends on the version is refused;
- any other image: someone's own frontend, which judges the file itself: sbuild refuses nothing;
- no directive: the builder's built-in frontend, whose version sbuild does not know without asking:
  only what every released Dockerfile frontend refuses is refused.

The table comes from moby/buildkit's `frontend/dockerfile` sources at each `dockerfile/1.x.0` tag: the
flags `instructions/parse.go` and `commands_run*.go` register, the labs-only ones behind the build tags
`dfexcludepatterns`, `dfparents`, `dfrunsecurity`, `dfrunnetwork` and `dfrundevice`
(`release/labs/tags`), and the refusals `dockerfile2llb` makes of flags the parser accepts.
"""

from __future__ import annotations

from ._tuple import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import NamedTuple
else:
    from ._tuple import NamedTuple

Version = tuple[int, int]
STR, BOOL, MULTI = "string", "bool", "strings"

# (instruction, flag): (value type, labs channel since, stable channel since; None: not stable yet)
FLAGS: dict[tuple[str, str], tuple[str, Version, Version | None]] = {
    ("ADD", "chown"): (STR, (1, 0), (1, 0)),
    ("ADD", "chmod"): (STR, (1, 2), (1, 2)),
    ("ADD", "link"): (BOOL, (1, 4), (1, 4)),
    ("ADD", "keep-git-dir"): (BOOL, (1, 5), (1, 5)),
    ("ADD", "checksum"): (STR, (1, 5), (1, 5)),  # 1.5 stable parses it, then refuses it (below)
    ("ADD", "exclude"): (MULTI, (1, 7), (1, 19)),
    ("ADD", "unpack"): (BOOL, (1, 17), (1, 17)),
    ("COPY", "chown"): (STR, (1, 0), (1, 0)),
    ("COPY", "from"): (STR, (1, 0), (1, 0)),
    ("COPY", "chmod"): (STR, (1, 2), (1, 2)),
    ("COPY", "link"): (BOOL, (1, 4), (1, 4)),
    ("COPY", "exclude"): (MULTI, (1, 7), (1, 19)),
    ("COPY", "parents"): (BOOL, (1, 7), (1, 20)),
    ("FROM", "platform"): (STR, (1, 0), (1, 0)),
    ("RUN", "mount"): (MULTI, (1, 0), (1, 0)),
    ("RUN", "network"): (STR, (1, 1), (1, 3)),
    ("RUN", "security"): (STR, (1, 1), (1, 20)),
    ("RUN", "device"): (MULTI, (1, 14), (1, 14)),  # stable parses it, then refuses it (below)
    ("HEALTHCHECK", "interval"): (STR, (1, 0), (1, 0)),
    ("HEALTHCHECK", "timeout"): (STR, (1, 0), (1, 0)),
    ("HEALTHCHECK", "start-period"): (STR, (1, 0), (1, 0)),
    ("HEALTHCHECK", "retries"): (STR, (1, 0), (1, 0)),
    ("HEALTHCHECK", "start-interval"): (STR, (1, 6), (1, 6)),
}

# Flags the stable channel's parser accepts but its converter refuses: (instruction, flag) -> (the stable
# versions that refuse it, from..to inclusive; None: still), BuildKit's message.
REFUSED_STABLE: dict[tuple[str, str], tuple[Version, Version | None, str]] = {
    ("ADD", "checksum"): ((1, 5), (1, 5), "instruction 'ADD --checksum=<CHECKSUM>' requires the labs channel"),
    ("RUN", "device"): ((1, 14), None,
                        "device feature is only supported in Dockerfile frontend 1.14.0-labs or later"),
}

DOCKERFILE_IMAGES = ("docker/dockerfile", "docker.io/docker/dockerfile", "docker/dockerfile-upstream",
                     "docker.io/docker/dockerfile-upstream")
_PINNED = r"^(\d+)\.(\d+)(?:\.\d+)?(-labs)?$"  # compiled for a pinned docker/dockerfile (re: ~4 ms)


class Frontend(NamedTuple):
    kind: str  # "dockerfile" (docker/dockerfile), "other" (another image), "builtin" (no directive)
    ref: str | None  # the syntax as written (directive or BUILDKIT_SYNTAX)
    version: Version | None  # a pinned docker/dockerfile version; None: the version is not known offline
    labs: bool

    def describe(self) -> str:
        if self.kind == "builtin":
            return "the builder's built-in Dockerfile frontend"
        if self.kind == "other":
            return f"{self.ref} (a frontend of its own: sbuild reads only the stages)"
        what = f"Dockerfile {self.version[0]}.{self.version[1]}" if self.version else "a Dockerfile version " \
            "not pinned here"
        return f"{self.ref} ({what}{', labs' if self.labs else ''})"

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "version": f"{self.version[0]}.{self.version[1]}" if self.version else None,
                "labs": self.labs}


def of(directives: Mapping[str, str], build_args: Mapping[str, str]) -> Frontend:
    """The frontend for a file's `# syntax=` directive and the build args (BUILDKIT_SYNTAX wins)."""
    ref = build_args.get("BUILDKIT_SYNTAX") or directives.get("syntax")
    if not ref:
        return Frontend("builtin", None, None, False)
    name = ref.partition("@")[0]  # a digest pins an image, not a version sbuild can read offline
    image, tag = name, ""
    if ":" in name.rsplit("/", 1)[-1]:
        image, tag = name.rsplit(":", 1)
    if image.lower() not in DOCKERFILE_IMAGES:
        return Frontend("other", ref, None, False)
    import re

    m = re.match(_PINNED, tag)
    if m:
        return Frontend("dockerfile", ref, (int(m.group(1)), int(m.group(2))), bool(m.group(3)))
    return Frontend("dockerfile", ref, None, tag.endswith("labs") or "labs" in tag.split("-"))


def check_flag(fe: Frontend, instr: str, flag: str) -> str | None:
    """BuildKit's refusal of `INSTR --flag` under this frontend, or None when it accepts it (or may)."""
    if fe.kind == "other":
        return None
    known = FLAGS.get((instr, flag))
    if known is None:
        return "unknown flag"  # no released Dockerfile frontend has it
    if fe.version is None:
        return None
    _, labs_since, stable_since = known
    since = labs_since if fe.labs else stable_since
    if since is None or fe.version < since:
        return "unknown flag"
    refused = REFUSED_STABLE.get((instr, flag))
    if refused is not None and not fe.labs:
        lo, hi, message = refused
        if lo <= fe.version and (hi is None or fe.version <= hi):
            return message
    return None


def flags_of(fe: Frontend, instr: str) -> dict[str, str]:
    """The flags of an instruction this frontend accepts, with their value types (for did-you-mean)."""
    return {f: t for (i, f), (t, _, _) in FLAGS.items() if i == instr and check_flag(fe, i, f) is None}
