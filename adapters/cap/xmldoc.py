"""Hostile-input-safe XML loading for CAP: size limit, no DTD at all, no entities, no external references, and an
element depth limit enforced while parsing (so a deeply nested document is refused before a tree is built).

defusedxml does the refusing; this module only turns its exceptions (and expat's) into keng's CAP errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

from keng.adapters.cap.errors import CapMalformed, CapTooLarge, CapUnsafeXml


@dataclass(frozen=True)
class CapLimits:
    """Limits for one document. Real alerts with inline audio reach a few hundred kilobytes; CAP nests 4 levels."""

    max_bytes: int = 1_048_576
    max_depth: int = 32
    max_elements: int = 20_000


class _LimitExceeded(Exception):
    pass


class _LimitedBuilder(TreeBuilder):
    """A tree builder that stops the parse as soon as the depth or element-count limit is passed."""

    def __init__(self, limits: CapLimits) -> None:
        super().__init__()
        self._limits = limits
        self._depth = 0
        self._count = 0

    def start(self, tag: Any, attrs: Any) -> Element:
        self._depth += 1
        self._count += 1
        if self._depth > self._limits.max_depth:
            raise _LimitExceeded(f"elements are nested deeper than {self._limits.max_depth} levels")
        if self._count > self._limits.max_elements:
            raise _LimitExceeded(f"the document has more than {self._limits.max_elements} elements")
        return super().start(tag, attrs)

    def end(self, tag: Any) -> Element:
        self._depth -= 1
        return super().end(tag)


def load_xml(raw: bytes, limits: CapLimits) -> Element:
    """Parse `raw` into an element tree, or raise CapTooLarge, CapUnsafeXml or CapMalformed. The encoding comes
    from the XML declaration (UTF-8 when absent; ISO-8859-1 and UTF-16 work too)."""
    if not isinstance(raw, bytes | bytearray):
        raise CapMalformed(f"a CAP document is bytes, not {type(raw).__name__}")
    if len(raw) > limits.max_bytes:
        raise CapTooLarge(f"the document is {len(raw)} bytes; the limit is {limits.max_bytes}")
    if not raw.strip():
        raise CapMalformed("the document is empty")
    parser = DefusedXMLParser(
        target=_LimitedBuilder(limits), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(bytes(raw))
        root: Element = parser.close()
    except DTDForbidden:
        raise CapUnsafeXml("a document type declaration (<!DOCTYPE ...>) is not allowed; nothing was read") from None
    except EntitiesForbidden:
        raise CapUnsafeXml("entity declarations are not allowed; nothing was expanded") from None
    except ExternalReferenceForbidden:
        raise CapUnsafeXml("external references are not allowed; nothing was fetched") from None
    except _LimitExceeded as e:
        raise CapMalformed(str(e)) from None
    except ParseError as e:
        raise CapMalformed(f"not well-formed XML: {e}") from None
    except (ValueError, LookupError) as e:  # expat's refusal of an unknown or impossible encoding
        raise CapMalformed(f"cannot decode the document: {e}") from None
    return root
