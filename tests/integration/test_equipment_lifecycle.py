"""The equipment lifecycle over real HTTP, the CLI and the district file, on SQLite and PostgreSQL: faults, repairs,
FM -> IP conversions, decommissionings and portals going live move the roadmap and the plan targets, which
`keng report` and `GET /api/v1/reports/...` show alike; every refusal is a precise 4xx and stores nothing. And text
parity: a speaker-only emergency and a drill appear in the public feeds with the text that is spoken."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from keng.adapters.district_file import DistrictFileError
from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.runtime.cli import admin as cli_admin
from keng.runtime.cli import report as cli_report
from keng.runtime.config import Settings, load_settings
from keng.runtime.http.services import Services
from keng.services.access import enrol_staff, issue_token
from keng.services.inventory import load_district_file
from tests.http_server import Client, Reply, serve

Api = tuple[Client, dict[str, str], Keng, Settings]
BROKEN, DEGRADED_OLD = "00595-T18-FM1", "00595-T02-FM1"  # sample stations: broken (2016), degraded (2010)


@pytest.fixture
def api(sample_app: Keng, store_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(data_dir=str(tmp_path), store_url=store_url, environ={})
    enrol_staff(sample_app, handle="binh.admin", name="Lê Bình", roles=["admin"], wards=["00598"], by="admin")
    tokens = {
        h: issue_token(sample_app, staff=h, label="test", by="admin")
        for h in ("mai.le", "admin", "lan.nguyen", "binh.admin", "ha.vu")
    }
    services = Services(app=sample_app, secrets=SecretStore(tmp_path), settings=settings, public_url="https://k.vn")
    with serve(services) as client:
        yield client, tokens, sample_app, settings


def cli(settings: Settings, capsys: pytest.CaptureFixture[str], module: Any, *argv: str) -> Any:
    parser = argparse.ArgumentParser(prog="keng")
    module.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([*argv, "--json"])
    capsys.readouterr()
    assert args.handler(args, settings) == 0
    lines = capsys.readouterr().out.splitlines()  # unconfigured structlog (in-process) logs to stdout: skip its lines
    start = next(i for i, line in enumerate(lines) if line.startswith(("{", "[")))
    return orjson.loads("\n".join(lines[start:]))


def report(client: Client, token: str, name: str, query: str = "") -> Any:
    reply = client.request("GET", f"/api/v1/reports/{name}{query}", token=token)
    assert reply.status == 200, reply.body
    return reply.json()


def kpi_of(rows: list[dict[str, Any]], name: str) -> tuple[int, int]:
    row = next(r for r in rows if r["kpi"] == name)
    return row["numerator"], row["denominator"]


def problem(reply: Reply, status: int, fragment: str) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert fragment in reply.json()["detail"], reply.json()


def test_lifecycle_events_move_the_roadmap_and_the_targets(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    client, t, _, settings = api
    auditor = t["mai.le"]
    kpis = report(client, auditor, "kpi")
    converted, fm_total = kpi_of(kpis, "fm_converted")
    assert (converted, kpi_of(kpis, "ward_portals_active")[0]) == (0, 0)
    plan = report(client, auditor, "roadmap", "?from=2024&to=2027")
    first = plan[0]["pending"]
    assert BROKEN in first and first.index(BROKEN) < first.index(DEGRADED_OLD)  # broken, then degraded
    assert all(y["converted_in_year"] == 0 for y in plan)

    base = f"/api/v1/endpoints/{BROKEN}"
    done = client.json("POST", f"{base}/convert", {"technology": "ip-4g", "on": "2024-05-10", "cost_vnd": 12_500_000},
                       t["admin"])  # fmt: skip
    assert done.status == 200 and done.json()["kind"] == "ip-speaker", done.body
    web = client.json("POST", "/api/v1/endpoints/00595-WEB/portal-live", {"url": "https://thuongcat.vn"}, t["admin"])
    assert web.status == 200 and web.json()["live_since"] is not None
    fault = {"fault": "mất nguồn", "severity": "broken", "on": "2025-01-05"}
    assert client.json("POST", f"/api/v1/endpoints/{DEGRADED_OLD}/fault", fault, t["admin"]).status == 200
    gone = client.json("POST", f"/api/v1/endpoints/{DEGRADED_OLD}/decommission",
                       {"reason": "hết khấu hao", "on": "2025-02-01", "cost_vnd": 0}, t["admin"])  # fmt: skip
    assert gone.json()["decommissioned"] is True

    # the CLI: a repair and a conversion
    code = "00595-T03-FM1"
    cli(settings, capsys, cli_admin, "endpoint", "fault", code, "--fault", "rè", "--on", "2025-03-01", "--as", "admin")
    cli(settings, capsys, cli_admin, "endpoint", "repair", code, "--on", "2025-03-02", "--cost", "800000",
        "--as", "admin")  # fmt: skip
    view = cli(settings, capsys, cli_admin, "endpoint", "convert", code, "--technology", "ip-4g", "--on",
               "2025-04-01", "--cost", "11000000", "--as", "admin")  # fmt: skip
    assert view["kind"] == "ip-speaker" and view["condition"] == "good"

    kpis = report(client, auditor, "kpi")
    assert kpi_of(kpis, "fm_converted") == (2, fm_total - 1)  # two converted; one left the plan
    assert kpi_of(kpis, "ward_portals_active")[0] == 1
    plan = report(client, auditor, "roadmap", "?from=2024&to=2027")
    by_year = {y["year"]: y for y in plan}
    assert (by_year[2024]["converted_in_year"], by_year[2024]["conversion_cost_vnd"]) == (1, 12_500_000)
    assert (by_year[2025]["converted_in_year"], by_year[2025]["conversion_cost_vnd"]) == (1, 11_000_000)
    assert by_year[2025]["cumulative_converted"] == 2 and by_year[2024]["planned"] > 0
    assert sum(y["planned"] for y in plan) == fm_total - 1
    assert DEGRADED_OLD not in [c for y in plan for c in y["pending"]]
    assert plan == cli(settings, capsys, cli_report, "report", "roadmap", "--from", "2024", "--to", "2027",
                       "--as", "mai.le")  # fmt: skip
    assert kpis == cli(settings, capsys, cli_report, "report", "kpi", "--as", "mai.le")


@pytest.mark.parametrize(
    ("token", "path", "body", "status", "fragment"),
    [
        ("lan.nguyen", "00595-T11-FM1/convert", {"technology": "ip-4g"}, 403, "admin"),
        ("binh.admin", "00595-T11-FM1/convert", {"technology": "ip-4g"}, 403, "outside their wards"),
        ("admin", "NO-SUCH/convert", {"technology": "ip-4g"}, 404, "not found"),
        ("admin", "00595-T11-FM1/convert", {"technology": "ip-4g", "on": "2025-02-30"}, 422, "on must be a day"),
        ("admin", "00595-T11-FM1/convert", {"technology": "ip-4g", "on": "2999-01-01"}, 422, "in the future"),
        ("admin", "00595-T11-FM1/convert", {"technology": "ip-4g", "on": "2001-01-01"}, 422, "installed"),
        ("admin", "00595-T11-FM1/convert", {"technology": "ip-4g", "cost_vnd": -1}, 422, "cost_vnd"),
        ("admin", "00595-T11-FM1/convert", {"technology": "ip-4g", "cost_vnd": 1.5}, 422, "cost_vnd"),
        ("admin", "00595-T11-FM1/convert", {"technology": "ip-4g", "cost_vnd": "5"}, 422, "cost_vnd"),
        ("admin", "00595-T11-FM1/convert", {"technology": "ip-4g", "cost": 5}, 422, "unknown field"),
        ("admin", "00595-T11-FM1/convert", {}, 422, "technology is required"),
        ("admin", "00595-T11-FM1/fault", {"fault": "x", "severity": "good"}, 422, "severity"),
        ("admin", "00595-T11-FM1/repair", {}, 409, "repair-needs-fault"),
        ("admin", "00595-WEB/convert", {"technology": "ip-4g"}, 409, "only-fm-converts"),
        ("admin", "00595-T11-FM1/portal-live", {}, 409, "only-portals-go-live"),
        ("admin", "00595-WEB/portal-live", {"url": "ftp://x"}, 422, "url"),
    ],
)
def test_refusals_are_precise_and_store_nothing(
    api: Api, token: str, path: str, body: Any, status: int, fragment: str
) -> None:
    client, t, app, _ = api
    before = app.max_position()
    problem(client.json("POST", f"/api/v1/endpoints/{path}", body, t[token]), status, fragment)
    assert app.max_position() == before


def test_a_ward_admin_records_in_their_ward_and_a_wrong_media_type_is_refused(api: Api) -> None:
    client, t, _, _ = api
    ok = client.json("POST", "/api/v1/endpoints/00598-WEB/portal-live", {"on": "2025-01-01"}, t["binh.admin"])
    assert ok.status == 200 and ok.json()["live_since"] == "2025-01-01"
    reply = client.request("POST", "/api/v1/endpoints/00598-WEB/repair", b"{}", {"Content-Type": "text/plain"},
                           t["binh.admin"])  # fmt: skip
    assert reply.status == 415


def test_the_district_file_records_lifecycle_events_all_or_nothing(sample_app: Keng, tmp_path: Path) -> None:
    header = "record,code,name,parent,lat,lon,kind,technology,installed_on,condition,on,cost_vnd,detail\n"
    good = (
        header + "endpoint,00595-T01-FM9,,00595-T01,,,fm-speaker,fm-wireless,2012-01-01,good,,,\n"
        "fault,00595-T01-FM9,,,,,,,,broken,2024-01-01,,hỏng loa\n"
        "convert,00595-T01-FM9,,,,,,ip-4g,,,2024-06-01,15000000,\n"
        "convert,00595-T11-FM1,,,,,,ip-4g,,,2025-01-01,9000000,\n"
        "portal-live,00601-WEB,,,,,,,,,2024-12-01,3000000,https://xuandinh.vn\n"
    )
    bad = header + "convert,00595-T13-FM1,,,,,,ip-4g,,,2025-01-01,,\nrepair,00595-T14-FM1,,,,,,,,,2025-13-01,,\n"
    path = tmp_path / "bad.csv"
    path.write_text(bad, encoding="utf-8")
    before = sample_app.max_position()
    with pytest.raises(DistrictFileError) as refused:
        load_district_file(sample_app, path, by="admin")
    assert "line 3: on '2025-13-01' is not a date" in str(refused.value)
    assert sample_app.max_position() == before and sample_app.endpoint("00595-T13-FM1").kind == "fm-speaker"
    path = tmp_path / "good.csv"
    path.write_text(good, encoding="utf-8")
    counts = load_district_file(sample_app, path, by="admin")
    assert counts == {"endpoint": 1, "fault": 1, "convert": 2, "portal-live": 1}
    assert sample_app.endpoint("00595-T01-FM9").kind == "ip-speaker"
    assert sample_app.endpoint("00595-T11-FM1").kind == "ip-speaker"
    assert sample_app.endpoint("00601-WEB").live_since == "2024-12-01"
    json_path = tmp_path / "more.json"
    json_path.write_text(json.dumps([{"record": "decommission", "code": "00595-T01-FM9", "parent": "00595"}]))
    with pytest.raises(DistrictFileError, match="does not take parent"):
        load_district_file(sample_app, json_path, by="admin")


def test_a_speaker_only_emergency_and_a_drill_are_published_as_spoken(api: Api) -> None:
    client, t, _, _ = api
    emergency = {"title": "Cảnh báo lũ", "text": "Nước sông Hồng lên nhanh, sơ tán ngay.", "priority": "emergency",
                 "targets": {"areas": ["00595"]}, "channels": ["speaker"]}  # fmt: skip
    drill = {**emergency, "title": "Diễn tập", "text": "Diễn tập sơ tán.", "drill": True}
    ids = []
    for body in (emergency, drill):
        bid = client.json("POST", "/api/v1/broadcasts", body, t["lan.nguyen"]).json()["id"]
        assert client.json("POST", f"/api/v1/broadcasts/{bid}/submit", None, t["lan.nguyen"]).status == 200
        assert client.json("POST", f"/api/v1/broadcasts/{bid}/approve", None, t["ha.vu"]).status == 200
        ids.append(bid)
    feed = json.loads(client.request("GET", "/feeds/alerts.json").body)
    texts = {item["id"]: item["content_text"] for item in feed["items"]}
    assert texts[ids[0]] == emergency["text"]
    assert texts[ids[1]] == "Đây là bản tin diễn tập. Diễn tập sơ tán. Đây là bản tin diễn tập."
    atom = client.request("GET", "/feeds/alerts.atom").body.decode()
    assert all(bid in atom for bid in ids) and "Đây là bản tin diễn tập. Diễn tập sơ tán." in atom
    assert client.request("GET", f"/cap/{ids[0]}.xml").status == 200
