"""The `keng` console script, run as a user runs it (a subprocess), on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

SCRIPT = Path(sys.executable).with_name("keng")


class Keng:
    def __init__(self, data: Path, store: str | None) -> None:
        self.base = [
            str(SCRIPT) if SCRIPT.exists() else sys.executable,
            *([] if SCRIPT.exists() else ["-m", "keng.runtime.cli"]),
        ]
        self.base += ["--data", str(data)] + (["--store", store] if store else [])

    def run(self, *args: str, ok: bool = True, **settings: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KENG_LOG_FORMAT": "json", "KENG_LOG_LEVEL": "warning", **settings}
        proc = subprocess.run([*self.base, *args], capture_output=True, text=True, env=env, timeout=120)
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    def json(self, *args: str) -> Any:
        return orjson.loads(self.run(*args, "--json").stdout)


@pytest.fixture
def keng(tmp_path: Path, store_url: str) -> Keng:
    # SQLite through the default location in the data directory; PostgreSQL through --store.
    return Keng(tmp_path / "data", None if store_url.startswith("sqlite") else store_url)


def test_sample_district_loads(keng: Keng) -> None:
    out = keng.run("init", "--sample").stdout
    assert "Bắc Từ Liêm" in out
    endpoints = keng.json("endpoint", "list")
    assert {e["kind"] for e in endpoints} == {"ip-speaker", "fm-speaker", "eboard", "portal"}
    assert all(e["generated"] for e in endpoints)
    # The 2022 wards' portals went to the default successor of their ward on 2025-07-01.
    wards = {e["ward"] for e in endpoints if e["kind"] == "portal"}
    assert wards == {"00091", "00160", "00598", "00602", "00611", "00613", "00619"}
    staff = {s["handle"]: s for s in keng.json("staff", "list")}
    assert staff["hung.tran"]["roles"] == ["approver"] and staff["admin"]["roles"] == ["admin"]
    assert staff["ha.vu"]["wards"] == ["00598"]  # scoped to 00595 in 2022, which merged into 00598


def test_broadcast_lifecycle_is_shown_and_logged_with_actor_and_time(keng: Keng) -> None:
    keng.run("init", "--sample")
    start = len(keng.json("events"))
    bid = keng.run(
        "broadcast",
        "draft",
        "--as",
        "lan.nguyen",
        "--title",
        "Cảnh báo mưa lớn",
        "--priority",
        "priority",
        "--text",
        "Dự báo mưa lớn trên địa bàn phường Phú Thượng, đề nghị bà con chủ động phòng tránh.",
        "--area",
        "00091",
        "--area",
        "00602-T01",
    ).stdout.strip()
    keng.run("broadcast", "submit", bid, "--as", "lan.nguyen")
    keng.run("broadcast", "approve", bid[:8], "--as", "hung.tran")
    shown = keng.json("broadcast", "show", bid)
    assert (shown["id"], shown["state"], shown["approved"]) == (bid, "approved", True)
    assert shown["scope"] == ["00091", "00602"]
    assert shown["approvals"][0]["by"] == "hung.tran"
    events = keng.json("events", "--since", str(start))
    steps = [(e["event"], e["actor"], e["aggregate_id"]) for e in events]
    assert steps == [
        ("Drafted", "lan.nguyen", bid),
        ("SubmittedForApproval", "lan.nguyen", bid),
        ("Approved", "hung.tran", bid),
    ]
    assert all(e["time"].endswith("+07:00") for e in events)
    listed = keng.json("broadcast", "list", "--state", "approved")
    assert [b["id"] for b in listed] == [bid]


def test_self_approval_is_refused_with_the_rule_named(keng: Keng) -> None:
    keng.run("init", "--sample")
    bid = keng.run(
        "broadcast",
        "draft",
        "--as",
        "minh.pham",
        "--title",
        "Thông báo",
        "--text",
        "Nội dung",
        "--priority",
        "normal",
        "--area",
        "00598",
    ).stdout.strip()
    keng.run("broadcast", "submit", bid, "--as", "minh.pham")
    before = len(keng.json("events"))
    refused = keng.run("broadcast", "approve", bid, "--as", "minh.pham", ok=False)
    assert refused.returncode != 0
    assert "approver-is-not-drafter" in refused.stderr and "không được tự duyệt" in refused.stderr
    assert len(keng.json("events")) == before
    assert keng.json("broadcast", "show", bid)["state"] == "submitted"


def test_bad_district_rows_are_reported_by_line_and_nothing_is_loaded(keng: Keng, tmp_path: Path) -> None:
    keng.run("init")
    bad = tmp_path / "district.csv"
    bad.write_text(
        "record,code,name,parent,lat,lon,kind,technology,installed_on,condition\n"
        "district,021,Quận Bắc Từ Liêm,,21.07,105.76,,,,\n"
        "ward,00595,Phường Thượng Cát,021,21.09,105.73,,,,\n"
        "group,00595-T01,Tổ dân phố số 1,00999,,,,,,\n"
        "endpoint,00595-IP1,,00595,,,ip-speaker,ip-4g,2023-13-01,good\n"
        "endpoint,00595-IP2,,00595,,,loudhailer,ip-4g,,good\n"
        "ward,00598,Phường Liên Mạc,021,123.0,105.75,,,,\n",
        encoding="utf-8",
    )
    before = len(keng.json("events"))
    proc = keng.run("district", "load", str(bad), ok=False)
    assert proc.returncode == 1
    for expected in (
        "line 4: parent area '00999'",
        "line 5: installed_on '2023-13-01'",
        "line 6: unknown endpoint kind 'loudhailer'",
        "line 7: latitude 123.0",
        "4 error(s); nothing was loaded",
    ):
        assert expected in proc.stderr
    assert "line 2" not in proc.stderr and "line 3" not in proc.stderr
    assert len(keng.json("events")) == before
    assert keng.json("endpoint", "list") == []


def test_good_district_file_loads_in_json_too(keng: Keng, tmp_path: Path) -> None:
    keng.run("init")
    good = tmp_path / "district.json"
    good.write_bytes(
        orjson.dumps(
            [
                {"record": "district", "code": "021", "name": "Quận Bắc Từ Liêm"},
                {"record": "ward", "code": "00595", "name": "Phường Thượng Cát", "parent": "021"},
                {"record": "group", "code": "00595-T01", "name": "Tổ dân phố số 1", "parent": "00595"},
                {
                    "record": "endpoint",
                    "code": "00595-T01-IP1",
                    "parent": "00595-T01",
                    "kind": "ip-speaker",
                    "technology": "ip-4g",
                    "installed_on": "2023-05-01",
                    "condition": "good",
                },
            ]
        )
    )
    assert "1 endpoint" in keng.run("district", "load", str(good)).stdout
    (endpoint,) = keng.json("endpoint", "list")
    assert (endpoint["ward"], endpoint["group"], endpoint["generated"]) == ("00595", "00595-T01", False)
    again = keng.run("district", "load", str(good), ok=False)
    assert "already registered" in again.stderr


def test_commands_before_init_say_what_to_do(tmp_path: Path) -> None:
    proc = Keng(tmp_path / "nothing", None).run("broadcast", "list", ok=False)
    assert proc.returncode == 1 and "keng init" in proc.stderr


def test_an_integration_fetch_allowlist_is_set_at_add_and_replaced_by_an_admin(keng: Keng) -> None:
    keng.run("init", "--sample")
    add = ("integration", "add", "kttv", "--kind", "cap", "--jurisdiction", "01", "--sender", "kttv@example.vn")
    keng.run(*add, "--fetch-host", "Media.KTTV.vn", "--fetch-host", "10.0.0.5")
    hosts = lambda: {i["name"]: i["fetch_hosts"] for i in keng.json("integration", "list")}["kttv"]  # noqa: E731
    assert hosts() == ["10.0.0.5", "media.kttv.vn"]
    events = len(keng.json("events"))
    bad = keng.run("integration", "fetch-hosts", "kttv", "media.kttv.vn", "http://x.vn/a", ok=False)
    assert bad.returncode == 1 and "fetch host 'http://x.vn/a'" in bad.stderr
    assert len(keng.json("events")) == events and hosts() == ["10.0.0.5", "media.kttv.vn"]
    assert "media.kttv.vn" in keng.run("integration", "fetch-hosts", "kttv", "media.kttv.vn").stdout
    assert hosts() == ["media.kttv.vn"]
    keng.run("integration", "fetch-hosts", "kttv")
    assert hosts() == []
    assert "although it is loopback or private" in " ".join(keng.run("integration", "add", "--help").stdout.split())
