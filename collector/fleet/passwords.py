"""Password hashing: argon2id at OWASP's parameters, old scrypt hashes still verify.

New hashes are argon2id with 19 MiB of memory, 2 iterations and 1 lane, the
first configuration of the OWASP Password Storage Cheat Sheet (argon2-cffi's
PHC string, ``$argon2id$v=19$m=19456,t=2,p=1$…``). Hashes written before
(``scrypt$N$r$p$salt$digest``, N = 2^14) keep verifying; :func:`needs_rehash`
tells sign-in to replace them (and argon2 hashes with other parameters) once
the password is known to be right.

Hashing costs tens of milliseconds of CPU and memory: callers run it on a
worker thread and never inside a database transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from collector.fleet.errors import InvalidInput

MIN_LENGTH = 8
# OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# A well-formed hash of a random secret nobody knows: verifying against it costs
# what a real verification costs, so timing does not reveal which e-mails exist.
DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$wIWP5MNH5775SAV9EyXJ0g"
    "$nUZizD6xQL1HwJqQbEE4wH95/5xotVKaeNLsOMZ3MfU"
)
# Legacy scrypt hashes: refuse parameters no hash of ours ever had (memory bound).
_SCRYPT_MAX_N = 2**17


def hash_password(password: str) -> str:
    """Hash a password with argon2id (a PHC string with salt and parameters)."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_LENGTH} characters")
    return HASHER.hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    """Check a password against an argon2id or legacy scrypt hash, in constant time."""
    if not stored:
        return False
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Tell whether a hash that just verified should be replaced by a current one."""
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        _, n_text, r_text, p_text, salt, digest = stored.split("$")
        n, r, p = int(n_text), int(r_text), int(p_text)
        if not (1 < n <= _SCRYPT_MAX_N and 0 < r <= 32 and 0 < p <= 16):
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=n,
            r=r,
            p=p,
            maxmem=256 * r * n * p + 2**20,
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))
