"""A change counter for the supervisor's live state (calls, registrations), which the API reads
without asking: 8 bytes in a memory-mapped file next to the control socket (<state>/run/live.stamp).

The supervisor owns the live state and this counter. Whatever changes what GetCallStatus(es) or
GetSIPAccountStatus(es) would answer bumps it right after the change, in the same critical section
(the SIP engine's view lock, or one loop callback), so an answer computed before a bump is never
taken for one computed after it. The API reads it (well under a microsecond) to tell whether an
answer it kept from the supervisor may still be given again (daemon/api/answers.py) — a polling VMS
then costs no round trip to the supervisor while no call changes.

The supervisor holds an exclusive flock() on the file for its life: the kernel drops it the moment
the process ends, however it ends, so the API can tell with one system call that nobody keeps the
counter any more (then nothing live or stored is answered again: the station says it is down).
A supervisor that begins to stop writes STOPPED (0, never a running value) first: its shutdown
(calls ended, engine stopped) may take seconds, and meanwhile every request goes to it or gets 503.

Each supervisor start writes a new random value into the same file (rewritten in place, so a mapping
the API already holds keeps seeing it). A file that was replaced is noticed by `LiveStampView.refresh()`,
which the API calls whenever the store changed (every supervisor start commits to it first).
"""
from __future__ import annotations

import fcntl
import mmap
import os
import secrets
import struct
import threading
import time
from pathlib import Path

STAMP = struct.Struct("<Q")
SIZE = STAMP.size
NAME = "live.stamp"
MASK = (1 << 64) - 1
STOPPED = 0
READ_TRIES = 3         # an 8-byte read racing a write may see half of each: read until two agree
LOCK_WAIT_S = 2.0      # an API process may hold a shared lock for the moment it checks


def live_stamp_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / "run" / NAME


class LiveStamp:
    """The supervisor's side: bump() from any thread after a change of the live state. `held`:
    whether it got the file's lock within LOCK_WAIT_S (False: another supervisor runs on the same
    state; this one then writes nothing and must not start)."""

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._value = secrets.randbits(64) or 1   # random per start: never continues an old sequence
        self._map: mmap.mmap | None = None
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            self.held = _lock_within(self._fd, LOCK_WAIT_S)
            if self.held:               # the file is ours: nobody else writes it
                os.ftruncate(self._fd, SIZE)
                self._map = mmap.mmap(self._fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                STAMP.pack_into(self._map, 0, self._value)
        except BaseException:
            os.close(self._fd)
            raise

    def bump(self) -> None:
        with self._lock:
            self._value = ((self._value + 1) & MASK) or 1
            if self._map is not None:
                STAMP.pack_into(self._map, 0, self._value)

    def stop(self) -> None:
        """From now on nothing kept is answered: every read comes here (or gets 503). For good."""
        with self._lock:
            if self._map is not None:
                STAMP.pack_into(self._map, 0, STOPPED)
                self._map.close()
                self._map = None

    def read(self) -> int:
        return self._value

    def close(self) -> None:
        self.stop()
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)       # and with it the lock
                self._fd = -1


def _lock_within(fd: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


class LiveStampView:
    """The API's side (opened on first use): read() -> the counter, or None when no supervisor
    keeps it (no file, or nobody holds its lock): then nothing may be answered again."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._map: mmap.mmap | None = None
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None

    def read(self) -> int | None:
        if self._map is None or self._fd is None:
            self.refresh()
            if self._map is None or self._fd is None:
                return None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:       # the supervisor holds it: it is running
            value = self._value()
            return None if value == STOPPED else value
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        return None

    def _value(self) -> int | None:
        assert self._map is not None
        last = STAMP.unpack_from(self._map, 0)[0]
        for _ in range(READ_TRIES):
            value = STAMP.unpack_from(self._map, 0)[0]
            if value == last:
                return int(value)
            last = value
        return None                   # changing as we look: do not answer from what was kept

    def refresh(self) -> None:
        """Map the file again if it is another file than the one mapped (or none was)."""
        try:
            st = os.stat(self.path)
        except OSError:
            self._drop()
            return
        if self._map is not None and self._ident == (st.st_dev, st.st_ino):
            return
        self._drop()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if st.st_size >= SIZE:
                self._map = mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ)
                self._fd, self._ident = fd, (st.st_dev, st.st_ino)
        except OSError:
            self._map = None
        finally:
            if self._fd != fd:
                os.close(fd)

    def _drop(self) -> None:
        if self._map is not None:
            self._map.close()
        if self._fd is not None:
            os.close(self._fd)
        self._map, self._fd, self._ident = None, None, None
