"""Errors as `application/problem+json` (RFC 9457): a status, a title, and a `detail` that names the problem.

Every known error type maps to a precise 4xx; anything else is a 500 whose body carries no stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from adapters.payload import PayloadError
from adapters.signing import SignatureError
from adapters.store.access import IdempotencyConflict, Unauthenticated
from adapters.store.errors import ConcurrencyConflict, DuplicateRecord, NotFound
from adapters.store.group_commit import Overloaded
from domain.errors import (
    DomainError,
    ExpiredBroadcast,
    IllegalTransition,
    InvalidValue,
    NotApproved,
    NotAuthorised,
    NotCreator,
    OutsideJurisdiction,
    SelfApprovalRefused,
    SenderNotOwned,
    UnknownArea,
)

PROBLEM_TYPE = "application/problem+json"

# Most specific first.
STATUS: list[tuple[type[BaseException], int, str]] = [
    (Unauthenticated, 401, "unauthenticated"),
    (SignatureError, 401, "bad-signature"),
    (OutsideJurisdiction, 422, "outside-jurisdiction"),
    (NotCreator, 403, NotCreator.rule),
    (SenderNotOwned, 403, SenderNotOwned.rule),
    (NotAuthorised, 403, "forbidden"),
    (SelfApprovalRefused, 403, "self-approval"),
    (NotFound, 404, "not-found"),
    (ExpiredBroadcast, 409, "expired"),
    (NotApproved, 409, "not-approved"),
    (IllegalTransition, 409, "illegal-transition"),
    (ConcurrencyConflict, 409, "conflict"),
    (DuplicateRecord, 409, "duplicate"),
    (IdempotencyConflict, 422, "idempotency-key-reused"),
    (Overloaded, 503, "overloaded"),
    (UnknownArea, 422, "unknown-area"),
    (InvalidValue, 422, "invalid-value"),
    (DomainError, 422, "rule-violation"),
]


class Problem(Exception):
    """Raise from a handler (or map an error to one) to answer with a problem document."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})  # e.g. the Allow of a 405

    def response(self) -> web.Response:
        """The problem document as a response."""
        body: dict[str, object] = {
            "type": f"urn:keng:problem:{self.kind}",
            "title": self.kind.replace("-", " "),
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors  # every violation, by element path
        response = web.Response(
            status=self.status, body=orjson.dumps(body), content_type=PROBLEM_TYPE, headers=self.headers
        )
        if self.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="keng"'
        return response


def problem_for(error: BaseException) -> Problem | None:
    """The problem response for a known error, or None."""
    if isinstance(error, PayloadError):
        slug = "malformed-json" if error.status == 400 else "invalid-payload"
        return Problem(error.status, slug, str(error), error.errors or None)
    for kind, status, name in STATUS:
        if isinstance(error, kind):
            return Problem(status, name, str(error))
    return None
