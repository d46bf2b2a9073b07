"""The API process's read-only connection to the store (the supervisor is the only writer).

Opened on first use in each process (an SQLite connection must not cross gunicorn's fork), reopened
after an error, used by one caller at a time. Its users: the user lookups of the authenticator and
the stored answers' change check (`data_version`).
"""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Callable, TypeVar

from daemon.store import Store, StoreError

T = TypeVar("T")


class ReadStoreUnavailable(Exception):
    """The store could not be opened or read."""


class ReadStore:
    def __init__(self, state_dir: str | os.PathLike):
        self.state_dir = Path(state_dir)
        self._store: Store | None = None
        self._pid: int | None = None
        self._inherited: Store | None = None
        self._opened = 0                  # connections opened so far in this process
        self._lock = threading.Lock()

    def read(self, query: Callable[[Store], T]) -> T:
        """query(store) on this process's connection; ReadStoreUnavailable on any SQLite error."""
        with self._lock:
            try:
                return query(self._connection())
            except (StoreError, sqlite3.Error) as e:
                self._drop()
                raise ReadStoreUnavailable(str(e)) from e

    def data_version(self) -> tuple[int, int] | None:
        """Changes whenever another connection (the supervisor) committed anything since the last
        call, including across a reopen (the first member counts connections). None: unreadable."""
        try:
            value = self.read(lambda store: store.conn.execute("PRAGMA data_version").fetchone()[0])
        except ReadStoreUnavailable:
            return None
        return self._opened, int(value)

    def _connection(self) -> Store:
        if self._store is None or self._pid != os.getpid():
            if self._store is not None:
                # Opened before a fork: never use or close it here (it belongs to the parent).
                self._inherited = self._store
            self._store = None
            self._store = Store.open(self.state_dir, readonly=True)
            self._pid = os.getpid()
            self._opened += 1
        return self._store

    def _drop(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except sqlite3.Error:
                pass
            self._store = None
