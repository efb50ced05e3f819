"""Every run ends with a verdict line, and its exit status follows it: 0 published, 3 published
with warnings (listed), 4 not published (why); the sources on each side are named."""

from __future__ import annotations

import sqlite3

import pytest

from faults.sql_county import MAPPING, make_county
from onetable.cli import EXIT_NOT_PUBLISHED, EXIT_WARNINGS, main
from onetable.pipeline import verdict


@pytest.fixture
def county(tmp_path, extension_cache, monkeypatch):
    environ, urls = make_county(tmp_path, extension_cache)
    for name, value in environ("cli").items():
        monkeypatch.setenv(name, value)
    return urls


def _run(monkeypatch, capsys, url: str) -> tuple[int, list[str]]:
    monkeypatch.setenv("AIRFLOW_CONN_REG", url)
    code = main(["run", "--period", "2026-01"])
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("verdict:"))
    return code, lines[start:]


def test_a_clean_run_is_published(county, monkeypatch, capsys):
    code, tail = _run(monkeypatch, capsys, county["2026-01"])
    assert (code, tail) == (
        0, ["verdict: 2026-01 published", "  sources published: registry; not published: none"]
    )  # fmt: skip


def test_a_failed_source_publishes_with_a_warning(county, monkeypatch, capsys, tmp_path):
    code, tail = _run(monkeypatch, capsys, f"sqlite:///{tmp_path}/nowhere/registry.db")
    assert code == EXIT_WARNINGS
    assert tail[0] == "verdict: 2026-01 published with warnings"
    assert tail[1] == "  - source registry failed, so it is stale for this period"
    assert tail[-1] == "  sources published: none; not published: registry"


def test_a_mapped_column_missing_from_the_delivery_is_a_warning(county, monkeypatch, capsys):
    path = county["2026-01"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:  # the department renamed a column
        db.execute("ALTER TABLE 户籍人口 RENAME COLUMN 出生日期 TO 出生年月")
    code, tail = _run(monkeypatch, capsys, county["2026-01"])
    assert code == EXIT_WARNINGS
    assert tail[1] == (
        "  - source registry: mapped column(s) 出生日期 missing from the delivery, so those fields "
        "are empty for its records"
    )


def test_a_run_stopped_before_publishing_is_not_published(county, monkeypatch, capsys):
    from onetable.linkage import link

    def broken(*args):
        raise RuntimeError("linkage broke on 张三's record")  # a library's text, with a name

    monkeypatch.setattr(link, "link_ids", broken)
    code, tail = _run(monkeypatch, capsys, county["2026-01"])
    assert code == EXIT_NOT_PUBLISHED
    assert tail[:2] == [
        "verdict: 2026-01 not published",
        "  - link failed: RuntimeError: linkage broke on 张*'s record",
    ]


def test_the_verdict_from_the_stages_results():
    extract = {
        "a": {"error": None, "missing_columns": []},
        "b": {"error": "down", "missing_columns": []},
    }
    assert verdict({"extract": extract}, "link failed: X").status == "not published"
    published = verdict({"extract": extract, "publish": {}, "one_table": {"violations": []}})
    assert (published.status, published.published, published.stale) == (
        "published with warnings", ["a"], ["b"]
    )  # fmt: skip
    extract["b"]["error"] = None
    assert verdict({"extract": extract, "publish": {}}).status == "published"
    bad = verdict({"extract": extract, "publish": {}, "one_table": {"violations": [("v", "r")]}})
    assert bad.reasons == ["one table: 1 rule violation(s) between indicators"]


def test_unknown_village_codes_and_unplaced_persons_are_warnings():
    results = {
        "extract": {"a": {"error": None, "missing_columns": []}},
        "standardize": {"a": {"unknown_village_codes": {"320324999201": 2}}},
        "publish": {},
        "one_table": {
            "violations": [],
            "unplaced": 3,
            "unplaced_persons": ["P0000007 张* (health)", "P0000009 (no name) (rental)"],
        },
    }
    assert verdict(results).reasons == [
        "source a: village code(s) not in the division registry, placing no one: "
        "320324999201 (2 record(s))",
        "one table: 3 active person(s) with no village, counted nowhere: P0000007 张* (health); "
        "P0000009 (no name) (rental); and 1 more",
    ]


def test_a_required_cursor_source_with_no_new_row_is_not_published(
    county, monkeypatch, capsys, tmp_path
):
    mapping = tmp_path / "project" / "sources" / "registry.yaml"
    mapping.write_text(MAPPING + "delivery: required\n", encoding="utf-8")
    assert _run(monkeypatch, capsys, county["2026-01"])[0] == 0
    # February read from the database as it stood in January: only the overlap's row, unchanged
    monkeypatch.setenv("AIRFLOW_CONN_REG", county["2026-01"])
    code = main(["run", "--period", "2026-02"])
    tail = capsys.readouterr().out.splitlines()[-3:]
    assert (code, tail[:2]) == (EXIT_NOT_PUBLISHED, [
        "verdict: 2026-02 not published",
        "  - source registry: nothing new for 2026-02: table 户籍人口 of connection reg gave no "
        "new rows in the window [2026-02-01 00:00, 2026-03-01 00:00); the source is required, so "
        "the period is not published",
    ])  # fmt: skip
    # a rerun finds the window extracted, and still nothing landed in it
    assert main(["run", "--period", "2026-02"]) == EXIT_NOT_PUBLISHED


def test_the_verdict_warns_of_an_empty_extract_and_an_optional_source_with_nothing_new():
    results = {
        "extract": {"a": {"error": None, "missing_columns": [], "delivery": "optional",
                          "missing": "source a: nothing new for 2026-03: looked for a/*.csv"}},
        "publish": {},
        "share": {"e": {"rows": 0, "why_empty": "marts.person_period holds no rows for 2026-03"},
                  "f": {"rows": 5, "why_empty": None}},
    }  # fmt: skip
    assert verdict(results).reasons == [
        "source a: nothing new for 2026-03: looked for a/*.csv",
        "extract e: 0 rows: marts.person_period holds no rows for 2026-03",
    ]
    results["extract"]["a"]["delivery"] = "required"
    del results["publish"], results["share"]
    assert verdict(results, "standardize failed: RequiredSourceMissing: ...").reasons == [
        "source a: nothing new for 2026-03: looked for a/*.csv; the source is required, so the "
        "period is not published"
    ]
