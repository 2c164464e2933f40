"""Builders of CAP 1.2 documents for tests: Vietnamese alerts for the sample district (Bắc Từ Liêm)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

FIXTURES = Path(__file__).parent / "cap_fixtures"
ICT = timezone(timedelta(hours=7))
CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SENDER = "kttv@hanoi.gov.vn"


def cap_time(value: datetime) -> str:
    """A CAP date-time in Vietnam's offset."""
    return value.astimezone(ICT).isoformat(timespec="seconds")


def fixture(name: str) -> bytes:
    """One of the stored fixture documents."""
    return (FIXTURES / name).read_bytes()


def area(
    desc: str = "Phường Thượng Cát",
    *,
    codes: tuple[str, ...] = ("00595",),
    polygon: str | None = None,
    circle: str | None = None,
    value_name: str = "VN-DVHC",
) -> str:
    """An <area> element."""
    parts = [f"<areaDesc>{desc}</areaDesc>"]
    if polygon:
        parts.append(f"<polygon>{polygon}</polygon>")
    if circle:
        parts.append(f"<circle>{circle}</circle>")
    parts += [f"<geocode><valueName>{value_name}</valueName><value>{c}</value></geocode>" for c in codes]
    return "<area>" + "".join(parts) + "</area>"


def info(
    *,
    language: str = "vi-VN",
    urgency: str = "Immediate",
    severity: str = "Extreme",
    certainty: str = "Observed",
    category: str = "Met",
    headline: str = "Cảnh báo lũ quét",
    description: str = "Mưa lớn gây nguy cơ lũ quét tại phường Thượng Cát.",
    instruction: str = "Người dân di chuyển đến nơi cao ráo.",
    expires: datetime | None = None,
    areas: tuple[str, ...] | None = None,
    extra: str = "",
) -> str:
    """An <info> element (expires two hours from now unless given)."""
    expiry = cap_time(expires or datetime.now(UTC) + timedelta(hours=2))
    body = "".join(area_ for area_ in (areas if areas is not None else (area(),)))
    return (
        f"<info><language>{language}</language><category>{category}</category><event>Lũ quét</event>"
        f"<urgency>{urgency}</urgency><severity>{severity}</severity><certainty>{certainty}</certainty>"
        f"<expires>{expiry}</expires><senderName>Đài KTTV Hà Nội</senderName><headline>{headline}</headline>"
        f"<description>{description}</description><instruction>{instruction}</instruction>{extra}{body}</info>"
    )


def alert(
    *,
    identifier: str = "KTTV-2026-0001",
    sender: str = SENDER,
    sent: datetime | str | None = None,
    status: str = "Actual",
    msg_type: str = "Alert",
    scope: str = "Public",
    references: str | None = None,
    infos: tuple[str, ...] | None = None,
    extra: str = "",
    encoding: str = "UTF-8",
    namespace: str = CAP_NS,
) -> bytes:
    """A whole CAP document, encoded as declared."""
    sent_text = sent if isinstance(sent, str) else cap_time(sent or datetime.now(UTC) - timedelta(minutes=1))
    refs = f"<references>{references}</references>" if references else ""
    body = "".join(infos if infos is not None else (info(),))
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<alert xmlns="{namespace}">'
        f"<identifier>{identifier}</identifier><sender>{sender}</sender><sent>{sent_text}</sent>"
        f"<status>{status}</status><msgType>{msg_type}</msgType><scope>{scope}</scope>{refs}{body}{extra}</alert>"
    )
    return text.encode(encoding, errors="xmlcharrefreplace")  # what a Latin-1 sender does with Vietnamese


def prefixed(document: bytes, prefix: str = "cap") -> bytes:
    """The same document with the CAP namespace bound to a prefix instead of the default namespace."""
    import re

    text = document.decode("utf-8")
    text = text.replace(f'xmlns="{CAP_NS}"', f'xmlns:{prefix}="{CAP_NS}"')
    return re.sub(r"<(/?)([A-Za-z]+)([ >/])", rf"<\1{prefix}:\2\3", text).encode("utf-8")


def reference(sender: str, identifier: str, sent: str) -> str:
    """One `references` entry."""
    return f"{sender},{identifier},{sent}"
