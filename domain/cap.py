"""A parsed CAP 1.2 alert (OASIS Common Alerting Protocol, version 1.2): typed, immutable values.

The parser in `adapters.cap` builds these only from a document that passed every rule of the specification, so the
enumerations are typed and the geometry is already checked. Free text stays as sent (only surrounding whitespace is
stripped). Times always carry their offset, as CAP requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

CAP12_NS = "urn:oasis:names:tc:emergency:cap:1.2"


class Status(StrEnum):
    """alert/status."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class MsgType(StrEnum):
    """alert/msgType."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class Scope(StrEnum):
    """alert/scope."""

    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


class Category(StrEnum):
    """info/category."""

    GEO = "Geo"
    MET = "Met"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class ResponseType(StrEnum):
    """info/responseType."""

    SHELTER = "Shelter"
    EVACUATE = "Evacuate"
    PREPARE = "Prepare"
    EXECUTE = "Execute"
    AVOID = "Avoid"
    MONITOR = "Monitor"
    ASSESS = "Assess"
    ALL_CLEAR = "AllClear"
    NONE = "None"


class Urgency(StrEnum):
    """info/urgency."""

    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class Severity(StrEnum):
    """info/severity."""

    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Certainty(StrEnum):
    """info/certainty ("Very Likely" of CAP 1.0 is not part of 1.2)."""

    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Point:
    """A WGS 84 coordinate pair, latitude first as in CAP."""

    lat: float
    lon: float


@dataclass(frozen=True)
class Circle:
    """area/circle: a centre and a radius in kilometres."""

    centre: Point
    radius_km: float


@dataclass(frozen=True)
class NamedValue:
    """A valueName/value pair (eventCode, parameter, geocode)."""

    name: str
    value: str


@dataclass(frozen=True)
class Reference:
    """One entry of alert/references: the extended message identifier `sender,identifier,sent`."""

    sender: str
    identifier: str
    sent: str

    @property
    def key(self) -> str:
        """The idempotency key of the referenced message (same form as `CapAlert.key`)."""
        return f"{self.sender},{self.identifier},{self.sent}"


@dataclass(frozen=True)
class Area:
    """info/area. `polygons` are closed rings (first point == last point)."""

    desc: str
    polygons: tuple[tuple[Point, ...], ...]
    circles: tuple[Circle, ...]
    geocodes: tuple[NamedValue, ...]
    altitude: float | None
    ceiling: float | None


@dataclass(frozen=True)
class Resource:
    """info/resource. `data` holds the decoded `derefUri` content (its SHA-1 digest already checked)."""

    desc: str
    mime_type: str
    size: int | None
    uri: str | None
    data: bytes | None
    digest: str | None


@dataclass(frozen=True)
class Info:
    """One info block: one language's rendering of the alert."""

    language: str
    categories: tuple[Category, ...]
    event: str
    response_types: tuple[ResponseType, ...]
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    audience: str | None
    event_codes: tuple[NamedValue, ...]
    effective: datetime | None
    onset: datetime | None
    expires: datetime | None
    sender_name: str | None
    headline: str | None
    description: str | None
    instruction: str | None
    web: str | None
    contact: str | None
    parameters: tuple[NamedValue, ...]
    resources: tuple[Resource, ...]
    areas: tuple[Area, ...]

    @property
    def is_vietnamese(self) -> bool:
        """True for language `vi` or a `vi-` subtag (`vi-VN`), case-insensitively."""
        lang = self.language.lower()
        return lang == "vi" or lang.startswith("vi-")


@dataclass(frozen=True)
class CapAlert:
    """A valid CAP 1.2 alert message. `signed` is True when an XML-DSig Signature element was present (kept in
    `signature` as serialised XML; verifying it is the transport layer's business)."""

    identifier: str
    sender: str
    sent: datetime
    sent_text: str
    status: Status
    msg_type: MsgType
    source: str | None
    scope: Scope
    restriction: str | None
    addresses: str | None
    codes: tuple[str, ...]
    note: str | None
    references: tuple[Reference, ...]
    incidents: str | None
    infos: tuple[Info, ...]
    signed: bool
    signature: bytes | None
    warnings: tuple[tuple[str, str], ...] = ()
    """(element path, message) of what is doubtful but valid (`expires` equal to `sent`, a refused resource)."""
    refused_resources: tuple[tuple[str, str, str], ...] = ()
    """(element path, mimeType, reason) of each resource refused on its own (content not matching its digest): the
    alert goes out without it."""

    @property
    def key(self) -> str:
        """`sender,identifier,sent` as sent: CAP's extended message identifier, keng's idempotency key."""
        return f"{self.sender},{self.identifier},{self.sent_text}"
