"""The integration secrets file: `<data dir>/integrations.secrets.json`, mode 0600, written atomically.

Secrets stay out of the event log (which cannot forget them); the log records their fingerprints. For a multi-machine
deployment, distribute this file with the same care as a TLS private key.
"""

from __future__ import annotations

import threading
from pathlib import Path

import orjson

from keng.adapters.private_files import private_dir, write_private
from keng.adapters.signing import fingerprint


class SecretStore:
    """Active secrets per integration name, keyed by fingerprint."""

    FILENAME = "integrations.secrets.json"

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / self.FILENAME
        self._lock = threading.Lock()
        self._cache: tuple[int, dict[str, dict[str, str]]] = (-1, {})

    def _read(self) -> dict[str, dict[str, str]]:
        # Re-read only when the file changed: every signed request consults it.
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if mtime != self._cache[0]:
            data: dict[str, dict[str, str]] = orjson.loads(self.path.read_bytes())
            self._cache = (mtime, data)
        return {k: dict(v) for k, v in self._cache[1].items()}

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        private_dir(self.path.parent)
        write_private(self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2), durable=True)
        self._cache = (-1, {})  # read again: a removed secret is forgotten here at once

    def add(self, integration: str, secret: str) -> str:
        """Store a secret; returns its fingerprint."""
        with self._lock:
            data = self._read()
            fp = fingerprint(secret)
            data.setdefault(integration, {})[fp] = secret
            self._write(data)
            return fp

    def remove(self, integration: str, fp: str) -> None:
        """Forget a retired secret."""
        with self._lock:
            data = self._read()
            data.get(integration, {}).pop(fp, None)
            self._write(data)

    def active(self, integration: str, fingerprints: list[str]) -> list[str]:
        """The secrets of an integration whose fingerprints the log lists as active."""
        # A fingerprint names one secret for good (it is the secret's hash), so one already read answers without
        # looking at the file again (a stat on every signed request was a measurable share of the HTTP path). The
        # log's list decides which are active: one retired by another process is no longer asked for.
        known = self._cache[1].get(integration, {})
        if fingerprints and all(fp in known for fp in fingerprints):
            return [known[fp] for fp in fingerprints]
        stored = self._read().get(integration, {})
        return [stored[fp] for fp in fingerprints if fp in stored]
