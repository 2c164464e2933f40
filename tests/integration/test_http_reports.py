"""`GET /api/v1/reports/...` over real HTTP, on SQLite and PostgreSQL: auditor role and up, bodies equal to what
`keng report NAME --json` prints for the same store, and the read models caught up before every answer."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.runtime.cli import report as cli_report
from keng.runtime.config import Settings, load_settings
from keng.runtime.http.services import Services
from keng.services.access import issue_token
from tests.http_server import Client, serve

DRAFT = {"title": "Diễn tập", "text": "Diễn tập báo động.", "priority": "normal", "targets": {"areas": ["00595"]}}
Api = tuple[Client, dict[str, str], Keng, Settings]


@pytest.fixture
def api(sample_app: Keng, store_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(data_dir=str(tmp_path), store_url=store_url, environ={})
    tokens = {h: issue_token(sample_app, staff=h, label="test", by="admin") for h in ("mai.le", "admin", "lan.nguyen")}
    services = Services(app=sample_app, secrets=SecretStore(tmp_path), settings=settings)
    with serve(services) as client:
        yield client, tokens, sample_app, settings


def cli_json(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    parser = argparse.ArgumentParser(prog="keng")
    cli_report.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *argv, "--as", "mai.le", "--json"])
    capsys.readouterr()
    assert args.handler(args, settings) == 0
    return orjson.loads(capsys.readouterr().out)


def test_every_report_answers_as_the_cli_prints_it(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    client, t, _, settings = api
    bid = client.json("POST", "/api/v1/broadcasts", DRAFT, t["lan.nguyen"]).json()["id"]
    assert client.json("POST", f"/api/v1/broadcasts/{bid}/submit", None, t["lan.nguyen"]).status == 200
    cases = [
        ("kpi", "", ()),
        ("coverage", "", ()),
        ("roadmap", "?from=2023&to=2026", ("--from", "2023", "--to", "2026")),
        ("drills", "", ()),
        ("board", "?state=submitted", ("--state", "submitted")),
        ("offline", "?start=2020-01-01T00:00:00%2B07:00", ("--start", "2020-01-01T00:00:00+07:00")),
        ("timeline", f"?broadcast={bid}", ("--broadcast", bid)),
        ("timeline", "?staff=lan.nguyen", ("--staff", "lan.nguyen")),
    ]
    for name, query, options in cases:
        reply = client.request("GET", f"/api/v1/reports/{name}{query}", token=t["mai.le"])
        assert reply.status == 200 and reply.headers["content-type"].startswith("application/json"), reply.body
        assert reply.json() == cli_json(settings, capsys, name, *options), name
    board = client.request("GET", "/api/v1/reports/board?state=submitted", token=t["mai.le"]).json()
    assert [b["id"] for b in board] == [bid]
    timeline = client.request("GET", f"/api/v1/reports/timeline?broadcast={bid}", token=t["admin"]).json()
    assert [row["event"] for row in timeline] == ["Broadcast.Drafted", "Broadcast.SubmittedForApproval"]
    capitals = client.request("GET", f"/api/v1/reports/timeline?broadcast={bid.upper()}", token=t["admin"]).json()
    assert capitals == timeline


def test_reports_catch_up_with_events_recorded_since_the_last_answer(api: Api) -> None:
    client, t, _, _ = api
    assert client.request("GET", "/api/v1/reports/board", token=t["mai.le"]).json() == []
    bid = client.json("POST", "/api/v1/broadcasts", DRAFT, t["lan.nguyen"]).json()["id"]
    assert [b["id"] for b in client.request("GET", "/api/v1/reports/board", token=t["mai.le"]).json()] == [bid]


def test_reports_are_refused_below_the_auditor_role_and_without_a_token(api: Api) -> None:
    client, t, _, _ = api
    refused = client.request("GET", "/api/v1/reports/kpi", token=t["lan.nguyen"])
    assert refused.status == 403 and refused.headers["content-type"].startswith("application/problem+json")
    assert "auditor" in refused.json()["detail"]
    anonymous = client.request("GET", "/api/v1/reports/kpi")
    assert anonymous.status == 401 and anonymous.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/reports/roadmap?from=20x",
        "/api/v1/reports/offline?end=yesterday",
        "/api/v1/reports/kpi?x=1",
        "/api/v1/reports/timeline?broadcast=%0E",
    ],
)
def test_malformed_report_parameters_get_a_400_problem(api: Api, query: str) -> None:
    client, t, _, _ = api
    reply = client.request("GET", query, token=t["mai.le"])
    assert reply.status == 400 and reply.headers["content-type"].startswith("application/problem+json"), reply.body
