"""The city-source payload (also the operator API's broadcast body): checked against its published JSON Schema, each
violation named by its field, then mapped to the keyword arguments of drafting or revising a broadcast."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from keng.adapters.city_source import parse_city_message
from keng.adapters.payload import PayloadError
from keng.domain.errors import InvalidValue

DRAFT = {"title": "Thông báo", "text": "Nội dung", "priority": "normal", "targets": {"areas": ["00595"]}}


@pytest.mark.parametrize(
    ("changes", "detail", "pointer"),
    [
        ({"title": None}, "title must be a string", "/title"),
        ({"title": ""}, "title must not be empty", "/title"),
        ({"title": "x" * 201}, "title is longer than 200 characters", "/title"),
        ({"priority": "urgent"}, "priority must be one of emergency, priority, normal, got 'urgent'", "/priority"),
        ({"targets": {"areas": "00595"}}, "targets.areas must be a list", "/targets/areas"),
        ({"targets": {"wards": []}}, "unknown field(s) in targets: wards", "/targets"),
        ({"channels": ["speaker", 7]}, "channels[1] must be one of speaker, eboard, portal, app, got 7", "/channels/1"),
        ({"schedule": {"repeats": 11}}, "schedule.repeats must be at most 10", "/schedule/repeats"),
        ({"schedule": {"repeats": True}}, "schedule.repeats must be an integer", "/schedule/repeats"),
        ({"schedule": {"at": ["2026-11-27T17:00"]}}, "schedule.at[0] must be an RFC 3339 date-time", "/schedule/at/0"),
        ({"audio_url": "file:///etc/passwd"}, "audio_url must match ^https?://", "/audio_url"),
        ({"drill": 0}, "drill must be true or false", "/drill"),
        ({"extra": 1, "more": 2}, "unknown field(s): extra, more", ""),
    ],
)
def test_a_payload_the_schema_refuses_names_the_field(changes: dict[str, Any], detail: str, pointer: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse_city_message(orjson.dumps(DRAFT | changes))
    assert refused.value.status == 422 and str(refused.value).startswith(detail)
    assert refused.value.errors[0]["path"] == pointer


def test_a_missing_field_is_named_where_it_belongs_and_every_one_is_listed() -> None:
    with pytest.raises(PayloadError) as refused:
        parse_city_message(b'{"title": "T"}')
    assert str(refused.value) == "text is required"
    assert [e["path"] for e in refused.value.errors] == ["/text", "/priority", "/targets"]


def test_not_json_is_a_400_and_not_an_object_a_422() -> None:
    with pytest.raises(PayloadError, match="malformed JSON") as refused:
        parse_city_message(b'{"title": ')
    assert refused.value.status == 400
    with pytest.raises(PayloadError, match="the payload must be an object"):
        parse_city_message(b"[]")


def test_a_valid_payload_maps_to_drafting_arguments() -> None:
    body = DRAFT | {"schedule": {"at": ["2098-11-27t10:00:00z"], "repeats": 2.0}, "drill": True}
    fields = parse_city_message(orjson.dumps(body))
    assert fields["target_areas"] == ["00595"] and fields["target_endpoints"] == []
    assert fields["schedule_at"] == [datetime(2098, 11, 27, 10, tzinfo=UTC)]
    assert fields["repeats"] == 2 and isinstance(fields["repeats"], int)
    assert (fields["channels"], fields["expires_at"], fields["audio"], fields["drill"]) == (None, None, None, True)


def test_a_revision_returns_only_the_fields_given() -> None:
    assert parse_city_message(b'{"targets": {"endpoints": ["E1"]}}', partial=True) == {
        "target_areas": [],
        "target_endpoints": ["E1"],
    }


def test_a_leap_second_passes_the_schema_but_is_a_value_keng_cannot_hold() -> None:
    with pytest.raises(InvalidValue, match="expires_at '2098-12-31T23:59:60Z'"):
        parse_city_message(orjson.dumps(DRAFT | {"expires_at": "2098-12-31T23:59:60Z"}))
