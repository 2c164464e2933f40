"""Application services for credentials and inbound messages: tokens, integrations, signed webhooks (idempotent)."""

from __future__ import annotations

import hashlib
import secrets as _secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from adapters.secrets import SecretStore
from adapters.signing import SignatureError, Verified, new_secret, verify
from adapters.store.app import Keng
from adapters.store.errors import NotFound
from domain.access import ApiToken, Integration, integration_id, token_id
from domain.actor import ExternalActor
from domain.area import Area
from domain.inbound import Inbound, inbound_id
from domain.staff import Staff
from domain.values import Role

TOKEN_PREFIX = "keng_"


class Unauthenticated(Exception):
    """No valid credentials: the token is missing, unknown or revoked."""


class IdempotencyConflict(Exception):
    """The same message id was used again with a different body."""


def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def issue_token(app: Keng, *, staff: str, label: str, by: str) -> str:
    """Create a bearer token for a staff member; only its hash is stored. The token is returned once."""
    member = app.staff(staff)
    token = TOKEN_PREFIX + _secrets.token_urlsafe(32)
    app.save_new(ApiToken.issue(token_sha256=_sha256(token), staff=member.handle, label=label, by=by), what="token")
    return token


def token_record_id(token: str) -> UUID:
    """Id of the ApiToken aggregate that records this token (by its hash)."""
    return token_id(_sha256(token))


def authenticate(app: Keng, token: str) -> Staff:
    """The staff member holding a valid token."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated("the bearer token is malformed")
    try:
        record = app.load(ApiToken, token_record_id(token), "token")
    except NotFound:
        raise Unauthenticated("the bearer token is not known") from None
    if record.revoked:
        raise Unauthenticated("the bearer token was revoked")
    return app.staff(record.staff)


def revoke_tokens(app: Keng, tokens: list[ApiToken], *, by: str) -> int:
    """Revoke the given live tokens; returns how many were revoked."""
    live = [t for t in tokens if not t.revoked]
    for t in live:
        t.revoke(by=by)
    app.save_changes(*live)
    return len(live)


def add_integration(
    app: Keng,
    secrets: SecretStore,
    *,
    name: str,
    kind: str,
    jurisdiction: list[str],
    by: str,
    report_url: str | None = None,
) -> str:
    """Add an integration with a first secret (and a delivery-report URL); returns the secret (shown once)."""
    for code in jurisdiction:
        app.area(code)
    integration = Integration.add(name=name, kind=kind, jurisdiction=jurisdiction, by=by)
    if report_url:
        integration.set_report_url(report_url, by=by)
    secret = new_secret()
    integration.issue_secret(secrets.add(name, secret), by=by)
    app.save_new(integration, what=f"integration {name!r}")
    return secret


def rotate_secret(app: Keng, secrets: SecretStore, *, name: str, by: str) -> str:
    """Issue another active secret (the old ones stay active until retired)."""
    integration = app.load(Integration, integration_id(name), f"integration {name!r}")
    secret = new_secret()
    integration.issue_secret(secrets.add(name, secret), by=by)
    app.save_changes(integration)
    return secret


def retire_secret(app: Keng, secrets: SecretStore, *, name: str, fingerprint: str, by: str) -> None:
    """Retire a secret and forget it."""
    integration = app.load(Integration, integration_id(name), f"integration {name!r}")
    integration.retire_secret(fingerprint, by=by)
    app.save_changes(integration)
    secrets.remove(name, fingerprint)


def jurisdiction_codes(codes: list[str], areas: list[Area]) -> frozenset[str]:
    """Area codes covered by a jurisdiction: each code, and for a district every ward registered under it."""
    covered = set(codes)
    covered |= {a.code for a in areas if a.level == "ward" and a.parent in covered}
    return frozenset(covered)


@dataclass(frozen=True)
class VerifiedInbound:
    """A message whose signature checked out, with the integration that signed it."""

    integration: Integration
    verified: Verified
    payload_sha256: str

    def actor(self, areas: list[Area]) -> ExternalActor:
        """The integration as an actor: it drafts and submits within its jurisdiction."""
        return ExternalActor(
            name=self.integration.name,
            roles=frozenset({Role.DRAFTER}),
            area_codes=jurisdiction_codes(self.integration.jurisdiction, areas),
        )


def verify_inbound(
    app: Keng,
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


def replayed_outcome(app: Keng, source: str, inbound: VerifiedInbound) -> dict[str, Any] | None:
    """For a message id seen before: its original outcome if the body is the same; IdempotencyConflict if not."""
    try:
        earlier = app.load(Inbound, inbound_id(source, inbound.verified.message_id), "inbound message")
    except NotFound:
        return None
    if earlier.payload_sha256 != inbound.payload_sha256:
        raise IdempotencyConflict(
            f"webhook id {inbound.verified.message_id!r} was already used with a different body "
            f"(sha256 {earlier.payload_sha256[:12]}…); send a new id for a new message"
        )
    return earlier.outcome


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
