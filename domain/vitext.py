"""Vietnamese text preparation before speech synthesis.

`prepare(text)` turns a bulletin as written (numbers, dates, times, phone numbers, units, abbreviations,
URLs, markup) into what a voice should read, in words, NFC-normalised, split into sentence-sized chunks,
and reports characters that no voice can speak (they are removed). Pure: no I/O. Hand-written: no
maintained library on the registry normalises Vietnamese text for speech (the number rules live in
`domain.vinumbers`, the tables in `domain.viabbrev`).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from keng.domain.viabbrev import ABBREVIATIONS, DOCUMENT_CODES, GUARDED_ABBREVIATIONS, ROADS
from keng.domain.vinumbers import read_numbers

DEFAULT_CHUNK_CHARS = 400

_VI_LETTERS = "aăâbcdđeêghiklmnoôơpqrstuưvxyfjwz"
_VOWELS_WITH_TONES = "àáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
SPEAKABLE = frozenset(
    _VI_LETTERS + _VI_LETTERS.upper() + _VOWELS_WITH_TONES + _VOWELS_WITH_TONES.upper() + " .,!?;:-()\"'\n"
)


class TextRefused(ValueError):
    """The text cannot be prepared (empty, or nothing speakable left)."""


@dataclass(frozen=True)
class PreparedText:
    """Text ready for a voice: `text` is the whole, `chunks` its sentence-bounded parts (each at most the
    chunk limit), `unspeakable` the distinct characters that were removed because no voice can speak them."""

    text: str
    chunks: tuple[str, ...]
    unspeakable: tuple[str, ...]


# --- markup, URLs


def strip_markup(text: str) -> str:
    """Remove HTML tags and entities, Markdown emphasis/headings/bullets, URLs and e-mail addresses."""
    text = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", text, flags=re.S | re.I)
    text = re.sub(r"<br\s*/?>|</p\s*>|</li\s*>", ". ", text, flags=re.I)
    text = re.sub(r"<[^>]{0,200}>", " ", text)
    text = html.unescape(text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # markdown link: keep its words
    text = re.sub(r"(?:https?://|www\.)\S+", " ", text, flags=re.I)
    text = re.sub(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", " ", text)
    text = re.sub(r"\b[\w-]+(?:\.[\w-]+)*\.(?:vn|com|net|org|gov)(?:/\S*)?\b", " ", text, flags=re.I)
    text = re.sub(r"^\s{0,3}(?:#{1,6}|[-*•+]|>)\s+", "", text, flags=re.M)
    text = re.sub(r"(\*\*|__|\*|`|~~)(\S.*?\S|\S)\1", r"\2", text)
    return text


# --- tone placement

_OLD_TONE = {
    "oà": "òa",
    "oá": "óa",
    "oả": "ỏa",
    "oã": "õa",
    "oạ": "ọa",
    "oè": "òe",
    "oé": "óe",
    "oẻ": "ỏe",
    "oẽ": "õe",
    "oẹ": "ọe",
    "uỳ": "ùy",
    "uý": "úy",
    "uỷ": "ủy",
    "uỹ": "ũy",
    "uỵ": "ụy",
}


_OLD_TONE_RE = re.compile(rf"(\b|[^\Wq])({'|'.join(_OLD_TONE)})(?![^\W\d_])", re.I)


def unify_tone_placement(text: str) -> str:
    """Write "hoà/thuỷ" (old placement) as "hòa/thủy" so both spellings give the same audio and cache key.

    Only open syllables change ("hoàng" keeps its mark), and "qu" is a consonant ("quý" stays).
    """

    def fix(m: re.Match[str]) -> str:
        pair = m.group(2)
        lower = pair.lower()
        new = _OLD_TONE[lower]
        if pair.isupper():
            new = new.upper()
        elif pair[0].isupper():
            new = new[0].upper() + new[1:]
        return m.group(1) + new

    return _OLD_TONE_RE.sub(fix, text)


# --- abbreviations

# A key ending in a dot ("Q.", "TP.") may be followed by a number ("Q.3"); others must end at a word boundary.
_ABBR_RE = re.compile(
    r"(?<![\w.])("
    + "|".join(
        re.escape(k) + ("" if k.endswith(".") else r"(?![\w&])") for k in sorted(ABBREVIATIONS, key=len, reverse=True)
    )
    + ")"
)


def _document_number(m: re.Match[str]) -> str:
    """123/QĐ-UBND, 15/2020/NĐ-CP: number, year, then each part of the code in words."""
    parts = [ABBREVIATIONS.get(part) or DOCUMENT_CODES.get(part) or part for part in m.group(3).split("-")]
    year = f" năm {m.group(2)}" if m.group(2) else ""
    return f"{m.group(1)}{year} {' '.join(parts)}"


# "QL32", "QL.21A", "ĐT 423": a road code before a road number (1-4 digits, not a phone number's leading 0).
_ROAD_RE = re.compile(rf"(?<![\w.])({'|'.join(ROADS)})(\.\s?|\s)?(?=([1-9]\d{{0,3}})[A-ZĐ]?(?![.,\s]?\d)(?!\w))")
_EMERGENCY_NUMBERS = frozenset({"111", "112", "113", "114", "115", "116"})


def _road(m: re.Match[str]) -> str:
    """A road code in words; "ĐT 114" (no dot) is a telephone number to call, not a road."""
    if m.group(1) == "ĐT" and not (m.group(2) or "").startswith(".") and m.group(3) in _EMERGENCY_NUMBERS:
        return m.group(0)
    return f"{ROADS[m.group(1)]} "


_GUARDED_RE = re.compile(rf"(?<![\w.&-])({'|'.join(GUARDED_ABBREVIATIONS)})(?![\w&-])")
_KNOWN_CAPS = frozenset(ABBREVIATIONS) | frozenset(GUARDED_ABBREVIATIONS) | frozenset(ROADS) | frozenset(DOCUMENT_CODES)


def _written_in_capitals(line: str) -> bool:
    """True when a line holds a word in capitals that is no known abbreviation ("THÔNG BÁO CA NHẠC")."""
    return any(word not in _KNOWN_CAPS for word in _SHOUTING_RE.findall(line))


def _expand_guarded(line: str) -> str:
    if _written_in_capitals(line):
        return line
    return _GUARDED_RE.sub(lambda m: GUARDED_ABBREVIATIONS[m.group(1)], line)


def expand_abbreviations(text: str) -> str:
    """Replace administrative abbreviations (UBND, TDP, PCCC, HĐND, TP., Q., ...) and road codes (QL, TL, ĐT) by
    their words; the short ones that are also syllables (CA, QS) only in lines not written in capitals."""
    text = re.sub(r"(?<!\w)(\d+)/(?:(\d{4})/)?([A-ZĐ][\w-]*-[A-ZĐ][\w-]*)", _document_number, text)
    text = _ROAD_RE.sub(_road, text)
    text = "\n".join(_expand_guarded(line) for line in text.split("\n"))
    text = _ABBR_RE.sub(lambda m: f" {ABBREVIATIONS[m.group(1)]} ", text)
    return re.sub(r"(?<=[A-ZĐa-zđ])-(?=[A-ZĐ])", " ", text)


# --- symbols, unspeakable characters, sentences

_SYMBOLS = {
    "&": " và ",
    "+": " cộng ",
    "=": " bằng ",
    "@": " a còng ",
    "~": " khoảng ",
    "≈": " khoảng ",
    "…": ". ",
    "–": " - ",
    "—": ", ",
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "/": " trên ",
    "\u00a0": " ",
    "\t": " ",
    "\r": "\n",
    "•": ". ",
}


_UPPER = "".join(sorted({ch.upper() for ch in _VI_LETTERS + _VOWELS_WITH_TONES}))
_SHOUTING_RE = re.compile(rf"(?<![^\W\d_])[{_UPPER}]{{2,}}(?![^\W\d_])")


def _lower_shouting(text: str) -> str:
    """Lower-case words in capitals ("THÔNG BÁO KHẨN") so that no engine spells them letter by letter."""
    return _SHOUTING_RE.sub(lambda m: m.group(0).lower(), text)


def remove_unspeakable(text: str) -> tuple[str, tuple[str, ...]]:
    """Drop characters outside the Vietnamese alphabet and punctuation; return text and what was dropped."""
    dropped = sorted({ch for ch in text if ch not in SPEAKABLE})
    if not dropped:
        return text, ()
    return "".join(ch if ch in SPEAKABLE else " " for ch in text), tuple(dropped)


def _tidy(text: str) -> str:
    text = re.sub(r"[ ]+", " ", text)
    text = re.sub(r" *\n[\n ]*", ". ", text)
    text = re.sub(r" +([.,!?;:])", r"\1", text)
    text = re.sub(r"([.,!?;:])(?:\s*[.,;:])+", r"\1", text)
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"\(\s+", "(", text)
    text = re.sub(r"\s+\)", ")", text)
    return re.sub(r"\s+", " ", text).strip(" ,;:-")


def split_sentences(text: str, max_chars: int = DEFAULT_CHUNK_CHARS) -> tuple[str, ...]:
    """Split at sentence ends (. ! ? ;), pack sentences into chunks of at most max_chars, and cut an over-long
    sentence at commas, then at spaces."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?;])\s+", text) if s.strip(" .!?;,")]
    pieces: list[str] = []
    for sentence in sentences:
        pieces.extend(_cut(sentence, max_chars))
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + 1 + len(piece) <= max_chars:
            chunks[-1] = f"{chunks[-1]} {piece}"
        else:
            chunks.append(piece)
    return tuple(chunks)


def _cut(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    for separator in (", ", " "):
        parts = sentence.split(separator)
        if len(parts) == 1:
            continue
        out: list[str] = []
        for part in parts:
            if out and len(out[-1]) + len(separator) + len(part) <= max_chars:
                out[-1] = out[-1] + separator + part
            else:
                out.append(part)
        return [piece for chunk in out for piece in _cut(chunk, max_chars)]
    return [sentence[i : i + max_chars] for i in range(0, len(sentence), max_chars)]


def normalise(text: str) -> str:
    """NFC-normalise, unify tone placement and whitespace: the form every comparison and hash starts from."""
    text = unicodedata.normalize("NFC", text)
    return unify_tone_placement(text)


def prepare(text: str, max_chunk_chars: int = DEFAULT_CHUNK_CHARS) -> PreparedText:
    """Prepare bulletin text for a voice: NFC, markup and URLs removed, abbreviations and numbers in words,
    capitals lowered, unspeakable characters removed and reported, split into sentence-bounded chunks.

    Raises TextRefused when the text is empty or nothing speakable remains.
    """
    if not text or not text.strip():
        raise TextRefused("empty text")
    text = normalise(text)
    text = strip_markup(text)
    text = unicodedata.normalize("NFC", text)  # entities may decode to decomposed forms
    text = expand_abbreviations(text)
    text = read_numbers(text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = _lower_shouting(text)
    text, dropped = remove_unspeakable(text)
    text = _tidy(text)
    if not re.search(r"[^\W\d_]", text):
        raise TextRefused("nothing speakable in the text")
    chunks = split_sentences(text, max_chunk_chars)
    return PreparedText(text=" ".join(chunks), chunks=chunks, unspeakable=dropped)
