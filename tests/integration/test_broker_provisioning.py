"""A mosquitto started by the test from `keng broker config` (plain, and `--tls` with keng's own CA): no anonymous or
wrong-password logins; a device reads only its own and its areas' command topics and writes only its own ack and
status topics, so it can neither read another device's commands nor speak for it (a running dispatcher records
nothing); new credentials and rotations take effect after a regeneration and SIGHUP; and the files are private."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from cryptography import x509

from keng.adapters.mqtt.broker import free_port, parse_broker_url
from keng.adapters.store.app import Keng
from keng.adapters.store.config import locate_store
from keng.domain.dispatch import Dispatch
from keng.domain.endpoint import Endpoint
from keng.runtime.bootstrap import build_dispatcher
from keng.runtime.cli.main import main
from keng.runtime.dispatch.live import RetryPolicy
from keng.services import broadcasts
from keng.services.access import SYSTEM, enrol_by_system
from keng.services.inventory import bootstrap_admin, load_rows
from tests.integration import small_district
from tests.integration.conftest import _listening, no_broker
from tests.integration.harness import ALWAYS_OPEN

pytestmark = pytest.mark.mqtt

ROOT = "keng/v1"
DEV_A = "00595-T01-IP1"  # the small district's loudspeaker
DEV_B = "00595-T01-IP2"  # its neighbour in the same residential group
BOARD = "00598-EB1"  # an e-board in the other ward
EXTRA = [
    {"record": "endpoint", "code": DEV_B, "parent": "00595-T01", "kind": "ip-speaker"},
    {"record": "endpoint", "code": BOARD, "parent": small_district.WARD_B, "kind": "eboard"},
    {"record": "endpoint", "code": "00595-T01-FM1", "parent": "00595-T01", "kind": "fm-speaker"},
]


def ep(cls: str, code: str) -> str:
    return f"{ROOT}/cmd/{cls}/ep/{code}"


def area(cls: str, code: str) -> str:
    return f"{ROOT}/cmd/{cls}/area/{code}"


class Site:
    """A data directory holding the small district (plus a neighbour, a board and an FM receiver), the `keng` CLI
    on it, and a mosquitto run from the folder `keng broker config` writes."""

    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str], *, tls: bool, split: bool = False) -> None:
        self.data, self.out, self.capsys, self.tls = tmp / "data", tmp / "broker", capsys, tls
        self.env = locate_store(None, self.data).env
        self.data.mkdir(mode=0o700)
        app = Keng(env=self.env)
        bootstrap_admin(app)
        rows = [*small_district.ROWS, *EXTRA]
        load_rows(app, [(f"row {i}", dict(r)) for i, r in enumerate(rows, start=1)], by=SYSTEM)
        for member in small_district.STAFF:
            enrol_by_system(app, **member)
        enrol_by_system(app, handle="an", name="Ngô Văn An", roles=["admin"], wards=[small_district.WARD_B])
        app.close()
        self.port = free_port()
        self.keng_port = free_port() if split else None  # keng's own listener (--keng-port)
        self.proc: subprocess.Popen[bytes] | None = None
        self.passwords: dict[str, str] = {}

    def keng(self, *argv: str) -> tuple[int, str, str]:
        """Run the CLI in this process; returns the status, stdout and stderr."""
        self.capsys.readouterr()
        status = main(["--data", str(self.data), *argv])
        captured = self.capsys.readouterr()
        return status, captured.out, captured.err

    def credentials(self, code: str, by: str = "admin") -> str:
        status, out, err = self.keng("endpoint", "credentials", code, "--as", by, "--json")
        assert status == 0, err
        issued = orjson.loads(out)
        assert issued["username"] == code
        self.passwords[code] = issued["password"]
        return str(issued["password"])

    def config(self, *extra: str) -> dict[str, Any]:
        argv = ["broker", "config", "--out", str(self.out), "--port", str(self.port), "--listen", "127.0.0.1"]
        argv += ["--tls"] if self.tls else []
        argv += ["--keng-port", str(self.keng_port)] if self.keng_port else []
        status, out, err = self.keng(*argv, *extra, "--json")
        assert status == 0, err
        written: dict[str, Any] = orjson.loads(out)
        return written

    @property
    def keng_url(self) -> str:
        return (self.out / "keng.url").read_text().strip()

    @property
    def keng_password(self) -> str:
        address = parse_broker_url(self.keng_url.replace("mqtts://", "mqtt://").split("?")[0])
        assert address.password is not None
        return address.password

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.out / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while not (_listening("127.0.0.1", self.port) and _listening("127.0.0.1", self.keng_port or self.port)):
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto refused the written configuration: {self.proc.stderr.read()!r}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                raise AssertionError(f"mosquitto did not listen on {self.port}")
            time.sleep(0.05)

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def client(
        self, user: str | None, password: str | None = None, port: int | None = None, **kw: Any
    ) -> aiomqtt.Client:
        """A client of this broker (keng's account on keng's own listener, if there is one): over TLS it dials
        `localhost` and verifies the broker against DIR/ca.pem."""
        keng = user == "keng-dispatcher"
        if password is None and user is not None:
            password = self.keng_password if keng else self.passwords[user]
        port = port or (self.keng_port if keng and self.keng_port else self.port)
        tls = aiomqtt.TLSParameters(ca_certs=str(self.out / "ca.pem")) if self.tls else None
        host = "localhost" if self.tls else "127.0.0.1"
        return aiomqtt.Client(host, port, username=user, password=password, tls_params=tls, timeout=10,
                              protocol=aiomqtt.ProtocolVersion.V5, **kw)  # fmt: skip

    async def refused(self, user: str | None, password: str | None = None, port: int | None = None) -> bool:
        """True if the broker refuses this login as not authorised (any other failure is an error)."""
        try:
            async with self.client(user, password, port):
                return False
        except aiomqtt.MqttCodeError as e:
            assert e.rc in (5, 135), e  # 3.1.1 "not authorised", 5 "Not authorized"
            return True


@contextlib.contextmanager
def running(tmp_path: Path, capsys: pytest.CaptureFixture[str], *, tls: bool, split: bool = False) -> Iterator[Site]:
    if shutil.which("mosquitto") is None:
        no_broker("the mosquitto binary is not installed (apt-get install mosquitto)")
    site = Site(tmp_path, capsys, tls=tls, split=split)
    try:
        site.credentials(DEV_A)
        site.credentials(DEV_B)
        site.credentials(BOARD)
        site.config()
        site.start()
        yield site
    finally:
        site.stop()


@pytest.fixture(params=["plain", "tls", "tls+keng-listener"])
def site(request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Site]:
    with running(tmp_path, capsys, tls="tls" in request.param, split="keng" in request.param) as s:
        yield s


@pytest.fixture
def split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Site]:
    with running(tmp_path, capsys, tls=False, split=True) as s:
        yield s


@pytest.fixture
def tls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Site]:
    with running(tmp_path, capsys, tls=True) as s:
        yield s


@pytest.fixture
def plain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Site]:
    with running(tmp_path, capsys, tls=False) as s:
        yield s


async def collect(client: aiomqtt.Client, last: Callable[[str, bytes], bool], timeout: float = 10) -> list[str]:
    """Topics received (payload after a space) up to and including the first message `last` accepts."""
    got: list[str] = []
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            topic, payload = str(message.topic), bytes(message.payload)  # type: ignore[arg-type,unused-ignore]
            got.append(f"{topic} {payload.decode()}")
            if last(topic, payload):
                return got
    raise AssertionError("unreachable")


async def until(predicate: Callable[[], Any], timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        await asyncio.sleep(0.05)


# -- logins -----------------------------------------------------------------------------------------------------------


async def test_anonymous_and_wrong_passwords_are_refused_and_issued_credentials_log_in(site: Site) -> None:
    assert await site.refused(None)
    assert await site.refused(DEV_A, "not-the-password")
    assert await site.refused(DEV_A, site.passwords[DEV_B])  # another device's password
    assert await site.refused("00595-T01-FM1", site.passwords[DEV_A])  # no credentials, no account
    assert await site.refused("keng-dispatcher", site.passwords[DEV_A])
    for user in (DEV_A, BOARD, "keng-dispatcher"):
        assert not await site.refused(user)


async def test_tls_verifies_the_broker_against_kengs_ca_and_no_other(tls: Site, tmp_path: Path) -> None:
    from keng.adapters.mqtt.certs import make_ca

    site = tls
    other = tmp_path / "other-ca.pem"
    other.write_bytes(make_ca().cert_pem)
    stranger = aiomqtt.Client("localhost", site.port, username=DEV_A, password=site.passwords[DEV_A], timeout=10,
                              tls_params=aiomqtt.TLSParameters(ca_certs=str(other)))  # fmt: skip
    with pytest.raises(aiomqtt.MqttError):
        async with stranger:
            pass
    async with aiomqtt.Client("127.0.0.1", site.port, username=DEV_A, password=site.passwords[DEV_A], timeout=10,
                              tls_params=aiomqtt.TLSParameters(ca_certs=str(site.out / "ca.pem"))):  # fmt: skip
        pass  # the certificate names 127.0.0.1 as well as localhost


# -- what a device may read and write -------------------------------------------------------------------------------


async def test_a_device_reads_only_its_own_and_its_areas_topics_whatever_it_subscribes(site: Site) -> None:
    allowed = [ep("speaker", DEV_A), area("speaker", "00595-T01"), area("speaker", "00595"), area("speaker", "021")]
    others = [
        ep("speaker", DEV_B),  # the neighbour's own commands
        ep("board", BOARD),
        area("speaker", small_district.WARD_B),  # another ward
        area("board", "00595"),  # its ward, the other class
        f"{ROOT}/ack/{DEV_B}",
        f"{ROOT}/status/{DEV_B}",
        "elsewhere/cmd",
    ]
    async with site.client(DEV_A) as device, site.client("keng-dispatcher") as keng:
        for topic in [*allowed, *others, f"{ROOT}/#", "#"]:
            await device.subscribe(topic, qos=1)  # granted or not: nothing it may not read is delivered
        for topic in [*others, *allowed]:
            await keng.publish(topic, topic.encode(), qos=1)
        await keng.publish(ep("speaker", DEV_A), b"end", qos=1)
        got = await collect(device, lambda _, payload: payload == b"end")
    # each allowed message arrives once per matching subscription (its own, the root's and '#'), in order
    assert sorted(set(got)) == sorted({f"{t} {t}" for t in allowed} | {f"{ep('speaker', DEV_A)} end"})
    assert not [line for line in got if any(line.startswith(f"{o} ") for o in others)]


async def test_a_device_writes_only_its_own_ack_and_status_and_cannot_command_others(site: Site) -> None:
    forged = [
        f"{ROOT}/ack/{DEV_B}",
        f"{ROOT}/status/{DEV_B}",
        f"{ROOT}/ack/~keng-dispatcher",  # another's barrier marker
        ep("speaker", DEV_B),
        area("speaker", "00595"),
        f"{ROOT}/ack/{DEV_A}/more",
    ]
    async with (
        site.client("keng-dispatcher") as keng,
        site.client(DEV_A) as device,
        site.client(DEV_B) as neighbour,
    ):
        await keng.subscribe(f"{ROOT}/ack/#", qos=1)
        await keng.subscribe(f"{ROOT}/status/#", qos=1)
        await neighbour.subscribe(ep("speaker", DEV_B), qos=1)
        await neighbour.subscribe(area("speaker", "00595"), qos=1)
        for topic in forged:
            await device.publish(topic, b"forged", qos=1)
        await device.publish(f"{ROOT}/ack/{DEV_A}", b"own-ack", qos=1)
        await device.publish(f"{ROOT}/status/{DEV_A}", b"own-status", qos=1)
        heard = await collect(keng, lambda topic, _: topic == f"{ROOT}/status/{DEV_A}")
        await keng.publish(ep("speaker", DEV_B), b"end", qos=1)
        commands = await collect(neighbour, lambda _, payload: payload == b"end")
    assert heard == [f"{ROOT}/ack/{DEV_A} own-ack", f"{ROOT}/status/{DEV_A} own-status"]
    assert commands == [f"{ep('speaker', DEV_B)} end"]


@pytest.mark.parametrize("listeners", ["one listener", "keng's own listener", "tls"])
async def test_a_running_dispatcher_records_nothing_a_device_says_for_another(
    listeners: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dispatcher delivers through the provisioned broker (also over TLS, with keng.url's `mqtts://` and the CA
    `keng broker config --tls` made) and records only what a device says for itself."""
    with running(tmp_path, capsys, tls=listeners == "tls", split=listeners == "keng's own listener") as site:
        await _dispatcher_records_nothing_forged(site)


async def _dispatcher_records_nothing_forged(site: Site) -> None:
    app = Keng(env=site.env)
    dispatcher = build_dispatcher(Keng(env=site.env), parse_broker_url(site.keng_url), programme=ALWAYS_OPEN,
                                  retry=RetryPolicy(first_s=1.0, cap_s=2.0))  # fmt: skip
    task = asyncio.create_task(dispatcher.run())
    try:
        await asyncio.wait_for(dispatcher.ready.wait(), 20)
        async with site.client(DEV_A, identifier=f"keng-dev-{DEV_A}") as device:
            await device.subscribe(ep("speaker", DEV_A), qos=1)
            await device.subscribe(area("speaker", "00595-T01"), qos=1)
            await device.subscribe(area("speaker", "00595"), qos=1)
            bid = broadcasts.draft(app, by="lan", title="Cảnh báo", text="Đề nghị bà con chú ý.", priority="emergency",
                                   target_areas=[small_district.WARD_A])  # fmt: skip
            broadcasts.submit(app, bid, by="lan")
            broadcasts.approve(app, bid, by="hung")
            got = await collect(device, lambda _, payload: b'"op":"play"' in payload, timeout=20)
            command = orjson.loads(got[-1].split(" ", 1)[1])
            assert got[-1].startswith(f"{area('speaker', '00595')} ")  # the ward's group topic reached it

            def ack(code: str, state: str) -> bytes:
                at = datetime.now(UTC).isoformat()
                return orjson.dumps({"v": 1, "endpoint": code, "dispatch": command["dispatch"],
                                     "seq": command["seq"], "state": state, "at": at})  # fmt: skip

            online = {"v": 1, "state": "online", "at": datetime.now(UTC).isoformat()}
            await device.publish(f"{ROOT}/ack/{DEV_B}", ack(DEV_B, "received"), qos=1)
            await device.publish(f"{ROOT}/status/{DEV_B}", orjson.dumps({**online, "endpoint": DEV_B}), qos=1)
            await device.publish(f"{ROOT}/status/{DEV_A}", orjson.dumps({**online, "endpoint": DEV_A}), qos=1)
            await device.publish(f"{ROOT}/ack/{DEV_A}", ack(DEV_A, "received"), qos=1)

            def acked() -> set[str]:
                return {
                    a["endpoint"]
                    for _, e in app.read_events()
                    if isinstance(e, Dispatch.AcksRecorded) and str(e.originator_id) == command["dispatch"]
                    for a in e.acks
                }

            await until(lambda: DEV_A in acked())
            came_online = {e.originator_id for _, e in app.read_events() if isinstance(e, Endpoint.CameOnline)}
            assert app.endpoint(DEV_A).id in came_online  # its own status and ack were heard ...
            assert app.endpoint(DEV_B).id not in came_online  # ... what it said for its neighbour never reached keng
            assert acked() == {DEV_A}
            assert dispatcher.intake.refused == {}  # not even refused: the broker never delivered it
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        app.close()


async def test_with_kengs_own_listener_no_device_takes_over_anothers_session(split: Site) -> None:
    site = split
    assert site.keng_port is not None
    assert await site.refused(DEV_A, port=site.keng_port)  # devices log in on their own listener only ...
    assert await site.refused("keng-dispatcher", port=site.port)  # ... and keng on its own
    async with site.client(DEV_B, identifier=f"keng-dev-{DEV_B}") as neighbour:
        await neighbour.subscribe(ep("speaker", DEV_B), qos=1)
        async with site.client(DEV_A, identifier=f"keng-dev-{DEV_B}"):  # B's client id
            pass
        async with site.client("keng-dispatcher", identifier="one") as keng, site.client("keng-dispatcher") as other:
            await other.publish(ep("speaker", DEV_B), b"still here", qos=1)  # keng's connections coexist
            await keng.publish(ep("speaker", DEV_B), b"end", qos=1)
        got = await collect(neighbour, lambda _, payload: payload == b"end")
    assert got == [f"{ep('speaker', DEV_B)} still here", f"{ep('speaker', DEV_B)} end"]


# -- changes: new devices, rotation, reload ---------------------------------------------------------------------------


async def until_login(site: Site, user: str, password: str, *, refused: bool, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while await site.refused(user, password) != refused:
        assert time.monotonic() < deadline, f"{user} still {'accepted' if refused else 'refused'} after SIGHUP"
        await asyncio.sleep(0.1)


async def test_a_new_device_and_a_rotation_take_effect_after_regenerating_and_sighup(plain: Site) -> None:
    site = plain
    app = Keng(env=site.env)
    load_rows(app, [("row", {"record": "endpoint", "code": "00598-IP9", "parent": "00598", "kind": "ip-speaker"})],
              by="admin")  # fmt: skip
    app.close()
    new = site.credentials("00598-IP9", by="an")  # the other ward's admin
    old = site.passwords[DEV_A]
    rotated = site.credentials(DEV_A)
    assert rotated != old
    assert await site.refused("00598-IP9", new)  # not yet: the broker's files are as they were
    assert not await site.refused(DEV_A, old) and await site.refused(DEV_A, rotated)
    written = site.config()
    assert written["devices"] == 4
    site.reload()
    await until_login(site, "00598-IP9", new, refused=False)
    await until_login(site, DEV_A, old, refused=True)
    assert not await site.refused(DEV_A, rotated)
    async with site.client("00598-IP9") as device, site.client("keng-dispatcher") as keng:
        await device.subscribe(area("speaker", "00598"), qos=1)
        await keng.publish(area("speaker", "00598"), b"to the ward", qos=1)
        assert await collect(device, lambda *_: True) == [f"{area('speaker', '00598')} to the ward"]
    # a decommissioned device leaves the broker at the next regeneration
    assert site.keng("endpoint", "decommission", DEV_B, "--reason", "thanh lý", "--as", "admin")[0] == 0
    assert site.config()["devices"] == 3
    site.reload()
    await until_login(site, DEV_B, site.passwords[DEV_B], refused=True)


async def test_a_reload_disconnects_the_rotated_and_the_decommissioned_and_nobody_else(plain: Site) -> None:
    site = plain
    async with (
        site.client(DEV_A) as rotated,
        site.client(BOARD) as retired,
        site.client(DEV_B) as unchanged,
        site.client("keng-dispatcher") as keng,
    ):
        await unchanged.subscribe(ep("speaker", DEV_B), qos=1)
        site.credentials(DEV_A)
        assert site.keng("endpoint", "decommission", BOARD, "--reason", "thanh lý", "--as", "admin")[0] == 0
        site.config()  # keng's own hash is salted anew: the same password still verifies
        site.reload()
        for gone in (rotated, retired):
            with pytest.raises(aiomqtt.MqttError):
                await collect(gone, lambda *_: True)
        await keng.publish(ep("speaker", DEV_B), b"still here", qos=1)
        assert await collect(unchanged, lambda *_: True) == [f"{ep('speaker', DEV_B)} still here"]


# -- the CLI and the files --------------------------------------------------------------------------------------------


def test_credentials_are_shown_once_kept_only_as_a_hash_and_recorded_without_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = Site(tmp_path, capsys, tls=True)
    password = site.credentials(DEV_A)
    rotated = site.credentials(DEV_A)
    status, out, _ = site.keng("events", "--json")
    assert status == 0
    log = [e for e in orjson.loads(out) if e["event"] == "CredentialsIssued"]
    assert [(e["aggregate"], e["actor"], e["data"]["rotated"]) for e in log] == [
        ("Endpoint", "admin", False),
        ("Endpoint", "admin", True),
    ]
    stored = b"".join(p.read_bytes() for p in site.data.iterdir() if p.is_file())
    assert password.encode() not in stored and rotated.encode() not in stored
    hashes = orjson.loads((site.data / "mqtt.passwords.json").read_bytes())
    assert list(hashes) == [DEV_A] and hashes[DEV_A].startswith("$7$101$")
    assert hashes[DEV_A].encode() not in out.encode()
    status, out, err = site.keng("endpoint", "credentials", DEV_A, "--as", "admin")
    assert status == 0 and "password: " in out and "00595-T01-IP1" in out
    for argv, fragment in [
        (["NO-SUCH", "--as", "admin"], "endpoint 'NO-SUCH' not found"),
        (["00595-T01-FM1", "--as", "admin"], "mqtt-devices-only"),
        ([DEV_A, "--as", "lan"], "admin role is required"),
        ([DEV_A, "--as", "an"], "approver-area-scope"),  # an admin of the other ward
    ]:
        status, out, err = site.keng("endpoint", "credentials", *argv)
        assert status == 1 and fragment in err and out == "", (argv, err)
    assert site.keng("endpoint", "decommission", DEV_B, "--reason", "thanh lý", "--as", "admin")[0] == 0
    status, _, err = site.keng("endpoint", "credentials", DEV_B, "--as", "admin")
    assert status == 1 and "decommissioned-is-final" in err


def test_the_written_files_are_private_where_secret_and_tls_reuses_its_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = Site(tmp_path, capsys, tls=True)
    site.credentials(DEV_A)
    first = site.config()
    assert (first["ca"], first["server_cert"]) == ("generated", "issued")
    modes = {p.name: p.stat().st_mode & 0o777 for p in site.out.iterdir()}
    assert modes == {
        "mosquitto.conf": 0o600,
        "passwords": 0o600,
        "acl": 0o600,
        "keng.url": 0o600,
        "ca.key": 0o600,
        "server.key": 0o600,
        "ca.pem": 0o644,
        "server.pem": 0o644,
    }
    assert site.out.stat().st_mode & 0o777 == 0o700
    assert site.keng_url.startswith(f"mqtts://keng-dispatcher:{site.keng_password}@127.0.0.1:{site.port}?ca=")
    ca, server = (site.out / "ca.pem").read_bytes(), (site.out / "server.pem").read_bytes()
    again = site.config()  # a regeneration keeps the CA devices trust, and the certificate while it still fits
    assert (again["ca"], again["server_cert"]) == ("reused", "kept")
    assert (site.out / "ca.pem").read_bytes() == ca and (site.out / "server.pem").read_bytes() == server
    assert site.keng_password in site.keng_url  # keng's own password is generated once
    wider = site.config("--host", "broker.bactuliem.example", "--host", "203.0.113.7")
    assert (wider["ca"], wider["server_cert"]) == ("reused", "issued")
    cert = x509.load_pem_x509_certificate((site.out / "server.pem").read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "broker.bactuliem.example"}
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1", "203.0.113.7"}


def test_a_given_ca_signs_the_server_certificate_and_bad_options_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keng.adapters.mqtt.certs import make_ca

    site = Site(tmp_path, capsys, tls=True)
    given = make_ca("Sở TT&TT CA")
    given.write(tmp_path / "given.pem", tmp_path / "given.key")
    written = site.config("--ca-cert", str(tmp_path / "given.pem"), "--ca-key", str(tmp_path / "given.key"))
    assert (written["ca"], written["server_cert"]) == ("given", "issued")
    assert (site.out / "ca.pem").read_bytes() == given.cert_pem and not (site.out / "ca.key").exists()
    cert = x509.load_pem_x509_certificate((site.out / "server.pem").read_bytes())
    cert.verify_directly_issued_by(given.certificate)
    assert site.config()["server_cert"] == "kept"  # later runs need the CA's key only to issue another
    with pytest.raises(AssertionError, match=r"has no ca\.key beside it"):
        site.config("--host", "broker.example")  # a new name needs a new certificate, and the CA's key is not here


def test_a_server_certificate_made_elsewhere_is_used_as_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from keng.adapters.mqtt.certs import make_ca, make_server_cert

    site = Site(tmp_path, capsys, tls=True)
    ca = make_ca("Public-ish CA")
    ca.write(tmp_path / "given-ca.pem", tmp_path / "given-ca.key")
    made = make_server_cert(ca, ["broker.example"])
    made.write(tmp_path / "made.pem", tmp_path / "made.key")
    given = ["--cert", str(tmp_path / "made.pem"), "--key", str(tmp_path / "made.key")]
    written = site.config(*given, "--ca-cert", str(tmp_path / "given-ca.pem"))
    assert (written["ca"], written["server_cert"]) == ("given", "given")
    assert (site.out / "server.pem").read_bytes() == made.cert_pem and (site.out / "ca.pem").read_bytes() == ca.cert_pem
    assert site.keng_url.endswith(f"?ca={site.out / 'ca.pem'}")
    public = site.config(*given)  # a public CA: the system's trust store verifies it
    assert public["server_cert"] == "given" and public["notes"] and "?ca=" not in site.keng_url
    other = make_server_cert(ca, ["broker.example"])
    other.write(tmp_path / "other.pem", tmp_path / "other.key")
    mismatched = ["--cert", str(tmp_path / "made.pem"), "--key", str(tmp_path / "other.key")]
    status, _, err = site.keng("broker", "config", "--out", str(site.out), "--tls", *mismatched)
    assert status == 1 and "is not an unencrypted PEM private key of" in err
    assert (site.out / "server.key").read_bytes() == made.key_pem  # nothing was written


def test_bad_broker_options_are_named_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = Site(tmp_path, capsys, tls=True)
    site.config()
    base = ["broker", "config", "--out", str(tmp_path / "x")]
    for argv, fragment in [
        (["--cert", "a.pem"], "--cert need --tls"),
        (["--tls", "--cert", "a.pem"], "--cert and --key go together"),
        (["--tls", "--ca-cert", "a.pem"], "--ca-cert and --ca-key go together"),
        (["--tls", "--ca-cert", str(tmp_path / "missing.pem"), "--ca-key", "k"], "cannot read"),
        (["--tls", "--ca-cert", str(site.out / "server.pem"), "--ca-key", str(site.out / "server.key")],
         "not a CA certificate"),
        (["--tls", "--cert", "a.pem", "--key", "b.key", "--ca-key", "c.key"], "--ca-key signs a server certificate"),
        (["--listen", "127.0.0.1\nallow_anonymous true"], "not a host name or an IP address"),
        (["--port", "1883", "--keng-port", "1883"], "a port other than the devices'"),
        (["--keng-listen", "127.0.0.1"], "needs its port"),
    ]:  # fmt: skip
        status, out, err = site.keng(*base, *argv)
        assert status == 1 and fragment in err and out == "", (argv, err)
    assert not (tmp_path / "x").exists()
