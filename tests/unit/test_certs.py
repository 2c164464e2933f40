"""The device link's certificates (adapters/mqtt/certs.py): what keng makes verifies in a real TLS handshake on
loopback, for the names it was made for only, and a CA that is not one is refused by name."""

from __future__ import annotations

import asyncio
import ssl
import stat
from pathlib import Path

import pytest

from keng.adapters.mqtt.certs import CertError, load_ca, make_ca, make_client_cert, make_server_cert


async def _handshake(
    tmp_path: Path, server_hosts: list[str], dial: str, *, trust: bytes | None = None, client_cert: bool = False
) -> str | None:
    """Serve TLS with a fresh CA's server certificate; connect to `dial` trusting `trust` (default: that CA)."""
    ca = make_ca()
    server = make_server_cert(ca, server_hosts)
    server.write(tmp_path / "server.pem", tmp_path / "server.key")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    peer: list[object] = []
    if client_cert:
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        server_ctx.load_verify_locations(cadata=ca.cert_pem.decode())

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer.append(writer.get_extra_info("peercert"))
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = srv.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cadata=(trust or ca.cert_pem).decode())
    if client_cert:
        me = make_client_cert(ca, "00595-G01-S01")
        me.write(tmp_path / "client.pem", tmp_path / "client.key")
        client_ctx.load_cert_chain(tmp_path / "client.pem", tmp_path / "client.key")
    try:
        async with srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname=dial)
            data = await reader.read()
            writer.close()
            assert data == b"ok"
            if client_cert:
                subject = dict(x[0] for x in peer[0]["subject"])  # type: ignore[index]
                return str(subject["commonName"])
            return None
    finally:
        srv.close()


async def test_a_server_certificate_verifies_for_its_names_and_addresses(tmp_path: Path) -> None:
    await _handshake(tmp_path, ["localhost", "127.0.0.1"], "localhost")
    await _handshake(tmp_path, ["broker.example", "127.0.0.1"], "127.0.0.1")


async def test_a_name_the_certificate_was_not_made_for_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match=r"Hostname mismatch|doesn.t match"):
        await _handshake(tmp_path, ["broker.example"], "other.example")


async def test_another_ca_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        await _handshake(tmp_path, ["localhost"], "localhost", trust=make_ca("someone else").cert_pem)


async def test_a_client_certificate_is_verified_by_the_broker_side(tmp_path: Path) -> None:
    assert await _handshake(tmp_path, ["localhost"], "localhost", client_cert=True) == "00595-G01-S01"


def test_keys_are_written_private_and_a_ca_loads_back(tmp_path: Path) -> None:
    ca = make_ca()
    ca.write(tmp_path / "ca.pem", tmp_path / "ca.key")
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.pem").stat().st_mode) == 0o644
    again = load_ca(tmp_path / "ca.pem", tmp_path / "ca.key")
    assert again == ca
    make_server_cert(again, ["localhost"]).certificate.verify_directly_issued_by(ca.certificate)


def test_what_is_not_a_ca_is_refused_by_name(tmp_path: Path) -> None:
    ca = make_ca()
    leaf = make_server_cert(ca, ["localhost"])
    leaf.write(tmp_path / "s.pem", tmp_path / "s.key")
    ca.write(tmp_path / "ca.pem", tmp_path / "ca.key")
    with pytest.raises(CertError, match=r"s\.pem: not a CA certificate"):
        load_ca(tmp_path / "s.pem", tmp_path / "s.key")
    with pytest.raises(CertError, match=r"s\.key is not the key of .*ca\.pem"):
        load_ca(tmp_path / "ca.pem", tmp_path / "s.key")
    with pytest.raises(CertError, match=r"cannot read .*missing\.pem"):
        load_ca(tmp_path / "missing.pem", tmp_path / "ca.key")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(CertError, match=r"junk\.pem: not a PEM certificate"):
        load_ca(tmp_path / "junk.pem", tmp_path / "ca.key")
    with pytest.raises(CertError, match="at least one host"):
        make_server_cert(ca, [])
