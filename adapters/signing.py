"""Standard Webhooks signatures: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>` of
`id.timestamp.body`.

Hand-written beside the `standardwebhooks` reference package (which the tests use as the oracle) because keng needs
what it does not offer: the signature over the raw bytes of bodies that are not UTF-8 (ISO-8859-1 CAP alerts), several
active secrets at once for rotation (and which one matched, for the audit record), an injectable clock, and a precise
reason for every refusal instead of a parse error escaping from a garbled header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keng.domain.errors import InvalidValue
from keng.domain.values import parse_digits

SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300
MAX_ID_LEN = 256
MAX_TIMESTAMP = 10**12  # Unix seconds; the tolerance window refuses anything far from now anyway


class SignatureError(ValueError):
    """A message failed verification; `reason` is a short stable code, the message says what was wrong."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    """A verified message's id and timestamp, and the fingerprint of the secret that matched."""

    message_id: str
    timestamp: int
    fingerprint: str


def new_secret() -> str:
    """A fresh 32-byte secret in the `whsec_<base64>` form."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    """Decode a `whsec_...` secret."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if len(key) < 16:
        raise ValueError("a webhook secret must hold at least 16 bytes")
    return key


def fingerprint(secret: str) -> str:
    """A short public identifier of a secret (first 16 hex digits of the SHA-256 of its bytes)."""
    return hashlib.sha256(secret_bytes(secret)).hexdigest()[:16]


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for a message."""
    mac = hmac.new(secret_bytes(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(
    secrets: Sequence[str], headers: Mapping[str, str], body: bytes, *, now: float, tolerance_s: int = TOLERANCE_S
) -> Verified:
    """Verify raw bytes against any of the active secrets; raise SignatureError naming the problem."""
    lower = {k.lower(): v for k, v in headers.items()}
    missing = [h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lower.get(h)]
    if missing:
        raise SignatureError("missing-headers", f"missing header(s): {', '.join(missing)}")
    message_id, stamp, signatures = lower["webhook-id"], lower["webhook-timestamp"], lower["webhook-signature"]
    if len(message_id) > MAX_ID_LEN or not message_id.isprintable():
        raise SignatureError("bad-id", f"webhook-id must be at most {MAX_ID_LEN} printable characters")
    try:
        timestamp = parse_digits(stamp, "webhook-timestamp", lo=0, hi=MAX_TIMESTAMP)
    except InvalidValue as e:
        raise SignatureError("bad-timestamp", f"{e} (whole seconds since the Unix epoch)") from None
    if timestamp < now - tolerance_s:
        raise SignatureError("timestamp-too-old", f"webhook-timestamp is more than {tolerance_s} s in the past")
    if timestamp > now + tolerance_s:
        raise SignatureError("timestamp-too-new", f"webhook-timestamp is more than {tolerance_s} s in the future")
    offered = []
    for item in signatures.split():
        version, _, value = item.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except binascii.Error:
            raise SignatureError(
                "bad-signature-format", "webhook-signature holds a v1 value that is not base64"
            ) from None
    if not offered:
        raise SignatureError("bad-signature-format", "webhook-signature holds no v1,<base64> signature")
    signed = f"{message_id}.{timestamp}.".encode() + body
    for secret in secrets:
        expected = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return Verified(message_id, timestamp, fingerprint(secret))
    raise SignatureError("no-matching-signature", "no signature matches an active secret")
