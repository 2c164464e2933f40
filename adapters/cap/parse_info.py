"""Building the `info`, `resource` and `area` parts of a CAP 1.2 alert (see `adapters.cap.parse`)."""

from __future__ import annotations

from datetime import datetime
from xml.etree.ElementTree import Element

from keng.adapters.cap import fields
from keng.adapters.cap.reader import MANY, ONE, OPTIONAL, SOME, Group, Reader, enum_parser
from keng.domain.cap import Area, Category, Certainty, Info, NamedValue, Resource, ResponseType, Severity, Urgency

INFO: dict[str, str] = {
    "language": OPTIONAL,
    "category": SOME,
    "event": ONE,
    "responseType": MANY,
    "urgency": ONE,
    "severity": ONE,
    "certainty": ONE,
    "audience": OPTIONAL,
    "eventCode": MANY,
    "effective": OPTIONAL,
    "onset": OPTIONAL,
    "expires": OPTIONAL,
    "senderName": OPTIONAL,
    "headline": OPTIONAL,
    "description": OPTIONAL,
    "instruction": OPTIONAL,
    "web": OPTIONAL,
    "contact": OPTIONAL,
    "parameter": MANY,
    "resource": MANY,
    "area": MANY,
}
RESOURCE = {"resourceDesc": ONE, "mimeType": ONE, "size": OPTIONAL, "uri": OPTIONAL, "derefUri": OPTIONAL,
            "digest": OPTIONAL}  # fmt: skip
AREA = {"areaDesc": ONE, "polygon": MANY, "circle": MANY, "geocode": MANY, "altitude": OPTIONAL, "ceiling": OPTIONAL}
PAIR = {"valueName": ONE, "value": ONE}


def named_values(reader: Reader, group: Group, name: str) -> tuple[NamedValue, ...]:
    """eventCode, parameter and geocode: each a valueName and a value (which may be empty: an xs:string)."""
    out = []
    for path, el in group.elements(name):
        pair = reader.group(el, path, PAIR)
        key, value = pair.text("valueName"), pair.text("value", empty_ok=True)
        if key is not None and value is not None:
            out.append(NamedValue(key, value))
    return tuple(out)


def read_info(reader: Reader, el: Element, path: str, sent: datetime | None) -> Info | None:
    """One info block; None when something required is missing or invalid (already flagged)."""
    g = reader.group(el, path, INFO)
    language = g.value("language", fields.language) or "en-US"
    categories = g.values("category", enum_parser(Category))
    event = g.text("event")
    urgency = g.value("urgency", enum_parser(Urgency))
    severity = g.value("severity", enum_parser(Severity))
    certainty = g.value("certainty", enum_parser(Certainty))
    effective = g.value("effective", fields.date_time)
    onset = g.value("onset", fields.date_time)
    expires = g.value("expires", fields.date_time)
    if expires is not None and sent is not None and expires < sent:
        reader.flag(f"{path}/expires", f"must not be before alert/sent ({expires.isoformat()} < {sent.isoformat()})")
    elif expires is not None and expires == sent:  # senders use it for "no expiry": taken as none given
        reader.warn(f"{path}/expires", "equals alert/sent; taken as no expiry (the default lifetime applies)")
        expires = None
    web = g.value("web", fields.absolute_uri)
    resources = [read_resource(reader, p, e) for p, e in g.elements("resource")]
    areas = [read_area(reader, p, e) for p, e in g.elements("area")]
    info = Info(
        language=language,
        categories=tuple(categories),
        event=event or "",
        response_types=tuple(g.values("responseType", enum_parser(ResponseType))),
        urgency=urgency or Urgency.UNKNOWN,
        severity=severity or Severity.UNKNOWN,
        certainty=certainty or Certainty.UNKNOWN,
        audience=g.text("audience"),
        event_codes=named_values(reader, g, "eventCode"),
        effective=effective,
        onset=onset,
        expires=expires,
        sender_name=g.text("senderName"),
        headline=g.text("headline"),
        description=g.text("description"),
        instruction=g.text("instruction"),
        web=web,
        contact=g.text("contact"),
        parameters=named_values(reader, g, "parameter"),
        resources=tuple(r for r in resources if r is not None),
        areas=tuple(a for a in areas if a is not None),
    )
    complete = categories and event and urgency and severity and certainty
    return info if complete else None


def read_resource(reader: Reader, path: str, el: Element) -> Resource | None:
    """A resource; inline `derefUri` content is decoded and checked against `digest` when one is given. A resource
    whose content does not match its digest is refused on its own (None, with a warning and a note in
    `reader.refused_resources`): the alert stays valid and goes out without it (a recording's text is spoken)."""
    g = reader.group(el, path, RESOURCE)
    desc, mime = g.text("resourceDesc"), g.text("mimeType")
    digest = g.value("digest", fields.sha1_digest)
    data = None
    deref = g.texts("derefUri")
    if deref:
        data = g.parse_at(deref[0][0], deref[0][1], fields.inline_data)
    if desc is None or mime is None:
        return None
    mismatch = fields.digest_mismatch(data, digest) if data is not None else None
    if mismatch:
        why = f"{mismatch}; the resource is refused, the alert is accepted without it"
        reader.warn(f"{path}/derefUri", why)
        reader.refused_resources.append((f"{path}/derefUri", mime, why))
        return None
    return Resource(
        desc=desc,
        mime_type=mime,
        size=g.value("size", fields.non_negative_int),
        uri=g.value("uri", fields.uri),
        data=data,
        digest=digest,
    )


def read_area(reader: Reader, path: str, el: Element) -> Area | None:
    """An area: description, polygons, circles, geocodes, altitude and ceiling (ceiling needs altitude)."""
    g = reader.group(el, path, AREA)
    desc = g.text("areaDesc")
    altitude = g.value("altitude", lambda t: fields.number(t, "altitude"))
    ceiling = g.value("ceiling", lambda t: fields.number(t, "ceiling"))
    if ceiling is not None and altitude is None:
        reader.flag(f"{path}/ceiling", "may be given only with altitude")
    polygons = g.values("polygon", fields.polygon)
    circles = g.values("circle", fields.circle)
    geocodes = named_values(reader, g, "geocode")
    if desc is None:
        return None
    return Area(desc, tuple(polygons), tuple(circles), geocodes, altitude, ceiling)
