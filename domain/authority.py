"""One authority rule for broadcasts: who may act on one, and who may read it.

Acting: every command on a broadcast (revise, submit, approve, reject, cancel, ratify; a retraction is a cancel and a
reschedule is a revision) needs the command's role and a scope that covers the broadcast's *current* scope together
with any new one. A ward-scoped person therefore acts only on broadcasts wholly inside their wards; a broadcast whose
scope names a district (or the city) belongs to staff whose scope covers it; cancelling an emergency that is on air
needs an approver; an integration changes only the broadcasts it created. `Broadcast` applies the rule through
`require_authority`; no caller checks it again.

Reading: district-wide staff and auditors read everything; a ward-scoped person reads the broadcasts that target one of
their wards, and those addressed to an area above their wards (a district-wide bulletin reaches their ward too), and
nothing else (not another ward's drafts). `Visibility` is that rule, used by the API, the stream and the CLI alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from keng.domain.actor import Actor, ExternalActor
from keng.domain.errors import EmergencyCancelRefused
from keng.domain.values import BroadcastState, Priority, Role

ON_AIR = BroadcastState.DISPATCHING


def require_authority(
    actor: Actor,
    role: Role,
    action: str,
    current: Iterable[str],
    new: Iterable[str] = (),
    *,
    drafted_by: str | None = None,
) -> None:
    """Raise NotAuthorised (or OutOfScope) unless `actor` holds `role` and their scope covers `current` and `new`;
    for an existing broadcast (`drafted_by` given), an integration must also be the one that created it."""
    actor.require_role(role, action)
    actor.require_scope(sorted(set(current) | set(new)), action)
    if drafted_by is not None and isinstance(actor, ExternalActor):
        actor.require_creator(drafted_by, "this broadcast")


def cancel_role(actor: Actor, *, state: str, priority: str, raised_by: str) -> Role:
    """The role a cancel needs: an approver for an emergency on air; otherwise a drafter or an approver. The external
    sender that raised an alert (`raised_by` is the broadcast's drafter) may always withdraw it within its scope: a
    warning centre's Cancel of its own false alarm must never wait for a person."""
    external_origin = actor.handle == raised_by and isinstance(actor, ExternalActor)
    if state == ON_AIR and priority == Priority.EMERGENCY and not external_origin:
        if not actor.has_role(Role.APPROVER):
            raise EmergencyCancelRefused(
                f"rule {EmergencyCancelRefused.rule}: {actor.handle} cannot cancel an emergency that is on air: "
                "the approver role is required"
            )
        return Role.APPROVER
    return Role.APPROVER if actor.has_role(Role.APPROVER) else Role.DRAFTER


@dataclass(frozen=True)
class Visibility:
    """Which broadcasts a person may read: everything, or those whose scope meets `codes`."""

    everything: bool
    codes: frozenset[str] = frozenset()

    def sees(self, scope: Iterable[str]) -> bool:
        """True if a broadcast with this scope (ward, district or city codes) is readable."""
        return self.everything or not self.codes.isdisjoint(scope)


EVERYTHING = Visibility(everything=True)


def visibility(*, wards: Iterable[str], roles: Iterable[str], parents: Mapping[str, str | None]) -> Visibility:
    """The reading scope of a person with these wards (none: district-wide) and roles, given each area's parent code:
    their wards and every area above them."""
    wards = list(wards)
    if not wards or Role.AUDITOR.value in roles:
        return EVERYTHING
    codes: set[str] = set()
    for code in wards:
        seen = 0
        node: str | None = code
        while node is not None and node not in codes and seen < 16:  # the tree is shallow; a cycle cannot hang us
            codes.add(node)
            node = parents.get(node)
            seen += 1
    return Visibility(everything=False, codes=frozenset(codes))
