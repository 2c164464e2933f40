"""Broker accounts: device passwords (kept only as mosquitto password hashes) and keng's own account, in the data
directory, mode 0600.

- `<data dir>/mqtt.passwords.json`: `{endpoint code: hash}`, one line of mosquitto's password file each. The hash is
  mosquitto's `$7$` format, as `mosquitto_passwd` (2.x) writes it: `$7$<iterations>$<base64 salt>$<base64 key>`, the
  key being PBKDF2-HMAC-SHA512 of the UTF-8 password with the salt's 12 bytes, 64 bytes long. The plain password is
  shown once by `keng endpoint credentials` and kept nowhere.
- `<data dir>/mqtt.keng.json`: `{account: password}` for keng's own accounts (the dispatcher's), generated once: keng
  must know the password itself to connect, so this file holds it in clear, like the integration secrets.

Device passwords are 256 random bits, so mosquitto's default of 101 PBKDF2 iterations costs an attacker holding the
file as much as 2^256 guesses would; more iterations would only slow every broker reconnect of a 10,000-device fleet.
Hashes stay out of the event log, which cannot forget them (an `Endpoint.CredentialsIssued` event records who and when).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from keng.adapters.private_files import PrivateJsonFile

KENG_ACCOUNT = "keng-dispatcher"  # the dispatcher's broker account (its two connections share it)
ITERATIONS = 101  # mosquitto_passwd's default
SALT_BYTES = 12
KEY_BYTES = 64
_HASH = re.compile(r"^\$7\$(\d{1,9})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$")


def new_password() -> str:
    """A strong random password (256 bits, URL-safe: it also travels in `mqtt://user:password@host` URLs)."""
    return secrets.token_urlsafe(32)


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The password's hash in mosquitto's `$7$` (PBKDF2-SHA512) format."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, KEY_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def verify_mosquitto_hash(password: str, hashed: str) -> bool:
    """True if the password matches a `$7$` hash (as mosquitto would check it); False for any other string."""
    found = _HASH.match(hashed)
    if found is None:
        return False
    iterations, salt, key = int(found[1]), base64.b64decode(found[2]), base64.b64decode(found[3])
    if iterations < 1:
        return False
    candidate = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(key))
    return hmac.compare_digest(candidate, key)


class DevicePasswords(PrivateJsonFile):
    """Device password hashes by endpoint code."""

    FILENAME = "mqtt.passwords.json"

    def set(self, code: str, password: str) -> None:
        """Store the hash of a device's new password (replacing the old one: the old password stops working once the
        broker's password file is regenerated and reloaded)."""
        hashed = mosquitto_hash(password)
        with self._lock:
            data = self._read()
            data[code] = hashed
            self._write(data)

    def hashes(self) -> dict[str, str]:
        """Every stored hash by endpoint code."""
        with self._lock:
            return self._read()


class KengAccounts(PrivateJsonFile):
    """keng's own broker accounts and their passwords (generated on first use, then kept)."""

    FILENAME = "mqtt.keng.json"

    def password(self, account: str = KENG_ACCOUNT) -> str:
        """The account's password, generated and stored the first time it is asked for."""
        with self._lock:
            data = self._read()
            if account not in data:
                data[account] = new_password()
                self._write(data)
            return data[account]
