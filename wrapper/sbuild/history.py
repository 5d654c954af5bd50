"""The history store: every build's record in SQLite, `$SBUILD_HOME/history.db`.

Default place: `$XDG_STATE_HOME/sbuild` (`~/.local/state/sbuild`). WAL mode, so readers never wait for a
writer and a killed writer leaves the last committed state; every write is one `BEGIN IMMEDIATE`
transaction (the record and the retention trim together), with a generous busy timeout, so concurrent
builds queue instead of failing with "database is locked". The schema version is SQLite's `user_version`;
MIGRATIONS[i] takes a store from version i to i+1. A file that is not a database (or is damaged) is moved
aside and a new store started: recording never fails a build.

The store never formats text: it keeps and returns records (dicts, the JSON contract of record.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator

from ._tuple import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from ._tuple import NamedTuple

DEFAULT_KEEP = 500  # builds kept per project
BUSY_TIMEOUT_MS = 60_000  # a writer waits this long for another one (8 builds at once: a few ms each)

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1
    """
    CREATE TABLE builds (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        project TEXT NOT NULL,
        stages TEXT NOT NULL,           -- the stage set asked for, sorted, comma-separated
        ran TEXT NOT NULL,              -- ",a,b,": every stage the build reported, for --stage filters
        branch TEXT,
        commit_sha TEXT,
        status TEXT NOT NULL,
        finished_at REAL NOT NULL,
        duration_s REAL,
        hit_ratio REAL,
        stage_times TEXT NOT NULL,      -- {"stage": seconds}: what `sbuild history` lists, without the record
        source TEXT NOT NULL,           -- local | registry (a baseline fetched from the registry)
        record TEXT NOT NULL            -- the whole record, JSON
    );
    CREATE INDEX builds_baseline ON builds(project, stages, branch, status, seq);
    CREATE INDEX builds_project ON builds(project, seq);
    """,
    # 1 -> 2: directory listings of build contexts, by hash (fingerprint.py): kept once, however many
    # builds saw the same directory; last_seq: the newest build that saw it (retention drops the rest)
    """
    CREATE TABLE listings (
        hash TEXT PRIMARY KEY,
        listing TEXT NOT NULL,
        last_seq INTEGER NOT NULL
    );
    CREATE INDEX listings_seq ON listings(last_seq);
    """,
)


def home() -> str:
    """$SBUILD_HOME, else $XDG_STATE_HOME/sbuild, else ~/.local/state/sbuild."""
    explicit = os.environ.get("SBUILD_HOME")
    if explicit:
        return explicit
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "sbuild")


def default_path() -> str:
    return os.path.join(home(), "history.db")


class StoreError(Exception):
    """The store could not be opened or written: one warning line, never a failed build."""


class Row(NamedTuple):
    """A build as `sbuild history` lists it (no record parsed)."""

    id: str
    project: str
    stages: str
    branch: str | None
    commit: str | None
    status: str
    finished_at: float
    duration_s: float | None
    hit_ratio: float | None
    stage_times: dict[str, float]
    source: str


_ROW = "id, project, stages, branch, commit_sha, status, finished_at, duration_s, hit_ratio, stage_times, source"


def _row(r: tuple[Any, ...]) -> Row:
    return Row(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9]), r[10])


class Store:
    """One history.db. Opened lazily; `moved_aside` names a damaged file that was replaced."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.moved_aside: str | None = None
        self._db: sqlite3.Connection | None = None

    # -- opening ---------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                             check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a crash loses at most the last commit
        self._migrate(db)
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == len(MIGRATIONS):
            return
        if version > len(MIGRATIONS):
            raise StoreError(f"written by a newer sbuild (schema {version}; this one knows "
                             f"{len(MIGRATIONS)}): upgrade sbuild or set SBUILD_HOME elsewhere")
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for step in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {step + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def db(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = self._connect()
            except sqlite3.DatabaseError as e:
                if not _damaged(e):
                    raise StoreError(f"cannot open {self.path}: {e}") from None
                self._move_aside()
                try:
                    self._db = self._connect()
                except sqlite3.Error as e2:
                    raise StoreError(f"cannot open {self.path}: {e2}") from None
            except (sqlite3.Error, OSError) as e:
                raise StoreError(f"cannot open {self.path}: {e}") from None
        return self._db

    def _move_aside(self) -> None:
        aside = f"{self.path}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, aside + suffix)
        self.moved_aside = aside

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- writing ---------------------------------------------------------------------------------

    def save(self, record: dict[str, Any], *, keep: int = DEFAULT_KEEP, source: str = "local",
             listings: dict[str, dict[str, str]] | None = None) -> None:
        """Add a record and the context listings it refers to (one transaction with the retention trim of its
        project). A record already there (same id, e.g. a registry baseline fetched twice) is left as it is."""
        report = record.get("report") or {}
        stage_times = {s["name"]: s["duration_s"] for s in report.get("stages", [])}
        ran = "," + ",".join(stage_times) + ","
        row = (record["id"], record["project"]["id"], ",".join(record["stages"]), ran, record.get("branch"),
               record.get("commit"), record["status"], record["finished_at_epoch"], report.get("duration_s"),
               (report.get("cache") or {}).get("hit_ratio"), json.dumps(stage_times), source,
               json.dumps(record, separators=(",", ":")))
        self._write(lambda db: self._insert(db, row, record["project"]["id"], keep, listings or {}))

    @staticmethod
    def _insert(db: sqlite3.Connection, row: tuple[Any, ...], project: str, keep: int,
                listings: dict[str, dict[str, str]]) -> None:
        cur = db.execute("INSERT OR IGNORE INTO builds (id, project, stages, ran, branch, commit_sha, status, "
                         "finished_at, duration_s, hit_ratio, stage_times, source, record) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
        seq = cur.lastrowid or 0
        if listings:
            db.executemany("INSERT INTO listings (hash, listing, last_seq) VALUES (?,?,?) ON CONFLICT(hash) DO "
                           "UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
                           [(h, json.dumps(v, separators=(",", ":")), seq) for h, v in listings.items()])
        if keep > 0:
            db.execute("DELETE FROM builds WHERE project = ? AND seq <= (SELECT seq FROM builds WHERE project = ? "
                       "ORDER BY seq DESC LIMIT 1 OFFSET ?)", (project, project, keep))
            db.execute("DELETE FROM listings WHERE last_seq < (SELECT min(seq) FROM builds)")

    def listing(self, digest: str) -> dict[str, str] | None:
        """A context directory's listing by its hash (None: this store never saw it)."""
        rows = self._query("SELECT listing FROM listings WHERE hash = ?", (digest,))
        return dict(json.loads(rows[0][0])) if rows else None

    def _write(self, work: Any) -> None:
        for tries in range(2):
            try:
                db = self.db()
                db.execute("BEGIN IMMEDIATE")
                try:
                    work(db)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                return
            except sqlite3.DatabaseError as e:
                if tries == 0 and _damaged(e):  # damaged since it was opened: start a new one, once
                    self.close()
                    self._move_aside()
                    continue
                raise StoreError(f"cannot write {self.path}: {e}") from None
            except (sqlite3.Error, OSError) as e:
                raise StoreError(f"cannot write {self.path}: {e}") from None

    # -- reading ---------------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return self.db().execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"cannot read {self.path}: {e}") from None

    def get(self, build_id: str) -> dict[str, Any] | None:
        """A record by id or unique id prefix (None: no such build); StoreError when the prefix is ambiguous."""
        rows = self._query("SELECT record FROM builds WHERE id LIKE ? ORDER BY seq DESC LIMIT 2",
                           (build_id.replace("%", "").replace("_", "") + "%",))
        if len(rows) > 1 and not any(json.loads(r[0])["id"] == build_id for r in rows):
            raise StoreError(f'build id "{build_id}" is ambiguous: give more of it')
        return json.loads(rows[0][0]) if rows else None

    def source_of(self, build_id: str) -> str:
        rows = self._query("SELECT source FROM builds WHERE id = ?", (build_id,))
        return str(rows[0][0]) if rows else "local"

    def baseline(self, project: str, stages: str, branches: list[str | None], exclude: str | None = None
                 ) -> dict[str, Any] | None:
        """The last successful build of this project and stage set on the first of `branches` that has one
        (None: builds without a branch, outside git)."""
        for branch in branches:
            rows = self._query("SELECT record FROM builds WHERE project = ? AND stages = ? AND branch IS ? AND "
                               "status = 'success' AND id != ? ORDER BY seq DESC LIMIT 1",
                               (project, stages, branch, exclude or ""))
            if rows:
                return dict(json.loads(rows[0][0]))
        return None

    def rows(self, *, project: str | None = None, stage: str | None = None, branch: str | None = None,
             limit: int = 20) -> list[Row]:
        """Newest first."""
        where, args = [], []
        if project is not None:
            where.append("project = ?")
            args.append(project)
        if stage is not None:
            where.append("instr(ran, ?) > 0")
            args.append(f",{stage},")
        if branch is not None:
            where.append("branch = ?")
            args.append(branch)
        sql = f"SELECT {_ROW} FROM builds" + (" WHERE " + " AND ".join(where) if where else "") + \
            " ORDER BY seq DESC LIMIT ?"
        return [_row(r) for r in self._query(sql, (*args, limit))]

    def latest(self, project: str | None) -> dict[str, Any] | None:
        rows = self._query("SELECT record FROM builds" + (" WHERE project = ?" if project else "") +
                           " ORDER BY seq DESC LIMIT 1", (project,) if project else ())
        return dict(json.loads(rows[0][0])) if rows else None

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM builds", ())[0][0])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for (text,) in self._query("SELECT record FROM builds ORDER BY seq", ()):
            yield json.loads(text)


def _damaged(e: sqlite3.DatabaseError) -> bool:
    text = str(e).lower()
    return "not a database" in text or "malformed" in text or "disk image" in text
