"""Sharing-list entries as contracts, and masked extracts with manifests and the audit chain."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import shutil
from datetime import date
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
import pytest
from projects import DEMO_DEPLOYMENT

from onetable.quality.pii_scan import scan_personal_data
from onetable.schemas.contracts import ContractError, load_contracts
from onetable.schemas.rules import id_check_char
from onetable.schemas.sharing import (
    SharingEntry,
    dataset_level,
    load_sharing_list,
    period_end,
    plan_columns,
)
from onetable.warehouse.ledger import current_snapshot, transaction, verify_audit_chain
from onetable.warehouse.sharing import (
    ANCHOR_FILE,
    SharingError,
    _why_empty,
    export_entry,
    pseudonym,
    read_anchor,
    settle_extracts,
    verify_anchor,
)
from onetable.warehouse.store import open_store

KEY = b"k" * 16 + bytes(range(16)) + b"project-secret"
OTHER_KEY = bytes(range(32, 80))
ENTRY = "civil_affairs_elderly"
COLUMNS = ["person_id", "id_number", "name", "sex", "birth_date", "village_code"]


def _id(body17: str) -> str:
    return body17 + id_check_char(body17)


def _hmac(number: str) -> str:
    """The pseudonym docs/domain.md, "Masking", specifies (HMAC-SHA256 of the upper-cased number under KEY),
    computed here rather than by the code under test."""
    return hmac.new(KEY, number.upper().encode("utf-8"), hashlib.sha256).hexdigest()


# P008's ID number has an X check character, to see it pseudonymised as written.
X_ID = next(n for n in (_id(f"32032419361230{i:03d}") for i in range(1000)) if n[17] == "X")
# person_id, id_number, name, sex, birth_date, phone, village_code, status (period 2026-01)
PERSONS = [
    ("P001", _id("32032419500315001"), "张三丰", "男", date(1950, 3, 15), "13912345601",
     "320324100201", "正常"),  # 75: in
    ("P002", _id("32032419660131002"), "李秀英", "女", date(1966, 1, 31), "13912345602",
     "320324104203", "正常"),  # 60 on the period's last day: in
    ("P003", _id("32032419660201003"), "王建国", "男", date(1966, 2, 1), "13912345603",
     "320324100201", "正常"),  # 59 for one more day: out
    ("P004", _id("32032419400101004"), "赵桂兰", "女", date(1940, 1, 1), "13912345604",
     "320324100201", "死亡"),  # dead: out
    ("P005", _id("32031119550505005"), "钱志强", "男", date(1955, 5, 5), "13912345605",
     "320311001001", "正常"),  # another county: out of scope
    ("P006", None, "孙淑珍", "女", date(1960, 7, 7), None, "320324100201", "正常"),  # no ID: in
    ("P007", _id("32032419960606007"), "周杰", "男", date(1996, 6, 6), "13912345607",
     "320324100201", "正常"),  # 29: out
    ("P008", X_ID, "欧阳明月", "女", date(1936, 12, 30), "13912345608", "320324104203",
     "正常"),  # 89: in
]  # fmt: skip
INCLUDED = ["P001", "P002", "P006", "P008"]
IDS = {p[1]: "id_number" for p in PERSONS if p[1]}
NEEDLES = IDS | {p[5]: "phone" for p in PERSONS if p[5]} | {p[2]: "name" for p in PERSONS}
BY_ID = {p[0]: p for p in PERSONS}


@pytest.fixture(scope="module")
def contracts():
    return load_contracts()


@pytest.fixture(scope="module")
def entry() -> SharingEntry:
    return load_sharing_list(DEMO_DEPLOYMENT / "sharing", load_contracts())[ENTRY]


def _variant(entry: SharingEntry, **changes) -> SharingEntry:
    return SharingEntry.model_validate({**entry.model_dump(by_alias=True), **changes})


def _insert(con, period: str, rows) -> None:
    con.executemany(
        "INSERT INTO marts.person_period (period, person_id, id_number, name, sex, birth_date, "
        "phone, village_code, status, ethnicity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '汉族')",
        [[period, *r] for r in rows],
    )


@pytest.fixture
def store(store_settings):
    """A store with marts.person_period for 2025-12 and 2026-01; returns (settings, snapshot)."""
    with open_store(store_settings) as con, transaction(con, run_id="r1", stage="publish"):
        con.execute(
            "CREATE TABLE marts.person_period (period VARCHAR, person_id VARCHAR, "
            "id_number VARCHAR, name VARCHAR, sex VARCHAR, birth_date DATE, ethnicity VARCHAR, "
            "phone VARCHAR, residence_type VARCHAR, village_code VARCHAR, status VARCHAR)"
        )
        _insert(con, "2026-01", PERSONS)
        moved = (*PERSONS[0][:6], "320324200301", "正常")  # last month P001 lived elsewhere
        _insert(con, "2025-12", [moved])
    with open_store(store_settings) as con:
        snapshot = current_snapshot(con)
    return store_settings, snapshot


def _export(settings, entry, contracts, out_root: Path, snapshot: int, key=KEY, run_id="r2"):
    with open_store(settings) as con:
        with transaction(con, run_id=run_id, stage="share") as tx:
            made = export_entry(con, tx, entry, contracts, period="2026-01", run_id=run_id,
                                snapshot=snapshot, out_root=out_root, pseudonym_key=key)  # fmt: skip
        settle_extracts(con, out_root)  # delivered now that the audit row has committed
    return made


def _xlsx_rows(path: Path) -> list[list]:
    book = openpyxl.load_workbook(path, read_only=True)
    return [list(r) for r in book["data"].iter_rows(values_only=True)]


# --- the contract ----------------------------------------------------------------------------


def test_shipped_entry_loads_and_plans(entry, contracts):
    assert entry.sharing_type == "有条件" and entry.approval_ref and entry.conditions
    assert entry.consumer.id == "civil_affairs" and entry.columns == COLUMNS
    plans = {p.name: p for p in plan_columns(entry, contracts)}
    assert {n: p.mask for n, p in plans.items()} == {
        "person_id": "none", "id_number": "pseudonym", "name": "partial", "sex": "none",
        "birth_date": "generalize", "village_code": "none",
    }  # fmt: skip
    assert plans["id_number"].level == "sensitive_personal"
    assert plans["id_number"].level_after == "personal"
    assert dataset_level(list(plans.values()), contracts.classification).id == "personal"
    assert entry.due("2026-01") and _variant(entry, schedule="quarterly").due("2026-03")
    assert not _variant(entry, schedule="quarterly").due("2026-01")
    assert period_end("2024-02") == date(2024, 2, 29)


def test_default_masks_apply_above_the_clearance(entry, contracts):
    strict = _variant(entry, cleared_level="internal", masking={},
                      columns=[*COLUMNS, "phone", "arrival_date"])  # fmt: skip
    masks = {p.name: p.mask for p in plan_columns(strict, contracts)}
    assert masks == {
        "person_id": "none", "id_number": "pseudonym", "name": "partial", "sex": "partial",
        "birth_date": "generalize", "village_code": "none", "phone": "partial",
        "arrival_date": "generalize",
    }  # fmt: skip
    # A pseudonym over a short list of values would tell the groups apart: dropped by default.
    groups = _variant(entry, entity="group_membership", columns=["person_id", "group"],
                      cleared_level="internal", masking={}, row_scope="all", filters=[])  # fmt: skip
    assert {p.name: p.mask for p in plan_columns(groups, contracts)} == {
        "person_id": "none",
        "group": "drop",
    }


@pytest.fixture
def sharing_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "sharing"
    shutil.copytree(DEMO_DEPLOYMENT / "sharing", dest)
    return dest


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("  - village_code  #", "  - village_name\n  - village_code  #",
         "columns.5: 'village_name' is not a column of entity 'person'"),
        ("approval_ref: 睢数共享〔2026〕1号（演示）", "",
         "approval_ref: 有条件 sharing needs the approval it rests on"),
        ("  id_number: pseudonym", "  id_number: partial",
         "masking.id_number: 'partial' is weaker than 'pseudonym'"),
        ("  birth_date: generalize", "  birth_date: generalize\n  sex: pseudonym",
         "masking.sex: `pseudonym` is for identifiers"),
        ("  - {column: status, in: [正常]}", "  - {column: id_number, not_null: true}\n"
         "  - {column: status, in: [正常]}", None),
        ("cleared_level: personal", "cleared_level: secret",
         "cleared_level: 'secret' is not a level of classification.yaml"),
        ("format: xlsx", "format: xlsx\nrecipients: 3", "recipients: Extra inputs are not permitted"),
        ("row_scope: [\"320324\"]", "row_scope: [\"3203\", \"32032\"]", "row_scope: Value error, '32032' is not a division code prefix"),
        ("  - {column: birth_date, age_min: 60}", "  - {column: birth_date, age_min: 60, in: [x]}",
         "filters.0: Value error, give exactly one condition"),
        ("id: civil_affairs_elderly", "id: elderly", "id: 'elderly' must equal the file name"),
    ],
)  # fmt: skip
def test_contract_errors_name_the_file_and_key(sharing_dir, old, new, expected):
    path = sharing_dir / f"{ENTRY}.yaml"
    _edit(path, old, new)
    if expected is None:  # a shared column may be filtered on whatever its level
        assert (
            load_sharing_list(sharing_dir, load_contracts())[ENTRY].filters[1].column == "id_number"
        )
        return
    with pytest.raises(ContractError) as err:
        load_sharing_list(sharing_dir, load_contracts())
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_a_row_condition_may_not_disclose_an_unshared_column(entry, contracts):
    hidden = _variant(entry, columns=[c for c in COLUMNS if c != "id_number"],
                      masking={"name": "partial"},
                      filters=[{"column": "id_number", "not_null": True}])  # fmt: skip
    with pytest.raises(ContractError, match=r"filters\.0\.column: 'id_number' is at level"):
        plan_columns(hidden, contracts)


def test_unconditional_sharing_takes_no_conditions(sharing_dir):
    path = sharing_dir / f"{ENTRY}.yaml"
    _edit(path, "sharing_type: 有条件", "sharing_type: 无条件")
    with pytest.raises(ContractError, match="conditions: they are for 有条件 sharing"):
        load_sharing_list(sharing_dir, load_contracts())


# --- the extract -----------------------------------------------------------------------------


def test_export_shares_only_allowed_columns_and_rows_masked(store, entry, contracts, tmp_path):
    settings, snapshot = store
    out = tmp_path / "shared"
    made = _export(settings, entry, contracts, out, snapshot)

    assert made.path == out.resolve() / "civil_affairs" / ENTRY / "2026-01" / "data.xlsx"
    rows = _xlsx_rows(made.path)
    assert rows[0] == COLUMNS
    assert [r[0] for r in rows[1:]] == INCLUDED
    for person_id, id_number, name, sex, birth, village in rows[1:]:
        p = BY_ID[person_id]
        assert id_number == (_hmac(p[1]) if p[1] else None)
        assert name == p[2][0] + "*" * (len(p[2]) - 1)
        assert sex == p[3] and village == p[6]
        assert birth == f"{p[4]:%Y-%m}"
    assert rows[1][5] == "320324100201"  # this period's row, not last month's
    # The X of an ID number is pseudonymised as written; a lower-case x gives the same pseudonym.
    assert rows[4][1] == _hmac(X_ID) == pseudonym(X_ID.lower(), KEY)
    assert (
        len(rows[1][1]) == 64 and rows[1][1] != hashlib.sha256(PERSONS[0][1].encode()).hexdigest()
    )

    # Nothing raw: no ID number, phone or full name anywhere under the output folder.
    assert scan_personal_data([out], NEEDLES) == []


def test_manifest_checksum_audit_and_anchor(store, entry, contracts, tmp_path):
    settings, snapshot = store
    out = tmp_path / "shared"
    made = _export(settings, entry, contracts, out, snapshot)
    doc = json.loads(made.manifest_path.read_text(encoding="utf-8"))
    assert doc == made.document
    assert doc["sha256"] == hashlib.sha256(made.path.read_bytes()).hexdigest() == made.sha256
    assert (doc["entry"], doc["period"], doc["run_id"], doc["snapshot"], doc["rows"]) == (
        ENTRY, "2026-01", "r2", snapshot, 4)  # fmt: skip
    assert doc["consumer"]["id"] == "civil_affairs" and doc["purpose"] == entry.purpose
    assert doc["legal_basis"] == entry.legal_basis and doc["approval_ref"] == entry.approval_ref
    assert doc["format"] == "xlsx" and doc["file"] == "data.xlsx"
    assert doc["classification"]["level"] == "personal"
    columns = {c["name"]: c for c in doc["columns"]}
    assert list(columns) == COLUMNS
    assert columns["id_number"] == {
        "name": "id_number", "name_zh": "公民身份号码（18位）", "type": "string",
        "level": "sensitive_personal", "masking": "pseudonym", "level_after_masking": "personal",
    }  # fmt: skip
    assert columns["birth_date"]["masking"] == "generalize"
    assert doc["pseudonym"]["key_id"] and KEY.hex() not in json.dumps(doc)
    assert doc["filters"] == [{"column": "birth_date", "age_min": 60},
                              {"column": "status", "in": ["正常"]}]  # fmt: skip

    with open_store(settings) as con:
        assert verify_audit_chain(con) == (doc["audit"]["seq"], doc["audit"]["hash"])
        action, subject, detail = con.execute(
            "SELECT action, subject, detail FROM audit.log WHERE seq = ?", [doc["audit"]["seq"]]
        ).fetchone()
        assert verify_anchor(con, out) == (made.audit_seq, made.audit_hash)
    detail = json.loads(detail)
    assert (action, subject) == ("share", f"{ENTRY}/2026-01")
    assert (detail["rows"], detail["sha256"], detail["snapshot"]) == (4, made.sha256, snapshot)
    assert not [v for v in NEEDLES if v in json.dumps(detail, ensure_ascii=False)]
    assert read_anchor(out) == [(made.audit_seq, made.audit_hash)]
    assert (out / ANCHOR_FILE).read_text(encoding="utf-8").startswith(f"{made.audit_seq}\t")

    # A deleted last audit row leaves a consistent chain; the anchor shows it.
    with open_store(settings) as con, transaction(con, run_id="x", stage="tamper"):
        con.execute("DELETE FROM audit.log WHERE seq = ?", [made.audit_seq])
    with open_store(settings) as con:
        verify_audit_chain(con)
        with pytest.raises(ValueError, match=f"head {made.audit_seq} recorded in"):
            verify_anchor(con, out)


def test_pseudonyms_are_stable_per_key(store, entry, contracts, tmp_path):
    settings, snapshot = store
    csv_entry = _variant(entry, format="csv")
    first = _export(settings, csv_entry, contracts, tmp_path / "a", snapshot)
    again = _export(settings, csv_entry, contracts, tmp_path / "b", snapshot, run_id="r3")
    other = _export(settings, csv_entry, contracts, tmp_path / "c", snapshot, key=OTHER_KEY)
    assert again.sha256 == first.sha256  # same snapshot and key: the same bytes
    assert first.document["pseudonym"]["key_id"] != other.document["pseudonym"]["key_id"]

    def ids(made):
        with open(made.path, encoding="utf-8-sig", newline="") as f:
            return {r["person_id"]: r["id_number"] for r in csv.DictReader(f)}

    a, c = ids(first), ids(other)
    assert a == ids(again)
    assert a["P006"] == c["P006"] == ""  # no ID number, no pseudonym
    assert all(a[p] != c[p] for p in ("P001", "P002", "P008"))
    assert first.path.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8


def test_parquet_extract_and_older_snapshot(store, entry, contracts, tmp_path):
    settings, snapshot = store
    with open_store(settings) as con, transaction(con, run_id="r9", stage="publish"):
        newcomer = ("P009", None, "吴大妈", "女", date(1950, 1, 1), None, "320324100201", "正常")
        _insert(con, "2026-01", [newcomer])
    parquet = _variant(entry, format="parquet")
    made = _export(settings, parquet, contracts, tmp_path / "old", snapshot)
    table = pq.read_table(made.path)
    assert table.column_names == COLUMNS
    assert table.column("person_id").to_pylist() == INCLUDED  # the published snapshot only
    with open_store(settings) as con:
        latest = current_snapshot(con)
    made = _export(settings, parquet, contracts, tmp_path / "new", latest)
    assert pq.read_table(made.path).column("person_id").to_pylist() == [*INCLUDED, "P009"]


def test_raw_id_numbers_only_where_masking_says_none(store, entry, contracts, tmp_path):
    settings, snapshot = store
    out = tmp_path / "shared"
    _export(settings, entry, contracts, out, snapshot)
    police = _variant(
        entry, id="police_elderly", consumer={"id": "public_security", "name_zh": "县公安局",
        "tier": "县"}, cleared_level="sensitive_personal", masking={}, format="csv",
    )  # fmt: skip
    made = _export(settings, police, contracts, out, snapshot, run_id="r4")
    assert {c["masking"] for c in made.document["columns"]} == {"none"}
    assert made.document["classification"]["level"] == "sensitive_personal"
    found = scan_personal_data([out], IDS)
    assert {f.path.resolve() for f in found} == {made.path}
    assert scan_personal_data([out], IDS, allowed=[made.path.parent]) == []
    with open_store(settings) as con:
        verify_anchor(con, out)
    assert len(read_anchor(out)) == 2


def test_refusals(store, entry, contracts, tmp_path):
    settings, snapshot = store
    with pytest.raises(SharingError, match="不予共享"):
        _export(settings, _variant(entry, sharing_type="不予共享", conditions=[],
                                   approval_ref=None), contracts, tmp_path, snapshot)  # fmt: skip
    with pytest.raises(SharingError, match=r"marts\.nope does not exist"):
        _export(settings, _variant(entry, dataset="nope"), contracts, tmp_path, snapshot)
    with pytest.raises(SharingError, match="arrival_date"):
        _export(settings, _variant(entry, columns=[*COLUMNS, "arrival_date"]), contracts,
                tmp_path, snapshot)  # fmt: skip
    with pytest.raises(SharingError, match="at least 32 bytes"):
        _export(settings, entry, contracts, tmp_path, snapshot, key=b"short")
    with pytest.raises(ContractError, match=r"masking\.name: 'none' is weaker"):
        _export(settings, _variant(entry, cleared_level="internal", masking={"name": "none"}),
                contracts, tmp_path, snapshot)  # fmt: skip
    assert not list(tmp_path.rglob("data.*"))  # nothing written by a refused extract
    with open_store(settings) as con:  # and nothing logged: each refusal rolled back
        assert con.execute("SELECT count(*) FROM audit.log").fetchone() == (0,)


def test_an_empty_extract_is_written_and_says_why_in_counts(store, entry, contracts, tmp_path):
    settings, snapshot = store
    nobody = _variant(entry, filters=[{"column": "birth_date", "age_min": 100},
                                      {"column": "status", "in": ["正常"]}])  # fmt: skip
    made = _export(settings, nobody, contracts, tmp_path / "a", snapshot)
    assert made.rows == 0 and _xlsx_rows(made.path) == [COLUMNS]  # the consumer sees it empty
    assert made.why_empty == (
        "7 of the period's 8 rows are in row_scope ['320324']; of them, 0 pass birth_date "
        "age_min 100, 6 pass status in ['正常'], none passes every filter"
    )
    elsewhere = _variant(entry, row_scope=["3201"])
    made = _export(settings, elsewhere, contracts, tmp_path / "b", snapshot)
    assert made.why_empty == "row_scope ['3201'] matches none of the period's 3 villages"
    assert _export(settings, entry, contracts, tmp_path / "c", snapshot).why_empty is None
    with open_store(settings) as con:
        assert _why_empty(con, entry, period="2026-03", snapshot=snapshot) == (
            "marts.person_period holds no rows for 2026-03"
        )
