"""The sharing list (社区信息共享清单) as contracts: one YAML file per entry in `sharing/`.

An entry says which department (consumer) receives which columns and rows of which published
dataset, from whom, for what purpose and on what legal basis, with which sharing type (国发〔2016〕
51号 and 《政务数据共享条例》: 无条件 / 有条件 with its conditions and approval / 不予共享), how each
column is masked, how often and in which format, and how long the consumer keeps it
(docs/domain.md, "Sharing list"). docs/sharing.md describes the format.

The masking rule. An entry names `cleared_level`, the highest classification level its consumer is
cleared for. A column at or below it is shared as it is; a column above it gets its level's default
`mask` from classification.yaml. `masking` may ask for more for any column, never for less (order:
none < partial = generalize < pseudonym < drop). Where a mask does not fit the column's type, the
default becomes `drop` and an explicit choice is an error:

- `partial` is the display mask of `onetable.warehouse.masking.mask` for text (ID numbers, phones,
  names, addresses by their conventions; other text shows its length only); on a date it means
  year-month, as `generalize`;
- `generalize` is defined for dates (to YYYY-MM);
- `pseudonym` (HMAC-SHA256 with the project's key) is for identifiers only: ID numbers, phones and
  checksummed codes. A keyed hash of a value from a short list (低保, 残疾) still tells the groups
  apart, so it would disclose what it hides.

A dataset's level is the highest level of its columns after masking: a dropped column does not
count, a pseudonymised identifier counts at most at the lowest level the classification masks by
default (`personal`: a pseudonym is still personal information, PIPL art. 73, but no longer the
identity number), and partial or generalized values keep their column's level (就高从严: a masked
name beside a village and a birth month still points at a person).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from onetable.schemas.contracts import (
    _NAME,
    Classification,
    Column,
    ContractError,
    Contracts,
    Entity,
    Level,
    _load_folder,
)

Mask = Literal["none", "partial", "pseudonym", "generalize", "drop"]
STRENGTH: dict[str, int] = {"none": 0, "partial": 1, "generalize": 1, "pseudonym": 2, "drop": 3}
_DATES = ("date", "timestamp")
_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_DIVISION_PREFIX = re.compile(r"[0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Party(_Strict):
    """A department at one tier: `id` names the consumer's folder, `name_zh` is what people read."""

    id: Annotated[str, Field(pattern=_NAME)]
    name_zh: str = Field(min_length=1)
    tier: Literal["省", "市", "县", "乡镇", "村", "网格"]


class RowFilter(_Strict):
    """One condition on a canonical column; a row is shared when it meets all of them. A null value
    meets no condition."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    column: str
    in_: list[str] | None = Field(default=None, alias="in", min_length=1)
    not_in: list[str] | None = Field(default=None, min_length=1)
    min: float | date | None = None
    max: float | date | None = None
    age_min: int | None = Field(default=None, ge=0, le=150)  # whole years at the period's end
    age_max: int | None = Field(default=None, ge=0, le=150)
    not_null: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> RowFilter:
        kinds = [
            self.in_ is not None,
            self.not_in is not None,
            self.min is not None or self.max is not None,
            self.age_min is not None or self.age_max is not None,
            self.not_null is not None,
        ]
        if sum(kinds) != 1:
            raise ValueError(
                "give exactly one condition: `in`, `not_in`, `min`/`max`, `age_min`/`age_max` "
                "or `not_null: true`"
            )
        return self

    def describe(self) -> dict:
        """The condition as written (for the manifest)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class SharingEntry(_Strict):
    """One entry of the sharing list (one file)."""

    id: Annotated[str, Field(pattern=_NAME)]
    name_zh: str = Field(min_length=1)  # 数据项名称
    dataset: Annotated[str, Field(pattern=_NAME)]  # a table of the store's `marts` schema
    entity: str  # the entity contract that classifies its columns
    provider: Party
    consumer: Party
    purpose: str = Field(min_length=1)
    legal_basis: str = Field(min_length=1)
    sharing_type: Literal["无条件", "有条件", "不予共享"]
    conditions: list[str] = []
    approval_ref: str | None = None
    columns: list[str] = Field(min_length=1)
    row_scope: Literal["all"] | list[str]
    scope_column: str = "village_code"
    filters: list[RowFilter] = []
    cleared_level: str
    masking: dict[str, Mask] = {}
    disclosure_control: bool = False
    schedule: Literal["monthly", "quarterly", "yearly"]
    format: Literal["csv", "parquet", "xlsx"]
    retention_days: int = Field(ge=1)
    notes: str = ""

    @field_validator("columns")
    @classmethod
    def _unique(cls, columns: list[str]) -> list[str]:
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"columns listed twice: {', '.join(repeated)}")
        return columns

    @field_validator("row_scope", mode="before")
    @classmethod
    def _division_prefixes(cls, scope: Any) -> Any:
        if scope == "all":
            return scope
        if not isinstance(scope, list) or not scope:
            raise ValueError('write `all`, or a list of division code prefixes such as ["320324"]')
        for code in scope:
            if not isinstance(code, str) or not _DIVISION_PREFIX.fullmatch(code):
                raise ValueError(
                    f"{code!r} is not a division code prefix: a quoted code of 2, 4, 6, 9 or 12 "
                    "digits (省, 市, 县, 乡镇, 村)"
                )
        return scope

    def due(self, period: str) -> bool:
        """Whether the schedule sends this entry for a period (YYYY-MM)."""
        month = int(period_end(period).month)
        return {"monthly": True, "quarterly": month % 3 == 0, "yearly": month == 12}[self.schedule]


@dataclass(frozen=True)
class ColumnPlan:
    """How one listed column is shared: its level, its mask, and its level after masking."""

    name: str
    name_zh: str
    type: str
    level: str
    mask: str
    level_after: str | None  # None when dropped
    personal: str | None

    @property
    def output_type(self) -> str | None:
        if self.mask == "drop":
            return None
        return "string" if self.mask in ("partial", "pseudonym", "generalize") else self.type


def period_end(period: str) -> date:
    """The reference date (月末) of a period written YYYY-MM."""
    match = _PERIOD.fullmatch(period)
    if not match:
        raise ValueError(f"a period is written YYYY-MM, got {period!r}")
    year, month = int(match[1]), int(match[2])
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def _is_identifier(column: Column) -> bool:
    return column.personal in ("id_number", "phone") or (
        column.rule is not None and column.rule.checksum is not None
    )


def _fits(mask: str, column: Column) -> str | None:
    """Why `mask` does not apply to the column, or None when it does."""
    if mask == "generalize" and column.type not in _DATES:
        return "`generalize` is defined for dates (to YYYY-MM) only"
    if mask == "partial" and column.type not in (*_DATES, "string"):
        return f"`partial` is defined for text and dates, not for a {column.type} column"
    if mask == "pseudonym" and not _is_identifier(column):
        return (
            "`pseudonym` is for identifiers (ID numbers, phones, checksummed codes): a keyed hash "
            "of a value from a short list still tells the groups apart; use `drop`"
        )
    return None


def _personal_floor(classification: Classification) -> Level:
    """The lowest level the classification masks by default: a pseudonym never counts lower."""
    masked = [lv for lv in classification.levels if lv.mask != "none"]
    return min(masked, key=lambda lv: lv.rank)


def plan_columns(entry: SharingEntry, contracts: Contracts) -> list[ColumnPlan]:
    """The masking of every listed column by the rule of this module; raises ContractError (with
    keys of the entry, not its file) when the entry and the contracts do not fit together."""
    problems = _check(entry, contracts)
    if problems:
        raise ContractError("\n".join(f"sharing entry {entry.id}: {p}" for p in problems))
    return _plans(entry, contracts)


def _plans(entry: SharingEntry, contracts: Contracts) -> list[ColumnPlan]:
    classification = contracts.classification
    entity = contracts.entities[entry.entity]
    columns = entity.all_columns()
    cleared = classification.level(entry.cleared_level)
    floor = _personal_floor(classification)
    plans = []
    for name in entry.columns:
        column = columns[name]
        level = classification.level(column.level)
        default = level.mask if level.rank > cleared.rank else "none"
        if _fits(default, column):
            default = "drop"
        mask = entry.masking.get(name, default)
        if mask == "partial" and column.type in _DATES:
            mask = "generalize"
        after = None
        if mask == "pseudonym":
            after = (floor if level.rank > floor.rank else level).id
        elif mask != "drop":
            after = level.id
        plans.append(
            ColumnPlan(
                name=name,
                name_zh=column.description_zh or name,
                type=column.type,
                level=level.id,
                mask=mask,
                level_after=after,
                personal=column.personal,
            )
        )
    return plans


def dataset_level(plans: list[ColumnPlan], classification: Classification) -> Level:
    """The highest level among the shared columns after masking."""
    levels = [classification.level(p.level_after) for p in plans if p.level_after]
    return max(levels, key=lambda lv: lv.rank)


def _check(entry: SharingEntry, contracts: Contracts) -> list[str]:
    """Problems of an entry against the contracts, each as `key: what is wrong`."""
    entity: Entity | None = contracts.entities.get(entry.entity)
    if entity is None:
        return [
            f"entity: {entry.entity!r} is not an entity in entities/ "
            f"(one of {', '.join(sorted(contracts.entities))})"
        ]
    classification = contracts.classification
    level_ids = [lv.id for lv in classification.levels]
    if entry.cleared_level not in level_ids:
        return [
            f"cleared_level: {entry.cleared_level!r} is not a level of classification.yaml "
            f"(one of {', '.join(level_ids)})"
        ]
    cleared = classification.level(entry.cleared_level)
    columns = entity.all_columns()
    problems = []
    if entry.sharing_type == "有条件":
        if not entry.conditions:
            problems.append(
                "conditions: 有条件 sharing needs them (what the consumer must observe)"
            )
        if not entry.approval_ref:
            problems.append("approval_ref: 有条件 sharing needs the approval it rests on")
    elif entry.conditions:
        problems.append(
            f"conditions: they are for 有条件 sharing; with conditions, {entry.sharing_type} is "
            "有条件"
        )
    for name in entry.masking:
        if name not in entry.columns:
            problems.append(f"masking.{name}: not among `columns`; list it there or remove it")
    for i, name in enumerate(entry.columns):
        if name not in columns:
            problems.append(
                f"columns.{i}: {name!r} is not a column of entity {entity.entity!r} "
                f"(one of {', '.join(columns)})"
            )
    if problems:
        return problems

    def visible(key: str, name: str) -> None:
        """A column a row condition reads tells the consumer something about every row."""
        if name not in columns:
            problems.append(f"{key}: {name!r} is not a column of entity {entity.entity!r}")
            return
        level = classification.level(columns[name].level)
        if name not in entry.columns and level.rank > cleared.rank:
            problems.append(
                f"{key}: {name!r} is at level {level.id!r}, above cleared_level "
                f"{cleared.id!r}, and not shared; a row condition on it discloses it"
            )

    if entry.row_scope != "all":
        visible("scope_column", entry.scope_column)
    for i, condition in enumerate(entry.filters):
        key = f"filters.{i}.column"
        visible(key, condition.column)
        column = columns.get(condition.column)
        if column is None:
            continue
        if (condition.age_min is not None or condition.age_max is not None) and (
            column.type not in _DATES
        ):
            problems.append(
                f"{key}: age conditions need a date column; {condition.column!r} is {column.type}"
            )
        if (condition.in_ or condition.not_in) and column.type != "string":
            problems.append(
                f"{key}: `in`/`not_in` need a text column; {condition.column!r} is {column.type}"
            )
        for bound in (condition.min, condition.max):
            if bound is None:
                continue
            dated = isinstance(bound, date)
            if dated != (column.type in _DATES) or column.type in ("string", "boolean"):
                problems.append(
                    f"{key}: `min`/`max` must be {'dates' if column.type in _DATES else 'numbers'}"
                    f" for {column.type} column {condition.column!r}"
                )
                break

    floor_problems = []
    for name in entry.columns:
        column = columns[name]
        level = classification.level(column.level)
        default = level.mask if level.rank > cleared.rank else "none"
        chosen = entry.masking.get(name)
        if chosen is None:
            continue
        why = _fits(chosen, column)
        if why:
            floor_problems.append(f"masking.{name}: {why}")
        elif not _fits(default, column) and STRENGTH[chosen] < STRENGTH[default]:
            floor_problems.append(
                f"masking.{name}: {chosen!r} is weaker than {default!r}, the default mask of "
                f"level {level.id!r} ({level.name_zh}) above cleared_level {cleared.id!r}; an "
                "entry may ask for more masking, never for less"
            )
    problems += floor_problems
    if not problems and all(p.mask == "drop" for p in _plans(entry, contracts)):
        problems.append("masking: every listed column is dropped; the extract would be empty")
    return problems


def load_sharing_list(folder: Path, contracts: Contracts) -> dict[str, SharingEntry]:
    """Load and check every entry of a deployment's sharing-list folder against its contracts.
    Errors name the file and the key. The package ships no entry: a sharing list is a county's."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError(f"{folder}: sharing-list folder not found")
    entries = _load_folder(SharingEntry, folder, "id")
    problems = []
    for entry_id, entry in entries.items():
        where = folder / f"{entry_id}.yaml"
        problems += [f"{where}: {p}" for p in _check(entry, contracts)]
    if problems:
        raise ContractError("\n".join(problems))
    return entries
