"""The SQLite store: one file in the state directory, owned (for writing) by the supervisor.

Durability: WAL journal with synchronous=FULL, so a transaction that returned from COMMIT survives
kill -9 and power loss; callers acknowledge a write to a client only after `transaction()` exits.
Schema changes are numbered migrations applied in order, tracked by PRAGMA user_version.

Configuration entities (SIP accounts, DTMF events/triggers/configurations) are JSON documents in
`objects`, keyed by (kind, id) and ordered by insertion (`pos`); singletons (SIP configuration, VMS
call configuration, codec list) are JSON documents in `settings`. Users, the event log and call
history have tables of their own because they are queried by column.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DB_NAME = "doorstation.sqlite3"

MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE objects (
        kind TEXT NOT NULL,
        id   TEXT NOT NULL,
        pos  INTEGER NOT NULL,
        doc  TEXT NOT NULL,
        PRIMARY KEY (kind, id)
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        doc TEXT NOT NULL
    );
    CREATE TABLE users (
        name       TEXT PRIMARY KEY,
        role       TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        realm      TEXT NOT NULL,
        ha1_md5    TEXT NOT NULL,
        ha1_sha256 TEXT NOT NULL,
        pw_hash    TEXT NOT NULL,
        created    REAL NOT NULL
    );
    CREATE TABLE events (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        time   REAL NOT NULL,
        topic  TEXT NOT NULL,
        source TEXT NOT NULL,
        data   TEXT NOT NULL
    );
    CREATE TABLE calls (
        call_id TEXT PRIMARY KEY,
        started REAL NOT NULL,
        doc     TEXT NOT NULL
    );
    CREATE INDEX calls_started ON calls (started);
    """,
]


class StoreError(Exception):
    """The database could not be opened or is newer than this program."""


def db_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / DB_NAME


class Store:
    """A connection to the store. The writer (supervisor, or a CLI when no supervisor runs) opens it
    with readonly=False; readers (the API's user lookups, tests) with readonly=True."""

    def __init__(self, path: str | os.PathLike, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._depth = 0                 # transactions open on the lock's thread (nested: savepoints)
        try:
            if readonly:
                self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                            check_same_thread=False, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.conn.execute("PRAGMA busy_timeout = 5000")
            if not readonly:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = FULL")
                self._migrate()
            else:
                self.conn.execute("PRAGMA query_only = 1")
        except sqlite3.Error as e:
            raise StoreError(f"cannot open database {self.path}: {e}") from e

    @classmethod
    def open(cls, state_dir: str | os.PathLike, readonly: bool = False) -> "Store":
        return cls(db_path(state_dir), readonly=readonly)

    def close(self) -> None:
        self.conn.close()

    # -- schema ------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        current = self.version
        if current > len(MIGRATIONS):
            raise StoreError(f"database schema {current} is newer than this program ({len(MIGRATIONS)})")
        for number in range(current + 1, len(MIGRATIONS) + 1):
            with self.transaction() as c:
                c.executescript_in_tx(MIGRATIONS[number - 1])
                c.execute(f"PRAGMA user_version = {number}")

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["_Tx"]:
        """BEGIN IMMEDIATE ... COMMIT. Nothing is acknowledged until the outermost block has exited.

        Nested in another transaction (a batch of engine events, one commit for all of them), a
        block is a SAVEPOINT: its failure undoes its own writes only, and it commits with the batch."""
        if self.readonly:
            raise StoreError("read-only store")
        with self._lock:
            self._depth += 1
            nested = self._depth > 1
            try:
                self.conn.execute(f"SAVEPOINT s{self._depth}" if nested else "BEGIN IMMEDIATE")
                try:
                    yield _Tx(self.conn)
                except BaseException:
                    if nested:
                        self.conn.execute(f"ROLLBACK TO s{self._depth}")
                        self.conn.execute(f"RELEASE s{self._depth}")
                    else:
                        self.conn.execute("ROLLBACK")
                    raise
                else:
                    self.conn.execute(f"RELEASE s{self._depth}" if nested else "COMMIT")
            finally:
                self._depth -= 1

    # -- reads (usable outside a transaction) --------------------------------------------------
    def get_setting(self, key: str) -> dict | None:
        row = self.conn.execute("SELECT doc FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def list_objects(self, kind: str) -> list[dict]:
        rows = self.conn.execute("SELECT doc FROM objects WHERE kind = ? ORDER BY pos", (kind,))
        return [json.loads(r[0]) for r in rows]

    def get_object(self, kind: str, obj_id: str) -> dict | None:
        row = self.conn.execute("SELECT doc FROM objects WHERE kind = ? AND id = ?", (kind, obj_id)).fetchone()
        return json.loads(row[0]) if row else None

    def object_ids(self, kind: str) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM objects WHERE kind = ? ORDER BY pos", (kind,))]


class _Tx:
    """Write operations, only reachable inside Store.transaction()."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executescript_in_tx(self, script: str) -> None:
        # executescript() would COMMIT first; run the statements one by one instead.
        for stmt in script.split(";"):
            if stmt.strip():
                self.conn.execute(stmt)

    def put_setting(self, key: str, doc: dict) -> None:
        self.conn.execute("INSERT INTO settings (key, doc) VALUES (?, ?) "
                          "ON CONFLICT (key) DO UPDATE SET doc = excluded.doc", (key, json.dumps(doc)))

    def put_object(self, kind: str, obj_id: str, doc: dict) -> None:
        """Insert at the end of the kind's order, or replace in place."""
        self.conn.execute(
            "INSERT INTO objects (kind, id, pos, doc) VALUES (?, ?, "
            " (SELECT COALESCE(MAX(pos), -1) + 1 FROM objects WHERE kind = ?), ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET doc = excluded.doc",
            (kind, obj_id, kind, json.dumps(doc)))

    def delete_object(self, kind: str, obj_id: str) -> bool:
        return self.conn.execute("DELETE FROM objects WHERE kind = ? AND id = ?", (kind, obj_id)).rowcount > 0

    def get_object(self, kind: str, obj_id: str) -> dict | None:
        row = self.conn.execute("SELECT doc FROM objects WHERE kind = ? AND id = ?", (kind, obj_id)).fetchone()
        return json.loads(row[0]) if row else None

    def list_objects(self, kind: str) -> list[dict]:
        rows = self.conn.execute("SELECT doc FROM objects WHERE kind = ? ORDER BY pos", (kind,))
        return [json.loads(r[0]) for r in rows]

    def get_setting(self, key: str) -> dict | None:
        row = self.conn.execute("SELECT doc FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def next_id(self, kind: str, prefix: str) -> str:
        """Smallest unused `<prefix><n>`: reproduces the spec's sip_account_0, sip_account_1, ..."""
        used = {r[0] for r in self.conn.execute("SELECT id FROM objects WHERE kind = ?", (kind,))}
        n = 0
        while f"{prefix}{n}" in used:
            n += 1
        return f"{prefix}{n}"
