"""Issue 14, no silent loss: the share stage and the store after a kill, a restore, a bad key.

Run as a script (`_worker`), this file is the share task that the kill tests kill at a gap.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from projects import DEMO_DEPLOYMENT, make_project

from onetable.cli import EXIT_WARNINGS, main
from onetable.pipeline import STAGES, RunContext
from onetable.quality.pii_scan import scan_personal_data
from onetable.schemas.contracts import load_contracts
from onetable.schemas.rules import id_check_char
from onetable.schemas.sharing import SharingEntry, load_sharing_list
from onetable.warehouse import sharing, store
from onetable.warehouse.ledger import catalog_files, cleanup, current_snapshot, transaction
from onetable.warehouse.sharing import (
    ANCHOR_FILE,
    PseudonymKeyError,
    check_pseudonym_key,
    read_anchor,
    verify_anchor,
)
from onetable.warehouse.store import StoreSettings, open_store

STORE_WORKER = Path(__file__).resolve().parents[1] / "store_worker.py"
TESTS = Path(__file__).parents[1]  # the worker imports the tests' helpers from there
PERIOD, RUN, ENTRY = "2026-01", "2026-01_run", "civil_affairs_elderly"
EXTRACT = f"civil_affairs/{ENTRY}/{PERIOD}"  # the entry's folder under <out>/share
PSEUDONYM_KEY = "pseudonym-key-of-the-test-county-0123456789"


def _id(body17: str) -> str:
    return body17 + id_check_char(body17)


# person_id, id_number, name, birth_date: all in the county, alive and 60 or older in January
PERSONS = [
    ("P001", _id("32032419500315001"), "张三丰", date(1950, 3, 15)),
    ("P002", _id("32032419460131002"), "李秀英", date(1946, 1, 31)),
    ("P003", None, "孙淑珍", date(1960, 7, 7)),
]
IDS = {p[1]: "id_number" for p in PERSONS if p[1]}


@pytest.fixture
def published(store_settings: StoreSettings, tmp_path: Path) -> dict[str, str]:
    """A store in which run RUN published marts.person_period, and the environment of its tasks."""
    with open_store(store_settings) as con, transaction(con, run_id=RUN, stage="publish"):
        con.execute(
            "CREATE TABLE marts.person_period (period VARCHAR, person_id VARCHAR, "
            "id_number VARCHAR, name VARCHAR, sex VARCHAR, birth_date DATE, "
            "village_code VARCHAR, status VARCHAR)"
        )
        con.executemany(
            "INSERT INTO marts.person_period VALUES (?, ?, ?, ?, '女', ?, '320324100201', '正常')",
            [[PERIOD, *p] for p in PERSONS],
        )
    return {
        "ONETABLE_STATE_DIR": str(store_settings.state_dir),
        "ONETABLE_STORE_KEY": store_settings.key,
        "ONETABLE_PROJECT": str(make_project(tmp_path / "project")),
        "ONETABLE_OUT_DIR": str(tmp_path / "out"),
        "ONETABLE_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "ONETABLE_LOCK_TIMEOUT": "60",
    }


def _use(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- 1, 2: a share killed at any gap --------------------------------------------------------------


def _worker(gap: str, ready: str) -> None:
    """The share task, stopped at `gap` (it touches `ready` and waits to be killed)."""

    def stop(*_args: object) -> None:
        Path(ready).touch()
        time.sleep(600)

    if gap == "before-commit":  # staged and audited, the transaction still open
        export = sharing.export_entry

        def export_then_stop(*args, **kwargs):
            made = export(*args, **kwargs)
            stop()
            return made

        sharing.export_entry = export_then_stop
    elif gap == "after-commit":  # the audit row committed, nothing moved into place yet
        sharing._deliver = stop
    elif gap == "mid-xlsx":  # the sheet's rows in the zip and in openpyxl's temporary file
        from openpyxl.worksheet._writer import WorksheetWriter

        WorksheetWriter.cleanup = stop
    STAGES["share"](RunContext.create(PERIOD, RUN))
    raise SystemExit(f"the share ended without reaching the gap {gap}")


def _kill_share_at(gap: str, environ: dict[str, str], tmp_path: Path) -> Path:
    """Run the share task in its own process, SIGKILL it at `gap`; returns its temp folder."""
    ready, temp = tmp_path / "ready", tmp_path / "worker-tmp"
    temp.mkdir()
    worker = subprocess.Popen(
        [sys.executable, __file__, gap, str(ready)],
        env={**os.environ, **environ, "TMPDIR": str(temp), "PYTHONPATH": str(TESTS)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    while not ready.exists():
        assert worker.poll() is None, worker.communicate()[1]
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    return temp


@pytest.mark.parametrize("then", ["rerun", "cleanup"])
@pytest.mark.parametrize("gap", ["before-commit", "after-commit", "mid-xlsx"])
def test_a_share_killed_at_any_gap_is_settled(published, gap, then, tmp_path, monkeypatch):
    """Killed before the commit, after it, or in the middle of the XLSX; then the share task run
    again (an Airflow retry; `onetable run` reaches the same stage) or `onetable store cleanup`:
    the anchor file and the audit log agree, and what the consumer's folder holds is a whole
    extract with its manifest, both matching a committed audit row."""
    temp = _kill_share_at(gap, published, tmp_path)
    out = Path(published["ONETABLE_OUT_DIR"]) / "share"
    if then == "rerun":
        STAGES["share"](RunContext.create(PERIOD, RUN, published))
    else:
        _use(published, monkeypatch)
        assert main(["store", "cleanup"]) == 0
    settings = StoreSettings.from_env(published)
    with open_store(settings) as con:
        verify_anchor(con, out)
        rows = con.execute(
            "SELECT seq, hash, detail FROM audit.log WHERE action = 'share'"
        ).fetchall()
    assert set(read_anchor(out)) == {(seq, digest) for seq, digest, _ in rows}
    assert not list(temp.iterdir())  # nothing left in the killed process's temp folder
    assert scan_personal_data([out], IDS) == []
    if then == "cleanup" and gap != "after-commit":  # never committed: nothing delivered
        assert rows == [] and _files(out) <= {ANCHOR_FILE}
        return
    # Only the extract and its manifest: no temporary file, no staging folder.
    assert _files(out) == {ANCHOR_FILE, f"{EXTRACT}/data.xlsx", f"{EXTRACT}/manifest.json"}
    manifest = json.loads((out / EXTRACT / "manifest.json").read_text(encoding="utf-8"))
    seq, digest, detail = max(rows)  # the newest committed share is the one delivered
    detail = json.loads(detail)
    assert manifest["audit"] == {"seq": seq, "hash": digest}
    assert manifest["sha256"] == detail["sha256"] == _sha256(out / EXTRACT / "data.xlsx")
    assert detail["file"] == f"{EXTRACT}/data.xlsx"
    book = openpyxl.load_workbook(out / EXTRACT / "data.xlsx", read_only=True)
    ids = [r[0] for r in book["data"].iter_rows(min_row=2, values_only=True)]
    assert ids == [p[0] for p in PERSONS] and manifest["rows"] == detail["rows"] == len(PERSONS)
    assert len(rows) == (2 if (gap, then) == ("after-commit", "rerun") else 1)


# --- 3: the pseudonym key, checked before the run starts ----------------------------------------


def _bad_keys(store_key: str) -> list[tuple[str | None, str]]:
    return [
        (None, "ONETABLE_PSEUDONYM_KEY is not set"),
        ("a-short-secret", "ONETABLE_PSEUDONYM_KEY must be at least 32 bytes"),
        (store_key, "ONETABLE_PSEUDONYM_KEY is the store key"),
    ]


@pytest.mark.parametrize("case", [0, 1, 2], ids=["missing", "short", "store key"])
def test_a_bad_pseudonym_key_stops_the_run_before_any_stage(published, case, monkeypatch, capsys):
    """`onetable run` refuses it with exit 2 and a message naming the variable, not the key, and
    changes nothing: no stage ran, no snapshot, nothing in the out folder."""
    key, message = _bad_keys(published["ONETABLE_STORE_KEY"])[case]
    _use(published, monkeypatch)
    if key is None:
        monkeypatch.delenv("ONETABLE_PSEUDONYM_KEY")
    else:
        monkeypatch.setenv("ONETABLE_PSEUDONYM_KEY", key)
    settings = StoreSettings.from_env(published)
    with open_store(settings) as con:
        before = current_snapshot(con)
    assert main(["run", "--period", PERIOD]) == 2
    printed = " ".join(capsys.readouterr().out.split())
    assert printed.startswith(f"error: {message}")  # first thing: no stage ran
    assert settings.key not in printed and (key is None or key not in printed)
    with open_store(settings) as con:
        assert current_snapshot(con) == before
    assert not Path(published["ONETABLE_OUT_DIR"]).exists()


def test_the_share_stage_refuses_a_bad_pseudonym_key_too(published):
    """As a DAG task runs it: the same check, before the store is opened."""
    for key, message in _bad_keys(published["ONETABLE_STORE_KEY"]):
        environ = {k: v for k, v in published.items() if k != "ONETABLE_PSEUDONYM_KEY"}
        if key is not None:
            environ["ONETABLE_PSEUDONYM_KEY"] = key
        with pytest.raises(PseudonymKeyError, match=message) as refused:
            STAGES["share"](RunContext.create(PERIOD, RUN, environ))
        assert published["ONETABLE_STORE_KEY"] not in str(refused.value)
    assert not Path(published["ONETABLE_OUT_DIR"]).exists()
    with open_store(StoreSettings.from_env(published)) as con:
        assert con.execute("SELECT count(*) FROM audit.log").fetchone() == (0,)


def test_a_pseudonym_key_is_needed_only_when_a_due_entry_pseudonymises():
    contracts = load_contracts()
    shipped = load_sharing_list(DEMO_DEPLOYMENT / "sharing", contracts)[ENTRY]

    def only(**changes) -> dict[str, SharingEntry]:
        entry = SharingEntry.model_validate({**shipped.model_dump(by_alias=True), **changes})
        return {entry.id: entry}

    quarterly = only(schedule="quarterly")
    plain = only(cleared_level="sensitive_personal", masking={})  # nothing above its clearance
    store_key = "s" * 64
    assert check_pseudonym_key(contracts, "2026-01", None, store_key, quarterly) is None
    assert check_pseudonym_key(contracts, "2026-01", "", store_key, plain) is None
    with pytest.raises(PseudonymKeyError, match=f"{ENTRY}, due for 2026-03"):
        check_pseudonym_key(contracts, "2026-03", None, store_key, quarterly)
    with pytest.raises(PseudonymKeyError, match="at least 32 bytes"):  # a key set is checked
        check_pseudonym_key(contracts, "2026-01", "short", store_key, plain)
    assert check_pseudonym_key(contracts, "2026-01", PSEUDONYM_KEY, store_key, quarterly) == (
        PSEUDONYM_KEY.encode()
    )


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
    _use(
        {
            "ONETABLE_STATE_DIR": str(store_settings.state_dir),
            "ONETABLE_STORE_KEY": store_settings.key,
            "ONETABLE_PROJECT": str(make_project(tmp_path / "project")),
            "ONETABLE_OUT_DIR": str(tmp_path / "out"),
            "ONETABLE_PSEUDONYM_KEY": PSEUDONYM_KEY,
        },
        monkeypatch,
    )
    # published, with the warning that its extract is empty (no source: no person)
    assert main(["run", "--period", PERIOD]) == EXIT_WARNINGS
    assert not orphans & set(store_settings.data_dir.rglob("*.parquet"))
    assert [{Path(p) for p in removed} for removed in looked] == [orphans]
    with open_store(store_settings) as con:
        assert {p.resolve() for p in store_settings.data_dir.rglob("*.parquet")} == catalog_files(
            con
        )
        assert con.execute("SELECT count(*), min(s) FROM landing.big").fetchone() == (1000, "good")


if __name__ == "__main__":
    _worker(*sys.argv[1:])
