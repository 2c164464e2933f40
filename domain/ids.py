"""Deterministic identifiers.

Where a source supplies its own identifier (a staff handle, an area code, a city-source message id), the aggregate id is
a UUID5 of the source and that identifier, so that creating the same thing twice collides on the event store's own
uniqueness constraint (originator id + version 1) instead of on a cache that could be lost.
"""

from __future__ import annotations

import unicodedata
from uuid import UUID, uuid5

KENG_NAMESPACE = UUID("6f0c1d5e-2b7a-5b8e-9a51-6b656e670001")


def _key(*parts: str) -> str:
    return "\x1f".join(unicodedata.normalize("NFC", p) for p in parts)


def area_id(code: str) -> UUID:
    """Id of the area node with this administrative (or generated) code."""
    return uuid5(KENG_NAMESPACE, _key("area", code))


def staff_id(handle: str) -> UUID:
    """Id of the staff member with this login handle (case-insensitive)."""
    return uuid5(KENG_NAMESPACE, _key("staff", handle.lower()))


def endpoint_id(code: str) -> UUID:
    """Id of the endpoint with this inventory code."""
    return uuid5(KENG_NAMESPACE, _key("endpoint", code))


def sourced_broadcast_id(source: str, external_id: str, integration: str | None = None) -> UUID:
    """Id of a broadcast created from an external message (source + the source's own id). A message an integration
    sent is scoped to that integration, so that one integration cannot take another's key; without `integration`
    (a staff member's import, and broadcasts stored before keys were scoped) the id is the earlier, unscoped one."""
    if integration is None:
        return uuid5(KENG_NAMESPACE, _key("broadcast", source, external_id))
    return uuid5(KENG_NAMESPACE, _key("integration-broadcast", integration, source, external_id))


def ward_schedule_id(ward: str) -> UUID:
    """Id of a ward's own programme settings (slots, quiet hours, order of priority items)."""
    return uuid5(KENG_NAMESPACE, _key("ward-schedule", ward))


def dated_area_id(code: str, effective: str) -> UUID:
    """Id of the unit established with this code on this day: a code reused by a later unit names a new identity."""
    return uuid5(KENG_NAMESPACE, _key("area", code, effective))
