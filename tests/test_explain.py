"""Explaining cache misses: .dockerignore as moby/patternmatcher applies it (its own test table), step
fingerprints as BuildKit numbers and keys steps, the context hashed as BuildKit compares files, and every
cause of explain.py."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from sbuild import explain, fingerprint, ignore
from sbuild.report import StageReport, StepReport

# moby/patternmatcher patternmatcher_test.go TestMatches (MatchesOrParentMatches), copied as is.
PATTERNMATCHER_CASES = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True), ("**/", "file/", True), ("**", "/", True),
    ("**/", "/", True), ("**", "dir/file", True), ("**/", "dir/file", True), ("**", "dir/file/", True),
    ("**/", "dir/file/", True), ("**/**", "dir/file", True), ("**/**", "dir/file/", True), ("dir/**", "dir/file", True),
    ("dir/**", "dir/file/", True), ("dir/**", "dir/dir2/file", True), ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True), ("**/dir", "dir/file", True), ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir/dir2/file/", True), ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file/", True), ("**file", "file", True), ("**file", "dir/file", True),
    ("**/file", "dir/file", True), ("**file", "dir/dir/file", True), ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True), ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True), ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True), ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True), ("**/**/*.txt", "file.txt", True), ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True), ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True),
    (".*", ".foo", True), (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False), ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True), ("**/foo/bar", "foo/bar", True), ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc", False), ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True), ("**/.foo", ".foo", True), ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True), ("a(b)c/def", "a(b)c/xyz", False), ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),
]
MULTI_CASES = [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["*.go", "!fileutils.go"], "fileutils.go", False),  # TestExclusionPatternMatchesPatternAfter
    (["!fileutils.go", "*.go"], "fileutils.go", True),  # ...PatternBefore
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs", "!docs/README.md"], "docs/other.md", True),
]


@pytest.mark.parametrize("pattern, path, excluded", PATTERNMATCHER_CASES)
def test_dockerignore_matches_as_patternmatcher_does(pattern: str, path: str, excluded: bool) -> None:
    assert ignore.Matcher([pattern]).excluded(path) is excluded


@pytest.mark.parametrize("patterns, path, excluded", MULTI_CASES)
def test_the_last_matching_pattern_decides(patterns: list[str], path: str, excluded: bool) -> None:
    assert ignore.Matcher(patterns).excluded(path) is excluded


def test_ignore_file_lines_are_read_as_ignorefile_reads_them() -> None:
    text = "\ufeff# comment\n  /dist/  \n\n!  keep.txt\nsrc/../tmp\n #not a comment\n"
    assert ignore.read_patterns(text) == ["dist", "!keep.txt", "tmp", "#not a comment"]


def test_a_dockerfile_s_own_ignore_file_wins(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("a\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert ignore.for_build(str(tmp_path), str(tmp_path / "Dockerfile")).excluded("a")
    (tmp_path / "Dockerfile.dockerignore").write_text("b\n")
    m = ignore.for_build(str(tmp_path), str(tmp_path / "Dockerfile"))
    assert m.excluded("b") and not m.excluded("a")


# -- fingerprints ----------------------------------------------------------------------------------------

PIPELINE = (Path(__file__).parent.parent / "examples" / "pipeline" / "Dockerfile").read_text()
KEYS = ["base", "build", "lint", "test", "static-analysis", "deploy"]


def test_steps_are_numbered_as_buildkit_numbers_them() -> None:
    fp = fingerprint.dockerfile_steps(PIPELINE, {}, KEYS, None)
    # "[base 1/3] FROM …", "[base 2/3] WORKDIR /app" (an image FROM is step 1); "[build 1/2] COPY src/ ./src/"
    assert [(s["index"], s["text"]) for s in fp["base"]["steps"]] == [
        (2, "WORKDIR /app"), (3, "RUN mkdir -p /app/dist /app/reports")]
    assert [(s["index"], s["text"]) for s in fp["build"]["steps"]] == [
        (1, "COPY src/ ./src/"), (2, "RUN sh src/build.sh src dist/app && chmod +x dist/app")]
    assert fp["build"]["from"] == {"stage": "base"}
    assert fp["base"]["from"] == {"image": "localhost/sbuild-busybox:latest"}
    assert fp["deploy"]["steps"][0]["from_stage"] == "build" and "sources" not in fp["deploy"]["steps"][0]
    assert fp["build"]["steps"][0]["sources"] == ["src/"]


def test_a_run_step_is_keyed_by_every_arg_in_scope_other_steps_by_those_they_name() -> None:
    text = ("ARG V=1\nFROM scratch AS a\nARG V\nARG MODE=fast\nARG API_TOKEN\nCOPY x /x\nCOPY ${MODE}.txt /m\n"
            "RUN true\n")
    fp = fingerprint.dockerfile_steps(text, {"API_TOKEN": "s3cr3t", "V": "2"}, ["a"], "machine-key")
    copy_x, copy_m, run = fp["a"]["steps"]
    assert copy_x["args"] == {} and list(copy_m["args"]) == ["MODE"]
    assert list(run["args"]) == ["V", "MODE", "API_TOKEN"]
    assert run["args"]["V"] == fingerprint.arg_hash("V", "2", None)
    assert run["args"]["API_TOKEN"].startswith("hmac:") and "s3cr3t" not in str(fp)
    assert copy_x["index"] == 1  # FROM scratch is no step


def test_bind_mounts_read_the_context_and_remote_adds_are_remote() -> None:
    text = ("FROM scratch AS a\nRUN --mount=type=bind,source=src,target=/s true\nRUN --mount=type=cache,target=/c "
            "true\nADD https://example.com/x.tgz /x\nRUN --mount=from=a,target=/a true\n")
    steps = fingerprint.dockerfile_steps(text, {}, ["a"], None)["a"]["steps"]
    assert steps[0]["sources"] == ["src"] and "sources" not in steps[1]
    assert steps[2]["remote"] is True and steps[3]["from_stage"] == "a"


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_the_context_hash_sees_content_mode_and_links_not_mtime(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    _tree(ctx, {"src/a.js": "a", "src/b.js": "b", "README": "r", "build/out": "o"})
    (ctx / ".dockerignore").write_text("build\n")
    m = ignore.for_build(str(ctx), None)
    cache = str(tmp_path / "stat.cache")
    one = fingerprint.hash_context(str(ctx), m, cache)
    assert sorted(one.files) == [".dockerignore", "README", "src/a.js", "src/b.js"]  # build/ is not sent
    os.utime(ctx / "src/a.js", (time.time() + 100, time.time() + 100))
    (ctx / "build/out").write_text("changed, but ignored")
    assert fingerprint.hash_context(str(ctx), m, cache).dirs == one.dirs  # a touch misses nothing
    (ctx / "src/a.js").chmod(0o755)
    two = fingerprint.hash_context(str(ctx), m, cache)
    assert two.files["src/a.js"] != one.files["src/a.js"] and two.files["src/b.js"] == one.files["src/b.js"]
    assert two.dirs["src"] != one.dirs["src"] and two.dirs[""] != one.dirs[""]
    os.symlink("a.js", ctx / "src/link")
    three = fingerprint.hash_context(str(ctx), m, cache)
    (ctx / "src/link").unlink()
    os.symlink("b.js", ctx / "src/link")
    assert fingerprint.hash_context(str(ctx), m, cache).files["src/link"] != three.files["src/link"]


def test_the_stat_cache_spares_unchanged_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = tmp_path / "ctx"
    _tree(ctx, {f"d/f{i}": str(i) for i in range(20)})
    cache = str(tmp_path / "stat.cache")
    fingerprint.hash_context(str(ctx), ignore.Matcher([]), cache)
    read: list[str] = []
    real = fingerprint._file_hash
    monkeypatch.setattr(fingerprint, "_file_hash", lambda p, st: read.append(p) or real(p, st))
    (ctx / "d/f3").write_text("new")
    fingerprint.hash_context(str(ctx), ignore.Matcher([]), cache)
    assert read == [str(ctx / "d/f3")]


def test_a_file_hashes_alike_by_the_builtin_sha256_and_by_openssl(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Small files go through CPython's own sha256 (no OpenSSL to load beside the build), and once 1 MiB in
    # all was hashed that way, through hashlib's: the hash a record keeps must not depend on which.
    import hashlib

    used: list[str] = []
    builtin = fingerprint.sha256
    monkeypatch.setattr(fingerprint, "sha256", lambda *a: used.append("builtin") or builtin(*a))
    monkeypatch.setattr(hashlib, "sha256", lambda *a, _real=hashlib.sha256: used.append("openssl") or _real(*a))
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"echo hello\n" * 10)
    big.write_bytes(os.urandom(fingerprint.BUILTIN_BYTES))
    monkeypatch.setattr(fingerprint, "_builtin_left", [fingerprint.BUILTIN_BYTES])
    by_builtin = fingerprint._file_hash(str(small), small.lstat())
    by_openssl_big = fingerprint._file_hash(str(big), big.lstat())  # more than is left: OpenSSL from now on
    by_openssl = fingerprint._file_hash(str(small), small.lstat())
    assert used == ["builtin", "openssl", "openssl"]
    assert by_builtin == by_openssl
    monkeypatch.setattr(fingerprint, "_builtin_left", [2 * fingerprint.BUILTIN_BYTES])
    assert fingerprint._file_hash(str(big), big.lstat()) == by_openssl_big and used[-1] == "builtin"


@pytest.mark.parametrize("sources, want", [
    (["src/"], ["src/a.js", "src/lib/b.js"]),
    (["src/*.js"], ["src/a.js"]),
    (["src/*"], ["src/a.js", "src/lib/b.js"]),
    (["*.md"], ["README.md"]),
    (["."], ["README.md", "src/a.js", "src/lib/b.js"]),
    (["/README.md"], ["README.md"]),
])
def test_a_copy_reads_its_sources_subtrees(sources: list[str], want: list[str]) -> None:
    files = {"README.md": "1", "src/a.js": "2", "src/lib/b.js": "3"}
    assert fingerprint.select(files, sources) == want


# -- causes ----------------------------------------------------------------------------------------------

def _fp(**over: Any) -> dict[str, Any]:
    stages = {"build": {"from": {"image": "busybox:1", "digest": "sha256:" + "a" * 64}, "steps": [
        {"index": 2, "line": 3, "text": "COPY src/ ./src/", "args": {}, "sources": ["src/"], "files": "f1"},
        {"index": 3, "line": 4, "text": "RUN make", "args": {"V": "sha256:1"}}]},
        "test": {"from": {"stage": "build"}, "steps": [
            {"index": 1, "line": 7, "text": "RUN test", "args": {}}]}}
    fp: dict[str, Any] = {"schema": 1, "syntax": None, "stages": stages, "context": {"dirs": {}}}
    for k, v in over.items():
        fp[k] = v
    return fp


def _stages(missed: dict[str, int]) -> list[StageReport]:
    out = []
    for name, n in (("build", 3), ("test", 1)):
        first = 1 if name == "test" else 2
        timeline = tuple(StepReport(f"[{name} {i}/{n}] step", i, 0.0, 1.0, i < missed.get(name, 99))
                         for i in range(first, n + 1))
        cached = sum(t.cached for t in timeline)
        out.append(StageReport(name, "cached" if cached == len(timeline) else "built", len(timeline), cached, 1.0,
                               None, 0.0, timeline))
    return out


FACTS = explain.Facts(False, (), (), (), {}, {})


def _explain(missed: dict[str, int], now: dict[str, Any], base: dict[str, Any] | None, facts: explain.Facts = FACTS,
             base_builder: str = "default") -> dict[str, Any]:
    return explain.explain(_stages(missed), explain.Side(now, "default", ()),
                           explain.Side(base, base_builder, ()) if base is not None else None, facts,
                           lambda h: None, lambda h: None, ["build", "test"])


def test_an_edited_line_is_an_instruction_change_and_the_stage_after_it_upstream() -> None:
    now = _fp()
    now["stages"]["build"]["steps"][1] = {**now["stages"]["build"]["steps"][1], "text": "RUN make all"}
    whys = _explain({"build": 3, "test": 1}, now, _fp())
    assert whys["build"] == {"cause": "instruction", "step": "[build 3/3] step",
                             "detail": "Dockerfile:4 changed: RUN make → RUN make all"}
    assert whys["test"]["cause"] == "upstream" and whys["test"]["stage"] == "build"
    assert whys["test"]["detail"] == "after build: Dockerfile:4 changed: RUN make → RUN make all"


def test_a_changed_arg_names_the_arg_and_never_its_value() -> None:
    now = _fp()
    now["stages"]["build"]["steps"][1]["args"] = {"V": "sha256:2"}
    why = _explain({"build": 3}, now, _fp())["build"]
    assert (why["cause"], why["args"]) == ("build-arg", ["V"])


def test_secret_args_hashed_with_other_keys_are_never_called_changed() -> None:
    now, base = _fp(), _fp()
    now["stages"]["build"]["steps"][1]["args"] = {"API_TOKEN": "hmac:aaaaaa:1111"}
    base["stages"]["build"]["steps"][1]["args"] = {"API_TOKEN": "hmac:bbbbbb:2222"}
    assert _explain({"build": 3}, now, base)["build"]["cause"] == "cache-unavailable"


def test_a_moved_base_tag_is_a_base_image_change() -> None:
    now = _fp()
    now["stages"]["build"]["from"] = {"image": "busybox:1", "digest": "sha256:" + "b" * 64}
    why = _explain({"build": 2}, now, _fp())["build"]
    assert why["cause"] == "base-image" and why["detail"] == "busybox:1 now bbbbbbbbbbbb (was aaaaaaaaaaaa)"


def test_changed_files_are_named_by_walking_changed_directories_only() -> None:
    listings = {"root1": {"src": "d:src1", "README": "r", ".": ""}, "src1": {"a.js": "1", "b.js": "2", ".": ""},
                "root2": {"src": "d:src2", "README": "r", ".": ""},
                "src2": {"a.js": "1x", "c.js": "3", "lib": "d:lib2", ".": ""}, "lib2": {"x.js": "4", ".": ""}}
    changed, added, removed, unknown = explain.changed_paths(
        {"": "root2", "src": "src2"}, listings.get, {"": "root1", "src": "src1"}, listings.get)
    assert (changed, added, removed, unknown) == (["src/a.js"], ["src/c.js", "src/lib/x.js"], ["src/b.js"], [])
    # A baseline from another machine without its listings: the directory is named instead.
    assert explain.changed_paths({"": "root2"}, listings.get, {"": "root1"}, lambda h: None)[3] == ["./"]


def test_a_file_change_is_reported_with_its_paths() -> None:
    listings = {"r1": {"src": "d:s1", ".": ""}, "s1": {"a.js": "1", ".": ""},
                "r2": {"src": "d:s2", ".": ""}, "s2": {"a.js": "2", ".": ""}}
    now = _fp(context={"dirs": {"": "r2", "src": "s2"}})
    now["stages"]["build"]["steps"][0]["files"] = "f2"
    base = _fp(context={"dirs": {"": "r1", "src": "s1"}})
    whys = explain.explain(_stages({"build": 2, "test": 1}), explain.Side(now, "d", ()), explain.Side(base, "d", ()),
                           FACTS, listings.get, listings.get, ["build", "test"])
    assert whys["build"] == {"cause": "file", "step": "[build 2/3] step", "detail": "src/a.js changed",
                             "paths": ["src/a.js"], "count": 1}
    assert whys["test"]["detail"] == "after build: src/a.js changed"


@pytest.mark.parametrize("facts, base_builder, base, cause", [
    (FACTS._replace(no_cache=True), "default", _fp(), "no-cache"),
    (FACTS._replace(no_cache_filter=("build",)), "default", _fp(), "no-cache"),
    (FACTS, "default", None, "no-baseline"),
    (FACTS, "remote-builder", _fp(), "builder"),
    (FACTS, "default", _fp(syntax="docker/dockerfile:1.7"), "frontend"),
    (FACTS, "default", _fp(), "cache-unavailable"),
    (FACTS._replace(build_contexts={"x": "sha256:2"}, base_build_contexts={"x": "sha256:1"}), "default", _fp(),
     "build-context"),
])
def test_causes_without_a_changed_step(facts: explain.Facts, base_builder: str, base: dict[str, Any] | None,
                                       cause: str) -> None:
    assert _explain({"build": 3}, _fp(), base, facts, base_builder)["build"]["cause"] == cause


def test_cache_unavailable_says_what_was_imported() -> None:
    facts = FACTS._replace(imported=("reg/app-cache:build-main",))
    why = _explain({"build": 3}, _fp(), _fp(), facts)["build"]
    assert why["detail"].endswith("the imported cache (reg/app-cache:build-main) did not hold it")
    assert _explain({"build": 3}, _fp(), _fp())["build"]["detail"].endswith("no cache was imported")


def test_a_remote_add_is_a_remote_source() -> None:
    now, base = _fp(), _fp()
    for fp in (now, base):
        fp["stages"]["build"]["steps"][1] = {"index": 3, "line": 4, "text": "ADD https://x/y /y", "args": {},
                                             "remote": True}
    assert _explain({"build": 3}, now, base)["build"]["cause"] == "remote-source"


def test_every_cached_stage_has_no_why_and_causes_are_the_documented_ones() -> None:
    assert _explain({}, _fp(), _fp()) == {"build": None, "test": None}
    assert explain.CAUSES == ("file", "build-arg", "base-image", "instruction", "upstream", "cache-unavailable",
                              "no-cache", "remote-source", "frontend", "build-context", "builder", "no-baseline",
                              "unknown")
