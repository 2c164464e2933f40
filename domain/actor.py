"""Who performs a command: a staff member, or an external system acting through an integration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from keng.domain.errors import NotAuthorised, NotCreator, OutsideJurisdiction, SenderNotOwned
from keng.domain.values import Role


class Actor(Protocol):
    """What the aggregates need to know of whoever performs a command."""

    @property
    def handle(self) -> str: ...

    def has_role(self, role: Role) -> bool: ...

    def require_role(self, role: Role, action: str) -> None: ...

    def require_scope(self, scope: list[str], action: str) -> None: ...


INTEGRATION_PREFIX = "integration:"


def integration_of(handle: str) -> str | None:
    """The integration's name when `handle` (an event's `by`) is an integration's, else None (a staff member)."""
    return handle.removeprefix(INTEGRATION_PREFIX) if handle.startswith(INTEGRATION_PREFIX) else None


@dataclass(frozen=True)
class ExternalActor:
    """An integration acting within its jurisdiction, expanded to area codes (a district brings all its wards), and
    under the CAP senders configured for it."""

    name: str
    roles: frozenset[Role]
    area_codes: frozenset[str]
    senders: frozenset[str] = field(default_factory=frozenset)

    @property
    def handle(self) -> str:
        """Recorded as `by` in events: `integration:<name>`."""
        return f"{INTEGRATION_PREFIX}{self.name}"

    def has_role(self, role: Role) -> bool:
        """Integrations draft and submit; they never approve."""
        return role in self.roles

    def require_role(self, role: Role, action: str) -> None:
        """Raise NotAuthorised unless the integration holds the role."""
        if role not in self.roles:
            raise NotAuthorised(f"rule {NotAuthorised.rule}: {self.handle} cannot {action}")

    def require_scope(self, scope: list[str], action: str) -> None:
        """Raise OutOfScope naming every target outside the jurisdiction (never clipped silently)."""
        outside = sorted(set(scope) - self.area_codes)
        if outside:
            raise OutsideJurisdiction(
                f"rule {OutsideJurisdiction.rule}: {self.handle} cannot {action}: "
                f"outside its jurisdiction: {', '.join(outside)}"
            )

    def require_sender(self, sender: str, where: str) -> None:
        """Raise SenderNotOwned unless `sender` is one of this integration's configured CAP senders."""
        if sender not in self.senders:
            owned = ", ".join(sorted(self.senders)) or (
                f"none; an admin sets them with `keng integration senders {self.name} --sender SENDER`"
            )
            raise SenderNotOwned(
                f"rule {SenderNotOwned.rule}: {where}: {self.handle} may not send as {sender!r} "
                f"(its CAP senders: {owned})"
            )

    def require_creator(self, drafted_by: str, what: str) -> None:
        """Raise NotCreator unless this integration drafted the thing (`drafted_by` is its handle): an integration
        changes only what it created. The creator is not named (an operator's handle is not the sender's business)."""
        if drafted_by != self.handle:
            raise NotCreator(
                f"rule {NotCreator.rule}: {self.handle} cannot change {what}: it was not created by this integration"
            )

    def require_own_sender(self, sender: str, where: str) -> None:
        """Raise NotCreator when a reference names an alert of a sender this integration does not own: such an alert
        is never one it created."""
        if sender not in self.senders:
            raise NotCreator(
                f"rule {NotCreator.rule}: {where}: {self.handle} cannot change alerts of sender {sender!r}, "
                "which is not one of its senders"
            )
