"""LED/LCD board rendering: a structured layout (lines, scrolling, colours by priority) and a PNG image.

The PNG is drawn at the board's resolution with the shipped DejaVu Sans Bold (adapters/fonts, Bitstream Vera
licence; it covers every Vietnamese letter), quantised to a small palette and compressed, so that a page is a
few kilobytes over 3G/4G. `missing_glyphs` checks font coverage from the font's cmap (fontTools).
"""

from __future__ import annotations

import io
import json
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

from keng.domain.values import Priority
from keng.domain.vitext import normalise, strip_markup

FONT_PATH = Path(__file__).parent / "fonts" / "DejaVuSans-Bold.ttf"

# Priority class -> (label shown to residents, text colour, background colour, header colour)
STYLES: dict[str, tuple[str, str, str, str]] = {
    Priority.EMERGENCY: ("KHẨN CẤP", "#FFFFFF", "#000000", "#E00000"),
    Priority.PRIORITY: ("ƯU TIÊN", "#FFD000", "#000000", "#E07000"),
    Priority.NORMAL: ("THÔNG BÁO", "#00E000", "#000000", "#006000"),
}


@dataclass(frozen=True)
class BoardProfile:
    """A board model: pixel size, font size in pixels, and scrolling speed (pixels per second)."""

    width: int = 256
    height: int = 128
    font_px: int = 16
    scroll_px_per_s: int = 32
    name: str = "led-256x128"


@dataclass(frozen=True)
class BoardLayout:
    """What a board shows: header label, wrapped lines, how many fit, and whether it must scroll."""

    priority: str
    label: str
    lines: tuple[str, ...]
    visible_lines: int
    scroll: bool
    text_colour: str
    background: str
    header_colour: str
    scroll_px_per_s: int

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for boards that draw text themselves."""
        return {
            "priority": self.priority,
            "label": self.label,
            "lines": list(self.lines),
            "visible_lines": self.visible_lines,
            "scroll": self.scroll,
            "colours": {
                "text": self.text_colour,
                "background": self.background,
                "header": self.header_colour,
            },
            "scroll_px_per_s": self.scroll_px_per_s if self.scroll else 0,
        }


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size)


@lru_cache(maxsize=1)
def _cmap() -> frozenset[int]:
    with TTFont(str(FONT_PATH), lazy=True) as font:
        return frozenset(font.getBestCmap())


def missing_glyphs(text: str) -> set[str]:
    """Characters of the (NFC) text that the board font has no glyph for (whitespace excepted)."""
    cmap = _cmap()
    return {ch for ch in unicodedata.normalize("NFC", text) if not ch.isspace() and ord(ch) not in cmap}


def board_text(text: str) -> str:
    """The text as written (digits kept), NFC, without markup or glyphs the font lacks."""
    clean = " ".join(normalise(strip_markup(text)).split())
    missing = missing_glyphs(clean)
    return "".join(ch for ch in clean if ch not in missing)


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while font.getlength(word) > max_width:  # a word wider than the board: break it
            cut = max(1, next(i for i in range(len(word), 0, -1) if font.getlength(word[:i]) <= max_width))
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def _line_height(profile: BoardProfile) -> int:
    return int(profile.font_px * 1.35)  # room for stacked Vietnamese marks (Ấ, Ở) above and dots below


def render_board_text(text: str, priority: str, profile: BoardProfile) -> BoardLayout:
    """Lay the bulletin out for the board: wrapped to its width, scrolling when it does not fit."""
    label, fg, bg, header = STYLES[priority]
    font = _font(profile.font_px)
    lines = tuple(_wrap(board_text(text), font, profile.width - 4))
    visible = max(1, (profile.height - _line_height(profile) - 2) // _line_height(profile))
    return BoardLayout(
        priority=priority,
        label=label,
        lines=lines,
        visible_lines=visible,
        scroll=len(lines) > visible,
        text_colour=fg,
        background=bg,
        header_colour=header,
        scroll_px_per_s=profile.scroll_px_per_s,
    )


def render_board_png(layout: BoardLayout, profile: BoardProfile, page: int = 0) -> bytes:
    """Draw one page of the layout (header + visible lines) as a palette PNG at the board's resolution."""
    font = _font(profile.font_px)
    step = _line_height(profile)
    image = Image.new("RGB", (profile.width, profile.height), layout.background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, profile.width, step), fill=layout.header_colour)
    draw.text((profile.width // 2, step // 2), layout.label, font=font, fill="#FFFFFF", anchor="mm")
    first = page * layout.visible_lines
    for row, line in enumerate(layout.lines[first : first + layout.visible_lines]):
        draw.text((2, step * (row + 1) + 2), line, font=font, fill=layout.text_colour)
    out = io.BytesIO()
    image.quantize(colors=8, dither=Image.Dither.NONE).save(out, format="PNG", optimize=True)
    return out.getvalue()


MAX_IMAGE_LINES = 120  # a bulletin past this many lines is cut (MAX_TEXT of a broadcast fits a 256 px board in ~80)


def profile_for(width: int, height: int) -> BoardProfile:
    """The profile of a board of a registered resolution (domain/display.py): the font and the scrolling speed grow
    with its height (256x128: 16 px as the default profile; capped at 40 px)."""
    font_px = max(12, min(40, height // 8))
    return BoardProfile(width, height, font_px, font_px * 2, f"board-{width}x{height}")


def render_board_image(layout: BoardLayout, profile: BoardProfile) -> bytes:
    """The whole bulletin as one palette PNG at the board's width: the board's own size when the text fits, else a
    taller strip (header, then every line) that the board scrolls upwards at the layout's speed."""
    font = _font(profile.font_px)
    step = _line_height(profile)
    lines = layout.lines[:MAX_IMAGE_LINES]
    height = max(profile.height, step * (len(lines) + 1) + 4)
    image = Image.new("RGB", (profile.width, height), layout.background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, profile.width, step), fill=layout.header_colour)
    draw.text((profile.width // 2, step // 2), layout.label, font=font, fill="#FFFFFF", anchor="mm")
    for row, line in enumerate(lines):
        draw.text((2, step * (row + 1) + 2), line, font=font, fill=layout.text_colour)
    out = io.BytesIO()
    # Not `optimize`: at 800x480 it took 46 ms to save 4 %, and this runs on the dispatch path.
    image.quantize(colors=8, dither=Image.Dither.NONE).save(out, format="PNG")
    return out.getvalue()


def render_board_page(text: str, priority: str, width: int, height: int) -> tuple[bytes, bytes]:
    """What a board of this resolution shows: (the PNG of `render_board_image`, its layout as JSON). Deterministic:
    the same bulletin at the same resolution gives the same bytes, so both are stored under their own hash."""
    profile = profile_for(width, height)
    layout = render_board_text(text, priority, profile)
    image = render_board_image(layout, profile)
    with Image.open(io.BytesIO(image)) as drawn:
        image_height = drawn.height
    doc = {"board": profile.name, "width": width, "height": height, "image_height": image_height, **layout.as_dict()}
    return image, json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()


def page_count(layout: BoardLayout) -> int:
    """How many pages the layout takes at the board's visible line count."""
    return max(1, -(-len(layout.lines) // layout.visible_lines))
