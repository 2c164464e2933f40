"""Bounds on values at the boundary: text, ASCII-digit integers, times, URLs and counts; and the writers that must
emit valid XML 1.0 whatever was stored before the checks existed."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import orjson
import pytest
from defusedxml.ElementTree import fromstring
from hypothesis import given
from hypothesis import strategies as st

from keng.adapters.cap.feeds import atom_feed, feed_item, json_feed
from keng.adapters.cap.render import broadcast_to_cap, cap_time
from keng.domain.content import MAX_SCHEDULED, MAX_TARGETS, ContentLimits, build_content
from keng.domain.errors import InvalidValue
from keng.domain.programme import Programme
from keng.domain.values import REFUSED_CHARS, clean_text, in_zone, parse_digits, printable_text
from keng.runtime.cli.args import digits
from keng.runtime.config import load_settings
from keng.runtime.views import jsonable

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ICT = timezone(timedelta(hours=7))
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
START_OF_TIME = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
HOSTILE = "Bão\x00số\x1b[31m 9\uffff\ufdd0\x85\x7f\U0001fffe"


def content(**overrides: Any) -> Any:
    args: dict[str, Any] = {
        "title": "Thông báo",
        "text": "Nội dung",
        "priority": "normal",
        "target_areas": ["00595"],
        "scope": ["00595"],
        "now": NOW,
    }
    return build_content(**(args | overrides))


@pytest.mark.parametrize(
    ("char", "name"),
    [
        ("\x00", "U+0000"),
        ("\x1b", "U+001B"),
        ("\x7f", "U+007F"),
        ("\x9b", "U+009B"),
        ("\uffff", "U+FFFF"),
        ("\ufdd0", "U+FDD0"),
        ("\U0010fffe", "U+10FFFE"),
        ("\udcff", "U+DCFF"),
    ],
)
def test_a_control_character_or_noncharacter_in_a_title_is_refused_naming_the_field(char: str, name: str) -> None:
    with pytest.raises(InvalidValue, match=re.escape(f"title holds {name}") + ".* at position 3"):
        content(title=f"Bão{char}lũ")


def test_tab_and_newline_are_kept_and_a_carriage_return_becomes_a_newline() -> None:
    built = content(text="Dòng 1\r\nDòng 2\rDòng 3\n\tthụt lề")
    assert built.text == "Dòng 1\nDòng 2\nDòng 3\n\tthụt lề"


def test_every_text_checked_by_clean_text_is_refused_in_the_same_way() -> None:
    for what in ("reason", "rule name", "staff name"):
        with pytest.raises(InvalidValue, match=f"^{what} holds U\\+0000"):
            clean_text("a\x00", what, max_len=100)


@given(st.text())
def test_text_that_passes_the_check_holds_only_xml_characters(text: str) -> None:
    try:
        cleaned = clean_text(text, "text", max_len=10_000, required=False)
    except InvalidValue:
        assert REFUSED_CHARS.search(text.replace("\r", "\n")) is not None
        return
    fromstring(f"<a>{_escape(cleaned)}</a>".encode())


@given(st.text(alphabet=st.characters(codec="utf-8")))
def test_printable_text_of_anything_is_valid_xml_content(text: str) -> None:
    fromstring(f"<a>{_escape(printable_text(text))}</a>".encode())


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


@pytest.mark.parametrize("raw", ["²", "٣", "१२", "", "-1", "+1", " 1", "1 ", "1_000", "0x10", "1e3", "½"])
def test_only_ascii_digits_make_an_integer(raw: str) -> None:
    with pytest.raises(InvalidValue, match="since must be a whole number written in the digits 0-9"):
        parse_digits(raw, "since", lo=0, hi=10**6)


@pytest.mark.parametrize("raw", ["1000001", "9" * 30, "1" + "0" * 5000])
def test_digits_out_of_range_are_refused_without_reading_a_huge_number(raw: str) -> None:
    with pytest.raises(InvalidValue, match="since must be between 0 and 1000000"):
        parse_digits(raw, "since", lo=0, hi=10**6)


def test_leading_zeros_are_read_as_the_number_they_spell() -> None:
    assert parse_digits("000042", "since", lo=0, hi=100) == 42
    assert parse_digits("0" * 100, "since", lo=0, hi=100) == 0


@given(st.text(max_size=30))
def test_parse_digits_answers_a_number_in_range_or_invalid_value_and_nothing_else(raw: str) -> None:
    try:
        value = parse_digits(raw, "n", lo=5, hi=5000)
    except InvalidValue:
        return
    assert 5 <= value <= 5000 and raw.isascii()


def test_the_cli_reads_integers_with_the_same_parser() -> None:
    year = digits("year", lo=1900, hi=2200)
    assert year("2024") == 2024
    with pytest.raises(argparse.ArgumentTypeError, match="year must be a whole number"):
        year("²⁰²⁴")


def test_expiry_is_bounded_by_the_horizon_and_the_horizon_is_configurable() -> None:
    with pytest.raises(InvalidValue, match="expiry 9999-12-31T23:59:59\\+00:00 is more than 30 days ahead"):
        content(expires_at=END_OF_TIME)
    assert content(expires_at=NOW + timedelta(days=30)).expires_at == NOW + timedelta(days=30)
    with pytest.raises(InvalidValue, match="more than 2 days ahead"):
        content(expires_at=NOW + timedelta(days=3), limits=ContentLimits(max_lifetime=timedelta(days=2)))


def test_scheduled_times_are_counted_and_fall_before_the_expiry() -> None:
    times = [NOW + timedelta(hours=i) for i in range(1, MAX_SCHEDULED + 2)]
    with pytest.raises(InvalidValue, match=f"scheduled times: {MAX_SCHEDULED + 1} given; the limit is"):
        content(schedule_at=times, expires_at=NOW + timedelta(days=10))
    with pytest.raises(InvalidValue, match="is not before the expiry"):
        content(schedule_at=[END_OF_TIME])


def test_repeats_targets_and_audio_urls_are_bounded() -> None:
    with pytest.raises(InvalidValue, match="repeats must be between 1 and 10"):
        content(repeats=10**9)
    many = [f"{i:05d}" for i in range(MAX_TARGETS + 1)]
    with pytest.raises(InvalidValue, match=f"target areas: {MAX_TARGETS + 1} given"):
        content(target_areas=many)
    with pytest.raises(InvalidValue, match="audio URL is 3019 characters long; the limit is 2048"):
        content(audio="https://example.org/" + "a" * 2999)
    with pytest.raises(InvalidValue, match="audio URL holds U\\+0000"):
        content(audio="https://example.org/\x00.mp3")
    assert content(audio="https://example.org/a.mp3").audio == "https://example.org/a.mp3"


def test_the_expiry_horizon_comes_from_the_environment() -> None:
    assert load_settings(environ={}).max_expiry_days == 30
    assert load_settings(environ={"KENG_MAX_EXPIRY_DAYS": "7"}).max_expiry_days == 7
    with pytest.raises(InvalidValue, match="KENG_MAX_EXPIRY_DAYS must be between 1 and 3650"):
        load_settings(environ={"KENG_MAX_EXPIRY_DAYS": "0"})


@given(st.datetimes(timezones=st.sampled_from([UTC, ICT, timezone(timedelta(hours=-12)), START_OF_TIME.tzinfo])))
def test_a_stored_time_anywhere_in_the_calendar_can_be_shown(value: datetime) -> None:
    shown = in_zone(value, ICT)
    assert shown == value
    assert jsonable(value, ICT) == shown.isoformat(timespec="seconds")
    cap_time(value)


def test_the_programme_does_not_fail_on_a_time_at_the_end_of_the_calendar() -> None:
    at = Programme().release_at(priority="normal", wards=["00595"], now=NOW, scheduled=[END_OF_TIME])
    assert at == END_OF_TIME


class _Stored:
    """A broadcast as an older version may have stored it: extreme expiry, control characters everywhere."""

    def __init__(self) -> None:
        self.id = uuid4()
        self.title = HOSTILE
        self.text = HOSTILE + "\r\n" + HOSTILE
        self.announced_text = self.text  # not a drill: spoken as written
        self.priority = "emergency"
        self.scope = ["00595"]
        self.expires_at = END_OF_TIME
        self.drill = False
        self.state = "approved"
        self.revision = 1
        self.audio = "https://example.org/\x1b.mp3"
        self.created_on = START_OF_TIME
        self.modified_on = NOW


def test_public_writers_emit_valid_xml_and_json_from_a_hostile_stored_broadcast() -> None:
    stored = _Stored()
    cap = broadcast_to_cap(stored, area_names={"00595": "Phường\x00 Thượng Cát"}, base_url="https://keng.example")
    info = fromstring(cap).find("{urn:oasis:names:tc:emergency:cap:1.2}info")
    assert info is not None
    assert info.findtext("{urn:oasis:names:tc:emergency:cap:1.2}headline") == "Bãosố[31m 9"
    assert info.findtext("{urn:oasis:names:tc:emergency:cap:1.2}expires") == "9999-12-31T23:59:59+00:00"
    item = feed_item(stored, {"00595": "Phường\x1b Thượng Cát"})
    atom = fromstring(atom_feed([item], "https://keng.example"))
    atom_ns = "{http://www.w3.org/2005/Atom}"
    assert atom.findtext(f"{atom_ns}entry/{atom_ns}summary") == "Phường Thượng Cát"
    feed = orjson.loads(json_feed([item], "https://keng.example"))
    assert feed["items"][0]["content_text"] == "Bãosố[31m 9\nBãosố[31m 9"
    assert not REFUSED_CHARS.search(orjson.dumps(feed).decode("utf-8"))
