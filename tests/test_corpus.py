"""sbuild reads all of ../shared/corpus as BuildKit 0.13 does (targets.json / error.txt are its answers)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from sbuild import stages
from sbuild.errors import DockerfileError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dockerfiles"
CASES = sorted(p.name for p in CORPUS.iterdir()) if CORPUS.is_dir() else []
_LINE = re.compile(r"^dockerfile parse error on line (\d+): (.*)$")
_SUGGESTION = re.compile(r"^(?P<msg>.*) \(did you mean (?P<s>[^?]+)\?\)$")


def test_corpus_is_there() -> None:
    assert len(CASES) == 433, f"expected the 433 corpus cases in {CORPUS}"


def _targets(graph: stages.StageGraph) -> list[dict[str, object]]:
    """sbuild's graph in the shape of `buildx build --print=targets,format=json`."""
    out = []
    for s in graph.stages:
        is_default = s is graph.default
        t: dict[str, object] = {"base": s.base, "location": {"ranges": [
            {"start": {"line": s.line}, "end": {"line": s.end_line}}]}}
        if s.name:
            t["name"] = s.name
        if s.description:
            t["description"] = s.description
        if s.platform:
            t["platform"] = s.platform
        if is_default:
            t["default"] = True
        out.append(t)
    return out


def _normalize(targets: list[dict]) -> list[dict]:
    for t in targets:
        for r in t.get("location", {}).get("ranges", []):
            for k in ("start", "end"):
                r[k] = {"line": r[k]["line"]}
    return targets


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(case: str) -> None:
    d = CORPUS / case
    text = (d / "Dockerfile").read_text()
    if (d / "targets.json").exists():
        expected = _normalize(json.loads((d / "targets.json").read_text())["targets"])
        graph = stages.parse(text)
        assert _targets(graph) == expected
        # the JSON form carries the same facts
        js = stages.to_json(graph)
        assert [s["name"] for s in js["stages"] if s["name"]] == [t["name"] for t in expected if "name" in t]
    else:
        expected_err = (d / "error.txt").read_text().strip()
        with pytest.raises(DockerfileError) as info:
            stages.parse(text)
        got = str(info.value)
        m_exp, m_got = _LINE.match(expected_err), _LINE.match(got)
        if m_exp is None:
            assert got == expected_err
            return
        assert m_got is not None, got
        assert m_got.group(1) == m_exp.group(1), "not the same line"
        assert info.value.line == int(m_exp.group(1))
        exp_reason, got_reason = m_exp.group(2), m_got.group(2)
        s_exp, s_got = _SUGGESTION.match(exp_reason), _SUGGESTION.match(got_reason)
        if s_exp and s_got and s_exp.group("msg") == s_got.group("msg"):
            # BuildKit picks among options tied at the same distance in Go map order (random): the
            # suggestion must be one BuildKit could have given, and sbuild's pick among them.
            word = s_exp.group("msg").rsplit(": ", 1)[1]
            if s_exp.group("msg").startswith("unknown instruction"):
                tied = _tied(word, stages.INSTRUCTIONS, case_sensitive=False)
            else:
                tied = {s_exp.group("s")}
            assert s_exp.group("s") in tied and s_got.group("s") in tied
        else:
            assert got_reason == exp_reason


def _tied(value: str, options: Iterable[str], *, case_sensitive: bool) -> set[str]:
    """Every option BuildKit could suggest for `value` (all those tied at the smallest distance < 3)."""
    val = value if case_sensitive else value.lower()
    dists = {o: stages.levenshtein(val, o if case_sensitive else o.lower()) for o in options}
    if not dists or min(dists.values()) >= 3:
        return set()
    m = min(dists.values())
    out = {o for o, d in dists.items() if d == m}
    if not case_sensitive:
        out = {o.lower() if value == value.lower() else o.upper() if value == value.upper() else o for o in out}
    return out
