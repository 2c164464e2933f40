"""How `keng` behaves around its commands, run as a user runs it (a subprocess, a real store): its version, a reader
that goes away, a port already taken, `init` on a store that exists, and failures under `--json`."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.e2e.test_cli import Keng


@pytest.fixture
def keng(tmp_path: Path) -> Keng:
    return Keng(tmp_path / "data", None)


def test_version_is_the_installed_distributions(keng: Keng) -> None:
    from importlib.metadata import version

    assert keng.run("--version").stdout == f"keng {version('keng')}\n"


# argparse itself drops the help it could not write and exits 0; a command's output ends with 141.
@pytest.mark.parametrize(("argv", "status"), [(("events",), 141), (("--help",), 0)], ids=["events", "help"])
def test_a_reader_that_went_away_ends_the_command_quietly(keng: Keng, argv: tuple[str], status: int) -> None:
    keng.run("init")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before keng writes anything (`keng events | head -0`, a closed pager)
    try:
        env = {**os.environ, "KENG_LOG_FORMAT": "json", "KENG_LOG_LEVEL": "warning"}
        proc = subprocess.run([*keng.base, *argv], stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (status, "")


def test_a_busy_port_is_one_clear_error_before_any_banner(keng: Keng) -> None:
    keng.run("init")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        proc = keng.run("serve", "--port", port, "--no-dispatcher", ok=False)
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = [orjson.loads(text) for text in proc.stderr.splitlines()]
    assert line["event"] == "command.failed"
    assert line["message"] == (
        f"lỗi: Cổng {port} đang được chương trình khác sử dụng — port {port} on 127.0.0.1 is already in use: "
        "stop what listens there or choose another --port"
    )


@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("dispatch", "run")], ids=["serve", "dispatch-run"])
def test_a_taken_broker_port_is_one_clear_error_before_anything_starts(keng: Keng, command: tuple[str, ...]) -> None:
    keng.run("init")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = keng.run(*command, ok=False, KENG_BROKER_LISTEN=f"127.0.0.1:{port}")
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = [orjson.loads(text) for text in proc.stderr.splitlines()]
    assert line["message"] == (
        f"lỗi: Cổng {port} đang được chương trình khác sử dụng — port {port} on 127.0.0.1 is already in use: "
        "stop what listens there or choose another KENG_BROKER_LISTEN (HOST:PORT of the embedded broker)"
    )


@pytest.mark.parametrize(
    ("argv", "settings", "detail"),
    [
        (("serve", "--broker", "mqtts://localhost?ca=/nonexistent/ca.pem"), {}, "cannot read the broker CA file"),
        (("dispatch", "run"), {"KENG_MQTT": "mqtts://h", "KENG_MQTT_CA": "/etc/hostname"}, "holds no usable PEM"),
        (("dispatch", "run", "--broker", "mqtt://h:port"), {}, "broker URL is malformed"),
        (("simulate", "--broker", "mqtt://h?ca=x.pem"), {}, "ca= needs TLS: use mqtts://"),
        (("dispatch", "run"), {"KENG_TOPIC_ROOT": "keng/#"}, "KENG_TOPIC_ROOT: topic root 'keng/#': no wildcards"),
        (("dispatch", "run"), {"KENG_BROKER_LISTEN": "1883"}, "KENG_BROKER_LISTEN must be HOST:PORT"),
    ],
)
def test_broker_settings_that_cannot_be_used_are_one_clear_error(
    keng: Keng, argv: tuple[str, ...], settings: dict[str, str], detail: str
) -> None:
    keng.run("init", "--sample")
    proc = keng.run(*argv, ok=False, **settings)
    assert proc.returncode in (1, 2) and proc.stdout == ""
    (line,) = proc.stderr.splitlines()  # a setting: before logging is configured, a line of text; else a JSON log
    message = orjson.loads(line)["message"] if line.startswith("{") else line
    assert message.startswith("lỗi: ") and detail in message, line


def test_a_bad_topic_root_option_is_a_usage_error(keng: Keng) -> None:
    proc = keng.run("simulate", "--topic-root", "/keng", ok=False)
    assert proc.returncode == 2 and "no leading, trailing or doubled '/'" in proc.stderr


def test_init_on_a_store_that_holds_events_says_so_once_and_changes_nothing(tmp_path: Path, store_url: str) -> None:
    keng = Keng(tmp_path / "data", None if store_url.startswith("sqlite") else store_url)
    keng.run("init", "--sample")
    events = len(keng.json("events"))
    for again in (("init", "--sample"), ("init",)):
        proc = keng.run(*again, ok=False)
        assert proc.returncode == 1 and proc.stdout == ""
        (line,) = [orjson.loads(text) for text in proc.stderr.splitlines()]
        assert line["message"].startswith("lỗi: Kho dữ liệu đã có, không khởi tạo lại — the store at ")
        assert line["message"].endswith(f"already holds {events} events; nothing was changed")
    assert len(keng.json("events")) == events


def test_a_failure_under_json_is_one_json_object_with_headline_detail_and_rule(keng: Keng, tmp_path: Path) -> None:
    keng.run("init", "--sample")
    refused = keng.run("report", "kpi", "--as", "lan.nguyen", "--json", ok=False)
    assert refused.returncode == 1 and refused.stdout == ""
    (failure,) = [orjson.loads(text) for text in refused.stderr.splitlines()]
    assert set(failure) == {"headline", "detail", "rule", "command"}
    assert (failure["headline"], failure["rule"], failure["command"]) == (
        "Không có quyền thực hiện",
        "role-required",
        "report",
    )
    assert "auditor" in failure["detail"]
    missing = keng.run("broadcast", "show", "abcdef12", "--json", ok=False)
    (failure,) = [orjson.loads(text) for text in missing.stderr.splitlines()]
    assert (failure["headline"], failure["rule"]) == ("Không tìm thấy", None) and "abcdef12" in failure["detail"]
    before_init = Keng(tmp_path / "nothing", None).run("endpoint", "list", "--json", ok=False)
    (failure,) = [orjson.loads(text) for text in before_init.stderr.splitlines()]
    assert failure["headline"] == "Không mở được kho dữ liệu" and "keng init" in failure["detail"]
    usage = keng.run("report", "kpi", "--json", ok=False)  # no --as: argparse refuses it
    (failure,) = [orjson.loads(text) for text in usage.stderr.splitlines()]
    assert usage.returncode == 2 and failure == {
        "headline": "Lệnh không hợp lệ",
        "detail": "keng report: the following arguments are required: --as",
        "rule": "usage",
        "command": "report",
    }


def test_an_encrypted_client_key_is_one_clear_error_and_never_a_passphrase_prompt(keng: Keng, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from keng.adapters.mqtt.certs import make_ca, make_server_cert

    made = make_server_cert(make_ca("client CA"), ["client.example"])
    made.write(tmp_path / "client.pem", tmp_path / "plain.key")
    key = serialization.load_pem_private_key(made.key_pem, password=None)
    encrypted = key.private_bytes(  # what `openssl genrsa -aes128` gives: keng cannot prompt for the passphrase
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    (tmp_path / "client.key").write_bytes(encrypted)
    keng.run("init", "--sample")
    url = f"mqtts://dev:SECRETPW@localhost?cert={tmp_path / 'client.pem'}&key={tmp_path / 'client.key'}"
    proc = keng.run("dispatch", "run", "--broker", url, ok=False)
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()  # no "Enter PEM pass phrase:" from OpenSSL
    message = orjson.loads(line)["message"]
    assert "client.key is encrypted" in message and "SECRETPW" not in line, line


def test_dispatch_run_stops_on_sigterm_while_the_broker_cannot_be_reached(keng: Keng) -> None:
    import signal
    import time

    keng.run("init", "--sample")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    env = {**os.environ, "KENG_LOG_FORMAT": "json", "KENG_LOG_LEVEL": "info", "KENG_MQTT": f"mqtt://127.0.0.1:{port}"}
    proc = subprocess.Popen([*keng.base, "dispatch", "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while b"mqtt.disconnected" not in proc.stderr.readline():  # it runs, and retries the broker
            assert proc.poll() is None and time.monotonic() < deadline
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0  # an operator's stop (systemd, Ctrl-C) works before the dispatcher is ready
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(p) for p in f.read().split()}
    except FileNotFoundError:
        return set()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads a process's children from /proc")
def test_simulate_stopped_before_its_fleet_is_ready_leaves_no_worker_behind(keng: Keng) -> None:
    import signal
    import time

    keng.run("init", "--sample")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there, the fleet never gets ready
    env = {**os.environ, "KENG_LOG_LEVEL": "debug"}  # the workers log each failed connection
    argv = [*keng.base, "simulate", "--broker", f"mqtt://127.0.0.1:{port}", "--processes", "2"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    workers: set[int] = set()
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        while b"mqtt.disconnected" not in proc.stdout.readline():  # the workers run, and retry the broker
            assert proc.poll() is None and time.monotonic() < deadline
        workers = {p for p in _children(proc.pid) if b"spawn" in Path(f"/proc/{p}/cmdline").read_bytes()}
        assert len(workers) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{p}").exists() and b"Z" not in Path(f"/proc/{p}/stat").read_bytes().split()[2:3]
                  for p in workers):  # fmt: skip
            assert time.monotonic() < deadline, "a simulate worker outlived keng simulate"
            time.sleep(0.2)
    finally:
        for p in [proc.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        proc.wait()
