"""Which broker to use: a URL (`mqtt://user:pass@host:port`, or `mqtts://...` over TLS, e.g. mosquitto), several URLs
separated by commas (the nodes of a broker cluster: same credentials, TLS files and MQTT version; docs/broker.md "Broker
clusters"), or an embedded amqtt broker.

The embedded broker (amqtt, pure Python, MQTT 3.1.1) starts in-process when no broker URL is configured, so that the
README's run command needs no system package. It is for demos and small sites: MQTT 3.1.1 has no message-expiry
property (expiry is still enforced by the dispatcher and by devices from the payload), and one Python process carries
every message (see docs/dispatch.md for its measured limit). Production runs on mosquitto or a cluster.
"""

from __future__ import annotations

import functools
import logging
import re
import socket
import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit


class BrokerConfigError(ValueError):
    """The broker URL, or a TLS file it names, could not be understood or read (the message says which)."""


SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}  # scheme -> TLS
DEFAULT_PORTS = {False: 1883, True: 8883}
QUERY_KEYS = ("v", "ca", "cert", "key")
NEXT_NODE_S = 0.05  # a link's pause before the next node of a cluster (its backoff applies once every node failed)


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker listens and how to log in; `mqtt5` is False for brokers that only speak 3.1.1. With `tls`,
    the broker is verified against `ca_file` (None: the system's trust store) for the host name dialled, and
    `cert_file`/`key_file` are a client certificate to present (optional)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    mqtt5: bool = True
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    others: tuple[tuple[str, int], ...] = ()  # a cluster's other nodes (host, port), in the order they were listed

    @property
    def scheme(self) -> str:
        """`mqtts` with TLS, else `mqtt`."""
        return "mqtts" if self.tls else "mqtt"

    @property
    def nodes(self) -> tuple[BrokerAddress, ...]:
        """Each node of the cluster as an address of its own (no `others`), the first listed first; a single broker is
        its only node."""
        if not self.others:
            return (self,)
        first = replace(self, others=())
        return (first, *(replace(first, host=host, port=port) for host, port in self.others))

    def rotated(self, start: int) -> BrokerAddress:
        """The same cluster listed from node `start` (modulo the number of nodes) on: a client of it tries that node
        first and falls over to the ones after it (a fleet spreads its devices over the nodes so)."""
        if not self.others:
            return self
        pairs = [(node.host, node.port) for node in self.nodes]
        k = start % len(pairs)
        (host, port), *others = pairs[k:] + pairs[:k]
        return replace(self, host=host, port=port, others=tuple(others))

    @property
    def display(self) -> str:
        """For logs and banners: never includes the password (nor anything else but the user name and the host); a
        cluster's nodes separated by commas."""
        if self.others:
            return ",".join(node.display for node in self.nodes)
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        return f"{self.scheme}://{user}{_host(self.host)}:{self.port}"

    def url(self) -> str:
        """The whole URL, password included, that `parse_broker_url` reads back (for a child process's settings or
        `--broker`; never for a log); a cluster's URLs separated by commas."""
        if self.others:
            return ",".join(node.url() for node in self.nodes)
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        query = [("v", "3")] if not self.mqtt5 else []
        for name, path in (("ca", self.ca_file), ("cert", self.cert_file), ("key", self.key_file)):
            if path is not None:
                query.append((name, str(path)))
        tail = f"?{urlencode(query, safe='/')}" if query else ""
        return f"{self.scheme}://{auth}{_host(self.host)}:{self.port}{tail}"

    def with_tls_files(
        self, ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None
    ) -> BrokerAddress:
        """With the TLS files of the settings (KENG_MQTT_CA/CERT/KEY) where the URL named none; a plain `mqtt://`
        address is returned as it is."""
        if not self.tls:
            return self
        cert, key = (cert_file, key_file) if self.cert_file is None else (self.cert_file, self.key_file)
        return replace(self, ca_file=self.ca_file or ca_file, cert_file=cert, key_file=key)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context (None for plain MQTT), made once per process for each set of files;
        BrokerConfigError names a file that cannot be read or used."""
        if not self.tls:
            return None
        return _tls_context(self.ca_file, self.cert_file, self.key_file)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_broker_url(url: str) -> BrokerAddress:
    """`mqtt://[user[:password]@]host[:port]` (port 1883 by default) or `mqtts://...` (TLS, port 8883 by default),
    with the query parameters `v=3` (a broker without MQTT 5), and for mqtts `ca=PATH` (the CA bundle that verifies
    the broker; default: the system's trust store), `cert=PATH&key=PATH` (a client certificate). Files are checked
    when the TLS context is made (`BrokerAddress.ssl_context`).

    Several such URLs separated by commas are the nodes of one broker cluster, tried in that order: they must agree
    on everything but the host and port (scheme, user, password, `v=`, TLS files), and name no node twice."""
    pieces = _split_urls(url)
    if len(pieces) == 1:
        return _parse_one(pieces[0])
    nodes = [_parse_one(piece) for piece in pieces]
    first = nodes[0]
    seen = {(first.host, first.port)}
    for i, node in enumerate(nodes[1:], start=2):
        differs = [label for name, label in _CLUSTER_SAME.items() if getattr(node, name) != getattr(first, name)]
        if differs:
            raise BrokerConfigError(
                f"broker URL {i} of {len(nodes)} differs from the first in {', '.join(differs)}: the nodes of a "
                "cluster take the same scheme, credentials, v= and TLS files (only host and port differ)"
            )
        if (node.host, node.port) in seen:
            raise BrokerConfigError(f"broker node {_host(node.host)}:{node.port} is listed twice")
        seen.add((node.host, node.port))
    return replace(first, others=tuple((node.host, node.port) for node in nodes[1:]))


_SCHEME_START = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*://")
_CLUSTER_SAME = {  # what every node of a cluster shares: field -> how the URL says it
    "tls": "scheme",
    "username": "user",
    "password": "password",
    "mqtt5": "v=",
    "ca_file": "ca=",
    "cert_file": "cert=",
    "key_file": "key=",
}


def _split_urls(text: str) -> list[str]:
    """The URLs of a comma-separated list; a comma that no scheme follows stays inside its URL (a password, a file
    name), so that a one-URL setting reads as it always did."""
    pieces: list[str] = []
    for piece in text.split(","):
        if pieces and not _SCHEME_START.match(piece):
            pieces[-1] += "," + piece
        else:
            pieces.append(piece)
    return [piece.strip() for piece in pieces]


def _parse_one(url: str) -> BrokerAddress:
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise BrokerConfigError(f"broker URL is malformed: {e}") from None
    where = parts.netloc.rpartition("@")[2]
    if "," in where:
        raise BrokerConfigError(
            f"broker URL host {where!r} holds a comma: the nodes of a cluster are whole URLs separated by commas "
            "(mqtt://a:1883,mqtt://b:1883)"
        )
    try:
        port = parts.port
    except ValueError as e:
        raise BrokerConfigError(f"broker URL is malformed: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise BrokerConfigError(
            f"unsupported broker URL scheme {parts.scheme!r}: use mqtt://host:1883 or mqtts://host:8883 (TLS)"
        )
    tls = SCHEMES[scheme]
    if not parts.hostname:
        raise BrokerConfigError("the broker URL names no host (mqtt://host:port or mqtts://host:port)")
    if parts.path not in ("", "/") or parts.fragment:
        raise BrokerConfigError("a broker URL has no path or fragment: mqtt[s]://[user[:password]@]host[:port][?...]")
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise BrokerConfigError(f"broker URL query {parts.query!r} is not name=value&...") from None
    params: dict[str, str] = {}
    for name, value in query:
        if name not in QUERY_KEYS:
            raise BrokerConfigError(f"unknown broker URL parameter {name!r}: known are {', '.join(QUERY_KEYS)}")
        if name in params:
            raise BrokerConfigError(f"broker URL parameter {name!r} is given twice")
        params[name] = value
    version = params.get("v", "5")
    if version not in ("3", "5"):
        raise BrokerConfigError(f"broker URL parameter v={version!r}: 3 (MQTT 3.1.1) or 5 (the default)")
    files = {name: params[name] for name in ("ca", "cert", "key") if name in params}
    if files and not tls:
        raise BrokerConfigError(f"{', '.join(f'{n}=' for n in files)} needs TLS: use mqtts://")
    for name, value in files.items():
        if not value:
            raise BrokerConfigError(f"broker URL parameter {name}= names no file")
    if "key" in files and "cert" not in files:
        raise BrokerConfigError("key= without cert=: a client key needs its certificate")
    return BrokerAddress(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[tls],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        mqtt5=version == "5",
        tls=tls,
        ca_file=Path(files["ca"]).expanduser() if "ca" in files else None,
        cert_file=Path(files["cert"]).expanduser() if "cert" in files else None,
        key_file=Path(files["key"]).expanduser() if "key" in files else None,
    )


@functools.lru_cache(maxsize=16)
def _tls_context(ca_file: Path | None, cert_file: Path | None, key_file: Path | None) -> ssl.SSLContext:
    """A verifying client context: TLS 1.2 or later, the broker's certificate checked against the CA (or the system
    store) and its host name. One per process and set of files (thousands of simulated devices share it); a file
    replaced on disk is read again by the next process."""
    if key_file is not None and cert_file is None:
        raise BrokerConfigError("a client key (KENG_MQTT_KEY / key=) needs its certificate (KENG_MQTT_CERT / cert=)")
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except ssl.SSLError as e:  # before OSError, which it is
        raise BrokerConfigError(f"the broker CA file {ca_file} holds no usable PEM certificate ({e.reason})") from None
    except OSError as e:
        raise BrokerConfigError(f"cannot read the broker CA file {ca_file}: {e.strerror or e}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        for what, path in (("certificate", cert_file), ("key", key_file)):
            try:
                if path is not None:
                    path.open("rb").close()
            except OSError as e:
                raise BrokerConfigError(f"cannot read the client {what} file {path}: {e.strerror or e}") from None

        def no_passphrase() -> bytes:  # else OpenSSL prompts on the terminal, or fails with "Invalid argument"
            raise BrokerConfigError(
                f"the client key {key_file or cert_file} is encrypted: keng needs it unencrypted (PEM, mode 0600)"
            )

        try:
            context.load_cert_chain(cert_file, key_file, password=no_passphrase)
        except OSError as e:
            raise BrokerConfigError(
                f"the client certificate {cert_file} (key {key_file or 'in the same file'}) cannot be used: "
                f"{getattr(e, 'reason', None) or e}"
            ) from None
    return context


def is_tls_refusal(error: BaseException) -> str | None:
    """Why a TLS handshake refused the broker (its certificate not verified by the CA, a host name it was not made
    for), or None for any other error: a configuration to fix, not a network blip."""
    for e in (error, error.__cause__, error.__context__):
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {e.verify_message}" if e.verify_message else str(e)
    text = str(error)
    return text if "CERTIFICATE_VERIFY_FAILED" in text else None


def tls_refusal_fields(broker: BrokerAddress, refused: str) -> dict[str, str]:
    """What the `mqtt.tls_refused` log line says (both links log it): the reason, the CA used and what to check."""
    return {
        "broker": broker.display,
        "error": refused,
        "ca": str(broker.ca_file or "system trust store"),
        "hint": "the broker's certificate is not signed by this CA or not made for this host name "
        "(KENG_MQTT_CA / ?ca=)",
    }


WILDCARD_HOSTS = ("0.0.0.0", "")


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port (on the loopback interface by default)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """An amqtt broker in this process's event loop (anonymous, plain MQTT 3.1.1). `keng serve` and `keng dispatch run`
    listen where KENG_BROKER_LISTEN says (default 127.0.0.1:1883, so that devices know where to connect); port 0
    (`keng demo`, tests) takes any free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host if host not in WILDCARD_HOSTS else "127.0.0.1")
        self._broker: Any = None

    @property
    def listen(self) -> str:
        """Where it listens, for the start-up banner (`mqtt://0.0.0.0:1883` when it listens on every interface)."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def address(self) -> BrokerAddress:
        """The address this process's own clients connect to (MQTT 3.1.1; loopback when it listens everywhere)."""
        return BrokerAddress("127.0.0.1" if self.host in WILDCARD_HOSTS else self.host, self.port, mqtt5=False)

    async def start(self) -> BrokerAddress:
        """Start listening; returns the address. BrokerConfigError when it cannot listen there (a port taken since
        the command checked it, an address not on this machine)."""
        from amqtt.broker import Broker, BrokerError

        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": -1}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._broker = Broker(config)
        amqtt_log = logging.getLogger("amqtt")
        amqtt_log.setLevel(logging.CRITICAL)  # a failed start is logged there with a traceback; it is reported below
        try:
            await self._broker.start()
        except BrokerError as e:
            self._broker = None
            cause = e.__cause__
            why = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause or e)
            raise BrokerConfigError(f"the embedded broker cannot listen on {self.host}:{self.port}: {why}") from None
        finally:
            amqtt_log.setLevel(logging.WARNING)
        return self.address

    async def stop(self) -> None:
        """Shut the broker down (idempotent)."""
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()
