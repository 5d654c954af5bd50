from __future__ import annotations

import pytest

from sbuild import flags
from sbuild.errors import UsageError

from .helpers import DATA, help_flags

# pflag value types -> how sbuild must parse them
_KIND = {"bool": "bool", "string": "string", "stringArray": "array", "strings": "list", "bytes": "string",
         "ulimit": "array"}


@pytest.mark.parametrize("recorded", ["buildx-build-help.txt", "buildx-build-help-experimental.txt"])
def test_every_buildx_flag_is_mirrored_with_the_same_shape(recorded: str) -> None:
    expected = help_flags((DATA / recorded).read_text())
    assert len(expected) >= (36 if "experimental" in recorded else 32)
    ours = {f.name: f for f in flags.BUILDX_FLAGS}
    for name, (short, typ) in expected.items():
        assert name in ours, f"buildx flag --{name} is missing from sbuild"
        assert ours[name].short == short, name
        assert ours[name].kind == _KIND[typ], name
    visible = {f.name for f in flags.BUILDX_FLAGS if not f.hidden and not f.experimental}
    if "experimental" not in recorded:
        assert visible == set(expected), "sbuild shows a flag buildx does not"


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
    (["a", "b"], "requires at most 1 argument"),
])
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        flags.parse(argv)
    assert info.value.exit_code == 2


def test_help_lists_every_visible_flag() -> None:
    text = flags.help_text()
    for f in flags.ALL_FLAGS:
        if not f.hidden:
            assert f"--{f.name}" in text
