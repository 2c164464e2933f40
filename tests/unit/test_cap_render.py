"""CAP out, Atom and JSON feeds: valid by our own validator, Vietnamese, VN-DVHC areas, full text in the feeds."""

from __future__ import annotations

import orjson
import pytest
from defusedxml.ElementTree import fromstring

from keng.adapters.cap.feeds import atom_feed, feed_item, is_current_public, json_feed
from keng.adapters.cap.parse import parse_cap
from keng.adapters.cap.render import PRIORITY_TO_CAP, CapSender, broadcast_to_cap
from keng.domain.broadcast import Broadcast
from keng.domain.cap import MsgType, Status
from keng.domain.cap_mapping import priority_for
from tests.unit.helpers import LATER, NOW, content, staff, submitted

BASE = "https://keng.example.vn"
NAMES = {"00595": "Phường Thượng Cát"}


def approved(**overrides: object) -> Broadcast:
    b = submitted(**overrides)
    b.approve(by=staff("hung", "approver"), now=LATER)
    return b


@pytest.mark.parametrize("priority", ["emergency", "priority", "normal"])
def test_each_priority_class_survives_the_round_trip_through_cap(priority: str) -> None:
    urgency, severity, certainty = PRIORITY_TO_CAP[priority]
    assert priority_for(urgency, severity, certainty).value == priority


def test_a_broadcast_renders_as_a_valid_vietnamese_cap_alert_with_dvhc_geocodes() -> None:
    b = approved(priority="emergency")
    doc = broadcast_to_cap(b, sender=CapSender(sender="ubnd@bactuliem.hanoi.gov.vn"), area_names=NAMES, base_url=BASE)
    a = parse_cap(doc)
    assert (a.msg_type, a.status, a.identifier) == (MsgType.ALERT, Status.ACTUAL, f"keng-{b.id}-r0")
    info = a.infos[0]
    assert info.language == "vi-VN" and info.description == b.text and info.headline == b.title
    assert info.areas[0].desc == "Phường Thượng Cát"
    assert [(g.name, g.value) for g in info.areas[0].geocodes] == [("VN-DVHC", "00595")]
    assert info.web == f"{BASE}/cap/{b.id}.xml"
    assert a.sent_text.endswith("+07:00")


def test_a_revised_drill_is_an_exercise_update_and_a_cancel_references_the_original() -> None:
    b = submitted(drill=True)
    b.revise(content(title="Diễn tập PCCC (sửa)", drill=True), by=staff("lan", "drafter"))
    update = parse_cap(broadcast_to_cap(b))
    assert (update.msg_type, update.status) == (MsgType.UPDATE, Status.EXERCISE)
    assert update.references[0].identifier == f"keng-{b.id}-r0"
    b.cancel(by=staff("lan", "drafter"), reason="nhầm")
    cancel = parse_cap(broadcast_to_cap(b))
    assert cancel.msg_type is MsgType.CANCEL and cancel.identifier == f"keng-{b.id}-cancel"


def test_the_atom_feed_links_each_alert_as_cap_xml() -> None:
    items = [feed_item(approved(), NAMES), feed_item(approved(priority="emergency", title="Cháy"), NAMES)]
    root = fromstring(atom_feed(items, BASE + "/"))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    assert len(entries) == 2
    links = [e.find("a:link", ns).get("href") for e in entries]  # type: ignore[union-attr]
    assert links == [f"{BASE}/cap/{i.id}.xml" for i in sorted(items, key=lambda i: i.updated, reverse=True)]
    assert all(e.find("a:link", ns).get("type") == "application/cap+xml" for e in entries)  # type: ignore[union-attr]
    assert {e.find("a:content", ns).text for e in entries} == {i.text for i in items}  # type: ignore[union-attr]


def test_an_empty_atom_feed_is_still_well_formed() -> None:
    assert fromstring(atom_feed([], BASE, now=NOW)).tag.endswith("feed")


def test_the_json_feed_carries_the_full_spoken_text() -> None:
    long_text = "Thông báo " + "rất dài " * 400
    b = approved(text=long_text, drill=True)
    feed = orjson.loads(json_feed([feed_item(b, NAMES)], BASE))
    item = feed["items"][0]
    assert item["content_text"] == b.announced_text and len(item["content_text"]) > 3000
    assert item["content_text"].startswith("Đây là bản tin diễn tập.") and b.text in item["content_text"]
    assert item["url"] == f"{BASE}/cap/{b.id}.xml" and "drill" in item["tags"]
    assert item["title"].startswith("[DIỄN TẬP — THÔNG THƯỜNG]")


def test_only_approved_unexpired_broadcasts_for_public_channels_are_current() -> None:
    b = approved()
    assert is_current_public(b, b.channels, LATER)
    assert is_current_public(b, ["speaker"], LATER)  # text parity: what is spoken is published
    assert not is_current_public(b, ["eboard"], LATER)
    assert not is_current_public(b, b.channels, b.expires_at)
    assert not is_current_public(Broadcast.draft(content(), by=staff("lan", "drafter")), b.channels, LATER)


def test_a_speaker_only_drill_is_published_with_its_spoken_drill_notice() -> None:
    b = approved(channels=["speaker"], drill=True, priority="emergency", text="Sơ tán khỏi bãi sông.")
    assert is_current_public(b, b.channels, LATER)
    item = feed_item(b, NAMES)
    spoken = "Đây là bản tin diễn tập. Sơ tán khỏi bãi sông. Đây là bản tin diễn tập."
    assert item.text == b.announced_text == spoken
    assert orjson.loads(json_feed([item], BASE))["items"][0]["content_text"] == spoken
    entry = fromstring(atom_feed([item], BASE)).find("{http://www.w3.org/2005/Atom}entry")
    assert entry is not None and entry.findtext("{http://www.w3.org/2005/Atom}content") == spoken
