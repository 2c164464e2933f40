"""What the CLI says when a command fails: the Vietnamese headline from the one error table (runtime/errors.py, shared
with the API), the English detail (which names the broken rule) and the rule's slug. Kept out of main.py so that
parsing (`keng --help`) imports none of the modules that define these errors."""

from __future__ import annotations

from typing import NamedTuple

from keng.domain.errors import AreaEnded
from keng.runtime.cli.output import CommandError
from keng.runtime.errors import headline_for

UNEXPECTED = "sự cố ngoài dự kiến"


class Failure(NamedTuple):
    """A failed command as reported: `rule` is the broken rule's slug when the error names one."""

    headline: str
    detail: str
    rule: str | None
    successors: tuple[str, ...] = ()
    """For `area-ended`: the codes in force now that replace the one given (the detail names them too)."""


def failure_of(error: BaseException) -> Failure | None:
    """The report for an error the CLI expects (None for one it does not: a crash)."""
    if isinstance(error, CommandError):
        return Failure(error.headline, error.detail, error.rule)
    headline = headline_for(error)
    if headline is None:
        return None
    successors = error.successors if isinstance(error, AreaEnded) else ()
    return Failure(headline, str(error), getattr(error, "rule", None), successors)


def unexpected(error: BaseException) -> Failure:
    """The report for a crash (its traceback goes to the log)."""
    return Failure(UNEXPECTED, f"unexpected {type(error).__name__}: {error}", None)
