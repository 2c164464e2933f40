"""Read models across the 2025 reorganisation (tests/reorg.py): area documents with their dated periods, endpoints
with dated assignments, the plan's targets, coverage and the FM -> IP roadmap on the structure of either side, the
audit timeline of a reused code, and a rebuild by replay equal to the read models folded as events came.

Hand count (tests/reorg.py; the two IP speakers of old Minh Khai, 00613-T01-IP1 and 00613-T02-IP1, broken):
- structure of 2025-06-30: wards 00595 (group 00595-T01: IP ok), 00598 (00598-T01: ok), 00613 Minh Khai (00613-T01
  and 00613-T02: both broken): 2 of 3 wards covered (66.7%); the FM station 00613-T02-FM1 and the portal 00613-WEB in
  Minh Khai;
- structure of 2025-07-01: wards 00598 Thượng Cát (00595-T01, 00598-T01: ok), 00602 Đông Ngạc (00613-T02: broken),
  00613 Tây Tựu (00613-T01: broken): 1 of 3 covered (33.3%); the FM station and the portal in Đông Ngạc.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keng.adapters.readstore.store import ReadStore
from keng.adapters.store.app import Keng
from keng.domain.access import Integration
from keng.domain.area import day_start
from keng.domain.ids import area_id, dated_area_id
from keng.projections import kpi, queries, roadmap
from keng.projections.facts import Fact, facts_of
from keng.projections.fold import FORMAT, Doc, Row, fold
from keng.projections.runner import run
from keng.projections.units import held_by
from tests.reorg import REFORM, build_before, build_reformed, reorganise
from tests.synthetic import fake_clock
from tests.unit.helpers import staff

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
OLD_DAY, NEW_DAY = "2025-06-30", REFORM
MINH_KHAI, TAY_TUU = str(area_id("00613")), str(dated_area_id("00613", REFORM))
DONG_NGAC = str(dated_area_id("00602", REFORM))


class MemDocs:
    """Folded state in a dict (what the tracked store holds, without the store)."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], Doc] = {}
        self.rows: list[Row] = []

    def get(self, kind: str, key: str) -> Doc | None:
        return self.docs.get((kind, key))

    def put(self, kind: str, key: str, doc: Doc) -> None:
        self.docs[(kind, key)] = doc

    def note(self, row: Row) -> None:
        self.rows.append(row)


def folded(app: Keng) -> MemDocs:
    docs = MemDocs()
    for fact in facts_of(app.read_events()):
        fold(fact, docs)
    return docs


def break_speakers(app: Keng, *codes: str) -> None:
    for code in codes:
        e = app.endpoint(code)
        e.report_fault("mất tín hiệu", severity="broken", by="system", on=date(2025, 8, 1), today=date(2025, 8, 1))
        app.save_changes(e)


@pytest.fixture
def app() -> Keng:
    return Keng(clock=lambda: NOW)  # in memory: the real mapper and transcoder


@pytest.fixture
def reformed(app: Keng) -> Keng:
    build_reformed(app)
    break_speakers(app, "00613-T01-IP1", "00613-T02-IP1")
    return app


@pytest.fixture
def store(reformed: Keng, tmp_path: Path) -> Iterator[ReadStore]:
    s = ReadStore.sqlite_file(tmp_path / "rm.db")
    run(reformed.read_events(0), s)
    yield s
    s.close()


# -- the folded documents --------------------------------------------------------------------------------------------


def test_area_documents_hold_the_same_periods_and_endings_as_the_domain(reformed: Keng) -> None:
    docs = folded(reformed)
    areas = reformed.areas()
    assert len(areas) == 12  # city, district, 3 old wards, 4 groups, 3 new wards
    for area in areas:
        doc = docs.get("area", str(area.id))
        assert doc is not None, area.code
        assert doc["periods"] == [asdict(p) for p in area.periods], area.code
        assert (doc["code"], doc["name"], doc["level"], doc["parent"]) == (area.code, area.name, area.level,
                                                                           area.parent)  # fmt: skip
        assert (doc["valid_from"], doc["valid_to"]) == (area.valid_from, area.valid_to)
        ending = area.ending
        assert doc["ending"] == (None if ending is None else {"how": ending.how, "effective": ending.effective,
                                 "successors": list(ending.successors), "note": ending.note})  # fmt: skip
        assert doc["successors"] == (list(ending.successors) if ending else [])
    minh_khai = docs.get("area", MINH_KHAI)
    assert minh_khai is not None and minh_khai["ending"]["how"] == "divided" and minh_khai["valid_to"] == REFORM
    assert docs.get("area", TAY_TUU)["valid_from"] == REFORM  # type: ignore[index]


def test_a_reused_code_is_indexed_by_day_and_never_confuses_the_two_units(reformed: Keng) -> None:
    docs = folded(reformed)
    index = docs.get("area-code", "00613")
    assert index == {"units": [[None, REFORM, MINH_KHAI], [REFORM, None, TAY_TUU]]}
    assert held_by(index["units"], OLD_DAY) == MINH_KHAI and held_by(index["units"], NEW_DAY) == TAY_TUU
    # Endpoints registered before the reform name Minh Khai by 00613; their reassignment names Đông Ngạc from its day.
    web = docs.get("endpoint", str(reformed.endpoint("00613-WEB").id))
    assert web is not None
    assert [(a["from"], a["ward"], a["ward_id"]) for a in web["assignments"]] == [
        (None, "00613", MINH_KHAI),
        (REFORM, "00602", DONG_NGAC),
    ]
    assert (web["ward"], web["ward_id"]) == ("00602", DONG_NGAC)
    speaker = docs.get("endpoint", str(reformed.endpoint("00613-T02-IP1").id))
    assert speaker is not None and speaker["group_id"] == str(area_id("00613-T02"))  # the group keeps its identity
    assert [a["ward_id"] for a in speaker["assignments"]] == [MINH_KHAI, DONG_NGAC]


def test_a_new_unit_with_a_reused_code_wins_even_before_the_old_holder_s_end_is_folded() -> None:
    entries = [[None, None, "old"], [REFORM, None, "new"]]  # the Established folded, the old unit's Ended not yet
    assert held_by(entries, OLD_DAY) == "old" and held_by(entries, NEW_DAY) == "new"
    assert held_by([["2026-01-01", None, "later"]], OLD_DAY) == "later"  # a clock behind the registry's
    assert held_by([[None, REFORM, "gone"]], "2026-01-01") == "gone"
    assert held_by([], OLD_DAY) is None


def test_staff_scope_carried_over_is_in_the_staff_document(reformed: Keng) -> None:
    docs = folded(reformed)
    doc = docs.get("staff", str(reformed.staff("ward.staff").id))
    assert doc is not None and doc["wards"] == ["00602", "00613"]
    assert doc["scope_changes"] == [{"effective": REFORM, "previous": ["00613"], "wards": ["00602", "00613"]}]
    district = docs.get("staff", str(reformed.staff("district.staff").id))
    assert district is not None and district["wards"] == [] and district["scope_changes"] == []


# -- the plan's targets on either side -------------------------------------------------------------------------------


def test_kpis_across_the_date_count_the_same_endpoints_on_the_units_of_either_side(store: ReadStore) -> None:
    at = NOW.isoformat()
    before = {r["kpi"]: r for r in queries.kpis(store, at, on=OLD_DAY)}
    after = {r["kpi"]: r for r in queries.kpis(store, at, on=NEW_DAY)}
    default = {r["kpi"]: r for r in queries.kpis(store, at)}
    wards = "ip_radio_wards"
    assert (before[wards]["numerator"], before[wards]["denominator"], before[wards]["value"]) == (2, 3, 66.7)
    assert (after[wards]["numerator"], after[wards]["denominator"], after[wards]["value"]) == (1, 3, 33.3)
    assert (before[wards]["structure"], before[wards]["units"]) == (OLD_DAY, "3 wards of 2025-06-30")
    assert (after[wards]["structure"], after[wards]["units"]) == (NEW_DAY, "3 wards of 2025-07-01")
    assert default[wards]["structure"] == "2026-12-01" and default[wards]["numerator"] == 1  # today: the new wards
    groups = "eboard_groups"  # no e-boards: 0 of the 4 groups, which exist on both sides
    assert (before[groups]["denominator"], after[groups]["denominator"]) == (4, 4)
    assert before[groups]["units"] == "4 groups of 2025-06-30"
    for name in ("fm_converted", "staff_trained", "large_boards_connected"):  # not counted on a structure
        assert before[name] == {**after[name], "structure": OLD_DAY, "judged_on": OLD_DAY}, name
        assert before[name]["units"] is None


def test_a_portal_counts_for_the_ward_it_belonged_to_on_the_structure_s_day(reformed: Keng) -> None:
    web = reformed.endpoint("00613-WEB")
    web.record_lifecycle("portal-live", actor=staff("admin", "admin"), on=date(2025, 3, 1), today=date(2025, 8, 1),
                         detail="https://minhkhai.example.vn")  # fmt: skip
    reformed.save_changes(web)
    docs = folded(reformed)
    doc = docs.get("kpi", kpi.KEY)
    assert doc is not None
    at = NOW.isoformat()
    old, new = kpi.structure(doc, OLD_DAY), kpi.structure(doc, NEW_DAY)
    assert kpi.values(doc, at, on=OLD_DAY)["ward_portals_active"]["numerator"] == 1
    assert kpi.values(doc, at, on=NEW_DAY)["ward_portals_active"]["numerator"] == 1
    # Which ward: Minh Khai before, Đông Ngạc after (the coverage of each side names them).
    assert old.by_id[MINH_KHAI].name == "Phường Minh Khai" and new.by_id[DONG_NGAC].name == "Phường Đông Ngạc"
    portal = doc["portals"]["00613-WEB"]
    assert portal["live"] and portal["wards"] == [[None, MINH_KHAI], [REFORM, DONG_NGAC]]


def test_trend_points_use_the_structure_of_their_quarter_s_last_day_and_the_target_is_judged_at_the_year_end(
    app: Keng, tmp_path: Path
) -> None:
    """Recorded as it happened: the old structure in May 2025, the reform recorded in June ahead of its day, the two
    Minh Khai speakers broken in August, one repaired in February 2026."""
    clock = [datetime(2025, 5, 10, 3, 0, tzinfo=UTC)]
    with fake_clock(clock):
        old = build_before(app)
        clock[0] = datetime(2025, 6, 10, 3, 0, tzinfo=UTC)
        reorganise(app, old)
        clock[0] = datetime(2025, 8, 1, 3, 0, tzinfo=UTC)
        break_speakers(app, "00613-T01-IP1", "00613-T02-IP1")
        clock[0] = datetime(2026, 2, 1, 3, 0, tzinfo=UTC)
        e = app.endpoint("00613-T01-IP1")
        e.repair(by="system", on=date(2026, 2, 1), today=date(2026, 2, 1))
        app.save_changes(e)
    s = ReadStore.sqlite_file(tmp_path / "rm.db")
    try:
        run(app.read_events(0), s)
        rows = {r["kpi"]: r for r in queries.kpis(s, NOW.isoformat())}
        wards = rows["ip_radio_wards"]
        # 2025Q2 ends on 2025-06-30: the 3 old wards, all covered; 2025Q3 on the new wards, one of 3 covered (nothing
        # was recorded in Q4 or after Q1 2026); now, 2026Q4: the repair covered Tây Tựu, 2 of 3.
        assert wards["trend"] == {"2025Q2": 100.0, "2025Q3": 33.3, "2026Q4": 66.7}
        assert (wards["judged_at"], wards["judged_on"]) == ("2025-12-31T23:59:59.999999+00:00", "2025-12-31")
        assert (wards["judged_value"], wards["met"], wards["judged_units"]) == (33.3, False, "3 wards of 2025-12-31")
        old_side = {r["kpi"]: r for r in queries.kpis(s, NOW.isoformat(), on=OLD_DAY)}["ip_radio_wards"]
        # The 2025 target on the units of the plan (2025-06-30): 2 of 3 old wards at the end of 2025.
        assert (old_side["judged_value"], old_side["judged_on"], old_side["judged_units"]) == (
            66.7, OLD_DAY, "3 wards of 2025-06-30",
        )  # fmt: skip
        assert old_side["trend"] == wards["trend"]  # trend points keep their own structure
        assert old_side["value"] == 66.7  # today on the old wards: Minh Khai's T01 repaired, its T02 still broken
    finally:
        s.close()


IP_SPEAKERS = ("00595-T01-IP1", "00598-T01-IP1", "00613-T01-IP1", "00613-T02-IP1")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(broken=st.sets(st.sampled_from(IP_SPEAKERS)), day=st.dates(date(2024, 1, 1), date(2026, 12, 31)))
def test_the_ward_target_on_any_day_s_structure_agrees_with_the_registry(broken: set[str], day: date) -> None:
    """The folded counters against an independent count: the domain registry's wards and groups in force that day,
    and the endpoints' own conditions."""
    app = Keng(clock=lambda: NOW)
    build_reformed(app)
    break_speakers(app, *sorted(broken))
    doc = folded(app).get("kpi", kpi.KEY)
    assert doc is not None
    tree = app.area_registry().at(day_start(day.isoformat()))
    speakers = [app.endpoint(code) for code in IP_SPEAKERS]
    covered = 0
    for ward in tree.of_level("ward"):
        groups = [g.code for g in tree.children(ward.code) if g.level == "group"]
        covered += bool(groups) and all(any(e.group == g and e.condition != "broken" for e in speakers) for g in groups)
    value = kpi.values(doc, NOW.isoformat(), on=day.isoformat())["ip_radio_wards"]
    assert (value["numerator"], value["denominator"]) == (covered, len(tree.of_level("ward")))


def wards(rows: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    return [(r["code"], r["name"], r["ip_speaker"]) for r in rows if r["level"] == "ward"]


def groups(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {r["code"]: r["ward"] for r in rows if r["level"] == "group"}


def test_coverage_lists_only_the_units_in_force_on_the_day_asked(store: ReadStore) -> None:
    old = queries.coverage(store, NOW.isoformat(), OLD_DAY)
    new = queries.coverage(store, NOW.isoformat(), NEW_DAY)
    now = queries.coverage(store, NOW.isoformat())
    assert wards(old) == [("00595", "Phường Thượng Cát", True), ("00598", "Phường Liên Mạc", True),
                          ("00613", "Phường Minh Khai", False)]  # fmt: skip
    assert wards(new) == [("00598", "Phường Thượng Cát", True), ("00602", "Phường Đông Ngạc", False),
                          ("00613", "Phường Tây Tựu", False)]  # fmt: skip
    assert wards(now) == wards(new) and {r["structure"] for r in now} == {"2026-12-01"}
    assert groups(old) == {"00595-T01": "00595", "00598-T01": "00598", "00613-T01": "00613", "00613-T02": "00613"}
    assert groups(new) == {"00595-T01": "00598", "00598-T01": "00598", "00613-T01": "00613", "00613-T02": "00602"}
    assert not any(r["code"] == "021" for r in old + new)  # districts are not listed; wards and groups are
    ip = {r["code"]: r["ip_speaker"] for r in new if r["level"] == "group"}
    assert ip == {"00595-T01": True, "00598-T01": True, "00613-T01": False, "00613-T02": False}
    # The coverage of each side agrees with the target counted on it.
    for day, rows in ((OLD_DAY, old), (NEW_DAY, new)):
        target = next(r for r in queries.kpis(store, NOW.isoformat(), on=day) if r["kpi"] == "ip_radio_wards")
        assert target["numerator"] == sum(1 for r in rows if r["level"] == "ward" and r["ip_speaker"])


def test_the_roadmap_per_ward_on_either_side(store: ReadStore) -> None:
    endpoints = list(store.load_kind("endpoint").values())
    old = roadmap.per_ward(endpoints, queries.structure(store, on=OLD_DAY), 2022, 2025)
    new = roadmap.per_ward(endpoints, queries.structure(store, on=NEW_DAY), 2022, 2025)
    assert [(r["ward"], r["total_fm"], r["pending"], r["planned_2022"]) for r in old] == [
        ("00595", 0, [], 0), ("00598", 0, [], 0), ("00613", 1, ["00613-T02-FM1"], 1),
    ]  # fmt: skip
    assert [(r["ward"], r["name"], r["total_fm"], r["pending"]) for r in new] == [
        ("00598", "Phường Thượng Cát", 0, []), ("00602", "Phường Đông Ngạc", 1, ["00613-T02-FM1"]),
        ("00613", "Phường Tây Tựu", 0, []),
    ]  # fmt: skip
    assert {r["structure"] for r in old} == {OLD_DAY} and {r["structure"] for r in new} == {NEW_DAY}
    whole = roadmap.plan(endpoints, 2022, 2025)  # the district's plan is the same on either side
    assert sum(r["total_fm"] for r in old) == sum(r["total_fm"] for r in new) == whole["total_fm"] == 1


def test_the_timeline_of_a_reused_code_shows_both_units_readably(store: ReadStore) -> None:
    rows = queries.area_timeline(store, "00613")
    assert [(r["event"], r["unit"]) for r in rows] == [
        ("Area.Registered", "00613 Phường Minh Khai"),
        ("Area.Established", "00613 Phường Tây Tựu"),
        ("Area.Ended", "00613 Phường Minh Khai"),
    ]
    assert rows[0]["detail"] == "00613 Phường Minh Khai (phường/xã, thuộc 021)"
    assert rows[1]["detail"] == "00613 Phường Tây Tựu (phường/xã, thuộc 01) từ 2025-07-01, hình thành từ 00613"
    assert rows[2]["detail"] == "chia tách từ 2025-07-01; đơn vị kế thừa: 00602, 00613"
    web = queries.timeline(store, "endpoint", "00613-WEB")
    assert [(r["event"], r["detail"]) for r in web][-1] == (
        "Endpoint.Reassigned", "sang phường 00602, tổ - từ 2025-07-01 (coordinates)",
    )  # fmt: skip
    staff_rows = [r for r in queries.timeline(store, "staff", "system") if r["event"] == "Staff.ScopeCarriedOver"]
    assert [r["detail"] for r in staff_rows] == ["phạm vi 00613 -> 00602, 00613 từ 2025-07-01"]
    assert queries.area_timeline(store, "99999") == []


def test_read_models_folded_as_events_came_equal_a_rebuild_by_replay(app: Keng, tmp_path: Path) -> None:
    live = ReadStore.sqlite_file(tmp_path / "live.db")
    old = build_before(app)
    run(app.read_events(live.position()), live, batch_size=4)
    reorganise(app, old)
    run(app.read_events(live.position()), live, batch_size=3)
    break_speakers(app, "00595-T01-IP1")
    run(app.read_events(live.position()), live, batch_size=7)
    fresh = ReadStore.sqlite_file(tmp_path / "fresh.db")
    run(app.read_events(0), fresh)
    try:
        assert live.dump() == fresh.dump()
        assert live.load("meta", "format") == {"format": FORMAT}
    finally:
        live.close()
        fresh.close()


def test_a_carried_over_integration_jurisdiction_reads_in_its_actor_s_timeline() -> None:
    integration = Integration.add(name="vn-app", kind="app", jurisdiction=["021"], by="admin")
    integration.carry_jurisdiction_over(["00598", "00602", "00613"], effective=REFORM, reason="021 dissolved",
                                        by="system")  # fmt: skip
    docs = MemDocs()
    for position, event in enumerate(integration.collect_events(), start=1):
        fold(Fact.of_event(position, event), docs)
    assert [(row[2], row[3], row[4], row[6]) for row in docs.rows][-1] == (
        "staff", "system", "Integration.JurisdictionCarriedOver", "phạm vi 021 -> 00598, 00602, 00613 từ 2025-07-01",
    )  # fmt: skip
