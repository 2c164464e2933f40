"""Areas as dated facts: the registry answers by instant; codes reused by the 2025 reform name different units."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keng.adapters.store.app import Keng
from keng.domain.area import Area, day_start
from keng.domain.area_registry import AreaRegistry
from keng.domain.errors import AreaEnded, InvalidValue, UnknownArea
from keng.projections.catalog import Catalog
from tests.reorg import AFTER, BEFORE, REFORM, build_before, build_reformed

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def app() -> Keng:
    return Keng(clock=lambda: NOW)  # in memory: the real mapper and transcoder


def test_the_same_code_names_different_units_before_and_after_the_reform(app: Keng) -> None:
    build_reformed(app)
    registry = app.area_registry()
    assert registry.at(BEFORE).get("00613").name == "Phường Minh Khai"  # type: ignore[union-attr]
    assert registry.at(AFTER).get("00613").name == "Phường Tây Tựu"  # type: ignore[union-attr]
    assert registry.unit_at("00613", BEFORE) is not registry.unit_at("00613", AFTER)
    assert [v.name for v in registry.history("00613")] == ["Phường Minh Khai", "Phường Tây Tựu"]
    assert app.area("00613").name == "Phường Tây Tựu"
    assert app.area("00613", at=BEFORE).name == "Phường Minh Khai"
    before, after = registry.at(BEFORE), registry.at(AFTER)
    assert sorted(a.code for a in before.of_level("ward")) == ["00595", "00598", "00613"]
    assert sorted(a.code for a in after.of_level("ward")) == ["00598", "00602", "00613"]
    assert "021" in before and "021" not in after
    assert before.chain("00613-T02") == ["00613-T02", "00613", "021", "01"]
    assert after.chain("00613-T02") == ["00613-T02", "00602", "01"]
    assert after.ward_of("00595-T01") == "00598"


def test_a_code_written_before_the_reform_means_its_ground_today(app: Keng) -> None:
    build_reformed(app)
    registry = app.area_registry()
    divided = registry.resolve("00613", said_at=BEFORE, now=NOW)  # Minh Khai: its groups, now in two wards
    assert divided.codes == ("00613-T01", "00613-T02")
    assert "divided on 2025-07-01" in divided.note and "00602" in divided.note
    merged = registry.resolve("00595", said_at=BEFORE, now=NOW)
    assert merged.codes == ("00595-T01",) and "merged" in merged.note
    district = registry.resolve("021", said_at=BEFORE, now=NOW)  # every group of the old district
    assert district.codes == ("00595-T01", "00598-T01", "00613-T01", "00613-T02")
    current = registry.resolve("00613", said_at=NOW, now=NOW)
    assert current.codes == ("00613",) and current.note == ""


def test_a_code_whose_unit_had_ended_is_refused_naming_its_successors(app: Keng) -> None:
    build_reformed(app)
    registry = app.area_registry()
    with pytest.raises(AreaEnded) as ended:
        registry.resolve("021", said_at=AFTER, now=NOW)
    assert ended.value.successors == ("00598", "00602", "00613")
    assert "dissolved on 2025-07-01" in str(ended.value) and "Phường Đông Ngạc" in str(ended.value)
    with pytest.raises(AreaEnded, match="00598 \\(Phường Thượng Cát\\)"):
        app.area("00595")
    with pytest.raises(UnknownArea, match="no area with code '99999'"):
        app.area("99999")
    with pytest.raises(UnknownArea, match="in force only from 2025-07-01"):
        registry.resolve("00602", said_at=BEFORE, now=NOW)


def test_moves_and_carried_scopes_are_current_state(app: Keng) -> None:
    build_reformed(app)
    assert app.endpoint("00613-T02-IP1").ward == "00602"
    assert app.endpoint("00595-T01-IP1").ward == "00598"
    assert app.staff("ward.staff").wards == ["00602", "00613"]
    assert app.staff("district.staff").wards == []
    group = app.area("00613-T02")
    assert [(p.start, p.end, p.parent) for p in group.periods] == [(None, REFORM, "00613"), (REFORM, None, "00602")]


def test_replaying_the_log_gives_the_same_structure(app: Keng) -> None:
    build_reformed(app)
    catalog = Catalog().fold(app.read_events())
    replayed = AreaRegistry(catalog.of_type(Area))
    stored = app.area_registry()
    for instant in (BEFORE, AFTER, NOW):
        assert [(a.code, a.name, a.parent, a.valid_from, a.valid_to) for a in replayed.at(instant)] == [
            (a.code, a.name, a.parent, a.valid_from, a.valid_to) for a in stored.at(instant)
        ]


def test_dated_changes_are_checked(app: Keng) -> None:
    old = build_before(app)
    ward = old["wards"]["00613"]
    ward.rename("Phường Minh Khai Mới", effective="2024-01-01", by="system")
    with pytest.raises(InvalidValue, match="latest change already took effect on 2024-01-01"):
        ward.rename("Phường X", effective="2023-01-01", by="system")
    with pytest.raises(InvalidValue, match="not a calendar day"):
        ward.rename("Phường X", effective="2025-02-30", by="system")
    ward.end("dissolved", successors=[], effective=REFORM, by="system")
    with pytest.raises(InvalidValue, match="ended on 2025-07-01"):
        ward.recode("00999", effective="2026-01-01", by="system")
    with pytest.raises(InvalidValue, match="exactly one successor"):
        old["wards"]["00595"].end("merged", successors=["00598", "00613"], effective=REFORM, by="system")
    with pytest.raises(InvalidValue, match="at least two successors"):
        old["wards"]["00595"].end("divided", successors=["00598"], effective=REFORM, by="system")
    periods = [(p.start, p.end, p.name) for p in ward.periods]
    assert periods == [(None, "2024-01-01", "Phường Minh Khai"), ("2024-01-01", REFORM, "Phường Minh Khai Mới")]


def test_a_future_dated_change_applies_at_its_date(app: Keng) -> None:
    old = build_before(app)
    ward = old["wards"]["00595"]
    ward.rename("Phường Thượng Cát Mới", effective="2027-01-01", by="system")
    app.save_changes(ward)
    registry = app.area_registry()
    assert registry.at(NOW).get("00595").name == "Phường Thượng Cát"  # type: ignore[union-attr]
    assert registry.at(day_start("2027-01-01")).get("00595").name == "Phường Thượng Cát Mới"  # type: ignore[union-attr]


@given(st.dates(min_value=datetime(2000, 1, 1).date(), max_value=datetime(2040, 1, 1).date()))
def test_every_instant_has_each_code_at_most_once_and_units_have_parents_in_force(day: object) -> None:
    app = Keng(clock=lambda: NOW)
    build_reformed(app)
    structure = app.area_registry().at(day_start(str(day)))
    for a in structure:
        assert a.parent is None or a.parent in structure, (a.code, a.parent)
    wards = structure.of_level("ward")
    assert len(wards) == 3
