"""Dispatch items: the content of each `seq` is fixed once (Dispatch.ItemSent), and a board's resolution comes from
its registration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from keng.adapters.store.app import Keng
from keng.domain.dispatch import Dispatch, item_hashes
from keng.domain.display import board_resolution, check_capability, parse_resolution
from keng.domain.errors import IllegalTransition, InvalidValue
from keng.domain.records import DispatchItem

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def item(seq: int, sound: str = "a" * 64, **over: object) -> DispatchItem:
    it = DispatchItem(
        seq=seq,
        text_sha256="b" * 64,
        audio={"key": "c" * 64, "sha256": sound, "duration_s": 3.5, "format": "mp3", "engine": "espeak"},
        boards=[{"width": 256, "height": 128, "image_sha256": "d" * 64, "layout_sha256": "e" * 64}],
        at=T0.isoformat(),
    )
    return it | over  # type: ignore[return-value]


def dispatch() -> Dispatch:
    return Dispatch.open(
        broadcast_id=uuid4(), wave=1, priority="emergency", targets=["E1"], expires_at=T0 + timedelta(hours=1),
        drill=False,
    )  # fmt: skip


def test_an_items_content_is_fixed_and_new_content_is_the_next_seq() -> None:
    d = dispatch()
    assert d.next_seq == 1 and d.current_item is None
    d.send_item(item(1))
    with pytest.raises(IllegalTransition, match="item-content-fixed"):
        d.send_item(item(1, sound="f" * 64))  # the same number with other content: never
    with pytest.raises(InvalidValue, match="next item"):
        d.send_item(item(3))
    d.send_item(item(2, sound="f" * 64))
    assert d.current_item is not None and d.current_item["seq"] == 2 and d.next_seq == 3
    assert item_hashes(d.items[1]) == {"a" * 64, "b" * 64, "d" * 64}  # the file, the text, the board image
    assert item_hashes(d.items[2]) == {"f" * 64, "b" * 64, "d" * 64}


def test_an_item_needs_real_hashes_and_an_open_dispatch() -> None:
    d = dispatch()
    with pytest.raises(InvalidValue, match="SHA-256"):
        d.send_item(item(1, text_sha256="not a hash"))
    d.close({"outcome": "complete"})  # type: ignore[typeddict-item]
    with pytest.raises(IllegalTransition, match="closed"):
        d.send_item(item(1))


def test_items_replay_from_the_store_as_they_were_sent() -> None:
    app = Keng()  # in memory: the real mapper and transcoder
    d = dispatch()
    d.send_item(item(1, audio=None, boards=[]))
    app.save_changes(d)
    again = app.repository.get(d.id)
    assert again.items == {1: item(1, audio=None, boards=[])}


@pytest.mark.parametrize(
    ("technology", "capabilities", "expected"),
    [
        ("led-4g", [], (256, 128)),
        ("lcd-4g", [], (800, 480)),
        ("led-large-fiber", [], (512, 256)),
        ("LCD-4G", ["display=1024x600"], (1024, 600)),  # the registered resolution wins
        ("led-4g", ["text-only"], None),
        ("text-ticker", [], None),
        ("unspecified", [], (256, 128)),
        ("led-4g", ["display=9x9"], (256, 128)),  # an impossible one registered before the check: the technology's
    ],
)
def test_a_boards_resolution_comes_from_its_registration(
    technology: str, capabilities: list[str], expected: tuple[int, int] | None
) -> None:
    assert board_resolution(technology, capabilities) == expected


def test_a_registered_resolution_is_checked() -> None:
    assert parse_resolution("800X480") == (800, 480)
    assert check_capability(" display=0800x0480 ") == "display=800x480"
    assert check_capability("audio-out") == "audio-out"
    for bad in ("800", "800x", "x480", "８００x480", "10x10", "800x99999"):
        with pytest.raises(InvalidValue):
            parse_resolution(bad)
