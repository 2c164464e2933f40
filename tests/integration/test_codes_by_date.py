"""Codes by date through the running service: CAP geocodes read as of the alert's `sent`, webhook targets as of
receipt, the area list as of any instant, on the small reorganisation of tests/reorg.py (merge, division, reused
codes, a district dissolved). SQLite and PostgreSQL; every refusal leaves the event count as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from keng.adapters.cap.ingest import ingest_cap
from keng.adapters.district_file import DistrictFileError
from keng.adapters.secrets import SecretStore
from keng.adapters.store.access import jurisdiction_codes
from keng.adapters.store.app import Keng
from keng.domain.cap_places import OutsideJurisdiction
from keng.domain.errors import AreaEnded
from keng.domain.staff import Staff
from keng.projections.catalog import Catalog
from keng.runtime.cli.errors import failure_of
from keng.runtime.config import load_settings
from keng.runtime.http.problems import problem_for
from keng.runtime.http.services import Services
from keng.runtime.http.stream_scope import StreamScope
from keng.services.access import add_integration, issue_token
from keng.services.feedback import resolve_place
from keng.services.inventory import load_rows
from tests.http_server import Client, Reply, serve
from tests.reorg import AFTER, BEFORE, build_reformed
from tests.unit.cap_builders import SENDER, alert, area, info

CAP = "/api/v1/cap"
HOOK = "/api/v1/hooks/city-source"
SENT_BEFORE = BEFORE + timedelta(hours=9)  # 2025-06-30 09:00 Vietnam time: the old structure


@pytest.fixture
def reformed(make_app: Callable[..., Keng]) -> Keng:
    app = make_app()
    build_reformed(app)
    admin = Staff.enrol(handle="admin", name="Quản trị", roles=["admin", "drafter"], wards=[], by="system")
    app.save_new(admin, what="the admin")
    return app


@pytest.fixture
def api(reformed: Keng, tmp_path: Path) -> Iterator[tuple[Client, dict[str, str], Keng]]:
    secrets = SecretStore(tmp_path)
    creds = {
        "cap": add_integration(
            reformed, secrets, name="kttv", kind="cap", jurisdiction=["01"], by="admin", senders=[SENDER]
        ),
        "city": add_integration(
            reformed, secrets, name="city-source", kind="city-source", jurisdiction=["01"], by="admin"
        ),
        "admin": issue_token(reformed, staff="admin", label="t", by="admin"),
    }
    services = Services(app=reformed, secrets=secrets, settings=load_settings(data_dir=str(tmp_path), environ={}))
    with serve(services) as client:
        yield client, creds, reformed


def cap_alert(identifier: str, codes: tuple[str, ...], sent: datetime | None = None) -> bytes:
    return alert(identifier=identifier, sent=sent, infos=(info(areas=(area("Bắc Từ Liêm", codes=codes),)),))


def post_cap(client: Client, doc: bytes, secret: str, key: str) -> Reply:
    return client.signed(CAP, doc, secret, key, content_type="application/cap+xml")


def webhook(client: Client, secret: str, key: str, areas: list[str]) -> Reply:
    body = {"title": "Thông báo", "text": "Đề nghị bà con chú ý.", "priority": "normal", "targets": {"areas": areas}}
    return client.signed(HOOK, orjson.dumps(body), secret, key)


# -- the registry and the CAP path, one code before and after ------------------------------------------------------


def test_one_code_names_two_units_and_a_cap_alert_targets_what_it_meant_when_sent(reformed: Keng) -> None:
    registry = reformed.area_registry()
    now = reformed.clock()
    assert registry.resolve("00613", said_at=now, now=now).codes == ("00613",)  # Tây Tựu, today
    assert registry.resolve("00613", said_at=SENT_BEFORE, now=now).codes == ("00613-T01", "00613-T02")  # Minh Khai
    today = ingest_cap(reformed, cap_alert("TODAY", ("00613",)), sender_jurisdiction=["01"], actor="admin")
    then = ingest_cap(reformed, cap_alert("THEN", ("00613",), SENT_BEFORE), sender_jurisdiction=["01"], actor="admin")
    tay_tuu, minh_khai = (reformed.broadcast(r.broadcast_id) for r in (today, then))  # type: ignore[arg-type]
    assert (tay_tuu.target_areas, tay_tuu.scope, today.notes) == (["00613"], ["00613"], ())
    assert minh_khai.target_areas == ["00613-T01", "00613-T02"]  # the parts of old Minh Khai, as they are now
    assert minh_khai.scope == ["00602", "00613"]  # now in Đông Ngạc and Tây Tựu
    assert len(then.notes) == 1 and then.notes[0].startswith("alert/info[1]/area[1]/geocode[1]: 00613 (Phường Minh")
    assert "divided on 2025-07-01" in then.notes[0] and "00602" in then.notes[0]


def test_a_divided_wards_parts_are_checked_against_the_senders_jurisdiction_of_today(reformed: Keng) -> None:
    position = reformed.max_position()
    with pytest.raises(OutsideJurisdiction) as refused:  # half of old Minh Khai lies in Đông Ngạc now
        ingest_cap(reformed, cap_alert("HALF", ("00613",), SENT_BEFORE), sender_jurisdiction=["00613"], actor="admin")
    assert "00613-T02" in str(refused.value) and "what 00613 named when sent" in str(refused.value)
    assert reformed.max_position() == position


def test_the_area_ended_refusal_is_one_answer_for_the_api_and_the_cli(reformed: Keng) -> None:
    with pytest.raises(AreaEnded) as caught:
        ingest_cap(reformed, cap_alert("GONE", ("021",)), sender_jurisdiction=["01"], actor="admin")
    problem = problem_for(caught.value)
    assert problem is not None and (problem.status, problem.kind) == (422, "area-ended")
    body = problem.response().body
    assert isinstance(body, bytes) and orjson.loads(body)["successors"] == ["00598", "00602", "00613"]
    failure = failure_of(caught.value)
    assert failure is not None and failure.rule == "area-ended" and failure.successors == ("00598", "00602", "00613")


# -- over HTTP ----------------------------------------------------------------------------------------------------


def test_cap_alerts_over_http_with_a_current_code_and_with_a_pre_reform_sent(api) -> None:  # type: ignore[no-untyped-def]
    client, t, app = api
    current = post_cap(client, cap_alert("KTTV-NOW", ("00613",)), t["cap"], "cap-1")
    assert current.status == 202, current.body
    assert "notes" not in current.json()
    assert app.broadcast(UUID(current.json()["broadcast_ids"][0])).target_areas == ["00613"]
    old = post_cap(client, cap_alert("KTTV-OLD", ("00613",), SENT_BEFORE), t["cap"], "cap-2")
    assert old.status == 202, old.body
    outcome = old.json()
    assert len(outcome["notes"]) == 1 and "was divided on 2025-07-01" in outcome["notes"][0]  # the answer says so
    item = app.broadcast(UUID(outcome["broadcast_ids"][0]))
    assert (item.target_areas, item.scope) == (["00613-T01", "00613-T02"], ["00602", "00613"])
    again = post_cap(client, cap_alert("KTTV-OLD", ("00613",), SENT_BEFORE), t["cap"], "cap-3")
    assert again.json() == outcome and again.headers["idempotent-replayed"] == "true"  # the notes are kept


def test_a_cap_alert_naming_a_dissolved_district_after_the_reform_is_refused_naming_its_successors(api) -> None:  # type: ignore[no-untyped-def]
    client, t, app = api
    position = app.max_position()
    reply = post_cap(client, cap_alert("KTTV-021", ("021",), AFTER + timedelta(days=30)), t["cap"], "cap-4")
    assert reply.status == 422, reply.body
    problem = reply.json()
    assert problem["type"] == "urn:keng:problem:area-ended"
    assert problem["successors"] == ["00598", "00602", "00613"]
    assert "021 (Quận Bắc Từ Liêm) was dissolved on 2025-07-01" in problem["detail"]
    assert "00602 (Phường Đông Ngạc)" in problem["detail"]
    assert app.max_position() == position  # nothing stored


def test_a_webhook_with_a_pre_reform_code_is_refused_and_a_reused_code_means_todays_unit(api) -> None:  # type: ignore[no-untyped-def]
    client, t, app = api
    position = app.max_position()
    merged = webhook(client, t["city"], "hook-1", ["00595"])  # old Thượng Cát, merged into the new 00598
    assert merged.status == 422, merged.body
    assert merged.json()["successors"] == ["00598"] and "00595" in merged.json()["detail"]
    assert app.max_position() == position
    reused = webhook(client, t["city"], "hook-2", ["00613", "00613-T02"])
    assert reused.status == 202, reused.body
    item = app.broadcast(UUID(reused.json()["broadcast_id"]))
    assert item.target_areas == ["00613", "00613-T02"] and item.scope == ["00602", "00613"]  # Tây Tựu; T02's ward


def test_the_area_list_as_of_an_instant(api) -> None:  # type: ignore[no-untyped-def]
    client, t, _ = api

    def listed(query: str = "") -> dict[str, dict[str, Any]]:
        reply = client.request("GET", f"/api/v1/areas{query}", token=t["admin"])
        assert reply.status == 200, reply.body
        return {a["code"]: a for a in reply.json()}

    now, before = listed(), listed("?at=2025-06-30T12:00:00%2B07:00")
    assert sorted(c for c, a in now.items() if a["level"] == "ward") == ["00598", "00602", "00613"]
    assert sorted(c for c, a in before.items() if a["level"] == "ward") == ["00595", "00598", "00613"]
    assert now["00613"]["name"] == "Phường Tây Tựu" and before["00613"]["name"] == "Phường Minh Khai"
    assert (now["00613"]["valid_from"], now["00613"]["valid_to"]) == ("2025-07-01", None)
    assert (before["00613"]["valid_from"], before["00613"]["valid_to"]) == (None, "2025-07-01")
    assert "021" in before and "021" not in now and now["00613-T02"]["parent"] == "00602"
    assert listed("?at=2025-07-01") == now and listed("?at=2025-06-30") == before
    for bad in ("yesterday", "2025-06-30T12:00:00", "2025-13-01", "9999-12-31T23:59:59-12:00"):
        reply = client.request("GET", f"/api/v1/areas?at={bad}", token=t["admin"])
        assert reply.status == 400 and reply.json()["type"] == "urn:keng:problem:bad-request", bad


def test_a_district_files_codes_are_todays_and_an_ended_one_is_named_with_its_successors(reformed: Keng) -> None:
    rows = [
        ("row 1", {"record": "group", "code": "00602-T09", "parent": "00602", "name": "Tổ dân phố 9"}),
        ("row 2", {"record": "endpoint", "code": "00595-T1-IP2", "parent": "00595", "kind": "ip-speaker"}),
        ("row 3", {"record": "ward", "code": "00604", "parent": "021", "name": "Phường Cổ Nhuế 2"}),
        ("row 4", {"record": "ward", "code": "00595", "parent": "01", "name": "Phường Thượng Cát"}),
    ]
    position = reformed.max_position()
    with pytest.raises(DistrictFileError) as refused:
        load_rows(reformed, rows, by="system")
    errors = str(refused.value).splitlines()[1:]
    assert [e.strip().split(":")[0] for e in errors] == ["row 2", "row 3", "row 4"]  # the new ward's group is fine
    assert "00595 (Phường Thượng Cát) was merged on 2025-07-01; use its successors: 00598" in errors[0]
    assert "021 (Quận Bắc Từ Liêm) was dissolved" in errors[1] and "00602 (Phường Đông Ngạc)" in errors[1]
    assert "'00595' is already registered, and no longer in force" in errors[2]
    assert reformed.max_position() == position
    assert load_rows(reformed, rows[:1], by="system") == {"group": 1}
    assert reformed.area("00602-T09").parent == "00602"


def test_a_feedback_place_is_read_on_todays_tree(reformed: Keng) -> None:
    registry = reformed.area_registry()
    tree = registry.in_force(reformed.clock())
    covered = jurisdiction_codes(["01"], tree)
    assert resolve_place({"group": "00613-T02"}, tree, covered, registry) == ("00602", "00613-T02")
    assert resolve_place({"ward": "00613"}, tree, covered, registry) == ("00613", None)  # Tây Tựu
    with pytest.raises(AreaEnded) as ended:
        resolve_place({"ward": "00595"}, tree, covered, registry)
    assert ended.value.successors == ("00598",)


def test_visibility_and_the_stream_follow_todays_tree(reformed: Keng) -> None:
    member = Staff.enrol(handle="dong.ngac", name="Cán bộ Đông Ngạc", roles=["drafter"], wards=["00602"], by="system")
    reformed.save_new(member, what="a ward's staff member")
    visibility = reformed.visibility_of(member)
    assert visibility.codes == {"00602", "01"}  # the ward and the city above it today (no district any more)
    moved, stayed = reformed.endpoint("00613-T02-IP1"), reformed.endpoint("00613-T01-IP1")
    for e in (moved, stayed):
        e.went_offline("power cut")
    reformed.save_changes(moved, stayed)
    scope = StreamScope(reformed, visibility)
    admitted: list[tuple[str, str]] = [
        (type(e).__name__, reformed.repository.get(e.originator_id).code)
        for _, e in reformed.read_events()
        if type(e).__qualname__.startswith("Endpoint.") and scope.admits(e)
    ]
    assert admitted == [  # registered in old Minh Khai (not theirs), reassigned into Đông Ngạc (theirs from then)
        ("Reassigned", "00613-T02-IP1"),
        ("Reassigned", "00613-T02-FM1"),
        ("Reassigned", "00613-WEB"),
        ("WentOffline", "00613-T02-IP1"),
    ]


def test_the_catalogue_lists_the_units_in_force_at_an_instant(reformed: Keng) -> None:
    catalog = Catalog().fold(reformed.read_events())
    assert [a.code for a in catalog.areas(BEFORE) if a.level == "ward"] == ["00595", "00598", "00613"]
    assert [a.name for a in catalog.areas(AFTER) if a.level == "ward"] == [
        "Phường Thượng Cát",
        "Phường Đông Ngạc",
        "Phường Tây Tựu",
    ]
    assert catalog.areas() == catalog.areas(datetime.now(UTC))
    assert catalog.area_registry() is catalog.area_registry()  # kept until an area event is folded
