"""The 一套表 contract: indicators and the rules that tie them, loaded from `one_table.yaml`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from onetable.schemas.contracts import SHIPPED, ContractError, _parse

# marts.person_period, the published persons an indicator's `where` is a condition over
# (warehouse/publish.py writes it): one row per person and period, `age` as of the period's end
PERSON_PERIOD = """
    period VARCHAR, person_id VARCHAR, id_number VARCHAR, name VARCHAR, sex VARCHAR,
    birth_date DATE, age INTEGER, phone VARCHAR, village_code VARCHAR, residence_type VARCHAR,
    status VARCHAR, active BOOLEAN, "groups" VARCHAR[]"""


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
    """The package's indicator set (or the one at `path`), checked by `check_one_table`."""
    path = path or SHIPPED / "one_table.yaml"
    table = _parse(OneTable, path)
    check_one_table(table, path)
    return table


def check_one_table(table: OneTable, path: Path) -> None:
    """Ids are unique, rules name indicators, and each `where` is a condition DuckDB can run over
    marts.person_period (a county's own indicator is checked when it loads, not mid-run)."""
    import duckdb

    ids = [i.id for i in table.indicators]
    problems = [
        f"indicators: {i} is given twice" for i in sorted({i for i in ids if ids.count(i) > 1})
    ]
    problems += [
        f"rules.{n}: {r.left} {r.op} {r.right}: rules must name indicators of the table"
        for n, r in enumerate(table.rules)
        if r.left not in ids or r.right not in ids
    ]
    con = duckdb.connect()
    con.execute(f"CREATE TABLE person_period ({PERSON_PERIOD})")
    for n, indicator in enumerate(table.indicators):
        try:
            con.execute(f"SELECT count(*) FILTER (WHERE {indicator.where}) FROM person_period")
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            problems.append(f"indicators.{n}.where ({indicator.id}): {first}")
    if problems:
        raise ContractError("\n".join(f"{path}: {p}" for p in problems))
