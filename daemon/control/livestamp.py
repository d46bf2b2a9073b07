"""A change counter for the supervisor's live state (calls, registrations), which the API reads
without asking: 8 bytes in a memory-mapped file next to the control socket (<state>/run/live.stamp).

The supervisor owns the live state and this counter. Whatever changes what GetCallStatus(es) or
GetSIPAccountStatus(es) would answer bumps it right after the change, in the same critical section
(the SIP engine's view lock, or one loop callback), so an answer computed before a bump is never
taken for one computed after it. The API reads it (well under a microsecond) to tell whether an
answer it kept from the supervisor may still be given again (daemon/api/answers.py) — a polling VMS
then costs no round trip to the supervisor while no call changes.

Each supervisor start writes a new random value into the same file (rewritten in place, so a mapping
the API already holds keeps seeing it). A file that was replaced is noticed by `LiveStampView.refresh()`,
which the API calls whenever the store changed (every supervisor start commits to it first).
"""
from __future__ import annotations

import mmap
import os
import secrets
import struct
import threading
from pathlib import Path

STAMP = struct.Struct("<Q")
SIZE = STAMP.size
NAME = "live.stamp"
MASK = (1 << 64) - 1


def live_stamp_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / "run" / NAME


class LiveStamp:
    """The supervisor's side: bump() from any thread after a change of the live state."""

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, SIZE)
            self._map = mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self._lock = threading.Lock()
        # Random per start: a new supervisor never continues an old one's sequence.
        self._value = secrets.randbits(64)
        STAMP.pack_into(self._map, 0, self._value)

    def bump(self) -> None:
        with self._lock:
            self._value = (self._value + 1) & MASK
            if not self._map.closed:
                STAMP.pack_into(self._map, 0, self._value)

    def read(self) -> int:
        return self._value

    def close(self) -> None:
        with self._lock:
            self._map.close()


class LiveStampView:
    """The API's side (opened on first use): read() -> the counter, or None when there is no
    supervisor's file to read (then nothing live may be answered again)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._map: mmap.mmap | None = None
        self._ident: tuple[int, int] | None = None

    def read(self) -> int | None:
        if self._map is None:
            self.refresh()
            if self._map is None:
                return None
        return int(STAMP.unpack_from(self._map, 0)[0])

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
                self._ident = (st.st_dev, st.st_ino)
        except OSError:
            self._map = None
        finally:
            os.close(fd)

    def _drop(self) -> None:
        if self._map is not None:
            self._map.close()
        self._map, self._ident = None, None
