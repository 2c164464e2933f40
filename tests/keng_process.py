"""`keng` as a user runs it: CLI commands and `keng serve` in subprocesses over one data directory (and store)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.http_server import Client

KENG = [sys.executable, "-m", "keng.runtime.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class KengHome:
    """One data directory (and optionally a store URL), its CLI, and at most one `keng serve` process."""

    data: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    client: Client = field(default_factory=lambda: Client(0))

    @property
    def log(self) -> Path:
        return self.data / "serve.log"

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*KENG, *argv], env=self.env, capture_output=True, text=True, timeout=120)
        assert not check or done.returncode == 0, f"keng {' '.join(argv)}: {done.returncode}\n{done.stderr}"
        return done

    def serve(self, *argv: str) -> Client:
        """Start `keng serve` on a free port and wait until it is ready."""
        port = free_port()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*KENG, "serve", "--port", str(port), *argv], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.client = Client(port)
        deadline = time.time() + 30
        while True:
            try:
                if self.client.request("GET", "/readyz").status == 200:
                    return self.client
            except OSError:
                pass
            assert self.proc.poll() is None and time.time() < deadline, self.log.read_text()
            time.sleep(0.2)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Stop the service with a signal, as an operator or systemd does; returns its exit status."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def kill(self) -> None:
        """End a service a test left running (a failed test); nothing when none runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


KENG_SETTINGS_CLEARED = (
    "KENG_MQTT",
    "KENG_MQTT_CA",
    "KENG_MQTT_CERT",
    "KENG_MQTT_KEY",
    "KENG_TOPIC_ROOT",
    "KENG_STORE",
    "KENG_AUDIT_CHAIN",
    "KENG_AUDIT_SEAL_INTERVAL_S",
)


def keng_home(data: Path, **env: str) -> KengHome:
    """A data directory with nothing in it yet, on SQLite unless `KENG_STORE` is given; logs as JSON. Its embedded
    broker (`keng serve` without a broker) listens on a free port of its own (KENG_BROKER_LISTEN), not on 1883, where
    CI's mosquitto (or another test's keng) may listen."""
    base = {**os.environ, "KENG_DATA": str(data), "KENG_LOG_FORMAT": "json", "KENG_LOG_LEVEL": "info"}
    for name in KENG_SETTINGS_CLEARED:
        base.pop(name, None)
    base["KENG_BROKER_LISTEN"] = f"127.0.0.1:{free_port()}"
    return KengHome(data, base | env)
