"""Repeated warnings and errors, rate-limited: an emergency sent while no device is online, or a broker that is down,
must not write thousands of identical lines that bury everything else.

Lines are "identical" when they share level, event name and the values of a few key fields that name *what* went
wrong (`KEY_FIELDS`), not *where*: per-device fields (endpoint, topic, client id) are deliberately left out, so a
fleet-wide failure folds into one count. The first `burst` lines of a kind pass in each window of `window_s` seconds;
the rest are counted and, once the window is over, reported in one `log.suppressed` line (with the count, the event
and its key fields). Info and debug lines (the canonical line per request or dispatch) are never limited.

Hand-written: structlog has no rate limiting, and the stdlib's `logging` filters see only one record at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

KEY_FIELDS = ("reason", "error", "channel", "engine", "broadcast_id", "dispatch_id", "route")
LIMITED_LEVELS = frozenset({"warning", "warn", "error", "exception"})
SUMMARY_EVENT = "log.suppressed"
Key = tuple[Any, ...]


@dataclass
class _Window:
    started: float
    passed: int = 0
    suppressed: int = 0


class RepeatLimiter:
    """Lets the first `burst` identical lines through per `window_s`, then counts; `report(summary)` receives one dict
    per window that suppressed anything. Thread-safe. Use it as a structlog processor and (`filter`) on stdlib
    handlers."""

    def __init__(
        self,
        report: Callable[[dict[str, Any]], None],
        *,
        burst: int = 10,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.report, self.burst, self.window_s, self.clock = report, burst, window_s, clock
        self._windows: dict[Key, _Window] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def admit(self, level: str, event: str, fields: Mapping[str, Any]) -> bool:
        """Count one line; True if it may be written."""
        if level not in LIMITED_LEVELS or event == SUMMARY_EVENT:
            return True
        key = (level, event, *((name, str(fields[name])) for name in KEY_FIELDS if name in fields))
        now = self.clock()
        due: list[tuple[Key, _Window]] = []
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window.started >= self.window_s:
                due.append((key, window))
                window = None
            if window is None:
                window = self._windows[key] = _Window(now)
            if now >= self._next_sweep:
                due += self._expired(now)
            admitted = window.passed < self.burst
            if admitted:
                window.passed += 1
            else:
                window.suppressed += 1
        self._report(due)
        return admitted

    def flush(self) -> None:
        """Report every window's suppressed count now (at exit)."""
        with self._lock:
            due, self._windows = list(self._windows.items()), {}
        self._report(due)

    def _expired(self, now: float) -> list[tuple[Key, _Window]]:
        self._next_sweep = now + 1.0
        done = [(k, w) for k, w in self._windows.items() if now - w.started >= self.window_s]
        for k, _ in done:
            del self._windows[k]
        return done

    def _report(self, due: list[tuple[Key, _Window]]) -> None:
        for key, window in due:
            if window.suppressed:
                level, event, *pairs = key
                summary = {"suppressed_event": event, "suppressed_level": level, "suppressed": window.suppressed}
                self.report({**summary, "window_s": self.window_s, **dict(pairs)})

    def __call__(self, logger: Any, method_name: str, event_dict: structlog.typing.EventDict) -> Any:
        """The structlog processor: drops a line over the limit."""
        if not self.admit(method_name, str(event_dict.get("event")), event_dict):
            raise structlog.DropEvent
        return event_dict

    def filter(self, record: logging.LogRecord) -> bool:
        """The stdlib filter: same rule, keyed by logger name and message template."""
        return self.admit(record.levelname.lower(), f"{record.name}: {record.msg}", {})
