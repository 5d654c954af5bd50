"""plan.compose: each attempt's buildx command lines and bake file from the parsed command, without a
process or a file written (the build runs what it returns)."""

from __future__ import annotations

import copy

from sbuild import flags, plan
from sbuild.cache import CacheSettings, StageCache

from .helpers import PIPELINE

TMP = "/tmp/sbuild-test"
REPO = "registry.example/team/cache"


def _setting(*argv: str, cache: CacheSettings | None = None, tag_after: bool = False, prints_id: bool = False,
             special: dict[str, str] | None = None) -> plan.Setting:
    cmd = flags.parse([*argv, str(PIPELINE)], None)
    return plan.Setting(cmd, plan.make(cmd), cache, tag_after, prints_id, special or {}, TMP)


def _cache(*stages: str, imports: bool = True) -> CacheSettings:
    return CacheSettings({s: StageCache(s, (f"type=registry,ref={REPO}:{s}-main",) if imports else (),
                                        (f"type=registry,ref={REPO}:{s}-main,mode=max",)) for s in stages})


def test_one_target_is_one_buildx_build() -> None:
    [inv] = plan.compose(_setting("--target", "test", "-t", "app:1"), export=True)
    assert inv.subcommand == ("buildx", "build") and inv.bake is None and inv.iidfile is None
    assert inv.args == ["--target=test", "--tag=app:1", "--progress=rawjson", "--", str(PIPELINE)]


def test_quiet_gets_an_image_id_file_in_the_temp_dir() -> None:
    [inv] = plan.compose(_setting("-q", "--target", "test", prints_id=True), export=True)
    assert inv.iidfile == f"{TMP}/iid" and f"--iidfile={TMP}/iid" in inv.args
    assert not any(a.startswith("--quiet") or a == "-q" for a in inv.args)


def test_a_device_iidfile_is_given_to_buildx_as_a_temp_file() -> None:
    [inv] = plan.compose(_setting("--iidfile", "/dev/stdout", special={"iidfile": f"{TMP}/iidfile"}), export=True)
    assert f"--iidfile={TMP}/iidfile" in inv.args and "--iidfile=/dev/stdout" not in inv.args
    assert inv.iidfile == f"{TMP}/iidfile"


def test_several_stages_are_one_bake_and_the_plan_is_left_as_it_was() -> None:
    s = _setting("--stage", "test,deploy", "-t", "app:1", tag_after=True)
    before = copy.deepcopy(s.plan.bake)
    [inv] = plan.compose(s, export=True)
    assert inv.subcommand == ("buildx", "bake") and inv.bake_file == f"{TMP}/bake.json"
    assert inv.args[:2] == ["--file", f"{TMP}/bake.json"] and inv.args[-1] == "--progress=rawjson"
    assert inv.bake is not None
    targets = inv.bake["target"]
    assert targets["deploy"]["output"] == ["type=docker"]  # unnamed: tagged after every stage passed
    assert "tags" not in targets["deploy"] and targets["test"]["output"] == ["type=cacheonly"]
    assert s.plan.bake == before  # compose copies: a second attempt starts from the same definition


def test_without_tag_after_deploy_keeps_the_plan_s_output() -> None:
    s = _setting("--stage", "test,deploy", "-t", "app:1")
    [inv] = plan.compose(s, export=True)
    assert inv.bake is not None and s.plan.bake is not None
    assert inv.bake["target"]["deploy"]["output"] == s.plan.bake["target"]["deploy"]["output"] == ["type=cacheonly"]


def test_export_false_drops_every_cache_export() -> None:
    s = _setting("--target", "test", "--cache-to", "type=inline", cache=_cache("test"))
    [with_export] = plan.compose(s, export=True)
    [without] = plan.compose(s, export=False)
    assert f"--cache-to=type=registry,ref={REPO}:test-main,mode=max" in with_export.args
    assert "--cache-to=type=inline" in with_export.args
    assert not any(a.startswith("--cache-to") for a in without.args)
    assert f"--cache-from=type=registry,ref={REPO}:test-main" in without.args  # the import stays


def test_stages_importing_sbuild_cache_get_a_session_each_in_dockerfile_order() -> None:
    s = _setting("--stage", "deploy,test", "-t", "app:1", cache=_cache("test", "deploy"), tag_after=True)
    assert plan.per_stage_sessions(s.cache)
    invs = plan.compose(s, export=True)
    assert [inv.subcommand for inv in invs] == [("buildx", "build")] * 2
    targets = [next(a for a in inv.args if a.startswith("--target=")) for inv in invs]
    order = [n for n in s.plan.graph.names if n in ("test", "deploy")] if s.plan.graph else []
    assert targets == [f"--target={n}" for n in order]
    deploy = invs[targets.index("--target=deploy")]
    assert "--output=type=docker" in deploy.args and not any(a.startswith("--tag") for a in deploy.args)


def test_no_import_means_one_bake_even_with_cache() -> None:
    s = _setting("--stage", "test,deploy", cache=_cache("test", "deploy", imports=False))
    assert not plan.per_stage_sessions(s.cache)
    [inv] = plan.compose(s, export=True)
    assert inv.bake is not None
    assert inv.bake["target"]["test"]["cache-to"] == [f"type=registry,ref={REPO}:test-main,mode=max"]


def test_finalizing_builds_the_deploy_target_with_its_tags_and_exports_nothing() -> None:
    s = _setting("--stage", "test,deploy", "-t", "app:1", "--push", cache=_cache("test", "deploy"))
    [inv] = plan.compose(s, export=True, finalizing=True)
    assert inv.subcommand == ("buildx", "build")
    assert "--target=deploy" in inv.args and "--tag=app:1" in inv.args and "--push" in inv.args
    assert f"--cache-from=type=registry,ref={REPO}:deploy-main" in inv.args
    assert not any(a.startswith("--cache-to") for a in inv.args)


def test_compose_is_pure() -> None:
    s = _setting("--stage", "test,deploy", "-t", "app:1", cache=_cache("test", "deploy"), tag_after=True)
    assert plan.compose(s, export=True) == plan.compose(s, export=True)
