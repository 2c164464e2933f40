"""The console's revision diff (word level, lists item by item) and the live delivery figures (`playing` and the
overall row of projections.queries.delivery, the latency budget verdict)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from keng.projections import queries
from keng.projections.fold import Doc, Row
from keng.runtime.console.history import changes, list_diff, word_diff


def test_changed_words_read_as_one_deleted_and_one_inserted_phrase() -> None:
    assert word_diff("Họp tổ sáng thứ bảy tại nhà văn hóa.", "Họp tổ chiều chủ nhật tại nhà văn hóa.") == [
        ("same", "Họp tổ "),
        ("del", "sáng thứ bảy"),
        ("ins", "chiều chủ nhật"),
        ("same", " tại nhà văn hóa."),
    ]
    assert word_diff("", "mới") == [("ins", "mới")]
    assert word_diff("giống nhau", "giống nhau") == [("same", "giống nhau")]
    joined = word_diff("a b c d", "a x c y")
    assert "".join(t for op, t in joined if op != "del") == "a x c y"
    assert "".join(t for op, t in joined if op != "ins") == "a b c d"


def test_lists_and_values_differ_item_by_item() -> None:
    assert list_diff(["00595", "00598"], ["00595", "00601"]) == [("same", "00595"), ("del", "00598"), ("ins", "00601")]
    found = changes(
        {"title": "A", "text": "x", "priority": "normal", "target_areas": ["00595"], "repeats": 1},
        {"title": "A", "text": "x", "priority": "emergency", "target_areas": ["00595", "00598"], "repeats": 1},
        lambda field, value: f"<{value}>",
    )
    assert [(c.field, c.segments, c.listed) for c in found] == [
        ("priority", [("del", "<normal>"), ("ins", "<emergency>")], False),
        ("target_areas", [("same", "<00595>"), ("ins", "<00598>")], True),
    ]


class Store:
    def __init__(self, docs: dict[str, dict[str, Doc]]) -> None:
        self.docs = docs

    def load_kind(self, kind: str) -> dict[str, Doc]:
        return self.docs.get(kind, {})

    def load(self, kind: str, key: str) -> Doc | None:
        return self.docs.get(kind, {}).get(key)

    def timeline(self, subject_kind: str, subject: str | None = None, until: str | None = None) -> list[Row]:
        return []


def test_delivery_counts_playing_and_an_overall_row() -> None:
    opened = datetime(2026, 12, 1, 8, tzinfo=UTC)

    def at(ms: int) -> str:
        return (opened + timedelta(milliseconds=ms)).isoformat()

    endpoints = {
        c: {"code": c, "ward": "W1", "group": g} for c, g in (("a", "G1"), ("b", "G1"), ("c", "G2"), ("d", "G2"))
    }
    acks: dict[str, Any] = {"a": ("played", at(900), at(100)), "b": ("playing", at(500), at(200)),
                            "c": ("failed", at(300), at(300))}  # fmt: skip
    store = Store({
        "broadcast": {"B": {"id": "B", "dispatches": ["D"]}},
        "dispatch": {"D": {"targets": ["a", "b", "c", "d"], "acks": acks, "closed_at": None,
                           "opened_at": opened.isoformat()}},
        "endpoint": endpoints,
    })  # fmt: skip
    report = queries.delivery(store, "B")
    overall = report["overall"]
    assert {k: overall[k] for k in ("targeted", "received", "playing", "played", "failed", "pending")} == {
        "targeted": 4, "received": 3, "playing": 1, "played": 1, "failed": 1, "pending": 1,
    }  # fmt: skip
    assert (overall["p50_ms"], overall["p99_ms"]) == (200.0, 300.0)
    groups = {a["code"]: a for a in report["areas"] if a["level"] == "group"}
    assert (groups["G1"]["playing"], groups["G2"]["pending"]) == (1, 1)
    assert report["failed_endpoints"] == ["c"]
