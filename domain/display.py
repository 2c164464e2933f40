"""What an e-board can show, from its registration (domain/endpoint.py `technology` and `capabilities`).

A board that shows images gets the bulletin rendered at its own resolution; a text-only board gets the text and draws
it itself. The resolution is registered as a capability `display=<width>x<height>` (e.g. `display=800x480`); a board
registered `text-only` (or whose technology names `text`) shows text. Without either, the technology's family sets it:
`led-large...` (the district's large LED screens) 512x256, `lcd...` 800x480, `led...` and anything else 256x128.
"""

from __future__ import annotations

from collections.abc import Iterable

from keng.domain.errors import InvalidValue

TEXT_ONLY = "text-only"
DISPLAY_PREFIX = "display="
MIN_SIDE, MAX_SIDE = 32, 4096
MAX_CAPABILITIES, MAX_CAPABILITY = 16, 60
Resolution = tuple[int, int]
DEFAULT_RESOLUTION: Resolution = (256, 128)
# technology family (its prefix) -> resolution; longest prefix first
FAMILIES: tuple[tuple[str, Resolution], ...] = (("led-large", (512, 256)), ("lcd", (800, 480)), ("led", (256, 128)))


def parse_resolution(text: str) -> Resolution:
    """`<width>x<height>` in pixels, each side 32 to 4096; InvalidValue naming the problem otherwise."""
    width, sep, height = text.strip().lower().partition("x")
    if not sep or not width.isascii() or not height.isascii() or not width.isdigit() or not height.isdigit():
        raise InvalidValue(f"display resolution {text[:40]!r} is not WIDTHxHEIGHT in pixels (e.g. 800x480)")
    w, h = int(width[:6]), int(height[:6])
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise InvalidValue(f"display resolution {w}x{h} is outside {MIN_SIDE} to {MAX_SIDE} pixels a side")
    return w, h


def check_capability(value: str) -> str:
    """A capability as registered: `text-only`, `display=WxH` (checked), or another word kept as written."""
    value = value.strip()
    if len(value) > MAX_CAPABILITY or not value.isprintable():
        raise InvalidValue(f"capability {value[:20]!r}… is not printable text of at most {MAX_CAPABILITY} characters")
    if value.lower().startswith(DISPLAY_PREFIX):
        w, h = parse_resolution(value[len(DISPLAY_PREFIX) :])
        return f"{DISPLAY_PREFIX}{w}x{h}"
    return value


def check_capabilities(values: Iterable[str]) -> list[str]:
    """An endpoint's capabilities as registered: each checked (`check_capability`), deduplicated, sorted."""
    out = sorted({check_capability(v) for v in values if v.strip()})
    if len(out) > MAX_CAPABILITIES:
        raise InvalidValue(f"an endpoint has at most {MAX_CAPABILITIES} capabilities, not {len(out)}")
    return out


def board_resolution(technology: str, capabilities: Iterable[str]) -> Resolution | None:
    """The resolution a board shows images at, or None for a board that shows text only."""
    caps = [c.strip().lower() for c in capabilities]
    if TEXT_ONLY in caps:
        return None
    for cap in caps:
        if cap.startswith(DISPLAY_PREFIX):
            try:
                return parse_resolution(cap[len(DISPLAY_PREFIX) :])
            except InvalidValue:
                continue  # registered before the check existed: fall back to the technology
    tech = technology.strip().lower()
    if "text" in tech:
        return None
    return next((res for prefix, res in FAMILIES if tech.startswith(prefix)), DEFAULT_RESOLUTION)
