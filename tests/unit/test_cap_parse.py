"""CAP 1.2 parsing and validation: the specification's own examples, real-world variants, and every rule by path."""

from __future__ import annotations

import base64
import hashlib

import pytest

from keng.adapters.cap.errors import (
    CapInvalid,
    CapMalformed,
    CapTooLarge,
    CapUnsafeXml,
    CapVersionUnsupported,
    status_for,
)
from keng.adapters.cap.parse import check_cap, parse_cap
from keng.adapters.cap.xmldoc import CapLimits
from keng.domain.cap import Certainty, MsgType, Severity, Status, Urgency
from tests.unit.cap_builders import alert, area, fixture, info, prefixed

OASIS = [
    "oasis_a1_homeland_security.xml",
    "oasis_a2_thunderstorm.xml",
    "oasis_a3_earthquake_update.xml",
    "oasis_a4_amber_multilingual.xml",
]
DSIG = (
    '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><CanonicalizationMethod '
    'Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/></SignedInfo>'
    "<SignatureValue>bm90IGEgcmVhbCBzaWduYXR1cmU=</SignatureValue></Signature>"
)


def paths(error: CapInvalid) -> list[str]:
    return [v.path for v in error.violations]


def invalid(document: bytes) -> CapInvalid:
    with pytest.raises(CapInvalid) as caught:
        parse_cap(document)
    return caught.value


@pytest.mark.parametrize("name", OASIS)
def test_the_specifications_example_alerts_are_accepted(name: str) -> None:
    verdict = check_cap(fixture(name))
    assert verdict.valid, verdict.violations
    assert verdict.version == "1.2"


def test_the_thunderstorm_example_is_read_into_typed_values() -> None:
    a = parse_cap(fixture("oasis_a2_thunderstorm.xml"))
    assert a.key == "KSTO@NWS.NOAA.GOV,KSTO1055887203,2003-06-17T14:57:00-07:00"
    assert (a.status, a.msg_type) == (Status.ACTUAL, MsgType.ALERT)
    i = a.infos[0]
    assert (i.urgency, i.severity, i.certainty) == (Urgency.IMMEDIATE, Severity.SEVERE, Certainty.OBSERVED)
    assert i.language == "en-US"  # the CAP default
    ring = i.areas[0].polygons[0]
    assert len(ring) == 5 and ring[0] == ring[-1]
    assert [g.value for g in i.areas[0].geocodes] == ["006109", "006009", "006003"]


def test_the_earthquake_update_carries_its_reference_and_a_zero_radius_circle() -> None:
    a = parse_cap(fixture("oasis_a3_earthquake_update.xml"))
    assert a.references[0].key == "trinet@caltech.edu,TRI13970876.1,2003-06-11T20:30:00-07:00"
    assert a.infos[0].areas[0].circles[0].radius_km == 0


def test_a_multilingual_alert_keeps_every_info_block() -> None:
    a = parse_cap(fixture("oasis_a4_amber_multilingual.xml"))
    assert [i.language for i in a.infos] == ["en-US", "es-US"]
    assert a.infos[1].event == "Abducción de Niño"


def test_an_iso_8859_1_encoded_alert_is_decoded_as_declared() -> None:
    doc = alert(encoding="ISO-8859-1", infos=(info(description="Café fermé; Lũ quét"),))
    assert b"Caf\xe9" in doc
    a = parse_cap(doc)
    assert a.infos[0].description == "Café fermé; Lũ quét"


def test_a_namespace_prefixed_alert_is_accepted() -> None:
    doc = prefixed(alert())
    assert b"<cap:identifier>" in doc
    assert parse_cap(doc).infos[0].headline == "Cảnh báo lũ quét"


def test_a_signed_alert_keeps_its_signature_unverified() -> None:
    a = parse_cap(alert(extra=DSIG))
    assert a.signed and a.signature is not None and b"SignatureValue" in a.signature


def test_an_alert_of_500_kb_with_inline_audio_and_a_matching_digest_is_accepted() -> None:
    audio = bytes(range(256)) * 1500  # 384 KB of "audio"
    b64 = base64.encodebytes(audio).decode()  # line-wrapped, as senders do
    resource = (
        "<resource><resourceDesc>Bản tin âm thanh</resourceDesc><mimeType>audio/mpeg</mimeType>"
        f"<size>{len(audio)}</size><derefUri>{b64}</derefUri>"
        f"<digest>{hashlib.sha1(audio).hexdigest().upper()}</digest></resource>"
    )
    doc = alert(infos=(info(extra=resource),))
    assert 500_000 <= len(doc) < 1_048_576
    got = parse_cap(doc).infos[0].resources[0]
    assert got.data == audio and got.mime_type == "audio/mpeg"


def test_inline_audio_whose_digest_does_not_match_is_refused_on_its_own() -> None:
    resource = (
        "<resource><resourceDesc>a</resourceDesc><mimeType>audio/mpeg</mimeType>"
        f"<derefUri>{base64.b64encode(b'abc').decode()}</derefUri><digest>{'0' * 40}</digest></resource>"
    )
    a = parse_cap(alert(infos=(info(extra=resource),)))
    assert a.infos[0].resources == ()
    [(path, mime, why)] = a.refused_resources
    assert (path, mime) == ("alert/info[1]/resource[1]/derefUri", "audio/mpeg") and "does not match digest" in why
    assert a.warnings == ((path, why),)


@pytest.mark.parametrize(
    ("namespace", "version"),
    [("urn:oasis:names:tc:emergency:cap:1.1", "1.1"), ("http://www.incident.com/cap/1.0", "1.0")],
)
def test_a_cap_1_0_or_1_1_document_is_named_as_such(namespace: str, version: str) -> None:
    with pytest.raises(CapVersionUnsupported, match=f"CAP {version} document.*CAP 1.2 only"):
        parse_cap(alert(namespace=namespace))
    verdict = check_cap(alert(namespace=namespace))
    assert not verdict.valid and verdict.version == version


def test_a_document_without_the_cap_namespace_is_invalid_at_alert() -> None:
    e = invalid(alert(namespace=""))
    assert "alert" in paths(e) and "namespace must be" in e.violations[0].message


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol3;</identifier></alert>"""
EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE alert SYSTEM "http://example.invalid/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL, EXTERNAL_DTD], ids=["laughs", "xxe", "dtd"])
def test_any_dtd_is_refused_before_anything_is_expanded_or_fetched(document: bytes) -> None:
    with pytest.raises(CapUnsafeXml, match="DOCTYPE") as caught:
        parse_cap(document)
    assert status_for(caught.value) == 400


def test_documents_over_the_size_limit_are_refused_unread() -> None:
    with pytest.raises(CapTooLarge) as caught:
        parse_cap(alert(), CapLimits(max_bytes=200))
    assert status_for(caught.value) == 413


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    deep = b"<alert>" + b"<a>" * 40 + b"</a>" * 40 + b"</alert>"
    with pytest.raises(CapMalformed, match="deeper than 32"):
        parse_cap(deep)


@pytest.mark.parametrize("document", [b"", b"<alert", b"not xml", b"<feed xmlns='http://www.w3.org/2005/Atom'/>"])
def test_malformed_documents_are_refused_with_a_reason(document: bytes) -> None:
    verdict = check_cap(document)
    assert not verdict.valid and verdict.violations[0].path == "document"


def test_every_missing_required_element_is_reported_by_path() -> None:
    doc = alert(infos=(info(),)).replace(b"<status>Actual</status>", b"").replace(b"<urgency>Immediate</urgency>", b"")
    doc = doc.replace("<areaDesc>Phường Thượng Cát</areaDesc>".encode(), b"")
    e = invalid(doc)
    assert set(paths(e)) == {"alert/status", "alert/info[1]/urgency", "alert/info[1]/area[1]/areaDesc"}
    assert all(v.message == "required element is missing" for v in e.violations)


def test_every_bad_enumeration_is_reported_with_the_allowed_values() -> None:
    doc = alert(status="Real", msg_type="Alarm", scope="Everyone", infos=(info(severity="Huge", certainty="Sure"),))
    e = invalid(doc)
    assert paths(e) == [
        "alert/status",
        "alert/msgType",
        "alert/scope",
        "alert/info[1]/severity",
        "alert/info[1]/certainty",
    ]
    assert "'Real' is not one of: Actual, Exercise, System, Test, Draft" in str(e.violations[0])


@pytest.mark.parametrize("msg_type", ["Update", "Cancel"])
def test_update_and_cancel_need_references(msg_type: str) -> None:
    e = invalid(alert(msg_type=msg_type))
    assert paths(e) == ["alert/references"]


def test_polygon_and_circle_rules_are_checked_in_the_second_info_and_area() -> None:
    bad_areas = (
        area(),
        area(polygon="21.09,105.73 21.10,105.73 21.10,105.74 21.09,105.74", circle="21.09,105.73"),
    )
    e = invalid(alert(infos=(info(), info(areas=bad_areas))))
    assert [str(v) for v in e.violations] == [
        "alert/info[2]/area[2]/polygon[1]: not closed: the first and last points must be the same",
        "alert/info[2]/area[2]/circle[1]: '21.09,105.73' is not 'latitude,longitude radius'",
    ]


def test_a_polygon_with_three_points_is_refused() -> None:
    e = invalid(alert(infos=(info(areas=(area(polygon="21.09,105.73 21.10,105.73 21.09,105.73"),)),)))
    assert "needs at least 4" in e.violations[0].message


def test_expires_must_follow_sent_and_times_carry_an_offset() -> None:
    doc = alert(sent="2026-11-27T10:00:00Z")
    e = invalid(doc)
    assert paths(e) == ["alert/sent"] and "no 'Z'" in e.violations[0].message
    from datetime import datetime, timedelta, timezone

    sent = datetime(2026, 11, 27, 10, 0, tzinfo=timezone(timedelta(hours=7)))
    e = invalid(alert(sent=sent, infos=(info(expires=sent - timedelta(minutes=1)),)))
    assert paths(e) == ["alert/info[1]/expires"] and "must not be before alert/sent" in e.violations[0].message


def test_identifiers_with_commas_or_spaces_repeated_and_unknown_elements_are_reported() -> None:
    doc = alert(identifier="A,B", extra="<note>a</note><note>b</note><colour>red</colour>")
    e = invalid(doc)
    assert set(paths(e)) == {"alert/identifier", "alert/note[2]", "alert/colour"}


def test_restricted_and_private_scopes_need_restriction_and_addresses() -> None:
    assert paths(invalid(alert(scope="Restricted"))) == ["alert/restriction"]
    assert paths(invalid(alert(scope="Private"))) == ["alert/addresses"]
