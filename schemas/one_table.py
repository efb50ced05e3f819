"""The 一套表 contract: indicators and the rules that tie them, loaded from `one_table.yaml`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from onetable.schemas.contracts import SHIPPED, ContractError, _parse


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Z]{2}\d{2}$")
    name_zh: str
    unit: str
    where: str


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    left: str
    op: Literal["<=", "<", "=", ">=", ">"]
    right: str


class OneTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    indicators: list[Indicator]
    rules: list[Rule] = []


def load_one_table(path: Path | None = None) -> OneTable:
    """The indicator set; rules must name indicators of the set."""
    path = path or SHIPPED / "one_table.yaml"
    table = _parse(OneTable, path)
    ids = {i.id for i in table.indicators}
    unknown = [
        f"rules.{n}" for n, r in enumerate(table.rules) if r.left not in ids or r.right not in ids
    ]
    if unknown or len(ids) != len(table.indicators):
        raise ContractError(
            f"{path}: {', '.join(unknown) or 'indicators'}: rules must name indicators, ids must be unique"
        )
    return table
