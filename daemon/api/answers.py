"""Answers to reads, kept in the API worker until what they read changes.

A client polling GetSIPAccounts, GetCallStatuses, ... (daemon.commands.roles.ANSWERED_AGAIN) gets
the bytes the supervisor gave for the same request as long as neither changed since:
- the store: every configuration write, every event and every supervisor start commits there, and
  SQLite's `PRAGMA data_version` on the API's own read-only connection (a few microseconds) changes
  whenever another connection committed;
- the live state (calls, registrations): the supervisor bumps a counter the API reads from shared
  memory (daemon/control/livestamp.py) after every change of it.
A repeated read so skips the control-socket round trip, the supervisor's work and the encoding
(profiled: about a third of the worker's CPU per request, and the supervisor's CPU altogether).
The role is checked on every request, and nothing kept is answered while the supervisor is gone.

Kept per exact request (path, query, content type, body: what the reply depends on), bounded in
entries and bytes, oldest first out: a client sending endless distinct requests only evicts.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable, Protocol

from daemon.api import envelopes

MAX_ENTRIES = 64
MAX_BYTES = 1 << 20            # request + reply bytes over all entries
MAX_ENTRY_BYTES = 64 << 10


@dataclass(frozen=True)
class Answer:
    action: str                 # for the role check of whoever asks again
    style: envelopes.Style      # for a fault in the request's own style
    reply: envelopes.Reply


class LiveStampReader(Protocol):
    def read(self) -> int | None: ...

    def refresh(self) -> None: ...


class StationStamp:
    """version() for StoredAnswers: (store's data_version, live stamp), None when either cannot be
    read (LiveStampView.read() is None when no supervisor runs). The live stamp's file is looked at
    again whenever the store changed: a new supervisor commits at its start, after it wrote the
    file (which may be a new one)."""

    def __init__(self, store_version: Callable[[], Hashable | None], live: LiveStampReader):
        self._store_version = store_version
        self._live = live
        self._seen: Hashable | None = None

    def __call__(self) -> tuple[Hashable, int] | None:
        store = self._store_version()
        if store is None:
            return None
        if store != self._seen:
            self._live.refresh()
            self._seen = store
        live = self._live.read()
        return None if live is None else (store, live)


def request_key(command: str | None, query: str, content_type: str | None, body: bytes) -> tuple:
    return command, query, content_type, body


class StoredAnswers:
    def __init__(self, version: Callable[[], Hashable | None],
                 max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES,
                 max_entry_bytes: int = MAX_ENTRY_BYTES):
        """version(): the change stamp (StationStamp); None = cannot tell, or the supervisor is
        gone: a station whose service is down says so (503) rather than answering from what it kept."""
        self._version = version
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._max_entry_bytes = max_entry_bytes
        self._entries: OrderedDict[tuple, Answer] = OrderedDict()
        self._bytes = 0
        self._stamp: Hashable | None = None

    def find(self, key: tuple) -> Answer | None:
        """The answer kept for this exact request if nothing it read changed since (and the
        supervisor is there). A request never kept costs one dict lookup: live reads pass by."""
        if key not in self._entries:
            return None
        if self.stamp() is None:
            return None
        return self._entries.get(key)     # None if it was kept before a change (stamp() dropped it)

    def stamp(self) -> Hashable | None:
        """The change stamp now, read before a request goes to the supervisor (None: do not keep
        its answer). Everything kept under an older stamp is dropped here."""
        stamp = self._version()
        if stamp is None or stamp != self._stamp:
            self._entries.clear()
            self._bytes = 0
            self._stamp = stamp
        return stamp

    def keep(self, key: tuple, stamp: Hashable | None, answer: Answer) -> None:
        """Keep `answer` if no change has been seen since `stamp` was read (before
        the request went to the supervisor); an answer that may be older than a change is not kept."""
        if stamp is None or stamp != self._stamp or key in self._entries:
            return
        size = _size(key, answer)
        if size > self._max_entry_bytes:
            return
        while self._entries and (len(self._entries) >= self._max_entries
                                 or self._bytes + size > self._max_bytes):
            old_key, old = self._entries.popitem(last=False)
            self._bytes -= _size(old_key, old)
        self._entries[key] = answer
        self._bytes += size

    def __len__(self) -> int:
        return len(self._entries)


def _size(key: tuple, answer: Answer) -> int:
    return sum(len(part) for part in key if isinstance(part, (str, bytes))) + len(answer.reply.body)
