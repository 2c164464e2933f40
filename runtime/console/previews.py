"""Previews of a bulletin being composed (its speech and its e-board page), kept in memory for a few minutes under a
random key and served from the console's own origin (`GET /console/previews/{key}`), so that an `<audio>` or `<img>`
plays them under the strict Content-Security-Policy (`media-src 'self'`, no `blob:`).

A preview belongs to the person who asked for it (another session cannot fetch it, even with the key), each person
keeps only their latest preview of each kind, and the whole store is bounded in entries and bytes. One render at a
time per person: a second request while one runs is refused (429) rather than queued.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

TTL_S = 10 * 60
MAX_ENTRIES = 64
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Preview:
    owner: str
    kind: str
    mime: str
    data: bytes
    made: float


class Busy(Exception):
    """The person already has a preview being rendered."""


class PreviewStore:
    """Recent previews by key; thread-safe (renders run in worker threads)."""

    def __init__(self, *, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.ttl_s, self.max_entries, self.max_bytes = ttl_s, max_entries, max_bytes
        self._items: OrderedDict[str, Preview] = OrderedDict()
        self._rendering: set[str] = set()
        self._lock = threading.Lock()

    def begin(self, owner: str) -> None:
        """Start a render for `owner`; Busy if one is already running."""
        with self._lock:
            if owner in self._rendering:
                raise Busy(owner)
            self._rendering.add(owner)

    def end(self, owner: str) -> None:
        with self._lock:
            self._rendering.discard(owner)

    def put(self, owner: str, kind: str, mime: str, data: bytes) -> str:
        """Keep a preview (replacing the owner's previous one of this kind); returns its key."""
        key = secrets.token_urlsafe(18)
        now = time.monotonic()
        with self._lock:
            for old in [k for k, p in self._items.items() if p.owner == owner and p.kind == kind]:
                del self._items[old]
            self._items[key] = Preview(owner, kind, mime, data, now)
            self._prune(now)
        return key

    def get(self, owner: str, key: str) -> Preview | None:
        """The preview under `key` if it is `owner`'s and still fresh."""
        with self._lock:
            self._prune(time.monotonic())
            found = self._items.get(key)
        return found if found is not None and found.owner == owner else None

    def _prune(self, now: float) -> None:
        for key in [k for k, p in self._items.items() if now - p.made > self.ttl_s]:
            del self._items[key]
        while len(self._items) > self.max_entries or sum(len(p.data) for p in self._items.values()) > self.max_bytes:
            self._items.popitem(last=False)
