"""The state is for the station's user only (issue 9: the database with Digest HA1 values and SIP
passwords was 0644 in a 0755 directory): 0700 directories, 0600 files, whoever creates them and
whatever umask the caller had. Real processes: `doorstation user add`, `doorstation run` (supervisor
+ gunicorn) and `doorstation user list` over a state an older version left readable."""
from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest

from daemon import fileperms
from daemon.store import Store
from tests.harness import Station, doorstation


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(state: Path) -> dict[str, int]:
    """Mode of every path under the state directory (and the directory itself), sockets left out."""
    found = {".": stat.S_IMODE(state.stat().st_mode)}
    for path in state.rglob("*"):
        st = path.lstat()
        if not stat.S_ISSOCK(st.st_mode):
            found[str(path.relative_to(state))] = stat.S_IMODE(st.st_mode)
    return found


def assert_private(state: Path) -> dict[str, int]:
    found = modes(state)
    for name, mode in found.items():
        expected = 0o700 if (state / name).is_dir() else 0o600
        assert mode == expected, f"{name} is {mode:o}, expected {expected:o}: {found}"
    return found


def test_user_add_creates_a_private_state_dir(tmp_path):
    state = tmp_path / "fresh" / "state"
    with umask(0):  # the caller's umask must not matter
        done = doorstation("user", "add", "alice", "--role", "admin", "--password-stdin",
                           state_dir=state, input="alice-password-1\n")
    assert done.returncode == 0, done.stderr
    found = assert_private(state)
    assert "doorstation.sqlite3" in found


def test_existing_readable_state_is_tightened(tmp_path):
    state = tmp_path / "state"
    with umask(0o022):  # as an older version left it: 0755 directory, 0644 database
        state.mkdir()
        store = Store.open(state)
        store.close()
        (state / "tls").mkdir()
        (state / "tls" / "station.key").write_text("key")
    assert modes(state)["doorstation.sqlite3"] == 0o644
    done = doorstation("user", "list", state_dir=state)
    assert done.returncode == 0, done.stderr
    found = modes(state)
    assert found["."] == 0o700 and found["tls"] == 0o700
    assert found["doorstation.sqlite3"] == 0o600 and found["tls/station.key"] == 0o600


@pytest.mark.integration
def test_run_keeps_every_file_private(tmp_path):
    state = tmp_path / "state"
    with umask(0):  # the test harness's mkdir, `user add` and `run` all start from umask 0
        st = Station(state).start()
    try:
        # writes through the API (WAL pages, -shm), the nonce secret, the supervisor's TLS files
        st.ok("SetSIPConfiguration", {"SIPConfiguration": {"SIPEnabled": True, "SIPPort": st.sip_port,
                                                            "SIPTLSPort": st.sip_port + 1}})
        st.ok("SetSIPAccount", {"SIPAccount": {"UserId": "6001", "Password": "sip-secret"}})
        found = assert_private(state)
        for name in ("doorstation.sqlite3", "doorstation.sqlite3-wal", "doorstation.sqlite3-shm",
                     "api-secret", "run"):
            assert name in found, found
        sock = state / "run" / "control.sock"
        assert stat.S_ISSOCK(sock.lstat().st_mode) and not sock.lstat().st_mode & 0o007
    finally:
        st.stop()


def test_secure_state_dir_leaves_other_files_and_symlinks_alone(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "hardware.toml").write_text("")
    os.chmod(state / "hardware.toml", 0o644)
    target = tmp_path / "elsewhere.key"
    target.write_text("")
    os.chmod(target, 0o644)
    (state / "linked.key").symlink_to(target)
    fileperms.secure_state_dir(state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "hardware.toml").stat().st_mode) == 0o644  # not ours to decide
    assert stat.S_IMODE(target.stat().st_mode) == 0o644                    # never through a link
