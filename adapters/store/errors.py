"""Errors raised by the application layer over the event store (as distinct from domain rule errors)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for application-level store errors."""


class NotFound(StoreError):
    """No aggregate with that identity exists."""


class DuplicateRecord(StoreError):
    """The thing already exists: the store's uniqueness constraint refused a second creation."""


class ConcurrencyConflict(StoreError):
    """Someone else changed the aggregate since it was read (optimistic concurrency); nothing was written."""
