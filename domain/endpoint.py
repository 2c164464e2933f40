"""Endpoints: IP and FM loudspeakers, e-boards and portals. Only state transitions are events, never heartbeats."""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.domain import Aggregate

from keng.domain.area import check_code, check_coordinates
from keng.domain.errors import IllegalTransition, InvalidValue
from keng.domain.ids import endpoint_id
from keng.domain.values import Condition, EndpointKind, clean_text, parse_enum


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
        fault: str
        severity: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.condition = self.severity
            aggregate.fault = self.fault

    class Repaired(Aggregate.Event):
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.condition = Condition.GOOD.value
            aggregate.fault = None

    class ConvertedToIP(Aggregate.Event):
        technology: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.kind = EndpointKind.IP_SPEAKER.value
            aggregate.technology = self.technology
            aggregate.converted_from_fm = True

    class Decommissioned(Aggregate.Event):
        reason: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.decommissioned = True
            aggregate.online = False

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
        self.ward = ward
        self.group = group
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
            capabilities=sorted(set(capabilities or [])),
            generated=generated,
            by=by,
        )

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

    def report_fault(self, fault: str, *, severity: str = "broken", by: str) -> None:
        """Record a fault; severity is `degraded` or `broken`."""
        self._require_live("report a fault")
        sev = parse_enum(Condition, severity, "fault severity")
        if sev is Condition.GOOD:
            raise InvalidValue("a fault's severity is degraded or broken, not good")
        self.trigger_event(self.FaultReported, fault=clean_text(fault, "fault", max_len=500), severity=sev.value, by=by)

    def repair(self, *, by: str) -> None:
        """Record a repair; only a faulty endpoint can be repaired."""
        self._require_live("be repaired")
        if self.condition == Condition.GOOD.value:
            raise IllegalTransition(f"rule repair-needs-fault: endpoint {self.code} has no fault to repair")
        self.trigger_event(self.Repaired, by=by)

    def convert_to_ip(self, *, technology: str, by: str) -> None:
        """Record the conversion of an FM receiver to an IP loudspeaker (the plan's FM->IP roadmap)."""
        self._require_live("be converted")
        if self.kind != EndpointKind.FM_SPEAKER.value:
            raise IllegalTransition(f"rule only-fm-converts: endpoint {self.code} is {self.kind}, not fm-speaker")
        self.trigger_event(self.ConvertedToIP, technology=clean_text(technology, "technology", max_len=60), by=by)

    def decommission(self, reason: str, *, by: str) -> None:
        """Take the endpoint out of service for good."""
        self._require_live("be decommissioned")
        self.trigger_event(self.Decommissioned, reason=clean_text(reason, "reason", max_len=500), by=by)
