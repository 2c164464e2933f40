"""`keng report` and `keng audit` end to end on the sample district (SQLite data dir)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from keng.runtime.cli import admin as cli_admin
from keng.runtime.cli import audit as cli_audit
from keng.runtime.cli import report as cli_report
from keng.runtime.config import load_settings
from keng.runtime.logs import configure_logging


def keng(data: Path, *argv: str) -> int:
    configure_logging("json", "warning")
    parser = argparse.ArgumentParser(prog="keng")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (cli_admin, cli_report, cli_audit):
        module.register(sub)
    args = parser.parse_args(list(argv))
    return int(args.handler(args, load_settings(data_dir=str(data), environ={})) or 0)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    assert keng(tmp_path, "init", "--sample") == 0
    return tmp_path


def test_reports_need_the_auditor_role(data: Path) -> None:
    from keng.domain.errors import NotAuthorised

    with pytest.raises(NotAuthorised):
        keng(data, "report", "kpi", "--as", "lan.nguyen")


@pytest.mark.parametrize("name", ["kpi", "coverage", "roadmap", "drills", "board", "offline", "timeline"])
def test_each_report_prints_json(data: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert keng(data, "report", name, "--as", "mai.le", "--json") == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


def test_seal_export_verify_and_replay(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert keng(data, "audit", "seal", "--as", "mai.le") == 0
    assert (data / "audit-key.pem").stat().st_mode & 0o777 == 0o600
    assert keng(data, "audit", "checkpoint", "export", "--as", "mai.le", "--out", str(data / "cp.json")) == 0
    capsys.readouterr()
    assert keng(data, "audit", "verify", "--as", "mai.le", "--checkpoint", str(data / "cp.json"), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["sealed"] == report["events"] > 700
    assert keng(data, "audit", "export", "--as", "mai.le", "--from", "5", "--to", "9") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["position"] for x in lines] == [5, 6, 7, 8, 9]
    assert keng(data, "audit", "replay", "--as", "mai.le", "--as-of", "2000-01-01T00:00:00+07:00", "--json",
                "--report", "coverage", "--out", str(data / "asof")) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out) == []
