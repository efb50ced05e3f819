"""The division registry (区划): names and codes of 市—县—乡镇—村, loaded from the file that
`divisions.yaml` names, checked row by row.

Codes follow 统计用区划代码: 6-digit county, 9-digit township, 12-digit village; a deployment's
registry may list its grids too (level `grid`, the county's own codes, the village as parent). A township without
a code is unique by (county_code, name); a village row may have no code (the shipped Jiangsu tree
gives names only), while a deployment's own registry, or the demo's synthetic one, gives them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from onetable.schemas.contracts import ContractError, Contracts

COLUMNS = ["level", "code", "name", "county_code", "parent_code", "parent_name"]
CODE_LENGTH = {"city": 6, "county": 6, "township": 9, "village": 12}
# a grid's code is the county's own (often its village's code and a number); its parent is a village
LEVELS = [*CODE_LENGTH, "grid"]


def load_divisions(path: Path) -> pd.DataFrame:
    """Read a registry CSV (UTF-8, the columns of COLUMNS, all text); errors name the row and field."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ContractError(f"{path}: cannot read the division registry: {exc}") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ContractError(f"{path}: missing column(s) {missing}; expected {COLUMNS}")
    problems = []
    for line, row in zip(frame.index + 2, frame.itertuples(index=False), strict=True):
        if row.level not in LEVELS:
            problems.append(f"{path}: row {line}: level: {row.level!r} is not one of {LEVELS}")
        elif row.level == "grid":
            if not (row.code.isascii() and row.code.isalnum()):
                problems.append(
                    f"{path}: row {line}: code: a grid needs its code, got {row.code!r}"
                )
            if len(row.parent_code) != CODE_LENGTH["village"]:
                problems.append(
                    f"{path}: row {line}: parent_code: a grid's parent is its village's 12-digit "
                    f"code, got {row.parent_code!r}"
                )
        elif row.code and not (
            row.code.isascii() and row.code.isdigit() and len(row.code) == CODE_LENGTH[row.level]
        ):
            problems.append(
                f"{path}: row {line}: code: a {row.level} code is {CODE_LENGTH[row.level]} digits, got {row.code!r}"
            )
        if not row.name:
            problems.append(f"{path}: row {line}: name: empty")
    if problems:
        raise ContractError(
            "\n".join(problems[:20])
            + (f"\n… {len(problems) - 20} more" if len(problems) > 20 else "")
        )
    return frame[COLUMNS]


def registry(contracts: Contracts) -> pd.DataFrame:
    """The registry the contracts name."""
    return load_divisions(contracts.divisions_path())


def name_of(divisions: pd.DataFrame, code: str) -> str | None:
    """The name of a division by code, or None for an unknown (perhaps abolished) code."""
    hit = divisions.loc[divisions["code"] == code, "name"]
    return hit.iloc[0] if len(hit) else None


def children(divisions: pd.DataFrame, parent_code: str, level: str) -> pd.DataFrame:
    """The divisions of `level` directly under `parent_code`."""
    return divisions[(divisions["level"] == level) & (divisions["parent_code"] == parent_code)]


@dataclass(frozen=True)
class VillageCodes:
    """The 12-digit village codes a registry vouches for. Where it gives a county's village codes
    (a deployment's own registry, the demo's), a code of that county must be one of them; where it
    names the county's villages without codes (the shipped Jiangsu tree), only the county part is
    checked, since the registry cannot tell a real village code of it from an invented one."""

    villages: frozenset[str]
    counties: frozenset[str]
    coded_counties: frozenset[str]  # counties whose villages carry codes in the registry

    def knows(self, code: str) -> bool:
        county = code[:6]
        if county in self.coded_counties:
            return code in self.villages
        return county in self.counties


def village_codes(divisions: pd.DataFrame) -> VillageCodes:
    """What `divisions` can tell of a village code."""
    coded = divisions.loc[(divisions["level"] == "village") & (divisions["code"] != ""), "code"]
    counties = divisions.loc[(divisions["level"] == "county") & (divisions["code"] != ""), "code"]
    return VillageCodes(
        villages=frozenset(coded),
        counties=frozenset(counties),
        coded_counties=frozenset(c[:6] for c in coded),
    )


# The endings departments write a village's or community's name with, one way or another (南许村,
# 南许村委会, 南许村民委员会; 城北社区, 城北居委会): a name is found by its stem before any of them.
_VILLAGE_ENDING = re.compile(r"村民委员会|村委会|居民委员会|居委会|社区|村")
_LONGEST_STEM = 12  # characters: longer than any village name's stem in the Jiangsu tree
_OUTSIDE_PROVINCE = re.compile(r"省|自治区")


@dataclass(frozen=True)
class VillageNames:
    """The registry's coded villages by name, to read which village an address names. Written
    here, not taken from a library: the address parsers for Chinese (cpca and the like) stop at the
    county, and a county's villages are in its own registry, not in any library's tables."""

    stems: dict[str, tuple[str, ...]]  # stem (name without its ending) -> village codes
    whole: dict[str, tuple[str, ...]]  # a name without a village ending (农场虚拟生活区) -> codes
    township: dict[str, str]  # village code -> its township's name
    townships: frozenset[str]  # the coded villages' townships' names
    county: dict[str, str]  # village code -> the names its county goes by (county and city)
    places: frozenset[str]  # names of every county and city of the registry
    province: str

    def village_of(self, text: str) -> tuple[str | None, tuple[str, ...]]:
        """The code of the village `text` (an address, NFKC, no spaces) names: the first name of
        a village in it, if the divisions written before it (a township, a county, a province)
        are that village's. A name two villages share, with no township to tell them apart, is
        `village_ambiguous`; an address in another county or province, `village_outside`."""
        found = []  # (where the name starts, the villages it can be)
        for ending in _VILLAGE_ENDING.finditer(text):
            end = ending.start()
            for length in range(min(_LONGEST_STEM, end), 0, -1):
                codes = self.stems.get(text[end - length : end])
                if codes:
                    found.append((end - length, codes))
                    break
        found += [(text.find(n), codes) for n, codes in self.whole.items() if n in text]
        if not found:
            return None, ("village_not_named",)
        kept, outside = [], False
        for start, codes in sorted(found, key=lambda f: f[0]):
            before = text[:start]
            named = {t for t in self.townships if t in before}
            ours = [c for c in codes if not named or self.township[c] in named]
            inside = [c for c in ours if self._inside(c, before)]
            outside |= len(inside) < len(ours)
            if inside:
                kept.append((start, inside))
                break
        if not kept:
            return None, ("village_outside",) if outside else ("village_not_named",)
        codes = kept[0][1]
        return (codes[0], ()) if len(codes) == 1 else (None, ("village_ambiguous",))

    def _inside(self, code: str, before: str) -> bool:
        """Whether the divisions written before a village's name can be its own: no other
        province, and no county or city of the registry but the village's."""
        if _OUTSIDE_PROVINCE.search(before) and self.province not in before:
            return False
        own = self.county[code]
        return not any(p in before for p in self.places - own)


def village_names(divisions: pd.DataFrame) -> VillageNames:
    """The coded villages of `divisions` by name (VillageNames)."""
    villages = divisions[(divisions["level"] == "village") & (divisions["code"] != "")]
    named = divisions[divisions["code"] != ""].set_index("code")["name"].to_dict()
    city_of = divisions[divisions["level"] == "county"].set_index("code")["parent_code"].to_dict()
    stems: dict[str, list[str]] = {}
    whole: dict[str, list[str]] = {}
    for code, name in zip(villages["code"], villages["name"], strict=True):
        ending = _VILLAGE_ENDING.search(name)
        if ending and ending.start() > 0:
            stems.setdefault(name[: ending.start()], []).append(code)
        else:
            whole.setdefault(name, []).append(code)
    counties = {c[:6] for c in villages["code"]}
    county_names = {
        c: frozenset(n for n in (named.get(c), named.get(city_of.get(c, ""))) if n)
        for c in counties
    }
    places = divisions.loc[divisions["level"].isin(["county", "city"]), "name"]
    provinces = divisions.loc[divisions["level"] == "city", "parent_name"]
    return VillageNames(
        stems={k: tuple(v) for k, v in stems.items()},
        whole={k: tuple(v) for k, v in whole.items()},
        township=dict(zip(villages["code"], villages["parent_name"], strict=True)),
        townships=frozenset(villages["parent_name"]),
        county={c: county_names[c[:6]] for c in villages["code"]},
        places=frozenset(places),
        province=provinces.iloc[0] if len(provinces) else "",
    )
