"""The broker's files, written by `keng broker config` (docs/broker.md): `mosquitto.conf`, which `mosquitto -c
DIR/mosquitto.conf` runs as is, the password file, the ACL, keng's own broker URL and, with TLS, the CA and the
server certificate.

The ACL follows the device protocol (docs/device-protocol.md): a device (user = its endpoint code) reads only its own
command topic and the group topics of its areas, and writes only its own ack and status topics; keng's account writes
commands and reads acks and statuses. mosquitto's ACL wildcards match whole topic levels, so keng's account gets
`readwrite` on `<root>/ack/#` for its ack barrier (`<root>/ack/~<client id>`, a per-process client id that no line
can name in advance): a `~...` prefix cannot be expressed, and keng's own account is trusted with its own acks anyway.

Everything is rendered here from plain values (no store, no domain); `write_broker_files` writes them, each secret file
mode 0600 and atomically, so that a broker reloading on SIGHUP never reads half a file.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from keng.adapters.mqtt.accounts import KENG_ACCOUNT, mosquitto_hash
from keng.adapters.mqtt.certs import CertError, CertKey, load_ca, make_ca, make_server_cert
from keng.adapters.mqtt.topics import TopicRootError, Topics, check_root
from keng.adapters.private_files import private_dir, write_private

PLAIN_PORT, TLS_PORT = 1883, 8883
MAX_QUEUED = 200_000  # docs/dispatch.md: 10,000 devices answer at once to keng's one intake connection
RENEW_BEFORE = timedelta(days=30)  # a kept server certificate is replaced when it ends sooner than this
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
ANY_ADDRESS = ("", "0.0.0.0", "::")


class ProvisionError(ValueError):
    """The broker's files cannot be written as asked (the message says what to give)."""


@dataclass(frozen=True)
class DeviceGrant:
    """What one device may do on the broker: its endpoint code (= its username), its class (`speaker`, `board`) and
    its areas, nearest first (residential group, ward, district, city)."""

    code: str
    cls: str
    areas: tuple[str, ...]


@dataclass(frozen=True)
class TlsOptions:
    """Where the TLS listener's certificate comes from: a CA given (`ca_cert` + `ca_key`), a server certificate made
    elsewhere (`cert` + `key`, with `ca_cert` naming the CA that verifies it, if not a public one), or neither: keng's
    own CA in the output folder, made on the first run and reused after. `hosts` are names and addresses clients dial,
    put in the server certificate beside the loopback names."""

    ca_cert: Path | None = None
    ca_key: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class BrokerOptions:
    """The listeners and where the files go. With `keng_port`, keng's own accounts log in only on a listener of
    their own (`keng_listen`, default loopback), and the devices' listener sets each device's client id to its
    username, so that no device can take over another's session by connecting with its client id."""

    out: Path
    port: int | None = None  # default 1883, or 8883 with TLS
    listen: str | None = None  # the address mosquitto binds; None: every interface
    tls: TlsOptions | None = None
    persistence: bool = False  # keep sessions and queued messages in `out` across broker restarts
    topic_root: str = "keng/v1"
    keng_port: int | None = None
    keng_listen: str | None = None  # with keng_port; None: 127.0.0.1

    @property
    def listen_port(self) -> int:
        return self.port or (TLS_PORT if self.tls else PLAIN_PORT)

    @property
    def split(self) -> bool:
        """Whether keng has a listener of its own."""
        return self.keng_port is not None

    @property
    def keng_bind(self) -> str | None:
        """The address keng's own listener binds (None: every interface)."""
        return (self.keng_listen or "127.0.0.1") if self.split else self.listen


@dataclass
class Written:
    """What `write_broker_files` wrote: the files, the URL keng connects with (the password left out) and what it did
    about the certificates (`ca`: generated, reused, given or none; `server_cert`: issued, kept or given)."""

    files: dict[str, Path]
    url_display: str
    devices: int
    ca: str = "none"
    server_cert: str = "none"
    notes: list[str] = field(default_factory=list)


_HOST = re.compile(r"^[A-Za-z0-9._:-]{1,253}$")


def check_options(options: BrokerOptions) -> None:
    """Refuse what would break a line of mosquitto.conf or a certificate: a host that is not a name or an address, a
    path with a control character."""
    hosts = [h for h in (options.listen, options.keng_listen) if h is not None]
    hosts += list(options.tls.hosts) if options.tls is not None else []
    for host in hosts:
        if not _HOST.match(host) or host.startswith(("-", ".")):
            raise ProvisionError(f"{host!r} is not a host name or an IP address")
    paths = [options.out]
    if options.tls is not None:
        paths += [p for p in (options.tls.ca_cert, options.tls.ca_key, options.tls.cert, options.tls.key) if p]
    for path in paths:
        if any(ord(c) < 32 or ord(c) == 127 for c in str(path)):
            raise ProvisionError(f"the path {str(path)!r} has a control character")
    if options.keng_listen is not None and options.keng_port is None:
        raise ProvisionError("a listen address for keng's own listener needs its port (--keng-port)")
    if options.keng_port is not None and options.keng_port == options.listen_port:
        raise ProvisionError(f"keng's own listener needs a port other than the devices' ({options.listen_port})")
    try:
        check_root(options.topic_root)
    except TopicRootError as e:
        raise ProvisionError(str(e)) from None


# -- rendering --------------------------------------------------------------------------------------------------


def device_acl(root: str, grant: DeviceGrant) -> list[str]:
    """The ACL lines of one device (after its `user` line): the topics it subscribes to (`Topics.device_subscriptions`,
    as the simulator does) and the two it publishes on."""
    topics = Topics(root)
    lines = [f"topic read {t}" for t in topics.device_subscriptions(grant.cls, grant.code, list(grant.areas))]
    return [*lines, f"topic write {topics.ack(grant.code)}", f"topic write {topics.status(grant.code)}"]


def keng_acl(root: str) -> list[str]:
    """The ACL lines of keng's own account: commands out (incl. ack-refused notices on a device's own topic), acks
    and statuses in, and its ack barrier (see the module's docstring)."""
    return [
        f"topic write {root}/cmd/#",
        f"topic readwrite {root}/ack/#",
        f"topic read {root}/status/#",
    ]


def render_acl(root: str, devices: Sequence[DeviceGrant], keng_accounts: Sequence[str]) -> str:
    """mosquitto's acl_file: no lines for anonymous clients (they cannot connect anyway), then one block per user."""
    out = [
        "# Written by `keng broker config` from the endpoint registry; regenerate with the same command, then",
        "# `kill -HUP <mosquitto pid>` reloads it. Devices: own command topic, their areas' group topics (read);",
        "# own ack and status topics (write). Anything not listed is refused.",
    ]
    for account in keng_accounts:
        out += ["", f"user {account}", *keng_acl(root)]
    for grant in sorted(devices, key=lambda g: g.code):
        out += ["", f"user {grant.code}", *device_acl(root, grant)]
    return "\n".join(out) + "\n"


def render_passwords(hashes: Mapping[str, str]) -> str:
    """mosquitto's password_file: `username:hash` lines, sorted."""
    for user, hashed in hashes.items():
        if not user or ":" in user or any(c.isspace() for c in user) or "\n" in hashed or ":" in hashed:
            raise ProvisionError(f"account {user!r} cannot be written to a mosquitto password file")
    return "".join(f"{user}:{hashes[user]}\n" for user in sorted(hashes))


def _owner() -> str | None:
    """The name of the user this process runs as (None where there is none)."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, OSError):
        return None


def _bind(host: str | None) -> str:
    return "" if host in (None, *ANY_ADDRESS) else f" {host}"


def render_conf(
    options: BrokerOptions, files: Mapping[str, Path], *, owner: str | None = None, generated_at: datetime | None = None
) -> str:
    """mosquitto.conf: no anonymous access, the password file and the ACL, the devices' listener (TLS with
    `certfile`/`keyfile` when asked) and, with `keng_port`, keng's own; and (if `owner` is given) the user mosquitto
    runs as when started by root, so that it can read the private files."""
    at = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")
    lines = [
        f"# Written by `keng broker config` at {at}. Run: mosquitto -c {files['conf']}",
        "# Regenerate after a change of the district or of credentials with the same command; then",
        "# `kill -HUP <mosquitto pid>` reloads the password file and the ACL (docs/broker.md).",
    ]
    if owner:
        lines += [f"user {owner}"]
    lines += [f"max_queued_messages {MAX_QUEUED}"]
    if options.persistence:
        lines += ["persistence true", f"persistence_location {options.out.resolve()}/"]
    else:
        lines += ["persistence false"]
    tls = [] if options.tls is None else [
        f"certfile {files['server_cert']}", f"keyfile {files['server_key']}", "tls_version tlsv1.2"
    ]  # fmt: skip

    def access(passwords: Path) -> list[str]:
        return ["allow_anonymous false", f"password_file {passwords}", f"acl_file {files['acl']}"]

    devices = f"listener {options.listen_port}{_bind(options.listen)}"
    if not options.split:
        lines += ["per_listener_settings false", *access(files["passwords"]), "", devices, *tls]
        return "\n".join(lines) + "\n"
    lines += ["per_listener_settings true", "", "# devices: the client id is the username (no session takeover)"]
    lines += [devices, *tls, "use_username_as_clientid true", *access(files["passwords"])]
    lines += ["", "# keng's own accounts only", f"listener {options.keng_port}{_bind(options.keng_bind)}", *tls]
    lines += access(files["keng_passwords"])
    return "\n".join(lines) + "\n"


def connect_host(options: BrokerOptions) -> str:
    """The host keng's own URL names: the address its listener binds when one is given, else `localhost`."""
    return "localhost" if options.keng_bind in (None, *ANY_ADDRESS) else str(options.keng_bind)


def keng_url(options: BrokerOptions, account: str, password: str, ca_file: Path | None, *, masked: bool = False) -> str:
    """The URL keng's dispatcher connects with (`mqtt://` or `mqtts://...?ca=`); `masked` shows `****` for the
    password (for what is printed and logged)."""
    host = connect_host(options)
    if ":" in host:
        host = f"[{host}]"
    scheme = "mqtts" if options.tls else "mqtt"
    query = f"?ca={quote(str(ca_file))}" if options.tls and ca_file is not None else ""
    secret = "****" if masked else quote(password, safe="")
    port = options.keng_port or options.listen_port
    return f"{scheme}://{quote(account, safe='')}:{secret}@{host}:{port}{query}"


# -- certificates ---------------------------------------------------------------------------------------------------


def _server_names(options: BrokerOptions) -> list[str]:
    assert options.tls is not None
    names = list(LOCAL_NAMES)
    for host in (options.listen, options.keng_bind, *options.tls.hosts):
        if host and host not in ANY_ADDRESS and host not in names:
            names.append(host)
    return names


def _names_of(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = set(san.get_values_for_type(x509.DNSName))
    return names | {str(a) for a in san.get_values_for_type(x509.IPAddress)}


def _normal(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def _key_fits(cert: x509.Certificate, key_pem: bytes) -> bool:
    """True if the PEM private key is the certificate's (False for anything that is not a private key)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki))


def _keeps(cert_path: Path, key_path: Path, ca: x509.Certificate, names: list[str], now: datetime) -> bool:
    """True if the server certificate in place was issued by `ca`, has its key beside it, names every host and lives
    on a while yet."""
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    if not _key_fits(cert, key_path.read_bytes()):
        return False
    have = {_normal(n) for n in _names_of(cert)}
    return {_normal(n) for n in names} <= have and cert.not_valid_after_utc - RENEW_BEFORE > now


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CertError(f"cannot read {path}: {e.strerror}") from None


def _read_ca_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(path))
    except ValueError as e:
        raise CertError(f"{path}: not a PEM certificate ({e})") from None


def _write_public(path: Path, data: bytes) -> None:
    write_private(path, data)
    os.chmod(path, 0o644)


def _check_given(tls: TlsOptions) -> None:
    """Read what was given before anything is written, so that a wrong file leaves no folder behind."""
    if tls.cert is not None and tls.key is not None:
        try:
            cert = x509.load_pem_x509_certificate(_read(tls.cert))
        except ValueError as e:
            raise CertError(f"{tls.cert}: not a PEM certificate ({e})") from None
        if not _key_fits(cert, _read(tls.key)):
            raise CertError(f"{tls.key} is not an unencrypted PEM private key of {tls.cert}")
        if tls.ca_cert is not None:
            _read_ca_cert(tls.ca_cert)
    elif tls.ca_cert is not None and tls.ca_key is not None:
        load_ca(tls.ca_cert, tls.ca_key).private_key()


def _tls_files(options: BrokerOptions, files: dict[str, Path], written: Written, now: datetime) -> Path | None:
    """Make, reuse or copy the CA and the server certificate; returns the CA file that verifies the broker (None: a
    public CA, the system's trust store)."""
    tls = options.tls
    assert tls is not None
    out = options.out
    ca_file, ca_key_file = out / "ca.pem", out / "ca.key"
    server_cert, server_key = files["server_cert"], files["server_key"]
    if tls.cert is not None and tls.key is not None:  # a server certificate made elsewhere: copied as is
        cert_pem, key_pem = _read(tls.cert), _read(tls.key)  # checked by _check_given
        write_private(server_key, key_pem)
        _write_public(server_cert, cert_pem)
        written.server_cert = "given"
        if tls.ca_cert is None:
            written.notes.append("no --ca-cert: keng verifies the broker against the system's trust store")
            return None
        _write_public(ca_file, _read(tls.ca_cert))
        written.ca = "given"
        return ca_file
    names = _server_names(options)
    ca: CertKey | None = None
    if tls.ca_cert is not None and tls.ca_key is not None:
        ca = load_ca(tls.ca_cert, tls.ca_key)
        _write_public(ca_file, ca.cert_pem)  # devices need the certificate; the key stays where it was given
        written.ca = "given"
    elif ca_key_file.is_file() and ca_file.is_file():
        ca = load_ca(ca_file, ca_key_file)
        written.ca = "reused"
    elif ca_file.is_file():  # an earlier run used a CA whose key was given, not kept here
        written.ca = "reused"
    else:
        ca = make_ca()
        ca.write(ca_file, ca_key_file)
        written.ca = "generated"
    ca_cert = ca.certificate if ca is not None else _read_ca_cert(ca_file)
    if written.ca != "generated" and _keeps(server_cert, server_key, ca_cert, names, now):
        written.server_cert = "kept"
        return ca_file
    if ca is None:
        raise ProvisionError(
            f"{ca_file} has no ca.key beside it (it was given with --ca-cert/--ca-key): give them again to issue a "
            f"server certificate for {', '.join(names)}"
        )
    ca.private_key()  # a key that cannot sign is named before anything is written
    make_server_cert(ca, names).write(server_cert, server_key)
    os.chmod(server_cert, 0o644)
    written.server_cert = "issued"
    return ca_file


# -- writing --------------------------------------------------------------------------------------------------------


def write_broker_files(
    options: BrokerOptions,
    devices: Sequence[DeviceGrant],
    device_hashes: Mapping[str, str],
    keng_accounts: Mapping[str, str],
    *,
    now: datetime | None = None,
) -> Written:
    """Write every file into `options.out` (created 0700 if missing). `device_hashes` are the devices' stored `$7$`
    hashes by code (only those of `devices` are written); `keng_accounts` are keng's own accounts and their plain
    passwords (hashed here). A device whose code is also one of keng's accounts is refused."""
    now = now or datetime.now(UTC)
    check_options(options)
    if options.tls is not None:
        _check_given(options.tls)
    clash = sorted({g.code for g in devices} & set(keng_accounts))
    if clash:
        raise ProvisionError(f"endpoint code(s) {', '.join(clash)} are keng's own broker accounts; rename them")
    out = private_dir(options.out).resolve()
    options = replace(options, out=out)
    files = {
        "conf": out / "mosquitto.conf",
        "passwords": out / "passwords",
        "acl": out / "acl",
        "url": out / "keng.url",
    }
    if options.split:
        files["keng_passwords"] = out / "keng.passwords"
    if options.tls is not None:
        files |= {"server_cert": out / "server.pem", "server_key": out / "server.key"}
    written = Written(files=files, url_display="", devices=len(devices))
    ca_file = _tls_files(options, files, written, now) if options.tls is not None else None
    if ca_file is not None:
        files["ca"] = ca_file
    hashes = {g.code: device_hashes[g.code] for g in devices}
    keng_hashes = {account: mosquitto_hash(password) for account, password in keng_accounts.items()}
    if options.split:
        write_private(files["keng_passwords"], render_passwords(keng_hashes).encode(), durable=True)
    else:
        hashes |= keng_hashes
    write_private(files["passwords"], render_passwords(hashes).encode(), durable=True)
    write_private(files["acl"], render_acl(options.topic_root, devices, sorted(keng_accounts)).encode(), durable=True)
    owner = _owner() if os.name == "posix" else None
    write_private(files["conf"], render_conf(options, files, owner=owner, generated_at=now).encode(), durable=True)
    account = KENG_ACCOUNT if KENG_ACCOUNT in keng_accounts else sorted(keng_accounts)[0]
    write_private(files["url"], (keng_url(options, account, keng_accounts[account], ca_file) + "\n").encode())
    written.url_display = keng_url(options, account, "", ca_file, masked=True)
    return written
