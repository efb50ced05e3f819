"""Landing through the store: accounting, snapshot diffs and tombstones, drop folders and
checksums, versions of forced windows, schema drift, and a crash before the watermark commit."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from connector_helpers import make_source, write_csv

from onetable.connectors.extract import Outcome, extract_all, extract_source
from onetable.connectors.landing import Window, land_window
from onetable.connectors.reading import ConnectorError
from onetable.schemas.contracts import SHIPPED, load_contracts
from onetable.warehouse.ledger import AccountingError, Transaction, transaction, watermark
from onetable.warehouse.store import open_store

HEADER = "人员编号,姓名,身份证号,状态"
END = datetime(2026, 4, 1)
MAPPING = Path("sources/registry.yaml")


def _source(**kw):
    return make_source("registry", {"kind": "file", "path": "drop/*.csv", "format": "csv"}, **kw)


def _extract(settings, source, data, run="r", **kw) -> Outcome:
    return extract_source(settings, source, MAPPING, end=END, run_id=run, data_root=data, **kw)


def _rows(settings, sql):
    with open_store(settings) as con:
        return con.execute(sql).fetchall()


def test_snapshot_files_diff_into_updates_and_tombstones(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(
        data / "drop/户籍_20260131.csv",
        HEADER,
        ["P1,张三,1,正常", "P2,李四,2,正常", "P3,王五,3,正常", "P4,赵六"],
    )
    write_csv(
        data / "drop/户籍_20260228.csv",
        HEADER,
        ["P1,张三,1,正常", "P2,李四,2,迁出", "P5,钱七,5,正常"],
    )
    # P3 of three ends: past the default share a delivery may end (tests/faults)
    outcome = _extract(store_settings, _source(read={"mode": "snapshot", "max_shrink": 1}), data)
    jan, feb = outcome.manifests
    assert (jan.read, jan.landed, jan.quarantined, jan.unchanged, jan.tombstones) == (4, 3, 1, 0, 0)
    assert (feb.read, feb.landed, feb.quarantined, feb.unchanged, feb.tombstones) == (3, 2, 0, 1, 1)
    assert feb.window == Window(datetime(2026, 2, 1), datetime(2026, 3, 1))
    rows = _rows(store_settings, "SELECT _record_key, _op, _deleted, _row FROM landing.registry "
                                 "WHERE _window_end = '2026-03-01' ORDER BY 1")  # fmt: skip
    assert rows == [
        ("P2", "upsert", True, 3),
        ("P3", "delete", True, None),
        ("P5", "upsert", False, 4),
    ]
    counts = _rows(store_settings, "SELECT sum(rows_read), sum(rows_kept), sum(rows_quarantined), "
                                   "sum(rows_unchanged) FROM meta.accounting")  # fmt: skip
    assert counts == [(7, 5, 1, 1)]
    quarantined = _rows(
        store_settings, "SELECT location, row_number, raw, window_end FROM quarantine.rows"
    )
    assert quarantined == [
        (str(data / "drop/户籍_20260131.csv"), 5, "P4,赵六", datetime(2026, 2, 1))
    ]
    with open_store(store_settings) as con:
        assert watermark(con, "registry") == datetime(2026, 3, 1)


def test_files_are_taken_once_by_checksum_and_a_changed_file_is_a_new_version(
    store_settings, tmp_path
):
    data = tmp_path / "data"
    path = write_csv(data / "drop/户籍_20260131.csv", HEADER, ["P1,张三,1,正常"])
    assert len(_extract(store_settings, _source(), data).manifests) == 1
    (data / "drop/copy_20260131.csv").write_bytes(path.read_bytes())  # dropped again
    again = _extract(store_settings, _source(), data, run="r2")
    assert again.manifests == [] and again.note == "no new file"
    write_csv(path, HEADER, ["P1,张三,1,迁出"])  # the department corrected its file
    changed = _extract(store_settings, _source(), data, run="r3").manifests
    assert [(m.version, m.landed, m.window.end) for m in changed] == [(2, 1, datetime(2026, 2, 1))]
    assert _rows(store_settings, "SELECT _version, 状态 FROM landing.registry ORDER BY 1") == [
        (1, "正常"),
        (2, "迁出"),
    ]


def test_a_file_dated_after_the_end_waits(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "drop/户籍_20260430.csv", HEADER, ["P1,张三,1,正常"])
    assert _extract(store_settings, _source(), data).note == "no new file"


@pytest.mark.parametrize("after", ["move", "delete"])
def test_drop_folder_is_emptied(store_settings, tmp_path, after):
    data = tmp_path / "data"
    path = write_csv(data / "drop/户籍_20260131.csv", HEADER, ["P1,张三,1,正常"])
    location = {"kind": "file", "path": "drop/*.csv", "format": "csv", "after_landing": after}
    if after == "move":
        location["archive"] = "landed"
    _extract(store_settings, make_source("registry", location), data)
    assert not path.exists()
    assert (data / "landed" / path.name).exists() == (after == "move")


def test_schema_drift_new_column_kept_and_reported(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "drop/a_20260131.csv", HEADER, ["P1,张三,1,正常"])
    write_csv(data / "drop/a_20260228.csv", HEADER + ",网格", ["P1,张三,1,正常,G01"])
    jan, feb = _extract(store_settings, _source(), data).manifests
    assert "状态" not in jan.new_columns  # mapped as the deleted-status column
    assert jan.new_columns == []
    assert feb.new_columns == ["网格"] and feb.landed == 1  # the row changed: it has a new value
    assert _rows(
        store_settings, "SELECT 网格 FROM landing.registry WHERE _window_end = '2026-03-01'"
    ) == [("G01",)]


def test_an_empty_added_column_changes_no_row(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "drop/a_20260131.csv", HEADER, ["P1,张三,1,正常"])
    write_csv(
        data / "drop/a_20260228.csv", "状态,网格," + "人员编号,姓名,身份证号", ["正常,,P1,张三,1"]
    )
    _, feb = _extract(store_settings, _source(), data).manifests
    assert (feb.landed, feb.unchanged) == (0, 1)


def test_missing_required_column_fails_that_source_only(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "bad/a_20260131.csv", "人员编号,身份证号", ["P1,1"])
    write_csv(data / "good/a_20260131.csv", HEADER, ["P1,张三,1,正常"])
    root = tmp_path / "contracts"
    (root / "sources").mkdir(parents=True)
    for name in ("classification.yaml", "divisions.yaml"):
        (root / name).write_text((SHIPPED / name).read_text(encoding="utf-8"), encoding="utf-8")
    (root / "divisions.yaml").write_text(
        (SHIPPED / "divisions.yaml").read_text(encoding="utf-8").replace(
            "path: reference/jiangsu_divisions.csv", f"path: {SHIPPED / 'reference/jiangsu_divisions.csv'}"
        ),
        encoding="utf-8",
    )  # fmt: skip
    (root / "entities").symlink_to(SHIPPED / "entities")
    for name in ("bad", "good"):
        (root / "sources" / f"{name}.yaml").write_text(
            f"source: {name}\ndepartment: 公安\nname_zh: 户籍\nentity: person\n"
            f"location: {{kind: file, path: {name}/*.csv, format: csv}}\n"
            "record_key: {column: 人员编号}\nread: {mode: snapshot}\nrequired: [人员编号, 姓名]\n"
            "columns: {姓名: {to: name}}\n",
            encoding="utf-8",
        )
    outcomes = extract_all(
        store_settings, load_contracts(root), end=END, run_id="r", data_root=data
    )
    bad, good = outcomes
    assert bad.error == (
        f"source bad: required column(s) 姓名 missing from {data / 'bad/a_20260131.csv'}; "
        f"see the mapping {root / 'sources/bad.yaml'}"
    )
    assert good.error is None and good.manifests[0].landed == 1
    with open_store(store_settings) as con:
        assert watermark(con, "bad") is None
        assert watermark(con, "good") == datetime(2026, 2, 1)


def test_a_mapping_error_names_the_deployments_own_file(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "bad/a_20260131.csv", "人员编号,身份证号", ["P1,1"])
    mappings = tmp_path / "deployment" / "sources"
    mappings.mkdir(parents=True)
    (mappings / "bad.yaml").write_text(
        "source: bad\ndepartment: 公安\nname_zh: 户籍\nentity: person\n"
        "location: {kind: file, path: bad/*.csv, format: csv}\n"
        "record_key: {column: 人员编号}\nread: {mode: snapshot}\nrequired: [人员编号, 姓名]\n"
        "columns: {姓名: {to: name}}\n",
        encoding="utf-8",
    )
    contracts = load_contracts(sources_dir=mappings)
    (bad,) = extract_all(store_settings, contracts, end=END, run_id="r", data_root=data)
    assert bad.error.endswith(f"; see the mapping {mappings / 'bad.yaml'}")


def test_a_quarantined_row_the_store_does_not_keep_fails_the_window(
    store_settings, tmp_path, monkeypatch
):
    """The quarantine is counted as the store wrote it, so a rejected row it loses is caught."""
    data = tmp_path / "data"
    write_csv(data / "drop/a_20260131.csv", HEADER, ["P1,张三,1,正常", "P2,李四"])
    keep = Transaction.quarantine
    monkeypatch.setattr(Transaction, "quarantine", lambda tx, rows: keep(tx, list(rows)[:-1]))
    with pytest.raises(AccountingError, match=(
        r"extract of source 'registry', window \[the start, 2026-02-01 00:00\): 2 rows read but "
        r"1 kept \+ 0 quarantined \+ 0 unchanged = 1; nothing of it was committed"
    )):  # fmt: skip
        _extract(store_settings, _source(), data)
    with open_store(store_settings) as con:
        assert watermark(con, "registry") is None


def test_a_row_the_reader_counts_but_does_not_hand_over_fails_the_window(store_settings):
    from onetable.connectors.reading import Chunk, text_table

    class Lossy(Chunk):  # counts one row more than its table holds
        @property
        def read(self) -> int:
            return super().read + 1

    source = make_source("registry", {"kind": "sql", "conn_id": "x", "table": "t"})
    values = [["P1"], ["张三"], ["1"], ["正常"]]
    chunks = [Lossy(text_table(HEADER.split(","), values, "db/t", None, [1]))]
    with (
        open_store(store_settings) as con,
        pytest.raises(AccountingError, match="2 rows read but 1 kept"),
        transaction(con, run_id="r", stage="extract") as tx,
    ):
        land_window(con, tx, source, Window(None, END), chunks, MAPPING)


def test_a_crash_before_the_commit_lands_nothing_and_the_rerun_lands_once(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "drop/a_20260131.csv", HEADER, [f"P{i},张三,{i},正常" for i in range(10)])
    source = _source()
    from onetable.connectors.extract import read_file

    def crashing():
        yield from read_file(data / "drop/a_20260131.csv", source.location, source)
        raise KeyboardInterrupt("killed")

    with (
        open_store(store_settings) as con,
        pytest.raises(KeyboardInterrupt),
        transaction(con, run_id="r1", stage="extract") as tx,
    ):
        land_window(con, tx, source, Window(None, datetime(2026, 2, 1)), crashing(), MAPPING)
    with open_store(store_settings) as con:
        assert watermark(con, "registry") is None
        assert (
            con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'registry'"
            ).fetchone()[0]
            == 0
        )
    again = _extract(store_settings, source, data, run="r2").manifests[0]
    assert (again.version, again.landed) == (1, 10)
    assert _rows(
        store_settings, "SELECT count(*), count(DISTINCT _record_key) FROM landing.registry"
    ) == [(10, 10)]


def test_hash_of_identity_columns_as_record_key(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "drop/a_20260131.csv", "姓名,身份证号,状态", ["张三,1,正常", ",,正常"])
    source = _source(record_key={"hash_of": ["姓名", "身份证号"]}, required=["姓名"])
    manifest = _extract(store_settings, source, data).manifests[0]
    assert (manifest.landed, manifest.quarantined) == (1, 1)
    (key,) = _rows(store_settings, "SELECT _record_key FROM landing.registry")[0]
    assert len(key) == 32
    assert _rows(store_settings, "SELECT rule_id, row_number, raw FROM quarantine.rows") == [
        ("C004", 3, "\t\t正常")
    ]


def test_a_file_source_needs_a_data_root(store_settings):
    with pytest.raises(ConnectorError, match="needs a data root"):
        extract_source(store_settings, _source(), MAPPING, end=END, run_id="r")


def test_the_same_list_next_month_is_a_new_snapshot(store_settings, tmp_path):
    data = tmp_path / "data"
    jan = write_csv(data / "drop/户籍_20260131.csv", HEADER, ["P1,张三,1,正常"])
    (data / "drop/户籍_20260228.csv").write_bytes(jan.read_bytes())  # nothing changed in February
    manifests = _extract(store_settings, _source(), data).manifests
    assert [(m.window.end, m.landed, m.unchanged) for m in manifests] == [
        (datetime(2026, 2, 1), 1, 0),
        (datetime(2026, 3, 1), 0, 1),
    ]


def test_landed_chunks_are_freed_before_the_commit(store_settings, monkeypatch):
    import pyarrow as pa

    from onetable.connectors import landing
    from onetable.connectors.reading import Chunk, text_table

    monkeypatch.setattr(landing, "FLUSH_ROWS", 10_000)
    source = make_source("registry", {"kind": "sql", "conn_id": "x", "table": "t"})

    def chunks():
        for k in range(8):
            ids = [f"P{k}-{i}" for i in range(10_000)]
            values = [ids, ["张三" * 20] * len(ids), ids, ["正常"] * len(ids)]
            rows = range(k * 10_000 + 1, (k + 1) * 10_000 + 1)
            yield Chunk(text_table(HEADER.split(","), values, "db/t", None, list(rows)))

    with open_store(store_settings) as con, transaction(con, run_id="r", stage="extract") as tx:
        before = pa.total_allocated_bytes()
        manifest = land_window(con, tx, source, Window(None, END), chunks(), MAPPING)
        # a chunk kept until the commit would hold about 1 MiB each
        assert pa.total_allocated_bytes() - before < 1 << 20
    assert manifest.landed == 80_000
    assert _rows(store_settings, "SELECT count(*), max(_row) FROM landing.registry") == [
        (80_000, 80_000)
    ]


def _row_hashes(columns: list[str], rows: list[tuple]) -> list[str]:
    import duckdb
    import pyarrow as pa

    from onetable.connectors.landing import _hash_sql

    con = duckdb.connect()
    con.register(
        "landed",
        pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(columns)}),
    )
    return [h for (h,) in con.execute(f"SELECT {_hash_sql(columns)} FROM landed").fetchall()]


def test_the_row_hash_ignores_order_and_empty_columns_but_not_a_moved_value():
    (base,) = _row_hashes(["姓名", "电话"], [("张三", "138")])
    assert _row_hashes(["电话", "姓名"], [("138", "张三")]) == [base]  # columns reordered
    assert _row_hashes(["姓名", "电话", "网格"], [("张三", "138", "")]) == [base]  # added empty
    assert _row_hashes(["姓名", "电话", "网格"], [("张三", "138", None)]) == [base]
    # 电话2 sorts right after 电话: only the tags tell the two apart
    moved, changed = _row_hashes(
        ["姓名", "电话", "电话2"], [("张三", "", "138"), ("张三", "139", "")]
    )
    assert base not in (moved, changed)


def test_a_key_column_the_file_lacks_quarantines_its_rows(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "drop/a_20260131.csv", "姓名,身份证号,状态", ["张三,1,正常", "李四,2,正常"])
    manifest = _extract(store_settings, _source(required=["姓名"]), data).manifests[0]
    assert (manifest.read, manifest.landed, manifest.quarantined) == (2, 0, 2)
    assert _rows(store_settings, "SELECT DISTINCT rule_id, field FROM quarantine.rows") == [
        ("C004", "人员编号")
    ]


def test_read_ahead_hands_over_hashed_batches_and_the_readers_error():
    from onetable.connectors.landing import read_ahead
    from onetable.connectors.reading import Chunk, text_table

    source = make_source("registry", {"kind": "sql", "conn_id": "x", "table": "t"})

    def chunks():
        for k in range(3):
            ids = [f"P{k}{i}" for i in range(4)]
            values = [ids, ["张三"] * 4, ids, ["正常", "注销", "", "迁出"]]
            yield Chunk(text_table(HEADER.split(","), values, "db/t", None, list(range(4))))
        raise ConnectionResetError("the database went away")

    with read_ahead(source, chunks(), rows=8) as batches:
        first = next(batches)
        assert [c.rows.num_rows for c in first.chunks] == [4, 4]  # at least 8 rows, whole chunks
        assert first.rows.column("_record_key").to_pylist()[:2] == ["P00", "P01"]
        assert first.rows.column("_deleted").to_pylist()[:4] == [False, True, False, True]
        assert len(set(first.rows.column("_row_hash").to_pylist())) == 8
        with pytest.raises(ConnectionResetError, match="went away"):
            next(batches)


def test_a_store_error_mid_landing_is_raised_as_itself(store_settings, monkeypatch):
    import duckdb

    from onetable.connectors import landing
    from onetable.connectors.reading import Chunk, text_table

    def failing_insert(con, *args):
        con.execute("SELECT '张三'::INTEGER")

    monkeypatch.setattr(landing, "_insert", failing_insert)
    source = make_source("registry", {"kind": "sql", "conn_id": "x", "table": "t"})
    values = [["P1"], ["张三"], ["1"], ["正常"]]
    chunks = [Chunk(text_table(HEADER.split(","), values, "db/t", None, [1]))]
    with (
        open_store(store_settings) as con,
        pytest.raises(duckdb.ConversionException),
        transaction(con, run_id="r", stage="extract") as tx,
    ):
        land_window(con, tx, source, Window(None, END), chunks, MAPPING)
    with open_store(store_settings) as con:
        assert watermark(con, "registry") is None


def _dated(date_spec, name="registry"):
    """A file source whose mapping declares how its files' date is known."""
    return make_source(
        name, {"kind": "file", "path": "drop/*.csv", "format": "csv", "date": date_spec}
    )


def _contracts(source):
    """What extract_all reads of the contracts, for one source."""
    return SimpleNamespace(sources={source.source: source}, source_file=lambda _: MAPPING)


def _by(settings, source, data, month: int, run: str) -> Outcome:
    """Extract as the run of 2026-<month> does."""
    end = datetime(2026, month + 1, 1)
    (outcome,) = extract_all(settings, _contracts(source), end=end, run_id=run, data_root=data)
    assert outcome.error is None, outcome.error
    return outcome


def test_a_file_with_no_date_in_its_name_fails_its_source(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "drop/户籍_20260131.csv", HEADER, ["P1,张三,1,正常"])
    write_csv(data / "drop/户籍人口.csv", HEADER, ["P1,张三,1,正常"])  # no date, none declared
    (outcome,) = extract_all(
        store_settings, _contracts(_source()), end=END, run_id="r", data_root=data
    )
    assert outcome.error == (
        f"source registry: the name of {data / 'drop/户籍人口.csv'} has no date (`20260131` or "
        f"`2026-01-31`); declare how the files' date is known in `location.date` of {MAPPING}: "
        "`{name: <regex>}`, `{column: <source column>}` or `delivered`"
    )
    assert _rows(store_settings, "SELECT count(*) FROM meta.windows") == [(0,)]


def test_a_declared_name_pattern_dates_the_file(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "drop/户籍_2026年02月14日_01.csv", HEADER, ["P1,张三,1,正常"])
    by_parts = r"(?P<year>\d{4})年(?P<month>\d\d)月(?P<day>\d\d)日"
    for name, spec in (
        ("parts", {"name": by_parts}),
        ("group", {"name": r"_(\d{4}年\d\d月\d\d日)_"}),
    ):
        (manifest,) = _extract(store_settings, _dated(spec, name), data).manifests
        assert manifest.window.end == datetime(2026, 2, 15)
    with pytest.raises(ValueError, match=r"give one group \(the date\), or the groups"):
        _dated({"name": r"(\d{4})(\d\d)(\d\d)"})


def test_delivered_files_stand_for_the_period_they_are_found_in(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "drop/户籍人口.csv", HEADER, ["P1,张三,1,正常"])
    source = _dated("delivered")
    jan = _by(store_settings, source, data, 1, "jan")
    assert [m.window for m in jan.manifests] == [Window(None, datetime(2026, 2, 1))]
    again = _by(store_settings, source, data, 1, "jan again")
    assert (again.manifests, again.note) == ([], "no new file")
    # still there in February, and not landed again: it is January's
    assert _by(store_settings, source, data, 2, "feb").manifests == []
    write_csv(data / "drop/户籍人口_更新.csv", HEADER, ["P1,张三,1,正常", "P2,李四,2,正常"])
    (feb,) = _by(store_settings, source, data, 2, "feb again").manifests
    assert (feb.window, feb.landed, feb.unchanged) == (
        Window(datetime(2026, 2, 1), datetime(2026, 3, 1)), 1, 1
    )  # fmt: skip


def test_a_column_dates_the_file_by_its_latest_day(store_settings, tmp_path):
    data = tmp_path / "data"
    header = HEADER + ",登记日期"
    rows = ["P1,张三,1,正常,03/01/2026", "P2,李四,2,正常,14/02/2026", "P3,王五,3,正常,",
            "P4,赵六,4,正常,01/01/2099"]  # fmt: skip
    write_csv(data / "drop/户籍人口.csv", header, rows)
    source = _dated({"column": "登记日期", "formats": ["%d/%m/%Y"]})
    assert _by(store_settings, source, data, 1, "jan").manifests == []  # February's file
    (feb,) = _by(store_settings, source, data, 2, "feb").manifests
    assert (feb.window.end, feb.landed) == (datetime(2026, 2, 15), 4)  # 2099: a typo
    assert _by(store_settings, source, data, 2, "feb again").note == "no new file"
    write_csv(data / "drop/户籍人口.csv", header, ["P1,张三,1,正常,不详"])
    (bad,) = extract_all(store_settings, _contracts(source), end=END, run_id="r", data_root=data)
    assert bad.error == (
        f"source registry: {data / 'drop/户籍人口.csv'} has no date in its column '登记日期', "
        f"which `location.date` of {MAPPING} names as the file's date"
    )
