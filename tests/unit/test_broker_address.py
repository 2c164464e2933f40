"""Broker addresses (adapters/mqtt/broker.py) and topic roots (adapters/mqtt/topics.py): what a URL means, what a log
shows of it, which TLS files it verifies with, and that a mistake is named, never a traceback."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keng.adapters.mqtt.broker import BrokerAddress, BrokerConfigError, parse_broker_url
from keng.adapters.mqtt.certs import make_ca, make_client_cert
from keng.adapters.mqtt.topics import DEFAULT_TOPICS, TopicRootError, Topics, check_root


def test_plain_and_tls_urls_and_their_default_ports() -> None:
    assert parse_broker_url("mqtt://broker.example") == BrokerAddress("broker.example", 1883)
    a = parse_broker_url("mqtts://keng:s%40cret@broker.example?ca=/etc/keng/ca.pem")
    assert (a.host, a.port, a.tls, a.username, a.password) == ("broker.example", 8883, True, "keng", "s@cret")
    assert a.ca_file == Path("/etc/keng/ca.pem") and a.cert_file is None and a.mqtt5
    b = parse_broker_url("mqtts://h:9883?ca=ca.pem&cert=me.pem&key=me.key&v=3")
    assert (b.port, b.cert_file, b.key_file, b.mqtt5) == (9883, Path("me.pem"), Path("me.key"), False)
    assert parse_broker_url("mqtt://h?v=3").mqtt5 is False


def test_display_never_shows_a_password_nor_a_file() -> None:
    a = parse_broker_url("mqtts://keng-dispatcher:hunter2@broker.example:8883?ca=/secret/ca.pem&cert=c&key=k")
    assert a.display == "mqtts://keng-dispatcher@broker.example:8883"
    assert "hunter2" not in a.display and "hunter2" not in repr(a.display)
    assert parse_broker_url("mqtt://h").display == "mqtt://h:1883"


@given(
    user=st.none() | st.text(min_size=1, max_size=12),
    password=st.none() | st.text(max_size=12),
    tls=st.booleans(),
    mqtt5=st.booleans(),
    ca=st.none() | st.sampled_from(["/etc/ca.pem", "rel/ca bundle.pem", "/tmp/ca&x=1.pem"]),
)
def test_url_reads_back_as_the_same_address(
    user: str | None, password: str | None, tls: bool, mqtt5: bool, ca: str | None
) -> None:
    address = BrokerAddress(
        "broker.example",
        8884,
        username=user,
        password=password if user is not None else None,
        mqtt5=mqtt5,
        tls=tls,
        ca_file=Path(ca) if tls and ca else None,
    )
    assert parse_broker_url(address.url()) == address


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://broker:1883", "unsupported broker URL scheme 'http'"),
        ("mqtt://:1883", "names no host"),
        ("mqtt://broker:port", "broker URL is malformed"),
        ("mqtt://broker:99999", "broker URL is malformed"),
        ("mqtt://broker?ca=/etc/ca.pem", "ca= needs TLS: use mqtts://"),
        ("mqtts://broker?cafile=/etc/ca.pem", "unknown broker URL parameter 'cafile'"),
        ("mqtts://broker?ca=", "ca= names no file"),
        ("mqtts://broker?ca=a&ca=b", "'ca' is given twice"),
        ("mqtts://broker?key=k.pem", "key= without cert="),
        ("mqtt://broker?v=4", "v='4': 3 .* or 5"),
        ("mqtt://broker/keng", "no path or fragment"),
        ("mqtt://broker?novalue", "is not name=value"),
    ],
)
def test_a_bad_url_is_named(url: str, message: str) -> None:
    with pytest.raises(BrokerConfigError, match=message):
        parse_broker_url(url)


def test_tls_files_of_the_settings_fill_what_the_url_left_out(tmp_path: Path) -> None:
    plain = parse_broker_url("mqtt://h")
    assert plain.with_tls_files(tmp_path / "ca.pem") is plain
    tls = parse_broker_url("mqtts://h").with_tls_files(Path("env-ca.pem"), Path("env.pem"), Path("env.key"))
    assert (tls.ca_file, tls.cert_file, tls.key_file) == (Path("env-ca.pem"), Path("env.pem"), Path("env.key"))
    own = parse_broker_url("mqtts://h?ca=url-ca.pem&cert=url.pem").with_tls_files(
        Path("env-ca.pem"), Path("env.pem"), Path("env.key")
    )
    assert (own.ca_file, own.cert_file, own.key_file) == (Path("url-ca.pem"), Path("url.pem"), None)


def test_the_tls_context_verifies_the_broker_and_presents_the_client_certificate(tmp_path: Path) -> None:
    ca = make_ca()
    ca.write(tmp_path / "ca.pem", tmp_path / "ca.key")
    make_client_cert(ca, "keng-dispatcher").write(tmp_path / "me.pem", tmp_path / "me.key")
    address = parse_broker_url(
        f"mqtts://localhost?ca={tmp_path / 'ca.pem'}&cert={tmp_path}/me.pem&key={tmp_path}/me.key"
    )
    context = address.ssl_context()
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert address.ssl_context() is context  # one per process and set of files: a fleet shares it
    assert parse_broker_url("mqtt://localhost").ssl_context() is None
    system = parse_broker_url("mqtts://localhost").ssl_context()
    assert system is not None and system.verify_mode == ssl.CERT_REQUIRED


def test_tls_files_that_cannot_be_used_are_named(tmp_path: Path) -> None:
    (tmp_path / "empty.pem").write_text("")
    (tmp_path / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    ca = make_ca()
    ca.write(tmp_path / "ca.pem", tmp_path / "ca.key")
    other = make_client_cert(make_ca(), "x")
    other.write(tmp_path / "other.pem", tmp_path / "other.key")
    cases = {
        f"?ca={tmp_path}/missing.pem": "cannot read the broker CA file .*missing.pem: No such file",
        f"?ca={tmp_path}": "cannot read the broker CA file",
        f"?ca={tmp_path}/empty.pem": "empty.pem holds no usable PEM certificate",
        f"?ca={tmp_path}/junk.pem": "junk.pem holds no usable PEM certificate",
        f"?ca={tmp_path}/ca.pem&cert={tmp_path}/nope.pem": "cannot read the client certificate file .*nope.pem",
        f"?ca={tmp_path}/ca.pem&cert={tmp_path}/ca.pem&key={tmp_path}/other.key": "ca.pem .* cannot be used",
    }
    for query, message in cases.items():
        with pytest.raises(BrokerConfigError, match=message):
            parse_broker_url(f"mqtts://localhost{query}").ssl_context()


def test_topic_roots_keep_installations_apart() -> None:
    a, b = Topics("district-a/keng"), Topics("district-b/keng")
    assert a.endpoint("speaker", "E1") == "district-a/keng/cmd/speaker/ep/E1"
    assert a.device_subscriptions("board", "E1", ["T1"]) == [
        "district-a/keng/cmd/board/ep/E1",
        "district-a/keng/cmd/board/area/T1",
    ]
    assert a.parse_ack(a.ack("E1")) == "E1" and b.parse_ack(a.ack("E1")) is None
    assert a.parse_status(a.status("E1")) == "E1" and b.parse_status(a.status("E1")) is None
    assert DEFAULT_TOPICS.parse_ack(Topics("keng/v1/x").ack("E1")) is None  # a root below another's is not its
    assert a.is_barrier_topic(a.barrier("keng-dispatcher-h-1-abcd")) and not b.is_barrier_topic(a.barrier("x"))
    assert DEFAULT_TOPICS.ack_subscription == "keng/v1/ack/+"


@pytest.mark.parametrize(
    "root", ["", "keng/#", "+/keng", "/keng", "keng/", "keng//v1", "a/b/c/d/e/f", "$SYS", "kèng", "a b", "x" * 65]
)
def test_a_bad_topic_root_is_refused(root: str) -> None:
    with pytest.raises(TopicRootError):
        check_root(root)
    with pytest.raises(TopicRootError):
        Topics(root)


def test_good_topic_roots() -> None:
    for root in ("keng/v1", "keng", "vn/hanoi/btl/keng/v1", "test_1.keng-2"):
        assert check_root(root) == root


def test_several_urls_are_the_nodes_of_one_cluster_tried_in_order() -> None:
    a = parse_broker_url("mqtt://keng:s,cret@n1:1884?v=3, mqtt://keng:s,cret@n2:1885?v=3,mqtt://keng:s,cret@n3?v=3")
    assert (a.host, a.port, a.password, a.mqtt5) == ("n1", 1884, "s,cret", False)  # a comma inside a URL stays there
    assert a.others == (("n2", 1885), ("n3", 1883))
    assert [(n.host, n.port, n.others) for n in a.nodes] == [("n1", 1884, ()), ("n2", 1885, ()), ("n3", 1883, ())]
    assert all(n.password == "s,cret" and not n.mqtt5 for n in a.nodes)
    assert a.display == "mqtt://keng@n1:1884,mqtt://keng@n2:1885,mqtt://keng@n3:1883"
    assert "s,cret" not in a.display
    assert [n.host for n in a.rotated(1).nodes] == ["n2", "n3", "n1"]
    assert [n.host for n in a.rotated(5).nodes] == ["n3", "n1", "n2"] and a.rotated(3) == a
    tls = parse_broker_url("mqtts://n1,mqtts://n2").with_tls_files(Path("ca.pem"))
    assert tls.others == (("n2", 8883),) and all(n.ca_file == Path("ca.pem") for n in tls.nodes)


def test_one_url_is_one_broker_as_it_always_was() -> None:
    one = parse_broker_url(" mqtt://user:pa,ss@broker.example:1884?v=3 ")
    assert one == BrokerAddress("broker.example", 1884, username="user", password="pa,ss", mqtt5=False)
    assert one.others == () and one.nodes == (one,) and one.rotated(2) is one
    assert one.display == "mqtt://user@broker.example:1884" and parse_broker_url(one.url()) == one


@given(
    nodes=st.lists(
        st.tuples(st.sampled_from(["n1.example", "10.0.0.2", "::1", "broker"]), st.integers(1, 65535)),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    user=st.none() | st.text(min_size=1, max_size=12),
    password=st.none() | st.text(max_size=12),
    tls=st.booleans(),
    mqtt5=st.booleans(),
)
def test_a_cluster_url_reads_back_as_the_same_address(
    nodes: list[tuple[str, int]], user: str | None, password: str | None, tls: bool, mqtt5: bool
) -> None:
    (host, port), *others = nodes
    address = BrokerAddress(
        host,
        port,
        username=user,
        password=password if user is not None else None,
        mqtt5=mqtt5,
        tls=tls,
        ca_file=Path("/etc/keng/ca.pem") if tls else None,
        others=tuple(others),
    )
    assert parse_broker_url(address.url()) == address
    assert [(n.host, n.port) for n in address.nodes] == nodes
    for k in range(len(nodes)):
        assert parse_broker_url(address.rotated(k).url()) == address.rotated(k)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mqtt://a:1883,b:1884", "holds a comma: .* whole URLs separated by commas"),
        ("mqtt://a:1883,", "holds a comma"),
        ("mqtt://a,mqtt://b,mqtt://a", "node a:1883 is listed twice"),
        ("mqtt://a,mqtts://b", "URL 2 of 2 differs from the first in scheme"),
        ("mqtt://u:p@a,mqtt://u:q@b", "differs from the first in password"),
        ("mqtt://u@a,mqtt://b", "differs from the first in user:"),
        ("mqtt://a?v=3,mqtt://b,mqtt://c?v=3", "URL 2 of 3 differs from the first in v="),
        ("mqtts://a?ca=x.pem,mqtts://b?ca=y.pem", "differs from the first in ca="),
        ("mqtt://a,http://b", "unsupported broker URL scheme 'http'"),
        ("mqtt://a,mqtt://b:99999", "broker URL is malformed"),
    ],
)
def test_a_bad_cluster_url_is_named(url: str, message: str) -> None:
    with pytest.raises(BrokerConfigError, match=message):
        parse_broker_url(url)
