"""Printing for the CLI: JSON (for machines, `--json`) and aligned tables (for people)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson


class CommandError(Exception):
    """A command failed for a reason explained by a Vietnamese `headline` and an English `detail`."""

    def __init__(self, headline: str, detail: str) -> None:
        super().__init__(detail)
        self.headline = headline
        self.detail = detail


def print_json(value: Any) -> None:
    """Print a JSON document (UTF-8, Vietnamese characters as they are)."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows under headers, columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
