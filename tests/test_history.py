"""The history: store (SQLite, concurrency, damage, retention), records (no secret), baselines, compare/diff,
the registry record's tag, and the commands, in-process against the fake `docker`."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sbuild import cli, compare, history, history_registry, record
from sbuild.cache import tag_safe
from sbuild.report import report_from_json

from .helpers import Fake, _pipeline
from .history_writer import _record, _writer

# -- the store ------------------------------------------------------------------------------------

def test_store_saves_finds_by_prefix_and_keeps_the_newest_per_project(tmp_path: Path) -> None:
    s = history.Store(str(tmp_path / "h.db"))
    for i in range(5):
        s.save(_record(i), keep=3)
    s.save(_record(9, project="other"), keep=3)
    assert [r.id for r in s.rows(project="example.com/app:Dockerfile")] == ["id0004", "id0003", "id0002"]
    assert [r.id for r in s.rows()] == ["id0009", "id0004", "id0003", "id0002"]
    assert s.get("id0003")["commit"] == f"{3:040x}"  # type: ignore[index]
    assert s.get("id0000") is None  # trimmed
    with pytest.raises(history.StoreError, match="ambiguous"):
        s.get("id000")
    assert s.rows(stage="base")[0].stage_times == {"base": 0.1, "test": 10.0}  # record 9, the newest
    assert s.rows(stage="lint") == []


def test_baseline_is_the_last_success_on_the_branch_else_the_default_branch(tmp_path: Path) -> None:
    s = history.Store(str(tmp_path / "h.db"))
    s.save(_record(1, branch="main"))
    s.save(_record(2, branch="main"))
    s.save(_record(3, branch="main", status="failed"))  # a failed build is never a baseline
    s.save(_record(4, branch="main", stages=("lint", "test")))  # another stage set
    s.save(_record(5, project="other", branch="main"))
    assert s.baseline("example.com/app:Dockerfile", "test", ["main"])["id"] == "id0002"  # type: ignore[index]
    assert s.baseline("example.com/app:Dockerfile", "test", ["feature/x", "main"])["id"] == "id0002"  # type: ignore
    s.save(_record(6, branch="feature/x"))
    assert s.baseline("example.com/app:Dockerfile", "test", ["feature/x", "main"])["id"] == "id0006"  # type: ignore
    assert s.baseline("example.com/app:Dockerfile", "lint,test", ["main"])["id"] == "id0004"  # type: ignore
    assert s.baseline("example.com/app:Dockerfile", "deploy", ["main"]) is None


def test_a_damaged_file_is_moved_aside_and_a_new_store_started(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(b"this is not a database at all" * 100)
    s = history.Store(str(path))
    s.save(_record(1))
    assert s.moved_aside is not None and Path(s.moved_aside).read_bytes().startswith(b"this is not")
    assert [r.id for r in history.Store(str(path)).rows()] == ["id0001"]


def test_a_store_from_a_newer_sbuild_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(history.MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(history.StoreError, match="newer sbuild"):
        history.Store(str(path)).save(_record(1))
    assert path.exists()


def test_migrations_take_an_empty_store_to_the_current_schema(tmp_path: Path) -> None:
    s = history.Store(str(tmp_path / "h.db"))
    db = s.db()
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(history.MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_eight_writers_at_once_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "h.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 25, k * 1000)) for k in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 8  # a "database is locked" would have raised
    assert history.Store(path).count() == 200


def test_a_writer_killed_at_any_point_leaves_a_store_that_opens_without_half_records(tmp_path: Path) -> None:
    path = str(tmp_path / "h.db")
    code = ("import sys; sys.path[:0] = sys.argv[2:]; from tests.history_writer import _writer; "
            "_writer(sys.argv[1], 100000, 0, ready=True)")
    root = str(Path(__file__).parent.parent)
    counts = []
    for delay in (0.0, 0.01, 0.03, 0.07, 0.15):  # after its first record: it writes as fast as it can
        p = subprocess.Popen([sys.executable, "-c", code, path, root, os.path.join(root, "wrapper")],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and _line(p.stdout) == "ready"  # however slow its start-up
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        store = history.Store(path)
        records = list(store)
        assert all(r["report"]["stages"] for r in records)  # whole records only
        counts.append(len(records))
        store.close()
    assert counts[-1] > 0  # the writer did get to write before it was killed


# -- records --------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, want", [
    ("git@github.com:Org/Repo.git", "github.com/Org/Repo"),
    ("https://github.com/Org/Repo", "github.com/Org/Repo"),
    ("https://user:ghp_secret@GitHub.com/Org/Repo.git/", "github.com/Org/Repo"),
    ("ssh://git@gitlab.example.com:2222/team/app.git", "gitlab.example.com/team/app"),
])
def test_remote_urls_normalize_to_one_identity_without_credentials(url: str, want: str) -> None:
    assert record.normalize_remote(url) == want


def test_build_args_are_hashed_and_secret_named_ones_only_marked_set() -> None:
    got = record.hash_build_args({"VERSION": "1.2", "NPM_TOKEN": "s3cr3t-value"}, None)
    assert got["NPM_TOKEN"] == "set"
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", got["VERSION"])
    keyed = record.hash_build_args({"NPM_TOKEN": "s3cr3t-value"}, "shared-key")
    again = record.hash_build_args({"NPM_TOKEN": "s3cr3t-value"}, "shared-key")
    other = record.hash_build_args({"NPM_TOKEN": "another"}, "shared-key")
    assert keyed == again != other and keyed["NPM_TOKEN"].startswith("hmac-sha256:")
    assert "s3cr3t" not in json.dumps([got, keyed]) and "shared-key" not in json.dumps(keyed)


def test_record_keys_are_pinned() -> None:
    assert list(_record(1)) == ["schema_version", "id", "sbuild_version", "project", "branch", "default_branch",
                                "commit", "dirty", "builder", "platforms", "stages", "build_args", "status",
                                "exit_code", "started_at", "finished_at", "finished_at_epoch", "image", "report",
                                "fingerprints"]


_STAGE = st.from_regex(r"\A[a-z][a-z0-9_.-]{0,20}\Z")
_BRANCH = st.text(min_size=1, max_size=60)


@given(stages=st.lists(_STAGE, min_size=1, max_size=4), branch=_BRANCH, stage=_STAGE, other=_BRANCH)
def test_a_record_tag_is_a_valid_tag_and_never_a_cache_tag(stages: list[str], branch: str, stage: str,
                                                            other: str) -> None:
    tag = history_registry.record_tag("p", ",".join(sorted(stages)), branch)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag)
    assert tag != f"{stage}-{tag_safe(other)}"[:128]  # cache tags start with a stage name: a letter


def test_record_tags_differ_where_tag_safe_folds_names_together() -> None:
    assert tag_safe("feature/x") == tag_safe("feature-x")
    assert history_registry.record_tag("p", "test", "feature/x") != history_registry.record_tag("p", "test",
                                                                                                  "feature-x")


# -- compare ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("before, after, slower", [
    (10.0, 12.1, True), (10.0, 11.9, False), (1.0, 2.9, False), (1.0, 3.0, True), (20.0, 23.5, False),
])
def test_a_regression_is_20_percent_and_2_seconds_slower(before: float, after: float, slower: bool) -> None:
    assert compare.is_regression(after, before) is slower


def test_the_report_gains_deltas_regressions_and_the_image_change() -> None:
    base = _record(1, durations={"base": 0.5, "test": 4.0}, size=1000)
    now = report_from_json(_record(2, durations={"base": 0.6, "test": 7.0})["report"])
    got = compare.apply_baseline(now, base, "registry", record.Image("sha256:" + "b" * 64, 1500, 4), "new1")
    js = got.to_json()
    assert js["regressions"] == ["test"]
    assert [(s["name"], s["baseline_duration_s"], s["delta_s"]) for s in js["stages"]] == [
        ("base", 0.5, 0.1), ("test", 4.0, 3.0)]
    assert js["baseline"] == {"id": "id0001", "branch": "main", "commit": f"{1:040x}",
                              "finished_at": base["finished_at"], "source": "registry"}
    assert js["image"] == {"digest": "sha256:" + "b" * 64, "size": 1500, "layers": 4, "baseline_size": 1000,
                           "size_delta": 500}
    from sbuild import render_report

    table = render_report.terminal(got)
    assert "7.0s (+3.0s)" in table and "0.6s (+" not in table
    assert "vs id0001 (main 0000000) from the registry: slower test +3.0s · image 1.5 kB (+500 B)" in table
    md = render_report.markdown(got)
    assert "| test | built | 1 | 0 | 7.0 s | +3.0 s ⚠️ slower |" in md


def test_diff_keys_are_pinned_and_steps_match_by_instruction() -> None:
    a = _record(1, durations={"test": 2.0})
    b = _record(2, durations={"test": 5.0, "lint": 1.0})
    d = compare.diff(a, b)
    assert list(d) == ["schema_version", "a", "b", "duration_delta_s", "image_size_delta", "stages"]
    assert list(d["a"]) == ["id", "branch", "commit", "finished_at", "status", "duration_s", "hit_ratio",
                            "image_size"]
    test = next(s for s in d["stages"] if s["name"] == "test")
    assert list(test) == ["name", "a", "b", "delta_s", "regression", "steps"]
    assert test["delta_s"] == 3.0 and test["regression"] is True
    assert test["steps"] == [{"step": "RUN x", "a_duration_s": 2.0, "b_duration_s": 5.0, "delta_s": 3.0,
                              "a_cached": False, "b_cached": False}]
    lint = next(s for s in d["stages"] if s["name"] == "lint")
    assert lint["a"] is None and lint["delta_s"] is None


# -- the commands, in-process with the fake docker -----------------------------------------------------

def _db() -> Path:
    return Path(os.environ["SBUILD_HOME"]) / "history.db"


def test_every_build_is_recorded_and_compared_with_the_last_good_one(fake: Fake,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    fake.stream("buildx-0.13/pipeline-fail-test")
    assert cli.main(["--target", "test", "app"]) == 1
    fake.stream("buildx-0.13/pipeline-warm-test")
    assert cli.main(["--target", "test", "--report", "one.json", "app"]) == 0
    one = json.loads(Path("one.json").read_text())
    assert one["baseline"] is None  # the failed build before it is no baseline
    assert cli.main(["--target", "test", "--report", "two.json", "app"]) == 0
    two = json.loads(Path("two.json").read_text())
    assert two["baseline"]["id"] == one["id"] and two["baseline"]["source"] == "local"
    capsys.readouterr()
    assert cli.main(["history", "-f", "app/Dockerfile", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [b["id"] for b in listed["builds"]][:2] == [two["id"], one["id"]]
    assert [b["status"] for b in listed["builds"]] == ["success", "success", "failed"]
    assert list(listed["builds"][0]) == ["id", "project", "finished_at", "branch", "commit", "status", "duration_s",
                                         "hit_ratio", "stages_asked", "stages", "source"]
    assert listed["project"].endswith("app/Dockerfile")  # no git here: the Dockerfile's absolute path
    assert cli.main(["history", "show", two["id"][:6], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == two["id"] and shown["report"]["baseline"]["id"] == one["id"]
    assert cli.main(["history", "show", two["id"]]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"build {two['id']} · success") and "STAGE" in text


def test_no_secret_reaches_the_store(fake: Fake) -> None:
    _pipeline(Path("app"))
    secret = "hunter2-" + "y" * 8
    assert cli.main(["--target", "test", "--build-arg", f"API_TOKEN={secret}", "--build-arg", "MODE=fast",
                     "--secret", f"id=npm,src=/run/{secret}", "app"]) == 0
    raw = b"".join(p.read_bytes() for p in _db().parent.rglob("*") if p.is_file())  # store, stat cache, key
    assert secret.encode() not in raw
    [rec] = list(history.Store(str(_db())))
    assert rec["build_args"]["API_TOKEN"] == "set" and rec["build_args"]["MODE"].startswith("sha256:")


def test_no_history_writes_no_store(fake: Fake) -> None:
    _pipeline(Path("app"))
    assert cli.main(["--target", "test", "--no-history", "app"]) == 0
    assert not _db().exists()
    Path("app/sbuild.toml").write_text("history = false\n")
    assert cli.main(["--target", "test", "app"]) == 0
    assert not _db().exists()


@pytest.mark.parametrize("args, message", [
    (["--baseline", "nosuchid"], '--baseline "nosuchid": no such build in the history'),
    (["--baseline", "missing.json"], '--baseline "missing.json": No such file or directory'),
    (["--history-keep", "0"], 'invalid --history-keep "0"'),
])
def test_bad_history_arguments_stop_before_anything_runs(fake: Fake, capsys: pytest.CaptureFixture[str],
                                                         args: list[str], message: str) -> None:
    _pipeline(Path("app"))
    assert cli.main([*args, "--target", "test", "app"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + message) and err.count("\n") == 1
    assert fake.builds() == []


def test_a_report_file_is_a_baseline(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    assert cli.main(["--target", "test", "--report", "r.json", "app"]) == 0
    before = json.loads(Path("r.json").read_text())
    for s in before["stages"]:  # a baseline slower by 1 s per stage
        s["duration_s"] += 1.0
    Path("slow.json").write_text(json.dumps(before))
    capsys.readouterr()
    assert cli.main(["--target", "test", "--baseline", "slow.json", "--report", "r2.json", "app"]) == 0
    now = json.loads(Path("r2.json").read_text())
    assert now["baseline"] == {"id": before["id"], "branch": None, "commit": None, "finished_at": None,
                               "source": "file"}
    assert [(s["name"], s["baseline_duration_s"], s["delta_s"]) for s in now["stages"]] == [
        (s["name"], b["duration_s"], round(s["duration_s"] - b["duration_s"], 3))
        for s, b in zip(now["stages"], before["stages"], strict=True)]
    assert now["regressions"] == []
    assert f"vs {before['id']} from the file: stages -" in capsys.readouterr().err


def test_a_store_that_cannot_be_written_costs_one_warning_not_the_build(fake: Fake, monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    Path("home-file").write_text("")
    monkeypatch.setenv("SBUILD_HOME", str(Path("home-file").resolve()))  # a file where a directory is wanted
    assert cli.main(["--target", "test", "app"]) == 0
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "history" in ln]
    assert len(warnings) == 1 and warnings[0].startswith("sbuild: warning: history:")


def test_one_git_status_gives_commit_branch_and_dirtiness() -> None:
    text = ("# branch.oid 8206f479cd8134db6f1ee1aa814675a94ceaccec\n# branch.head feature/x\n"
            "1 .M N... 100644 100644 100644 71d8 71d8 wrapper/sbuild/process.py\n")
    assert record.parse_status(text) == ("8206f479cd8134db6f1ee1aa814675a94ceaccec", "feature/x", True)
    assert record.parse_status("# branch.oid (initial)\n# branch.head main\n") == (None, "main", False)
    assert record.parse_status("# branch.oid abc\n# branch.head (detached)\n") == ("abc", None, False)


@pytest.mark.parametrize("refs, want", [
    ("refs/heads/main \nrefs/remotes/origin/HEAD refs/remotes/origin/trunk\n", "trunk"),
    ("refs/heads/master \nrefs/heads/main \n", "main"),
    ("refs/heads/master \n", "master"),
    ("", None),
])
def test_the_default_branch_is_origins_head_else_main_else_master(refs: str, want: str | None) -> None:
    assert record.default_branch_of(refs) == want


@pytest.mark.parametrize("version", ["buildx-0.13", "buildx-0.29"])
def test_the_exported_image_digest_is_read_from_the_stream(version: str) -> None:
    from sbuild.progress import exported_digest, load_stream

    text = (Path(__file__).parent / "data" / "streams" / version / "pipeline-push-cache.rawjson").read_text()
    want = re.search(r"exporting manifest list (sha256:[0-9a-f]{64})", text)
    assert want is not None
    assert exported_digest(load_stream(text)) == want.group(1)
    cache_only = (Path(__file__).parent / "data" / "streams" / version / "pipeline-bake-all.rawjson").read_text()
    assert exported_digest(load_stream(cache_only)) is None  # every stage to the cache: no image


@pytest.mark.parametrize("version", ["buildx-0.13", "buildx-0.29"])
def test_the_exported_digest_is_known_once_the_export_step_completed_and_not_before(version: str) -> None:
    # The history asks the engine about the deploy image as soon as this says it exists: a digest taken
    # from a half-done export would be a manifest of the index, not the image the tag names.
    from sbuild.progress import BuildModel, StreamSplitter, exported_digest, finished_export, load_stream

    text = (Path(__file__).parent / "data" / "streams" / version / "pipeline-push-cache.rawjson").read_text()
    final = exported_digest(load_stream(text))
    assert final is not None
    model, splitter = BuildModel(), StreamSplitter()
    seen: list[str | None] = []
    told: list[str | None] = []  # what the build's feed sees: only the steps each object finished
    for line in text.splitlines(keepends=True):
        ups = []
        for item in splitter.feed(line):
            ups += model.apply_text(item) if isinstance(item, str) else model.apply(item)
        seen.append(finished_export(model))
        told.append(finished_export(model, ups))
    first = next(i for i, d in enumerate(seen) if d is not None)
    assert first > 0 and set(seen[first:]) == {final}  # None, then the index's digest to the end
    assert [d for d in told if d is not None][:1] == [final] and told.index(final) == first
    assert exported_digest(model) == final
    # (the stream names the platform's manifest before the index: a digest taken then would be wrong)
    assert any("sha256:" + m != final for m in re.findall(r"exporting manifest sha256:([0-9a-f]{64})", text))
    cache_only = (Path(__file__).parent / "data" / "streams" / version / "pipeline-bake-all.rawjson").read_text()
    assert finished_export(load_stream(cache_only)) is None


def test_the_text_forms_of_history_show_diff_and_explain(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    fake.stream("buildx-0.13/pipeline-warm-test")
    assert cli.main(["--target", "test", "--report", "a.json", "app"]) == 0
    fake.stream("buildx-0.13/pipeline-cold-test")
    assert cli.main(["--target", "test", "--report", "b.json", "app"]) == 0
    a, b = (json.loads(Path(f).read_text()) for f in ("a.json", "b.json"))
    capsys.readouterr()
    assert cli.main(["history", "-f", "app/Dockerfile"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ID", "WHEN", "BRANCH", "COMMIT", "STATUS", "TIME", "CACHE", "STAGES"]
    assert [ln.split()[0] for ln in table[1:]] == [b["id"], a["id"]]
    assert cli.main(["diff", "-f", "app/Dockerfile"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"A {a['id']} ") and f"\nB {b['id']} " in text
    assert "cached → built" in text  # the cold build rebuilt what the warm one had cached
    assert cli.main(["explain", b["id"]]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"build {b['id']} (success) against {a['id']}")
    # The same inputs, rebuilt: the fake engine did not have them (nothing compared differs).
    assert "cache-unavailable: inputs equal the baseline's" in text
    assert cli.main(["diff", a["id"], b["id"], "--html", "d.html"]) == 0
    assert "<h1>sbuild diff</h1>" in Path("d.html").read_text()
    assert cli.main(["history", "show", a["id"], "--html", "s.html"]) == 0
    assert 'class="lane stage-lane"' in Path("s.html").read_text()
    capsys.readouterr()
    assert cli.main(["history", "-f", "app/Dockerfile", "--html", "h.html"]) == 0
    assert "wrote h.html: 2 builds" in capsys.readouterr().err


def test_the_registry_record_is_an_oci_artifact_beside_the_cache() -> None:
    rec = _record(1)
    blob = json.dumps(rec).encode()
    m = history_registry.manifest_for(blob, rec)
    assert (m["mediaType"], m["artifactType"]) == ("application/vnd.oci.image.manifest.v1+json",
                                                   "application/vnd.sbuild.history.v1+json")
    assert m["config"] == {"mediaType": "application/vnd.oci.empty.v1+json",
                           "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                           "size": 2}
    assert m["layers"][0]["size"] == len(blob)
    assert m["annotations"]["dev.sbuild.branch"] == "main" and m["annotations"]["dev.sbuild.id"] == "id0001"


def _line(pipe: object, timeout: float = 30.0) -> str:
    """A line from a child's pipe, or "" when none comes within the deadline."""
    import select

    ready, _, _ = select.select([pipe], [], [], timeout)
    return pipe.readline().strip() if ready else ""  # type: ignore[attr-defined]
