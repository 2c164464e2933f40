"""Errors of the CAP adapter. Every one of them is a client error: the HTTP layer answers 4xx, never 5xx.

`status_for(error)` gives the HTTP status the service should answer with; `None` means the error is not the client's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One broken rule, located by element path (`alert/info[2]/area[1]/polygon[1]`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class CapError(Exception):
    """Base class: a CAP document was refused. `violations` lists every problem found, by element path."""

    http_status = 422

    def __init__(self, message: str, violations: tuple[Violation, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations or (Violation("document", message),)
        self.warnings: tuple[Violation, ...] = ()  # found beside the violations (CapInvalid), reported apart


class CapTooLarge(CapError):
    """The document is larger than the configured size limit (nothing was parsed)."""

    http_status = 413


class CapUnsafeXml(CapError):
    """The document has a DTD, an entity declaration or an external reference: refused outright, never expanded."""

    http_status = 400


class CapMalformed(CapError):
    """Not well-formed XML, nested deeper than the limit, or not an `alert` document at all."""

    http_status = 400


class CapVersionUnsupported(CapError):
    """A CAP 1.0 or 1.1 document (recognised by its namespace): keng accepts CAP 1.2 only."""

    def __init__(self, message: str, version: str) -> None:
        super().__init__(message)
        self.version = version


class CapInvalid(CapError):
    """Well-formed CAP 1.2 that breaks rules of the specification (required elements, enumerations, formats)."""


def status_for(error: BaseException) -> int | None:
    """The HTTP status for a CAP parse or validation error, or None for anything else."""
    return error.http_status if isinstance(error, CapError) else None
