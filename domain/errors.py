"""Named domain errors. Each message names the rule that was broken."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a command was refused because it breaks a rule of the domain."""

    rule: str = "domain-rule"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidValue(DomainError):
    """A value given to a command is malformed or out of range."""

    rule = "invalid-value"


class IllegalTransition(DomainError):
    """The aggregate's state does not allow this command."""

    rule = "illegal-transition"


class RenderClaimRefused(IllegalTransition):
    """A revision's speaker audio is rendered once: by the worker whose claim (lease) on it is current, never by a
    second one while that lease runs, and never again once it is recorded."""

    rule = "render-claimed-once"


class SelfApprovalRefused(DomainError):
    """Four-eyes rule: whoever drafted or revised a broadcast may not approve it."""

    rule = "approver-is-not-drafter"


class NotAuthorised(DomainError):
    """The actor lacks the role or the area scope the command needs."""

    rule = "role-required"


class OutOfScope(NotAuthorised):
    """The actor's area scope does not cover the broadcast's targets."""

    rule = "approver-area-scope"


class EmergencyCancelRefused(NotAuthorised):
    """An emergency on air is cancelled only by an approver whose scope covers all of it."""

    rule = "emergency-cancel-needs-approver"


class ExpiredBroadcast(DomainError):
    """An expired broadcast can be neither approved nor dispatched."""

    rule = "expired-cannot-be-approved"


class NotApproved(DomainError):
    """Nothing is dispatched without an approval of its current revision."""

    rule = "nothing-dispatched-unapproved"


class UnknownArea(DomainError):
    """A target or a record names an area that is not registered."""

    rule = "unknown-area"


class AreaEnded(UnknownArea):
    """A code names a unit that had ended (merged, divided, dissolved or recoded) before the time it was used for;
    the message names its successors."""

    rule = "area-ended"

    def __init__(self, message: str, *, successors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.successors = successors


class OutsideJurisdiction(OutOfScope):
    """An external sender targeted an area outside its authorised jurisdiction (refused, never clipped)."""

    rule = "jurisdiction"


class NotCreator(NotAuthorised):
    """An integration updates or cancels only the alerts it created itself (never an operator's, the city source's
    or another integration's)."""

    rule = "integration-owns-alert"


class SenderNotOwned(NotAuthorised):
    """An integration sends only under the CAP senders configured for it."""

    rule = "integration-owns-sender"


class SenderTaken(InvalidValue):
    """A CAP sender belongs to one integration at most."""

    rule = "sender-owned-once"
