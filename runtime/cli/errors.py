"""What the CLI says when a command fails: the Vietnamese headline from the one error table (runtime/errors.py, shared
with the API), the English detail (which names the broken rule) and the rule's slug. Kept out of main.py so that
parsing (`keng --help`) imports none of the modules that define these errors."""

from __future__ import annotations

from typing import NamedTuple

from keng.runtime.cli.output import CommandError
from keng.runtime.errors import headline_for

UNEXPECTED = "sự cố ngoài dự kiến"


class Failure(NamedTuple):
    """A failed command as reported: `rule` is the broken rule's slug when the error names one."""

    headline: str
    detail: str
    rule: str | None


def failure_of(error: BaseException) -> Failure | None:
    """The report for an error the CLI expects (None for one it does not: a crash)."""
    if isinstance(error, CommandError):
        return Failure(error.headline, error.detail, error.rule)
    headline = headline_for(error)
    return None if headline is None else Failure(headline, str(error), getattr(error, "rule", None))


def unexpected(error: BaseException) -> Failure:
    """The report for a crash (its traceback goes to the log)."""
    return Failure(UNEXPECTED, f"unexpected {type(error).__name__}: {error}", None)
