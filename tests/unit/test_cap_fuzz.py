"""Property tests: mutated and malformed CAP never makes the parser or validator raise anything but its own
documented errors (CapError and subclasses). At least 2,000 examples per property when CI=true."""

from __future__ import annotations

import contextlib
import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keng.adapters.cap.errors import CapError
from keng.adapters.cap.parse import check_cap, parse_cap
from tests.unit.cap_builders import FIXTURES, alert, area, info, prefixed

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EXAMPLES = 2000 if IN_CI else 300
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SEEDS = [p.read_bytes() for p in sorted(FIXTURES.glob("*.xml"))] + [
    alert(),
    prefixed(alert()),
    alert(encoding="ISO-8859-1"),
    alert(infos=(info(areas=(area(polygon="21.08,105.72 21.08,105.75 21.10,105.75 21.08,105.72"),)), info())),
    alert(msg_type="Update", references="a@b,ID-1,2026-11-27T10:00:00+07:00"),
]
TRICKY = [
    "", " ", "Z", "<", "&amp;", "&#0;", "&#xD800;", "&lt;x&gt;", "Actual", "Update", "Cancel", "Immediate", "Extreme",
    "vi", "vi-VN", "2026-02-30T10:00:00+07:00", "2026-11-27T10:00:00Z", "2026-11-27T10:00:00+99:00",
    "21.09,105.73 0", "-1", "1e400", "nan", "inf", "99999", "00595", "a,b,c", "a,b,2026-11-27T10:00:00+07:00",
    "QUJD", "!!!", "0" * 40, "\u0000", "\ud7ff", "lũ quét", "x" * 6000,
]  # fmt: skip
HOSTILE = [
    '<!DOCTYPE alert [<!ENTITY x "y">]>',
    '<!DOCTYPE alert SYSTEM "http://example.invalid/a.dtd">',
    "<!ENTITY x SYSTEM 'file:///etc/passwd'>",
    "<?xml-stylesheet href='x'?>",
    "<!-- comment -->",
    "<![CDATA[<alert/>]]>",
    "<a>" * 50,
]
_ELEMENT = re.compile(rb"<([A-Za-z:]+)[^<>]*>[^<>]*</\1>")
_TEXT = re.compile(rb">([^<>]+)<")


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    doc = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["drop", "double", "text", "bytes", "cut", "hostile", "rename"]))
        doc = bytearray(_mutate(draw, bytes(doc), kind))
    return bytes(doc)


def _mutate(draw: st.DrawFn, doc: bytes, kind: str) -> bytes:
    elements = list(_ELEMENT.finditer(doc))
    texts = list(_TEXT.finditer(doc))
    if kind in ("drop", "double") and elements:
        m = draw(st.sampled_from(elements))
        middle = b"" if kind == "drop" else m.group(0) * 2
        return doc[: m.start()] + middle + doc[m.end() :]
    if kind == "text" and texts:
        m = draw(st.sampled_from(texts))
        new = draw(st.sampled_from(TRICKY) | st.text(max_size=30)).encode("utf-8", "surrogatepass")
        return doc[: m.start(1)] + new + doc[m.end(1) :]
    if kind == "rename" and elements:
        m = draw(st.sampled_from(elements))
        name = draw(st.sampled_from([b"info", b"area", b"alert", b"polygon", b"x:y", b"Signature"]))
        return doc[: m.start(1)] + name + doc[m.end(1) :]
    at = draw(st.integers(0, len(doc)))
    if kind == "bytes":
        return doc[:at] + draw(st.binary(max_size=12)) + doc[at + draw(st.integers(0, 12)) :]
    if kind == "cut":
        return doc[:at]
    return doc[:at] + draw(st.sampled_from(HOSTILE)).encode() + doc[at:]


@FUZZ
@given(mutated())
def test_mutated_cap_raises_only_documented_errors(document: bytes) -> None:
    try:
        parse_cap(document)
    except CapError as e:
        assert e.violations and all(v.path and v.message for v in e.violations)


@FUZZ
@given(mutated())
def test_check_cap_always_returns_a_verdict(document: bytes) -> None:
    verdict = check_cap(document)
    assert verdict.valid == (not verdict.violations)


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_documented_errors(document: bytes) -> None:
    with contextlib.suppress(CapError):
        parse_cap(document)
