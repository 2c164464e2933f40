"""Standard Webhooks signing, checked against the reference implementation (`standardwebhooks`) as the oracle."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from keng.adapters.signing import SignatureError, fingerprint, new_secret, sign, verify

SECRET = new_secret()


def _headers(message_id: str, ts: int, signature: str) -> dict[str, str]:
    return {"webhook-id": message_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


@given(body=st.text(max_size=300), message_id=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True))
def test_signature_matches_the_reference_implementation(body: str, message_id: str) -> None:
    ts = int(time.time())
    ours = sign(SECRET, message_id, ts, body.encode())
    reference = Webhook(SECRET).sign(message_id, datetime.fromtimestamp(ts, tz=UTC), body)
    assert ours == reference
    Webhook(SECRET).verify(body.encode(), _headers(message_id, ts, ours), json_parse=False)


def test_verify_accepts_any_active_secret_and_names_the_one_that_matched() -> None:
    old, new = new_secret(), new_secret()
    ts = int(time.time())
    verified = verify([old, new], _headers("m", ts, sign(new, "m", ts, b"{}")), b"{}", now=ts)
    assert verified.fingerprint == fingerprint(new) != fingerprint(old)


def test_verify_covers_raw_bytes_that_are_not_utf8() -> None:
    body = "<alert>Hà Nội</alert>".encode("iso-8859-1", errors="replace") + b"\xe9"
    ts = int(time.time())
    assert verify([SECRET], _headers("m", ts, sign(SECRET, "m", ts, body)), body, now=ts).message_id == "m"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing-headers"),
        ({"webhook-id": "m", "webhook-timestamp": "abc", "webhook-signature": "v1,AAAA"}, "bad-timestamp"),
        ({"webhook-id": "m", "webhook-timestamp": "1000", "webhook-signature": "v1,AAAA"}, "timestamp-too-old"),
        ({"webhook-id": "m", "webhook-timestamp": "9999999999", "webhook-signature": "v1,AAAA"}, "timestamp-too-new"),
        ({"webhook-id": "m", "webhook-timestamp": "{now}", "webhook-signature": "v1,***"}, "bad-signature-format"),
        ({"webhook-id": "m", "webhook-timestamp": "{now}", "webhook-signature": "v2,AAAA"}, "bad-signature-format"),
        ({"webhook-id": "m", "webhook-timestamp": "{now}", "webhook-signature": "v1,AAAA"}, "no-matching-signature"),
    ],
)
def test_every_refusal_has_a_reason(headers: dict[str, str], reason: str) -> None:
    now = int(time.time())
    filled = {k: v.replace("{now}", str(now)) for k, v in headers.items()}
    with pytest.raises(SignatureError) as info:
        verify([SECRET], filled, b"{}", now=now)
    assert info.value.reason == reason
