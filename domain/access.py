"""Credentials as events: API tokens for staff and webhook integrations (the city source system, CAP senders).

Only a token's SHA-256 is ever recorded, never the token. An integration's signing secrets are kept outside the event
log (an append-only log cannot forget a leaked secret); the log records each secret's fingerprint, when it was issued
and when it was retired, so an auditor can tell which secret verified which message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from keng.domain.area import check_code
from keng.domain.errors import IllegalTransition, InvalidValue, SenderTaken
from keng.domain.ids import KENG_NAMESPACE
from keng.domain.outbound import check_fetch_hosts
from keng.domain.values import clean_text

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
INTEGRATION_KINDS = ("city-source", "cap", "app", "portal")  # app: citizen app backend; portal: a ward portal
_SENDER = re.compile(r"[^\s,<&\x00-\x1f\x7f-\x9f]{1,255}")  # CAP 1.2: no spaces, commas, '<' or '&'


def token_id(token_sha256: str) -> UUID:
    """Aggregate id of the API token with this SHA-256 (hex)."""
    return uuid5(KENG_NAMESPACE, f"token\x1f{token_sha256}")


def integration_id(name: str) -> UUID:
    """Aggregate id of the integration with this name."""
    return uuid5(KENG_NAMESPACE, f"integration\x1f{name}")


def integration_events() -> list[type[Aggregate.Event]]:
    """Every event class of the Integration aggregate, for a fold of integrations alone (new events join by
    themselves)."""
    bases = (Integration.Event, Integration.Created)
    return [
        v
        for v in vars(Integration).values()
        if isinstance(v, type) and issubclass(v, Aggregate.Event) and v not in bases
    ]


class ApiToken(Aggregate):
    """A bearer token of one staff member; revocable, never shown again after creation."""

    class Issued(Aggregate.Created):
        staff: str
        label: str
        by: str

    class Revoked(Aggregate.Event):
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.revoked = True

    def __init__(self, staff: str, label: str, by: str) -> None:
        self.staff = staff
        self.label = label
        self.revoked = False

    @classmethod
    def issue(cls, *, token_sha256: str, staff: str, label: str, by: str) -> ApiToken:
        """Record a new token by its hash."""
        if not re.fullmatch(r"[0-9a-f]{64}", token_sha256):
            raise InvalidValue("a token is recorded by its SHA-256 in hex")
        return cls._create(
            cls.Issued,
            id=token_id(token_sha256),
            staff=staff,
            label=clean_text(label, "label", max_len=80, required=False),
            by=by,
        )

    def revoke(self, *, by: str) -> None:
        """Revoke the token (final)."""
        if self.revoked:
            raise IllegalTransition("rule lifecycle: the token is already revoked")
        self.trigger_event(self.Revoked, by=by)


class Integration(Aggregate):
    """An external system allowed to post signed messages, limited to a jurisdiction (area codes)."""

    class Added(Aggregate.Created):
        name: str
        kind: str
        jurisdiction: list[str]
        by: str

    class SecretIssued(Aggregate.Event):
        fingerprint: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.secrets.append(self.fingerprint)

    class ReportUrlSet(Aggregate.Event):
        """Where keng POSTs delivery reports for the messages this integration sent (None: no reports); for an `app`
        or `portal` integration, where keng pushes bulletins (and, to the app, replies to feedback)."""

        url: str | None
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.report_url = self.url

    class SecretRetired(Aggregate.Event):
        fingerprint: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.secrets.remove(self.fingerprint)

    class FetchHostsSet(Aggregate.Event):
        """Hosts keng may fetch from for this integration although they resolve to loopback or private addresses
        (resource URIs in its messages, its report URL); see domain/outbound.py."""

        hosts: list[str]
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.fetch_hosts = list(self.hosts)

    class SendersSet(Aggregate.Event):
        """The CAP `<sender>` values this integration may send under; an integration without any (every one added
        before senders existed) may send no CAP message until an admin sets them."""

        senders: list[str]
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.senders = list(self.senders)

    class JurisdictionCarriedOver(Aggregate.Event):
        """A reorganisation of areas carried the jurisdiction over to the units that replaced its areas."""

        jurisdiction: list[str]
        previous: list[str]
        effective: str
        reason: str
        by: str

        def apply(self, aggregate: Any) -> None:
            aggregate.jurisdiction = list(self.jurisdiction)

    def __init__(self, name: str, kind: str, jurisdiction: list[str], by: str) -> None:
        self.name = name
        self.kind = kind
        self.jurisdiction = list(jurisdiction)
        self.secrets: list[str] = []
        self.report_url: str | None = None
        self.fetch_hosts: list[str] = []
        self.senders: list[str] = []

    @classmethod
    def add(cls, *, name: str, kind: str, jurisdiction: list[str], by: str) -> Integration:
        """Add an integration of a kind (`city-source`, `cap`, `app` or `portal`) for some area codes."""
        if not _NAME.match(name):
            raise InvalidValue(f"integration name {name!r} must be 2-40 characters of a-z, 0-9 and '-'")
        if kind not in INTEGRATION_KINDS:
            raise InvalidValue(f"unknown integration kind {kind!r}: expected one of {', '.join(INTEGRATION_KINDS)}")
        codes = sorted({check_code(c) for c in jurisdiction})
        if not codes:
            raise InvalidValue("an integration needs a jurisdiction (at least one area code)")
        return cls._create(cls.Added, id=integration_id(name), name=name, kind=kind, jurisdiction=codes, by=by)

    def carry_jurisdiction_over(self, codes: list[str], *, effective: str, reason: str, by: str) -> bool:
        """Replace the jurisdiction after a reorganisation (never empty); False if unchanged."""
        new = sorted({check_code(c) for c in codes})
        if not new:
            raise InvalidValue(f"{self.name} would be left without a jurisdiction")
        if new == self.jurisdiction:
            return False
        self.trigger_event(self.JurisdictionCarriedOver, jurisdiction=new, previous=list(self.jurisdiction),
                           effective=effective, reason=reason[:2000], by=by)  # fmt: skip
        return True

    def issue_secret(self, fingerprint: str, *, by: str) -> None:
        """Record a new active secret (rotation keeps the older ones active until retired)."""
        if fingerprint in self.secrets:
            raise InvalidValue(f"secret {fingerprint} is already active")
        self.trigger_event(self.SecretIssued, fingerprint=fingerprint, by=by)

    def set_report_url(self, url: str | None, *, by: str) -> None:
        """Set (or clear) the delivery-report URL; only http(s) URLs."""
        if url is not None and not re.match(r"^https?://[^\s/]+", url):
            raise InvalidValue(f"report URL {url!r} must be an http(s) URL")
        self.trigger_event(self.ReportUrlSet, url=url, by=by)

    def set_fetch_hosts(self, hosts: list[str], *, by: str) -> None:
        """Replace the fetch allowlist (host names or address literals; empty: none)."""
        self.trigger_event(self.FetchHostsSet, hosts=check_fetch_hosts(hosts), by=by)

    def retire_secret(self, fingerprint: str, *, by: str) -> None:
        """Retire a secret; the last active secret cannot be retired (issue a new one first)."""
        if fingerprint not in self.secrets:
            raise InvalidValue(f"secret {fingerprint} is not active for {self.name}")
        if len(self.secrets) == 1:
            raise IllegalTransition("rule keep-one-secret: issue a new secret before retiring the last one")
        self.trigger_event(self.SecretRetired, fingerprint=fingerprint, by=by)

    def set_senders(self, senders: Sequence[str], *, by: str, others: Iterable[Integration]) -> None:
        """Set the CAP senders this integration may use (replacing the earlier ones). A sender belongs to one
        integration at most: `others` are the other integrations, and one already holding a sender refuses it."""
        if self.kind != "cap":
            raise InvalidValue(f"senders are for CAP integrations; {self.name} is a {self.kind} integration")
        chosen = sorted(set(senders))
        bad = [s for s in chosen if not _SENDER.fullmatch(s)]
        if bad or len(chosen) > 50:
            raise InvalidValue(
                f"CAP senders must be 1-255 characters without spaces, commas, '<' or '&' (at most 50): {bad}"
            )
        for other in others:
            taken = sorted(set(chosen) & set(other.senders)) if other.name != self.name else []
            if taken:
                raise SenderTaken(f"rule {SenderTaken.rule}: sender {taken[0]!r} belongs to integration {other.name!r}")
        self.trigger_event(self.SendersSet, senders=chosen, by=by)
