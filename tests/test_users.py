"""daemon.users on a real SQLite store in a temporary state directory."""
from __future__ import annotations

import hashlib
import sqlite3

import pytest

from daemon import users
from daemon.store import Store, StoreError, db_path


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path)
    yield s
    s.close()


def _state_files(tmp_path) -> dict[str, bytes]:
    base = db_path(tmp_path)
    files = {}
    for suffix in ("", "-wal", "-journal", "-shm"):
        p = base.with_name(base.name + suffix)
        if p.exists():
            files[p.name] = p.read_bytes()
    return files


def test_password_never_reaches_the_database_files(store, tmp_path):
    secret = "Zebra-Quartz-7781-unique"
    other = "Walrus+Mango=9021~second"
    users.add_user(store, "alice", "admin", secret)
    users.add_user(store, "bob", "viewer", other)
    users.add_user(store, "bob", "operator", "Replaced-pass-4412", replace=True)
    files = _state_files(tmp_path)
    assert "doorstation.sqlite3-wal" in files  # the rows are (at least) in the WAL right now
    assert any(b"alice" in data for data in files.values())  # the search does see row contents
    for name, data in files.items():
        for pw in (secret, other):
            assert pw.encode("utf-8") not in data, name
            assert pw.encode("utf-16-le") not in data, name
    # and after a checkpoint, in the main file too
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = db_path(tmp_path).read_bytes()
    assert b"alice" in data
    assert secret.encode() not in data and other.encode() not in data


def test_stored_row_has_exact_digest_ha1_values(store):
    users.add_user(store, "carol", "operator", "correct horse")
    row = store.conn.execute("SELECT name, role, realm, ha1_md5, ha1_sha256, pw_hash FROM users").fetchone()
    name, role, realm, ha1_md5, ha1_sha256, pw_hash = row
    assert (name, role, realm) == ("carol", "operator", "doorstation")
    assert realm == users.REALM
    assert ha1_md5 == hashlib.md5(b"carol:doorstation:correct horse").hexdigest()
    assert ha1_sha256 == hashlib.sha256(b"carol:doorstation:correct horse").hexdigest()
    scheme, n, r, p, salt_hex, hash_hex = pw_hash.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2 ** 14), "8", "1")
    assert len(bytes.fromhex(salt_hex)) == 16
    expected = hashlib.scrypt(b"correct horse", salt=bytes.fromhex(salt_hex), n=2 ** 14, r=8, p=1,
                              dklen=len(bytes.fromhex(hash_hex)))
    assert expected.hex() == hash_hex


def test_salts_differ_between_users_with_the_same_password(store):
    users.add_user(store, "u1", "viewer", "same-password")
    users.add_user(store, "u2", "viewer", "same-password")
    h1, h2 = (users.get_user(store, n).pw_hash for n in ("u1", "u2"))
    assert h1.split("$")[4] != h2.split("$")[4]
    assert h1 != h2


def test_verify_password(store):
    users.add_user(store, "dave", "viewer", "pässwörd-ünïcode")
    rec = users.get_user(store, "dave")
    assert users.verify_password(rec, "pässwörd-ünïcode")
    assert not users.verify_password(rec, "pässwörd-ünïcodE")
    assert not users.verify_password(rec, "")


def test_verify_password_rejects_damaged_hashes(store):
    users.add_user(store, "erin", "viewer", "password1")
    rec = users.get_user(store, "erin")
    from dataclasses import replace
    for bad in ("", "scrypt$x", "bcrypt$16384$8$1$00$00", "scrypt$16384$8$1$zz$00",
                "scrypt$1000$8$1$00$00", "scrypt$16384$8$1$00$", f"scrypt${2 ** 30}$8$1$00$00"):
        assert not users.verify_password(replace(rec, pw_hash=bad), "password1"), bad


def test_get_and_list_users(store):
    assert users.list_users(store) == []
    assert users.get_user(store, "nobody") is None
    times = iter([100.0, 200.0])
    users.add_user(store, "zed", "viewer", "password-z", clock=lambda: next(times))
    users.add_user(store, "amy", "admin", "password-a", clock=lambda: next(times))
    assert users.list_users(store) == [
        {"name": "amy", "role": "admin", "created": 200.0},
        {"name": "zed", "role": "viewer", "created": 100.0},
    ]
    rec = users.get_user(store, "zed")
    assert isinstance(rec, users.UserRecord)
    assert (rec.name, rec.role, rec.created) == ("zed", "viewer", 100.0)


def test_replace_changes_role_and_password_keeps_created(store):
    users.add_user(store, "admin", "admin", "admin-password")
    users.add_user(store, "frank", "viewer", "first-password", clock=lambda: 5.0)
    with pytest.raises(users.UserExists):
        users.add_user(store, "frank", "operator", "second-password")
    assert users.verify_password(users.get_user(store, "frank"), "first-password")
    users.add_user(store, "frank", "operator", "second-password", replace=True, clock=lambda: 9.0)
    rec = users.get_user(store, "frank")
    assert rec.role == "operator" and rec.created == 5.0
    assert users.verify_password(rec, "second-password")
    assert not users.verify_password(rec, "first-password")
    assert rec.ha1_md5 == hashlib.md5(b"frank:doorstation:second-password").hexdigest()


@pytest.mark.parametrize("name, role, password, error", [
    ("", "viewer", "password1", users.InvalidUserName),
    ("a" * 65, "viewer", "password1", users.InvalidUserName),
    ("has space", "viewer", "password1", users.InvalidUserName),
    ("colon:name", "viewer", "password1", users.InvalidUserName),
    ("ünï", "viewer", "password1", users.InvalidUserName),
    ("ok", "root", "password1", users.InvalidRole),
    ("ok", "Admin", "password1", users.InvalidRole),
    ("ok", "viewer", "short", users.InvalidPassword),
    ("ok", "viewer", "x" * 129, users.InvalidPassword),
])
def test_invalid_input_is_rejected_and_nothing_is_stored(store, name, role, password, error):
    with pytest.raises(error) as info:
        users.add_user(store, name, role, password)
    assert isinstance(info.value, users.UserError) and isinstance(info.value, ValueError)
    assert users.list_users(store) == []


def test_boundary_lengths_are_accepted(store):
    users.add_user(store, "a" * 64, "viewer", "x" * 8)
    users.add_user(store, "b.c_d-E9", "viewer", "y" * 128)
    assert [u["name"] for u in users.list_users(store)] == ["a" * 64, "b.c_d-E9"]


def test_remove_user(store):
    users.add_user(store, "admin", "admin", "admin-password")
    users.add_user(store, "gina", "operator", "password-g")
    users.remove_user(store, "gina")
    assert users.get_user(store, "gina") is None
    with pytest.raises(users.UnknownUser):
        users.remove_user(store, "gina")


def test_last_admin_cannot_be_removed_or_demoted(store):
    users.add_user(store, "root1", "admin", "password-1")
    users.add_user(store, "viewer1", "viewer", "password-v")
    with pytest.raises(users.LastAdmin):
        users.remove_user(store, "root1")
    with pytest.raises(users.LastAdmin):
        users.add_user(store, "root1", "viewer", "password-1", replace=True)
    assert users.get_user(store, "root1").role == "admin"
    users.add_user(store, "root2", "admin", "password-2")
    users.remove_user(store, "root1")  # another admin remains
    with pytest.raises(users.LastAdmin):
        users.remove_user(store, "root2")
    users.remove_user(store, "viewer1")  # non-admins can always go
    assert [u["name"] for u in users.list_users(store)] == ["root2"]


def test_ensure_initial_admin(store, tmp_path):
    password = users.ensure_initial_admin(store)
    assert isinstance(password, str) and len(password) >= 16
    rec = users.get_user(store, "admin")
    assert rec.role == "admin" and users.verify_password(rec, password)
    assert password.encode() not in b"".join(_state_files(tmp_path).values())
    assert users.ensure_initial_admin(store) is None  # users exist: nothing happens
    assert len(users.list_users(store)) == 1


def test_ensure_initial_admin_does_nothing_when_only_non_admins_exist(store):
    users.add_user(store, "viewer1", "viewer", "password-v")
    assert users.ensure_initial_admin(store) is None
    assert users.get_user(store, "admin") is None


def test_generate_password_is_url_safe_and_random():
    seen = {users.generate_password() for _ in range(50)}
    assert len(seen) == 50
    for pw in seen:
        assert 16 <= len(pw) <= 32
        assert all(c.isalnum() or c in "-_" for c in pw)


def test_readonly_store_sees_users_and_cannot_write(store, tmp_path):
    users.add_user(store, "hank", "viewer", "password-h")
    ro = Store.open(tmp_path, readonly=True)
    try:
        assert users.get_user(ro, "hank").role == "viewer"
        with pytest.raises(StoreError):
            users.add_user(ro, "ivy", "viewer", "password-i")
        with pytest.raises(sqlite3.Error):
            ro.conn.execute("DELETE FROM users")
    finally:
        ro.close()


def test_update_user_changes_role_or_password_and_keeps_the_rest(store):
    users.add_user(store, "root1", "admin", "password-1")
    users.add_user(store, "hank", "viewer", "password-h")
    before = users.get_user(store, "hank")
    users.update_user(store, "hank", role="operator")        # role only: verifiers kept
    after = users.get_user(store, "hank")
    assert after.role == "operator"
    assert (after.ha1_md5, after.ha1_sha256, after.pw_hash, after.created) == \
        (before.ha1_md5, before.ha1_sha256, before.pw_hash, before.created)
    assert users.verify_password(after, "password-h")
    users.update_user(store, "hank", password="new-password-h")   # password only: role kept
    changed = users.get_user(store, "hank")
    assert changed.role == "operator" and changed.created == before.created
    assert users.verify_password(changed, "new-password-h") and not users.verify_password(changed, "password-h")
    assert changed.ha1_md5 == users.digest_ha1("MD5", "hank", "new-password-h")
    users.update_user(store, "hank", role="viewer", password="third-password")
    assert users.get_user(store, "hank").role == "viewer"


def test_update_user_refuses_bad_input_unknown_users_and_demoting_the_last_admin(store):
    users.add_user(store, "root1", "admin", "password-1")
    with pytest.raises(users.UnknownUser):
        users.update_user(store, "nobody", role="viewer")
    with pytest.raises(users.InvalidRole):
        users.update_user(store, "root1", role="superuser")
    with pytest.raises(users.InvalidPassword):
        users.update_user(store, "root1", password="short")
    with pytest.raises(users.InvalidPassword):
        users.update_user(store, "root1", password="x" * (users.PASSWORD_MAX + 1))
    with pytest.raises(users.UserError):
        users.update_user(store, "root1")
    with pytest.raises(users.LastAdmin):
        users.update_user(store, "root1", role="operator")
    assert users.get_user(store, "root1").role == "admin"
    users.update_user(store, "root1", password="password-1b")   # the last admin may change its password
    users.add_user(store, "root2", "admin", "password-2")
    users.update_user(store, "root1", role="viewer")             # another admin remains
    assert users.get_user(store, "root1").role == "viewer"


def test_verifiers_computed_ahead_are_stored_only_for_their_own_name(store):
    ready = users.make_verifiers("ivy", "ivy-password")
    users.add_user(store, "ivy", "viewer", "ivy-password", verifiers=ready)
    assert users.get_user(store, "ivy").pw_hash == ready.pw_hash
    users.add_user(store, "jon", "viewer", "jon-password", verifiers=ready)    # not jon's: recomputed
    jon = users.get_user(store, "jon")
    assert jon.pw_hash != ready.pw_hash and jon.ha1_md5 == users.digest_ha1("MD5", "jon", "jon-password")
    again = users.make_verifiers("ivy", "ivy-password-2")
    users.update_user(store, "ivy", password="ivy-password-2", verifiers=again)
    assert users.verify_password(users.get_user(store, "ivy"), "ivy-password-2")
