"""Checks of CAP 1.2's simple value formats. Each returns the parsed value, or raises ValueError with a message that
completes the sentence "<element path>: ..."."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime
from urllib.parse import urlsplit

from keng.domain.cap import Circle, Point, Reference
from keng.domain.values import MAX_URL

# CAP 1.2 section 3.3.2 and its schema: seconds precision, an explicit offset, "Z" not permitted (UTC is -00:00).
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[-+]\d{2}:\d{2}")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_SHA1 = re.compile(r"[0-9A-Fa-f]{40}")
_FORBIDDEN_IN_ID = re.compile(r"[\s,<&]")


def date_time(text: str) -> datetime:
    """A CAP dateTime such as 2003-04-02T14:39:01-05:00."""
    if not _DATE.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not a CAP date-time (YYYY-MM-DDThh:mm:ss+hh:mm, offset required, no 'Z')")
    try:
        return datetime.fromisoformat(text)
    except ValueError as e:
        raise ValueError(f"{text[:40]!r} is not a real date and time ({e})") from None


def identifier(text: str) -> str:
    """identifier and sender: no whitespace, commas, '<' or '&' (they would break `references`)."""
    bad = _FORBIDDEN_IN_ID.search(text)
    if bad:
        raise ValueError(f"must not contain spaces, commas, '<' or '&' (found {bad.group()!r})")
    return text


def number(text: str, what: str) -> float:
    """A plain decimal number (no exponent, NaN or infinity)."""
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{what} {text[:40]!r} is not a decimal number")
    return float(text)


def point(text: str) -> Point:
    """A WGS 84 `lat,lon` pair."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"{text[:40]!r} is not a 'latitude,longitude' pair")
    lat, lon = number(parts[0], "latitude"), number(parts[1], "longitude")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} is outside -90..90")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} is outside -180..180")
    return Point(lat, lon)


def polygon(text: str) -> tuple[Point, ...]:
    """At least 4 whitespace-separated pairs, the first equal to the last."""
    points = tuple(point(pair) for pair in text.split())
    if len(points) < 4:
        raise ValueError(f"has {len(points)} point(s); a polygon needs at least 4 (the first repeated last)")
    if points[0] != points[-1]:
        raise ValueError("not closed: the first and last points must be the same")
    return points


def circle(text: str) -> Circle:
    """`lat,lon radius` with the radius in kilometres."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f"{text[:40]!r} is not 'latitude,longitude radius'")
    radius = number(parts[1], "radius")
    if radius < 0:
        raise ValueError(f"radius {radius} is negative")
    return Circle(point(parts[0]), radius)


def references(text: str) -> tuple[Reference, ...]:
    """Whitespace-separated `sender,identifier,sent` triples."""
    out = []
    for entry in text.split():
        parts = entry.split(",")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{entry[:80]!r} is not 'sender,identifier,sent'")
        date_time(parts[2])
        out.append(Reference(*parts))
    if not out:
        raise ValueError("is empty")
    return tuple(out)


def language(text: str) -> str:
    """An RFC 3066 language tag such as vi, vi-VN or en-US."""
    if not _LANGUAGE.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not a language tag (RFC 3066, e.g. vi-VN)")
    return text


def uri(text: str) -> str:
    """A URI (a resource's may be relative, naming its derefUri) of at most MAX_URL characters, with no whitespace."""
    if len(text) > MAX_URL:
        raise ValueError(f"is {len(text)} characters long; the limit for a URI is {MAX_URL}")
    if any(c.isspace() for c in text):
        raise ValueError(f"{text[:80]!r} is not a URI (it holds whitespace)")
    return text


def absolute_uri(text: str) -> str:
    """A full absolute URI (with a scheme)."""
    if not urlsplit(uri(text)).scheme:
        raise ValueError(f"{text[:80]!r} is not an absolute URI")
    return text


def non_negative_int(text: str) -> int:
    """xs:integer, at least 0 (resource size in bytes)."""
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{text[:40]!r} is not a whole number of bytes")
    return int(text)


def sha1_digest(text: str) -> str:
    """40 hexadecimal digits, returned lower-case."""
    if not _SHA1.fullmatch(text):
        raise ValueError(f"{text[:60]!r} is not a SHA-1 digest (40 hexadecimal digits)")
    return text.lower()


def inline_data(text: str) -> bytes:
    """Decode a base64 derefUri."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None


def digest_mismatch(data: bytes, digest: str | None) -> str | None:
    """Why the content does not match the resource's SHA-1 `digest`, or None when it does (or none was given)."""
    if digest is None:
        return None
    actual = hashlib.sha1(data).hexdigest()
    return None if actual == digest else f"content does not match digest {digest} (SHA-1 of the content is {actual})"
