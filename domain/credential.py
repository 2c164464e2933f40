"""Console sign-in as events: a staff member's password being set, each sign-in and failed attempt, lock-out after
repeated failures, and "sign out everywhere".

The password hash itself is kept outside the event log (adapters/passwords.py), as integration secrets are: an
append-only log cannot forget a leaked hash. The log records that a password was set, by whom and when, so an auditor
sees every change of credentials without seeing the credential.

Lock-out: `MAX_FAILURES` failed attempts within `FAILURE_WINDOW` lock the account for `LOCK_FOR`; while locked, no
attempt is checked (nor recorded), so an attacker cannot grow the log. A correct password does not unlock early.
Sessions carry the `generation` they were issued in; ending every session raises it, which invalidates them all.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from keng.domain.errors import DomainError, InvalidValue
from keng.domain.ids import KENG_NAMESPACE

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_FOR = timedelta(minutes=15)
SIGN_IN_METHODS = ("password", "token")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


class SignInLocked(DomainError):
    """Too many failed sign-ins: the account is locked for a while."""

    rule = "sign-in-locked"

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


def credential_id(handle: str) -> UUID:
    """Aggregate id of a staff member's sign-in record (one per handle)."""
    return uuid5(KENG_NAMESPACE, f"credential\x1f{handle.lower()}")


def check_password_strength(password: str) -> None:
    """Raise InvalidValue unless the password is long enough (and not absurdly long: hashing is costly)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidValue(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidValue(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip() != password or not password.isprintable():
        raise InvalidValue("a password cannot start or end with spaces, nor contain control characters")


class Credential(Aggregate):
    """One staff member's sign-in record."""

    class Opened(Aggregate.Created):
        handle: str

    class PasswordSet(Aggregate.Event):
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.has_password = True

    class SignedIn(Aggregate.Event):
        method: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.failures = []

    class SignInFailed(Aggregate.Event):
        at: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.failures.append(self.at)

    class LockedOut(Aggregate.Event):
        until: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.locked_until = self.until
            aggregate.failures = []

    class SessionsEnded(Aggregate.Event):
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.generation += 1

    def __init__(self, handle: str) -> None:
        self.handle = handle
        self.has_password = False
        self.failures: list[str] = []
        self.locked_until: str | None = None
        self.generation = 0

    @classmethod
    def open(cls, handle: str) -> Credential:
        """The sign-in record of a staff member (created on first use)."""
        return cls._create(cls.Opened, id=credential_id(handle), handle=handle)

    def password_set(self, *, by: str) -> None:
        """Record that the password was (re)set; every open session ends with it."""
        self.trigger_event(self.PasswordSet, by=by)
        self.trigger_event(self.SessionsEnded, by=by)

    def locked_at(self, now: datetime) -> datetime | None:
        """When the lock ends, if the account is locked at `now`."""
        if self.locked_until is None:
            return None
        until = datetime.fromisoformat(self.locked_until)
        return until if now < until else None

    def require_unlocked(self, now: datetime) -> None:
        """Raise SignInLocked while the account is locked."""
        until = self.locked_at(now)
        if until is not None:
            raise SignInLocked(f"rule {SignInLocked.rule}: {self.handle} is locked until {until.isoformat()}", until)

    def signed_in(self, method: str, now: datetime) -> None:
        """Record a successful sign-in (refused while locked)."""
        if method not in SIGN_IN_METHODS:
            raise InvalidValue(f"sign-in method must be one of {', '.join(SIGN_IN_METHODS)}")
        self.require_unlocked(now)
        self.trigger_event(self.SignedIn, method=method, by=self.handle)

    def failed(self, now: datetime) -> datetime | None:
        """Record a failed attempt; returns the end of the lock when this attempt locked the account."""
        self.require_unlocked(now)
        recent = [f for f in self.failures if now - datetime.fromisoformat(f) < FAILURE_WINDOW]
        self.trigger_event(self.SignInFailed, at=now.isoformat(), by=self.handle)
        if len(recent) + 1 >= MAX_FAILURES:
            until = now + LOCK_FOR
            self.trigger_event(self.LockedOut, until=until.isoformat(), by="system")
            return until
        return None

    def end_sessions(self, *, by: str) -> None:
        """Sign out everywhere: every session issued so far stops being valid."""
        self.trigger_event(self.SessionsEnded, by=by)
