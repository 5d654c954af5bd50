"""Property-based tests of the pure parsers: whatever they are given, they answer or raise sbuild's own typed
errors, never anything else. `scripts/test` prints how many examples ran (conftest counts them)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbuild import config, flags, ignore, stages, tags
from sbuild.errors import SbuildError
from sbuild.progress import BuildModel, StreamSplitter

from .helpers import DATA, count_example

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLAG_WORDS = [f"--{f.name}" for f in flags.ALL_FLAGS] + [f"-{f.short}" for f in flags.ALL_FLAGS if f.short]
WORDS = st.one_of(st.sampled_from(FLAG_WORDS), st.text(max_size=12),
                  st.sampled_from(["--", "-", ".", "=", "a,b", "--stage=", "--pull=maybe", "-tx", "-f-"]))


@FAST
@given(st.lists(WORDS, max_size=8))
def test_the_flag_parser_raises_only_its_own_errors(argv: list[str]) -> None:
    count_example()
    try:
        cmd = flags.parse(argv)
    except SbuildError:
        return
    cmd.buildx_args()  # whatever it accepted composes


TOML_KEYS = st.sampled_from([*config.SCHEMA, "imgae", "tags.x", "tool"])
TOML_VALUES = st.one_of(st.integers(), st.booleans(), st.text(max_size=8).map(json.dumps),
                        st.lists(st.text(max_size=5).map(json.dumps), max_size=3).map(lambda v: f"[{', '.join(v)}]"),
                        st.text(max_size=10))


@FAST
@given(st.lists(st.tuples(TOML_KEYS, TOML_VALUES), max_size=6), st.sampled_from(["sbuild.toml", "pyproject.toml"]))
def test_the_config_reader_raises_only_usage_errors(pairs: list[tuple[str, str]], name: str) -> None:
    count_example()
    body = "\n".join(f'"{k}" = {v}' for k, v in pairs)
    text = f"[tool.sbuild]\n{body}\n" if name == "pyproject.toml" else body
    with contextlib.suppress(SbuildError):
        config.parse(text, name)


@FAST
@given(st.lists(st.text(max_size=20), max_size=4), st.text(max_size=30), st.one_of(st.none(), st.text(max_size=20)),
       st.lists(st.text(max_size=12), max_size=3))
def test_tag_rules_raise_only_usage_errors(rules: list[str], image: str, branch: str | None, at: list[str]) -> None:
    count_example()
    try:
        refs, _ = tags.expand(rules, image, tags.GitFacts("a" * 40, branch, "main", tuple(at)), {"X": "1"}, "20261128")
        for r in refs:
            tags.check_reference(r)
    except SbuildError:
        pass


LINES = st.sampled_from(["FROM scratch AS a", "FROM a AS b", "FROM ${X:-busybox}", "ARG X=1", "RUN true",
                         "COPY --from=a /x /y", "COPY --chmod=7 . .", "RUN --mount=type=bind,from=b true",
                         "# syntax=docker/dockerfile:1.7", "WORKDIR /app", "ONBUILD RUN x", "\\", "FROM",
                         "COPY <<EOF /x", "EOF", "ADD --exclude=*.md . /", "HEALTHCHECK NONE", "FROM --platform=$X a"])


@FAST
@given(st.lists(st.one_of(LINES, st.text(max_size=25)), max_size=10))
def test_the_dockerfile_reader_raises_only_dockerfile_errors(lines: list[str]) -> None:
    count_example()
    try:
        graph = stages.parse("\n".join(lines) + "\n")
        stages.check_buildable(graph)
        stages.to_json(graph)
    except SbuildError:
        pass


STREAM = (DATA / "streams" / "buildx-0.29" / "pipeline-cold-test.rawjson").read_text()
STREAM_13 = (DATA / "streams" / "buildx-0.13" / "pipeline-cold-test.rawjson").read_text()


@FAST
@given(st.sampled_from([STREAM, STREAM_13]), st.lists(st.integers(0, 40_000), max_size=6),
       st.lists(st.text(max_size=10), max_size=6), st.integers(64, 4096))
def test_the_stream_reader_survives_cut_interleaved_and_garbled_streams(text: str, cuts: list[int],
                                                                         junk: list[str], chunk: int) -> None:
    count_example()
    pieces = []
    last = 0
    for c, j in zip(sorted(c % (len(text) + 1) for c in cuts), junk + [""] * len(cuts), strict=False):
        pieces.append(text[last:c])
        pieces.append(j)  # garbage spliced in, or nothing
        last = c
    pieces.append(text[last: last + len(text) // 2])  # and the stream ends early
    garbled = "".join(pieces)
    splitter, model = StreamSplitter(), BuildModel()
    for i in range(0, len(garbled), chunk):
        for item in splitter.feed(garbled[i: i + chunk]):
            model.apply_text(item) if isinstance(item, str) else model.apply(item)
    for item in splitter.close():
        model.apply_text(item) if isinstance(item, str) else model.apply(item)
    model.finish_logs()


@FAST
@given(st.lists(st.text(alphabet="ab*?[]!/\\.-^", max_size=8), max_size=5), st.text(alphabet="ab/.", max_size=12))
def test_dockerignore_patterns_never_raise(patterns: list[str], path: str) -> None:
    count_example()
    ignore.Matcher(patterns).excluded(path.strip("/") or "a")


# BuildKit's regexes that stages.py matches without `re` (its start-up path): the same answers.
_BK_DIRECTIVE = r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$"
_BK_STAGE_NAME = r"^[a-z][a-z0-9-_.]*$"
LINE_BITS = st.lists(st.sampled_from(["#", " ", "\t", "a", "Z", "9", "=", "_", "x", "\u00a0", "-", '"', "'", "<<",
                                      "\\", "$", "\n", ".", "\r", "syntax", "escape"]), max_size=10).map("".join)


@FAST
@given(LINE_BITS)
def test_the_directive_and_stage_name_matchers_agree_with_buildkits_regexes(word: str) -> None:
    import re

    count_example()
    line = word.strip()
    m = re.match(_BK_DIRECTIVE, line)
    assert stages._directive(line) == (m.group(1, 2) if m else None)
    if not word.endswith("\n"):  # Python's $ also matches before a final newline; Go's does not
        assert stages._valid_stage_name(word) == bool(re.match(_BK_STAGE_NAME, word))
    assert stages._is_heredoc_word(word) == bool(re.match(r"^\d*<<-?\s*([\"']?)[A-Za-z_][A-Za-z0-9_]*\1$", word))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)


@FAST
@given(JSON_VALUES)
def test_jsonlite_writes_and_reads_what_json_does(value: object) -> None:
    from sbuild import jsonlite

    count_example()
    text = json.dumps(value)
    assert jsonlite.dumps(value) == text  # the bake file, byte for byte
    assert jsonlite.loads(text) == json.loads(text)
    assert jsonlite.loads(f" \n{text}\t") == value


def test_jsonlite_refuses_what_json_refuses() -> None:
    from sbuild import jsonlite

    for bad in ["", "{", "[1,]", "{} x", "nul", '{"a" 1}']:
        with pytest.raises(ValueError):
            json.loads(bad)
        with pytest.raises(ValueError):
            jsonlite.loads(bad)
