"""sbuild's start-up path: what is imported before buildx is spawned, and the NamedTuple that keeps
`typing` off it. Every millisecond before the spawn is added to every build (scripts/bench-overhead)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import sbuild
from sbuild import _tuple

from .helpers import PIPELINE

# Each costs milliseconds to import on this path (typing ~10, subprocess ~12 with locale and selectors,
# json and re ~8, dataclasses ~8 with inspect, sqlite3, hashlib); none is needed to compose the command line.
HEAVY = ("typing", "re", "json", "subprocess", "signal", "threading", "dataclasses", "inspect", "sqlite3",
         "hashlib", "shutil", "tempfile", "dockerfile", "sbuild.progress", "sbuild.stages", "sbuild.report")

# Runs sbuild in a fresh interpreter; at the first posix_spawn it prints the modules loaded, then lets
# the spawn of the (fake) docker go on.
PROBE = """
import os, sys
spawn = os.posix_spawn
def probe(*a, **k):
    if not getattr(probe, "done", False):
        probe.done = True
        modules = sorted(sys.modules)
        import json
        print(json.dumps({"argv": list(a[1]), "modules": modules}), file=sys.__stdout__, flush=True)
    return spawn(*a, **k)
os.posix_spawn = probe
from sbuild.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _loaded_at_spawn(args: list[str], cwd: Path) -> tuple[list[str], set[str]]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "wrapper")}
    cp = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=60)
    first = cp.stdout.splitlines()[0]
    got = json.loads(first)
    return got["argv"], set(got["modules"])


@pytest.mark.parametrize("extra", [[], ["--no-history"], ["--stage", "test"], ["-t", "127.0.0.1:5000/team/app:v1"],
                                   ["--stage", "lint,test,deploy", "-t", "app:1"]])
def test_nothing_heavy_is_imported_before_buildx_runs(fake, extra: list[str]) -> None:
    fake.stream("buildx-0.13/pipeline-warm-test")
    argv, modules = _loaded_at_spawn(["--progress=plain", *extra, str(PIPELINE)], Path.cwd())
    assert argv[0].endswith("/docker-buildx") and "--progress=rawjson" in argv  # the spawn was buildx's
    # (a --stage build reads the stage graph to compose bake's file: the stage reader and BuildKit's parser
    # load first there, without re or typing)
    heavy = set(HEAVY) - ({"dockerfile", "sbuild.stages"} if "--stage" in extra else set())
    assert sorted(modules & heavy) == []


# Runs a whole build in a fresh interpreter and prints every module it loaded.
WHOLE = """
import sys
from sbuild.cli import main
code = main(sys.argv[1:])
import json
print(json.dumps(sorted(sys.modules)), file=sys.__stdout__, flush=True)
"""


def test_a_stages_build_never_loads_what_only_costs_cpu_beside_the_engine(fake) -> None:
    # After the spawn the build keeps the CPUs busy: what sbuild imports then is taken from the engine (and
    # after buildx exits, added to the build). typing (with its NamedTuples: ~8 ms), contextlib, signal's
    # enums, base64 and hmac have light stand-ins there.
    fake.stream("buildx-0.13/pipeline-bake")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "wrapper")}
    cp = subprocess.run([sys.executable, "-c", WHOLE, "--progress=plain", "--stage", "lint,test,deploy", "-t", "app:1",
                         str(PIPELINE)], env=env, capture_output=True, text=True, timeout=60)
    assert "every stage passed" in cp.stderr, cp.stderr[-2000:]  # the whole build ran, deploy's image included
    modules = set(json.loads(cp.stdout.splitlines()[-1]))
    assert {"sbuild.report", "sbuild.history", "sqlite3"} <= modules  # (the probe saw the build's end)
    assert sorted(modules & {"typing", "contextlib", "signal", "base64", "hmac", "subprocess"}) == [], cp.stderr


def test_namedtuple_is_typings() -> None:
    """_tuple.NamedTuple makes what typing.NamedTuple makes of the same class body."""

    def body(base: type) -> type:
        class Point(base):  # type: ignore[valid-type,misc]
            """A point."""

            x: int
            y: int = 0
            label: str = "p"

            def norm(self) -> int:
                return abs(self.x) + abs(self.y)

            @property
            def swapped(self) -> tuple[int, int]:
                return self.y, self.x

        return Point

    ours, theirs = body(_tuple.NamedTuple), body(typing.NamedTuple)
    a, b = ours(3, -4), theirs(3, -4)
    assert a == b == (3, -4, "p")
    assert repr(a) == repr(b) == "Point(x=3, y=-4, label='p')"
    assert a.norm() == b.norm() == 7 and a.swapped == b.swapped == (-4, 3)
    assert a._replace(label="q") == (3, -4, "q") and a._asdict() == b._asdict()
    assert ours._fields == theirs._fields and ours._field_defaults == theirs._field_defaults == {"y": 0, "label": "p"}
    assert ours.__doc__ == theirs.__doc__ == "A point."
    assert list(ours.__annotations__) == list(theirs.__annotations__)  # (typing wraps them in ForwardRef)
    assert isinstance(a, tuple) and not isinstance(a, _tuple.NamedTuple)


def test_namedtuple_refuses_what_typing_refuses() -> None:
    with pytest.raises(AttributeError, match="_replace"):
        class Bad(_tuple.NamedTuple):
            x: int

            def _replace(self) -> None: ...

    with pytest.raises(TypeError):
        class Mixed(_tuple.NamedTuple, dict):  # type: ignore[misc]
            x: int


@pytest.mark.parametrize("exe", ["sbuild", "sbuildctl"])
def test_the_executables_import_only_sbuild(exe: str) -> None:
    """bin/sbuild is sbuild's own script, not pip's entry-point wrapper, which imports `re` first."""
    root = Path(__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": str(root / "wrapper")}
    cp = subprocess.run([sys.executable, "-X", "importtime", str(root / "wrapper/bin" / exe), "version"
                         if exe == "sbuildctl" else "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0 and cp.stdout == f"sbuild {sbuild.__version__}\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in cp.stderr.splitlines() if line.startswith("import time:")}
    assert "sbuild.cli" in imported
    assert sorted(imported & {"re", "typing", "subprocess", "json"}) == []
