"""Staff roles and endpoint transitions (transitions only, never heartbeats)."""

from __future__ import annotations

import pytest

from keng.domain.endpoint import Endpoint
from keng.domain.errors import IllegalTransition, InvalidValue
from keng.domain.ids import staff_id
from tests.unit.helpers import staff


def test_staff_handle_is_case_insensitive_and_gives_the_id() -> None:
    s = staff("Lan.Nguyen", "drafter")
    assert s.handle == "lan.nguyen" and s.id == staff_id("LAN.NGUYEN")


def test_staff_with_unknown_role_is_refused() -> None:
    with pytest.raises(InvalidValue, match="unknown role 'boss'"):
        staff("x1", "boss")


def test_last_role_cannot_be_revoked() -> None:
    s = staff("lan", "drafter")
    with pytest.raises(InvalidValue, match="without any role"):
        s.revoke("drafter", by="admin")


def test_grant_is_recorded_once() -> None:
    s = staff("lan", "drafter")
    s.grant("approver", by="admin")
    s.grant("approver", by="admin")
    assert [type(e).__name__ for e in s.collect_events()] == ["Enrolled", "RoleGranted"]


def _speaker(kind: str = "ip-speaker") -> Endpoint:
    return Endpoint.register(
        code="00595-T01-IP1", kind=kind, ward="00595", group="00595-T01", technology="ip-4g", by="s"
    )


def test_endpoint_records_transitions_only() -> None:
    e = _speaker()
    assert e.came_online() is True
    assert e.came_online() is False  # a heartbeat while online records nothing
    assert e.went_offline() is True
    assert e.went_offline() is False
    names = [type(ev).__name__ for ev in e.collect_events()]
    assert names == ["Registered", "CameOnline", "WentOffline"]


def test_fault_then_repair() -> None:
    e = _speaker()
    e.report_fault("loa rè", severity="degraded", by="s")
    assert e.condition == "degraded"
    e.repair(by="s")
    assert e.condition == "good"
    with pytest.raises(IllegalTransition, match="repair-needs-fault"):
        e.repair(by="s")


def test_only_fm_speakers_convert_to_ip() -> None:
    fm = _speaker("fm-speaker")
    assert not fm.commandable
    fm.convert_to_ip(technology="ip-4g", by="s")
    assert fm.kind == "ip-speaker" and fm.commandable
    with pytest.raises(IllegalTransition, match="only-fm-converts"):
        fm.convert_to_ip(technology="ip-4g", by="s")


def test_decommissioned_is_final() -> None:
    e = _speaker()
    e.decommission("hỏng không sửa được", by="s")
    with pytest.raises(IllegalTransition, match="decommissioned-is-final"):
        e.came_online()
