"""CAP 1.2 parser and validator: one pass over the document that builds a typed alert and records every violation of
the specification by element path. Only a document without violations yields a `CapAlert`.

`parse_cap(raw)` returns the alert or raises a `CapError`; `check_cap(raw)` never raises (it is for verdicts: the CLI,
reports) and returns a `Verdict`. No other exception escapes either function (a property test holds them to that).
Warnings (doubtful but valid: `expires` equal to `sent`, a resource refused on its own because its content does not
match its digest) are kept apart from violations and never refuse a document.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from xml.etree.ElementTree import Element, tostring

from keng.adapters.cap import fields
from keng.adapters.cap.errors import CapError, CapInvalid, CapMalformed, CapVersionUnsupported, Violation
from keng.adapters.cap.parse_info import read_info
from keng.adapters.cap.reader import MANY, ONE, OPTIONAL, Reader, enum_parser, split_tag
from keng.adapters.cap.xmldoc import CapLimits, load_xml
from keng.domain.cap import CAP12_NS, CapAlert, MsgType, Scope, Status

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
OLD_NAMESPACES = {
    "urn:oasis:names:tc:emergency:cap:1.1": "1.1",
    "urn:oasis:names:tc:emergency:cap:1.0": "1.0",
    "http://www.incident.com/cap/1.0": "1.0",
}
ALERT: dict[str, str] = {
    "identifier": ONE,
    "sender": ONE,
    "sent": ONE,
    "status": ONE,
    "msgType": ONE,
    "source": OPTIONAL,
    "scope": ONE,
    "restriction": OPTIONAL,
    "addresses": OPTIONAL,
    "code": MANY,
    "note": OPTIONAL,
    "references": OPTIONAL,
    "incidents": OPTIONAL,
    "info": MANY,
}
DEFAULT_LIMITS = CapLimits()


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one document: `alert` when valid, else every violation."""

    alert: CapAlert | None
    violations: tuple[Violation, ...]
    version: str | None
    warnings: tuple[Violation, ...] = ()

    @property
    def valid(self) -> bool:
        """True when the document is valid CAP 1.2."""
        return self.alert is not None


def parse_cap(raw: bytes, limits: CapLimits = DEFAULT_LIMITS) -> CapAlert:
    """Parse and validate a CAP 1.2 document, or raise CapTooLarge, CapUnsafeXml, CapMalformed,
    CapVersionUnsupported or CapInvalid (with every violation)."""
    root = load_xml(raw, limits)
    ns, local = split_tag(root.tag)
    if ns in OLD_NAMESPACES:
        version = OLD_NAMESPACES[ns]
        raise CapVersionUnsupported(
            f"this is a CAP {version} document (namespace {ns}); keng accepts CAP 1.2 only ({CAP12_NS})", version
        )
    if local != "alert":
        raise CapMalformed(f"the root element is {local or root.tag!r}, not a CAP 'alert'")
    reader = Reader(ns)
    if ns != CAP12_NS:
        reader.flag("alert", f"namespace must be {CAP12_NS} (found {ns or 'none'})")
    alert = _read_alert(reader, root)
    if reader.violations or alert is None:
        count = len(reader.violations)
        error = CapInvalid(f"the alert breaks {count} rule(s) of CAP 1.2", tuple(reader.violations))
        error.warnings = tuple(reader.warnings)
        raise error
    return replace(
        alert,
        warnings=tuple((w.path, w.message) for w in reader.warnings),
        refused_resources=tuple(reader.refused_resources),
    )


def check_cap(raw: bytes, limits: CapLimits = DEFAULT_LIMITS) -> Verdict:
    """Like parse_cap, but returns a verdict instead of raising."""
    try:
        alert = parse_cap(raw, limits)
    except CapVersionUnsupported as e:
        return Verdict(None, e.violations, e.version)
    except CapError as e:
        return Verdict(None, e.violations, "1.2" if isinstance(e, CapInvalid) else None, e.warnings)
    return Verdict(alert, (), "1.2", tuple(Violation(path, message) for path, message in alert.warnings))


def _read_alert(reader: Reader, root: Element) -> CapAlert | None:
    g = reader.group(root, "alert", ALERT)
    identifier = g.value("identifier", fields.identifier)
    sender = g.value("sender", fields.identifier)
    sent_text = g.text("sent")
    sent = g.value("sent", fields.date_time)
    status = g.value("status", enum_parser(Status))
    msg_type = g.value("msgType", enum_parser(MsgType))
    scope = g.value("scope", enum_parser(Scope))
    restriction, addresses = g.text("restriction"), g.text("addresses")
    if scope is Scope.RESTRICTED and restriction is None:
        reader.flag("alert/restriction", "required when scope is Restricted")
    if scope is Scope.PRIVATE and addresses is None:
        reader.flag("alert/addresses", "required when scope is Private")
    references = g.value("references", fields.references)
    if msg_type in (MsgType.UPDATE, MsgType.CANCEL) and not g.items.get("references"):
        reader.flag("alert/references", f"required when msgType is {msg_type}")
    elif msg_type in (MsgType.UPDATE, MsgType.CANCEL) and not g.texts("references"):
        reader.flag("alert/references", f"must name at least one earlier alert when msgType is {msg_type}")
    infos = [read_info(reader, el, path, sent) for path, el in g.elements("info")]
    signatures = [el for el in g.foreign if split_tag(el.tag) == (DSIG_NS, "Signature")]
    if not (identifier and sender and sent and sent_text and status and msg_type and scope):
        return None
    return CapAlert(
        identifier=identifier,
        sender=sender,
        sent=sent,
        sent_text=sent_text,
        status=status,
        msg_type=msg_type,
        source=g.text("source"),
        scope=scope,
        restriction=restriction,
        addresses=addresses,
        codes=tuple(t for _, t in g.texts("code")),
        note=g.text("note"),
        references=references or (),
        incidents=g.text("incidents"),
        infos=tuple(i for i in infos if i is not None),
        signed=bool(signatures),
        signature=tostring(signatures[0]) if signatures else None,
    )
