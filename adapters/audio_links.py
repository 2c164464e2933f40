"""Signed audio links for devices: `?exp=<unix seconds>&sig=<hex>`, an HMAC-SHA256 of the asset key and the expiry.

Devices have no API token; the dispatcher puts a link signed with the service's key into each `play` command, valid
until the broadcast expires. Staff fetch the same files with their bearer token. The key lives in
`<data dir>/audio-links.key` (0600), created on first use; replacing it invalidates every outstanding link.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from pathlib import Path

from keng.adapters.private_files import create_once

FILENAME = "audio-links.key"


class AudioLinks:
    """Signs and checks audio links."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the audio link key must hold at least 32 bytes")
        self._key = key

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> AudioLinks:
        """Load the key from the data directory, creating it (mode 0600) the first time: by one of several processes
        starting at once, and read by all of them."""
        path = data_dir / FILENAME
        if not path.exists():
            create_once(path, secrets.token_bytes(32))
        return cls(path.read_bytes())

    def _mac(self, key: str, expires: int) -> str:
        return hmac.new(self._key, f"{key}.{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def query(self, key: str, expires_at: datetime) -> str:
        """The query string that lets a device fetch `key` until `expires_at`."""
        expires = int(expires_at.timestamp())
        return f"exp={expires}&sig={self._mac(key, expires)}"

    def allows(self, key: str, exp: int, sig: str, *, now: float) -> bool:
        """True when the signature matches and has not expired (`exp` is parsed by the caller, as bounded digits)."""
        if exp < now:
            return False
        return hmac.compare_digest(self._mac(key, exp).encode(), sig.encode())  # as str, non-ASCII would raise
