"""Broker provisioning without a broker: mosquitto's `$7$` password hash as keng writes it, the ACL, password file and
mosquitto.conf as rendered, and the domain rule of who may issue a device's credentials."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from keng.adapters.mqtt.accounts import (
    ITERATIONS,
    DevicePasswords,
    KengAccounts,
    mosquitto_hash,
    new_password,
    verify_mosquitto_hash,
)
from keng.adapters.mqtt.provision import (
    BrokerOptions,
    DeviceGrant,
    ProvisionError,
    TlsOptions,
    check_options,
    keng_url,
    render_acl,
    render_conf,
    render_passwords,
)
from keng.domain.endpoint import Endpoint
from keng.domain.errors import IllegalTransition, InvalidValue, NotAuthorised, OutOfScope
from keng.runtime.config import load_settings
from tests.unit.helpers import staff

# A line `mosquitto_passwd -b FILE alice secretpw` (mosquitto 2.0.11) wrote: the reference keng's hashing must match.
MOSQUITTO_LINE = (
    "alice:$7$101$6D+P4JVNd9jGhPlt$swhuLro+pMyGEu0ck96K9fksJvFFmi0CjPsdZWDOlV8bCOmLNO1ti4aU+uFaW/"
    "DEFIVTR7sCDIcjd0o48PHWYQ=="
)
HASH_SHAPE = re.compile(r"^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$")


# -- the hash ---------------------------------------------------------------------------------------------------------


def test_the_hash_is_the_one_mosquitto_passwd_writes_for_the_same_salt() -> None:
    hashed = MOSQUITTO_LINE.split(":", 1)[1]
    salt = base64.b64decode(hashed.split("$")[3])
    assert mosquitto_hash("secretpw", salt=salt) == hashed
    assert verify_mosquitto_hash("secretpw", hashed)
    assert not verify_mosquitto_hash("secretpw2", hashed)


def test_a_fresh_hash_has_mosquittos_shape_a_new_salt_each_time_and_verifies() -> None:
    first, second = mosquitto_hash("p4ss"), mosquitto_hash("p4ss")
    assert HASH_SHAPE.match(first) and HASH_SHAPE.match(second)
    assert first != second  # salted
    assert ITERATIONS == 101
    assert verify_mosquitto_hash("p4ss", first) and not verify_mosquitto_hash("p4ss ", first)


@pytest.mark.parametrize("text", ["", "p4ss", "$6$abc$def", "$7$0$AAAA$AAAA", "$7$101$!!$AAAA", "$7$101$AAAA"])
def test_anything_that_is_not_a_pbkdf2_hash_never_verifies(text: str) -> None:
    assert not verify_mosquitto_hash("p4ss", text)


def test_mosquitto_passwd_itself_reads_keng_hashes_back(tmp_path: Path) -> None:
    """mosquitto_passwd parses every line of a file when it adds a user: it keeps keng's line as it is, and keng
    verifies the line it adds (the broker tests log in with keng's hashes for real)."""
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed")
    path = tmp_path / "passwords"
    line = f"dev1:{mosquitto_hash('p4ss')}\n"
    path.write_text(line)
    subprocess.run(["mosquitto_passwd", "-b", str(path), "dev2", "other"], check=True, capture_output=True)
    lines = path.read_text().splitlines()
    assert lines[0] == line.strip() and lines[1].startswith("dev2:$7$101$")
    assert verify_mosquitto_hash("other", lines[1].split(":", 1)[1])


def test_passwords_are_long_random_and_url_safe() -> None:
    passwords = {new_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in passwords)


def test_the_stores_are_private_files_and_keep_only_hashes_of_device_passwords(tmp_path: Path) -> None:
    devices = DevicePasswords(tmp_path / "data")
    devices.set("EP1", "secret-one")
    raw = devices.path.read_text()
    assert "secret-one" not in raw and verify_mosquitto_hash("secret-one", devices.hashes()["EP1"])
    devices.set("EP1", "secret-two")  # a rotation replaces the hash
    assert not verify_mosquitto_hash("secret-one", devices.hashes()["EP1"])
    accounts = KengAccounts(tmp_path / "data")
    first = accounts.password()
    assert accounts.password() == first == KengAccounts(tmp_path / "data").password()  # generated once, then kept
    for path in (devices.path, accounts.path):
        assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700


# -- rendering --------------------------------------------------------------------------------------------------------

SPEAKER = DeviceGrant("00595-T01-IP1", "speaker", ("00595-T01", "00595", "021"))
BOARD = DeviceGrant("00598-EB1", "board", ("00598", "021"))


def _blocks(acl: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    user = None
    for line in acl.splitlines():
        if line.startswith("user "):
            user = line.split(" ", 1)[1]
            blocks[user] = []
        elif line and not line.startswith("#"):
            assert user is not None, f"an ACL line for anonymous clients: {line}"
            blocks[user].append(line)
    return blocks


def test_a_device_reads_its_own_and_its_areas_topics_and_writes_only_its_ack_and_status() -> None:
    blocks = _blocks(render_acl("keng/v1", [BOARD, SPEAKER], ["keng-dispatcher"]))
    assert list(blocks) == ["keng-dispatcher", "00595-T01-IP1", "00598-EB1"]
    assert blocks["00595-T01-IP1"] == [
        "topic read keng/v1/cmd/speaker/ep/00595-T01-IP1",
        "topic read keng/v1/cmd/speaker/area/00595-T01",
        "topic read keng/v1/cmd/speaker/area/00595",
        "topic read keng/v1/cmd/speaker/area/021",
        "topic write keng/v1/ack/00595-T01-IP1",
        "topic write keng/v1/status/00595-T01-IP1",
    ]
    assert blocks["00598-EB1"][:3] == [
        "topic read keng/v1/cmd/board/ep/00598-EB1",
        "topic read keng/v1/cmd/board/area/00598",
        "topic read keng/v1/cmd/board/area/021",
    ]
    assert not [line for lines in blocks.values() for line in lines if "+" in line and "keng-dispatcher" not in line]


def test_kengs_account_writes_commands_reads_acks_and_statuses_and_its_barrier() -> None:
    blocks = _blocks(render_acl("site-a/keng/v1", [SPEAKER], ["keng-dispatcher"]))
    assert blocks["keng-dispatcher"] == [
        "topic write site-a/keng/v1/cmd/#",
        "topic readwrite site-a/keng/v1/ack/#",  # the barrier ack/~<client id> cannot be named level by level
        "topic read site-a/keng/v1/status/#",
    ]
    assert all(line.split()[-1].startswith("site-a/keng/v1/") for lines in blocks.values() for line in lines)


def test_the_password_file_has_one_sorted_line_per_account_and_refuses_what_would_break_it() -> None:
    text = render_passwords({"b": "$7$1$AA$BB", "a": "$7$1$CC$DD"})
    assert text == "a:$7$1$CC$DD\nb:$7$1$AA$BB\n"
    for bad in ({"a:b": "$7$1$AA$BB"}, {"a b": "x"}, {"": "x"}, {"a": "x\nroot:y"}):
        with pytest.raises(ProvisionError):
            render_passwords(bad)


def _files(out: Path, tls: bool) -> dict[str, Path]:
    names = {"conf": "mosquitto.conf", "passwords": "passwords", "acl": "acl"}
    if tls:
        names |= {"server_cert": "server.pem", "server_key": "server.key"}
    return {k: out / v for k, v in names.items()}


def _settings(conf: str) -> list[str]:
    return [line for line in conf.splitlines() if line and not line.startswith("#")]


def test_the_conf_has_no_anonymous_access_and_names_the_files(tmp_path: Path) -> None:
    conf = render_conf(BrokerOptions(tmp_path), _files(tmp_path, False), owner="keng")
    assert _settings(conf) == [
        "user keng",
        "max_queued_messages 200000",
        "persistence false",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {tmp_path / 'passwords'}",
        f"acl_file {tmp_path / 'acl'}",
        "listener 1883",
    ]


def test_with_a_listener_for_keng_devices_client_ids_are_their_usernames(tmp_path: Path) -> None:
    files = _files(tmp_path, True) | {"keng_passwords": tmp_path / "keng.passwords"}
    options = BrokerOptions(tmp_path, listen="0.0.0.0", tls=TlsOptions(), keng_port=8884)
    access = ["allow_anonymous false", f"acl_file {tmp_path / 'acl'}"]
    tls = [f"certfile {tmp_path / 'server.pem'}", f"keyfile {tmp_path / 'server.key'}", "tls_version tlsv1.2"]
    lines = _settings(render_conf(options, files))
    devices, keng = lines.index("listener 8883"), lines.index("listener 8884 127.0.0.1")
    assert lines[:devices] == ["max_queued_messages 200000", "persistence false", "per_listener_settings true"]
    assert sorted(lines[devices + 1 : keng]) == sorted(
        [*tls, "use_username_as_clientid true", *access, f"password_file {tmp_path / 'passwords'}"]
    )
    assert sorted(lines[keng + 1 :]) == sorted([*tls, *access, f"password_file {tmp_path / 'keng.passwords'}"])
    assert keng_url(options, "keng-dispatcher", "pw", None) == "mqtts://keng-dispatcher:pw@127.0.0.1:8884"


def test_the_tls_conf_listens_on_8883_with_the_server_certificate_and_can_persist(tmp_path: Path) -> None:
    options = BrokerOptions(tmp_path, listen="10.0.0.5", tls=TlsOptions(), persistence=True)
    lines = _settings(render_conf(options, _files(tmp_path, True)))
    assert "listener 8883 10.0.0.5" in lines
    assert f"certfile {tmp_path / 'server.pem'}" in lines and f"keyfile {tmp_path / 'server.key'}" in lines
    assert "persistence true" in lines and f"persistence_location {tmp_path.resolve()}/" in lines
    assert not [line for line in lines if line.startswith("user ")]  # no owner given


def test_kengs_url_names_the_listener_and_the_ca(tmp_path: Path) -> None:
    plain = BrokerOptions(tmp_path, port=11883, listen="0.0.0.0")
    assert keng_url(plain, "keng-dispatcher", "p/w", None) == "mqtt://keng-dispatcher:p%2Fw@localhost:11883"
    tls = BrokerOptions(tmp_path, listen="::1", tls=TlsOptions())
    assert keng_url(tls, "keng-dispatcher", "pw", tmp_path / "ca.pem") == (
        f"mqtts://keng-dispatcher:pw@[::1]:8883?ca={tmp_path / 'ca.pem'}"
    )
    assert "pw" not in keng_url(tls, "keng-dispatcher", "pw", None, masked=True).split("@")[0].split(":", 2)[2]


# -- who may issue credentials ------------------------------------------------------------------------------------


def _endpoint(kind: str = "ip-speaker", code: str = "00595-T01-IP1") -> Endpoint:
    return Endpoint.register(code=code, kind=kind, ward="00595", group="00595-T01", technology="ip-4g", by="s")


def test_an_admin_issues_then_rotates_and_the_event_names_who_without_a_secret() -> None:
    e = _endpoint()
    assert e.issue_credentials(actor=staff("admin", "admin")) is False
    assert e.issue_credentials(actor=staff("an", "admin", wards=["00595"])) is True
    issued = [ev for ev in e.collect_events() if isinstance(ev, Endpoint.CredentialsIssued)]
    assert [(ev.by, ev.rotated) for ev in issued] == [("admin", False), ("an", True)]
    assert set(issued[0].__dict__) - {"originator_id", "originator_version", "timestamp"} == {"by", "rotated"}


def test_no_credentials_for_a_non_admin_another_wards_admin_a_decommissioned_or_non_mqtt_device() -> None:
    with pytest.raises(NotAuthorised, match="admin role"):
        _endpoint().issue_credentials(actor=staff("lan", "drafter", "approver"))
    with pytest.raises(OutOfScope):
        _endpoint().issue_credentials(actor=staff("ha", "admin", wards=["00598"]))
    gone = _endpoint()
    gone.decommission("thanh lý", by="admin")
    with pytest.raises(IllegalTransition, match="decommissioned-is-final"):
        gone.issue_credentials(actor=staff("admin", "admin"))
    for kind in ("fm-speaker", "portal"):
        with pytest.raises(IllegalTransition, match="mqtt-devices-only"):
            _endpoint(kind).issue_credentials(actor=staff("admin", "admin"))
    assert _endpoint("eboard").issue_credentials(actor=staff("admin", "admin")) is False


@pytest.mark.parametrize(
    "options",
    [
        {"listen": "127.0.0.1\nallow_anonymous true"},
        {"listen": "a b"},
        {"listen": "-h"},
        {"tls": TlsOptions(hosts=("ok.example", "bad\nname"))},
        {"out": Path("/tmp/x\nallow_anonymous true")},
        {"topic_root": "keng/+"},
        {"topic_root": "keng//v1"},
        {"keng_port": 1883},  # the devices' port
        {"keng_listen": "127.0.0.1"},  # without its port
        {"keng_port": 1884, "keng_listen": "a\nb"},
    ],
)
def test_options_that_would_break_a_line_of_the_conf_are_refused(options: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ProvisionError):
        check_options(BrokerOptions(**{"out": tmp_path, **options}))


def test_the_topic_root_setting_is_read_and_checked() -> None:
    assert load_settings(environ={}).topic_root == "keng/v1"
    assert load_settings(environ={"KENG_TOPIC_ROOT": "site-a/keng/v1"}).topic_root == "site-a/keng/v1"
    for bad in ("keng/#", "/keng", "keng/", "a/b/c/d/e/f", "kéng"):
        with pytest.raises(InvalidValue, match="KENG_TOPIC_ROOT"):
            load_settings(environ={"KENG_TOPIC_ROOT": bad})
