"""Endpoints: IP and FM loudspeakers, e-boards and portals. Only state transitions are events, never heartbeats.

Equipment lifecycle (plan 1.1-2.2): a fault, a repair, an FM -> IP conversion, a decommissioning and a portal going
live are recorded with the day they happened (`on`, ISO date; None on events of a device's own status report and on
events stored before version 2: the day is then the event's time) and what they cost (`cost_vnd`, whole đồng, or None).
People record them through `record_lifecycle`, which applies the authority rule (`require_equipment_authority`: an
admin whose scope covers the endpoint's ward) and the dates rule: a day is a real calendar day, not before the
installation nor before the day of the endpoint's previous recorded lifecycle event, and not after today.

MQTT credentials (docs/broker.md): issuing or rotating a device's broker password is recorded as `CredentialsIssued`
(who, and whether it replaced earlier ones), under the same authority rule; the password's hash never enters the log.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from eventsourcing.domain import Aggregate

from keng.domain.actor import Actor
from keng.domain.area import check_code, check_coordinates, day_start
from keng.domain.display import check_capabilities
from keng.domain.errors import IllegalTransition, InvalidValue
from keng.domain.ids import endpoint_id
from keng.domain.values import Condition, EndpointKind, Role, clean_text, clean_url, parse_enum

# The most one lifecycle event may cost: a thousand billion đồng, far above any device, low enough to stay exact as a
# JSON number and a 64-bit integer.
MAX_COST_VND = 10**12
EARLIEST_DAY = date(1900, 1, 1)
LIFECYCLE_ACTIONS = ("fault", "repair", "convert", "decommission", "portal-live")
MQTT_KINDS = (EndpointKind.IP_SPEAKER.value, EndpointKind.EBOARD.value)  # the kinds that speak device protocol v1


def check_cost(value: object, what: str = "cost_vnd") -> int | None:
    """A cost in whole đồng: a non-negative integer up to MAX_COST_VND, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"{what} must be a whole number of đồng, got {value!r}")
    if not 0 <= value <= MAX_COST_VND:
        raise InvalidValue(f"{what} must be between 0 and {MAX_COST_VND} đồng, got {value}")
    return value


def require_equipment_authority(actor: Actor, endpoint: Endpoint, action: str) -> None:
    """Recording equipment events needs the admin role and a scope that covers the endpoint's ward (or district): the
    endpoint's place does not change with these events, so its current scope is also its new one."""
    actor.require_role(Role.ADMIN, action)
    actor.require_scope([endpoint.ward], action)


class _Lifecycle:
    """Upcaster shared by the lifecycle events: version 1 had no day and no cost."""

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["on"] = None
        state["cost_vnd"] = None


class Endpoint(Aggregate):
    """One device (or web target) in a ward or residential group."""

    class Registered(Aggregate.Created):
        code: str
        kind: str
        ward: str
        group: str | None
        technology: str
        installed_on: str | None
        condition: str
        lat: float | None
        lon: float | None
        capabilities: list[str]
        generated: bool
        by: str

    class CameOnline(Aggregate.Event):
        def apply(self, aggregate: Any) -> None:
            aggregate.online = True

    class WentOffline(Aggregate.Event):
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.online = False

    class FaultReported(Aggregate.Event):
        class_version = 2
        fault: str
        severity: str
        by: str
        on: str | None
        cost_vnd: int | None
        upcast_v1_v2 = _Lifecycle.upcast_v1_v2

        def apply(self, aggregate: Any) -> None:
            aggregate.condition = self.severity
            aggregate.fault = self.fault
            aggregate.note_day(self.on)

    class Repaired(Aggregate.Event):
        class_version = 2
        by: str
        on: str | None
        cost_vnd: int | None
        note: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            _Lifecycle.upcast_v1_v2(state)
            state["note"] = None

        def apply(self, aggregate: Any) -> None:
            aggregate.condition = Condition.GOOD.value
            aggregate.fault = None
            aggregate.note_day(self.on)

    class ConvertedToIP(Aggregate.Event):
        class_version = 2
        technology: str
        by: str
        on: str | None
        cost_vnd: int | None
        upcast_v1_v2 = _Lifecycle.upcast_v1_v2

        def apply(self, aggregate: Any) -> None:
            aggregate.kind = EndpointKind.IP_SPEAKER.value
            aggregate.technology = self.technology
            aggregate.converted_from_fm = True
            aggregate.note_day(self.on)

    class Decommissioned(Aggregate.Event):
        class_version = 2
        reason: str
        by: str
        on: str | None
        cost_vnd: int | None
        upcast_v1_v2 = _Lifecycle.upcast_v1_v2

        def apply(self, aggregate: Any) -> None:
            aggregate.decommissioned = True
            aggregate.online = False
            aggregate.note_day(self.on)

    class CredentialsIssued(Aggregate.Event):
        """The device's MQTT credentials were issued (`rotated`: again, replacing earlier ones) by an admin. The
        password's hash lives outside the log (adapters/mqtt/accounts.py); the event records only who and when."""

        by: str
        rotated: bool

        def apply(self, aggregate: Any) -> None:
            aggregate.credentials_issued += 1

    class PortalWentLive(Aggregate.Event):
        """A ward or district portal started publishing (plan 1.2); `url` is its public address when given."""

        url: str | None
        by: str
        on: str | None
        cost_vnd: int | None

        def apply(self, aggregate: Any) -> None:
            aggregate.live_since = self.on or self.timestamp.date().isoformat()
            aggregate.note_day(self.on)

    class Reassigned(Aggregate.Event):
        """The endpoint now belongs to another ward (and residential group): a reorganisation of areas moved it,
        on `effective`, by an explicit assignment or by its coordinates (`how` says which)."""

        ward: str
        group: str | None
        effective: str
        how: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.ward = self.ward
            aggregate.group = self.group
            aggregate.placements.append((self.effective, self.ward, self.group))

    def __init__(
        self,
        code: str,
        kind: str,
        ward: str,
        group: str | None,
        technology: str,
        installed_on: str | None,
        condition: str,
        lat: float | None,
        lon: float | None,
        capabilities: list[str],
        generated: bool,
        by: str,
    ) -> None:
        self.code = code
        self.kind = kind
        self.ward = ward  # the latest placement (a reassignment dated in the future included: see placement_at)
        self.group = group
        self.placements: list[tuple[str | None, str, str | None]] = [(None, ward, group)]  # (from day, ward, group)
        self.technology = technology
        self.installed_on = installed_on
        self.condition = condition
        self.lat = lat
        self.lon = lon
        self.capabilities = list(capabilities)
        self.generated = generated
        self.online: bool | None = None
        self.fault: str | None = None
        self.decommissioned = False
        self.converted_from_fm = False
        self.live_since: str | None = None  # portals: the day it went live
        self.last_day: str | None = None  # the day of the latest lifecycle event that named one
        self.credentials_issued = 0  # how many times MQTT credentials were issued (the last one is valid)

    def note_day(self, on: str | None) -> None:
        """Keep the latest day a lifecycle event named (events apply in order, so the latest is the last given)."""
        if on is not None and (self.last_day is None or on > self.last_day):
            self.last_day = on

    @classmethod
    def register(
        cls,
        *,
        code: str,
        kind: str,
        ward: str,
        group: str | None,
        technology: str,
        installed_on: date | None = None,
        condition: str = "good",
        lat: float | None = None,
        lon: float | None = None,
        capabilities: list[str] | None = None,
        generated: bool = False,
        by: str,
    ) -> Endpoint:
        """Register an endpoint in a ward (and optionally a residential group). The id derives from the code."""
        code = check_code(code, "endpoint code")
        check_coordinates(lat, lon)
        return cls._create(
            cls.Registered,
            id=endpoint_id(code),
            code=code,
            kind=parse_enum(EndpointKind, kind, "endpoint kind").value,
            ward=check_code(ward, "ward code"),
            group=check_code(group, "group code") if group else None,
            technology=clean_text(technology, "technology", max_len=60),
            installed_on=installed_on.isoformat() if installed_on else None,
            condition=parse_enum(Condition, condition, "condition").value,
            lat=lat,
            lon=lon,
            capabilities=check_capabilities(capabilities or []),
            generated=generated,
            by=by,
        )

    def reassign(self, *, ward: str, group: str | None, effective: str, how: str, by: str) -> None:
        """Place the endpoint in the ward and group in force from `effective` (the caller checked both exist then).
        Recorded even when the codes read the same: a reused code (00613 Minh Khai -> 00613 Tây Tựu) names a new
        unit, and the event says the endpoint now belongs to it."""
        ward = check_code(ward, "ward code")
        group = check_code(group, "group code") if group else None
        self.trigger_event(self.Reassigned, ward=ward, group=group, effective=effective, how=how, by=by)

    def placement_at(self, at: datetime) -> tuple[str, str | None]:
        """The ward and residential group the endpoint belongs to at the instant `at`: a reassignment recorded ahead
        of a reorganisation's date takes effect at 00:00 Vietnam time that day."""
        ward, group = self.placements[0][1], self.placements[0][2]
        for day, w, g in self.placements[1:]:
            if day is None or day_start(day) <= at:
                ward, group = w, g
        return ward, group

    @property
    def commandable(self) -> bool:
        """FM receivers cannot be addressed over IP; decommissioned endpoints receive nothing."""
        return self.kind != EndpointKind.FM_SPEAKER.value and not self.decommissioned

    def _require_live(self, action: str) -> None:
        if self.decommissioned:
            raise IllegalTransition(f"rule decommissioned-is-final: endpoint {self.code} cannot {action}")

    def came_online(self) -> bool:
        """Record a transition to online. Returns False (and records nothing) if it was already online."""
        self._require_live("come online")
        if self.online is True:
            return False
        self.trigger_event(self.CameOnline)
        return True

    def went_offline(self, reason: str = "last-will") -> bool:
        """Record a transition to offline. Returns False (and records nothing) if it was already offline."""
        if self.online is False or self.decommissioned:
            return False
        self.trigger_event(self.WentOffline, reason=clean_text(reason, "reason", max_len=200))
        return True

    def report_fault(
        self,
        fault: str,
        *,
        severity: str = "broken",
        by: str,
        on: date | None = None,
        cost_vnd: int | None = None,
        today: date | None = None,
    ) -> None:
        """Record a fault; severity is `degraded` or `broken`."""
        self._require_live("report a fault")
        sev = parse_enum(Condition, severity, "fault severity")
        if sev is Condition.GOOD:
            raise InvalidValue("a fault's severity is degraded or broken, not good")
        text = clean_text(fault, "fault", max_len=500)
        day, cost = self._day(on, today), check_cost(cost_vnd)
        self.trigger_event(self.FaultReported, fault=text, severity=sev.value, by=by, on=day, cost_vnd=cost)

    def repair(
        self,
        *,
        by: str,
        on: date | None = None,
        cost_vnd: int | None = None,
        note: str | None = None,
        today: date | None = None,
    ) -> None:
        """Record a repair; only a faulty endpoint can be repaired."""
        self._require_live("be repaired")
        if self.condition == Condition.GOOD.value:
            raise IllegalTransition(f"rule repair-needs-fault: endpoint {self.code} has no fault to repair")
        text = (clean_text(note, "note", max_len=500, required=False) or None) if note else None
        day, cost = self._day(on, today), check_cost(cost_vnd)
        self.trigger_event(self.Repaired, by=by, on=day, cost_vnd=cost, note=text)

    def convert_to_ip(
        self,
        *,
        technology: str,
        by: str,
        on: date | None = None,
        cost_vnd: int | None = None,
        today: date | None = None,
    ) -> None:
        """Record the conversion of an FM receiver to an IP loudspeaker (the plan's FM->IP roadmap)."""
        self._require_live("be converted")
        if self.kind != EndpointKind.FM_SPEAKER.value:
            raise IllegalTransition(f"rule only-fm-converts: endpoint {self.code} is {self.kind}, not fm-speaker")
        tech = clean_text(technology, "technology", max_len=60)
        day, cost = self._day(on, today), check_cost(cost_vnd)
        self.trigger_event(self.ConvertedToIP, technology=tech, by=by, on=day, cost_vnd=cost)

    def decommission(
        self, reason: str, *, by: str, on: date | None = None, cost_vnd: int | None = None, today: date | None = None
    ) -> None:
        """Take the endpoint out of service for good."""
        self._require_live("be decommissioned")
        text = clean_text(reason, "reason", max_len=500)
        day, cost = self._day(on, today), check_cost(cost_vnd)
        self.trigger_event(self.Decommissioned, reason=text, by=by, on=day, cost_vnd=cost)

    def go_live(
        self,
        *,
        by: str,
        url: str | None = None,
        on: date | None = None,
        cost_vnd: int | None = None,
        today: date | None = None,
    ) -> None:
        """Record that a portal went live (once: a portal that stops working has a fault, and is repaired)."""
        self._require_live("go live")
        if self.kind != EndpointKind.PORTAL.value:
            raise IllegalTransition(f"rule only-portals-go-live: endpoint {self.code} is {self.kind}, not portal")
        if self.live_since is not None:
            raise IllegalTransition(f"rule portal-live-once: portal {self.code} is live since {self.live_since}")
        address = clean_url(url, "url") if url else None
        day, cost = self._day(on, today), check_cost(cost_vnd)
        self.trigger_event(self.PortalWentLive, url=address, by=by, on=day, cost_vnd=cost)

    @property
    def connects_to_broker(self) -> bool:
        """Whether the device itself speaks the device protocol over MQTT (IP loudspeakers and e-boards)."""
        return self.kind in MQTT_KINDS

    def issue_credentials(self, *, actor: Actor) -> bool:
        """Record that MQTT credentials are issued for this device (the first time, or again: a rotation) by an admin
        whose scope covers it; returns True for a rotation. Decommissioned devices and kinds that do not connect to
        the broker (FM receivers, portals) get none."""
        require_equipment_authority(actor, self, f"issue MQTT credentials for endpoint {self.code}")
        self._require_live("get MQTT credentials")
        if not self.connects_to_broker:
            raise IllegalTransition(
                f"rule mqtt-devices-only: endpoint {self.code} is {self.kind}; only "
                f"{' and '.join(MQTT_KINDS)} endpoints connect to the broker"
            )
        rotated = self.credentials_issued > 0
        self.trigger_event(self.CredentialsIssued, by=actor.handle, rotated=rotated)
        return rotated

    def record_lifecycle(
        self,
        action: str,
        *,
        actor: Actor,
        on: date,
        today: date,
        cost_vnd: int | None = None,
        detail: str = "",
        severity: str = "broken",
    ) -> None:
        """A person records one lifecycle event (`LIFECYCLE_ACTIONS`), dated `on`, as of `today`. `detail` is the
        fault (fault), a note (repair), the new technology (convert), the reason (decommission) or the portal's
        address (portal-live)."""
        if action not in LIFECYCLE_ACTIONS:
            raise InvalidValue(f"equipment action {action!r} is not one of {', '.join(LIFECYCLE_ACTIONS)}")
        what = f"record a {action} of endpoint {self.code}"
        require_equipment_authority(actor, self, what)
        by = actor.handle
        if action == "fault":
            self.report_fault(detail, severity=severity, by=by, on=on, cost_vnd=cost_vnd, today=today)
        elif action == "repair":
            self.repair(by=by, note=detail or None, on=on, cost_vnd=cost_vnd, today=today)
        elif action == "convert":
            self.convert_to_ip(technology=detail, by=by, on=on, cost_vnd=cost_vnd, today=today)
        elif action == "decommission":
            self.decommission(detail, by=by, on=on, cost_vnd=cost_vnd, today=today)
        else:
            self.go_live(by=by, url=detail or None, on=on, cost_vnd=cost_vnd, today=today)

    def _day(self, on: date | None, today: date | None) -> str | None:
        """The ISO day of a lifecycle event, checked (see the module docstring); None when not given."""
        if on is None:
            return None
        if isinstance(on, datetime) or not isinstance(on, date):
            raise InvalidValue(f"on must be a calendar day (YYYY-MM-DD), got {on!r}")
        day = on.isoformat()
        if on < EARLIEST_DAY:
            raise InvalidValue(f"on {day} is before {EARLIEST_DAY.isoformat()}")
        if today is not None and on > today:
            raise InvalidValue(f"on {day} is in the future (today is {today.isoformat()})")
        if self.installed_on and day < self.installed_on:
            raise InvalidValue(f"on {day} is before endpoint {self.code} was installed ({self.installed_on})")
        if self.last_day and day < self.last_day:
            raise InvalidValue(
                f"on {day} is before the endpoint's previous recorded event ({self.last_day}): record events in order"
            )
        return day
