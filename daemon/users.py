"""API users: names, roles and password verifiers in the store's `users` table.

The password itself is never stored. Each row keeps three verifiers derived from it:

- `ha1_md5`    = MD5(name:realm:password)      -- HTTP Digest, algorithm=MD5 (RFC 7616 sec. 3.4.2)
- `ha1_sha256` = SHA-256(name:realm:password)  -- HTTP Digest, algorithm=SHA-256
- `pw_hash`    = "scrypt$n$r$p$salt_hex$hash_hex" -- HTTP Basic (slow, salted)

Digest needs HA1, which is a fast unsalted hash of the password: whoever reads the database can
authenticate with Digest as that user (but does not learn the password). Keep the state directory
readable by the service only. The realm is part of HA1, so it is a constant (`REALM`): changing it
would invalidate every stored Digest verifier.

Every function takes the Store it works on; writes happen inside one `store.transaction()`.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Callable

from daemon.commands.roles import ROLES as COMMAND_ROLE_ORDER
from daemon.store import Store

REALM = "doorstation"
ROLES = tuple(reversed(COMMAND_ROLE_ORDER))     # as the CLI lists them: admin first

NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
PASSWORD_MIN, PASSWORD_MAX = 8, 128

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
SCRYPT_SALT_BYTES = 16
SCRYPT_DKLEN = 32
# Upper bounds accepted when *reading* a hash, so a damaged row cannot make us allocate gigabytes.
_SCRYPT_MAX_N, _SCRYPT_MAX_R, _SCRYPT_MAX_P = 2 ** 20, 16, 16
_SCRYPT_MAXMEM = 256 * 1024 * 1024


class UserError(ValueError):
    """Base of every user-management error (a ValueError, so callers may treat it as bad input)."""


class InvalidUserName(UserError):
    pass


class InvalidRole(UserError):
    pass


class InvalidPassword(UserError):
    pass


class UserExists(UserError):
    pass


class UnknownUser(UserError):
    pass


class LastAdmin(UserError):
    """Removing or demoting this user would leave no admin."""


@dataclass(frozen=True)
class UserRecord:
    name: str
    role: str
    realm: str
    ha1_md5: str
    ha1_sha256: str
    pw_hash: str
    created: float


_COLUMNS = "name, role, realm, ha1_md5, ha1_sha256, pw_hash, created"


# -- verifiers ----------------------------------------------------------------------------------

def digest_ha1(algorithm: str, name: str, password: str, realm: str = REALM) -> str:
    """HA1 as RFC 7616 defines it for a non-session algorithm ("MD5" or "SHA-256")."""
    data = f"{name}:{realm}:{password}".encode("utf-8")
    if algorithm == "MD5":
        return hashlib.md5(data).hexdigest()
    if algorithm == "SHA-256":
        return hashlib.sha256(data).hexdigest()
    raise ValueError(f"unsupported digest algorithm {algorithm!r}")


def scrypt_hash(password: str, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(SCRYPT_SALT_BYTES) if salt is None else salt
    derived = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                             dklen=SCRYPT_DKLEN, maxmem=_SCRYPT_MAXMEM)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${derived.hex()}"


def verify_password(record: UserRecord, password: str) -> bool:
    """Check `password` against the record's scrypt hash (constant-time comparison).
    A malformed stored hash verifies nothing."""
    try:
        scheme, n_text, r_text, p_text, salt_hex, hash_hex = record.pw_hash.split("$")
        n, r, p = int(n_text), int(r_text), int(p_text)
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(hash_hex)
    except ValueError:
        return False
    if (scheme != "scrypt" or not (2 <= n <= _SCRYPT_MAX_N) or n & (n - 1)
            or not (1 <= r <= _SCRYPT_MAX_R) or not (1 <= p <= _SCRYPT_MAX_P) or not expected):
        return False
    derived = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                             dklen=len(expected), maxmem=_SCRYPT_MAXMEM)
    return hmac.compare_digest(derived, expected)


def generate_password() -> str:
    """20 URL-safe characters (120 random bits)."""
    return secrets.token_urlsafe(15)


@dataclass(frozen=True)
class Verifiers:
    """What the store keeps of one user's password, computed ahead (scrypt takes ~0.1 s: a caller
    on an event loop computes this in a worker thread, then writes on its own thread)."""
    name: str
    ha1_md5: str
    ha1_sha256: str
    pw_hash: str


def make_verifiers(name: str, password: str) -> Verifiers:
    return Verifiers(name, digest_ha1("MD5", name, password), digest_ha1("SHA-256", name, password),
                     scrypt_hash(password))


# -- validation ---------------------------------------------------------------------------------

def validate(name: str, role: str, password: str) -> None:
    """The checks add_user makes before it writes (cheap: call it before make_verifiers)."""
    _validate(name, role, password)


def validate_password(password: str) -> None:
    if not isinstance(password, str) or not (PASSWORD_MIN <= len(password) <= PASSWORD_MAX):
        raise InvalidPassword(f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")


def _validate(name: str, role: str, password: str) -> None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidUserName("user name must be 1 to 64 of A-Z a-z 0-9 . _ -")
    if role not in ROLES:
        raise InvalidRole(f"role must be one of {', '.join(ROLES)}")
    validate_password(password)


# -- store operations ---------------------------------------------------------------------------

def _row_to_record(row: tuple) -> UserRecord:
    return UserRecord(*row)


def _admin_count(tx) -> int:
    return tx.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0]


def _insert(tx, name: str, role: str, password: str, replace: bool, now: float,
            ready: Verifiers | None = None) -> None:
    row = tx.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
    if ready is None or ready.name != name:    # HA1 includes the name: never reuse another's
        ready = make_verifiers(name, password)
    verifiers = (REALM, ready.ha1_md5, ready.ha1_sha256, ready.pw_hash)
    if row is None:
        tx.execute(f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (name, role, *verifiers, now))
        return
    if not replace:
        raise UserExists(f"user {name!r} already exists")
    if row[0] == "admin" and role != "admin" and _admin_count(tx) == 1:
        raise LastAdmin(f"{name!r} is the last admin")
    tx.execute("UPDATE users SET role = ?, realm = ?, ha1_md5 = ?, ha1_sha256 = ?, pw_hash = ? "
               "WHERE name = ?", (role, *verifiers, name))


def add_user(store: Store, name: str, role: str, password: str, replace: bool = False,
             clock: Callable[[], float] = time.time, verifiers: Verifiers | None = None) -> None:
    """Create a user, or with replace=True set an existing user's role and password
    (its `created` time is kept). Raises InvalidUserName/InvalidRole/InvalidPassword, UserExists,
    LastAdmin (demoting the only admin). `verifiers`: make_verifiers(name, password), computed ahead."""
    _validate(name, role, password)
    with store.transaction() as tx:
        _insert(tx, name, role, password, replace, clock(), verifiers)


def update_user(store: Store, name: str, role: str | None = None, password: str | None = None,
                verifiers: Verifiers | None = None) -> None:
    """Change an existing user's role, password or both; what is not given is kept (a role change
    keeps the verifiers, so the password stays valid). Raises UnknownUser, InvalidRole,
    InvalidPassword, LastAdmin (demoting the only admin), ValueError when neither is given."""
    if role is None and password is None:
        raise UserError("nothing to change: give a role, a password or both")
    if role is not None and role not in ROLES:
        raise InvalidRole(f"role must be one of {', '.join(ROLES)}")
    if password is not None:
        validate_password(password)
    with store.transaction() as tx:
        row = tx.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownUser(f"no user {name!r}")
        new_role = row[0] if role is None else role
        if row[0] == "admin" and new_role != "admin" and _admin_count(tx) == 1:
            raise LastAdmin(f"{name!r} is the last admin")
        if password is None:
            tx.execute("UPDATE users SET role = ? WHERE name = ?", (new_role, name))
        else:
            _insert(tx, name, new_role, password, replace=True, now=0.0, ready=verifiers)


def remove_user(store: Store, name: str) -> None:
    """Raises UnknownUser, or LastAdmin when `name` is the only admin."""
    with store.transaction() as tx:
        row = tx.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownUser(f"no user {name!r}")
        if row[0] == "admin" and _admin_count(tx) == 1:
            raise LastAdmin(f"{name!r} is the last admin")
        tx.execute("DELETE FROM users WHERE name = ?", (name,))


def list_users(store: Store) -> list[dict]:
    rows = store.conn.execute("SELECT name, role, created FROM users ORDER BY name").fetchall()
    return [{"name": n, "role": r, "created": c} for n, r, c in rows]


def get_user(store: Store, name: str) -> UserRecord | None:
    row = store.conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
    return _row_to_record(row) if row else None


def admin_exists(store: Store) -> bool:
    return bool(_admin_count(store.conn))


def ensure_initial_admin(store: Store, clock: Callable[[], float] = time.time) -> str | None:
    """If there is no user at all, create "admin" with a generated password and return that
    password (the caller shows it once; it is not stored anywhere). Otherwise return None."""
    with store.transaction() as tx:
        if tx.execute("SELECT COUNT(*) FROM users").fetchone()[0]:
            return None
        password = generate_password()
        _insert(tx, "admin", "admin", password, replace=False, now=clock())
        return password
