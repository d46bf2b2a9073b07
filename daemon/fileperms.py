"""Who may read the station's state: its own user only.

The state directory holds Digest HA1 values (enough to log in), SIP and TURN passwords in clear
(SIP digest needs them), the API's nonce secret and TLS keys. Every process that may create files
there (`doorstation run`, `doorstation user add`, the supervisor, the gunicorn app) calls
`private_umask()` first, so whatever it creates — the SQLite database and its -wal/-shm files,
keys, logs — is 0600 (directories 0700) whoever creates it first. `secure_state_dir()` makes the
directory 0700 and tightens what an older version left world-readable.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
# Files of ours that an earlier version may have created readable by others.
SECRET_NAMES = ("doorstation.sqlite3", "doorstation.sqlite3-wal", "doorstation.sqlite3-shm",
                "doorstation.sqlite3-journal", "api-secret")
SECRET_SUFFIXES = (".key", ".log")


def private_umask() -> int:
    """Files and directories this process creates from now on are for its own user only.
    Returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def secure_state_dir(state_dir: str | os.PathLike) -> Path:
    """Create the state directory 0700 (or make an existing one 0700) and chmod our secret files in
    it to 0600. Files owned by another user are left alone (we could not chmod them anyway)."""
    path = Path(state_dir)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    candidates = [path / name for name in SECRET_NAMES]
    for sub in (path, path / "tls"):
        if sub.is_dir():
            candidates += [p for p in sub.iterdir() if p.name.endswith(SECRET_SUFFIXES)]
    if (path / "tls").is_dir():
        _tighten(path / "tls", DIR_MODE)
    for candidate in candidates:
        _tighten(candidate, FILE_MODE)
    return path


def _tighten(path: Path, mode: int) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid():
        return
    if stat.S_IMODE(st.st_mode) & ~mode:
        os.chmod(path, stat.S_IMODE(st.st_mode) & mode)
