"""The second demo county (`onetable demo generate --variant 2`): 沭阳县's monthly deliveries of
undated files, the features its exports need, `deliver`, the truth of its records, and its
deployment folder's fit to the files (columns, spellings, paths).

Assertions compare counts, booleans and column names, never values: a failure must not print a
name, an ID number, a phone or an address.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import shutil
from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from onetable.demo import variant2
from onetable.demo.cli import add_parser
from onetable.demo.truth import load_truth

PERSONS = 600
MONTHS = ["2026-01", "2026-02"]
MONTH_ENDS = [date(2026, 1, 31), date(2026, 2, 28)]


def generate(folder: Path) -> Path:
    parser = argparse.ArgumentParser(prog="onetable")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["demo", "generate", "--variant", "2", "--persons", str(PERSONS),
                              "--months", "2", "--seed", "3", "--out", str(folder)])  # fmt: skip
    assert args.func(args) == 0
    return folder


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("shuyang"))


def mapping(out: Path, source: str) -> dict:
    return yaml.safe_load((out / "deployment" / "sources" / f"{source}.yaml").read_text("utf-8"))


def delivered(out: Path, month: str, source: str) -> Path:
    folder, name = variant2.FILES[source]
    return out / "sources" / "deliveries" / month / folder / name


def read_rows(path: Path) -> list[dict]:
    """A delivered file's rows as the department wrote them (values as text or typed)."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_bytes().decode("gb18030"))))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    sheet = openpyxl.load_workbook(path, read_only=True).active
    header, *rows = list(sheet.iter_rows(min_row=2, values_only=True))
    return [dict(zip(header, r, strict=True)) for r in rows]


def files_below(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_same_bytes(out: Path, tmp_path: Path) -> None:
    again = generate(tmp_path / "again")
    first, second = files_below(out), files_below(again)
    assert sorted(first) == sorted(second)
    differ = [name for name in first if first[name] != second[name]]
    assert not differ, differ


def test_no_date_in_file_names(out: Path) -> None:
    """Every month holds the same plain names; the period is only the delivery's folder."""
    deliveries = out / "sources" / "deliveries"
    assert sorted(p.name for p in deliveries.iterdir()) == MONTHS
    names = [sorted(str(p.relative_to(deliveries / m)) for p in (deliveries / m).rglob("*.*"))
             for m in MONTHS]  # fmt: skip
    assert len(names[0]) == len(variant2.FILES)
    assert names[0] == names[1]
    assert not [n for n in names[0] if re.search(r"\d{4}", n)], names[0]


def test_parquet_typed(out: Path) -> None:
    """Parquet readable by pyarrow, with real types: dates as date32, counts as int32."""
    for source, (_, name) in variant2.FILES.items():
        if not name.endswith(".parquet"):
            continue
        schema = pq.read_schema(delivered(out, MONTHS[0], source))
        assert dict(zip(schema.names, schema.types, strict=True)) == variant2.COLUMNS[source]
    assert pq.read_schema(delivered(out, MONTHS[0], "health")).field("出生日期").type == pa.date32()
    assert pq.read_schema(delivered(out, MONTHS[0], "grid_key_places")).field("人员数").type == (
        pa.int32()
    )


def record_keys_on(out: Path, source: str, day: date) -> set[str]:
    r = load_truth(out / "truth").source_records
    r = r[r["source"] == source]
    day = pd.Timestamp(day)
    shown = (r["valid_from"] <= day) & (r["valid_to"].isna() | (r["valid_to"] > day))
    return set(r.loc[shown, "record_key"])


def test_record_keys_are_the_truths(out: Path) -> None:
    """Each month's file holds exactly the records the truth says the system shows then, under
    the key the pipeline lands (`record_key: {column: …}`, trimmed)."""
    for source in variant2.FILES:
        key = mapping(out, source)["record_key"]["column"]
        for month, end in zip(MONTHS, MONTH_ENDS, strict=True):
            keys = [str(r[key]).strip() for r in read_rows(delivered(out, month, source))]
            assert len(keys) == len(set(keys)), source
            assert set(keys) == record_keys_on(out, source, end), (source, month)


def test_mappings_fit_the_files(out: Path) -> None:
    """Every mapped and required column is in the files (derived ones are made from them), and
    every code the files write is one the mapping or its code table knows."""
    groups = yaml.safe_load((out / "deployment" / "codes" / "groups.yaml").read_text("utf-8"))
    known_groups = {g for canonical, names in groups["values"].items() for g in [canonical, *names]}
    checked = 0
    for source in variant2.FILES:
        m = mapping(out, source)
        derived = set(m.get("derived", {}))
        for month in MONTHS:
            rows = read_rows(delivered(out, month, source))
            header = set(rows[0])
            assert set(m["required"]) <= header, source
            assert set(m["columns"]) - derived <= header, source
            for column, targets in m["columns"].items():
                for t in targets if isinstance(targets, list) else [targets]:
                    if t.get("convert") != "code" or column in derived:
                        continue
                    seen = {r[column] for r in rows if r[column] not in (None, "")}
                    if t.get("split"):
                        seen = {v for cell in seen for v in re.split(f"[{t['split']}]", cell)}
                    known = known_groups if t.get("table") == "groups" else set(t.get("values", {}))
                    if known:
                        assert seen <= known, (source, column, len(seen - known))
                        checked += 1
    assert checked >= 12


def test_deployment_paths_find_the_delivery(out: Path, tmp_path: Path) -> None:
    """After `deliver`, each mapping's glob below the data root finds its one file."""
    shutil.copytree(out / "sources", tmp_path / "sources")
    variant2.deliver(tmp_path, MONTHS[0])
    settings = yaml.safe_load((out / "deployment" / "onetable.yaml").read_text("utf-8"))
    assert settings["county"]["code"] == variant2.COUNTY_CODE
    data_root = (out / "deployment" / settings["data_root"]).resolve()
    assert data_root == (out / "sources").resolve()
    for source in variant2.FILES:
        found = list((tmp_path / "sources").glob(mapping(out, source)["location"]["path"]))
        assert [p.name for p in found] == [variant2.FILES[source][1]], source


def test_deliver_copies_exactly_one_month(out: Path, tmp_path: Path) -> None:
    shutil.copytree(out / "sources", tmp_path / "sources")
    months = [files_below(tmp_path / "sources" / "deliveries" / m) for m in MONTHS]
    assert months[0] != months[1]  # else the check below could not tell the months apart
    inbox = tmp_path / "sources" / "inbox"
    assert files_below(inbox) == {}
    for month, files in zip(MONTHS, months, strict=True):
        copied = variant2.deliver(tmp_path, month)
        assert len(copied) == len(files)
        assert files_below(inbox) == files
    with pytest.raises(FileNotFoundError):
        variant2.deliver(tmp_path, "2026-03")


def test_registry_export_date_and_spellings(out: Path) -> None:
    """公安's CSV carries its export date in a column; 性别 1/2, 本人, 迁出户籍 are its codes."""
    for month, end in zip(MONTHS, MONTH_ENDS, strict=True):
        rows = read_rows(delivered(out, month, "household_registry"))
        assert {r["导出日期"] for r in rows} == {end.isoformat()}
    assert {r["性别"] for r in rows} == {"1", "2"}
    assert "本人" in {r["与户主关系"] for r in rows}
    assert "户主" not in {r["与户主关系"] for r in rows}
    assert sum(bool(r["户主姓名"]) for r in rows) > 0.9 * len(rows)


def test_civil_affairs_combined_cell(out: Path) -> None:
    """One row per person, every programme in 享受待遇; 高龄津贴 exactly for the residents aged
    80 and over at the month end."""
    truth = load_truth(out / "truth")
    records = truth.source_records[truth.source_records["source"] == "civil_affairs"]
    person_of = dict(zip(records["record_key"], records["person_id"], strict=True))
    rows = read_rows(delivered(out, MONTHS[-1], "civil_affairs"))
    cells = [re.split("[、，]", r["享受待遇"]) for r in rows]
    assert sum(len(c) > 1 for c in cells) > 10
    assert {"高龄津贴", "居家养老服务", "空巢老人"} <= {v for c in cells for v in c}
    persons = [person_of[r["救助对象编号"]] for r in rows]
    assert len(persons) == len(set(persons))
    allowance = {p for p, c in zip(persons, cells, strict=True) if "高龄津贴" in c}
    end, day = MONTH_ENDS[-1], pd.Timestamp(MONTH_ENDS[-1])
    res = truth.person_residence
    here = (
        res["in_county"]
        & (res["valid_from"] <= day)
        & (res["valid_to"].isna() | (res["valid_to"] > day))
    )
    born = dict(zip(truth.persons["person_id"], truth.persons["birth_date"].dt.date, strict=True))
    old = {
        p for p in res.loc[here, "person_id"]
        if (end.year - born[p].year - ((end.month, end.day) < (born[p].month, born[p].day))) >= 80
    }  # fmt: skip
    assert old and allowance == old


def test_rental_two_addresses_two_persons(out: Path) -> None:
    truth = load_truth(out / "truth")
    records = truth.source_records[truth.source_records["source"] == "rental"]
    rows = read_rows(delivered(out, MONTHS[-1], "rental"))
    assert rows
    for pair in (("出租房屋地址", "承租人户籍地址"), ("出租人证件号码", "承租人证件号码"),
                 ("出租人姓名", "承租人姓名")):  # fmt: skip
        assert all(r[pair[0]] for r in rows)
        assert sum(bool(r[pair[1]]) for r in rows) > 0.9 * len(rows)
    assert sum(r["出租房屋地址"] != r["承租人户籍地址"] for r in rows) > 0.5 * len(rows)
    assert sum(r["出租人证件号码"] != r["承租人证件号码"] for r in rows) == len(rows)
    assert (records["related_person_id"] != records["person_id"]).all()


def test_grid_village_only_through_grid_code(out: Path) -> None:
    """No village column; 所属网格's first 12 digits are the village of the address shown."""
    truth = load_truth(out / "truth")
    village = dict(zip(truth.addresses["address_id"], truth.addresses["village_code"], strict=True))
    records = truth.source_records[truth.source_records["source"] == "grid_residents"]
    shown = dict(zip(records["record_key"], records["shown_address_id"], strict=True))
    rows = read_rows(delivered(out, MONTHS[-1], "grid_residents"))
    assert not [c for c in rows[0] if "村" in c or "社区" in c or "区划" in c]
    assert all(re.fullmatch(r"\d{15}", r["所属网格"]) for r in rows)
    assert all(r["所属网格"][:12] == village[shown[r["网格人员ID"]]] for r in rows)
    assert {r["人员类别"] for r in rows} == {"户籍", "流动"}


def test_no_personal_value_outside_sources_and_truth(out: Path) -> None:
    persons = load_truth(out / "truth").persons
    addresses = load_truth(out / "truth").addresses
    values = {
        *persons["name"], *persons["id_number"], *persons["phone"].dropna(),
        *addresses["standard_address"],
    }  # fmt: skip
    elsewhere = [p for p in out.rglob("*") if p.is_file()
                 and p.relative_to(out).parts[0] not in ("sources", "truth")]  # fmt: skip
    assert any(p.relative_to(out).parts[0] == "deployment" for p in elsewhere)
    for path in elsewhere:
        text = path.read_bytes().decode("utf-8", errors="ignore")
        found = sum(v in text for v in values)
        assert found == 0, (str(path.relative_to(out)), found)
