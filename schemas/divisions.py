"""The division registry (区划): names and codes of 市—县—乡镇—村, loaded from the file that
`divisions.yaml` names, checked row by row.

Codes follow 统计用区划代码: 6-digit county, 9-digit township, 12-digit village; a deployment's
registry may list its grids too (level `grid`, the county's own codes, the village as parent). A township without
a code is unique by (county_code, name); a village row may have no code (the shipped Jiangsu tree
gives names only), while a deployment's own registry, or the demo's synthetic one, gives them.
"""

from __future__ import annotations

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
