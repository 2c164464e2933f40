"""Staff: people who draft, approve and audit broadcasts, with roles, an area scope and training records."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from eventsourcing.domain import Aggregate

from keng.domain.errors import InvalidValue, NotAuthorised, OutOfScope
from keng.domain.ids import staff_id
from keng.domain.values import Role, clean_text, parse_enum, parse_enums

_HANDLE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class Staff(Aggregate):
    """A staff member. The id derives from the handle, so a handle can be enrolled only once."""

    class Enrolled(Aggregate.Created):
        handle: str
        name: str
        roles: list[str]
        wards: list[str]
        by: str

    class RoleGranted(Aggregate.Event):
        role: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.roles.append(self.role)

    class RoleRevoked(Aggregate.Event):
        role: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.roles.remove(self.role)

    class TrainingCompleted(Aggregate.Event):
        course: str
        completed_on: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.trainings.append({"course": self.course, "completed_on": self.completed_on})

    class ScopeCarriedOver(Aggregate.Event):
        """A reorganisation of areas carried the member's scope over to the units that replaced their wards
        (`wards` empty: province- or city-wide); `reason` says which units became which."""

        wards: list[str]
        previous: list[str]
        effective: str
        reason: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.wards = list(self.wards)

    def __init__(self, handle: str, name: str, roles: list[str], wards: list[str], by: str) -> None:
        self.handle = handle
        self.name = name
        self.roles = list(roles)
        self.wards = list(wards)
        self.enrolled_by = by
        self.trainings: list[dict[str, str]] = []

    @classmethod
    def enrol(cls, *, handle: str, name: str, roles: list[str], wards: list[str], by: str) -> Staff:
        """Enrol a staff member. `wards` limits their authority to those ward codes; empty means district-wide."""
        handle = handle.strip().lower()
        if not _HANDLE.match(handle):
            raise InvalidValue(f"staff handle {handle!r} must be 2-64 characters of a-z, 0-9, '.', '_' or '-'")
        role_values = [r.value for r in parse_enums(Role, roles, "role")]
        if not role_values:
            raise InvalidValue("a staff member needs at least one role")
        return cls._create(
            cls.Enrolled,
            id=staff_id(handle),
            handle=handle,
            name=clean_text(name, "staff name", max_len=120),
            roles=role_values,
            wards=sorted(set(wards)),
            by=by,
        )

    def has_role(self, role: Role) -> bool:
        """True if the member currently holds the role."""
        return role.value in self.roles

    def require_role(self, role: Role, action: str) -> None:
        """Raise NotAuthorised unless the member holds the role."""
        if not self.has_role(role):
            raise NotAuthorised(
                f"rule {NotAuthorised.rule}: {self.handle} cannot {action}: the {role.value} role is required"
            )

    @property
    def district_wide(self) -> bool:
        """True when the member's authority is not limited to some wards."""
        return not self.wards

    def require_scope(self, scope: list[str], action: str) -> None:
        """Raise OutOfScope unless every code in `scope` (ward codes, or a district code) is within authority."""
        if self.district_wide:
            return
        outside = sorted(set(scope) - set(self.wards))
        if outside:
            raise OutOfScope(
                f"rule {OutOfScope.rule}: {self.handle} cannot {action}: "
                f"outside their wards ({', '.join(self.wards)}): {', '.join(outside)}"
            )

    def carry_scope_over(self, wards: list[str], *, effective: str, reason: str, by: str) -> bool:
        """Replace the member's wards after a reorganisation (the caller computed them); False if unchanged."""
        new = sorted(set(wards))
        if new == self.wards:
            return False
        self.trigger_event(self.ScopeCarriedOver, wards=new, previous=list(self.wards), effective=effective,
                           reason=clean_text(reason, "reason", max_len=2000), by=by)  # fmt: skip
        return True

    def grant(self, role: str, *, by: str) -> None:
        """Grant a role (no event if already held)."""
        value = parse_enum(Role, role, "role").value
        if value not in self.roles:
            self.trigger_event(self.RoleGranted, role=value, by=by)

    def revoke(self, role: str, *, by: str) -> None:
        """Revoke a role; refuses to leave a member with no role at all."""
        value = parse_enum(Role, role, "role").value
        if value not in self.roles:
            raise InvalidValue(f"{self.handle} does not hold the {value} role")
        if len(self.roles) == 1:
            raise InvalidValue(f"{self.handle} would be left without any role; grant another role first")
        self.trigger_event(self.RoleRevoked, role=value, by=by)

    def complete_training(self, course: str, *, on: date, by: str) -> None:
        """Record that the member completed a training course on a given day."""
        self.trigger_event(
            self.TrainingCompleted,
            course=clean_text(course, "course name", max_len=200),
            completed_on=on.isoformat(),
            by=by,
        )
