"""Reading CAP elements with every problem recorded by element path instead of stopping at the first one.

The CAP schema is a sequence, but senders are known to reorder optional elements; keng checks presence, repetition
and content, not order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TypeVar
from xml.etree.ElementTree import Element

from keng.adapters.cap.errors import Violation

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

ONE, OPTIONAL, MANY, SOME = "1", "?", "*", "+"  # cardinalities, as in a schema
Spec = Mapping[str, str]


def split_tag(tag: object) -> tuple[str, str]:
    """('{ns}local') -> (ns, local); comments and processing instructions give ('', '')."""
    if not isinstance(tag, str):
        return "", ""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


class Reader:
    """Collects violations while the parser walks one document in the CAP namespace `ns`."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.violations: list[Violation] = []
        self.warnings: list[Violation] = []  # doubtful but accepted: reported apart, never a refusal
        self.refused_resources: list[tuple[str, str, str]] = []  # (path, mimeType, why): refused on their own

    def flag(self, path: str, message: str) -> None:
        """Record one violation."""
        self.violations.append(Violation(path, message))

    def warn(self, path: str, message: str) -> None:
        """Record one warning: the document stays valid."""
        self.warnings.append(Violation(path, message))

    def group(self, element: Element, path: str, spec: Spec) -> Group:
        """The CAP children of `element` by local name, with unknown, missing and repeated elements flagged."""
        items: dict[str, list[Element]] = {}
        foreign: list[Element] = []
        for child in element:
            ns, local = split_tag(child.tag)
            if not local:
                continue
            if ns != self.ns:
                foreign.append(child)
            elif local not in spec:
                self.flag(f"{path}/{local}", "not a CAP 1.2 element here")
            else:
                items.setdefault(local, []).append(child)
        for name, card in spec.items():
            found = items.get(name, [])
            if not found and card in (ONE, SOME):
                self.flag(f"{path}/{name}", "required element is missing")
            if len(found) > 1 and card in (ONE, OPTIONAL):
                self.flag(f"{path}/{name}[2]", f"may appear only once (found {len(found)})")
        return Group(self, path, spec, items, foreign)


class Group:
    """The children of one element, read by name."""

    def __init__(
        self, reader: Reader, path: str, spec: Spec, items: dict[str, list[Element]], foreign: list[Element]
    ) -> None:
        self.reader, self.path, self.spec, self.items, self.foreign = reader, path, spec, items, foreign

    def child_path(self, name: str, index: int) -> str:
        """Repeatable elements are numbered from 1; single ones are not."""
        many = self.spec[name] in (MANY, SOME)
        return f"{self.path}/{name}[{index}]" if many else f"{self.path}/{name}"

    def elements(self, name: str) -> list[tuple[str, Element]]:
        """(path, element) for every child called `name`."""
        return [(self.child_path(name, i), el) for i, el in enumerate(self.items.get(name, []), start=1)]

    def _leaf(self, path: str, element: Element, required: bool, empty_ok: bool) -> str | None:
        if len(element):
            self.reader.flag(path, "must contain text only, not elements")
            return None
        text = (element.text or "").strip()
        if not text and not empty_ok:
            if required:
                self.reader.flag(path, "must not be empty")
            return None
        return text

    def texts(self, name: str, *, empty_ok: bool = False) -> list[tuple[str, str]]:
        """(path, text) of every non-empty child called `name` (empty ones are flagged when the element is required);
        with `empty_ok`, an empty child gives "" (an xs:string the schema lets be empty, such as a `value`)."""
        required = self.spec[name] in (ONE, SOME)
        out = []
        for path, el in self.elements(name):
            text = self._leaf(path, el, required, empty_ok)
            if text is not None:
                out.append((path, text))
        return out

    def text(self, name: str, *, empty_ok: bool = False) -> str | None:
        """The text of the first child called `name`, or None (absent, empty or flagged)."""
        found = self.texts(name, empty_ok=empty_ok)
        return found[0][1] if found else None

    def value(self, name: str, parse: Callable[[str], T]) -> T | None:
        """The first child's text parsed by `parse`; a ValueError becomes a violation at the child's path."""
        found = self.texts(name)
        return self.parse_at(found[0][0], found[0][1], parse) if found else None

    def values(self, name: str, parse: Callable[[str], T]) -> list[T]:
        """Every child's text parsed by `parse`; failures are flagged and left out."""
        parsed = (self.parse_at(path, text, parse) for path, text in self.texts(name))
        return [v for v in parsed if v is not None]

    def parse_at(self, path: str, text: str, parse: Callable[[str], T]) -> T | None:
        """Apply `parse` to one text; flag a ValueError at `path`."""
        try:
            return parse(text)
        except ValueError as e:
            self.reader.flag(path, str(e))
            return None


def enum_parser(kind: type[E]) -> Callable[[str], E]:
    """A parser for one CAP enumeration whose error lists the allowed values (case matters in CAP)."""

    def parse(text: str) -> E:
        try:
            return kind(text)
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            raise ValueError(f"{text[:40]!r} is not one of: {allowed}") from None

    return parse
