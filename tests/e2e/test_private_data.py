"""The data directory is private: `keng serve` (with `keng init`, tokens and integrations before it) leaves only 0700
folders and 0600 files, SQLite's -wal and -shm included; `keng doctor` names what is wider and `--fix` tightens it."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from tests.e2e.test_serve import served  # noqa: F401 (the fixture)
from tests.keng_process import KENG


def modes(root: Path) -> dict[str, int]:
    """Permission bits of every folder and file under root, by relative path ('.' for root)."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def doctor(data: Path, *args: str) -> tuple[int, Any]:
    env = {**os.environ, "KENG_DATA": str(data), "KENG_LOG_FORMAT": "json"}
    proc = subprocess.run([*KENG, "doctor", "--json", *args], env=env, capture_output=True, text=True, timeout=60)
    return proc.returncode, orjson.loads(proc.stdout)


def test_everything_serve_writes_is_private_and_doctor_flags_and_fixes_what_is_not(served: Any) -> None:  # noqa: F811
    client, tokens, secret, _, log = served
    data = log.parent
    (data / "serve.log").chmod(0o600)  # the test's own capture of the service's output
    body = orjson.dumps(
        {"title": "Cảnh báo", "text": "Nội dung.", "priority": "emergency", "targets": {"areas": ["00598"]}}
    )
    bid = client.signed("/api/v1/hooks/city-source", body, secret, "private-1").json()["broadcast_id"]
    assert client.json("POST", f"/api/v1/broadcasts/{bid}/approve", None, tokens["hung.tran"]).status == 200
    deadline = time.time() + 30
    while time.time() < deadline and not list(data.glob("assets/*.mp3")):
        time.sleep(0.3)
    found = modes(data)
    assert {"keng.db", "keng.db-wal", "keng.db-shm", "assets"} <= set(found), sorted(found)
    assert any(p.endswith(".mp3") for p in found) and len(found) > 8, sorted(found)
    wider = {p: f"{m:04o}" for p, m in found.items() if m != (0o700 if (data / p).is_dir() else 0o600)}
    assert wider == {}

    assert doctor(data)[0] == 0
    asset = next(data.glob("assets/*.mp3"))
    asset.chmod(0o644)
    (data / "assets").chmod(0o755)
    status, report = doctor(data)
    assert status == 1 and not report["ok"]
    assert {(r["path"], r["mode"], r["wanted"]) for r in report["too_wide"]} == {
        (str(data / "assets"), "0755", "0700"),
        (str(asset), "0644", "0600"),
    }
    status, report = doctor(data, "--fix")
    assert status == 0 and report["fixed"] == 2
    assert stat.S_IMODE(asset.stat().st_mode) == 0o600 and stat.S_IMODE((data / "assets").stat().st_mode) == 0o700
