"""Argument types shared by the CLI's commands: integers are read as bounded ASCII digits, by the same parser as the
HTTP layer's (`domain.values.parse_digits`), so `keng` and the API accept and refuse the same values."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from keng.domain.errors import InvalidValue
from keng.domain.values import parse_digits
from keng.runtime.reports import PER, STRUCTURE_HELP, structure_day


def digits(what: str, *, lo: int, hi: int) -> Callable[[str], int]:
    """An argparse `type`: a whole number in `lo..hi` (argparse reports a refusal as a usage error)."""

    def parse(text: str) -> int:
        try:
            return parse_digits(text, what, lo=lo, hi=hi)
        except InvalidValue as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def structure_arg(text: str) -> str:
    """An argparse `type` for `--structure`: a calendar day (YYYY-MM-DD)."""
    try:
        return structure_day(text)
    except InvalidValue as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_structure_options(p: argparse.ArgumentParser) -> None:
    """`--structure DAY` and `--per year|ward` of the reports (`keng report`, `keng audit replay`)."""
    p.add_argument("--structure", type=structure_arg, metavar="DAY", help=STRUCTURE_HELP)
    p.add_argument("--per", choices=PER, default="year", help="roadmap: rows per year (default) or per ward")
