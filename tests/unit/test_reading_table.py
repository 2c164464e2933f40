"""Issue 15: how a voice reads ward announcements. `data/reading.tsv` holds at least 200 sentences as written and as
a Vietnamese reader says them (negative numbers and units, road codes, agency and programme abbreviations, ranges,
clock times, dates, phone numbers); `prepare` must give exactly the spoken form, with no digit left."""

from __future__ import annotations

from pathlib import Path

import pytest

from keng.domain.vitext import prepare

TABLE = Path(__file__).parent / "data" / "reading.tsv"


def rows() -> list[tuple[str, str]]:
    out = []
    for number, line in enumerate(TABLE.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        written, spoken = line.split("\t")
        assert written.strip() == written and spoken.strip() == spoken, f"line {number}: stray spaces"
        out.append((written, spoken))
    return out


ROWS = rows()


def test_the_table_has_at_least_200_distinct_sentences() -> None:
    assert len(ROWS) >= 200
    assert len({written for written, _ in ROWS}) == len(ROWS)


@pytest.mark.parametrize(("written", "spoken"), ROWS, ids=[w[:48] for w, _ in ROWS])
def test_a_ward_announcement_is_read_as_a_vietnamese_reader_says_it(written: str, spoken: str) -> None:
    prepared = prepare(written)
    assert prepared.text == spoken
    assert not any(ch.isdigit() for ch in prepared.text)
