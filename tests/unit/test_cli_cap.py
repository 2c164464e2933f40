"""`keng cap validate`: a verdict per file, every violation by path, exit 1 if any file is invalid."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from keng.runtime.cli import cap as cli_cap
from keng.runtime.config import load_settings
from keng.runtime.logs import configure_logging
from tests.unit.cap_builders import FIXTURES, alert, area, info


def run(argv: list[str], tmp_path: Path) -> int:
    configure_logging("json", "warning")  # as runtime.cli.main does: logs to stderr, never into --json output
    parser = argparse.ArgumentParser(prog="keng")
    cli_cap.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args, load_settings(data_dir=str(tmp_path), store_url=None))
    return code


def test_valid_files_pass_with_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in FIXTURES.glob("oasis_*.xml"))
    assert run(["cap", "validate", *files], tmp_path) == 0
    out = capsys.readouterr().out
    assert out.count("hợp lệ (valid CAP 1.2)") == 4


def test_every_violation_of_every_file_is_listed_and_exit_is_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(alert(status="Real", infos=(info(areas=(area(polygon="1,2 3,4 5,6 7,8"),)),)))
    old = tmp_path / "old.xml"
    old.write_bytes(alert(namespace="urn:oasis:names:tc:emergency:cap:1.1"))
    good = FIXTURES / "oasis_a1_homeland_security.xml"
    assert (
        run(["cap", "validate", str(good), str(bad), str(old), str(tmp_path / "missing.xml"), "--json"], tmp_path) == 1
    )
    views = orjson.loads(capsys.readouterr().out)
    assert [v["valid"] for v in views] == [True, False, False, False]
    assert [x["path"] for x in views[1]["violations"]] == ["alert/status", "alert/info[1]/area[1]/polygon[1]"]
    assert views[2]["version"] == "1.1" and "CAP 1.1 document" in views[2]["violations"][0]["message"]
    assert views[3]["violations"][0]["path"] == "file"


def test_plain_output_names_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(alert(msg_type="Cancel"))
    assert run(["cap", "validate", str(bad)], tmp_path) == 1
    assert "  lỗi (error) alert/references: required when msgType is Cancel" in capsys.readouterr().out
