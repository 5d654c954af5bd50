from __future__ import annotations

import re

import pytest

from sbuild import flags
from sbuild.errors import BuildxError, BuildxUsageError, UsageError
from sbuild.installed import Buildx, parse_help, parse_version

from .helpers import DATA, help_flags

# pflag value types -> how sbuild must parse them
_KIND = {"bool": "bool", "string": "string", "stringArray": "array", "strings": "list", "bytes": "string",
         "ulimit": "array"}


@pytest.mark.parametrize("recorded", ["buildx-build-help.txt", "buildx-build-help-experimental.txt",
                                      "buildx-0.29-build-help.txt"])
def test_every_buildx_flag_is_mirrored_with_the_same_shape(recorded: str) -> None:
    expected = help_flags((DATA / recorded).read_text())
    assert len(expected) >= (36 if "experimental" in recorded else 32)
    ours = {f.name: f for f in flags.BUILDX_FLAGS}
    new = "0.29" in recorded
    for name, (short, typ) in expected.items():
        assert name in ours, f"buildx flag --{name} is missing from sbuild"
        assert ours[name].short == short, name
        # --allow became a stringArray in later buildx; sbuild passes its value on as given either way
        assert ours[name].kind == _KIND[typ] or (new and name == "allow"), name
    if recorded == "buildx-build-help.txt":  # 0.13.1 as shown: sbuild's table marks what came later
        visible = {f.name for f in flags.BUILDX_FLAGS if not f.hidden and not f.experimental and not f.since}
        assert visible == set(expected), "sbuild shows a flag buildx does not"
    if new:
        assert {f.name for f in flags.BUILDX_FLAGS if f.since} <= set(expected)


def test_sbuild_flags_do_not_shadow_buildx_flags() -> None:
    names = [f.name for f in flags.ALL_FLAGS]
    shorts = [f.short for f in flags.ALL_FLAGS if f.short]
    assert len(names) == len(set(names))
    assert len(shorts) == len(set(shorts))


def test_pflag_forms() -> None:
    cmd = flags.parse(["-t", "a:1", "--tag=b:2", "-tc:3", "-t=d:4", "--pull=false", "--no-cache", "ctx",
                       "--build-arg", "X=1", "-qf", "Dockerfile.dev"])
    assert cmd.values("tag") == ["a:1", "b:2", "c:3", "d:4"]
    assert cmd.value("pull") == "false"
    assert cmd.flag("no-cache") and cmd.flag("quiet")
    assert cmd.value("file") == "Dockerfile.dev"
    assert cmd.context == "ctx"
    assert cmd.buildx_args() == ["--tag=a:1", "--tag=b:2", "--tag=c:3", "--tag=d:4", "--pull=false",
                                 "--no-cache", "--build-arg=X=1", "--quiet", "--file=Dockerfile.dev"]


def test_values_that_look_like_flags_and_double_dash() -> None:
    cmd = flags.parse(["--build-arg", "--weird=1", "--", "-"])
    assert cmd.values("build-arg") == ["--weird=1"]
    assert cmd.context == "-"


def test_stdin_context_and_default() -> None:
    assert flags.parse(["-"]).context == "-"
    cmd = flags.parse([])
    assert cmd.context == "." and not cmd.context_given


def test_list_flags_split_on_commas_and_scalars_take_the_last() -> None:
    cmd = flags.parse(["--stage", "lint,test", "--stage", "deploy", "--target", "a", "--target", "b",
                       "--add-host", "h1:1.1.1.1,h2:2.2.2.2"])
    assert cmd.values("stage") == ["lint", "test", "deploy"]
    assert cmd.value("target") == "b"
    assert cmd.values("add-host") == ["h1:1.1.1.1", "h2:2.2.2.2"]
    assert "--stage=lint,test" not in cmd.buildx_args()


@pytest.mark.parametrize(("argv", "message"), [
    (["--bogus"], "unknown flag: --bogus"),
    (["-Z"], "unknown shorthand flag: 'Z' in -Z"),
    (["--tag"], "flag needs an argument: --tag"),
    (["-t"], "flag needs an argument: 't' in -t"),
    (["--pull=maybe"], 'invalid argument "maybe" for "--pull" flag'),
])
def test_what_buildx_parser_rejects_is_refused_in_its_words_with_its_code(argv: list[str], message: str) -> None:
    # buildx 0.13.1 and 0.29.1 both exit 125 with these words (measured: docker buildx build ARGV).
    with pytest.raises(BuildxUsageError, match=re.escape(message)) as info:
        flags.parse(argv)
    assert info.value.exit_code == 125


def test_two_paths_are_refused_with_buildx_s_exit_code() -> None:
    with pytest.raises(BuildxError, match="requires at most 1 argument") as info:
        flags.parse(["a", "b"])
    assert info.value.exit_code == 1  # buildx 0.13 and 0.29: "requires exactly 1 argument", exit 1


@pytest.mark.parametrize(("argv", "message"), [
    (["--stage"], "flag needs an argument: --stage"),
    (["--cache-required=maybe"], 'invalid argument "maybe" for "--cache-required" flag'),
])
def test_sbuild_usage_errors_exit_2(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        flags.parse(argv)
    assert info.value.exit_code == 2


def _installed(help_file: str, version: tuple[int, int, int]) -> Buildx:
    return Buildx(version, parse_help((DATA / help_file).read_text()), "recorded")


OLD = ("buildx-build-help-experimental.txt", (0, 13, 1))
NEW = ("buildx-0.29-build-help.txt", (0, 29, 1))


@pytest.mark.parametrize("argv", [["--call=check"], ["--check"], ["-D"], ["--debug"]])
def test_newer_flags_pass_with_a_newer_buildx_and_are_refused_by_an_older_one(argv: list[str]) -> None:
    cmd = flags.parse([*argv, "ctx"], lambda: _installed(*NEW))
    assert cmd.buildx_args() == [argv[0] if "=" in argv[0] or argv[0] != "-D" else "--debug"]
    with pytest.raises(BuildxUsageError, match=r"^unknown (shorthand )?flag: ") as info:
        flags.parse([*argv, "ctx"], lambda: _installed(*OLD))
    assert info.value.exit_code == 125


def test_flags_that_newer_buildx_dropped_are_refused_there() -> None:
    assert flags.parse(["--root=/x"], lambda: _installed(*OLD)).value("root") == "/x"
    with pytest.raises(BuildxUsageError, match="unknown flag: --root"):
        flags.parse(["--root=/x"], lambda: _installed(*NEW))


def test_a_flag_sbuild_does_not_know_passes_through_as_the_installed_buildx_defines_it() -> None:
    future = Buildx((0, 40, 0), {**parse_help((DATA / NEW[0]).read_text()), "policy": (None, "array"),
                                 "fast": ("F", "bool")}, "recorded")
    cmd = flags.parse(["--policy", "p1", "-F", "--policy=p2", "ctx"], lambda: future)
    assert cmd.buildx_args() == ["--policy=p1", "--fast", "--policy=p2"]
    assert cmd.context == "ctx"


def test_the_installed_buildx_is_not_asked_for_flags_every_version_has() -> None:
    def never() -> Buildx:
        raise AssertionError("asked")

    cmd = flags.parse(["-t", "a:1", "--pull", "--stage", "test", "--progress=plain", "."], never)
    assert cmd.values("tag") == ["a:1"]


def test_installed_version_and_help_parsing() -> None:
    assert parse_version("github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4") == (0, 29, 1)
    assert parse_version("github.com/docker/buildx v0.13.1 788433953af10f2a698f5c07611dddce2e08c7a0") == (0, 13, 1)
    new = parse_help((DATA / NEW[0]).read_text())
    assert new["call"] == (None, "string") and new["debug"] == ("D", "bool") and new["allow"] == (None, "array")
    assert "root" not in new and "help" not in new


def test_help_lists_every_visible_flag() -> None:
    text = flags.help_text()
    for f in flags.ALL_FLAGS:
        if not f.hidden:
            assert f"--{f.name}" in text
