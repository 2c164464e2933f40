"""Equipment lifecycle: faults, repairs, FM -> IP conversions, decommissionings and portals going live, with days and
costs, recorded by an admin whose scope covers the endpoint; and how they move the roadmap and the plan targets."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keng.domain.area import Area
from keng.domain.endpoint import MAX_COST_VND, Endpoint, check_cost
from keng.domain.errors import IllegalTransition, InvalidValue, NotAuthorised, OutOfScope
from keng.projections import kpi, roadmap
from keng.projections.facts import Fact
from keng.projections.fold import Doc, Row, fold
from tests.unit.helpers import staff

TODAY = date(2025, 6, 30)
ADMIN = staff("admin", "admin")


def fm(code: str, installed: str, condition: str = "good", ward: str = "00595", group: str = "00595-T01") -> Endpoint:
    return Endpoint.register(code=code, kind="fm-speaker", ward=ward, group=group, technology="fm-wireless",
                             installed_on=date.fromisoformat(installed), condition=condition, by="s")  # fmt: skip


def portal(code: str = "00595-WEB", ward: str = "00595") -> Endpoint:
    return Endpoint.register(code=code, kind="portal", ward=ward, group=None, technology="https",
                             installed_on=date(2021, 1, 1), by="s")  # fmt: skip


def record(e: Endpoint, action: str, on: str, cost: int | None = None, detail: str = "", **kw: Any) -> None:
    e.record_lifecycle(action, actor=kw.pop("actor", ADMIN), on=date.fromisoformat(on), today=TODAY, cost_vnd=cost,
                       detail=detail, **kw)  # fmt: skip


# -- the domain ------------------------------------------------------------------------------------------------------


def test_each_lifecycle_event_carries_its_day_and_cost() -> None:
    e = fm("FM1", "2014-03-01")
    record(e, "fault", "2024-01-02", 0, "mất tín hiệu", severity="degraded")
    record(e, "repair", "2024-02-01", 1_500_000, "thay bộ thu")
    record(e, "convert", "2024-03-01", 12_000_000, "ip-4g")
    record(e, "decommission", "2025-01-01", 200_000, "thanh lý")
    events = e.collect_events()[1:]
    assert [(type(ev).__name__, ev.on, ev.cost_vnd, ev.by) for ev in events] == [  # type: ignore[attr-defined]
        ("FaultReported", "2024-01-02", 0, "admin"),
        ("Repaired", "2024-02-01", 1_500_000, "admin"),
        ("ConvertedToIP", "2024-03-01", 12_000_000, "admin"),
        ("Decommissioned", "2025-01-01", 200_000, "admin"),
    ]
    assert e.kind == "ip-speaker" and e.decommissioned and e.converted_from_fm and e.condition == "good"


def test_a_portal_goes_live_once_and_only_a_portal() -> None:
    p = portal()
    record(p, "portal-live", "2025-03-01", 5_000_000, "https://thuongcat.bactuliem.hanoi.gov.vn")
    assert p.live_since == "2025-03-01"
    with pytest.raises(IllegalTransition, match="portal-live-once"):
        record(p, "portal-live", "2025-03-02")
    with pytest.raises(IllegalTransition, match="only-portals-go-live"):
        record(fm("FM1", "2014-03-01"), "portal-live", "2025-03-02")
    with pytest.raises(InvalidValue, match="url"):
        record(portal("P2"), "portal-live", "2025-03-02", detail="javascript:alert(1)")


@pytest.mark.parametrize(
    ("on", "message"),
    [
        ("2025-07-01", "in the future"),
        ("2013-12-31", "before endpoint FM1 was installed"),
        ("1899-12-31", "before 1900-01-01"),
    ],
)
def test_days_are_real_and_in_order(on: str, message: str) -> None:
    e = fm("FM1", "2014-03-01", "broken")
    with pytest.raises(InvalidValue, match=message):
        record(e, "repair", on)
    record(e, "fault", "2024-05-01", detail="hỏng loa")
    with pytest.raises(InvalidValue, match="before the endpoint's previous recorded event"):
        record(e, "repair", "2024-04-30")
    assert [type(ev).__name__ for ev in e.collect_events()] == ["Registered", "FaultReported"]


@given(st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=5), st.none()))
def test_a_cost_is_a_whole_number_of_dong_within_bounds(value: Any) -> None:
    ok = value is None or (type(value) is int and 0 <= value <= MAX_COST_VND)
    if ok:
        assert check_cost(value) == value
    else:
        with pytest.raises(InvalidValue, match="cost_vnd"):
            check_cost(value)


def test_only_an_admin_whose_scope_covers_the_ward_records() -> None:
    e = fm("FM1", "2014-03-01")
    with pytest.raises(NotAuthorised, match="admin"):
        record(e, "convert", "2024-03-01", detail="ip-4g", actor=staff("lan", "drafter", "approver"))
    with pytest.raises(OutOfScope, match="00595"):
        record(e, "convert", "2024-03-01", detail="ip-4g", actor=staff("xuan", "admin", wards=["00598"]))
    record(e, "convert", "2024-03-01", detail="ip-4g", actor=staff("yen", "admin", wards=["00595"]))
    assert e.kind == "ip-speaker"


def test_unknown_actions_and_final_states_are_refused() -> None:
    e = fm("FM1", "2014-03-01")
    with pytest.raises(InvalidValue, match="not one of"):
        record(e, "explode", "2024-03-01")
    record(e, "decommission", "2024-03-01", detail="hết khấu hao")
    with pytest.raises(IllegalTransition, match="decommissioned-is-final"):
        record(e, "convert", "2024-03-02", detail="ip-4g")


# -- read models -----------------------------------------------------------------------------------------------------


class MemDocs:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], Doc] = {}
        self.rows: list[Row] = []

    def get(self, kind: str, key: str) -> Doc | None:
        return self.docs.get((kind, key))

    def put(self, kind: str, key: str, doc: Doc) -> None:
        self.docs[(kind, key)] = doc

    def note(self, row: Row) -> None:
        self.rows.append(row)

    def kind(self, kind: str) -> list[Doc]:
        return [d for (k, _), d in self.docs.items() if k == kind]


def folded(*aggregates: Any) -> MemDocs:
    docs, position = MemDocs(), 0
    for agg in aggregates:
        for event in agg.collect_events():
            position += 1
            fold(Fact.of_event(position, event), docs)
    return docs


def district(*endpoints: Endpoint) -> MemDocs:
    root = Area.register(code="021", name="Quận Bắc Từ Liêm", level="district", parent=None, by="s")
    ward = Area.register(code="00595", name="Phường Thượng Cát", level="ward", parent=root, by="s")
    group = Area.register(code="00595-T01", name="Tổ 1", level="group", parent=ward, by="s")
    return folded(root, ward, group, *endpoints)


def test_the_roadmap_takes_broken_and_degraded_stations_first_then_those_past_five_years() -> None:
    stations = [
        fm("NEW-GOOD", "2020-05-01"),
        fm("OLD-GOOD", "2012-05-01"),
        fm("NEW-DEGRADED", "2021-05-01", "degraded"),
        fm("NEW-BROKEN", "2022-05-01", "broken"),
        fm("OLD-DEGRADED", "2011-05-01", "degraded"),
        fm("BORDER", "2019-01-01"),  # exactly 5 years before the plan's first year: past its depreciation
        fm("YOUNG", "2019-01-02"),
        fm("GONE", "2010-01-01", "broken"),
    ]
    record(stations[-1], "decommission", "2023-01-01", detail="thanh lý")
    plan = roadmap.plan(district(*stations).kind("endpoint"), 2024, 2026)
    order = [code for year in plan["years"] for code in year["stations"]]
    assert order == ["NEW-BROKEN", "OLD-DEGRADED", "NEW-DEGRADED", "OLD-GOOD", "BORDER", "YOUNG", "NEW-GOOD"]
    assert plan["total_fm"] == 7 and [y["planned"] for y in plan["years"]] == [3, 3, 1]


def test_a_repair_moves_a_pending_station_back_and_conversions_count_per_year_of_their_day() -> None:
    a, b, c, d = (fm(f"FM{i}", f"201{i}-01-01") for i in range(4))
    record(d, "fault", "2023-06-01", detail="hỏng")
    record(d, "repair", "2023-07-01", 900_000)
    record(c, "fault", "2023-06-01", detail="hỏng", severity="broken")
    record(a, "convert", "2024-03-01", 10_000_000, "ip-4g")
    record(b, "convert", "2025-02-01", 11_000_000, "ip-4g")
    docs = district(a, b, c, d)
    plan = roadmap.plan(docs.kind("endpoint"), 2024, 2025)
    years = {y["year"]: y for y in plan["years"]}
    assert years[2024]["stations"] == ["FM2", "FM0"]  # broken first; the repaired FM3 is back among the good ones
    assert years[2024]["pending"] == ["FM2"] and years[2024]["planned_converted"] == 1
    assert (years[2024]["converted_in_year"], years[2024]["conversion_cost_vnd"]) == (1, 10_000_000)
    assert (years[2025]["converted_in_year"], years[2025]["conversion_cost_vnd"]) == (1, 11_000_000)
    assert [(y["cumulative_planned"], y["cumulative_converted"], y["behind"]) for y in plan["years"]] == [
        (2, 1, 1),
        (4, 2, 2),
    ]
    costs = {e["code"]: e["costs_vnd"] for e in docs.kind("endpoint")}
    assert costs["FM3"] == {"repair": 900_000} and costs["FM0"] == {"convert": 10_000_000}


def test_the_plan_targets_move_with_conversions_decommissionings_and_portals() -> None:
    a, b, c = fm("FM1", "2012-01-01"), fm("FM2", "2012-01-01"), fm("FM3", "2012-01-01")
    web = portal()
    record(a, "convert", "2025-01-02", 9_000_000, "ip-4g")
    record(b, "decommission", "2025-01-03", detail="thanh lý")  # leaves the plan
    docs = district(a, b, c, web)
    now = "2025-06-30T00:00:00+00:00"
    values = kpi.values(docs.get("kpi", kpi.KEY), now)  # type: ignore[arg-type]
    assert values["fm_converted"] == {"value": 50.0, "numerator": 1, "denominator": 2}
    assert values["ip_radio_wards"]["numerator"] == 1  # the converted station serves its group
    assert values["ward_portals_active"]["numerator"] == 0
    record(web, "portal-live", "2025-02-01", 4_000_000, "https://thuongcat.example.vn")
    for position, event in enumerate(web.collect_events(), start=100):
        fold(Fact.of_event(position, event), docs)
    values = kpi.values(docs.get("kpi", kpi.KEY), now)  # type: ignore[arg-type]
    assert values["ward_portals_active"] == {"value": 100.0, "numerator": 1, "denominator": 1}
    record(web, "fault", "2025-03-01", detail="máy chủ hỏng", severity="broken")
    for position, event in enumerate(web.collect_events(), start=200):
        fold(Fact.of_event(position, event), docs)
    assert kpi.values(docs.get("kpi", kpi.KEY), now)["ward_portals_active"]["numerator"] == 0  # type: ignore[arg-type]
