"""Real servers a test or a benchmark starts for itself and may break on purpose: a mosquitto on a free port
(`restart()` keeps the port), a PostgreSQL instance of its own in a temporary folder (`restart()` with `-m immediate`
is a crash and recovery), and a network namespace joined to this host by a veth pair whose link can be cut (a process
started inside it loses the host's servers without a word: no reset, no close, as behind a failed switch).

Used by tests/integration (the broker fixtures) and bench/faults.py. Each says what it lacks (`*_problem`) instead of
failing half-way: PostgreSQL's binaries and, as root, the `postgres` OS user (initdb refuses root); the namespace needs
root and `ip`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from keng.adapters.mqtt.broker import BrokerAddress, free_port

MOSQUITTO_CONF = """max_queued_messages 100000
max_inflight_messages 0
persistence false
allow_anonymous true
"""


def listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _wait_listening(host: str, port: int, proc: subprocess.Popen[bytes] | None, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not listening(host, port):
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            raise RuntimeError(f"{what} did not start on {host}:{port}")
        time.sleep(0.05)


class Mosquitto:
    """A mosquitto process owned by one test; `restart()` keeps the port. With `log`, what it logs (connections
    included) goes to that file. It listens on 127.0.0.1, and on the other `hosts` given (a veth address)."""

    def __init__(self, workdir: Path, log: Path | None = None, hosts: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        logging = "log_dest stderr\nconnection_messages true\nlog_timestamp false\n" if log is not None else ""
        listeners = "".join(f"listener {self.port} {host}\n" for host in ("127.0.0.1", *hosts))
        self.conf.write_text(listeners + MOSQUITTO_CONF + self.listener_conf() + logging)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def listener_conf(self) -> str:
        return ""

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress("127.0.0.1", self.port)

    def start(self) -> None:
        with open(self.log or os.devnull, "ab") as out:
            self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT)
        _wait_listening("127.0.0.1", self.port, self.proc, "mosquitto", 10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server binaries (initdb, pg_ctl): KENG_PG_BIN, else the newest
    /usr/lib/postgresql/*/bin, else the one `initdb` on the PATH lies in."""
    if os.environ.get("KENG_PG_BIN"):
        return Path(os.environ["KENG_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def postgres_problem() -> str | None:
    """Why a TempPostgres cannot start here (None: it can)."""
    folder = postgres_bin()
    if folder is None or not (folder / "initdb").exists() or not (folder / "pg_ctl").exists():
        return "PostgreSQL's server binaries (initdb, pg_ctl) are not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without `runuser` to start PostgreSQL as user postgres"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` OS user to run initdb as (initdb refuses root)"
    return None


class TempPostgres:
    """A PostgreSQL server of its own: initdb into a temporary folder (as OS user `postgres` when this process is
    root), trust authentication, listening on 127.0.0.1 and the other `hosts` given (clients from their subnets are
    trusted too) on a free port. `fsync=off`: a crash of the server (`restart()`, `-m immediate`) loses nothing the
    OS holds; only a crash of the machine would."""

    def __init__(self, hosts: tuple[str, ...] = (), port: int | None = None) -> None:
        problem = postgres_problem()
        if problem:
            raise RuntimeError(problem)
        self.bin = postgres_bin() or Path("/")
        self.hosts = ("127.0.0.1", *hosts)
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="keng-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.root.chmod(0o755)
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")
        self._initdb()

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, timeout=timeout, check=False)
        if done.returncode:
            tail = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {tail}")

    def _initdb(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--locale=C.UTF-8", "-N",
        )  # fmt: skip
        if len(self.hosts) > 1:
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write("host all all samenet trust\n")

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.root} -c listen_addresses={','.join(self.hosts)} -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )

    def _ctl(self, *args: str) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args)

    def start(self) -> None:
        self._ctl("-o", self._options(), "start")
        _wait_listening("127.0.0.1", self.port, None, "postgres", 30)

    def restart(self, mode: str = "immediate") -> None:
        """`pg_ctl restart -m immediate`: every server process ends at once without a checkpoint, every connection is
        cut, and the server starts again with crash recovery."""
        self._ctl("-m", mode, "-o", self._options(), "restart")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("-m", mode, "stop")

    def remove(self) -> None:
        """Stop it (at once) and delete its folder."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, host: str = "127.0.0.1", dbname: str = "postgres") -> str:
        return f"postgres://postgres@{host}:{self.port}/{dbname}"


def netns_problem() -> str | None:
    """Why a Netns cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"keng-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if made.returncode:
        return f"`ip netns add` failed: {made.stderr.decode(errors='replace').strip()[:200]}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


class Netns:
    """A network namespace joined to this host by a veth pair: the host end `host_ip`, the namespace's `ns_ip` (a /30
    of 10.231/16 picked from this process's id and `index`, below 64). A process started with `prefix` runs inside
    and reaches this host's servers at `host_ip` only; `cut()` takes the host end down, so that everything it sends or
    is sent is silently lost (its TCP connections hang, as behind a failed switch); `heal()` brings it back and the
    connections carry on where they were."""

    def __init__(self, index: int = 0) -> None:
        n = (os.getpid() % 256) * 64 + index % 64  # distinct per process (its id mod 256) and index (below 64)
        self.name = f"keng-f{os.getpid()}-{index}"
        self.host_if, self.ns_if = f"kfh{n}", f"kfn{n}"
        self.host_ip, self.ns_ip = f"10.231.{n // 64}.{(n % 64) * 4 + 1}", f"10.231.{n // 64}.{(n % 64) * 4 + 2}"
        self.made = False

    @staticmethod
    def _ip(*args: str) -> None:
        done = subprocess.run(["ip", *args], capture_output=True, check=False)
        if done.returncode:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")

    def create(self) -> None:
        self._ip("netns", "add", self.name)
        self.made = True
        self._ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        self._ip("link", "set", self.ns_if, "netns", self.name)
        self._ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        self._ip("link", "set", self.host_if, "up")
        self._ip("-n", self.name, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        self._ip("-n", self.name, "link", "set", self.ns_if, "up")
        self._ip("-n", self.name, "link", "set", "lo", "up")

    @property
    def prefix(self) -> list[str]:
        """Run a command inside: `[*netns.prefix, command, ...]` (ip execs it: the process id is the command's)."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        self._ip("link", "set", self.host_if, "down")

    def heal(self) -> None:
        self._ip("link", "set", self.host_if, "up")

    def remove(self) -> None:
        if self.made:
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
            self.made = False
