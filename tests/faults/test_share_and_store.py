"""Issue 14, no silent loss: the share stage and the store after a kill, a restore, a bad key."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from onetable.cli import main
from onetable.schemas.rules import id_check_char
from onetable.warehouse import store
from onetable.warehouse.ledger import catalog_files, cleanup, transaction
from onetable.warehouse.store import StoreSettings, open_store

STORE_WORKER = Path(__file__).resolve().parents[1] / "store_worker.py"
PERIOD = "2026-01"
PSEUDONYM_KEY = "pseudonym-key-of-the-test-county-0123456789"


def _id(body17: str) -> str:
    return body17 + id_check_char(body17)


# person_id, id_number, name, birth_date: all in the county, alive and 60 or older in January
PERSONS = [
    ("P001", _id("32032419500315001"), "张三丰", date(1950, 3, 15)),
    ("P002", _id("32032419460131002"), "李秀英", date(1946, 1, 31)),
    ("P003", None, "孙淑珍", date(1960, 7, 7)),
]


def _use(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- 4: a state folder restored at another path ---------------------------------------------------


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in folder.rglob("*") if p.is_file()}


def test_a_state_folder_restored_elsewhere_opens_reads_and_writes(store_settings, tmp_path):
    """docs/architecture.md, "Backup and restore": the copy is a store of its own, the original
    does not change, not even by a cleanup of the copy."""
    with open_store(store_settings) as con, transaction(con, run_id="r1", stage="extract"):
        con.execute("CREATE TABLE landing.persons (id_number VARCHAR, n INTEGER)")
        con.execute("INSERT INTO landing.persons VALUES (?, 1)", [PERSONS[0][1]])
    stray = store_settings.data_dir / "landing" / "persons" / "stray.parquet"
    stray.write_bytes(b"not referenced")  # for the copy's cleanup to find
    backup = tmp_path / "elsewhere" / "state"
    shutil.copytree(store_settings.state_dir, backup)
    original = _tree(store_settings.state_dir)
    restored = StoreSettings(state_dir=backup, key=store_settings.key, lock_timeout_s=60)
    with open_store(restored) as con:
        assert con.execute("SELECT * FROM landing.persons").fetchall() == [(PERSONS[0][1], 1)]
        with transaction(con, run_id="r2", stage="extract"):
            con.execute("INSERT INTO landing.persons VALUES (?, 2)", [PERSONS[1][1]])
        assert all(p.is_relative_to(backup) for p in catalog_files(con))
        assert cleanup(con) == [str(backup / "data" / "landing" / "persons" / "stray.parquet")]
    with open_store(restored) as con:
        assert con.execute("SELECT n FROM landing.persons ORDER BY n").fetchall() == [(1,), (2,)]
    assert _tree(store_settings.state_dir) == original
    with open_store(store_settings) as con:
        assert con.execute("SELECT n FROM landing.persons").fetchall() == [(1,)]


# --- 5: orphans of a killed writer, removed by the next run ---------------------------------------


def test_the_next_run_removes_what_a_killed_writer_left(store_settings, tmp_path, monkeypatch):
    """Only the first open after the kill looks for orphans: the run's other opens cost nothing."""
    with open_store(store_settings) as con, transaction(con, run_id="good", stage="extract"):
        con.execute("CREATE TABLE landing.big (i BIGINT, s VARCHAR)")
        con.execute("INSERT INTO landing.big SELECT i, 'good' FROM range(1000) t(i)")
    before = set(store_settings.data_dir.rglob("*.parquet"))
    ready = tmp_path / "ready"
    writer = subprocess.Popen(
        [sys.executable, str(STORE_WORKER), str(store_settings.state_dir), store_settings.key,
         "hang-in-write", str(ready)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    while not ready.exists():
        assert writer.poll() is None, writer.communicate()[1]
        time.sleep(0.05)
    os.killpg(writer.pid, signal.SIGKILL)
    writer.wait()
    orphans = set(store_settings.data_dir.rglob("*.parquet")) - before
    assert orphans, "the killed writer should have left data files"

    looked = []
    delete_orphans = store.delete_orphans
    monkeypatch.setattr(store, "delete_orphans", lambda con: looked.append(delete_orphans(con)))
    (tmp_path / "sources").mkdir()
    _use(
        {
            "ONETABLE_STATE_DIR": str(store_settings.state_dir),
            "ONETABLE_STORE_KEY": store_settings.key,
            "ONETABLE_SOURCES_DIR": str(tmp_path / "sources"),
            "ONETABLE_OUT_DIR": str(tmp_path / "out"),
            "ONETABLE_PSEUDONYM_KEY": PSEUDONYM_KEY,
        },
        monkeypatch,
    )
    assert main(["run", "--period", PERIOD]) == 0
    assert not orphans & set(store_settings.data_dir.rglob("*.parquet"))
    assert [{Path(p) for p in removed} for removed in looked] == [orphans]
    with open_store(store_settings) as con:
        assert {p.resolve() for p in store_settings.data_dir.rglob("*.parquet")} == catalog_files(
            con
        )
        assert con.execute("SELECT count(*), min(s) FROM landing.big").fetchone() == (1000, "good")
