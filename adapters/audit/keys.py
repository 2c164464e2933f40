"""The district's Ed25519 signing key for audit checkpoints (`cryptography`).

The key lives in `<data dir>/audit-key.pem` (PKCS#8 PEM, unencrypted, file mode 0600) and is created on first use.
Whoever can read it can sign checkpoints: keep the data directory private, and keep exported checkpoints (which carry
the public key) off the machine, because they are what proves a key was later replaced.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from keng.adapters.private_files import create_once

KEY_FILE = "audit-key.pem"


def key_id(public: bytes) -> str:
    """Short fingerprint of a raw public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public).hexdigest()[:16]


class Signer:
    """Signs checkpoint messages with the district key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = key_id(self.public)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._private.sign(message))

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())


def verify_signature(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` under the raw public key."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create(data_dir: Path) -> Signer:
    """The district key from the data directory, created (0600) on first use: by one of several processes starting
    at once, and read by all of them (adapters/private_files.py `create_once`)."""
    path = data_dir / KEY_FILE
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        create_once(path, pem)
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return Signer(private)
