"""Sealed cookie values for console sessions: JSON encrypted and authenticated with Fernet (AES-128-CBC with
HMAC-SHA256, from `cryptography`) under a key kept in `<data dir>/console-session.key`, mode 0600.

The browser holds the session, but can neither read nor alter it; a value older than its maximum age is refused.
Rotating the key (deleting the file) signs everyone out.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

from keng.adapters.private_files import create_once

MAX_COOKIE_BYTES = 4000


class CookieSealer:
    """Seal and open small JSON objects for cookies."""

    FILENAME = "console-session.key"

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / self.FILENAME
        self._lock = threading.Lock()
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        with self._lock:
            if self._fernet is None:
                # made by one of several `keng serve` starting at once, read by all: one key for every worker
                create_once(self.path, Fernet.generate_key())
                self._fernet = Fernet(self.path.read_bytes().strip())
            return self._fernet

    def seal(self, value: dict[str, Any]) -> str:
        """The sealed (encrypted, authenticated) form of a JSON object."""
        return self._key().encrypt(orjson.dumps(value)).decode("ascii")

    def open(self, sealed: str, *, max_age_s: int) -> dict[str, Any] | None:
        """The object sealed in `sealed`, or None when it is malformed, altered, or older than `max_age_s`."""
        if not sealed or len(sealed) > MAX_COOKIE_BYTES:
            return None
        try:
            data = orjson.loads(self._key().decrypt(sealed.encode("ascii"), ttl=max_age_s))
        except (InvalidToken, UnicodeEncodeError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None
