"""Query parameters are checked against the OpenAPI document: a name that the route does not take is a 400 naming it.

The document is the one source of what each operation accepts (runtime/http/openapi.py); this check keeps handlers
from silently ignoring a misspelt or foreign parameter (`?sinse=10` would otherwise replay nothing and say nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from keng.runtime.http.problems import Problem


@dataclass(frozen=True)
class _Operation:
    method: str
    path: re.Pattern[str]
    names: frozenset[str]


class QueryNames:
    """The query parameter names of every documented operation, matched by method and path."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._operations: list[_Operation] = []
        for template, item in document.get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")
            shared = item.get("parameters", [])
            for method, operation in item.items():
                if method == "parameters" or not isinstance(operation, dict):
                    continue
                params = [*shared, *operation.get("parameters", [])]
                names = frozenset(p["name"] for p in params if p.get("in") == "query")
                self._operations.append(_Operation(method.upper(), pattern, names))

    def check(self, request: web.Request) -> None:
        """Raise a 400 problem naming the first query parameter the operation does not take (undocumented routes and
        methods are left to their handlers)."""
        if not request.query:
            return
        method = "GET" if request.method == "HEAD" else request.method
        for op in self._operations:
            if op.method == method and op.path.match(request.path):
                unknown = sorted(set(request.query) - op.names)
                if unknown:
                    takes = ", ".join(sorted(op.names)) or "none"
                    raise Problem(
                        400, "bad-request", f"unknown query parameter {unknown[0]!r} (this route takes: {takes})"
                    )
                return
