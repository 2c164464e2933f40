"""Staff passwords for the console: argon2id hashes in `<data dir>/staff.passwords.json`, mode 0600.

Hashes stay out of the event log, as integration secrets do (an append-only log cannot forget a leaked hash); the log
records that a password was set, by whom and when (domain/credential.py). For a multi-machine deployment, distribute
this file with the same care as the integration secrets.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from keng.adapters.private_files import PrivateJsonFile

# Verifying against this when a handle has no password keeps the answer's timing alike for known and unknown handles.
_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("keng: no password is set for this handle")


class PasswordStore(PrivateJsonFile):
    """argon2id password hashes by staff handle."""

    FILENAME = "staff.passwords.json"

    def set(self, handle: str, password: str) -> None:
        """Store a new hash for the handle (replacing any earlier one)."""
        hashed = _HASHER.hash(password)
        with self._lock:
            data = self._read()
            data[handle] = hashed
            self._write(data)

    def has(self, handle: str) -> bool:
        """True if a password is set for the handle."""
        return handle in self._read()

    def verify(self, handle: str, password: str) -> bool:
        """True if the password matches the handle's hash (False when none is set, after the same work)."""
        stored = self._read().get(handle)
        try:
            return _HASHER.verify(stored or _DUMMY, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
