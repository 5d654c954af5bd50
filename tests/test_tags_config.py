from __future__ import annotations

import pytest

from sbuild import config
from sbuild.errors import UsageError
from sbuild.tags import GitFacts, check_reference, expand

SHA = "0123456789abcdef0123456789abcdef01234567"
RULES = ["{branch}", "sha-{short_sha}", "{version}", "{major}.{minor}", "{major}", "latest", "{env.BUILD_ID}",
         "{date}"]


def test_release_tag_on_a_feature_branch() -> None:
    refs, notes = expand(RULES, "reg:5000/app", GitFacts(SHA, "feature/x", "main", ("v1.2.3",)),
                         {"BUILD_ID": "77"}, "20261128")
    assert refs == ["reg:5000/app:feature-x", "reg:5000/app:sha-0123456", "reg:5000/app:1.2.3", "reg:5000/app:1.2",
                    "reg:5000/app:1", "reg:5000/app:latest", "reg:5000/app:77", "reg:5000/app:20261128"]
    assert notes == []


def test_feature_branch_without_tag_skips_what_is_not_there() -> None:
    refs, notes = expand(RULES, "app", GitFacts(SHA, "feature/x", "main", ()), {}, "20261128")
    assert refs == ["app:feature-x", "app:sha-0123456", "app:20261128"]
    assert any("latest" in n and "default branch" in n for n in notes)
    assert any("{version}" in n for n in notes)
    assert any("{env.BUILD_ID}" in n for n in notes)


def test_latest_on_the_default_branch_and_prereleases() -> None:
    refs, _ = expand(["latest"], "app", GitFacts(SHA, "main", "main", ()), {}, "d")
    assert refs == ["app:latest"]
    refs, notes = expand(["{version}", "{major}", "latest"], "app",
                         GitFacts(SHA, "feature/x", "main", ("v2.0.0-rc.1",)), {}, "d")
    assert refs == ["app:2.0.0-rc.1"]  # 2 and latest must not move to a pre-release
    assert len(notes) == 2


def test_highest_semver_tag_wins() -> None:
    refs, _ = expand(["{version}"], "app", GitFacts(SHA, "main", "main", ("v1.2.3", "v1.10.0", "nightly")), {}, "d")
    assert refs == ["app:1.10.0"]


def test_unknown_placeholder_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"unknown placeholder \{commit\}"):
        expand(["{commit}"], "app", GitFacts(SHA, "main", "main", ()), {}, "d")


@pytest.mark.parametrize(("ref", "message"), [
    ("App:1", "repository name must be lowercase"),
    ("app:-x", "the tag must match"),
    ("app:" + "x" * 129, "the tag must match"),
    ("a//b", "not a valid image reference"),
    ("app:1:2", "not a valid image reference"),
])
def test_invalid_references(ref: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        check_reference(ref)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("ref", ["app", "app:1.2.3", "127.0.0.1:5000/team/app:feature-x", "localhost/app",
                                 "registry.example.com/a/b/c:latest", "app@sha256:" + "a" * 64, "a_b"])
def test_valid_references(ref: str) -> None:
    check_reference(ref)


def test_config_sbuild_toml_and_pyproject(tmp_path) -> None:
    (tmp_path / "sbuild.toml").write_text('image = "reg/app"\ntags = ["{branch}"]\nretries = 5\nstages = ["test"]\n')
    cfg = config.load(str(tmp_path), None)
    assert cfg is not None and cfg.values["retries"] == 5
    assert config.as_flags(cfg, set()) == ["--retries=5", "--stage=test"]
    assert config.as_flags(cfg, {"retries"}) == ["--stage=test"]  # flags override config
    (tmp_path / "sbuild.toml").unlink()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.sbuild]\ndeploy-stage = "runtime"\n')
    cfg = config.load(str(tmp_path), None)
    assert cfg is not None and config.as_flags(cfg, set()) == ["--deploy-stage=runtime"]


@pytest.mark.parametrize(("text", "message"), [
    ('imgae = "x"\n', r'unknown key imgae .*did you mean "image"\?'),
    ('retries = "3"\n', "retries must be a whole number, not str '3'"),
    ("retries = true\n", "retries must be a whole number"),
    ('tags = "latest"\n', "tags must be a list of strings"),
    ("tags = [1]\n", "tags must be a list of strings"),
    ("image = \n", "not valid TOML"),
])
def test_config_errors_name_the_key_and_file(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "sbuild.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as info:
        config.load(str(tmp_path), None)
    assert str(path) in str(info.value)


def test_pyproject_without_sbuild_table_is_ignored(tmp_path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert config.load(str(tmp_path), None) is None
