"""Credentials and inbound primitives: tokens, integrations, verifying a signed message, finding and making Inbound
records (the idempotency use case built on them is services/inbound.py)."""

from __future__ import annotations

import hashlib
import secrets as _secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from adapters.secrets import SecretStore
from adapters.signing import SignatureError, Verified, new_secret, verify
from adapters.store.app import Keng
from adapters.store.errors import NotFound
from domain.access import ApiToken, Integration, integration_events, integration_id, token_id
from domain.actor import ExternalActor
from domain.area import Area
from domain.inbound import Inbound, inbound_id, legacy_inbound_id
from domain.staff import Staff
from domain.values import Role

TOKEN_PREFIX = "keng_"


class Unauthenticated(Exception):
    """No valid credentials: the token is missing, unknown or revoked."""


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
    fetch_hosts: list[str] | None = None,
    senders: Sequence[str] = (),
) -> str:
    """Add an integration with a first secret (and a delivery-report URL, hosts allowlisted for outbound fetches, and
    for CAP the senders it may use); returns the secret (shown once)."""
    for code in jurisdiction:
        app.area(code)
    integration = Integration.add(name=name, kind=kind, jurisdiction=jurisdiction, by=by)
    if report_url:
        integration.set_report_url(report_url, by=by)
    if fetch_hosts:
        integration.set_fetch_hosts(fetch_hosts, by=by)
    if senders:
        integration.set_senders(senders, by=by, others=integrations(app))
    secret = new_secret()
    integration.issue_secret(secrets.add(name, secret), by=by)
    app.save_new(integration, what=f"integration {name!r}")
    return secret


def integrations(app: Keng) -> list[Integration]:
    """Every integration, folded from the integration events alone."""
    return list(app.aggregates_of(*integration_events()).values())


def set_senders(app: Keng, *, name: str, senders: Sequence[str], by: str) -> None:
    """Replace the CAP senders an integration may use (each sender belongs to one integration at most)."""
    integration = app.load(Integration, integration_id(name), f"integration {name!r}")
    integration.set_senders(senders, by=by, others=integrations(app))
    app.save_changes(integration)


def rotate_secret(app: Keng, secrets: SecretStore, *, name: str, by: str) -> str:
    """Issue another active secret (the old ones stay active until retired)."""
    integration = app.load(Integration, integration_id(name), f"integration {name!r}")
    secret = new_secret()
    integration.issue_secret(secrets.add(name, secret), by=by)
    app.save_changes(integration)
    return secret


def set_fetch_hosts(app: Keng, *, name: str, hosts: list[str], by: str) -> list[str]:
    """Replace an integration's fetch allowlist; returns it as recorded (normalised)."""
    integration = app.load(Integration, integration_id(name), f"integration {name!r}")
    integration.set_fetch_hosts(hosts, by=by)
    app.save_changes(integration)
    return list(integration.fetch_hosts)


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
            senders=frozenset(self.integration.senders),
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
