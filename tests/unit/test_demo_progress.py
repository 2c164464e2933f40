"""The demo's progress per ward: plain lines when stdout is not a terminal (a ward's line when its counts change, at
most every two seconds, and its last counts at close), a table with bars that rich redraws in place on a terminal."""

from __future__ import annotations

import io
import os
import re

from rich.console import Console

from keng.runtime.demo.progress import LiveTable, PlainLines, WardProgress, plain_line, progress_for, table


class Ticks:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ward(code: str, received: int, playing: int, played: int, failed: int = 0) -> WardProgress:
    names = {"00595": "Phường Thượng Cát", "00598": "Phường Liên Mạc"}
    return WardProgress(code, names[code], 30, received, playing, played, failed)


# Snapshots as the dispatcher hands them over, at the times (s) they came.
RECORDED = [
    (0.0, [ward("00595", 7, 7, 0), ward("00598", 3, 3, 0)]),
    (0.4, [ward("00595", 29, 22, 7), ward("00598", 19, 16, 3)]),
    (1.0, [ward("00595", 29, 22, 7), ward("00598", 19, 16, 3)]),
    (2.1, [ward("00595", 30, 0, 29, 1), ward("00598", 19, 16, 3)]),
    (2.5, [ward("00595", 30, 0, 29, 1), ward("00598", 30, 0, 30)]),
]


def test_plain_lines_show_a_ward_when_it_changed_at_most_every_two_seconds_and_its_last_counts_at_close() -> None:
    out, clock = io.StringIO(), Ticks()
    plain = PlainLines(out, clock=clock)
    for at, rows in RECORDED:
        clock.now = at
        plain.update(rows)
    plain.close()
    assert out.getvalue().splitlines() == [
        "      Phường Thượng Cát      nhận   7/30  · đang phát   7 · đã phát   0 · lỗi   0",
        "      Phường Liên Mạc        nhận   3/30  · đang phát   3 · đã phát   0 · lỗi   0",
        "      Phường Thượng Cát      nhận  30/30  · đang phát   0 · đã phát  29 · lỗi   1",
        "      Phường Liên Mạc        nhận  19/30  · đang phát  16 · đã phát   3 · lỗi   0",
        "      Phường Liên Mạc        nhận  30/30  · đang phát   0 · đã phát  30 · lỗi   0",
    ]


def test_closing_plain_lines_repeats_nothing_already_shown() -> None:
    out = io.StringIO()
    plain = PlainLines(out, clock=Ticks())
    plain.update(RECORDED[0][1])
    plain.close()
    assert out.getvalue().splitlines() == [plain_line(row) for row in RECORDED[0][1]]


def test_the_live_table_has_a_row_and_a_bar_per_ward_and_the_total_in_its_footer() -> None:
    out = io.StringIO()
    live = LiveTable(Console(file=out, force_terminal=True, width=120, color_system=None))
    for _, rows in RECORDED:
        live.update(rows)
    live.close()
    last = out.getvalue().split("Tiến độ phát theo phường")[-1]
    cells = [re.split(r"\s*[│┃]\s*", line.strip("│┃ ")) for line in last.splitlines() if line.startswith(("│", "┃"))]
    assert cells[0][:6] == ["phường (ward)", "mục tiêu", "đã nhận", "đang phát", "đã phát", "lỗi"]
    assert cells[1][:6] == ["Phường Thượng Cát", "30", "30", "0", "29", "1"]
    assert cells[2][:6] == ["Phường Liên Mạc", "30", "30", "0", "30", "0"]
    assert cells[3] == ["Cộng các phường (wards)", "60", "60", "0", "59", "1", "60/60"]
    assert set(cells[2][6]) == {"━"}  # a full bar for a ward that is done


def test_an_empty_snapshot_is_a_table_of_zeros() -> None:
    out = io.StringIO()
    Console(file=out, width=120).print(table([]))
    assert "Cộng các phường (wards)" in out.getvalue() and "0/0" in out.getvalue()


def test_a_terminal_gets_the_live_table_and_anything_else_plain_lines() -> None:
    leader, follower = os.openpty()
    with open(follower, "w", encoding="utf-8") as terminal:
        assert isinstance(progress_for(terminal), LiveTable)
    os.close(leader)
    read, write = os.pipe()
    with open(write, "w", encoding="utf-8") as pipe:
        assert isinstance(progress_for(pipe), PlainLines)
    os.close(read)
