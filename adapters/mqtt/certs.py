"""Certificates for the device link's TLS (the `cryptography` package): a private CA that keng makes for a district
broker, the broker's server certificate signed by it, and client certificates.

Used by `keng broker config --tls` (a CA generated unless one is given, and the listener's certificate) and by the
tests that start a TLS mosquitto. Keys are ECDSA P-256: small, quick to make, and the cheapest handshake for thousands
of devices reconnecting at once on 3G/4G.

```
ca = make_ca()                                          # or load_ca(Path("ca.pem"), Path("ca.key"))
server = make_server_cert(ca, ["broker.ward.example", "10.0.0.5"])
ca.write(dir / "ca.pem", dir / "ca.key")               # the key is written 0600; the certificate 0644
server.write(dir / "server.pem", dir / "server.key")
```
Devices (and keng's own links: `mqtts://...?ca=ca.pem`) verify the broker against `ca.pem`. Keys are written 0600
for the user who runs keng: mosquitto started as root drops to user `mosquitto` before it reads its key file, so that
user must be able to read `server.key` (owner or group), or the broker exits with "Unable to load server key file".
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keng.adapters.private_files import write_private

CA_DAYS = 3650
LEAF_DAYS = 825  # the longest a server certificate may live for common TLS clients
BACKDATE = timedelta(minutes=5)  # tolerate a device clock a little behind


_ISSUER_KEYS = (
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
    dsa.DSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


def _digest(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()


class CertError(ValueError):
    """A certificate or key could not be read or is not what it should be (the message names the file)."""


@dataclass(frozen=True)
class CertKey:
    """A certificate with its private key, both PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate."""
        return x509.load_pem_x509_certificate(self.cert_pem)

    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        """The parsed private key (EC for what keng makes; a given CA may also be RSA or Ed25519)."""
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if not isinstance(key, _ISSUER_KEYS):
            raise CertError(f"a {type(key).__name__} cannot sign certificates")
        return key

    def write(self, cert_path: Path, key_path: Path) -> None:
        """Write the certificate (0644, it is public) and the key (0600, atomically)."""
        write_private(key_path, self.key_pem)
        write_private(cert_path, self.cert_pem)
        os.chmod(cert_path, 0o644)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keng"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _san(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_ca(common_name: str = "keng device-link CA", *, days: int = CA_DAYS, now: datetime | None = None) -> CertKey:
    """A self-signed CA that may sign certificates (and nothing below it may sign further)."""
    key = _new_key()
    start = (now or datetime.now(UTC)) - BACKDATE
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Digital signatures (ECDSA keys: TLS handshakes), and certificate and CRL signing for a CA only."""
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf(
    ca: CertKey, common_name: str, usage: x509.ObjectIdentifier, hosts: Iterable[str], days: int, now: datetime | None
) -> CertKey:
    ca_cert, ca_key = ca.certificate, ca.private_key()
    key = _new_key()
    start = (now or datetime.now(UTC)) - BACKDATE
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    san = _san(hosts)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(ca_key, _digest(ca_key))
    return CertKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_server_cert(
    ca: CertKey, hosts: Iterable[str], *, days: int = LEAF_DAYS, now: datetime | None = None
) -> CertKey:
    """A broker's certificate, signed by `ca`, valid for each of `hosts` (DNS names or IP addresses, which clients
    check against the host they dialled; the first is also the common name)."""
    names = list(hosts)
    if not names:
        raise CertError("a server certificate needs at least one host name or address")
    return _leaf(ca, names[0], ExtendedKeyUsageOID.SERVER_AUTH, names, days, now)


def make_client_cert(ca: CertKey, name: str, *, days: int = LEAF_DAYS, now: datetime | None = None) -> CertKey:
    """A client certificate (a device, or keng's own account) with `name` as its common name, signed by `ca`."""
    return _leaf(ca, name, ExtendedKeyUsageOID.CLIENT_AUTH, (), days, now)


def load_ca(cert_path: Path, key_path: Path) -> CertKey:
    """An existing CA (its certificate and unencrypted key, PEM) to sign with; CertError names what is wrong."""
    try:
        pair = CertKey(cert_path.read_bytes(), key_path.read_bytes())
    except OSError as e:
        raise CertError(f"cannot read {e.filename}: {e.strerror}") from None
    try:
        cert = pair.certificate
    except ValueError as e:
        raise CertError(f"{cert_path}: not a PEM certificate ({e})") from None
    try:
        key = serialization.load_pem_private_key(pair.key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise CertError(f"{key_path}: not an unencrypted PEM private key ({e})") from None
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise CertError(f"{cert_path}: not a CA certificate (basicConstraints CA:TRUE is missing)")
    if key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise CertError(f"{key_path} is not the key of {cert_path}")
    if not isinstance(key, _ISSUER_KEYS):
        raise CertError(f"{key_path}: a {type(key).__name__} cannot sign certificates")
    return pair
