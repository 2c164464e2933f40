"""CAP 1.2 out: a keng broadcast as a CAP alert (Vietnamese info, areas as VN-DVHC geocodes).

Identifiers: revision 0 is the Alert `keng-<broadcast id>-r0` (sent = creation time); a revised broadcast is an Update
`keng-<id>-r<revision>` and a cancelled one a Cancel `keng-<id>-cancel`, both referencing revision 0. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol
from uuid import UUID
from xml.etree.ElementTree import Element, SubElement, tostring

from keng.domain.cap import CAP12_NS, Certainty, Severity, Urgency
from keng.domain.cap_places import DVHC
from keng.domain.values import BroadcastState, Priority, in_zone, printable_text

VN_TIME = timezone(timedelta(hours=7))  # Vietnam keeps +07:00 all year
CAP_MEDIA_TYPE = "application/cap+xml"
# The reverse of domain.cap_mapping.priority_for: each triple maps back onto its own class.
PRIORITY_TO_CAP: dict[str, tuple[Urgency, Severity, Certainty]] = {
    Priority.EMERGENCY: (Urgency.IMMEDIATE, Severity.EXTREME, Certainty.OBSERVED),
    Priority.PRIORITY: (Urgency.EXPECTED, Severity.SEVERE, Certainty.LIKELY),
    Priority.NORMAL: (Urgency.FUTURE, Severity.MINOR, Certainty.LIKELY),
}


class BroadcastLike(Protocol):
    """What rendering reads from a broadcast (the aggregate satisfies it)."""

    @property
    def id(self) -> UUID: ...
    @property
    def title(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def announced_text(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def scope(self) -> list[str]: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def drill(self) -> bool: ...
    @property
    def state(self) -> str: ...
    @property
    def revision(self) -> int: ...
    @property
    def audio(self) -> str | None: ...
    @property
    def created_on(self) -> datetime: ...
    @property
    def modified_on(self) -> datetime: ...


@dataclass(frozen=True)
class CapSender:
    """Who keng says it is in CAP out (`sender` must contain no spaces, commas, '<' or '&')."""

    sender: str = "keng@localhost"
    name: str = "Hệ thống thông tin cơ sở (keng)"


def cap_time(value: datetime) -> str:
    """A CAP date-time in Vietnam's offset (UTC at the very end of the calendar), seconds precision."""
    return in_zone(value, VN_TIME).isoformat(timespec="seconds")


def cap_identifier(broadcast: BroadcastLike) -> str:
    """The CAP identifier of the broadcast's current state."""
    suffix = "cancel" if broadcast.state == BroadcastState.CANCELLED else f"r{broadcast.revision}"
    return f"keng-{broadcast.id}-{suffix}"


def _leaf(parent: Element, name: str, text: str) -> None:
    # Every text goes through printable_text: ElementTree writes control characters as they are, which no XML 1.0
    # parser reads, and a broadcast stored before the boundary refused them must not break the public document.
    SubElement(parent, f"{{{CAP12_NS}}}{name}").text = printable_text(text)


def broadcast_to_cap(
    broadcast: BroadcastLike,
    *,
    sender: CapSender | None = None,
    area_names: Mapping[str, str] | None = None,
    base_url: str | None = None,
) -> bytes:
    """The broadcast as a UTF-8 CAP 1.2 document. `area_names` (code -> name) fills areaDesc; `base_url` adds a
    `web` link to the alert's own URL."""
    who = sender or CapSender()
    names = area_names or {}
    first = f"{who.sender},keng-{broadcast.id}-r0,{cap_time(broadcast.created_on)}"
    cancelled = broadcast.state == BroadcastState.CANCELLED
    original = broadcast.revision == 0 and not cancelled
    sent = broadcast.created_on if original else broadcast.modified_on
    alert = Element(f"{{{CAP12_NS}}}alert")
    _leaf(alert, "identifier", cap_identifier(broadcast))
    _leaf(alert, "sender", who.sender)
    _leaf(alert, "sent", cap_time(sent))
    _leaf(alert, "status", "Exercise" if broadcast.drill else "Actual")
    _leaf(alert, "msgType", "Alert" if original else "Cancel" if cancelled else "Update")
    _leaf(alert, "scope", "Public")
    if not original:
        _leaf(alert, "references", first)
    info = SubElement(alert, f"{{{CAP12_NS}}}info")
    urgency, severity, certainty = PRIORITY_TO_CAP.get(broadcast.priority, PRIORITY_TO_CAP[Priority.NORMAL])
    for name, text in (
        ("language", "vi-VN"),
        ("category", "Other"),
        ("event", broadcast.title),
        ("urgency", urgency.value),
        ("severity", severity.value),
        ("certainty", certainty.value),
    ):
        _leaf(info, name, text)
    if broadcast.expires_at > sent:
        _leaf(info, "expires", cap_time(broadcast.expires_at))
    _leaf(info, "senderName", who.name)
    _leaf(info, "headline", broadcast.title)
    _leaf(info, "description", broadcast.text)
    if base_url:
        _leaf(info, "web", f"{base_url.rstrip('/')}/cap/{broadcast.id}.xml")
    if broadcast.audio and broadcast.audio.startswith(("https://", "http://")):
        resource = SubElement(info, f"{{{CAP12_NS}}}resource")
        _leaf(resource, "resourceDesc", "Bản tin âm thanh (audio bulletin)")
        _leaf(resource, "mimeType", "audio/mpeg")
        _leaf(resource, "uri", broadcast.audio)
    area = SubElement(info, f"{{{CAP12_NS}}}area")
    _leaf(area, "areaDesc", ", ".join(names.get(code, code) for code in broadcast.scope) or "—")
    for code in broadcast.scope:
        if re.fullmatch(r"\d{3}|\d{5}", code):
            geocode = SubElement(area, f"{{{CAP12_NS}}}geocode")
            _leaf(geocode, "valueName", DVHC)
            _leaf(geocode, "value", code)
    document: bytes = tostring(alert, encoding="utf-8", xml_declaration=True, default_namespace=CAP12_NS)
    return document
