"""The command line of `docker buildx build`, parsed as buildx's pflag parses it.

Pure: argv in, a frozen `BuildCommand` out. sbuild mirrors every flag of buildx 0.13 (visible,
experimental and the hidden `docker build` compatibility ones) and the ones newer buildx added, so it can
stand in for `docker build` anywhere, and adds its own. Flags follow the installed buildx: a flag that not
every supported buildx has (VERSIONED), or one sbuild does not know, is looked up in the installed buildx's
flag set (`installed.buildx()`, passed in as a callable so parsing stays pure) and passes through where
buildx has it, or is refused in buildx's own words and with its exit code (125) where it does not.
click is not used for this command because pflag semantics (`--pull=false`, `-tNAME`, `-qt NAME`, comma
lists) are what scripts written for docker rely on.
"""

from __future__ import annotations

from ._tuple import TYPE_CHECKING
from .errors import BuildxError, BuildxUsageError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Literal, NamedTuple

    from .installed import Buildx

    Kind = Literal["bool", "string", "array", "list"]  # list = pflag "strings" (comma-separated, repeatable)
else:
    from ._tuple import NamedTuple


class Flag(NamedTuple):
    # NamedTuple, not a dataclass: dataclasses import `inspect`, ~8 ms on every build's start-up.
    name: str
    kind: Kind
    help: str
    short: str | None = None
    metavar: str = ""
    hidden: bool = False  # accepted by buildx, not shown in its --help
    experimental: bool = False  # shown by buildx only with BUILDX_EXPERIMENTAL=1
    sbuild: bool = False  # sbuild's own flag, never passed to buildx
    since: str = ""  # the buildx version that added it, when newer than 0.13


def _f(name: str, kind: Kind, help: str, short: str | None = None, metavar: str = "", **kw: bool | str) -> Flag:
    return Flag(name, kind, help, short, metavar, **kw)  # type: ignore[arg-type]


# `docker buildx build --help` of buildx 0.13.1 and what later versions added (`since`), in its order
# (tests/test_flags.py checks the list against the recorded help of 0.13.1 and 0.29.1).
BUILDX_FLAGS: tuple[Flag, ...] = (
    _f("add-host", "list", 'Add a custom host-to-IP mapping (format: "host:ip")', metavar="strings"),
    _f("allow", "list", 'Allow extra privileged entitlement (e.g., "network.host", "security.insecure")',
       metavar="strings"),
    _f("annotation", "array", "Add annotation to the image", metavar="stringArray"),
    _f("attest", "array", 'Attestation parameters (format: "type=sbom,generator=image")', metavar="stringArray"),
    _f("build-arg", "array", "Set build-time variables", metavar="stringArray"),
    _f("build-context", "array", "Additional build contexts (e.g., name=path)", metavar="stringArray"),
    _f("builder", "string", "Override the configured builder instance", metavar="string"),
    _f("cache-from", "array", 'External cache sources (e.g., "user/app:cache", "type=local,src=path/to/dir")',
       metavar="stringArray"),
    _f("cache-to", "array", 'Cache export destinations (e.g., "user/app:cache", "type=local,dest=path/to/dir")',
       metavar="stringArray"),
    _f("call", "string", 'Set method for evaluating build ("check", "outline", "targets") (default "build")',
       metavar="string", since="0.15"),
    _f("cgroup-parent", "string", 'Set the parent cgroup for the "RUN" instructions during build', metavar="string"),
    _f("check", "bool", 'Shorthand for "--call=check"', since="0.15"),
    _f("debug", "bool", "Enable debug logging", short="D", since="0.15"),
    _f("detach", "bool", "Detach buildx server (supported only on linux)", experimental=True),
    _f("file", "string", 'Name of the Dockerfile (default: "PATH/Dockerfile")', short="f", metavar="string"),
    _f("iidfile", "string", "Write the image ID to the file", metavar="string"),
    _f("label", "array", "Set metadata for an image", metavar="stringArray"),
    _f("load", "bool", 'Shorthand for "--output=type=docker"'),
    _f("metadata-file", "string", "Write build result metadata to the file", metavar="string"),
    _f("network", "string", 'Set the networking mode for the "RUN" instructions during build (default "default")',
       metavar="string"),
    _f("no-cache", "bool", "Do not use cache when building the image"),
    _f("no-cache-filter", "array", "Do not cache specified stages", metavar="stringArray"),
    _f("output", "array", 'Output destination (format: "type=local,dest=path")', short="o", metavar="stringArray"),
    _f("platform", "array", "Set target platform for build", metavar="stringArray"),
    _f("print", "string", "Print result of information request (e.g., outline, targets)", metavar="string",
       experimental=True),
    _f("progress", "string", 'Set type of progress output ("auto", "none", "plain", "quiet", "rawjson", "tty")',
       metavar="string"),
    _f("provenance", "string", 'Shorthand for "--attest=type=provenance"', metavar="string"),
    _f("pull", "bool", "Always attempt to pull all referenced images"),
    _f("push", "bool", 'Shorthand for "--output=type=registry"'),
    _f("quiet", "bool", "Suppress the build output and print image ID on success", short="q"),
    _f("root", "string", "Specify root directory of server to connect", metavar="string", experimental=True),
    _f("sbom", "string", 'Shorthand for "--attest=type=sbom"', metavar="string"),
    _f("secret", "array", 'Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")',
       metavar="stringArray"),
    _f("server-config", "string", "Specify buildx server config file", metavar="string", experimental=True),
    _f("shm-size", "string", "Shared memory size for build containers", metavar="bytes"),
    _f("ssh", "array",
       'SSH agent socket or keys to expose to the build (format: "default|<id>[=<socket>|<key>[,<key>]]")',
       metavar="stringArray"),
    _f("tag", "array", 'Name and optionally a tag (format: "name:tag")', short="t", metavar="stringArray"),
    _f("target", "string", "Set the target build stage to build", metavar="string"),
    _f("ulimit", "array", "Ulimit options (default [])", metavar="ulimit"),
    # Hidden: `docker build` (legacy builder) flags that buildx accepts and ignores or warns about.
    _f("compress", "bool", "Compress the build context using gzip", hidden=True),
    _f("cpu-period", "string", "Limit the CPU CFS period", hidden=True),
    _f("cpu-quota", "string", "Limit the CPU CFS quota", hidden=True),
    _f("cpu-shares", "string", "CPU shares (relative weight)", short="c", hidden=True),
    _f("cpuset-cpus", "string", "CPUs in which to allow execution", hidden=True),
    _f("cpuset-mems", "string", "MEMs in which to allow execution", hidden=True),
    _f("force-rm", "bool", "Always remove intermediate containers", hidden=True),
    _f("isolation", "string", "Container isolation technology", hidden=True),
    _f("memory", "string", "Memory limit", short="m", hidden=True),
    _f("memory-swap", "string", "Swap limit equal to memory plus swap", hidden=True),
    _f("rm", "bool", "Remove intermediate containers after a successful build", hidden=True),
    _f("security-opt", "list", "Security options", hidden=True),
    _f("squash", "bool", "Squash newly built layers into a single new layer", hidden=True),
)

SBUILD_FLAGS: tuple[Flag, ...] = (
    _f("stage", "list", "Build these stages and what they need, in one session (repeatable or a,b)",
       metavar="NAME", sbuild=True),
    _f("deploy-stage", "string", "The stage that is shipped: gets the tags and outputs (default: the last)",
       metavar="NAME", sbuild=True),
    _f("report", "string", "Write a JSON report of the build (per stage: steps, cache, time)", metavar="FILE",
       sbuild=True),
    _f("summary", "string", "Write the report as a markdown table (also to $GITHUB_STEP_SUMMARY)",
       metavar="FILE", sbuild=True),
    _f("trace", "string", "Write a Chrome trace-event JSON of the build (Perfetto, chrome://tracing)",
       metavar="FILE", sbuild=True),
    _f("html", "string", "Write the build as one self-contained HTML page (timeline, stages, why; opens offline)",
       metavar="FILE", sbuild=True),
    _f("cache-repo", "string", "Registry cache per stage and branch: REF:<stage>-<branch> (mode=max); each stage "
       "imports one: its branch's if there, else the default branch's", metavar="REF", sbuild=True),
    _f("cache-dir", "string", "Local cache per stage in DIR/<stage>, replaced (not grown) by each good build",
       metavar="DIR", sbuild=True),
    _f("cache-required", "bool", "Fail the build when its cache cannot be exported", sbuild=True),
    _f("cache-only", "bool", "Produce no image: every stage exports to cache only", sbuild=True),
    _f("branch", "string", "Branch for cache keys and tags (default: from CI variables or git)", metavar="NAME",
       sbuild=True),
    _f("default-branch", "string", "The default branch (default: origin/HEAD, main or master)", metavar="NAME",
       sbuild=True),
    _f("retries", "string", "Retry transient registry failures this many times (default 3; 0: never)",
       metavar="N", sbuild=True),
    _f("retry-wait", "string", "First wait before a retry, in seconds (default 5; doubles, jittered)",
       metavar="SECONDS", sbuild=True),
    _f("retry-max-wait", "string", "Longest wait between attempts, in seconds (default 60)", metavar="SECONDS",
       sbuild=True),
    _f("retry-timeout", "string", "Stop retrying when the next attempt would start later than this after the "
       "first (90s, 10m, 1h30m; default: none)", metavar="DURATION", sbuild=True),
    _f("no-history", "bool", "Do not record this build in the history ($SBUILD_HOME/history.db)", sbuild=True),
    _f("history-keep", "string", "Builds kept in the history per project (default 500)", metavar="N", sbuild=True),
    _f("baseline", "string", "Compare with: auto (the last good build of these stages on this branch, else the "
       "default branch), none, a history ID, or a record/report JSON file", metavar="auto|none|ID|FILE",
       sbuild=True),
    _f("help", "bool", "Show this help and exit", short="h", sbuild=True),
)

# Flags that not every supported buildx has: buildx 0.15 added --call, --check and -D/--debug; the
# experimental --detach, --root and --server-config of 0.13 are gone from newer ones. Their presence is
# checked against the installed buildx. (--print, experimental in 0.13 and hidden later, is left to buildx.)
VERSIONED = frozenset({"call", "check", "debug", "detach", "root", "server-config"})

ALL_FLAGS: tuple[Flag, ...] = BUILDX_FLAGS + SBUILD_FLAGS
_BY_NAME = {f.name: f for f in ALL_FLAGS}
_BY_SHORT = {f.short: f for f in ALL_FLAGS if f.short}

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class BuildCommand:
    """One parsed `sbuild [OPTIONS] [PATH]` command line. Treat as immutable."""

    __slots__ = ("_index", "context", "context_given", "options")

    def __init__(self, options: tuple[tuple[Flag, str], ...], context: str, context_given: bool = True) -> None:
        self.options = options  # (flag, value) in the order given; bools carry "true"/"false"
        self.context = context
        self.context_given = context_given
        self._index: dict[str, list[str]] = {}
        for flag, value in self.options:
            values = self._index.setdefault(flag.name, [])
            if flag.kind == "list":
                values.extend(v for v in value.split(",") if v)
            else:
                values.append(value)

    def values(self, name: str) -> list[str]:
        return list(self._index.get(name, []))

    def value(self, name: str) -> str | None:
        """The last value given (pflag: the last one wins for scalar flags)."""
        vals = self._index.get(name)
        return vals[-1] if vals else None

    def flag(self, name: str) -> bool:
        return self.value(name) == "true"

    def has(self, name: str) -> bool:
        return name in self._index

    @property
    def remote_context(self) -> bool:
        """A URL or git context: buildx fetches it, sbuild cannot look into it."""
        return "://" in self.context or self.context.startswith(("git@", "github.com/"))

    @property
    def dockerfile_url(self) -> str | None:
        """`-f http(s)://…`: buildx fetches the Dockerfile (through the builder)."""
        f = self.value("file")
        return f if f is not None and f.startswith(("http://", "https://")) else None

    @property
    def dockerfile(self) -> str | None:
        """The local Dockerfile buildx will read, or None when it comes from stdin, a URL or a remote context.
        A `Dockerfile` that is not there while a lower-case `dockerfile` is, is that one (buildx's
        handleLowercaseDockerfile, moby/moby#10858)."""
        f = self.value("file")
        if f == "-" or self.context == "-" or self.remote_context or self.dockerfile_url:
            return None
        import os

        path = f or os.path.join(self.context, "Dockerfile")
        if os.path.basename(path) == "Dockerfile":
            try:
                names = os.listdir(os.path.dirname(path) or ".")
            except OSError:
                return path
            if "Dockerfile" not in names and "dockerfile" in names:
                return os.path.join(os.path.dirname(path), "dockerfile")
        return path

    def replacing(self, name: str, value: str) -> BuildCommand:
        """The same command with every value of flag `name` replaced by one `value`."""
        flag = _BY_NAME[name]
        kept = tuple(o for o in self.options if o[0].name != name)
        return BuildCommand((*kept, (flag, value)), self.context, self.context_given)

    def buildx_args(self, *, drop: frozenset[str] = frozenset()) -> list[str]:
        """The buildx flags as `--name=value` (unambiguous whatever the value looks like)."""
        out: list[str] = []
        for flag, value in self.options:
            if flag.sbuild or flag.name in drop:
                continue
            out.append(f"--{flag.name}" if (flag.kind == "bool" and value == "true") else f"--{flag.name}={value}")
        return out


def build_arg_map(values: Iterable[str]) -> dict[str, str]:
    """`--build-arg K=V` values as a mapping; `K` alone takes K's value from the environment, as docker
    does (and is left out when the environment has none)."""
    import os

    out: dict[str, str] = {}
    for kv in values:
        k, eq, v = kv.partition("=")
        if eq:
            out[k] = v
        elif k in os.environ:
            out[k] = os.environ[k]
    return out


def _parse_bool(flag: Flag, value: str) -> str:
    if value in _TRUE:
        return "true"
    if value in _FALSE:
        return "false"
    raise _usage(flag)(f'invalid argument "{value}" for "--{flag.name}" flag: strconv.ParseBool: parsing '
                       f'"{value}": invalid syntax')


def _usage(flag: Flag) -> type[UsageError] | type[BuildxUsageError]:
    """The error for a flag given wrongly: sbuild's own (exit 2), or buildx's, in its words (exit 125)."""
    return UsageError if flag.sbuild else BuildxUsageError


class _Lookup:
    """Flags by name and shorthand, the installed buildx consulted only when a flag needs it."""

    def __init__(self, installed: Callable[[], Buildx] | None) -> None:
        self._installed = installed
        self._buildx: Buildx | None = None

    def _ib(self) -> Buildx | None:
        if self._installed is not None and self._buildx is None:
            self._buildx = self._installed()
        return self._buildx

    def long(self, name: str) -> Flag | None:
        return self._resolve(_BY_NAME.get(name), lambda ib: name if ib.has(name) else None)

    def short(self, ch: str) -> Flag | None:
        return self._resolve(_BY_SHORT.get(ch), lambda ib: ib.shorthand(ch))

    def _resolve(self, flag: Flag | None, installed_name: Callable[[Buildx], str | None]) -> Flag | None:
        """sbuild's table decides for a flag every supported buildx has; the installed buildx for the rest
        (the name it gives the flag, or None when it has no such flag)."""
        if flag is not None and flag.name not in VERSIONED:
            return flag
        ib = self._ib()
        if ib is None:
            return flag  # no installed buildx to ask (pure use): the table decides
        name = installed_name(ib)
        if name is None:
            return None
        return _BY_NAME.get(name) or _learned(name, *ib.build_flags[name])


def _learned(name: str, short: str | None, kind: str) -> Flag:
    """A flag of the installed buildx that sbuild's table does not know: passed through as given."""
    k: Kind = kind if kind in ("bool", "string", "array", "list") else "string"  # type: ignore[assignment]
    return Flag(name, k, "(of the installed buildx)", short)


def parse(argv: list[str], installed: Callable[[], Buildx] | None = None) -> BuildCommand:
    """Parse like pflag with interspersed arguments: flags may come before or after PATH. `installed`
    gives the installed buildx's flag set (sbuild.installed.buildx), asked only for a flag that needs it."""
    options: list[tuple[Flag, str]] = []
    positional: list[str] = []
    lookup = _Lookup(installed)
    i = 0
    n = len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        if arg == "--":
            positional.extend(argv[i:])
            break
        if arg.startswith("--"):
            name, eq, inline = arg[2:].partition("=")
            flag = lookup.long(name)
            if flag is None:
                raise BuildxUsageError(f"unknown flag: --{name}")
            if flag.kind == "bool":
                options.append((flag, _parse_bool(flag, inline) if eq else "true"))
            elif eq:
                options.append((flag, inline))
            elif i < n:
                options.append((flag, argv[i]))
                i += 1
            else:
                raise _usage(flag)(f"flag needs an argument: --{name}")
        elif arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                ch = arg[j]
                flag = lookup.short(ch)
                if flag is None:
                    raise BuildxUsageError(f"unknown shorthand flag: '{ch}' in {arg}")
                rest = arg[j + 1:]
                if flag.kind == "bool":
                    if rest.startswith("="):
                        options.append((flag, _parse_bool(flag, rest[1:])))
                        break
                    options.append((flag, "true"))
                    j += 1
                    continue
                if rest:
                    options.append((flag, rest[1:] if rest.startswith("=") else rest))
                elif i < n:
                    options.append((flag, argv[i]))
                    i += 1
                else:
                    raise _usage(flag)(f"flag needs an argument: '{ch}' in -{ch}")
                break
        else:
            positional.append(arg)
    if len(positional) > 1:  # buildx refuses it with exit 1 (measured, 0.13 and 0.29)
        raise BuildxError(f'"sbuild" requires at most 1 argument (PATH | URL | -), got {len(positional)}: '
                          f"{' '.join(positional)}")
    return BuildCommand(tuple(options), positional[0] if positional else ".", bool(positional))


def help_text(prog: str = "sbuild") -> str:
    lines = [
        f"Usage: {prog} [OPTIONS] [PATH | URL | -]",
        f"       {prog} stages [PATH] [-f FILE|URL] [--build-arg K=V] [--json]",
        f"       {prog} warm [--stage NAME ...] (--cache-repo REF | --cache-dir DIR) [OPTIONS] [PATH]",
        f"       {prog} version | sbuildctl COMMAND [ARGS]",
        "",
        "Build like `docker buildx build` (PATH defaults to .), with per-stage progress and reports.",
        "",
        "sbuild options:",
    ]
    lines += _rows(SBUILD_FLAGS)
    lines += ["", "docker buildx build options (same meaning as in buildx; a flag the installed buildx lacks is",
              "refused as buildx refuses it, and one it adds passes through):"]
    lines += _rows(tuple(f for f in BUILDX_FLAGS if not f.hidden))
    lines += ["", "Commands:", "  stages    List the stages of a Dockerfile and what each needs",
              "  warm      Build every stage into the cache (--cache-repo/--cache-dir), no image",
              "  version   Show the version (also --version)",
              "  build     docker's verb: the same as no command",
              "", "A first word that names a directory here is the build context, as in `docker build build`;",
              "`sbuildctl COMMAND` always runs the command."]
    return "\n".join(lines) + "\n"


def _rows(flags: tuple[Flag, ...]) -> list[str]:
    rows = []
    for f in flags:
        short = f"-{f.short}, " if f.short else "    "
        rows.append(f"  {short}--{f.name} {f.metavar}".ljust(40) + f.help)
    return rows
