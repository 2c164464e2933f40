"""Printing for the CLI: JSON (for machines, `--json`) and aligned tables (for people)."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from typing import Any

import orjson


class CommandError(Exception):
    """A command failed for a reason explained by a Vietnamese `headline` and an English `detail`."""

    def __init__(self, headline: str, detail: str, *, rule: str | None = None) -> None:
        super().__init__(detail)
        self.headline = headline
        self.detail = detail
        self.rule = rule


def print_json(value: Any) -> None:
    """Print a JSON document (UTF-8, Vietnamese characters as they are)."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows under headers, columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_csv(rows: Sequence[dict[str, Any]]) -> None:
    """Rows of flat dicts as CSV on stdout (lists joined with ';')."""
    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()})


def show(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Report rows as `--json`, `--csv`, or a table whose cells summarise nested values."""
    if args.json:
        print_json(rows)
    elif args.csv:
        print_csv(rows)
    elif rows:
        headers = list(rows[0])
        print_table(headers, [[_cell(r.get(h)) for h in headers] for r in rows])


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return f"{len(value)}" if value and isinstance(value[0], dict) else ",".join(map(str, value))
    return "" if value is None else str(value)
