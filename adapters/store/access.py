"""Credentials and inbound messages at the store: token hashing, verifying a signed message, finding and making Inbound
records. The use cases built on them are services/access.py (tokens, integrations) and services/inbound.py (the
idempotent acceptance of a message)."""

from __future__ import annotations

import hashlib
import secrets as _secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from keng.adapters.secrets import SecretStore
from keng.adapters.signing import SignatureError, Verified, sign, verify
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import NotFound
from keng.domain.access import Integration, integration_id, token_id
from keng.domain.actor import ExternalActor
from keng.domain.area_registry import AreaView
from keng.domain.inbound import Inbound, inbound_id, legacy_inbound_id
from keng.domain.values import Role

TOKEN_PREFIX = "keng_"


def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def new_token() -> str:
    """A fresh bearer token: a recognisable prefix (so a leaked one can be found in logs and code) and 256 random
    bits."""
    return TOKEN_PREFIX + _secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    """What is stored of a token: its SHA-256 in hex."""
    return _sha256(token)


def token_record_id(token: str) -> UUID:
    """Id of the ApiToken aggregate that records this token (by its hash)."""
    return token_id(_sha256(token))


def jurisdiction_codes(codes: list[str], areas: Iterable[AreaView]) -> frozenset[str]:
    """Area codes covered by a jurisdiction: each code, and for a district (or a province) every ward under it.
    `areas` are the units in force now (the tree of today: a jurisdiction names today's codes)."""
    covered = set(codes)
    covered |= {a.code for a in areas if a.level == "ward" and a.parent in covered}
    return frozenset(covered)


@dataclass(frozen=True)
class VerifiedInbound:
    """A message whose signature checked out, with the integration that signed it."""

    integration: Integration
    verified: Verified
    payload_sha256: str

    def actor(self, areas: Iterable[AreaView]) -> ExternalActor:
        """The integration as an actor: it drafts and submits within its jurisdiction."""
        return ExternalActor(
            name=self.integration.name,
            roles=frozenset({Role.DRAFTER}),
            area_codes=jurisdiction_codes(self.integration.jurisdiction, areas),
            senders=frozenset(self.integration.senders),
        )


def verify_inbound(
    secrets: SecretStore,
    integrations: list[Integration],
    *,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
) -> VerifiedInbound:
    """Verify a signed message against the active secrets of the given integrations."""
    failure: SignatureError | None = None
    for integration in integrations:
        active = secrets.active(integration.name, integration.secrets)
        if not active:
            continue
        try:
            verified = verify(active, headers, body, now=now)
        except SignatureError as e:
            if e.reason != "no-matching-signature":
                raise
            failure = e
            continue
        return VerifiedInbound(integration, verified, _sha256(body))
    raise failure or SignatureError("no-matching-signature", "no integration of this kind has an active secret")


def find_inbound(app: Keng, source: str, message_id: str, integration: str | None) -> Inbound | None:
    """The accepted message `message_id` that `integration` sent, if any. A record stored before keys were scoped to
    their integration (the unscoped id) counts only when that same integration sent it; with no integration known
    (a broadcast a staff member drafted), only such a record is looked for."""
    if integration is not None:
        try:
            return app.load(Inbound, inbound_id(source, message_id, integration), "inbound message")
        except NotFound:
            pass
    try:
        earlier = app.load(Inbound, legacy_inbound_id(source, message_id), "inbound message")
    except NotFound:
        return None
    return earlier if integration is None or earlier.integration == integration else None


def record_inbound(source: str, inbound: VerifiedInbound, outcome: dict[str, Any]) -> Inbound:
    """The Inbound event for an accepted message (saved with whatever it created, in one transaction)."""
    return Inbound.accept(
        source=source,
        message_id=inbound.verified.message_id,
        integration=inbound.integration.name,
        signature=f"v1:{inbound.verified.fingerprint}",
        payload_sha256=inbound.payload_sha256,
        outcome=outcome,
    )


def webhook_headers(
    app: Keng, secrets: SecretStore, integration: str, message_id: str, body: bytes
) -> tuple[dict[str, str] | None, frozenset[str]]:
    """Standard Webhooks headers signing `body` as message `message_id` with the integration's newest active secret
    (None when it has none), and the integration's fetch allowlist; NotFound for an unknown integration."""
    record = app.load(Integration, integration_id(integration), "integration")
    hosts = frozenset(record.fetch_hosts)
    active = secrets.active(record.name, record.secrets)
    if not active:
        return None, hosts
    ts = int(time.time())
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(active[-1], message_id, ts, body),
    }, hosts
