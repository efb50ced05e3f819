"""The personal-data scan finds values however they are stored, and reports them masked."""

import gzip
import sqlite3

import duckdb
import openpyxl

from onetable.quality.pii_scan import scan_personal_data

ID_NUMBER = "32032419850307123X"  # only a needle; the checksum does not matter here
PHONE = "13912345678"
NEEDLES = {ID_NUMBER: "id_number", PHONE: "phone"}


def test_finds_values_in_every_kind_of_file(tmp_path):
    (tmp_path / "log.txt").write_text(f"loaded {ID_NUMBER}\n", encoding="utf-8")
    (tmp_path / "gb.csv").write_bytes(f"姓名,电话\n张三,{PHONE}\n".encode("gb18030"))
    (tmp_path / "x.log.gz").write_bytes(gzip.compress(f"phone={PHONE}".encode()))
    wb = openpyxl.Workbook()
    wb.active.append(["身份证号", ID_NUMBER])
    wb.save(tmp_path / "sheet.xlsx")
    duckdb.sql(
        f"COPY (SELECT '{ID_NUMBER}' || i AS a FROM range(1000) t(i)) TO '{tmp_path / 'c.parquet'}' "
        "(COMPRESSION zstd)"
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(f"CREATE TABLE t AS SELECT '{PHONE}' AS p FROM range(5000)")
    con.close()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        db.execute("CREATE TABLE t (p TEXT)")
        db.execute("INSERT INTO t VALUES (?)", [PHONE])

    found = {(f.path.name, f.value) for f in scan_personal_data([tmp_path], NEEDLES)}
    assert found == {
        ("log.txt", "320324********123X"),
        ("gb.csv", "139****5678"),
        ("x.log.gz", "139****5678"),
        ("sheet.xlsx", "320324********123X"),
        ("c.parquet", "320324********123X"),
        ("w.duckdb", "139****5678"),
        ("s.sqlite", "139****5678"),
    }


def test_allowed_places_are_passed_over(tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "registry.csv").write_text(ID_NUMBER, encoding="utf-8")
    (tmp_path / "report.html").write_text(f"<td>{PHONE}</td>", encoding="utf-8")
    findings = scan_personal_data([tmp_path], NEEDLES, allowed=[sources])
    assert [(f.path.name, f.where) for f in findings] == [("report.html", "bytes")]
    assert PHONE not in repr(findings)
