"""Repeated warnings are rate-limited: the first lines of a kind pass, the rest are counted and reported once."""

from __future__ import annotations

from typing import Any

from keng.runtime.log_limits import RepeatLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(burst: int = 3, window_s: float = 10.0) -> tuple[RepeatLimiter, list[dict[str, Any]], Clock]:
    reports: list[dict[str, Any]] = []
    clock = Clock()
    return RepeatLimiter(reports.append, burst=burst, window_s=window_s, clock=clock), reports, clock


def test_the_first_lines_of_a_kind_pass_then_the_rest_are_counted_and_reported_after_the_window() -> None:
    limit, reports, clock = limiter()
    passed = [
        limit.admit("warning", "dispatch.no_devices", {"reason": "offline", "endpoint": f"e{i}"}) for i in range(1000)
    ]
    assert passed == [True] * 3 + [False] * 997  # per-device fields do not make lines different
    assert reports == []
    clock.now += 10.0
    assert limit.admit("warning", "dispatch.no_devices", {"reason": "offline", "endpoint": "e1"})
    assert reports == [
        {
            "suppressed_event": "dispatch.no_devices",
            "suppressed_level": "warning",
            "suppressed": 997,
            "window_s": 10.0,
            "reason": "offline",
        }
    ]


def test_key_fields_and_levels_keep_kinds_apart_and_info_lines_are_never_limited() -> None:
    limit, _, _ = limiter(burst=1)
    assert limit.admit("warning", "render.failed", {"reason": "timeout"})
    assert limit.admit("warning", "render.failed", {"reason": "no-voice"})
    assert limit.admit("error", "render.failed", {"reason": "timeout"})
    assert not limit.admit("warning", "render.failed", {"reason": "timeout"})
    assert all(limit.admit("info", "http.request", {"route": "/x"}) for _ in range(100))
    assert all(limit.admit("warning", "log.suppressed", {}) for _ in range(5))  # summaries are never suppressed


def test_windows_that_ended_are_reported_by_any_later_line_and_the_rest_at_flush() -> None:
    limit, reports, clock = limiter(burst=1)
    for _ in range(5):
        limit.admit("warning", "mqtt.disconnected", {"error": "refused"})
        limit.admit("error", "dispatch.queue_full", {"channel": "speaker", "dispatch_id": "d1"})
    clock.now += 11.0
    limit.admit("warning", "something.else", {})  # not the same kind: it still reports the windows that ended
    assert sorted((r["suppressed_event"], r["suppressed"]) for r in reports) == [
        ("dispatch.queue_full", 4),
        ("mqtt.disconnected", 4),
    ]
    reports.clear()
    limit.admit("warning", "something.else", {})
    limit.admit("warning", "something.else", {})
    limit.flush()
    assert [(r["suppressed_event"], r["suppressed"]) for r in reports] == [("something.else", 2)]
    limit.flush()
    assert len(reports) == 1  # nothing is reported twice
