"""Feeds of current public alerts: Atom (each entry links its CAP 1.2 document at /cap/{id}.xml) and a JSON Feed for
the citizen app carrying the full text of every spoken bulletin (text parity: what is spoken is what is written).

Text parity: every bulletin that goes to the loudspeakers is published too, even when its channels name neither the
portal nor the app (a speaker-only emergency among them), and a drill's text is its spoken text, with the drill
notice before and after (`Broadcast.announced_text`).

Pure builders; choosing which broadcasts are current is `is_current_public`, or a projection's query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID
from xml.etree.ElementTree import Element, SubElement, tostring

import orjson

from keng.adapters.cap.render import CAP_MEDIA_TYPE, BroadcastLike, cap_identifier, cap_time
from keng.domain.broadcast import AWAITING_RELEASE
from keng.domain.values import BroadcastState, Channel, Priority, printable_text

ATOM_NS = "http://www.w3.org/2005/Atom"
PUBLISHED_STATES = (*AWAITING_RELEASE, BroadcastState.DISPATCHING, BroadcastState.COMPLETED)
PUBLIC_CHANNELS = (Channel.PORTAL.value, Channel.APP.value, Channel.SPEAKER.value)  # spoken is published


@dataclass(frozen=True)
class FeedItem:
    """One alert as the feeds show it."""

    id: UUID
    cap_identifier: str
    title: str
    text: str
    priority: str
    drill: bool
    areas: tuple[str, ...]
    area_desc: str
    published: datetime
    updated: datetime
    expires: datetime
    audio: str | None


def is_current_public(broadcast: BroadcastLike, channels: Iterable[str], now: datetime) -> bool:
    """Approved (or going out, or done), not expired, and meant for the portal, the app or the loudspeakers."""
    return (
        broadcast.state in PUBLISHED_STATES
        and broadcast.expires_at > now
        and any(c in PUBLIC_CHANNELS for c in channels)
    )


def feed_item(broadcast: BroadcastLike, area_names: Mapping[str, str] | None = None) -> FeedItem:
    """The feed view of one broadcast (its texts as `printable_text`, for the JSON feed as for Atom): the text is the
    one spoken, a drill's with its drill notice."""
    names = area_names or {}
    return FeedItem(
        id=broadcast.id,
        cap_identifier=cap_identifier(broadcast),
        title=printable_text(broadcast.title),
        text=printable_text(broadcast.announced_text),
        priority=broadcast.priority,
        drill=broadcast.drill,
        areas=tuple(broadcast.scope),
        area_desc=printable_text(", ".join(names.get(c, c) for c in broadcast.scope)),
        published=broadcast.created_on,
        updated=broadcast.modified_on,
        expires=broadcast.expires_at,
        audio=printable_text(broadcast.audio) if broadcast.audio else None,
    )


def _title(item: FeedItem) -> str:
    label = Priority(item.priority).label_vi.upper() if item.priority in set(Priority) else item.priority
    return f"[{'DIỄN TẬP — ' if item.drill else ''}{label}] {item.title}"


def atom_feed(
    items: Iterable[FeedItem],
    base_url: str,
    *,
    title: str = "Cảnh báo và thông báo công cộng",
    now: datetime | None = None,
) -> bytes:
    """An Atom 1.0 feed (RFC 4287), newest first; `now` dates an empty feed."""
    base = base_url.rstrip("/")
    entries = sorted(items, key=lambda i: i.updated, reverse=True)
    updated = entries[0].updated if entries else now or datetime(1970, 1, 1, tzinfo=UTC)
    # Unqualified names under a literal xmlns: ElementTree's default_namespace refuses unqualified attributes.
    feed = Element("feed", {"xmlns": ATOM_NS, "xml:lang": "vi"})

    def leaf(parent: Element, name: str, text: str, **attrs: str) -> Element:
        el = SubElement(parent, name, {k: printable_text(v) for k, v in attrs.items()})
        el.text = printable_text(text)  # only characters XML 1.0 allows, whatever was stored
        return el

    leaf(feed, "id", f"{base}/feeds/alerts.atom")
    leaf(feed, "title", title)
    leaf(feed, "updated", cap_time(updated))
    leaf(feed, "link", "", rel="self", href=f"{base}/feeds/alerts.atom", type="application/atom+xml")
    leaf(leaf(feed, "author", ""), "name", "keng")
    for item in entries:
        entry = SubElement(feed, "entry")
        leaf(entry, "id", f"urn:uuid:{item.id}")
        leaf(entry, "title", _title(item))
        leaf(entry, "updated", cap_time(item.updated))
        leaf(entry, "published", cap_time(item.published))
        leaf(entry, "link", "", rel="alternate", type=CAP_MEDIA_TYPE, href=f"{base}/cap/{item.id}.xml")
        leaf(entry, "category", "", term=item.priority)
        leaf(entry, "summary", item.area_desc or item.title)
        leaf(entry, "content", item.text, type="text")
    document: bytes = tostring(feed, encoding="utf-8", xml_declaration=True)
    return document


def json_feed(items: Iterable[FeedItem], base_url: str, *, title: str = "Cảnh báo và thông báo công cộng") -> bytes:
    """A JSON Feed 1.1 for the citizen app: `content_text` is the full spoken text of each bulletin."""
    base = base_url.rstrip("/")
    entries = sorted(items, key=lambda i: i.updated, reverse=True)
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": base + "/",
        "feed_url": f"{base}/feeds/alerts.json",
        "language": "vi",
        "items": [
            {
                "id": str(item.id),
                "url": f"{base}/cap/{item.id}.xml",
                "title": _title(item),
                "content_text": item.text,
                "date_published": cap_time(item.published),
                "date_modified": cap_time(item.updated),
                "tags": [item.priority] + (["drill"] if item.drill else []),
                **(
                    {"attachments": [{"url": item.audio, "mime_type": "audio/mpeg"}]}
                    if item.audio and item.audio.startswith(("https://", "http://"))
                    else {}
                ),
                "_keng": {
                    "cap_identifier": item.cap_identifier,
                    "priority": item.priority,
                    "drill": item.drill,
                    "areas": list(item.areas),
                    "area_desc": item.area_desc,
                    "expires": cap_time(item.expires),
                },
            }
            for item in entries
        ],
    }
    return orjson.dumps(feed)
