"""The whole command through the fake docker, for the build core's paths the other fast tests do not
take: the executable's exit, a device as --iidfile, the temp files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sbuild import build, cli

from .helpers import PIPELINE, Fake


def test_the_executable_exits_with_the_build_s_code(fake: Fake, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # run() ends with os._exit (sys.exit under coverage, which saves its data at exit): here both raise.
    def _exit(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", _exit)
    monkeypatch.setattr("sys.argv", ["sbuild", "--target", "test", str(PIPELINE)])
    with pytest.raises(SystemExit) as info:
        cli.run()
    assert info.value.code == 0
    monkeypatch.setattr("sys.argv", ["sbuildctl", "bogus"])
    with pytest.raises(SystemExit) as info:
        cli.ctl_run()
    assert info.value.code == 2 and 'unknown command "bogus"' in capsys.readouterr().err


def test_a_symlinked_iidfile_gets_buildx_s_id_through_a_temp_file(fake: Fake, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # buildx writes --iidfile by rename, which would replace a symlink (or /dev/stdout) with a file.
    target = tmp_path / "real-iid"
    target.write_text("")
    link = tmp_path / "iid"
    link.symlink_to(target)
    assert cli.main(["--iidfile", str(link), "--target", "test", str(PIPELINE)]) == 0, capsys.readouterr().err
    [call] = fake.builds()
    given = next(a.split("=", 1)[1] for a in call["argv"] if a.startswith("--iidfile="))
    assert given != str(link) and os.path.basename(given) == "iidfile"
    assert link.is_symlink() and target.read_text().startswith("sha256:")
    assert not os.path.exists(os.path.dirname(given))  # sbuild's temp directory is gone


def test_no_temp_directory_is_made_for_a_plain_build(fake: Fake, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    assert cli.main(["--target", "test", str(PIPELINE)]) == 0
    assert list(tmp.iterdir()) == []
    assert cli.main(["--stage", "lint,test", str(PIPELINE)]) == 0  # a bake file: made, then removed
    assert list(tmp.iterdir()) == []


def test_a_missing_tmpdir_falls_back_as_tempfile_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", "/nonexistent/sbuild")
    assert os.path.dirname(build.tmpdir_path()) == "/tmp"


def test_an_earlier_iidfile_is_gone_when_the_stages_fail(fake: Fake, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # buildx removes --iidfile first; with --stage the build that writes it runs only after every stage
    # passed (or is none: the session's own image), so sbuild removes it first, as buildx would.
    iid = tmp_path / "iid"
    iid.write_text("sha256:" + "0" * 64)
    fake.stream("buildx-0.13/pipeline-fail-test")  # recorded: the test stage fails (see its .cmd)
    assert cli.main(["--stage", "test,deploy", "-t", "app:1", "--iidfile", str(iid), str(PIPELINE)]) == 1
    assert not iid.exists()
    assert len(fake.builds()) == 1  # the stages' session only: deploy's image is never made
    capsys.readouterr()


def test_an_iidfile_that_cannot_be_removed_fails_before_the_build(fake: Fake,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # buildx 0.13.1, measured: `docker buildx build --iidfile /proc/version .` says
    # "ERROR: removing image ID file: remove /proc/version: operation not permitted" and exits 1 before it
    # builds (a regular file not even root may remove). sbuild the same, with no traceback.
    assert cli.main(["--stage", "test,deploy", "-t", "app:1", "--iidfile", "/proc/version", str(PIPELINE)]) == 1
    assert capsys.readouterr().err == "ERROR: removing image ID file: remove /proc/version: operation not permitted\n"
    assert fake.builds() == []
