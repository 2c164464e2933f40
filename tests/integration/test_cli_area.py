"""`keng area list | show | sync` through the real CLI entry (`main(argv)`), on a data directory holding the sample
district as registered in 2022: the sync previews the 2025-07-01 reorganisation from the installed packages' data
and records nothing until `--confirm`; after it, 00613 is Phường Minh Khai on 2025-06-30 and Phường Tây Tựu from
2025-07-01, and a second preview is empty. `keng init --sample` records the same reorganisation itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from keng.runtime.bootstrap import open_app
from keng.runtime.cli.main import main
from keng.runtime.config import load_settings

OLD_WARDS = ["00595", "00598", "00601", "00602", "00604", "00607", "00610", "00611", "00613", "00616", "00617",
             "00619", "00620"]  # fmt: skip
NEW_WARDS = ["00091", "00160", "00598", "00602", "00611", "00613", "00619", "00622", "09817", "09832"]


class Cli:
    def __init__(self, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.data, self.capsys = data, capsys

    def __call__(self, *argv: str, status: int = 0) -> tuple[str, str]:
        self.capsys.readouterr()
        code = main(["--data", str(self.data), *argv])
        out, err = self.capsys.readouterr()
        assert code == status, (code, out[-2000:], err[-2000:])
        return out, err

    def json(self, *argv: str) -> Any:
        return orjson.loads(self(*argv, "--json")[0])

    def events(self) -> int:
        app = open_app(load_settings(data_dir=str(self.data), store_url=None), create=False)
        try:
            return app.max_position()
        finally:
            app.close()


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "data", capsys)


@pytest.fixture
def sample_2022(cli: Cli) -> Iterator[Cli]:
    """The sample district as registered in 2022, without the reorganisation."""
    out, _ = cli("init", "--sample", "2022")
    assert "`keng area sync` previews the 2025-07-01 reform" in out
    yield cli


def test_sync_previews_and_records_only_when_confirmed(sample_2022: Cli) -> None:
    cli = sample_2022
    before = cli.events()
    out, _ = cli("area", "sync")
    assert out.rstrip().endswith("nothing was recorded; run again with --confirm")
    for line in (
        "  - 00613 Phường Minh Khai -> 00598 Phường Thượng Cát, 00602 Phường Đông Ngạc, 00613 Phường Tây Tựu "
        "(default), 00622 Phường Xuân Phương",
        "  - 00595 Phường Thượng Cát -> 00598 Phường Thượng Cát",
        "  + 00613 Phường Tây Tựu [ward, thuộc 01] từ (from) 00607, 00613",
        "  + 01 Thành phố Hà Nội [city]",
        "  ha.vu: 00595 -> 00598",
    ):
        assert line in out.splitlines()
    assert "Giải thể (dissolved) (1):\n  - 021 Quận Bắc Từ Liêm -> 00091 Phường Phú Thượng" in out
    preview = cli.json("area", "sync")
    assert preview["recorded"] is False and preview["empty"] is False
    counts = preview["counts"]
    assert (counts["new"], counts["merged"], counts["divided"], counts["dissolved"]) == (11, 4, 9, 1)
    assert counts["groups_moved"] == len(preview["groups"]) and counts["endpoints_moved"] == len(preview["endpoints"])
    assert {m["how"] for m in preview["groups"]} == {"merged", "coordinates"}
    assert cli.events() == before  # two previews recorded nothing

    out, _ = cli("area", "sync", "--confirm")
    assert "Đã ghi nhận (recorded)" in out and "nothing was recorded" not in out
    assert cli.events() == before + counts["events"]
    again = cli.json("area", "sync")
    assert again["empty"] is True and again["counts"]["events"] == 0 and again["recorded"] is False
    assert "nothing to do" in cli("area", "sync", "--confirm")[0]
    assert cli.events() == before + counts["events"]


def test_show_and_list_answer_as_of_an_instant(sample_2022: Cli) -> None:
    cli = sample_2022
    cli("area", "sync", "--confirm")
    assert cli.json("area", "show", "00613", "--at", "2025-06-30")["name"] == "Phường Minh Khai"
    shown = cli.json("area", "show", "00613", "--at", "2025-07-01")
    assert (shown["name"], shown["parent"], shown["valid_from"]) == ("Phường Tây Tựu", "01", "2025-07-01")
    assert "00607-T01" in shown["children"] and "00613-T01" in shown["children"]
    assert [(h["name"], h["valid_from"], h["valid_to"]) for h in shown["history"]] == [
        ("Phường Minh Khai", None, "2025-07-01"),
        ("Phường Tây Tựu", "2025-07-01", None),
    ]
    assert cli.json("area", "show", "00613", "--at", "2025-06-30T23:59:59+07:00")["name"] == "Phường Minh Khai"
    assert cli.json("area", "show", "00613", "--at", "2025-06-30T17:00:00Z")["name"] == "Phường Tây Tựu"  # 00:00 +7
    out, _ = cli("area", "show", "00613")
    assert "Phường Tây Tựu" in out and "Mọi đơn vị từng mang mã 00613" in out and "Phường Minh Khai" in out

    ended = cli.json("area", "show", "00601")  # a code no unit holds now: its history, and why
    assert ended["in_force"] is False and ended["rule"] == "area-ended"
    assert "use its successors: 00091 (Phường Phú Thượng), 00602 (Phường Đông Ngạc)" in ended["detail"]
    assert ended["successors"] == ["00091", "00602"]
    assert [(h["name"], h["valid_to"]) for h in ended["history"]] == [("Phường Đông Ngạc", "2025-07-01")]
    out, _ = cli("area", "show", "00601")
    assert "Không có đơn vị nào mang mã 00601" in out and "Phường Đông Ngạc" in out
    _, err = cli("area", "show", "99999", status=1)
    assert "no area with code '99999'" in err and "Traceback" not in err
    later = cli.json("area", "show", "00091", "--at", "2024-01-01")
    assert later["in_force"] is False and "in force only from 2025-07-01" in later["detail"]

    assert [a["code"] for a in cli.json("area", "list", "--level", "ward")] == NEW_WARDS
    old = cli.json("area", "list", "--level", "ward", "--at", "2025-06-30")
    assert [a["code"] for a in old] == OLD_WARDS and {a["parent"] for a in old} == {"021"}
    assert {a["valid_to"] for a in old} == {"2025-07-01"}
    districts = cli.json("area", "list", "--at", "2025-06-30", "--level", "district")
    assert [(d["code"], d["ending"]) for d in districts] == [("021", "dissolved")]
    out, _ = cli("area", "list", "--level", "ward")
    assert "10 đơn vị (units) in force at" in out and "Xã Hoài Đức" in out
    with pytest.raises(SystemExit) as usage:
        cli("area", "list", "--at", "yesterday")
    assert usage.value.code == 2
    assert "neither a day (YYYY-MM-DD) nor an ISO instant" in cli.capsys.readouterr().err


def test_sync_takes_assignments_from_a_file_and_refuses_a_bad_one(sample_2022: Cli, tmp_path: Path) -> None:
    cli = sample_2022
    before = cli.events()
    good = tmp_path / "assign.csv"
    good.write_text("code,successor\n00613-T05,00622\n00607-T03-IP1,09832\n", encoding="utf-8")
    plan = cli.json("area", "sync", "--assign", str(good), "--district-staff", "wards")
    groups = {m["code"]: m for m in plan["groups"]}
    assert (groups["00613-T05"]["to"], groups["00613-T05"]["how"]) == ("00622", "assigned")
    endpoints = {m["code"]: m for m in plan["endpoints"]}
    assert (endpoints["00607-T03-IP1"]["to"], endpoints["00607-T03-IP1"]["how"]) == ("09832", "assigned")
    scopes = {s["handle"]: s["after"] for s in plan["scopes"]}
    assert scopes["lan.nguyen"] == NEW_WARDS and scopes["ha.vu"] == ["00598"]
    bad = tmp_path / "bad.csv"
    bad.write_text("00613-T05,00619\n00613-T06\n", encoding="utf-8")
    _, err = cli("area", "sync", "--assign", str(bad), status=1)
    assert "line 2: expected two cells" in err
    bad.write_text("00613-T05,00619\n", encoding="utf-8")
    _, err = cli("area", "sync", "--assign", str(bad), "--confirm", status=1)
    assert "00613-T05 is assigned to 00619, which is not one of its successors" in err and "Traceback" not in err
    _, err = cli("area", "sync", "--as", "lan.nguyen", "--confirm", status=1)
    assert "role-required" in err
    assert cli.events() == before


def test_init_sample_takes_only_2022_or_today(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        cli("init", "--sample", "2024")
    assert usage.value.code == 2 and "invalid choice: '2024'" in capsys.readouterr().err
    assert not cli.data.exists()


def test_init_sample_records_the_reorganisation_itself(cli: Cli) -> None:
    out, _ = cli("init", "--sample")
    assert "Bắc Từ Liêm" in out and "10 phường, xã hiện hành (current wards): 00091 Phường Phú Thượng" in out
    assert [a["code"] for a in cli.json("area", "list", "--level", "ward")] == NEW_WARDS
    assert cli.json("area", "show", "00613", "--at", "2025-06-30")["name"] == "Phường Minh Khai"
    staff = {s["handle"]: s["wards"] for s in cli.json("staff", "list")}
    assert staff["ha.vu"] == staff["tuan.do"] == ["00598"]  # scoped to 00595, which merged into 00598
    portals = {e["ward"] for e in cli.json("endpoint", "list", "--kind", "portal")}
    assert portals <= set(NEW_WARDS)
    assert cli.json("area", "sync")["empty"] is True
