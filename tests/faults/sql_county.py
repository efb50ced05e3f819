"""A small county whose registry is a SQL database read by cursor, kept as it stood at each
month's end (as a department's database would have been read that month)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from projects import make_project

from onetable.pipeline import RunContext, new_run_id, run_period
from onetable.schemas.rules import id_check_char
from onetable.warehouse.extensions import extension_dir
from onetable.warehouse.periods import Period
from onetable.warehouse.store import new_key, open_store

VILLAGE = "320324100201"
MAPPING = """\
source: registry
department: 公安
name_zh: 户籍人口
entity: person
location: {kind: sql, conn_id: reg, table: 户籍人口}
record_key: {column: 人员编号}
read: {mode: cursor, cursor: 更新时间, overlap: 1 day}
deleted: {column: 状态, values: [迁出, 死亡]}
required: [人员编号, 姓名, 状态, 更新时间]
columns:
  姓名: {to: name, convert: name}
  出生日期: {to: birth_date, convert: date}
  身份证号: {to: id_number, convert: id_number}
  村代码: {to: village_code}
  人员类型: {to: residence_type, convert: code}
"""
# 人员编号: (姓名, 出生日期, 身份证号 body); the months below say who changes when
PEOPLE = {
    "P1": ("张伟", "1940-03-02", "32032419400302001"),
    "P2": ("王芳", "1962-07-15", "32032419620715002"),
    "P3": ("李娜", "2015-01-09", "32032420150109002"),
    "P4": ("刘洋", "1988-11-20", "32032419881120003"),
    "P5": ("陈静", "1995-04-18", "32032419950418004"),
    "P6": ("杨磊", "2001-09-30", "32032420010930005"),
    "P7": (
        "赵敏",
        "2031-05-05",
        "32032420310505006",
    ),  # born after any period: its ID number fails the check
}
# the database as it stood at each month's end: (人员编号, 状态, 更新时间)
MONTHS = {
    "2026-01": [("P1", "正常", "2026-01-05"), ("P2", "正常", "2026-01-10"),
                ("P3", "正常", "2026-01-20"), ("P4", "正常", "2026-01-31 12:00:00")],
    "2026-02": [("P1", "正常", "2026-01-05"), ("P2", "迁出", "2026-02-10"),
                ("P3", "正常", "2026-01-20"), ("P4", "正常", "2026-01-31 12:00:00"),
                ("P5", "正常", "2026-02-14")],
    "2026-03": [("P1", "死亡", "2026-03-03"), ("P2", "迁出", "2026-02-10"),
                ("P3", "正常", "2026-01-20"), ("P4", "正常", "2026-01-31 12:00:00"),
                ("P5", "正常", "2026-02-14"), ("P6", "正常", "2026-03-21")],
}  # fmt: skip


def database(path: Path, rows: list[tuple[str, str, str]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE 户籍人口 (人员编号 TEXT, 姓名 TEXT, 出生日期 TEXT, 身份证号 TEXT, "
            "村代码 TEXT, 人员类型 TEXT, 状态 TEXT, 更新时间 TEXT)"
        )
        for key, status, updated in rows:
            name, born, body = PEOPLE[key]
            db.execute(
                "INSERT INTO 户籍人口 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, name, born, body + id_check_char(body), VILLAGE, "户籍人口", status, updated),
            )
    return f"sqlite:///{path}"


def make_county(tmp_path: Path, extension_cache: Path):
    """A factory of environments, one fresh store each, and the database's URL per month."""
    project = make_project(tmp_path / "project")
    (project / "sources" / "registry.yaml").write_text(MAPPING, encoding="utf-8")
    urls = {p: database(tmp_path / "as_of" / p / "registry.db", rows) for p, rows in MONTHS.items()}

    def environ(store: str) -> dict[str, str]:
        state = tmp_path / store / "state"
        shutil.copytree(extension_cache, extension_dir(state), copy_function=os.link)
        return {
            "ONETABLE_STATE_DIR": str(state),
            "ONETABLE_STORE_KEY": new_key(),
            "ONETABLE_PROJECT": str(project),
            "ONETABLE_OUT_DIR": str(tmp_path / store / "out"),
            "ONETABLE_PSEUDONYM_KEY": "p" * 40,
        }

    return environ, urls


def run(environ: dict[str, str], period: str, url: str, progress=None) -> dict:
    """One run of the pipeline for `period`, the registry read from `url`."""
    ctx = RunContext.create(
        period, new_run_id(Period.parse(period)), {**environ, "AIRFLOW_CONN_REG": url}
    )
    return run_period(ctx, progress)


def published(environ: dict[str, str]) -> dict[str, list]:
    ctx = RunContext.create("2026-01", "read", environ)
    with open_store(ctx.store) as con:
        tables = {
            "one_table": "SELECT period, indicator, value FROM marts.one_table ORDER BY ALL",
            "persons": "SELECT period, id_number, active FROM marts.person_period ORDER BY ALL",
        }
        return {name: con.execute(sql).fetchall() for name, sql in tables.items()}
