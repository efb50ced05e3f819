"""Deliveries that cannot wipe a source: a snapshot that would end all of the last snapshot's
records, or more than its mapping's `max_shrink` share, is held and not landed, until a person
accepts it; the period then runs on the last good snapshot, with the source stale."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from connector_helpers import make_source, write_csv

from onetable.connectors.extract import extract_all, extract_source
from onetable.connectors.landing import SnapshotShrinkError
from onetable.linkage.staging import state_sql
from onetable.warehouse.ledger import watermark
from onetable.warehouse.periods import Period
from onetable.warehouse.store import open_store

HEADER = "人员编号,姓名,身份证号,状态"
MAPPING = Path("sources/rental.yaml")
JAN = [f"P{i},张三,{i},正常" for i in range(10)]


def _source(kind: str = "csv", **read):
    path = {"csv": "drop/*.csv", "jsonl": "drop/*.jsonl"}[kind]
    location = {"kind": "file", "path": path, "format": kind}
    return make_source("rental", location, read={"mode": "snapshot", **read})


def _extract(settings, source, data, month: int, **kw):
    end = datetime(2026, month + 1, 1)
    return extract_source(
        settings, source, MAPPING, end=end, run_id=f"r{month}", data_root=data, **kw
    )


def _records(settings, period: str) -> list[str]:
    """The records the period's staging reads: the state of the source as of its end."""
    source = _source()
    with open_store(settings) as con:
        rows = con.execute(
            f"SELECT _record_key FROM ({state_sql(source, Period.parse(period))}) "
            "WHERE _op <> 'delete' ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def test_a_header_only_file_is_held_and_the_period_keeps_the_last_snapshot(
    store_settings, tmp_path
):
    data = tmp_path / "data"
    write_csv(data / "drop/出租_20260131.csv", HEADER, JAN)
    write_csv(data / "drop/出租_20260228.csv", HEADER, [])
    source = _source()
    assert _extract(store_settings, source, data, 1).manifests[0].landed == 10
    (held,) = extract_all_for(store_settings, source, data, 2)
    assert held.error == (
        "source rental: a delivery with no rows, the snapshot as of 2026-02-28, would end 10 of "
        "the 10 records of the last snapshot (100%; the mapping allows 20%), so it is held, not "
        "landed, and the period runs on the last good snapshot. If the records really ended, land "
        "it with `onetable run --accept-shrink rental`"
    )
    with open_store(store_settings) as con:
        assert watermark(con, "rental") == datetime(2026, 2, 1)
    assert len(_records(store_settings, "2026-02")) == 10  # February runs on January's snapshot
    again = _extract(store_settings, source, data, 2, accept_shrink=True).manifests[0]
    assert (again.landed, again.tombstones) == (0, 10)
    assert _records(store_settings, "2026-02") == []


def extract_all_for(settings, source, data, month: int):
    """extract_all over this one source, as a run does: the error goes to the source's outcome."""
    contracts = SimpleNamespace(sources={source.source: source}, source_file=lambda _: MAPPING)
    end = datetime(2026, month + 1, 1)
    return extract_all(settings, contracts, end=end, run_id=f"r{month}", data_root=data)


def test_an_empty_json_lines_file_is_held(store_settings, tmp_path):
    data = tmp_path / "data"
    drop = data / "drop"
    drop.mkdir(parents=True)
    rows = [f'{{"人员编号": "P{i}", "姓名": "张三", "状态": "正常"}}' for i in range(5)]
    (drop / "出租_20260131.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (drop / "出租_20260228.jsonl").write_bytes(b"")
    source = _source("jsonl")
    _extract(store_settings, source, data, 1)
    with pytest.raises(SnapshotShrinkError, match="would end 5 of the 5 records"):
        _extract(store_settings, source, data, 2)


@pytest.mark.parametrize("ended", [2, 3])
def test_a_snapshot_may_end_up_to_its_max_shrink(store_settings, tmp_path, ended):
    data = tmp_path / "data"
    write_csv(data / "drop/出租_20260131.csv", HEADER, JAN)
    write_csv(data / "drop/出租_20260228.csv", HEADER, JAN[ended:])
    _extract(store_settings, _source(), data, 1)
    if ended / len(JAN) > 0.2:
        with pytest.raises(SnapshotShrinkError, match=r"would end 3 of the 10 records .* \(30%"):
            _extract(store_settings, _source(), data, 2)
        manifest = _extract(store_settings, _source(max_shrink=1), data, 2).manifests[
            0
        ]  # guard off
    else:
        manifest = _extract(store_settings, _source(), data, 2).manifests[0]
    assert manifest.tombstones == ended


def _quarantined(settings) -> list[tuple]:
    with open_store(settings) as con:
        return con.execute(
            "SELECT row_number, rule_id, reason FROM quarantine.rows ORDER BY row_number"
        ).fetchall()


def test_a_key_twice_in_one_delivery_is_quarantined_not_dropped(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "drop/出租_20260131.csv", HEADER,
              ["P1,张三,1,正常", "P2,李四,2,正常", "P1,张三,1,迁出", "P2,李四,2,正常", "P3,王五,3,正常"])  # fmt: skip
    manifest = _extract(store_settings, _source(), data, 1).manifests[0]
    assert (manifest.read, manifest.landed, manifest.quarantined) == (5, 2, 3)
    assert _quarantined(store_settings) == [
        (2, "C006", "the record key is in this delivery 2 times with different values, so no copy "
                    "is taken: correct the export, or name record_key.latest_by"),
        (4, "C006", "the record key is in this delivery 2 times with different values, so no copy "
                    "is taken: correct the export, or name record_key.latest_by"),
        (5, "C006", "an exact copy of row 3 of this delivery, which was taken"),
    ]  # fmt: skip
    assert _records(store_settings, "2026-01") == ["P2", "P3"]
    with open_store(store_settings) as con:
        (kept,) = con.execute("SELECT sum(rows_kept) FROM meta.accounting").fetchone()
    assert kept == 2


def test_a_key_twice_is_resolved_by_the_mappings_latest_by(store_settings, tmp_path):
    data = tmp_path / "data"
    write_csv(data / "drop/出租_20260131.csv", "人员编号,姓名,状态,更新时间",
              ["P1,张三,迁出,2026-01-20", "P1,张三,正常,2026-01-05", "P2,李四,正常,2026-01-07"])  # fmt: skip
    source = make_source(
        "rental", {"kind": "file", "path": "drop/*.csv", "format": "csv"},
        read={"mode": "snapshot"}, record_key={"column": "人员编号", "latest_by": "更新时间"},
    )  # fmt: skip
    manifest = _extract(store_settings, source, data, 1).manifests[0]
    assert (manifest.read, manifest.landed, manifest.quarantined) == (3, 2, 1)
    assert _quarantined(store_settings) == [
        (
            3,
            "C006",
            "the record key is in this delivery 2 times; row 2, latest by 更新时间, was taken",
        )
    ]
    with open_store(store_settings) as con:
        status = con.execute("SELECT 状态 FROM landing.rental WHERE _record_key = 'P1'").fetchall()
    assert status == [("迁出",)]
