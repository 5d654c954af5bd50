"""What a command line becomes: one `docker buildx build`, or one `docker buildx bake` session.

`--stage a --stage b` builds the stages and what they need in ONE BuildKit session: a generated bake
definition with a target per stage, so shared stages are solved once and independent ones run
concurrently. Only the deploy stage produces an image; the others export to `type=cacheonly`.
Pure apart from reading the Dockerfile.
"""

from __future__ import annotations

import os

from ._tuple import TYPE_CHECKING
from .errors import DockerfileError, UsageError
from .flags import BuildCommand, build_arg_map

if TYPE_CHECKING:  # stages (and BuildKit's parser) load only when a Dockerfile is read
    from typing import Any, NamedTuple

    from .stages import Stage, StageGraph
else:
    from ._tuple import NamedTuple

# buildx build flags that bake 0.13 cannot set per target.
_NOT_IN_BAKE = ("add-host", "network", "cgroup-parent", "allow")
# docker-build compatibility flags buildx ignores anyway.
_IGNORED = ("compress", "cpu-period", "cpu-quota", "cpu-shares", "cpuset-cpus", "cpuset-mems", "force-rm",
            "isolation", "memory", "memory-swap", "rm", "security-opt", "squash")
# Flags about the image: they go to the deploy stage only.
IMAGE_FLAGS = ("tag", "output", "load", "push", "iidfile", "metadata-file", "annotation", "attest",
                "provenance", "sbom")


class Plan(NamedTuple):
    graph: StageGraph | None
    selected: tuple[Stage, ...]  # the stages asked for (empty: a plain build)
    closure: tuple[Stage, ...]  # what gets built (stages asked for and what they need)
    deploy: Stage | None
    bake: dict[str, Any] | None  # the bake definition, when several stages are built
    targets: dict[str, str]  # bake target -> stage key
    notes: tuple[str, ...]  # one-line notes for the user (e.g. tags not applied)
    # Deploy is built cache-only with the other stages; its image (tags, push, load) is made by a second,
    # fully cached build once every stage passed: nothing is tagged or pushed when a test failed.
    finalize: bool = False

    @property
    def builds_deploy(self) -> bool:
        return self.deploy is not None and (not self.selected or self.deploy in self.selected)


def build_args(cmd: BuildCommand) -> dict[str, str]:
    return build_arg_map(cmd.values("build-arg"))


def load_graph(cmd: BuildCommand, *, required: bool) -> StageGraph | None:
    """Read the stage graph. Without --stage a file sbuild cannot read is left to buildx to judge."""
    path = cmd.dockerfile
    if path is None:
        if required:
            raise UsageError("--stage needs a Dockerfile sbuild can read: not stdin (-f -) or a remote context")
        return None
    from . import stages

    platforms = [p for v in cmd.values("platform") for p in v.split(",") if p]
    try:
        return stages.read(path, build_args=build_args(cmd), target_platform=platforms[0] if platforms else None)
    except DockerfileError:
        if required:
            raise
        return None
    except OSError as e:
        if required:
            raise UsageError(f"cannot read {path}: {e.strerror}") from None
        return None


def selected_stage_names(cmd: BuildCommand) -> list[str]:
    out: list[str] = []
    for v in cmd.values("stage"):
        for name in v.split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out


EMPTY = Plan(None, (), (), None, None, {}, ())


def needs_graph_first(cmd: BuildCommand) -> bool:
    """Whether the buildx command depends on the stage graph. A plain build only needs it for the
    report, so it is read while buildx starts (its own start-up takes longer than reading the file)."""
    return any(cmd.has(f) for f in ("stage", "deploy-stage", "cache-repo", "cache-dir", "cache-only"))


def make(cmd: BuildCommand) -> Plan:
    names = selected_stage_names(cmd)
    if names and cmd.has("target"):
        raise UsageError("--stage and --target cannot be used together: --stage NAME already builds NAME "
                         "and what it needs (use one or the other)")
    graph = load_graph(cmd, required=bool(names) or cmd.has("deploy-stage"))
    if graph is None:
        return EMPTY
    from .stages import check_buildable, unknown_stage_message

    if names:  # sbuild composes the sessions from the graph: one BuildKit would refuse stops here
        check_buildable(graph)

    deploy_name = cmd.value("deploy-stage")
    deploy = graph.find(deploy_name) if deploy_name else graph.default
    if deploy is None:
        assert deploy_name is not None
        raise UsageError(unknown_stage_message(deploy_name, graph) + " (--deploy-stage)")
    if not names:
        target = cmd.value("target")
        built = graph.find(target) if target else graph.default
        closure = tuple(graph.closure([built.key])) if built else ()
        if cmd.flag("cache-only") and built is not None:  # one stage, no image: as --stage NAME
            return Plan(graph, (built,), closure, None, None, {}, _image_flag_note(cmd, deploy))
        return Plan(graph, (), closure, deploy if built is deploy else None, None, {}, ())
    selected: list[Stage] = []
    for n in names:
        st = graph.find(n)
        if st is None:
            raise UsageError(unknown_stage_message(n, graph))
        if st not in selected:
            selected.append(st)
    closure = tuple(graph.closure([s.key for s in selected]))
    notes: list[str] = []
    has_deploy = deploy in selected and not cmd.flag("cache-only") and not evaluates(cmd)
    if not has_deploy:
        notes += _image_flag_note(cmd, deploy)
    if len(selected) == 1:
        return Plan(graph, tuple(selected), closure, deploy if has_deploy else None, None, {}, tuple(notes))
    bake, targets = _bake_definition(cmd, graph, selected, deploy if has_deploy else None)
    return Plan(graph, tuple(selected), closure, deploy if has_deploy else None, bake, targets, tuple(notes),
                finalize=has_deploy)


def _image_flag_note(cmd: BuildCommand, deploy: Stage) -> tuple[str, ...]:
    image_flags = [f for f in ("tag", "push", "load", "output") if cmd.has(f)]
    if not image_flags:
        return ()
    flags = ", ".join("-t" if f == "tag" else f"--{f}" for f in image_flags)
    if cmd.flag("cache-only"):
        return (f"{flags} not applied: --cache-only builds no image",)
    return (f'{flags} not applied: only the deploy stage "{deploy.key}" gets tags and outputs, '
            f"and it is not among the stages built (add --stage {deploy.key})",)


def single_stage_args(cmd: BuildCommand, plan: Plan) -> tuple[list[str], frozenset[str]]:
    """Extra buildx args and dropped flags for a build of one stage (--stage NAME)."""
    stage = plan.selected[0]
    if plan.deploy is not None:
        return [f"--target={stage.key}"], frozenset()
    return [f"--target={stage.key}", "--output=type=cacheonly"], frozenset(IMAGE_FLAGS)


def bake_target_name(stage: Stage) -> str:
    return stage.key.replace(".", "_")


def _kv(values: list[str]) -> dict[str, str]:
    out = {}
    for kv in values:
        k, _, v = kv.partition("=")
        out[k] = v
    return out


def _bake_definition(cmd: BuildCommand, graph: StageGraph, selected: list[Stage],
                     deploy: Stage | None) -> tuple[dict[str, Any], dict[str, str]]:
    for f in _NOT_IN_BAKE:
        if cmd.has(f):
            raise UsageError(f"--{f} cannot be used with several --stage values: buildx 0.13 bake has no "
                             "per-target equivalent (build one --stage at a time)")
    context = os.path.abspath(cmd.context)
    path = cmd.dockerfile
    assert path is not None
    common: dict[str, object] = {"context": context, "dockerfile": os.path.abspath(path)}
    args = build_args(cmd)
    if args:
        common["args"] = args
    if cmd.has("label"):
        common["labels"] = _kv(cmd.values("label"))
    for flag, key in (("secret", "secret"), ("ssh", "ssh"), ("no-cache-filter", "no-cache-filter"),
                      ("cache-from", "cache-from"), ("ulimit", "ulimits")):
        if cmd.has(flag):
            common[key] = cmd.values(flag)
    platforms = [p for v in cmd.values("platform") for p in v.split(",") if p]
    if platforms:
        common["platforms"] = platforms
    if cmd.has("build-context"):
        common["contexts"] = _kv(cmd.values("build-context"))
    if cmd.has("shm-size"):
        common["shm-size"] = cmd.value("shm-size")
    targets: dict[str, dict[str, object]] = {}
    names: dict[str, str] = {}
    for st in selected:
        # Every stage, deploy included, is cache-only here: deploy's image comes after all passed.
        t = dict(common, target=st.key, output=["type=cacheonly"])
        name = bake_target_name(st)
        targets[name] = t
        names[name] = st.key
    if cmd.has("cache-to"):  # the user's own --cache-to: the deploy stage's, else the last one's
        owner = bake_target_name(deploy if deploy is not None else selected[-1])
        targets[owner]["cache-to"] = cmd.values("cache-to")
    return {"group": {"default": {"targets": list(targets)}}, "target": targets}, names


def evaluates(cmd: BuildCommand) -> bool:
    """`--call check|outline|targets`, `--check` or `--print`: buildx evaluates the build instead of running
    it, so no stage is built and none may be reported (buildx 0.15+; --print is 0.13's experimental form)."""
    call = cmd.value("call")
    return (call is not None and call != "build") or cmd.flag("check") or cmd.has("print")


def bake_flags(cmd: BuildCommand, plan: Plan) -> list[str]:
    """Global `docker buildx bake` flags for the session."""
    out = []
    for flag in ("builder", "provenance", "sbom", "call"):
        v = cmd.value(flag)
        if v is not None:
            out.append(f"--{flag}={v}")
    for flag in ("no-cache", "pull", "check"):
        if cmd.flag(flag):
            out.append(f"--{flag}")
    return out
