"""In production (stderr not a terminal) every line keng writes to stderr is one JSON object: its own lines, the
libraries' (stdlib logging, asyncio, warnings), uncaught exceptions in threads, and the command's error report, with
tracebacks as structured fields; a flood of identical warnings is cut to a few lines and one count."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
KENG = [sys.executable, "-m", "keng.runtime.cli"]


def production_env(**extra: str) -> dict[str, str]:
    """The environment of a service: no log format chosen (stderr is a pipe, so JSON is chosen)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KENG_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def json_lines(stderr: str) -> list[dict[str, Any]]:
    lines = stderr.splitlines()
    assert lines, "nothing was logged"
    parsed = []
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    assert all(isinstance(p, dict) for p in parsed)
    return parsed


def frames_of(line: dict[str, Any]) -> list[dict[str, Any]]:
    (exception,) = line["exception"]
    assert exception["exc_type"] and exception["frames"] and all("locals" not in f for f in exception["frames"])
    return list(exception["frames"])


def test_a_service_that_cannot_start_writes_only_json_lines_with_the_traceback_as_a_field(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = production_env(KENG_DATA=str(data))
    subprocess.run([*KENG, "init", "--sample"], env=env, check=True, capture_output=True, timeout=120)
    (data / "keng.db").chmod(0o644)  # an installation made before keng kept its files private
    # An address of no interface here (TEST-NET-1): the bind fails where the site starts (a busy port is refused
    # earlier, cleanly: tests/e2e/test_cli_behaviour.py).
    proc = subprocess.run(
        [*KENG, "serve", "--host", "192.0.2.1", "--port", "8080", "--no-dispatcher"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 70
    lines = json_lines(proc.stderr)
    events = [line["event"] for line in lines]
    assert events[0] == "data_dir.permissions_too_wide" and "command.crashed" in events, events
    assert lines[0]["path"] == str(data / "keng.db") and lines[0]["mode"] == "0644"
    crashed = next(line for line in lines if line["event"] == "command.crashed")
    assert crashed["level"] == "error" and crashed["exception"][0]["exc_type"] == "OSError" and frames_of(crashed)
    failed = next(line for line in lines if line["event"] == "command.failed")
    assert "lỗi: sự cố ngoài dự kiến" in failed["message"]


SCRIPT = textwrap.dedent(
    """
    import asyncio, gc, logging, threading, warnings
    import structlog
    from keng.runtime.logs import configure_logging

    configure_logging(burst=5)
    log = structlog.get_logger("demo")
    for i in range(2000):  # an emergency with no device online: one warning per endpoint
        log.warning("dispatch.endpoint_offline", reason="offline", endpoint=f"00595-IP{i}")
    logging.getLogger("aiohttp.server").error("Error handling request", exc_info=ValueError("bad header"))
    warnings.warn("a deprecated call", UserWarning)

    async def lost() -> None:
        raise RuntimeError("nobody awaited me")

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(lost())
        await asyncio.sleep(0.01)
        del task
        gc.collect()

    asyncio.run(main())
    worker = threading.Thread(target=lambda: 1 / 0, name="worker")
    worker.start()
    worker.join()
    """
)


def test_library_records_warnings_lost_task_and_thread_exceptions_are_json_and_floods_are_counted() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=production_env(), capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    lines = json_lines(proc.stderr)
    offline = [line for line in lines if line["event"] == "dispatch.endpoint_offline"]
    assert [line["endpoint"] for line in offline] == [f"00595-IP{i}" for i in range(5)]
    (summary,) = [line for line in lines if line["event"] == "log.suppressed"]
    assert summary["suppressed_event"] == "dispatch.endpoint_offline" and summary["suppressed"] == 1995
    assert summary["reason"] == "offline" and summary["level"] == "warning"
    by_logger = {line.get("logger"): line for line in lines}
    aiohttp = by_logger["aiohttp.server"]
    assert aiohttp["level"] == "error" and aiohttp["exception"][0]["exc_value"] == "bad header"
    assert "a deprecated call" in by_logger["py.warnings"]["event"]
    lost = by_logger["asyncio"]
    assert lost["event"].startswith("Task exception was never retrieved") and frames_of(lost)
    assert lost["exception"][0]["exc_value"] == "nobody awaited me"
    (thread,) = [line for line in lines if line["event"] == "thread.crashed"]
    assert thread["thread"] == "worker" and thread["exception"][0]["exc_type"] == "ZeroDivisionError"
    assert len(lines) == 5 + 1 + 4  # nothing else, and nothing twice


CHATTY = textwrap.dedent(
    """
    import logging, sys
    from keng.runtime.logs import configure_logging

    configure_logging("json", sys.argv[1])
    mqtt = logging.getLogger("mqtt")  # aiomqtt's logger
    for pending in (11, 12, 13):
        mqtt.warning("There are %d pending publish calls.", pending)
    mqtt.warning("Connection lost")
    """
)


def test_aiomqtts_pending_publish_notes_show_only_at_debug_level_and_its_other_warnings_always() -> None:
    def events(level: str) -> list[tuple[str, str]]:
        proc = subprocess.run(
            [sys.executable, "-c", CHATTY, level], env=production_env(), capture_output=True, text=True, cwd=ROOT
        )
        assert proc.returncode == 0, proc.stderr
        return [(line["level"], line["event"]) for line in json_lines(proc.stderr)]

    assert events("info") == [("warning", "Connection lost")]
    assert events("debug") == [
        *[("debug", f"There are {n} pending publish calls.") for n in (11, 12, 13)],
        ("warning", "Connection lost"),
    ]
