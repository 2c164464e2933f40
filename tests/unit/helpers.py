"""Builders for domain unit tests (pure: no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from keng.domain.broadcast import Broadcast
from keng.domain.content import Content, build_content
from keng.domain.staff import Staff

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def staff(handle: str, *roles: str, wards: list[str] | None = None) -> Staff:
    return Staff.enrol(handle=handle, name=handle.title(), roles=list(roles), wards=wards or [], by="system")


def content(**overrides: Any) -> Content:
    args: dict[str, Any] = {
        "title": "Thông báo lịch cắt điện",
        "text": "UBND phường Thượng Cát thông báo lịch cắt điện ngày 28/11.",
        "priority": "normal",
        "target_areas": ["00595"],
        "scope": ["00595"],
        "now": NOW,
    }
    args.update(overrides)
    return build_content(**args)


def submitted(drafter: Staff | None = None, **overrides: Any) -> Broadcast:
    author = drafter or staff("lan", "drafter")
    b = Broadcast.draft(content(**overrides), by=author)
    b.submit(by=author)
    return b


LATER = NOW + timedelta(minutes=5)
