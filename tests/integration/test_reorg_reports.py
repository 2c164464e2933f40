"""Reports across the 2025 reorganisation (tests/reorg.py) on SQLite and PostgreSQL: `structure`, `per` and `area`
from the API, the CLI and the as-of replay give the same rows; a bad value is a 400 problem (a usage error on the
CLI); raw facts of the area events rebuild what domain events do; a live store of another format is rebuilt."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from keng.adapters.readstore.source import FactSource
from keng.adapters.readstore.store import ReadStore
from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.projections.facts import facts_of
from keng.projections.runner import run, run_facts
from keng.runtime.cli import audit as cli_audit
from keng.runtime.cli import report as cli_report
from keng.runtime.config import Settings, load_settings
from keng.runtime.http.openapi import openapi_document
from keng.runtime.http.services import Services
from keng.runtime.workers.readmodels import catch_up, live_store
from keng.services.access import enrol_staff, issue_token
from keng.services.inventory import bootstrap_admin
from tests.http_server import Client, serve
from tests.reorg import build_reformed

Api = tuple[Client, str, Keng, Settings]


def reformed(app: Keng) -> Keng:
    bootstrap_admin(app)
    build_reformed(app)
    for code in ("00613-T01-IP1", "00613-T02-IP1"):  # old Minh Khai's two speakers
        e = app.endpoint(code)
        e.report_fault("mất tín hiệu", severity="broken", by="admin", on=date(2025, 8, 1), today=date(2025, 8, 1))
        app.save_changes(e)
    enrol_staff(app, handle="mai", name="Lê Thị Mai", roles=["auditor"], by="admin")
    return app


@pytest.fixture
def api(make_app: Callable[..., Keng], store_url: str, tmp_path: Path) -> Iterator[Api]:
    app = reformed(make_app())
    settings = load_settings(data_dir=str(tmp_path), store_url=store_url, environ={})
    token = issue_token(app, staff="mai", label="test", by="admin")
    services = Services(app=app, secrets=SecretStore(tmp_path), settings=settings)
    with serve(services) as client:
        yield client, token, app, settings


def cli_json(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    parser = argparse.ArgumentParser(prog="keng")
    cli_report.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *argv, "--as", "mai", "--json"])
    capsys.readouterr()
    assert args.handler(args, settings) == 0
    return orjson.loads(capsys.readouterr().out)


def by_kpi(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["kpi"]: r for r in rows}


def test_the_api_and_the_cli_show_the_kpis_on_the_structure_of_either_side(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    client, token, _, settings = api
    answers = {}
    for day in ("2025-06-30", "2025-07-01"):
        reply = client.request("GET", f"/api/v1/reports/kpi?structure={day}", token=token)
        assert reply.status == 200, reply.body
        assert reply.json() == cli_json(settings, capsys, "kpi", "--structure", day)
        answers[day] = by_kpi(reply.json())["ip_radio_wards"]
    before, after = answers["2025-06-30"], answers["2025-07-01"]
    assert (before["numerator"], before["denominator"], before["units"]) == (2, 3, "3 wards of 2025-06-30")
    assert (after["numerator"], after["denominator"], after["units"]) == (1, 3, "3 wards of 2025-07-01")
    today = by_kpi(client.request("GET", "/api/v1/reports/kpi", token=token).json())["ip_radio_wards"]
    assert today["numerator"] == 1 and today["structure"] > "2025-07-01"  # by default: the units in force today


def test_coverage_and_the_roadmap_per_ward_from_the_api_and_the_cli(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    client, token, _, settings = api
    cases = [
        ("coverage", "?structure=2025-06-30", ("--structure", "2025-06-30")),
        ("roadmap", "?per=ward&structure=2025-06-30", ("--per", "ward", "--structure", "2025-06-30")),
        ("roadmap", "?per=ward&structure=2025-07-01", ("--per", "ward", "--structure", "2025-07-01")),
        ("roadmap", "?per=year", ("--per", "year")),
        ("timeline", "?area=00613", ("--area", "00613")),
    ]
    answers = {}
    for name, query, options in cases:
        reply = client.request("GET", f"/api/v1/reports/{name}{query}", token=token)
        assert reply.status == 200, reply.body
        assert reply.json() == cli_json(settings, capsys, name, *options), (name, query)
        answers[(name, query)] = reply.json()
    wards = [r["code"] for r in answers[("coverage", "?structure=2025-06-30")] if r["level"] == "ward"]
    assert wards == ["00595", "00598", "00613"]
    fm = {
        day: [r["ward"] for r in answers[("roadmap", f"?per=ward&structure={day}")] if r["total_fm"]]
        for day in ("2025-06-30", "2025-07-01")
    }
    assert fm == {"2025-06-30": ["00613"], "2025-07-01": ["00602"]}  # Minh Khai's station lies in Đông Ngạc now
    assert [r["year"] for r in answers[("roadmap", "?per=year")]] == [2022, 2023, 2024, 2025]
    timeline = answers[("timeline", "?area=00613")]
    assert [r["unit"] for r in timeline] == ["00613 Phường Minh Khai", "00613 Phường Tây Tựu", "00613 Phường Minh Khai"]


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/reports/kpi?structure=2025-13-01",
        "/api/v1/reports/kpi?structure=yesterday",
        "/api/v1/reports/kpi?structure=2025-07-01T00:00:00%2B07:00",
        "/api/v1/reports/coverage?structure=",
        "/api/v1/reports/roadmap?per=month",
        "/api/v1/reports/timeline?area=%20bad%20code",
        "/api/v1/reports/drills?structure=2025-06-30",
    ],
)
def test_bad_structure_per_and_area_values_get_a_400_problem(api: Api, query: str) -> None:
    client, token, _, _ = api
    reply = client.request("GET", query, token=token)
    assert reply.status == 400 and reply.headers["content-type"].startswith("application/problem+json"), reply.body


@pytest.mark.parametrize("argv", [("kpi", "--structure", "2025-02-30"), ("roadmap", "--per", "month")])
def test_the_cli_refuses_a_bad_structure_or_per_as_a_usage_error(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="keng")
    cli_report.register(parser.add_subparsers(dest="command", required=True))
    with pytest.raises(SystemExit) as refused:
        parser.parse_args(["report", *argv, "--as", "mai"])
    assert refused.value.code == 2
    assert f"argument {argv[1]}" in capsys.readouterr().err


def test_the_openapi_document_describes_the_new_query_parameters() -> None:
    paths = openapi_document()["paths"]
    params = {
        name: {p["name"]: p["schema"] for p in paths[f"/api/v1/reports/{name}"]["get"]["parameters"]}
        for name in ("kpi", "coverage", "roadmap", "timeline")
    }
    assert params["kpi"]["structure"]["format"] == "date" and params["coverage"]["structure"]["format"] == "date"
    assert params["roadmap"]["per"]["enum"] == ["year", "ward"] and "structure" in params["roadmap"]
    assert "area" in params["timeline"]


def test_the_as_of_replay_takes_the_same_structure_option(
    api: Api, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings = api[3]
    parser = argparse.ArgumentParser(prog="keng")
    cli_audit.register(parser.add_subparsers(dest="command", required=True))
    at = "2030-01-01T00:00:00+07:00"  # after everything recorded: the same read models as the live ones
    args = parser.parse_args(["audit", "replay", "--as", "mai", "--as-of", at, "--report", "kpi", "--structure",
                              "2025-06-30", "--out", str(tmp_path / "asof"), "--json"])  # fmt: skip
    capsys.readouterr()
    assert args.handler(args, settings) == 0
    replayed = by_kpi(orjson.loads(capsys.readouterr().out))["ip_radio_wards"]
    assert (replayed["numerator"], replayed["denominator"], replayed["units"]) == (2, 3, "3 wards of 2025-06-30")


def test_raw_facts_of_the_reorganisation_rebuild_what_domain_events_do(
    make_app: Callable[..., Keng], tmp_path: Path
) -> None:
    app = reformed(make_app())
    source = FactSource.of_app(app)
    assert list(source.facts(page=7)) == list(facts_of(app.read_events(0)))
    dumps = []
    for name in ("events", "facts"):
        store = ReadStore.sqlite_file(tmp_path / f"{name}.db")
        if name == "facts":
            run_facts(FactSource.of_app(app).facts(), store, batch_size=11)
        else:
            run(app.read_events(0), store, batch_size=5)
        dumps.append(store.dump())
        store.close()
    assert dumps[0] == dumps[1]


def test_a_live_store_folded_in_another_format_is_rebuilt(make_app: Callable[..., Keng]) -> None:
    app = reformed(make_app())
    store = live_store(app)
    catch_up(app, store)
    full = store.dump()
    store.commit({("meta", "format"): {"format": 1}, ("kpi", "district"): {"wards": []}}, [], app.max_position() + 1)
    store.close()
    store = live_store(app)  # of another format: emptied ...
    try:
        assert store.position() == 0
        catch_up(app, store)  # ... and rebuilt by the next catch-up
        assert store.dump() == full
    finally:
        store.close()
