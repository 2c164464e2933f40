"""Who performs a command: a staff member, or an external system acting through an integration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.errors import NotAuthorised, OutsideJurisdiction
from domain.values import Role


class Actor(Protocol):
    """What the aggregates need to know of whoever performs a command."""

    @property
    def handle(self) -> str: ...

    def has_role(self, role: Role) -> bool: ...

    def require_role(self, role: Role, action: str) -> None: ...

    def require_scope(self, scope: list[str], action: str) -> None: ...


@dataclass(frozen=True)
class ExternalActor:
    """An integration acting within its jurisdiction, expanded to area codes (a district brings all its wards)."""

    name: str
    roles: frozenset[Role]
    area_codes: frozenset[str]

    @property
    def handle(self) -> str:
        """Recorded as `by` in events: `integration:<name>`."""
        return f"integration:{self.name}"

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
