"""The orjson transcoder round-trips every type keng stores, and reads what the library's JSONTranscoder wrote."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from hypothesis import given
from hypothesis import strategies as st

from keng.adapters.store.transcoder import DateAsISO, OrjsonTranscoder
from keng.domain.values import Priority


def _both() -> tuple[OrjsonTranscoder, JSONTranscoder]:
    fast, slow = OrjsonTranscoder(), JSONTranscoder()
    for t in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
        fast.register(t)
        slow.register(t)
    return fast, slow


STATE = {
    "id": uuid4(),
    "at": datetime(2026, 11, 27, 14, 3, tzinfo=timezone(timedelta(hours=7))),
    "on": date(2019, 5, 1),
    "amount": Decimal("12.50"),
    "targets": ["00595", "00598-T01"],
    "nested": {"when": [datetime(2026, 1, 1, tzinfo=UTC)], "ok": True, "n": None, "x": 1.5},
    "text": "Bão số 3 đổ bộ vào Hà Nội",
}


def test_round_trip_of_every_registered_type() -> None:
    fast, _ = _both()
    assert fast.decode(fast.encode(STATE)) == STATE


def test_reads_what_the_library_transcoder_wrote_and_vice_versa() -> None:
    fast, slow = _both()
    assert fast.decode(slow.encode(STATE)) == STATE
    assert slow.decode(fast.encode(STATE)) == STATE


def test_subclasses_of_json_types_are_stored_as_their_base_type() -> None:
    fast, _ = _both()
    assert fast.decode(fast.encode({"p": Priority.EMERGENCY, "d": OrderedDict(a=(1, 2))})) == {
        "p": "emergency",
        "d": {"a": [1, 2]},
    }


def test_unregistered_types_are_refused_by_name() -> None:
    fast, _ = _both()
    with pytest.raises(TranscodingNotRegisteredError, match="set"):
        fast.encode({"s": {1, 2}})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text()
    | st.uuids()
    | st.dates()
    | st.datetimes(timezones=st.just(UTC)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_round_trip_of_random_states(state: dict[str, object]) -> None:
    fast, _ = _both()
    assert fast.decode(fast.encode(state)) == state


def test_flat_decoding_gives_the_stored_strings_of_every_tagged_value() -> None:
    from keng.projections.facts import flat

    fast, slow = _both()
    for transcoder in (fast, slow):
        assert fast.decode_flat(transcoder.encode(STATE)) == flat(STATE)
