"""services/areas.py on a real SQLite store, against the official data of the installed packages: the 2025-07-01
reorganisation planned (nothing saved), then recorded in one transaction; a divided ward's residential groups and
endpoints go by explicit assignment, else by their coordinates (the nearest successor's centre), else to the default
successor; staff scopes and integration jurisdictions are carried over; the log folded from scratch gives the same
structure on both sides of the date, and the past is not rewritten."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keng.adapters.official_units import load_official
from keng.adapters.store.app import Keng
from keng.domain.access import Integration
from keng.domain.area import Area, day_start
from keng.domain.area_registry import AreaRegistry, Structure
from keng.domain.cap import Point
from keng.domain.endpoint import Endpoint
from keng.domain.errors import InvalidValue, NotAuthorised, OutOfScope
from keng.domain.geo import distance_km
from keng.domain.ids import endpoint_id
from keng.projections.catalog import Catalog
from keng.services.access import SYSTEM, enrol_by_system
from keng.services.areas import ReorgPlan, apply_reorganisation, plan_reorganisation
from keng.services.inventory import bootstrap_admin, load_rows

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
EVE, ON = day_start("2025-06-30"), day_start("2025-07-01")
# Centres of the successors of Phường Minh Khai (00613), as the official data gives them (checked below).
THUONG_CAT, DONG_NGAC, TAY_TUU, XUAN_PHUONG = (
    (21.0866, 105.75),
    (21.075, 105.776),
    (21.0642, 105.739),
    (21.0296, 105.745),
)
PHU_DIEN = (21.0489, 105.766)


def row(
    record: str, code: str, parent: str = "", *, near: tuple[float, float] | None = None, **more: str
) -> dict[str, str]:
    located = {"lat": f"{near[0] + 0.0004}", "lon": f"{near[1] - 0.0003}"} if near else {}
    return {"record": record, "code": code, "parent": parent, **located, **more}


ROWS = [
    row("district", "021", name="Quận Bắc Từ Liêm", lat="21.07302", lon="105.770329"),
    row("ward", "00613", "021", name="Phường Minh Khai", lat="21.0609", lon="105.7474"),
    row("ward", "00619", "021", name="Phường Phú Diễn", lat="21.0517", lon="105.7632"),
    row("group", "00613-T01", "00613", near=XUAN_PHUONG, name="Tổ dân phố số 1"),
    row("group", "00613-T02", "00613", name="Tổ dân phố số 2"),  # no coordinates: the default successor
    row("group", "00613-T03", "00613", near=THUONG_CAT, name="Tổ dân phố số 3"),  # assigned to Đông Ngạc
    row("group", "00619-T01", "00619", name="Tổ dân phố số 1"),
    row("endpoint", "00613-T01-IP1", "00613-T01", kind="ip-speaker"),
    row("endpoint", "00613-T03-IP1", "00613-T03", kind="ip-speaker"),
    row("endpoint", "00613-T03-IP2", "00613-T03", kind="ip-speaker"),  # assigned to Thượng Cát: leaves its group
    row("endpoint", "00613-EB1", "00613", near=DONG_NGAC, kind="eboard", technology="led-4g"),
    row("endpoint", "00613-WEB", "00613", kind="portal", technology="https"),
    row("endpoint", "021-LED1", "021", near=PHU_DIEN, kind="eboard", technology="led-large-fiber"),
    row("endpoint", "00619-T01-IP1", "00619-T01", kind="ip-speaker"),
]
ASSIGNED = {"00613-T03": "00602", "00613-T03-IP2": "00598"}
STAFF: list[dict[str, Any]] = [
    {"handle": "lan", "name": "Nguyễn Thị Lan", "roles": ["drafter"], "wards": []},
    {"handle": "tuan", "name": "Đỗ Anh Tuấn", "roles": ["drafter"], "wards": ["00613"]},
    {"handle": "ha", "name": "Vũ Thu Hà", "roles": ["approver"], "wards": ["00619"]},
]


@pytest.fixture
def app(make_app: Callable[..., Keng]) -> Keng:
    """A small district of 2022 (on SQLite, and on PostgreSQL where a server is at hand): district 021, Minh Khai
    (divided on 2025-07-01) and Phú Diễn (merged), their groups and endpoints, staff and two integrations."""
    app = make_app(clock=lambda: NOW)
    bootstrap_admin(app)
    rows = [{"technology": "ip-4g", **r} if r["record"] == "endpoint" else r for r in ROWS]
    load_rows(app, [(f"row {i}", r) for i, r in enumerate(rows, start=1)], by=SYSTEM)
    for member in STAFF:
        enrol_by_system(app, **member)
    app.save_new(
        Integration.add(name="city", kind="city-source", jurisdiction=["021"], by="admin"),
        Integration.add(name="minh-khai", kind="portal", jurisdiction=["00613", "00619-T01"], by="admin"),
        what="integrations",
    )
    return app


def moves(plan: ReorgPlan, kind: str) -> dict[str, tuple[str, str, str | None]]:
    return {m.code: (m.to_code, m.how, m.group) for m in getattr(plan, kind)}


def shape(structure: Structure) -> dict[str, tuple[str, str, str | None]]:
    return {v.code: (v.name, v.level, v.parent) for v in structure}


def test_the_official_centres_used_here_are_the_packages() -> None:
    official = load_official()
    succession = official.succession("00613")
    assert succession is not None and succession.divided
    parts = {p.code: (p.lat, p.lon) for p in succession.successors}
    assert parts == {"00598": THUONG_CAT, "00602": DONG_NGAC, "00613": TAY_TUU, "00622": XUAN_PHUONG}
    assert [p.code for p in succession.successors if p.default] == ["00613"]


def test_groups_and_endpoints_go_by_assignment_then_coordinates_then_default(app: Keng) -> None:
    before = app.max_position()
    plan = plan_reorganisation(app, load_official(), by="admin", assignments=ASSIGNED)
    assert app.max_position() == before  # planning saves nothing
    assert moves(plan, "groups") == {
        "00613-T01": ("00622", "coordinates", None),
        "00613-T02": ("00613", "default", None),
        "00613-T03": ("00602", "assigned", None),
        "00619-T01": ("00619", "merged", None),
    }
    assert moves(plan, "endpoints") == {
        "00613-T01-IP1": ("00622", "group", "00613-T01"),
        "00613-T03-IP1": ("00602", "group", "00613-T03"),
        "00613-T03-IP2": ("00598", "assigned", None),
        "00613-EB1": ("00602", "coordinates", None),
        "00613-WEB": ("00613", "default", None),
        "021-LED1": ("00619", "coordinates", None),
        "00619-T01-IP1": ("00619", "group", "00619-T01"),
    }
    same_code = {m.code for m in plan.groups if m.from_code == m.to_code}
    assert same_code == {"00613-T02", "00619-T01"}  # the same code names the successor: a Moved event all the same
    assert [(u.code, u.how) for u in plan.divided] == [("00613", "divided")]
    assert [(u.code, u.how, [s.code for s in u.successors]) for u in plan.merged] == [("00619", "merged", ["00619"])]
    assert [u.code for u in plan.dissolved] == ["021"]
    assert [u.code for u in plan.new] == ["01", "00598", "00602", "00613", "00619", "00622"]

    apply_reorganisation(app, plan)
    assert app.max_position() == before + plan.events
    assert (app.endpoint("00613-T03-IP2").ward, app.endpoint("00613-T03-IP2").group) == ("00598", None)
    assert (app.endpoint("00613-EB1").ward, app.endpoint("021-LED1").ward) == ("00602", "00619")
    reassigned = [e for _, e in app.read_events(before) if isinstance(e, Endpoint.Reassigned)]
    assert {e.how for e in reassigned} == {"group", "assigned", "coordinates", "default"}
    assert len(reassigned) == len(plan.endpoints)  # also where the codes read the same: 00613 names Tây Tựu now
    assert all(e.effective == "2025-07-01" and e.by == "admin" for e in reassigned)
    registry = app.area_registry()
    now, eve = registry.at(NOW), registry.at(EVE)
    assert now.get("00613-T01").parent == "00622" and eve.get("00613-T01").parent == "00613"  # type: ignore[union-attr]
    assert now.get("00613").name == "Phường Tây Tựu" and eve.get("00613").name == "Phường Minh Khai"  # type: ignore[union-attr]
    assert sorted(v.code for v in now.of_level("ward")) == ["00598", "00602", "00613", "00619", "00622"]
    assert "021" not in now and now.get("00598").parent == "01"  # type: ignore[union-attr]
    assert app.area("00613", at=EVE).name == "Phường Minh Khai" and app.area("00613", at=ON).name == "Phường Tây Tựu"
    second = plan_reorganisation(app, load_official(), by="admin", assignments={})
    assert second.empty and second.aggregates == [] and "nothing to do" in second.as_text()


@pytest.mark.parametrize("district_staff", ["province", "wards"])
def test_staff_scopes_and_jurisdictions_are_carried_over(app: Keng, district_staff: str) -> None:
    plan = plan_reorganisation(app, load_official(), by=SYSTEM, district_staff=district_staff)
    wards = ("00598", "00602", "00613", "00619", "00622")
    scopes = {s.handle: (s.before, s.after) for s in plan.scopes}
    expected: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
        "tuan": (("00613",), ("00598", "00602", "00613", "00622"))
    }  # ha's 00619 is the new 00619's code
    if district_staff == "wards":
        expected |= {h: ((), wards) for h in ("admin", "lan")}
    assert scopes == expected
    jurisdictions = {j.integration: j.after for j in plan.jurisdictions}
    assert jurisdictions == {
        "city": ("01",) if district_staff == "province" else wards,
        "minh-khai": ("00598", "00602", "00613", "00619-T01", "00622"),
    }
    apply_reorganisation(app, plan)
    assert app.staff("tuan").wards == ["00598", "00602", "00613", "00622"]
    assert app.staff("lan").wards == ([] if district_staff == "province" else list(wards))
    carried = [e for _, e in app.read_events() if type(e).__name__ in ("ScopeCarriedOver", "JurisdictionCarriedOver")]
    assert len(carried) == len(plan.scopes) + len(plan.jurisdictions)
    assert all("reorganisation of 2025-07-01" in e.reason for e in carried)  # type: ignore[attr-defined]


def test_the_log_folded_from_scratch_replays_the_reorganisation_and_the_past_is_not_rewritten(
    app: Keng, make_app: Callable[..., Keng]
) -> None:
    before = shape(app.area_registry().at(EVE))
    apply_reorganisation(app, plan_reorganisation(app, load_official(), by=SYSTEM))
    folded = AreaRegistry(Catalog().fold(app.read_events()).of_type(Area))
    reopened = make_app(clock=lambda: NOW)  # another application on the same store: the aggregates from the log
    for registry in (folded, reopened.area_registry()):
        # the past is unchanged, but for the province keng lacked: registered as having always existed
        assert shape(registry.at(EVE)) == before | {"01": ("Thành phố Hà Nội", "city", None)}
        assert shape(registry.at(ON)) == shape(app.area_registry().at(ON))
        assert [v.name for v in registry.history("00613")] == ["Phường Minh Khai", "Phường Tây Tựu"]
        assert registry.at(EVE).get("00613").successors == ("00598", "00602", "00613", "00622")  # type: ignore[union-attr]


def test_a_plan_with_problems_saves_nothing_and_names_each(app: Keng) -> None:
    before = app.max_position()
    wrong = {"00613-T03": "00619", "00613-T99": "00602", "00619-T01": "00613"}
    with pytest.raises(InvalidValue) as refused:
        plan_reorganisation(app, load_official(), by="admin", assignments=wrong)
    text = str(refused.value)
    assert "00613-T03 is assigned to 00619, which is not one of its successors (00598, 00602, 00613, 00622)" in text
    assert "00619-T01 is assigned to 00613, which is not one of its successors (00619)" in text
    assert "assignments name no residential group or endpoint of an ended unit: 00613-T99" in text
    assert "nothing was recorded" in text
    with pytest.raises(NotAuthorised):
        plan_reorganisation(app, load_official(), by="lan")
    assert app.max_position() == before


def test_a_ward_scoped_admin_cannot_reorganise_beyond_their_wards(app: Keng) -> None:
    enrol_by_system(app, handle="ward.admin", name="Quản trị phường", roles=["admin"], wards=["00613"])
    before = app.max_position()
    with pytest.raises(OutOfScope, match="record a reorganisation of areas: outside their wards \\(00613\\): 00598"):
        plan_reorganisation(app, load_official(), by="ward.admin")
    plan = plan_reorganisation(app, load_official(), by="admin")  # district-wide: may record it
    plan.by = "ward.admin"  # a plan carried to someone else's hands is checked again before anything is saved
    with pytest.raises(OutOfScope):
        apply_reorganisation(app, plan)
    assert app.max_position() == before
    assert "021" in plan.touched and {"00613", "00619", "00602"} <= plan.touched


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lat=st.floats(21.02, 21.10, allow_nan=False),
    lon=st.floats(105.72, 105.80, allow_nan=False),
    assigned=st.none() | st.sampled_from(["00598", "00602", "00613", "00622"]),
)
def test_an_endpoint_goes_to_its_assignment_else_the_nearest_successor(
    app: Keng, lat: float, lon: float, assigned: str | None
) -> None:
    code = f"X{abs(hash((lat, lon, assigned))) % 10**9}"
    if not app.exists(endpoint_id(code)):
        app.save_new(Endpoint.register(code=code, kind="ip-speaker", ward="00613", group=None, technology="ip-4g",
                                       lat=lat, lon=lon, by=SYSTEM), what="endpoint")  # fmt: skip
    plan = plan_reorganisation(app, load_official(), by=SYSTEM, assignments={code: assigned} if assigned else {})
    [move] = [m for m in plan.endpoints if m.code == code]
    centres = {"00598": THUONG_CAT, "00602": DONG_NGAC, "00613": TAY_TUU, "00622": XUAN_PHUONG}
    here = Point(lat, lon)
    nearest = min(centres, key=lambda c: (distance_km(here, Point(*centres[c])), c))
    assert (move.to_code, move.how) == ((assigned, "assigned") if assigned else (nearest, "coordinates"))
    assert app.endpoint(code).ward == "00613"  # nothing saved


def test_a_province_keng_has_under_another_name_is_renamed_and_takes_the_new_wards(app: Keng) -> None:
    app.save_new(Area.register(code="01", name="Hà Nội", level="city", parent=None, by=SYSTEM), what="the city")
    plan = plan_reorganisation(app, load_official(), by=SYSTEM)
    assert [(u.code, u.before, u.after) for u in plan.renamed] == [("01", "Hà Nội", "Thành phố Hà Nội")]
    assert "01" not in {u.code for u in plan.new} and {u.parent for u in plan.new} == {"01"}
    assert "Đổi tên (renamed) (1):\n  ~ 01 Hà Nội -> Thành phố Hà Nội" in plan.as_text()
    apply_reorganisation(app, plan)
    registry = app.area_registry()
    assert registry.at(EVE).get("01").name == "Hà Nội"  # type: ignore[union-attr]
    assert registry.at(NOW).get("01").name == "Thành phố Hà Nội"  # type: ignore[union-attr]  # renamed as of today
    assert registry.at(NOW).get("00622").parent == "01"  # type: ignore[union-attr]
