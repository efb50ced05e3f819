"""The walking pipeline on a small hand-made county: two departments, two months, a rerun."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from projects import make_project

from onetable.pipeline import RunContext, new_run_id, run_period
from onetable.quality.pii_scan import scan_personal_data
from onetable.schemas.rules import id_check_char
from onetable.warehouse.periods import Period
from onetable.warehouse.store import open_store

VILLAGE_A, VILLAGE_B = "320324100201", "320324100202"


def _id(body: str) -> str:
    return body + id_check_char(body)


PEOPLE = {  # 人员编号: (name, sex, birth, id body, village, type)
    "R1": ("张伟", "男", "1940-03-02", "32032419400302001", VILLAGE_A, "户籍人口"),
    "R2": ("王芳", "女", "1962-07-15", "32032419620715002", VILLAGE_A, "户籍人口"),
    "R3": ("李娜", "女", "2015-01-09", "32032420150109002", VILLAGE_B, "户籍人口"),
    "R4": ("买买提·艾力", "男", "1990-05-05", "65010219900505001", VILLAGE_B, "流动人口"),
}
REGISTRY = """\
source: registry
department: 公安
name_zh: 户籍人口
entity: person
location: {kind: file, path: registry/*.csv, format: csv}
record_key: {column: 人员编号}
read: {mode: snapshot}
deleted: {column: 状态, values: [注销, 迁出, 死亡]}
required: [人员编号, 姓名]
columns:
  姓名: {to: name, convert: name}
  性别: {to: sex, convert: code}
  出生日期: {to: birth_date, convert: date}
  身份证号: {to: id_number, convert: id_number}
  村代码: {to: village_code}
  人员类型: {to: residence_type, convert: code}
"""
CIVIL = """\
source: civil
department: 民政
name_zh: 救助对象
entity: group_membership
location: {kind: file, path: civil/*.csv, format: csv, encoding: gb18030}
record_key: {column: 救助编号}
read: {mode: snapshot, max_shrink: 1}  # February's list ends January's only record
required: [救助编号, 身份证号]
columns:
  姓名: {to: person.name, convert: name}
  身份证号: {to: person.id_number, convert: id_number}
  救助类别: {to: group, convert: code, values: {城乡低保: 低保, 特困供养: 特困}}
  救助编号: {to: reference_number}
"""


def _registry(path: Path, rows: dict[str, str]) -> None:
    lines = ["人员编号,姓名,性别,出生日期,身份证号,村代码,人员类型,状态"]
    for key, status in rows.items():
        name, sex, born, body, village, kind = PEOPLE[key]
        lines.append(f"{key},{name},{sex},{born},{_id(body)},{village},{kind},{status}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _civil(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    lines = ["救助编号,姓名,身份证号,救助类别"] + [",".join(r) for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode("gb18030"))


@pytest.fixture
def county(tmp_path, store_settings):
    sources = make_project(tmp_path / "project") / "sources"
    (sources / "registry.yaml").write_text(REGISTRY, encoding="utf-8")
    (sources / "civil.yaml").write_text(CIVIL, encoding="utf-8")
    data = tmp_path / "data"
    _registry(
        data / "registry/户籍_20260131.csv",
        {"R1": "正常", "R2": "正常", "R3": "正常", "R4": "正常"},
    )
    _registry(
        data / "registry/户籍_20260228.csv",
        {"R1": "死亡", "R2": "正常", "R3": "正常", "R4": "正常"},
    )
    low_x = _id("32032419620715002").lower()
    _civil(
        data / "civil/救助_20260131.csv", [("JZ1", "张 伟", _id("32032419400302001"), "特困供养")]
    )
    _civil(
        data / "civil/救助_20260228.csv",
        [("JZ2", "王芳", low_x, "城乡低保"), ("JZ3", "赵六", "", "城乡低保")],
    )
    environ = {
        "ONETABLE_STATE_DIR": str(store_settings.state_dir),
        "ONETABLE_STORE_KEY": store_settings.key,
        "ONETABLE_PROJECT": str(sources.parent),
        "ONETABLE_DATA_ROOT": str(data),
        "ONETABLE_OUT_DIR": str(tmp_path / "out"),
        "ONETABLE_PSEUDONYM_KEY": "k" * 40,
    }
    return environ


def _run(environ, period):
    ctx = RunContext.create(period, new_run_id(Period.parse(period)), environ)
    return ctx, run_period(ctx)


def _query(ctx, sql, *params):
    with open_store(ctx.store) as con:
        return con.execute(sql, list(params)).fetchall()


def test_two_months_and_a_rerun(county):
    ctx, jan = _run(county, "2026-01")
    assert jan["extract"]["registry"]["landed"] == 4 and jan["extract"]["civil"]["landed"] == 1
    assert jan["link"] == {
        "records": 5, "persons": 4, "new_ids": 5, "merges": 0, "splits": 0, "groups": 1,
        "unlinked": 0,
    }  # fmt: skip
    ids = dict(_query(ctx, "SELECT record_key, person_id FROM core.person_registry"))
    assert ids["JZ1"] == ids["R1"]  # same ID number, name written with a space
    ctx, feb = _run(county, "2026-02")
    assert feb["check"]["registry"] == {"records": 4, "failed": 0, "errors": 0}
    assert feb["extract"]["registry"]["unchanged"] == 3 and feb["extract"]["civil"]["landed"] == 2
    ids_feb = dict(_query(ctx, "SELECT record_key, person_id FROM core.person_registry"))
    assert {k: ids_feb[k] for k in ids} == ids  # no id changed
    assert ids_feb["JZ2"] == ids["R2"]  # a lower-case x is the same number
    # a name alone, which agrees with no one's, is a person of its own
    assert ids_feb["JZ3"] not in ids.values() and feb["link"]["unlinked"] == 0
    # R1 died: not counted in February; the elderly count drops
    values = dict(_query(ctx, "SELECT period || indicator || village_code, value FROM marts.one_table "
                              "WHERE indicator IN ('LN01', 'JZ01', 'JZ02', 'RK03')"))  # fmt: skip
    assert values[f"2026-01LN01{VILLAGE_A}"] == 2 and values[f"2026-02LN01{VILLAGE_A}"] == 1
    assert values[f"2026-01JZ02{VILLAGE_A}"] == 1 and values[f"2026-02JZ01{VILLAGE_A}"] == 1
    assert values[f"2026-02RK03{VILLAGE_B}"] == 1
    history = _query(
        ctx,
        "SELECT valid_from, valid_to, active FROM core.person WHERE person_id = ? ORDER BY 1",
        ids["R1"],
    )
    assert [(str(f), str(t), a) for f, t, a in history] == [
        ("2026-01-01", "2026-02-01", True),
        ("2026-02-01", "None", False),
    ]
    before = _query(
        ctx, "SELECT * EXCLUDE (run_id) FROM marts.one_table WHERE period = '2026-01' ORDER BY ALL"
    )
    ctx, again = _run(county, "2026-01")  # a rerun of January after February
    assert again["link"]["new_ids"] == 0
    assert (
        _query(
            ctx,
            "SELECT * EXCLUDE (run_id) FROM marts.one_table WHERE period = '2026-01' ORDER BY ALL",
        )
        == before
    )
    assert dict(_query(ctx, "SELECT record_key, person_id FROM core.person_registry")) == ids_feb
    extract = Path(feb["share"]["civil_affairs_elderly"]["path"])
    assert extract.exists() and feb["share"]["civil_affairs_elderly"]["rows"] == 1  # 王芳, 63
    assert (extract.parent / "manifest.json").exists()
    failures = dict(
        _query(
            ctx, "SELECT rule_id, count(*) FROM quarantine.rows WHERE stage = 'check' GROUP BY 1"
        )
    )
    assert failures == {}  # the hand-made county is clean; test_quality_checks covers failures
    needles = {_id(p[3]): "id_number" for p in PEOPLE.values()}
    out = Path(county["ONETABLE_OUT_DIR"])
    assert scan_personal_data([out, ctx.store.state_dir], needles) == []
    lineage = _query(
        ctx,
        "SELECT DISTINCT source, window_end FROM meta.lineage WHERE run_id = ? ORDER BY ALL",
        ctx.run_id,
    )
    assert [str(e) for _, e in lineage] == ["2026-02-01 00:00:00"] * 2  # January's input only


def test_a_failed_source_does_not_stop_the_run(county, tmp_path):
    shutil.rmtree(Path(county["ONETABLE_DATA_ROOT"]) / "civil")
    bad = Path(county["ONETABLE_DATA_ROOT"]) / "civil/救助_20260131.csv"
    _civil(bad, [])
    bad.write_bytes("编号,名字\nJZ1,张伟\n".encode("gb18030"))  # no header the mapping knows
    _, jan = _run(county, "2026-01")
    assert jan["extract"]["civil"]["error"].startswith("source civil: no header row")
    assert jan["link"]["persons"] == 4


@pytest.mark.airflow
def test_the_dag_runs_the_same_stages_as_the_cli(county, airflow_db, monkeypatch, tmp_path):
    from airflow.models import DagBag
    from airflow.sdk import DagRunState

    cli_ctx, _ = _run(county, "2026-01")
    cli_persons = _query(
        cli_ctx, "SELECT * EXCLUDE (period) FROM marts.person_period ORDER BY person_id"
    )
    persons = len(cli_persons)  # a count: a failure must not print the rows
    assert persons == 4  # the county's four persons: two empty tables would be equal too
    for name, value in county.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ONETABLE_STATE_DIR", str(tmp_path / "dag-state"))  # a store of its own
    dag = DagBag(dag_folder=str(Path(__file__).parents[1] / "dags")).dags["onetable_monthly"]
    run = dag.test(run_conf={"period": "2026-01"})
    assert run.state == DagRunState.SUCCESS
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"} and len(states) == 8
    dag_ctx = RunContext.create(
        "2026-01", "check", {**county, "ONETABLE_STATE_DIR": str(tmp_path / "dag-state")}
    )
    dag_persons = _query(
        dag_ctx, "SELECT * EXCLUDE (period) FROM marts.person_period ORDER BY person_id"
    )
    assert dag_persons == cli_persons


# Row accounting: each stage counts what it read, kept, quarantined and found unchanged by its own
# means, so a row lost anywhere fails the stage. Each test plants one such loss.


def test_a_row_the_landing_insert_loses_fails_the_run(county, monkeypatch, capsys):
    from onetable.cli import EXIT_NOT_PUBLISHED, main
    from onetable.connectors import landing

    new_rows = landing._new_rows
    monkeypatch.setattr(landing, "_new_rows", lambda prior: f"{new_rows(prior)} AND k._row <> 3")
    for name, value in county.items():
        monkeypatch.setenv(name, value)
    assert main(["run", "--period", "2026-01"]) == EXIT_NOT_PUBLISHED
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "extract of source 'registry', window [the start, 2026-02-01 00:00): 4 rows read but "
        "3 kept + 0 quarantined + 0 unchanged = 3" in out
    )
    ctx = RunContext.create("2026-01", "check", county)
    windows = _query(ctx, "SELECT source FROM meta.windows")
    assert windows == [("civil",)]  # the other source landed; nothing of the bad window did
    assert "standardize" not in out  # nothing was built on it


def test_a_record_standardizing_loses_fails_the_stage(county, monkeypatch):
    from onetable.linkage import staging
    from onetable.warehouse.ledger import AccountingError

    keep = staging.standardize_source
    monkeypatch.setattr(staging, "standardize_source", lambda *a: keep(*a).iloc[1:])
    with pytest.raises(
        AccountingError, match="standardize of source 'civil': 1 rows read but 0 kept"
    ):
        _run(county, "2026-01")


def test_a_failing_record_the_check_does_not_quarantine_fails_the_stage(county, monkeypatch):
    from onetable.warehouse.ledger import AccountingError, Transaction

    data = Path(county["ONETABLE_DATA_ROOT"])
    path = data / "registry/户籍_20260131.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",男,", ",9,"), encoding="utf-8")
    _, jan = _run(county, "2026-01")
    assert jan["check"]["registry"]["failed"] == 2  # R1 and R4: rows for the fault below to lose
    keep = Transaction.quarantine
    monkeypatch.setattr(
        Transaction, "quarantine", lambda tx, rows: keep(tx, [] if tx.stage == "check" else rows)
    )
    with pytest.raises(
        AccountingError,
        match="check of source 'registry': 4 rows read but 2 kept \\+ 0 quarantined",
    ):
        _run(county, "2026-01")


def test_a_record_left_without_a_person_id_fails_the_link(county, monkeypatch):
    from onetable.linkage import link
    from onetable.warehouse.ledger import AccountingError

    keep = link.link_ids

    def lose_one(*args):
        ids, events, top = keep(*args)
        return ids.where(ids.index != 0, None), events, top

    monkeypatch.setattr(link, "link_ids", lose_one)
    with pytest.raises(AccountingError, match="link of source 'persons': 5 rows read but 4 kept"):
        _run(county, "2026-01")


# A period with nothing new from a source: required, nothing is published; optional, a warning.


def _cli(county, monkeypatch, capsys, period: str) -> tuple[int, list[str]]:
    """`onetable run --period` over the county; the exit status and the verdict's lines."""
    from onetable.cli import main

    for name, value in county.items():
        monkeypatch.setenv(name, value)
    code = main(["run", "--period", period])
    lines = capsys.readouterr().out.splitlines()
    return code, lines[next(i for i, line in enumerate(lines) if line.startswith("verdict:")) :]


def test_a_required_source_with_nothing_new_stops_the_run_before_publishing(
    county, monkeypatch, capsys
):
    from onetable.cli import EXIT_NOT_PUBLISHED

    mapping = Path(county["ONETABLE_PROJECT"]) / "sources" / "registry.yaml"
    mapping.write_text(REGISTRY + "delivery: required\n", encoding="utf-8")
    code, tail = _cli(county, monkeypatch, capsys, "2026-03")  # files of January and February only
    assert (code, tail[:2]) == (EXIT_NOT_PUBLISHED, [
        "verdict: 2026-03 not published",
        f"  - source registry: nothing new for 2026-03: looked for registry/*.csv under "
        f"{county['ONETABLE_DATA_ROOT']} dated in 2026-03; the source is required, so the period "
        "is not published",
    ])  # fmt: skip
    ctx = RunContext.create("2026-03", "check", county)
    assert _query(ctx, "SELECT DISTINCT stage FROM meta.accounting") == [("extract",)]  # only
    # February's file, landed by that run, is February's: its run is published, and so is a rerun
    # (with one warning: 赵六, on 民政's list with no address, lives in no village it knows)
    for _ in range(2):
        code, tail = _cli(county, monkeypatch, capsys, "2026-02")
        assert tail[0] == "verdict: 2026-02 published with warnings", tail
        assert "active person(s) with no village" in tail[1] and tail[2].startswith("  sources"), (
            tail
        )


def test_an_optional_source_with_nothing_new_is_a_warning(county, monkeypatch, capsys):
    from onetable.cli import EXIT_WARNINGS

    code, tail = _cli(county, monkeypatch, capsys, "2026-03")
    data = county["ONETABLE_DATA_ROOT"]
    assert (code, tail[0]) == (EXIT_WARNINGS, "verdict: 2026-03 published with warnings")
    assert tail[1:3] == [
        f"  - source civil: nothing new for 2026-03: looked for civil/*.csv under {data} dated "
        "in 2026-03",
        f"  - source registry: nothing new for 2026-03: looked for registry/*.csv under {data} "
        "dated in 2026-03",
    ]


def test_an_empty_extract_is_a_warning_that_says_why(county, monkeypatch, capsys):
    from onetable.cli import EXIT_WARNINGS

    registry = Path(county["ONETABLE_DATA_ROOT"]) / "registry"
    shutil.rmtree(registry)
    elsewhere = {"R1": "320116013201", "R2": "320116013202"}  # 六合区: outside the entry's scope
    lines = ["人员编号,姓名,性别,出生日期,身份证号,村代码,人员类型,状态"]
    for key, village in elsewhere.items():
        name, sex, born, body, _, kind = PEOPLE[key]
        lines.append(f"{key},{name},{sex},{born},{_id(body)},{village},{kind},正常")
    registry.mkdir()
    (registry / "户籍_20260131.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, tail = _cli(county, monkeypatch, capsys, "2026-01")
    assert (code, tail[0]) == (EXIT_WARNINGS, "verdict: 2026-01 published with warnings")
    assert (
        "  - extract civil_affairs_elderly: 0 rows: row_scope ['320324'] matches none of the "
        "period's 2 villages"
    ) in tail
    extract = Path(county["ONETABLE_OUT_DIR"]) / "share/civil_affairs/civil_affairs_elderly/2026-01"
    manifest = json.loads((extract / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["rows"] == 0 and (extract / "data.xlsx").exists()  # written all the same
