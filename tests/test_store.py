"""The store: encryption, offline extensions, the process lock, snapshots, bookkeeping, cleanup."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from onetable.quality.pii_scan import scan_personal_data
from onetable.schemas.rules import id_check_char
from onetable.warehouse.ledger import (
    AccountingError,
    QuarantineRecord,
    accounting_summary,
    catalog_files,
    cleanup,
    current_snapshot,
    run_snapshots,
    transaction,
    verify_audit_chain,
    watermark,
)
from onetable.warehouse.store import (
    StoreKeyError,
    StoreSettings,
    new_key,
    open_store,
)

WORKER = Path(__file__).parent / "store_worker.py"
BODY = "32032419850307123"
ID_NUMBER = BODY + id_check_char(BODY)
PHONE = "13912345678"


def _run_worker(settings: StoreSettings, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(settings.state_dir), settings.key, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
    )  # fmt: skip


def _write_personal_rows(settings: StoreSettings) -> None:
    with open_store(settings) as con, transaction(con, run_id="r1", stage="extract") as tx:
        con.execute("CREATE TABLE landing.persons (id_number VARCHAR, phone VARCHAR, n INTEGER)")
        con.execute("INSERT INTO landing.persons VALUES (?, ?, 1)", [ID_NUMBER, PHONE])
        tx.quarantine(
            [
                QuarantineRecord(
                    source="health",
                    rule_id="P001",
                    reason="校验位错误",
                    raw=f"{ID_NUMBER},{PHONE}",
                    location="h.csv",
                    row_number=2,
                )
            ]
        )
        tx.account("health", read=2, kept=1, quarantined=1)


def test_nothing_personal_is_readable_on_disk(store_settings):
    _write_personal_rows(store_settings)
    # A control: the scan does find the same values when they are written plainly.
    plain = store_settings.state_dir.parent / "plain.parquet"
    duckdb.sql(f"COPY (SELECT '{ID_NUMBER}' AS a, '{PHONE}' AS b) TO '{plain}'")
    needles = {ID_NUMBER: "id_number", PHONE: "phone"}
    assert len(scan_personal_data([plain], needles)) == 2
    files = [p for p in store_settings.state_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    assert scan_personal_data([store_settings.state_dir], needles) == []


def test_data_reads_back_with_the_key(store_settings):
    _write_personal_rows(store_settings)
    with open_store(store_settings) as con:
        assert con.execute("SELECT id_number, phone FROM landing.persons").fetchall() == [
            (ID_NUMBER, PHONE)
        ]
        assert con.execute("SELECT raw FROM quarantine.rows").fetchone()[0].startswith(ID_NUMBER)
        assert con.execute("SELECT current_setting('temp_file_encryption')").fetchone()[0] is True
        temp = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        assert Path(temp) == store_settings.temp_dir


def test_missing_and_wrong_keys_are_refused(store_settings):
    _write_personal_rows(store_settings)
    for key, message in [
        ("", "ONETABLE_STORE_KEY is not set"),
        ("short", "at least 32 characters"),
        ("x' ); DROP TABLE y; --" + "a" * 32, "at least 32 characters"),
        (new_key(), "not the key this store was made with"),
    ]:
        wrong = StoreSettings(state_dir=store_settings.state_dir, key=key)
        with pytest.raises(StoreKeyError, match=message) as info, open_store(wrong):
            pass
        assert store_settings.key not in str(info.value)


def test_settings_from_env_never_show_the_key(tmp_path):
    settings = StoreSettings.from_env(
        {"ONETABLE_STATE_DIR": str(tmp_path), "ONETABLE_STORE_KEY": "k" * 64,
         "ONETABLE_LOCK_TIMEOUT": "5"}
    )  # fmt: skip
    assert settings.lock_timeout_s == 5 and settings.state_dir == tmp_path.resolve()
    assert "k" * 64 not in repr(settings)


def test_extensions_install_offline_from_an_empty_directory(tmp_path):
    settings = StoreSettings(state_dir=tmp_path / "state", key=new_key())
    assert not settings.extension_dir.exists()
    with open_store(settings) as con:
        loaded = {
            name
            for (name,) in con.execute(
                "SELECT extension_name FROM duckdb_extensions() WHERE loaded"
            ).fetchall()
        }
        assert {"ducklake", "httpfs"} <= loaded
        settings_row = con.execute(
            "SELECT current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions')"
        ).fetchone()
        assert settings_row == (False, False)
    installed = {p.name for p in settings.extension_dir.rglob("*.duckdb_extension")}
    assert {"ducklake.duckdb_extension", "httpfs.duckdb_extension"} <= installed


def test_two_processes_lose_nothing(store_settings):
    with open_store(store_settings):
        pass  # create the store before the race
    workers = [_run_worker(store_settings, "insert", "15", tag) for tag in ("a", "b")]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    with open_store(store_settings) as con:
        rows = con.execute(
            "SELECT tag, count(*), count(DISTINCT i) FROM landing.events GROUP BY tag ORDER BY tag"
        ).fetchall()
        assert rows == [("a", 15, 15), ("b", 15, 15)]
        assert len([r for r in run_snapshots(con) if r["stage"] == "test"]) == 30


def test_a_busy_store_fails_with_a_clear_message(store_settings, tmp_path):
    ready = tmp_path / "ready"
    holder = _run_worker(store_settings, "hold", "30", str(ready))
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and holder.poll() is None, holder.stderr.read()
            time.sleep(0.05)
        waiter = _run_worker(store_settings, "hold", "0", str(tmp_path / "never"))
        out, _ = waiter.communicate(timeout=60)
        assert waiter.returncode == 3
        assert "is busy" in out and f"pid {holder.pid}" in out and "ONETABLE_LOCK_TIMEOUT" in out
    finally:
        holder.kill()
        holder.wait()


def test_snapshots_time_travel_and_the_run_map(store_settings):
    with open_store(store_settings) as con:
        with transaction(con, run_id="run-1", stage="publish"):
            con.execute("CREATE TABLE core.t AS SELECT 1 AS v")
        first = current_snapshot(con)
        with transaction(con, run_id="run-2", stage="publish"):
            con.execute("INSERT INTO core.t VALUES (2), (3)")
        with transaction(con, run_id="run-3", stage="publish"):
            con.execute("DELETE FROM core.t WHERE v = 1")
        assert con.execute("SELECT sum(v) FROM core.t").fetchone()[0] == 5
        assert con.execute(f"SELECT sum(v) FROM core.t AT (VERSION => {first})").fetchone()[0] == 1
        runs = run_snapshots(con)
        assert [r["run_id"] for r in runs] == ["init", "run-1", "run-2", "run-3"]
        assert run_snapshots(con, "run-1")[0]["snapshot"] == first


def test_a_failed_transaction_leaves_no_trace(store_settings):
    with open_store(store_settings) as con:
        before = current_snapshot(con)
        with (
            pytest.raises(
                AccountingError,
                match="3 rows read but 1 kept \\+ 1 quarantined \\+ 0 unchanged = 2",
            ),
            transaction(con, run_id="bad", stage="extract") as tx,
        ):
            con.execute("CREATE TABLE landing.x AS SELECT 1 AS v")
            tx.commit_window("health", None, datetime(2026, 2, 1))
            tx.account("health", read=3, kept=1, quarantined=1)
        assert current_snapshot(con) == before
        assert watermark(con, "health") is None
        assert (
            con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'x'").fetchone()[0]
            == 0
        )


def test_windows_watermarks_lineage_and_accounting(store_settings):
    jan, feb, mar = datetime(2026, 1, 1), datetime(2026, 2, 1), datetime(2026, 3, 1)
    with open_store(store_settings) as con:
        with transaction(con, run_id="r1", stage="extract") as tx:
            assert tx.commit_window("registry", jan, feb) == 1
            tx.account("registry", read=10, kept=9, quarantined=1, window_start=jan, window_end=feb)
        with transaction(con, run_id="r2", stage="extract") as tx:
            assert tx.commit_window("registry", feb, mar) == 1
            assert tx.commit_window("registry", jan, feb) == 2  # forced re-extraction
            tx.record_lineage("registry", jan, feb, 2)
        assert watermark(con, "registry") == mar
        assert watermark(con, "health") is None
        assert accounting_summary(con, "r1") == [
            {
                "stage": "extract",
                "source": "registry",
                "read": 10,
                "kept": 9,
                "quarantined": 1,
                "unchanged": 0,
            }
        ]
        assert con.execute("SELECT source, version FROM meta.lineage").fetchall() == [
            ("registry", 2)
        ]


def test_audit_chain_detects_changes(store_settings):
    with open_store(store_settings) as con:
        for i in range(3):
            with transaction(con, run_id=f"r{i}", stage="share") as tx:
                _, head = tx.audit("extract", "health→civil", {"rows": i, "file": "x.parquet"})
        assert verify_audit_chain(con) == (3, head)
        con.execute("UPDATE audit.log SET detail = '{\"rows\": 99}' WHERE seq = 2")
        with pytest.raises(ValueError, match="sequence 2: the row was changed"):
            verify_audit_chain(con)
        con.execute("DELETE FROM audit.log WHERE seq = 2")
        with pytest.raises(ValueError, match="sequence 3: a row is missing"):
            verify_audit_chain(con)


def test_kill_during_a_write_then_cleanup(store_settings, tmp_path):
    with open_store(store_settings) as con, transaction(con, run_id="good", stage="extract"):
        con.execute("CREATE TABLE landing.big (i BIGINT, s VARCHAR)")
        con.execute("INSERT INTO landing.big SELECT i, 'good' FROM range(1000) t(i)")
    ready = tmp_path / "ready"
    writer = _run_worker(store_settings, "hang-in-write", str(ready), start_new_session=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert time.monotonic() < deadline and writer.poll() is None, writer.stderr.read()
        time.sleep(0.05)
    os.killpg(writer.pid, signal.SIGKILL)
    writer.wait()
    on_disk = {p.resolve() for p in store_settings.data_dir.rglob("*.parquet")}
    with open_store(store_settings) as con:  # the first open after a kill removes what it left
        known = catalog_files(con)
        assert on_disk - known, "the killed writer should have left files the catalog does not know"
        assert {p.resolve() for p in store_settings.data_dir.rglob("*.parquet")} == known
        assert con.execute("SELECT count(*), min(s), max(s) FROM landing.big").fetchone() == (
            1000,
            "good",
            "good",
        )
    # `onetable store cleanup` finds what no open looks for: here a stray copy of a data file.
    stray = store_settings.data_dir / "landing" / "big" / "stray.parquet"
    shutil.copy(next(iter(known)), stray)
    with open_store(store_settings) as con:
        assert [Path(p) for p in cleanup(con)] == [stray]
        assert {p.resolve() for p in store_settings.data_dir.rglob("*.parquet")} == catalog_files(
            con
        )
