"""CAP ingest against a real store (SQLite and PostgreSQL) with the sample district: mapping and refusals."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import HealthCheck, given, settings

from keng.adapters.cap.errors import CapError, CapUnsafeXml
from keng.adapters.cap.ingest import DrillMismatch, IngestResult, StandingOrder, UnknownReference, ingest_cap
from keng.adapters.cap.places import load_gazetteer
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import StoreError
from keng.domain.cap_mapping import NoVietnameseInfo
from keng.domain.cap_places import NotLocatable, OutsideJurisdiction, UnknownAreaCode
from keng.domain.errors import DomainError
from keng.domain.ids import sourced_broadcast_id
from tests.conftest import IN_CI
from tests.unit.cap_builders import SENDER, alert, area, info, reference
from tests.unit.test_cap_fuzz import mutated
from tests.unit.test_cap_parse import BILLION_LAUGHS, EXTERNAL

DISTRICT = ["021"]
ACTOR = "lan.nguyen"


def ingest(
    app: Keng, raw: bytes, jurisdiction: list[str] = DISTRICT, standing_order: StandingOrder | None = None
) -> IngestResult:
    return ingest_cap(app, raw, sender_jurisdiction=jurisdiction, actor=ACTOR, standing_order=standing_order)


def refused(app: Keng, raw: bytes, kind: type[Exception], jurisdiction: list[str] = DISTRICT) -> str:
    before = app.max_position()
    with pytest.raises(kind) as caught:
        ingest(app, raw, jurisdiction)
    assert app.max_position() == before, "a refused message must store nothing"
    return str(caught.value)


def sent_of(raw: bytes) -> str:
    return raw.split(b"<sent>")[1].split(b"</sent>")[0].decode()


def test_an_actual_alert_for_a_ward_becomes_a_submitted_emergency_broadcast(sample_app: Keng) -> None:
    raw = alert()
    result = ingest(sample_app, raw)
    assert result.action == "submitted" and result.priority == "emergency" and not result.drill
    b = sample_app.broadcast(result.broadcast_id)  # type: ignore[arg-type]
    assert b.id == sourced_broadcast_id("cap", result.key)
    assert (b.state, b.source_kind, b.source_ref) == ("submitted", "cap", f"{SENDER},KTTV-2026-0001,{sent_of(raw)}")
    assert b.target_areas == ["00595"] and b.scope == ["00595"]
    assert b.text == "Mưa lớn gây nguy cơ lũ quét tại phường Thượng Cát.\nNgười dân di chuyển đến nơi cao ráo."
    assert result.payload_sha256 == hashlib.sha256(raw).hexdigest()


def test_the_same_alert_twice_is_a_duplicate_and_stores_nothing_more(sample_app: Keng) -> None:
    raw = alert()
    first = ingest(sample_app, raw)
    position = sample_app.max_position()
    again = ingest(sample_app, raw)
    assert again.action == "duplicate" and again.broadcast_id == first.broadcast_id
    assert sample_app.max_position() == position


def test_status_maps_to_drill_draft_and_record_only(sample_app: Keng) -> None:
    drill = ingest(sample_app, alert(identifier="EX-1", status="Exercise"))
    assert drill.action == "submitted" and sample_app.broadcast(drill.broadcast_id).drill  # type: ignore[arg-type]
    draft = ingest(sample_app, alert(identifier="DR-1", status="Draft"))
    assert sample_app.broadcast(draft.broadcast_id).state == "draft"  # type: ignore[arg-type]
    position = sample_app.max_position()
    for raw in (alert(identifier="T-1", status="Test"), alert(identifier="A-1", msg_type="Ack", references="a,b,c")):
        result = ingest(sample_app, raw.replace(b"<references>a,b,c</references>", b""))
        assert result.action == "recorded" and result.broadcast_id is None
    assert sample_app.max_position() == position


def test_an_update_revises_the_referenced_alert_once_and_a_cancel_cancels_it(sample_app: Keng) -> None:
    original = alert(identifier="KTTV-1")
    first = ingest(sample_app, original)
    ref = reference(SENDER, "KTTV-1", sent_of(original))
    update = alert(
        identifier="KTTV-2",
        msg_type="Update",
        references=ref,
        infos=(info(headline="Cảnh báo lũ quét (cập nhật)", severity="Severe", urgency="Expected"),),
    )
    revised = ingest(sample_app, update)
    assert revised.action == "revised" and revised.broadcast_ids == (first.broadcast_id,)
    b = sample_app.broadcast(first.broadcast_id)  # type: ignore[arg-type]
    assert (b.title, b.priority, b.revision, b.state) == ("Cảnh báo lũ quét (cập nhật)", "priority", 1, "submitted")
    assert ingest(sample_app, update).action == "unchanged"
    cancel = alert(identifier="KTTV-3", msg_type="Cancel", references=ref, infos=())
    result = ingest(sample_app, cancel)
    assert result.action == "cancelled" and sample_app.broadcast(b.id).state == "cancelled"
    assert ingest(sample_app, cancel).action == "unchanged"


@pytest.mark.parametrize("msg_type", ["Update", "Cancel"])
def test_update_or_cancel_of_an_unknown_alert_is_refused(sample_app: Keng, msg_type: str) -> None:
    raw = alert(msg_type=msg_type, references=reference(SENDER, "NEVER-SEEN", "2026-11-27T10:00:00+07:00"))
    assert "none of the referenced alerts is known" in refused(sample_app, raw, UnknownReference)


def test_an_exercise_cannot_cancel_a_live_alert(sample_app: Keng) -> None:
    original = alert(identifier="LIVE-1")
    ingest(sample_app, original)
    cancel = alert(
        identifier="EX-9",
        status="Exercise",
        msg_type="Cancel",
        references=reference(SENDER, "LIVE-1", sent_of(original)),
        infos=(),
    )
    refused(sample_app, cancel, DrillMismatch)


def test_unknown_ward_codes_are_refused_by_element_path(sample_app: Keng) -> None:
    raw = alert(infos=(info(areas=(area(codes=("00595", "99999")),)),))
    message = refused(sample_app, raw, UnknownAreaCode)
    assert message.startswith("alert/info[1]/area[1]/geocode[2]: '99999' is not a registered ward")


def test_a_ward_outside_the_senders_jurisdiction_is_refused_not_clipped(sample_app: Keng) -> None:
    raw = alert(infos=(info(areas=(area(codes=("00595", "00598")),)),))
    message = refused(sample_app, raw, OutsideJurisdiction, ["00595"])
    assert "geocode[2]" in message and "Liên Mạc (00598)" in message


def test_a_district_code_targets_the_district_when_the_sender_holds_it(sample_app: Keng) -> None:
    result = ingest(sample_app, alert(infos=(info(areas=(area(codes=("021",)),)),)))
    assert sample_app.broadcast(result.broadcast_id).target_areas == ["021"]  # type: ignore[arg-type]
    refused(sample_app, alert(identifier="X2", infos=(info(areas=(area(codes=("021",)),)),)), OutsideJurisdiction,
            ["00595"])  # fmt: skip


def test_a_circle_targets_the_endpoints_inside_it(sample_app: Keng) -> None:
    raw = alert(infos=(info(areas=(area(codes=(), circle="21.0929,105.7346 0.8"),)),))
    result = ingest(sample_app, raw, ["00595"])
    b = sample_app.broadcast(result.broadcast_id)  # type: ignore[arg-type]
    assert b.target_endpoints and all(code.startswith("00595-") for code in b.target_endpoints)
    assert b.scope == ["00595"]


def test_a_polygon_reaching_into_another_ward_is_refused_naming_it(sample_app: Keng) -> None:
    ring = "21.075,105.725 21.075,105.765 21.100,105.765 21.100,105.725 21.075,105.725"
    raw = alert(infos=(info(areas=(area(codes=(), polygon=ring),)),))
    message = refused(sample_app, raw, OutsideJurisdiction, ["00595"])
    assert message.startswith("alert/info[1]/area[1]/polygon[1]: covers") and "Liên Mạc (00598)" in message
    assert ingest(sample_app, raw, DISTRICT).action == "submitted"


def test_a_polygon_far_outside_the_district_is_refused(sample_app: Keng) -> None:
    saigon = "10.70,106.60 10.70,106.80 10.85,106.80 10.85,106.60 10.70,106.60"
    message = refused(sample_app, alert(infos=(info(areas=(area(codes=(), polygon=saigon),)),)), OutsideJurisdiction)
    assert "contains no registered endpoint" in message


def test_an_area_with_nothing_to_locate_and_an_alert_without_vietnamese_are_refused(sample_app: Keng) -> None:
    refused(sample_app, alert(infos=(info(areas=(area(codes=("006037",), value_name="SAME"),)),)), NotLocatable)
    assert "found en-US" in refused(sample_app, alert(infos=(info(language="en-US"),)), NoVietnameseInfo)


def test_a_multilingual_alert_speaks_the_vietnamese_info_and_keeps_the_languages(sample_app: Keng) -> None:
    english = info(language="en-US", headline="Flash flood warning", description="Heavy rain.", instruction="Go up.")
    result = ingest(sample_app, alert(infos=(english, info())))
    assert result.languages == ("en-US", "vi-VN")
    assert sample_app.broadcast(result.broadcast_id).title == "Cảnh báo lũ quét"  # type: ignore[arg-type]


def test_inline_audio_is_handed_back_by_content_hash(sample_app: Keng) -> None:
    audio = b"ID3" + bytes(1000)
    resource = (
        "<resource><resourceDesc>Bản tin</resourceDesc><mimeType>audio/mpeg</mimeType>"
        f"<derefUri>{base64.b64encode(audio).decode()}</derefUri>"
        f"<digest>{hashlib.sha1(audio).hexdigest()}</digest></resource>"
    )
    result = ingest(sample_app, alert(infos=(info(extra=resource),)))
    assert result.audio is not None and result.audio.data == audio
    assert sample_app.broadcast(result.broadcast_id).audio == result.audio.ref  # type: ignore[arg-type]


def test_a_standing_order_approves_in_the_same_transaction(sample_app: Keng) -> None:
    result = ingest(sample_app, alert(), standing_order=lambda a, plan: "flood-extreme-immediate")
    b = sample_app.broadcast(result.broadcast_id)  # type: ignore[arg-type]
    assert result.action == "auto-approved" and b.state == "approved" and b.is_approved


@pytest.mark.parametrize("raw", [BILLION_LAUGHS, EXTERNAL], ids=["laughs", "xxe"])
def test_hostile_xml_is_refused_and_stores_nothing(sample_app: Keng, raw: bytes) -> None:
    refused(sample_app, raw, CapUnsafeXml)


def test_the_gazetteer_sees_the_sample_district(sample_app: Keng) -> None:
    g = load_gazetteer(sample_app)
    assert g.places["00595"].level == "ward" and g.places["021"].level == "district"
    assert sum(1 for d in g.devices if d.at is not None) > 100


def test_errors_are_all_of_documented_kinds(sample_app: Keng) -> None:
    with pytest.raises(CapError):
        ingest(sample_app, b"<alert")


INGEST_EXAMPLES = 500 if IN_CI else 60


@settings(
    max_examples=INGEST_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=mutated())
def test_mutated_cap_is_accepted_or_refused_with_a_documented_error_and_nothing_stored(
    sample_app: Keng, document: bytes
) -> None:
    before = sample_app.max_position()
    try:
        ingest(sample_app, document)
    except (CapError, DomainError, StoreError):
        assert sample_app.max_position() == before
