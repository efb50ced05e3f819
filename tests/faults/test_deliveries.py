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
