"""Standardizers: department values to canonical ones, as pure functions of one raw string.

Each returns the standardized value (None when nothing usable remains) and the flags it raised. A
value that fails a check is flagged and still returned where something usable remains, so the
record is linked on what it has (docs/architecture.md, "Never": drop a record because one value
is bad).
Every standardizer of raw text first removes the characters that display as nothing (control
and format characters, `_visible`) and flags them, so a value matches the one it looks like.
The stage applies them to distinct values only: a name or a date repeats across many records.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Concatenate, ParamSpec

from opencc import OpenCC
from pypinyin import Style, lazy_pinyin

from onetable.schemas.rules import (
    ID15,
    ID18,
    id_birth_date,
    id_check_char,
    id_sex,
    is_valid_credit_code,
    upgrade_id15,
)

Result = tuple[str | None, tuple[str, ...]]
_P = ParamSpec("_P")

_SPACES = re.compile(r"[\s\u3000]+")
# interpuncts departments type for 维吾尔族 and other names (NFKC folds the half-width ･ into ・)
_DOTS = re.compile(r"[·•・‧∙⋅．.\u2e31\ua78f]")
_QUOTES = "'`‘’\""
_EXCEL_EPOCH = date(1899, 12, 30)  # Excel's day 0 (it counts 1900 as a leap year)
_DATE_PATTERNS = (
    re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)
_EXCEL_SERIAL = re.compile(r"(\d{4,5})(?:\.\d+)?")  # a day count, a fraction being the time
_EARLIEST = date(1900, 1, 1)  # before it a date is a typo or a placeholder (1899-12-31, 1800-01-01)
_SEX = {"男": "1", "男性": "1", "1": "1", "m": "1", "male": "1",
        "女": "2", "女性": "2", "2": "2", "f": "2", "female": "2"}  # fmt: skip
_EXTENSION = re.compile(r"(.+?)(?:转|分机|ext\.?|x)(\d{1,6})|(.*\d{8})-(\d{1,6})", re.IGNORECASE)
_NUMERAL = "[零〇一二两三四五六七八九十百千]+"
_DIGIT_OF = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
_UNIT_OF = {"十": 10, "百": 100, "千": 1000}


# compiled once: the standardizers run on millions of distinct values
_SCIENTIFIC = re.compile(r"\d(\.\d+)?[eE]\+?\d+")
_ID20 = re.compile(r"[0-9]{17}[0-9X][0-9]{2}")
_LOCAL = re.compile(r"[2-9]\d{6,7}")
_PHONE_NOISE = re.compile(r"[\s()]")
_COUNTRY = re.compile(r"^(\+86|0086|86(?=1[3-9]\d{9}$))")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{9,11}")
_DASHES = re.compile(r"[—–‐‑−]")
_HOUSE_NUMERAL = re.compile(_NUMERAL + r"(?=号|组|幢|栋|单元|室|层|楼|村民小组|小组|队)")
# a village's group written as 第三村民小组, 3小组, 三队 (the 生产队 it was) or 第3组: all 3组
_GROUP = re.compile(r"第?(\d+)(?:村民小组|小组|组|队)")
_BUILDING = re.compile(r"(\d+)(?:栋|号楼)")
_DASHED_FLAT = re.compile(r"(?<![\d-])(\d+)-(\d+)-(\d+)室?(?![\d-])")
_ROOM = re.compile(r"单元(\d+)号?(?![\d室])")
_INTEGER = re.compile(r"-?\d+(\.0+)?")
_VILLAGE_CODE = re.compile(r"\d{12}", re.ASCII)
# tab and line breaks are layout (a multi-line address, a spreadsheet cell's Alt+Enter): each
# standardizer treats them as white space, as before
_LAYOUT = frozenset("\t\n\v\f\r")
_INVISIBLE = frozenset(("Cc", "Cf"))


def _visible(raw: str) -> tuple[str, tuple[str, ...]]:
    """`raw` without the characters that display as nothing, flagged `control_chars` if it had any.

    Removed: Unicode category Cc (C0, DEL and C1 controls: a NUL or an escape left by a database
    dump or a bad conversion) and Cf (format characters: zero-width space and joiners, the BOM,
    the soft hyphen, bidi marks and isolates, the word joiner), so a name with a NUL (U+0000) or
    a zero-width space (U+200B) inside matches the name it looks like. Kept: tab and line breaks
    (white space to every standardizer), private-use characters (Co: some department systems put
    rare name characters, 生僻字, there) and variation selectors (Mn: they choose a Han
    character's glyph), which are text."""
    if raw.isprintable():  # the common case, checked in C
        return raw, ()
    kept = "".join(c for c in raw if c in _LAYOUT or unicodedata.category(c) not in _INVISIBLE)
    return kept, () if kept == raw else ("control_chars",)


def _visible_first(
    standardizer: Callable[Concatenate[str | None, _P], Result],
) -> Callable[Concatenate[str | None, _P], Result]:
    """The standardizer on the raw value's visible characters, `control_chars` first among its
    flags: every standardizer of raw text gets the same removal."""

    @functools.wraps(standardizer)
    def on_visible(raw: str | None, *args: _P.args, **kwargs: _P.kwargs) -> Result:
        if raw is None:
            return standardizer(raw, *args, **kwargs)
        cleaned, removed = _visible(raw)
        value, flags = standardizer(cleaned, *args, **kwargs)
        return value, (*removed, *flags)

    return on_visible


def _ascii(raw: str) -> str:
    """NFKC (full-width digits and letters to ASCII) and trimmed."""
    return unicodedata.normalize("NFKC", raw).strip()


@_visible_first
def id_number(raw: str | None) -> Result:
    """公民身份号码: full-width digits, spaces, apostrophes and scientific notation from
    spreadsheets, lower-case x, a 20-digit 残疾人证号 (its first 18), 15-digit legacy numbers
    upgraded; the checksum and the birth date (a calendar day, not in the future) checked. The
    area code is not: people keep their number when their county is renamed or merged."""
    if raw is None or not raw.strip():
        return None, ("id_missing",)
    text = _SPACES.sub("", _ascii(raw)).strip(_QUOTES)
    flags: list[str] = []
    if _SCIENTIFIC.fullmatch(text):
        return None, ("id_scientific",)  # the spreadsheet kept 15 digits: the rest are lost
    text = text.upper()
    if _ID20.fullmatch(text):
        text, flags = text[:18], ["id_from_disability_card"]
    if ID15.fullmatch(text):
        text, flags = upgrade_id15(text), [*flags, "id_upgraded_15"]
    if not ID18.fullmatch(text):
        return None, (*flags, "id_malformed")
    born = id_birth_date(text)
    if born is None or born > date.today():
        flags.append("id_bad_date")
    if id_check_char(text[:17]) != text[17]:
        flags.append("id_bad_checksum")
    return text, tuple(flags)


def id_facts(id18: str | None) -> tuple[str | None, str | None]:
    """The birth date (ISO) and sex (GB/T 2261.1: '1' male, '2' female, from the 17th digit's
    parity) an 18-character ID number encodes; None for what it does not."""
    if id18 is None or not ID18.fullmatch(id18):
        return None, None
    born = id_birth_date(id18)
    return (born.isoformat() if born else None), _SEX[id_sex(id18)]


def _typo_of(a: str, b: str) -> bool:
    """Whether two ISO dates are one date mistyped: its day and month swapped, or at most two
    characters off (a digit typo, two adjacent digits swapped)."""
    swapped = a[:5] + a[8:10] + "-" + a[5:7] == b
    return swapped or (len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 2)


def id_of_another(id18: str | None, birth_date_iso: str | None, sex_code: str | None) -> bool:
    """Whether an ID number is another person's than the record's: the birth date the record
    states is not the number's, beyond a typo, or the record states no birth date that confirms
    the number and its sex is not the number's. A newborn's records carry its mother's number
    (sometimes the father's) until 落户 gives it its own: that number is a relative's, never the
    record's identity. A stated sex alone that differs from a number whose birth date the record
    confirms is the sex mistyped."""
    id_born, sex_in_id = id_facts(id18)
    if id_born and birth_date_iso and id_born != birth_date_iso:
        return not _typo_of(id_born, birth_date_iso)
    confirmed = bool(id_born) and id_born == birth_date_iso
    return not confirmed and bool(sex_in_id and sex_code and sex_in_id != sex_code)


def id_consistency(
    id18: str | None, birth_date_iso: str | None, sex_code: str | None
) -> tuple[str, ...]:
    """Flags for a stated birth date or sex that disagrees with the ID number's, and
    `id_of_another` when the number is then not the record's person's (`id_of_another`); a value
    missing on either side is no disagreement."""
    id_born, sex_in_id = id_facts(id18)
    flags = []
    if id_born and birth_date_iso and id_born != birth_date_iso:
        flags.append("id_birth_mismatch")
    if sex_in_id and sex_code and sex_in_id != sex_code:
        flags.append("id_sex_mismatch")
    if id_of_another(id18, birth_date_iso, sex_code):
        flags.append("id_of_another")
    return tuple(flags)


@_visible_first
def sex(raw: str | None) -> Result:
    """性别 as GB/T 2261.1 ('1' male, '2' female) from the words, letters and codes departments
    use; anything else (未知, 0, 9) flagged, with no value."""
    if raw is None or not raw.strip():
        return None, ("sex_missing",)
    value = _SEX.get(_ascii(raw).lower())
    return (value, ()) if value else (None, ("sex_unknown",))


@_visible_first
def credit_code(raw: str | None) -> Result:
    """统一社会信用代码: upper-case ASCII, no spaces; the GB 32100 check character checked."""
    if raw is None or not raw.strip():
        return None, ("code_missing",)
    text = _SPACES.sub("", _ascii(raw)).upper()
    if len(text) != 18:
        return None, ("code_malformed",)
    return text, () if is_valid_credit_code(text) else ("code_bad_checksum",)


@functools.cache
def _t2s() -> OpenCC:
    """One OpenCC converter, built on first use (it loads its dictionaries)."""
    return OpenCC("t2s")


@_visible_first
def name(raw: str | None) -> Result:
    """A person's name: NFKC, no inner spaces, one kind of interpunct (·) between name parts,
    traditional characters simplified (張偉 → 张伟) so one person written both ways matches."""
    if raw is None:
        return None, ("name_missing",)
    text = _SPACES.sub("", unicodedata.normalize("NFKC", raw))
    text = _DOTS.sub("·", text).strip("·")
    if not text:
        return None, ("name_missing",)
    simplified = _t2s().convert(text)
    return simplified, () if simplified == text else ("name_traditional",)


def _read_date(text: str, formats: tuple[str, ...]) -> tuple[date | None, tuple[str, ...]]:
    """The day a normalized date string names, or None and why not."""
    for pattern in formats:
        try:
            return datetime.strptime(text, pattern).date(), ()
        except ValueError:
            continue
    for regex in _DATE_PATTERNS:
        match = regex.fullmatch(text)
        if match:
            try:
                return date(*(int(g) for g in match.groups())), ()
            except ValueError:
                return None, ("date_impossible",)
    serial = _EXCEL_SERIAL.fullmatch(text)
    year_only = text.isdigit() and 1900 <= int(text) <= 2099  # 1950 is a year, not a day in 1905
    if serial and not year_only:
        return _EXCEL_EPOCH + timedelta(days=int(serial[1])), ("date_excel_serial",)
    return None, ("date_unreadable",)


@_visible_first
def parse_date(raw: str | None, formats: tuple[str, ...] = ()) -> Result:
    """ISO, 19500302, 1950年3月2日, 1950/3/2, 1950.3.2, a datetime, or an Excel serial; as ISO.
    `formats` (strptime patterns a department declares) are tried first. A day in the future or
    before 1900 is kept and flagged: it is likely a typo, but the only one the record has."""
    if raw is None or not raw.strip():
        return None, ("date_missing",)
    day, flags = _read_date(_ascii(raw), formats)
    if day is None:
        return None, flags
    if not _EARLIEST <= day <= date.today():
        flags = (*flags, "date_implausible")
    return day.isoformat(), flags


def _area_split(digits: str) -> tuple[str, str] | None:
    """A landline's area code and number: 010 and 02X have three digits, the others four."""
    width = 3 if digits.startswith(("010", "02")) else 4
    area, number = digits[:width], digits[width:]
    return (area, number) if _LOCAL.fullmatch(number) else None


@_visible_first
def phone(raw: str | None) -> Result:
    """A mobile as 11 digits; a landline as area code-number (0516-88881234, 025-88881234), or
    its 7-8 digits when the area code is missing (flagged); an extension dropped (flagged)."""
    if raw is None or not raw.strip():
        return None, ("phone_missing",)
    text = _PHONE_NOISE.sub("", _ascii(raw))
    flags: tuple[str, ...] = ()
    extension = _EXTENSION.fullmatch(text)
    if extension:
        text, flags = extension[1] or extension[3], ("phone_extension",)
    digits = text.replace("-", "")
    national = _COUNTRY.sub("", digits)
    if national != digits and not national.startswith(("0", "1")):
        national = "0" + national  # +86 25 8888 1234: the trunk 0 is left out after the country
    if _MOBILE.fullmatch(national):
        return national, flags
    if _LANDLINE.fullmatch(national) and (split := _area_split(national)):
        return f"{split[0]}-{split[1]}", flags
    if _LOCAL.fullmatch(national):
        return national, (*flags, "phone_no_area_code")
    return None, ("phone_invalid",)


def _arabic(match: re.Match[str]) -> str:
    """A Chinese numeral as Arabic digits: 三十八 → 38, 二百零六 → 206, 二〇一 → 201."""
    numeral = match[0]
    if not any(c in _UNIT_OF for c in numeral):
        return "".join(str(_DIGIT_OF[c]) for c in numeral)
    total, digit = 0, 0
    for c in numeral:
        if c in _UNIT_OF:
            total, digit = total + (digit or 1) * _UNIT_OF[c], 0
        else:
            digit = _DIGIT_OF[c]
    return str(total + digit)


# the divisions departments write before the village or community, or leave out: 江苏省徐州市
# 睢宁县睢城街道 (a 区 only at the county level: 社区 and 小区 are places within a village)
_DIVISIONS = re.compile(
    r"^(?:[^省市县]{2,8}?省)?(?:[^省市县]{2,8}?市)?(?:[^省市县]{1,8}?(?:县|(?<![社小园])区))?"
    r"(?:[^省市县]{1,8}?(?:街道|镇|乡))?"
)


@_visible_first
def address(raw: str | None) -> Result:
    """An address written one way for comparison: NFKC, no spaces, without the province, city,
    county and township some departments write before the village and others leave out;
    numerals of 组, 号, 幢, 单元, 室 in Arabic digits, a group as X组 (第X村民小组, X队), a
    building as 幢 (栋, 号楼), 3-1-201 as
    3幢1单元201室, and 室 after a room number that follows 单元 without it. Place names (八一路,
    十里铺) are left alone."""
    if raw is None or not raw.strip():
        return None, ("address_missing",)
    text = _SPACES.sub("", unicodedata.normalize("NFKC", raw))
    text = _DIVISIONS.sub("", text, count=1) or text
    text = _DASHES.sub("-", text)
    text = _HOUSE_NUMERAL.sub(_arabic, text)
    text = _GROUP.sub(r"\1组", text)
    text = _BUILDING.sub(r"\1幢", text)
    text = _DASHED_FLAT.sub(r"\1幢\2单元\3室", text)
    text = _ROOM.sub(r"单元\1室", text)
    return text, ()


@_visible_first
def address_village(raw: str | None, village_of: Callable[[str], Result]) -> Result:
    """The code of the village an address names, for a source that knows where a person lives
    only as text: NFKC, no spaces, then `village_of` (the registry's names,
    `schemas.divisions.VillageNames.village_of`). No address is no village, and no flag: the
    address's own mapping flags it missing."""
    if raw is None or not raw.strip():
        return None, ()
    return village_of(_SPACES.sub("", unicodedata.normalize("NFKC", raw)))


@_visible_first
def text(raw: str | None) -> Result:
    """Free text: NFKC, trimmed, inner runs of white space made one space."""
    if raw is None:
        return None, ()
    cleaned = _SPACES.sub(" ", unicodedata.normalize("NFKC", raw)).strip()
    return cleaned or None, ()


@_visible_first
def integer(raw: str | None) -> Result:
    """A count: NFKC, thousands separators dropped, 3.0 (a spreadsheet's number) read as 3."""
    if raw is None or not raw.strip():
        return None, ()
    cleaned = _ascii(raw).replace(",", "")
    if _INTEGER.fullmatch(cleaned):
        return str(int(float(cleaned))), ()
    return None, ("integer_invalid",)


@_visible_first
def code(raw: str | None, values: dict[str, str], table: dict[str, str] | None = None) -> Result:
    """A department's code or label mapped to the canonical value: first by the mapping's own
    `values`, then by a code table's canonical values and synonyms (`table`: case-folded word ->
    canonical value, `CodeTable.lookup`). Unknown values are flagged and kept as they are;
    without a table or values every value is known."""
    cleaned, _ = text(raw)
    if cleaned is None:
        return None, ()
    if table is None and (not values or cleaned in values.values()):
        return cleaned, ()
    if cleaned in values:
        return values[cleaned], ()
    known = (table or {}).get(cleaned.casefold())
    return (known, ()) if known is not None else (cleaned, ("code_unknown",))


@_visible_first
def village_code(raw: str | None, known: Callable[[str], bool]) -> Result:
    """A 村（社区）code: 12 digits (统计用区划代码), NFKC, no spaces or spreadsheet apostrophes.
    A code the division registry does not hold (`known`, schemas/divisions.py) is flagged
    `unknown_code`, a value that is not 12 digits `malformed_code`; both are kept for linkage
    but place no one, so no invented village reaches the one table (linkage/link.py)."""
    if raw is None or not raw.strip():
        return None, ()
    cleaned = _SPACES.sub("", _ascii(raw)).strip(_QUOTES)
    if not _VILLAGE_CODE.fullmatch(cleaned):
        return cleaned, ("malformed_code",)
    return cleaned, () if known(cleaned) else ("unknown_code",)


@functools.cache
def _sound(char: str) -> str | None:
    """The toneless reading of one Han character, None for any other. Read alone, a character
    always gets the same reading, so a name and its homophone typo differ in one syllable only."""
    reading = lazy_pinyin(char, style=Style.NORMAL, errors="default")[0]
    return None if reading == char else reading


def pinyin_key(name_value: str | None) -> str | None:
    """The toneless pinyin of a standardized name: 王伟 and 王纬 (a homophone typo, 同音字) share
    `wang wei`. Runs of other characters (·, Latin letters) stay as they are."""
    if not name_value:
        return None
    parts: list[str] = []
    run = ""
    for char in name_value:
        sound = _sound(char)
        if sound is None:
            run += char
            continue
        if run:
            parts.append(run)
            run = ""
        parts.append(sound)
    if run:
        parts.append(run)
    return " ".join(parts)
