"""A real-shaped history record, and a writer process for the store's concurrency and kill tests (no
hypothesis import: the writer's start-up stays short)."""

from __future__ import annotations

from typing import Any

from sbuild import history, record


def _record(i: int, *, project: str = "example.com/app:Dockerfile", branch: str | None = "main",
            status: str = "success", stages: tuple[str, ...] = ("test",), durations: dict[str, float] | None = None,
            size: int | None = None) -> dict[str, Any]:
    durations = durations or {"base": 0.1, "test": 1.0 + i}
    rep = {"schema_version": 4, "id": f"id{i:04d}", "status": status, "exit_code": 0 if status == "success" else 1,
           "duration_s": sum(durations.values()), "cache": {"steps": 2, "cached_steps": 1, "hit_ratio": 0.5},
           "stages": [{"name": k, "status": "built", "steps": 1, "cached_steps": 0, "duration_s": v,
                       "first_miss": None, "timeline": [{"name": f"[{k} 1/1] RUN x", "index": 1, "started_s": 0.0,
                                                         "duration_s": v, "cached": False, "error": None}]}
                      for k, v in durations.items()]}
    return record.make_record(build_id=f"id{i:04d}", report=rep, project=record.Project(project, None, "Dockerfile"),
                              git=record.GitState(branch, "main", f"{i:040x}", False),
                              builder=record.Builder("default", "docker"), platforms=[], stages=list(stages),
                              build_args={}, image=record.Image("sha256:" + "a" * 64, size, 3) if size else None,
                              started_at=1e9 + i, finished_at=1e9 + i + 1, version="test")


def _writer(path: str, n: int, offset: int, ready: bool = False) -> None:
    s = history.Store(path)
    for i in range(n):
        s.save(_record(offset + i))
        if ready and i == 0:  # the parent kills this writer at some point after its first record
            print("ready", flush=True)
