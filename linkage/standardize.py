"""Standardizers: department values to canonical ones, as pure functions of one raw string.

Each returns the standardized value (None when nothing usable remains) and the flags it raised. A
value that fails a check is flagged and still returned where something usable remains, so the
record is linked on what it has (DESIGN.md, "Never": drop a record because one value is bad).
The stage applies them to distinct values only: a name or a date repeats across many records.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta

from onetable.schemas.rules import id_birth_date, id_check_char, is_valid_credit_code, upgrade_id15

Result = tuple[str | None, tuple[str, ...]]

_SPACES = re.compile(r"[\s\u3000]+")
_DOTS = re.compile(r"[·•・‧∙⋅．.]")  # interpuncts departments type for 维吾尔族 and other names
_EXCEL_EPOCH = date(1899, 12, 30)  # Excel's day 0 (it counts 1900 as a leap year)
_DATE_PATTERNS = (
    re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)


def _ascii(raw: str) -> str:
    """NFKC (full-width digits and letters to ASCII) and trimmed."""
    return unicodedata.normalize("NFKC", raw).strip()


def id_number(raw: str | None) -> Result:
    """公民身份号码: full-width digits, spaces, apostrophes and scientific notation from
    spreadsheets, lower-case x, a 20-digit 残疾人证号 (its first 18), 15-digit legacy numbers
    upgraded; the checksum and the birth date checked."""
    if raw is None or not raw.strip():
        return None, ("id_missing",)
    text = _SPACES.sub("", _ascii(raw)).strip("'`‘’\"")
    flags: list[str] = []
    if re.fullmatch(r"\d(\.\d+)?[eE]\+?\d+", text):
        return None, ("id_scientific",)  # the spreadsheet kept 15 digits: the rest are lost
    text = text.upper()
    if len(text) == 20 and text[:17].isdigit():
        text, flags = text[:18], ["id_from_disability_card"]
    if len(text) == 15 and text.isdigit():
        text, flags = upgrade_id15(text), [*flags, "id_upgraded_15"]
    if not re.fullmatch(r"[0-9]{17}[0-9X]", text):
        return None, (*flags, "id_malformed")
    if id_birth_date(text) is None:
        flags.append("id_bad_date")
    if id_check_char(text[:17]) != text[17]:
        flags.append("id_bad_checksum")
    return text, tuple(flags)


def credit_code(raw: str | None) -> Result:
    """统一社会信用代码: upper-case ASCII, no spaces; the GB 32100 check character checked."""
    if raw is None or not raw.strip():
        return None, ("code_missing",)
    text = _SPACES.sub("", _ascii(raw)).upper()
    if len(text) != 18:
        return None, ("code_malformed",)
    return text, () if is_valid_credit_code(text) else ("code_bad_checksum",)


def name(raw: str | None) -> Result:
    """A person's name: NFKC, no inner spaces, one kind of interpunct (·) between name parts."""
    if raw is None:
        return None, ("name_missing",)
    text = _SPACES.sub("", unicodedata.normalize("NFKC", raw))
    text = _DOTS.sub("·", text).strip("·")
    if not text:
        return None, ("name_missing",)
    return text, ()


def parse_date(raw: str | None, formats: tuple[str, ...] = ()) -> Result:
    """ISO, 19500302, 1950年3月2日, 1950/3/2, 1950.3.2, a datetime, or an Excel serial; as ISO.
    `formats` (strptime patterns a department declares) are tried first."""
    from datetime import datetime

    if raw is None or not raw.strip():
        return None, ("date_missing",)
    text = _ascii(raw)
    for pattern in formats:
        try:
            return datetime.strptime(text, pattern).date().isoformat(), ()
        except ValueError:
            continue
    parts = None
    for regex in _DATE_PATTERNS:
        match = regex.fullmatch(text)
        if match:
            parts = tuple(int(g) for g in match.groups())
            break
    if parts is None and re.fullmatch(r"\d{4,5}(\.0+)?", text):
        serial = int(float(text))
        if 1 <= serial <= 2_958_465:
            return (_EXCEL_EPOCH + timedelta(days=serial)).isoformat(), ("date_excel_serial",)
    if parts is None:
        return None, ("date_unreadable",)
    try:
        return date(*parts).isoformat(), ()
    except ValueError:
        return None, ("date_impossible",)


def phone(raw: str | None) -> Result:
    """A mobile as 11 digits; a landline as area code-number (0516-88881234)."""
    if raw is None or not raw.strip():
        return None, ("phone_missing",)
    digits = re.sub(r"[\s\-()（）]", "", _ascii(raw))
    digits = re.sub(r"^(\+86|0086)", "", digits)
    if re.fullmatch(r"1[3-9]\d{9}", digits):
        return digits, ()
    landline = re.fullmatch(r"(0\d{2,3})(\d{7,8})", digits)
    if landline:
        return f"{landline[1]}-{landline[2]}", ()
    return None, ("phone_invalid",)


def text(raw: str | None) -> Result:
    """Free text: NFKC, trimmed, inner runs of white space made one space."""
    if raw is None:
        return None, ()
    cleaned = _SPACES.sub(" ", unicodedata.normalize("NFKC", raw)).strip()
    return cleaned or None, ()


def integer(raw: str | None) -> Result:
    if raw is None or not raw.strip():
        return None, ()
    cleaned = _ascii(raw).replace(",", "")
    if re.fullmatch(r"-?\d+(\.0+)?", cleaned):
        return str(int(float(cleaned))), ()
    return None, ("integer_invalid",)


def code(raw: str | None, values: dict[str, str]) -> Result:
    """A department's code or label mapped to the canonical value; unknown values are flagged
    and kept as they are."""
    cleaned, _ = text(raw)
    if cleaned is None:
        return None, ()
    if not values or cleaned in values.values():
        return cleaned, ()
    if cleaned in values:
        return values[cleaned], ()
    return cleaned, ("code_unknown",)


def pinyin_key(name_value: str | None) -> str | None:
    """The toneless pinyin of a standardized name: 王伟 and 王纬 (a homophone typo, 同音字) share
    `wang wei`. Other characters (·, Latin letters) stay as they are."""
    if not name_value:
        return None
    from pypinyin import Style, lazy_pinyin

    return " ".join(lazy_pinyin(name_value, style=Style.NORMAL, errors="default"))
