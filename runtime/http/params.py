"""Integers from headers, paths and query strings: ASCII digits within bounds (`domain.values.parse_digits`), or a 400
problem naming the parameter, raised before a handler does anything (a stream is never opened on a bad one)."""

from __future__ import annotations

from collections.abc import Mapping

from keng.domain.errors import InvalidValue
from keng.domain.values import parse_digits
from keng.runtime.http.problems import Problem


def bounded_int(raw: str, name: str, *, lo: int, hi: int) -> int:
    """`raw` (the value of parameter or header `name`) as an integer in `lo..hi`."""
    try:
        return parse_digits(raw, name, lo=lo, hi=hi)
    except InvalidValue as e:
        raise Problem(400, "bad-request", str(e)) from None


def query_int(query: Mapping[str, str], name: str, *, lo: int, hi: int, default: int) -> int:
    """Query parameter `name` as an integer in `lo..hi`, or `default` when absent."""
    raw = query.get(name)
    return default if raw is None else bounded_int(raw, f"query parameter {name!r}", lo=lo, hi=hi)
