"""Access and staff: bearer tokens, webhook integrations and their secrets, staff enrolment, roles and training.

Each function is one thing an administrator wants done (or, for `authenticate`, what every API request needs). The
collaborators are explicit: the application (`Keng`, the unit of work: it loads, and saves each change in one
transaction), and the secret store where secrets are involved. Administrative commands check here that `by` is an
admin, so that the CLI, the API and a console cannot forget to. Hashing and secret storage are adapters'
(adapters/store/access.py, adapters/secrets.py); the rules of each record are the domain's (domain/access.py,
domain/staff.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from uuid import UUID

from keng.adapters.secrets import SecretStore
from keng.adapters.signing import new_secret
from keng.adapters.store.access import TOKEN_PREFIX, new_token, token_record_id, token_sha256
from keng.adapters.store.app import Keng
from keng.adapters.store.errors import NotFound
from keng.domain.access import ApiToken, Integration, integration_events, integration_id
from keng.domain.staff import Staff
from keng.domain.values import AreaLevel, Role

SYSTEM = "system"  # the actor keng records for what it does itself (the first admin, the sample district)


class Unauthenticated(Exception):
    """No valid credentials: the token is missing, unknown or revoked."""


def require_admin(app: Keng, handle: str) -> None:
    """Administering staff, credentials and inventory needs an admin (the `system` actor is no staff member)."""
    app.staff(handle).require_role(Role.ADMIN, "administer staff and inventory")


# -- tokens -------------------------------------------------------------------------------------------------------


def issue_token(app: Keng, *, staff: str, label: str, by: str) -> str:
    """Create a bearer token for a staff member; only its hash is stored. The token is returned once."""
    require_admin(app, by)
    member = app.staff(staff)
    token = new_token()
    record = ApiToken.issue(token_sha256=token_sha256(token), staff=member.handle, label=label, by=by)
    app.save_new(record, what="token")
    return token


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


def revoke_tokens(app: Keng, *, staff: str, by: str) -> int:
    """Revoke every live token of a staff member (in one transaction); returns how many were revoked."""
    require_admin(app, by)
    handle = app.staff(staff).handle
    tokens: list[ApiToken] = list(app.aggregates_of(ApiToken.Issued, ApiToken.Revoked).values())
    live = [t for t in tokens if t.staff == handle and not t.revoked]
    for t in live:
        t.revoke(by=by)
    app.save_changes(*live)
    return len(live)


# -- integrations ---------------------------------------------------------------------------------------------------


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
    require_admin(app, by)
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


def _integration(app: Keng, name: str, by: str) -> Integration:
    require_admin(app, by)
    return app.load(Integration, integration_id(name), f"integration {name!r}")


def set_senders(app: Keng, *, name: str, senders: Sequence[str], by: str) -> None:
    """Replace the CAP senders an integration may use (each sender belongs to one integration at most)."""
    integration = _integration(app, name, by)
    integration.set_senders(senders, by=by, others=integrations(app))
    app.save_changes(integration)


def set_fetch_hosts(app: Keng, *, name: str, hosts: list[str], by: str) -> list[str]:
    """Replace an integration's fetch allowlist; returns it as recorded (normalised)."""
    integration = _integration(app, name, by)
    integration.set_fetch_hosts(hosts, by=by)
    app.save_changes(integration)
    return list(integration.fetch_hosts)


def rotate_secret(app: Keng, secrets: SecretStore, *, name: str, by: str) -> str:
    """Issue another active secret (the old ones stay active until retired); returns it (shown once)."""
    integration = _integration(app, name, by)
    secret = new_secret()
    integration.issue_secret(secrets.add(name, secret), by=by)
    app.save_changes(integration)
    return secret


def retire_secret(app: Keng, secrets: SecretStore, *, name: str, fingerprint: str, by: str) -> None:
    """Retire a secret and forget it."""
    integration = _integration(app, name, by)
    integration.retire_secret(fingerprint, by=by)
    app.save_changes(integration)
    secrets.remove(name, fingerprint)


# -- staff ----------------------------------------------------------------------------------------------------------


def enrol_staff(app: Keng, *, handle: str, name: str, roles: list[str], wards: Sequence[str] = (), by: str) -> UUID:
    """Enrol a staff member (an admin's command); ward codes in `wards` must be registered wards."""
    require_admin(app, by)
    return _enrol(app, handle=handle, name=name, roles=roles, wards=wards, by=by)


def enrol_by_system(app: Keng, *, handle: str, name: str, roles: list[str], wards: Sequence[str] = ()) -> UUID:
    """Enrol a staff member as keng itself (`system`): the first admin of an empty store, the sample staff."""
    return _enrol(app, handle=handle, name=name, roles=roles, wards=wards, by=SYSTEM)


def _enrol(app: Keng, *, handle: str, name: str, roles: list[str], wards: Sequence[str], by: str) -> UUID:
    for code in wards:
        app.area_of_level(code, AreaLevel.WARD)
    member = Staff.enrol(handle=handle, name=name, roles=roles, wards=list(wards), by=by)
    app.save_new(member, what=f"staff member {member.handle!r}")
    return member.id


def _member(app: Keng, handle: str, by: str) -> Staff:
    require_admin(app, by)
    return app.staff(handle)


def grant_role(app: Keng, handle: str, role: str, *, by: str) -> None:
    """Grant a role to a staff member."""
    member = _member(app, handle, by)
    member.grant(role, by=by)
    app.save_changes(member)


def revoke_role(app: Keng, handle: str, role: str, *, by: str) -> None:
    """Revoke a role from a staff member."""
    member = _member(app, handle, by)
    member.revoke(role, by=by)
    app.save_changes(member)


def record_training(app: Keng, handle: str, course: str, *, on: date | None = None, by: str) -> None:
    """Record a completed training course (`on` defaults to today by the application's clock)."""
    member = _member(app, handle, by)
    member.complete_training(course, on=on or app.clock().date(), by=by)
    app.save_changes(member)
