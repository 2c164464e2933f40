"""Board layout and PNG: glyph coverage of the shipped font, resolution, size, colours and scrolling."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from keng.adapters.boards import (
    STYLES,
    BoardProfile,
    board_text,
    missing_glyphs,
    page_count,
    render_board_png,
    render_board_text,
)
from tests.unit.test_vitext import BULLETIN_PHRASES

VIETNAMESE_LETTERS = "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
BULLETIN = (
    "UBND phường Hòa Bình THÔNG BÁO KHẨN: Bão số 3 đổ bộ lúc 14h ngày 12/9/2024, gió giật cấp 13-14. "
    "Đề nghị bà con chằng chống nhà cửa, di dời đến nơi an toàn. Liên hệ: 0912.345.678."
)


def test_font_has_a_glyph_for_every_vietnamese_letter_in_both_cases() -> None:
    assert missing_glyphs(VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper() + "0123456789.,:;!?%/-()°") == set()


def test_font_covers_every_character_of_the_bulletin_phrases() -> None:
    for written, _spoken in BULLETIN_PHRASES:
        assert missing_glyphs(board_text(written)) == set(), written


def test_missing_glyphs_are_reported_and_left_out() -> None:
    assert missing_glyphs("Lũ 🌊 洪") == {"🌊", "洪"}
    assert board_text("Lũ 🌊 quét") == "Lũ  quét"


@pytest.mark.parametrize("priority", ["emergency", "priority", "normal"])
def test_png_is_at_board_resolution_small_and_in_the_priority_colours(priority: str) -> None:
    profile = BoardProfile(width=192, height=96, font_px=14)
    layout = render_board_text(BULLETIN, priority, profile)
    png = render_board_png(layout, profile)
    image = Image.open(io.BytesIO(png))
    assert image.size == (192, 96)
    assert len(png) < 6_000
    colours = {c for _, c in image.convert("RGB").getcolors(maxcolors=256) or []}
    header = STYLES[priority][3]
    assert tuple(int(header[i : i + 2], 16) for i in (1, 3, 5)) in colours


def test_long_text_scrolls_and_short_text_does_not() -> None:
    profile = BoardProfile()
    long_layout = render_board_text(BULLETIN, "emergency", profile)
    short_layout = render_board_text("Mất điện lúc 8h", "normal", profile)
    assert long_layout.scroll and page_count(long_layout) > 1
    assert not short_layout.scroll and short_layout.lines == ("Mất điện lúc 8h",)
    assert short_layout.as_dict()["scroll_px_per_s"] == 0
    assert long_layout.as_dict()["label"] == "KHẨN CẤP"


def test_lines_fit_the_board_width_and_keep_all_the_words() -> None:
    profile = BoardProfile(width=128, height=64, font_px=12)
    layout = render_board_text(BULLETIN + " Siêudàikhôngcáchnàođặtvừamộtdòngđược", "priority", profile)
    from keng.adapters.boards import _font

    assert all(_font(12).getlength(line) <= 124 for line in layout.lines)
    assert "".join(layout.lines).replace(" ", "") == board_text(
        BULLETIN + " Siêudàikhôngcáchnàođặtvừamộtdòngđược"
    ).replace(" ", "")
