"""Issue 14, no silent loss: the share stage and the store after a kill, a restore, a bad key."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date
from pathlib import Path

from onetable.schemas.rules import id_check_char
from onetable.warehouse.ledger import catalog_files, cleanup, transaction
from onetable.warehouse.store import StoreSettings, open_store


def _id(body17: str) -> str:
    return body17 + id_check_char(body17)


# person_id, id_number, name, birth_date: all in the county, alive and 60 or older in January
PERSONS = [
    ("P001", _id("32032419500315001"), "张三丰", date(1950, 3, 15)),
    ("P002", _id("32032419460131002"), "李秀英", date(1946, 1, 31)),
    ("P003", None, "孙淑珍", date(1960, 7, 7)),
]


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
