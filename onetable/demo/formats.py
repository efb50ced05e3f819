"""How each department writes an address or a date: the same place or day in its own style.

Addresses are built from the parts of a truth address (addresses.py): 乡镇, 村/社区, 组 or
街路巷, 门牌号, and for a flat 小区, 幢, 单元, 室. A department drops the parts above what it
cares about (the province, the county, the township); the rental registry writes numbers and
buildings and groups otherwise (三十八号, 3栋, 3号楼, 3-1-201, 第三村民小组, 三队).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from onetable.demo.addresses import chinese_number
from onetable.demo.county import PROVINCE_NAME

_DIGITS = "零一二三四五六七八九"


def chinese_numeral(n: int) -> str:
    """1-9999 read out in Chinese numerals (三十八, 二百零六, 一千零一)."""
    if not 0 < n < 10_000:
        raise ValueError("a door number is 1-9999")
    if n < 100:
        return chinese_number(n)
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // value % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[d] + unit
    return out


def _door(a: Mapping[str, Any], numerals: bool) -> str:
    door = str(a["door_no"])
    return (chinese_numeral(int(door)) if numerals and door.isdigit() else door) + "号"


def _locality(a: Mapping[str, Any], arabic_group: bool = False) -> str:
    """组 (村民小组) or 街路巷."""
    group = a["group_name"]
    if group:
        if arabic_group:
            return str(_group_number(group)) + "组"
        return group
    return a["road"]


def _group_number(group: str) -> int:
    body = group.removesuffix("组")
    tens, _, ones = body.partition("十")
    if "十" not in body:
        return _DIGITS.index(body)
    return (_DIGITS.index(tens) if tens else 1) * 10 + (_DIGITS.index(ones) if ones else 0)


def _flat(a: Mapping[str, Any], style: str = "standard") -> str:
    if not a["compound"]:
        return ""
    b, u, r = a["building"], a["unit"], a["room"]
    if style == "dong":
        return f"{a['compound']}{b}栋{u}单元{r}"
    if style == "haolou":
        return f"{a['compound']}{b}号楼{u}单元{r}室"
    if style == "dash":
        return f"{a['compound']}{b}-{u}-{r}"
    if style == "numerals":
        return f"{a['compound']}{chinese_numeral(int(b))}幢{chinese_numeral(int(u))}单元{r}室"
    return f"{a['compound']}{b}幢{u}单元{r}室"


def address_text(a: Mapping[str, Any], level: str) -> str:
    """The address from `level` down: 'province' (the standard address, 江苏省徐州市…), 'city'
    (徐州市…), 'county' (睢宁县…), 'township' (王集镇…) or 'village' (南许村…)."""
    full = a["standard_address"]
    if level == "village":
        return a["village_name"] + _locality(a) + _door(a, False) + _flat(a)
    township = full.index(a["township_name"] + a["village_name"])
    start = {
        "province": 0,
        "city": len(PROVINCE_NAME),
        "county": full.index("市", 0, township) + 1,
        "township": township,
    }[level]
    return full[start:]


RENTAL_STYLES = ("numerals", "dong", "haolou", "dash", "arabic_group", "village_group", "team")


def rental_address(a: Mapping[str, Any], style: str) -> str:
    """The rental registry's way: from the county down, in one of RENTAL_STYLES (or standard)."""
    head = address_text(a, "county")
    head = head[: head.find(a["village_name"]) + len(a["village_name"])]
    if a["group_name"]:
        if style == "arabic_group":
            return head + _locality(a, arabic_group=True) + _door(a, False)
        if style == "village_group":  # 第三村民小组
            return head + "第" + a["group_name"].removesuffix("组") + "村民小组" + _door(a, False)
        if style == "team":  # 三队: the 生产队 the group was
            return head + a["group_name"].removesuffix("组") + "队" + _door(a, False)
        if style == "numerals":
            return head + _locality(a) + _door(a, True)
        return head + _locality(a) + _door(a, False)
    numerals = style == "numerals"
    return head + _locality(a) + _door(a, numerals) + _flat(a, style)


def date_iso(d: date) -> str:
    return d.isoformat()


def date_compact(d: date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def date_chinese(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def date_dotted(d: date) -> str:
    return f"{d.year:04d}.{d.month:02d}.{d.day:02d}"
