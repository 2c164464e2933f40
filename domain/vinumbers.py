"""Vietnamese number reading: integers, decimals, digit strings, ordinals, months and clock times.

Pure functions (no I/O). Northern reading conventions are used throughout: "nghìn" (not "ngàn"),
"linh" for a zero tens digit (not "lẻ"), "mốt" for a final 1 after twenty, "tư" for a final 4 after
twenty, "lăm" for a final 5 after ten. Hand-written because no maintained library on the registry
reads Vietnamese numbers with these rules.
"""

from __future__ import annotations

import re

from keng.domain.viabbrev import LETTERS, UNITS

DIGITS: tuple[str, ...] = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_SCALES: tuple[str, ...] = ("", "nghìn", "triệu", "tỷ")


def _read_below_hundred(n: int, in_group: bool) -> list[str]:
    """Read 0..99; in_group is true when a hundreds digit (possibly zero) stands before this pair."""
    tens, unit = divmod(n, 10)
    if tens == 0:
        if unit == 0:
            return []
        return (["linh"] if in_group else []) + [DIGITS[unit]]
    words = ["mười"] if tens == 1 else [DIGITS[tens], "mươi"]
    if unit == 0:
        return words
    if unit == 1 and tens >= 2:
        return [*words, "mốt"]
    if unit == 4 and tens >= 2:
        return [*words, "tư"]
    if unit == 5:
        return [*words, "lăm"]
    return [*words, DIGITS[unit]]


def _read_group(n: int, full: bool) -> list[str]:
    """Read a three-digit group 0..999; full groups (not the leading one) always say their hundreds."""
    hundreds, rest = divmod(n, 100)
    words: list[str] = []
    if hundreds or full:
        words = [DIGITS[hundreds], "trăm"]
    return words + _read_below_hundred(rest, in_group=bool(words))


def read_integer(n: int) -> str:
    """Read a non-negative or negative integer in words, e.g. 1005 -> "một nghìn không trăm linh năm".

    Numbers of a billion and more repeat "tỷ" (2,000,000,000,000 -> "hai nghìn tỷ"), as Vietnamese does.
    """
    if n < 0:
        return "âm " + read_integer(-n)
    if n == 0:
        return DIGITS[0]
    billions, below = divmod(n, 1_000_000_000)
    parts: list[str] = []
    if billions:
        parts.append(read_integer(billions) + " tỷ")
    groups: list[int] = []
    while below:
        below, group = divmod(below, 1000)
        groups.append(group)
    leading = not parts
    for scale in range(len(groups) - 1, -1, -1):
        group = groups[scale]
        if group == 0:
            continue
        words = _read_group(group, full=not leading)
        leading = False
        if _SCALES[scale]:
            words.append(_SCALES[scale])
        parts.append(" ".join(words))
    return " ".join(parts)


def read_digits(digits: str) -> str:
    """Read a digit string one digit at a time (phone numbers, codes), e.g. "0912" -> "không chín một hai"."""
    return " ".join(DIGITS[int(d)] for d in digits if d.isdigit())


def read_decimal(integer_part: str, fraction_part: str) -> str:
    """Read a decimal number with a comma ("phẩy"): 2,5 -> "hai phẩy năm", 0,05 -> "không phẩy không năm".

    A fraction with leading zeros is read digit by digit; otherwise as a whole number, as people say it.
    """
    whole = read_integer(int(integer_part))
    if fraction_part.startswith("0") or len(fraction_part) > 3:
        frac = read_digits(fraction_part)
    else:
        frac = read_integer(int(fraction_part))
    return f"{whole} phẩy {frac}"


def read_ordinal(n: int) -> str:
    """Read the number after "thứ": 1 -> "nhất", 4 -> "tư", else the cardinal."""
    if n == 1:
        return "nhất"
    if n == 4:
        return "tư"
    return read_integer(n)


def read_month(n: int) -> str:
    """Read a month number after "tháng": 4 -> "tư", else the cardinal."""
    return "tư" if n == 4 else read_integer(n)


def read_date(day: int | None, month: int, year: int | None) -> str:
    """Read a calendar date: (2, 9, 2024) -> "ngày hai tháng chín năm hai nghìn không trăm hai mươi tư"."""
    words = []
    if day is not None:
        words.append(f"ngày {read_integer(day)}")
    words.append(f"tháng {read_month(month)}")
    if year is not None:
        words.append(f"năm {read_integer(year)}")
    return " ".join(words)


def read_time(hour: int, minute: int) -> str:
    """Read a clock time: (14, 30) -> "mười bốn giờ ba mươi phút", (7, 0) -> "bảy giờ"."""
    words = f"{read_integer(hour)} giờ"
    if minute:
        words += f" {read_integer(minute)} phút"
    return words


_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}


def roman_to_int(roman: str) -> int | None:
    """Convert a Roman numeral (I..CCC) to an int, or None when it is not a well-formed one."""
    total = 0
    prev = 0
    for ch in reversed(roman.upper()):
        value = _ROMAN.get(ch)
        if value is None:
            return None
        if value < prev:
            total -= value
        else:
            total += value
            prev = value
    return total if total > 0 else None


# --- numbers in running text

_PHONE_RE = re.compile(r"(?<![\d.,])(\+84[ .-]?|0)(\d{2,4})[ .-]?(\d{3,4})[ .-]?(\d{3,4})(?!\d|[.,]\d)")
# 1900 1234, 1800.599.920: service numbers, read digit by digit in their groups
_SERVICE_NUMBER_RE = re.compile(r"(?<![\d.,])(1[89]00)[ .]?(\d{3,4})(?:[ .]?(\d{3}))?(?![\d]|[.,]\d)")
_PHONE_CONTEXT_RE = re.compile(
    r"(?i)((?:số điện thoại|điện thoại|đường dây nóng|hotline|gọi|tổng đài)\s*:?\s*)(\d{3,5})(?![\d.,/])"
)


def _phone(m: re.Match[str]) -> str:
    prefix = "cộng tám tư" if m.group(1).startswith("+84") else "không"
    return ", ".join([f"{prefix} {read_digits(m.group(2))}", read_digits(m.group(3)), read_digits(m.group(4))])


def _valid_date(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


def _time(m: re.Match[str]) -> str:
    hour = int(m.group(1))
    minute = int(m.group(2)) if m.re.groups >= 2 and m.group(2) else 0
    if hour > 24 or minute > 59:
        return m.group(0)
    return read_time(hour, minute)


def _number_token(token: str) -> str:
    """Read one number as written in Vietnamese: 1.500.000 (dots group thousands), 2,5 (comma is decimal)."""
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", token):
        return read_integer(int(token.replace(".", "")))
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+,\d+", token):
        whole, frac = token.split(",")
        return read_decimal(whole.replace(".", ""), frac)
    if re.fullmatch(r"\d+,\d+", token):
        whole, frac = token.split(",")
        return read_decimal(whole, frac)
    if re.fullmatch(r"\d+\.\d+", token):
        whole, frac = token.split(".")
        return read_decimal(whole, frac).replace(" phẩy ", " chấm ", 1)
    if len(token) > 15:
        return read_digits(token)
    return read_integer(int(token))


_NUM = r"\d+(?:[.,]\d+)*"
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))


_DAY_LEADS = r"ngày|từ|đến|hôm|sáng|trưa|chiều|tối|đêm|và|mùng|nhật|thứ\s+(?:\d|hai|ba|tư|năm|sáu|bảy)\s*,?"
_SPOKEN_NUMBER = r"(?:âm|không|một|hai|ba|bốn|năm|sáu|bảy|tám|chín|mười)\b"


def read_numbers(text: str) -> str:
    """Spell out phone numbers, dates, times, ordinals, ranges, units, percentages and plain numbers."""
    text = _PHONE_RE.sub(_phone, text)
    text = _SERVICE_NUMBER_RE.sub(lambda m: ", ".join(read_digits(g) for g in m.groups() if g), text)
    text = _PHONE_CONTEXT_RE.sub(lambda m: m.group(1) + read_digits(m.group(2)), text)
    text = re.sub(r"(?<![\w])km\s?(?=\d)", "ki lô mét ", text)  # a milestone: "km 45"
    # a minus sign right before a number, not after one (that is a range): "-2°C", "(−5)", "từ -3 đến 5"
    text = re.sub(r"(?:(?<=^)|(?<=[\s(:]))[-−](?=\d)", "âm ", text, flags=re.M)
    # "5/8 - 10/8": two short dates
    text = re.sub(r"(?i)(ngày\s+|từ\s+)?\b(\d{1,2})/(\d{1,2})\s?[-–]\s?(\d{1,2})/(\d{1,2})(?![\d/])", _date_pair, text)
    # day ranges in one month: "ngày 5-7/8" -> "ngày năm đến ngày bảy tháng tám"
    text = re.sub(
        r"(?i)(ngày\s+|từ\s+)?(?<![/\d])\b(\d{1,2})\s?[-–]\s?(\d{1,2})/(\d{1,2})(?:/(\d{4}))?(?![\d/])",
        _day_range,
        text,
    )
    text = re.sub(r"(?i)(ngày\s+)?\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\b", _date_full_ctx, text)
    # month ranges: "tháng 6-8" -> "tháng sáu đến tháng tám"
    text = re.sub(r"(?i)\b(tháng)\s+(\d{1,2})\s?[-–]\s?(\d{1,2})\b(?![/\d])", _month_range, text)
    text = re.sub(
        r"(?i)\b(tháng\s+)(\d{1,2})[/-](\d{4})\b",
        lambda m: (
            f"tháng {read_month(int(m.group(2)))} năm {read_integer(int(m.group(3)))}"
            if 1 <= int(m.group(2)) <= 12
            else m.group(0)
        ),
        text,
    )
    text = re.sub(
        rf"(?i)\b((?:{_DAY_LEADS})\s+)(\d{{1,2}})/(\d{{1,2}})(?![\d/])",
        _date_short_ctx,
        text,
    )
    text = re.sub(r"\b(\d{1,2})\s?(?:h|g|giờ|:)\s?(\d{2})(?:'|\s?phút)?(?!\d)", _time, text)
    text = re.sub(r"\b(\d{1,2})\s?h(?![\w])", _time, text)
    # time ranges: "7h-9h", "7h30 - 11h" -> "... giờ đến ... giờ"
    text = re.sub(rf"\b(giờ|phút)\s?[-–]\s?(?={_SPOKEN_NUMBER}|\d)", r"\1 đến ", text)
    text = re.sub(
        r"(?i)\b(tháng)\s+(\d{1,2})\b",
        lambda m: f"{m.group(1)} {read_month(int(m.group(2)))}" if 1 <= int(m.group(2)) <= 12 else m.group(0),
        text,
    )
    text = re.sub(r"(?i)\b(thứ)\s+(\d{1,3})\b", lambda m: f"{m.group(1)} {read_ordinal(int(m.group(2)))}", text)
    text = re.sub(r"\b(thứ)\s+([IVXL]{1,6})\b", _roman_ordinal, text)
    text = re.sub(r"(?i)\b(quý)\s+([IVX]{1,3}|[1-4])/(\d{4})\b", _quarter, text)
    text = re.sub(r"(?i)\b(quý|khóa|đợt|phần|kỳ|giai đoạn|chương|khu)\s+([IVX]{1,5})\b", _roman, text)
    text = re.sub(
        rf"({_NUM})\s?(?:-|–|÷|đến)\s?({_NUM})(?=\s?(?:{_UNIT_ALT})?(?![\w]))",
        lambda m: f"{m.group(1)} đến {m.group(2)}",
        text,
    )
    text = re.sub(rf"({_NUM})\s?({_UNIT_ALT})(?![\w²³])", lambda m: f"{m.group(1)} {UNITS[m.group(2)]}", text)
    text = re.sub(r"(?<![\w])(\d+)/(\d+)(?![\w/])", lambda m: f"{m.group(1)} trên {m.group(2)}", text)
    # "25.000đ/kg", "3,5%/năm", "đồng/hộ": Vietnamese says "... một ki lô gam", "... một năm"
    text = re.sub(rf"(?<=[^\W\d_])\s?/\s?({_UNIT_ALT})(?![\w²³])", lambda m: f" một {UNITS[m.group(1)]}", text)
    text = re.sub(r"(?<=[^\W\d_])\s?/\s?(?=[^\W\d_])", " một ", text)
    # a letter after a number: "12A", "QL1A" -> "mười hai a"
    letters = "".join(LETTERS)
    text = re.sub(rf"(?<![\w])(\d+)([{letters}])(?![\w])", lambda m: f"{m.group(1)} {LETTERS[m.group(2)]}", text)
    text = re.sub(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:[.,]\d+)?", lambda m: _number_token(m.group(0)), text)
    return text


def _day_range(m: re.Match[str]) -> str:
    lead, first, last, month = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
    if not (_valid_date(first, month) and _valid_date(last, month)) or first >= last:
        return m.group(0)
    year = int(m.group(5)) if m.group(5) else None
    return _keep_lead(lead, f"ngày {read_integer(first)} đến {read_date(last, month, year)}")


def _date_pair(m: re.Match[str]) -> str:
    lead = m.group(1)
    d1, m1, d2, m2 = (int(m.group(i)) for i in range(2, 6))
    if not (_valid_date(d1, m1) and _valid_date(d2, m2)):
        return m.group(0)
    return _keep_lead(lead, f"{read_date(d1, m1, None)} đến {read_date(d2, m2, None)}")


def _month_range(m: re.Match[str]) -> str:
    first, last = int(m.group(2)), int(m.group(3))
    if not (1 <= first < last <= 12):
        return m.group(0)
    return f"{m.group(1)} {read_month(first)} đến tháng {read_month(last)}"


def _date_full_ctx(m: re.Match[str]) -> str:
    day, month, year = int(m.group(2)), int(m.group(3)), int(m.group(4))
    if not _valid_date(day, month):
        return m.group(0)
    return _keep_lead(m.group(1), read_date(day, month, year))


def _keep_lead(lead: str | None, reading: str) -> str:
    """The reading starts with "ngày"; keep the writer's own "Ngày" (and its case) rather than doubling it."""
    if lead and lead.strip().lower() == "ngày":
        return lead + reading.removeprefix("ngày ")
    return (lead or "") + reading


def _date_short_ctx(m: re.Match[str]) -> str:
    lead = m.group(1)
    day, month = int(m.group(2)), int(m.group(3))
    if not _valid_date(day, month):
        return m.group(0)
    return _keep_lead(lead, read_date(day, month, None))


def _roman(m: re.Match[str]) -> str:
    value = roman_to_int(m.group(2))
    return m.group(0) if value is None else f"{m.group(1)} {read_integer(value)}"


def _roman_ordinal(m: re.Match[str]) -> str:
    value = roman_to_int(m.group(2))
    return m.group(0) if value is None else f"{m.group(1)} {read_ordinal(value)}"


def _quarter(m: re.Match[str]) -> str:
    quarter = m.group(2)
    value = int(quarter) if quarter.isdigit() else roman_to_int(quarter)
    if value is None:
        return m.group(0)
    return f"{m.group(1)} {read_integer(value)} năm {read_integer(int(m.group(3)))}"
