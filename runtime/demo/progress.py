"""The demo's delivery progress, one row per ward: on a terminal a table with bars that updates in place (rich); on
anything else (a pipe, a log file, CI) plain lines, one per ward when its counts change, at most every two seconds, and
each ward's last counts when the dispatch closes, so that the log reads top to bottom rather than as a scroll of
every acknowledgement."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from keng.runtime.dispatch.live import LiveDispatch


@dataclass(frozen=True)
class WardProgress:
    """One ward's endpoints in this dispatch: `received` counts every acknowledgement (so it includes the others)."""

    code: str
    name: str
    targeted: int
    received: int
    playing: int
    played: int
    failed: int

    @property
    def done(self) -> int:
        """Endpoints that reached a final state (played or failed)."""
        return self.played + self.failed


def ward_rows(live: LiveDispatch, wards: Mapping[str, str]) -> list[WardProgress]:
    """The progress of every targeted ward (code -> name), in code order."""
    rows = [WardProgress(code, name, **live.counts(code)) for code, name in sorted(wards.items())]
    return [row for row in rows if row.targeted]


class Progress(Protocol):
    """Where the demo shows progress: `update` with every snapshot, `close` once the dispatch closed."""

    def update(self, rows: Sequence[WardProgress]) -> None: ...

    def close(self) -> None: ...


def plain_line(row: WardProgress) -> str:
    """One ward's counts as a line of text."""
    return (
        f"      {row.name:<22} nhận {row.received:>3}/{row.targeted:<3} · đang phát {row.playing:>3} · "
        f"đã phát {row.played:>3} · lỗi {row.failed:>3}"
    )


class PlainLines:
    """A ward's line when its counts changed and `every_s` passed since its last line; every ward's last counts at
    close (when they were not the last line printed)."""

    def __init__(self, out: TextIO, *, every_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.out, self.every_s, self.clock = out, every_s, clock
        self.latest: dict[str, WardProgress] = {}
        self.printed: dict[str, tuple[WardProgress, float]] = {}

    def update(self, rows: Sequence[WardProgress]) -> None:
        now = self.clock()
        for row in rows:
            self.latest[row.code] = row
            last, at = self.printed.get(row.code, (None, -math.inf))
            if row != last and now - at >= self.every_s:
                self._print(row, now)

    def close(self) -> None:
        now = self.clock()
        for code, row in self.latest.items():
            if self.printed.get(code, (None, 0.0))[0] != row:
                self._print(row, now)

    def _print(self, row: WardProgress, now: float) -> None:
        self.printed[row.code] = (row, now)
        self.out.write(plain_line(row) + "\n")
        self.out.flush()


COUNTS = ("targeted", "received", "playing", "played", "failed")
HEADERS = ("phường (ward)", "mục tiêu", "đã nhận", "đang phát", "đã phát", "lỗi", "xong (played or failed)")


def counts_of(row: WardProgress) -> list[str]:
    """The row's counts, in `COUNTS` order, as cells."""
    return [str(getattr(row, name)) for name in COUNTS]


def table(rows: Sequence[WardProgress]) -> Table:
    """The progress table: a row per ward with a bar of its endpoints done, the district's total as the footer."""
    total = WardProgress("", "Cộng các phường (wards)", *(sum(getattr(r, name) for r in rows) for name in COUNTS))
    footers = [total.name, *counts_of(total), f"{total.done}/{total.targeted}"]
    grid = Table(title="Tiến độ phát theo phường (delivery by ward)", title_justify="left", show_footer=True)
    for i, (header, footer) in enumerate(zip(HEADERS, footers, strict=True)):
        grid.add_column(header, footer=footer, justify="right" if 0 < i <= len(COUNTS) else "left", no_wrap=True)
    for row in rows:
        grid.add_row(row.name, *counts_of(row), ProgressBar(total=max(row.targeted, 1), completed=row.done, width=24))
    return grid


class LiveTable:
    """The table on a terminal, redrawn in place a few times a second by rich's own thread (the dispatcher's loop only
    stores the newest snapshot); started with the first snapshot, so the demo's earlier lines print above it, and
    what is written to stdout or stderr while it shows (log lines) goes above it too."""

    def __init__(self, console: Console) -> None:
        self.rows: Sequence[WardProgress] = ()
        self.live = Live(console=console, refresh_per_second=8, get_renderable=lambda: table(self.rows))
        self.started = False

    def update(self, rows: Sequence[WardProgress]) -> None:
        self.rows = rows
        if not self.started:
            self.live.start()
            self.started = True

    def close(self) -> None:
        if self.started:
            self.live.stop()  # draws the last snapshot and leaves it on the screen


def progress_for(out: TextIO) -> Progress:
    """A live table when `out` is a terminal, else plain lines."""
    return LiveTable(Console(file=out)) if out.isatty() else PlainLines(out)
