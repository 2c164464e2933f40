"""The OpenAPI description of `GET /api/v1/reports/{name}` (one path per report, with its query parameters)."""

from __future__ import annotations

from typing import Any

PROBLEM = "application/problem+json"
_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_ROWS = {"type": "array", "items": {"type": "object"}}
_QUERY: dict[str, dict[str, Any]] = {
    "from": {"type": "integer", "minimum": 1900, "maximum": 2200, "description": "first year (default 2022)"},
    "to": {"type": "integer", "minimum": 1900, "maximum": 2200, "description": "last year (default 2025)"},
    "start": {"type": "string", "format": "date-time", "description": "window start (default: the beginning)"},
    "end": {"type": "string", "format": "date-time", "description": "window end (default: now)"},
    "broadcast": {"type": "string", "format": "uuid", "description": "timeline of this broadcast"},
    "staff": {"type": "string", "description": "timeline of this staff handle (default: the caller)"},
    "state": {"type": "string", "description": "only broadcasts in this state, e.g. submitted"},
    "structure": {
        "type": "string",
        "format": "date",
        "description": "count the wards and groups in force on this day (default: today), e.g. 2025-06-30 for the "
        "units before the 2025 reorganisation, 2025-07-01 for those after it",
    },
    "per": {"type": "string", "enum": ["year", "ward"], "description": "rows per year (default) or per ward"},
    "area": {"type": "string", "description": "timeline of every unit that ever held this area code"},
}
_REPORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "kpi": (
        "the district plan's targets: value on a structure, target (100% by 2025) judged, and trend per quarter",
        ("structure",),
    ),
    "coverage": ("per residential group and ward on a structure: a working IP speaker? an e-board?", ("structure",)),
    "roadmap": ("the FM -> IP conversion plan per year or per ward, with progress", ("from", "to", "per", "structure")),
    "drills": ("drill broadcasts: coverage and latency per ward, failed endpoints", ()),
    "board": ("every broadcast with state, approvals, source and renders, newest first", ("state",)),
    "offline": ("endpoints offline during a time window, and for how long", ("start", "end")),
    "timeline": ("the audit timeline of a broadcast, a staff member or an area code", ("broadcast", "staff", "area")),
}


def report_paths() -> dict[str, Any]:
    """The report paths of the OpenAPI document."""
    return {
        f"/api/v1/reports/{name}": {
            "get": {
                "operationId": f"report{name.capitalize()}",
                "summary": f"{summary} (auditor or admin; as `keng report {name} --json`)",
                "security": [{"bearer": []}],
                "parameters": [{"name": q, "in": "query", "schema": _QUERY[q]} for q in params],
                "responses": {
                    "200": {"description": "the report's rows", "content": {"application/json": {"schema": _ROWS}}},
                    **{
                        str(c): {"description": "problem", "content": {PROBLEM: {"schema": _PROBLEM}}}
                        for c in (400, 401, 403)
                    },
                },
            }
        }
        for name, (summary, params) in _REPORTS.items()
    }
