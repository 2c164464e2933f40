"""Issue 15 item 7: a standing-order approval can be ratified or retracted after its broadcast has finished, through
the service, the HTTP API and the CLI; the unratified list shows it until then."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from keng.adapters.secrets import SecretStore
from keng.adapters.store.app import Keng
from keng.domain.authority import EVERYTHING
from keng.domain.errors import IllegalTransition, NotAuthorised
from keng.projections.catalog import Catalog
from keng.runtime.bootstrap import open_app
from keng.runtime.cli import admin as cli_admin
from keng.runtime.cli import broadcast as cli_broadcast
from keng.runtime.config import load_settings
from keng.runtime.http.services import Services
from keng.runtime.logs import configure_logging
from keng.services import broadcasts
from keng.services.access import issue_token
from tests.http_server import serve

WARD = "00595"
SUMMARY: Any = {"outcome": "complete", "targeted": 1, "online": 1, "received": 1, "playing": 0, "played": 1,
                "failed": 0, "unreachable": 0, "retries": 0, "latency_ms": {}}  # fmt: skip


def finished(app: Keng, *, complete: bool = True) -> UUID:
    """An emergency approved under a standing order and, with `complete`, dispatched and completed."""
    bid = broadcasts.draft(
        app, by="lan.nguyen", title="Cảnh báo lũ quét", text="Nguy cơ lũ quét cấp 3.", priority="emergency",
        target_areas=[WARD],
    )  # fmt: skip
    item = app.broadcast(bid)
    item.auto_approve(rule="kttv-extreme", now=app.clock())
    if complete:
        item.open_dispatch(now=app.clock())
        item.complete(SUMMARY)
    app.save_changes(item)
    return bid


def unratified(app: Keng) -> list[UUID]:
    items = broadcasts.readable_list(Catalog().fold(app.read_events()), EVERYTHING)
    return [u.broadcast.id for u in broadcasts.awaiting_ratification(items, within=app_window, now=app.clock())]


app_window = load_settings(environ={}).ratify_within


def test_the_service_ratifies_and_retracts_after_completion(sample_app: Keng) -> None:
    ratified, retracted = finished(sample_app), finished(sample_app)
    assert set(unratified(sample_app)) == {ratified, retracted}
    with pytest.raises(NotAuthorised):
        broadcasts.ratify(sample_app, ratified, by="lan.nguyen")
    broadcasts.ratify(sample_app, ratified, by="hung.tran")
    assert broadcasts.act(sample_app, retracted, "retract", by="hung.tran", reason="Sai khu vực") is False
    assert unratified(sample_app) == []
    assert [sample_app.broadcast(b).state for b in (ratified, retracted)] == ["completed", "completed"]
    assert sample_app.broadcast(retracted).approvals[0]["retracted_by"] == "hung.tran"
    with pytest.raises(IllegalTransition):
        broadcasts.retract(sample_app, ratified, by="hung.tran", reason="muộn")


def test_the_api_lists_a_finished_standing_order_approval_until_it_is_ratified(
    sample_app: Keng, tmp_path: Path
) -> None:
    hung = issue_token(sample_app, staff="hung.tran", label="t", by="admin")
    services = Services(app=sample_app, secrets=SecretStore(tmp_path), settings=load_settings(environ={}))
    ratified, retracted = finished(sample_app), finished(sample_app)
    with serve(services) as client:
        pending = client.json("GET", "/api/v1/broadcasts?unratified=1", None, hung).json()
        assert {b["id"] for b in pending} == {str(ratified), str(retracted)}
        assert all(b["state"] == "completed" and b["awaiting_ratification"] for b in pending)
        answer = client.json("POST", f"/api/v1/broadcasts/{ratified}/ratify", None, hung)
        assert answer.status == 200 and answer.json()["approvals"][0]["ratified_by"] == "hung.tran"
        assert client.json("POST", f"/api/v1/broadcasts/{retracted}/retract", {}, hung).status == 422  # no reason
        answer = client.json("POST", f"/api/v1/broadcasts/{retracted}/retract", {"reason": "Sai khu vực"}, hung)
        assert answer.status == 200 and answer.json()["state"] == "completed"
        assert client.json("GET", "/api/v1/broadcasts?unratified=1", None, hung).json() == []
        again = client.json("POST", f"/api/v1/broadcasts/{ratified}/ratify", None, hung)
        assert again.status == 409 and "awaiting ratification" in again.json()["detail"]


def _keng(data: Path, *argv: str) -> int:
    configure_logging("json", "warning")
    parser = argparse.ArgumentParser(prog="keng")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (cli_admin, cli_broadcast):
        module.register(sub)
    args = parser.parse_args(list(argv))
    return int(args.handler(args, load_settings(data_dir=str(data), environ={})) or 0)


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    assert _keng(tmp_path, "init", "--sample", "2022") == 0  # WARD is a 2022 code
    yield tmp_path


def test_the_cli_ratifies_and_retracts_after_completion(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = open_app(load_settings(data_dir=str(data), environ={}), create=False)
    ratified, retracted = finished(app), finished(app)
    app.close()
    capsys.readouterr()
    assert _keng(data, "broadcast", "list", "--unratified", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert {b["id"] for b in listed} == {str(ratified), str(retracted)}
    assert all(b["ratify_by"] and b["ratification_overdue"] is False for b in listed)
    assert _keng(data, "broadcast", "list", "--unratified") == 0
    assert "kttv-extreme" in capsys.readouterr().out
    assert _keng(data, "broadcast", "ratify", str(ratified)[:8], "--as", "hung.tran") == 0
    assert "ratified" in capsys.readouterr().out
    assert _keng(data, "broadcast", "retract", str(retracted), "--as", "hung.tran", "--reason", "Sai khu vực") == 0
    assert "retracted" in capsys.readouterr().out
    assert _keng(data, "broadcast", "list", "--unratified", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
    with pytest.raises(IllegalTransition):
        _keng(data, "broadcast", "ratify", str(ratified), "--as", "hung.tran")
    with pytest.raises(SystemExit):  # --reason is required
        _keng(data, "broadcast", "retract", str(retracted), "--as", "hung.tran")
