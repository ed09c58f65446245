"""Mosquitto's password-file hash, written the way ``mosquitto_passwd`` does.

Mosquitto 2.x stores ``username:$7$<iterations>$<salt b64>$<hash b64>``:
PBKDF2-HMAC-SHA512 with a 12-byte random salt and 101 iterations by default
(``mosquitto_passwd -I`` changes the count). The collector keeps only this
hash per device, so it can regenerate the password file without ever holding
a plaintext password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 101
SALT_BYTES = 12


def mosquitto_hash(
    password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None
) -> str:
    """Return the ``$7$…`` hash of ``password`` for a Mosquitto password file."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_mosquitto_hash(password: str, stored: str) -> bool:
    """Check a password against a ``$7$`` hash (used by tests and the CLI)."""
    try:
        _, seven, iterations, salt, digest = stored.split("$")
        if seven != "7":
            return False
        got = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def new_device_password() -> str:
    """A random MQTT password (32 bytes, URL-safe)."""
    return secrets.token_urlsafe(32)
