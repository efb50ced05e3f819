"""File readers on real files: the encodings departments use, title rows, quoted newlines, ragged
rows and bad bytes (quarantined with their physical line), XLSX sheets and merged headers, JSON,
Parquet."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from onetable.connectors.files import (
    detect_encoding,
    read_csv,
    read_json,
    read_jsonl,
    read_parquet,
    read_xlsx,
)
from onetable.connectors.reading import ConnectorError

HEADER = "救助编号,姓名,身份证号,救助类别\n"
ROWS = "JZ001,张三,320324198001011234,城乡低保\nJZ002,李四,320324198001021234,特困供养\n"


def _read(chunks):
    rows, rejected = [], []
    for chunk in chunks:
        table = chunk.rows.to_pylist()
        rows.extend(table)
        rejected.extend(chunk.rejected)
    return rows, rejected


@pytest.mark.parametrize(
    "encoding, detected",
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030"), ("gbk", "gb18030")],
)
def test_encodings_are_detected(tmp_path, encoding, detected):
    path = tmp_path / "a.csv"
    path.write_bytes((HEADER + ROWS).encode(encoding))
    assert detect_encoding(path) == detected
    rows, rejected = _read(read_csv(path, source="s", expected=["救助编号"]))
    assert rejected == []
    assert [r["姓名"] for r in rows] == ["张三", "李四"]
    assert list(rows[0])[:4] == ["救助编号", "姓名", "身份证号", "救助类别"]
    assert [r["_row"] for r in rows] == [2, 3]


def test_gb18030_only_characters(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes((HEADER + "JZ003,㐀𠀀,320324198001011234,低保\n").encode("gb18030"))
    rows, _ = _read(read_csv(path, source="s", expected=["救助编号"]))
    assert rows[0]["姓名"] == "㐀𠀀"  # outside GBK: four-byte GB18030 sequences


@pytest.mark.parametrize("delimiter", ["\t", ";", "|"])
def test_delimiter_is_sniffed(tmp_path, delimiter):
    path = tmp_path / "a.csv"
    path.write_text((HEADER + ROWS).replace(",", delimiter), encoding="utf-8")
    rows, _ = _read(read_csv(path, source="s", expected=["救助编号"]))
    assert rows[1]["身份证号"] == "320324198001021234"


def test_title_rows_quoted_newlines_ragged_rows_and_bad_bytes(tmp_path):
    text = (
        "民政局救助对象名单（2026年1月）\n"  # 1: a title row
        "\n"  # 2
        + HEADER  # 3
        + 'JZ001,张三,320324198001011234,"城乡\n低保"\n'  # 4-5: a quoted newline
        + "JZ002,李四\n"  # 6: too few fields
        + "\n"  # 7: blank
        + "JZ003,王五,320324198001031234,低保,多余\n"  # 8: too many
    )
    path = tmp_path / "a.csv"
    path.write_bytes(
        text.encode("gb18030") + "JZ004,赵六,".encode("gb18030") + b"\xff\xff,\xb5\xcd\xb1\xa3\n"
        + "JZ005,钱七,320324198001051234,特困\n".encode("gb18030")  # 10
    )  # fmt: skip
    rows, rejected = _read(read_csv(path, source="s", expected=["救助编号"], encoding="gb18030"))
    assert [(r["救助编号"], r["_row"]) for r in rows] == [("JZ001", 4), ("JZ005", 10)]
    assert rows[0]["救助类别"] == "城乡\n低保"
    found = sorted((q.row_number, q.rule_id, q.raw) for q in rejected)
    assert found[0] == (6, "C001", "JZ002,李四")
    assert found[1] == (8, "C001", "JZ003,王五,320324198001031234,低保,多余")
    assert found[2][:2] == (9, "C002") and found[2][2].startswith("JZ004,赵六,")
    assert next(q for q in rejected if q.rule_id == "C002").field == "身份证号"
    assert all(q.location == str(path) for q in rejected)


def test_no_header_is_a_clear_error(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ConnectorError, match="no header row with any of the mapped columns"):
        _read(read_csv(path, source="civil", expected=["救助编号"]))


def test_many_rows_keep_their_lines(tmp_path):
    lines = [HEADER]
    for i in range(120_000):
        lines.append(f'JZ{i},"名\n字",1,低保\n' if i % 1000 == 0 else f"JZ{i},名,1,低保\n")
        if i % 5000 == 1:
            lines.append("broken\n")
    path = tmp_path / "big.csv"
    path.write_text("".join(lines), encoding="utf-8")
    rows, rejected = _read(read_csv(path, source="s", expected=["救助编号"], batch_rows=7_000))
    assert len(rows) == 120_000 and len(rejected) == 24
    physical, broken, line = {}, [], 2
    for text in lines[1:]:
        if text == "broken\n":
            broken.append(line)
        else:
            physical[text.split(",")[0]] = line
        line += text.count("\n")
    assert all(r["_row"] == physical[r["救助编号"]] for r in rows)
    assert sorted(q.row_number for q in rejected) == broken
    assert broken[:2] == [5, 5011] and {q.raw for q in rejected} == {"broken"}


def _workbook(path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "低保"
    ws.append(["睢宁县残疾人名册"])  # title row
    ws.append([])
    ws.append(["残疾人证号", "姓名", "残疾情况", None, "发证日期"])
    ws.append([None, None, "类别", "等级", None])
    ws.merge_cells("C3:D3")
    ws.append(["32032419800101123441", "张三", "肢体", "二级", datetime(2020, 3, 2)])
    ws.append([3.20324198001021e19, "李四", "视力", "一级", 43891])  # digits Excel rounded
    ws.append([None, None, None, None, None])
    ws.append(["32032419800103123441", "王五", "听力", "三级", datetime(2021, 1, 5), "多余"])
    other = book.create_sheet("说明")
    other.append(["本表由残联提供"])
    book.save(path)


def test_xlsx_title_rows_merged_header_and_sheets(tmp_path):
    path = tmp_path / "a.xlsx"
    _workbook(path)
    rows, rejected = _read(read_xlsx(path, source="disabled", expected=["残疾人证号", "类别"]))
    assert list(rows[0])[:5] == ["残疾人证号", "姓名", "类别", "等级", "发证日期"]
    assert [(r["姓名"], r["_sheet"], r["_row"]) for r in rows] == [
        ("张三", "低保", 5),
        ("李四", "低保", 6),
    ]
    assert rows[0]["发证日期"] == "2020-03-02"
    assert rows[1]["残疾人证号"] == "3.20324198001021e+19"  # as the spreadsheet holds it
    assert rows[1]["发证日期"] == "43891"  # an Excel serial left for the standardizer
    assert [(q.sheet, q.row_number, q.rule_id) for q in rejected] == [("低保", 8, "C001")]


def test_xlsx_without_a_matching_sheet(tmp_path):
    path = tmp_path / "a.xlsx"
    _workbook(path)
    with pytest.raises(ConnectorError, match=r"no sheet of a\.xlsx has a header"):
        _read(read_xlsx(path, source="d", expected=["统一社会信用代码"]))
    with pytest.raises(ConnectorError, match="has no sheet '残联'"):
        _read(read_xlsx(path, source="d", expected=["姓名"], sheet="残联"))


def test_json_array_truncated(tmp_path):
    path = tmp_path / "a.json"
    records = [{"id": i, "name": "张三", "tags": ["a"], "ok": True, "n": None} for i in range(3)]
    text = json.dumps(records, ensure_ascii=False, indent=1)
    path.write_text(text[: text.rindex("{") + 8], encoding="utf-8")  # cut inside the third record
    rows, rejected = _read(read_json(path, source="units"))
    assert [r["id"] for r in rows] == ["0", "1"]
    assert rows[0]["tags"] == '["a"]' and rows[0]["ok"] == "true" and rows[0]["n"] is None
    assert rows[0]["_row"] == 2 and rows[1]["_row"] == 11  # where each record's "{" stands
    assert len(rejected) == 1 and rejected[0].row_number == 20
    assert "truncated or malformed JSON" in rejected[0].reason


def test_json_object_document(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"data": {"items": [{"a": 1}, 5]}}), encoding="utf-8")
    rows, rejected = _read(read_json(path, source="u", records_key="data.items"))
    assert rows[0]["a"] == "1" and rejected[0].reason == "a record that is not a JSON object"
    with pytest.raises(ConnectorError, match="no record list at 'items'"):
        _read(read_json(path, source="u", records_key="items"))


def test_jsonl_bad_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(
        b'{"code": "91320324MA1XXXXX0A"}\n\n{"code": \n[1, 2]\n{"code": "\xff"}\n{"code": "x"}\n'
    )
    rows, rejected = _read(read_jsonl(path, source="market"))
    assert [(r["code"], r["_row"]) for r in rows] == [("91320324MA1XXXXX0A", 1), ("x", 6)]
    assert [q.row_number for q in rejected] == [3, 4, 5]


PARQUET = pa.table({
    "人员编号": pa.array(["P1", "P2", "P3"]),
    "姓名": pa.array(["张三", None, "王五"]),
    "身份证号": pa.array([320324198001011234, None, 320324198001031234], pa.int64()),
    "出生日期": pa.array([date(1980, 1, 1), date(1980, 1, 2), None], pa.date32()),
    "更新时间": pa.array([datetime(2026, 1, 31, 12, 30), datetime(2026, 2, 1), None],
                         pa.timestamp("us")),
    "补贴": pa.array([Decimal("120.50"), Decimal("80.00"), None], pa.decimal128(10, 2)),
    "类别": pa.array(["低保", "特困", "低保"]).dictionary_encode(),  # a pandas categorical
})  # fmt: skip
# the same table as a department's CSV export writes it
PARQUET_AS_CSV = (
    "人员编号,姓名,身份证号,出生日期,更新时间,补贴,类别\n"
    "P1,张三,320324198001011234,1980-01-01,2026-01-31 12:30:00,120.50,低保\n"
    "P2,,,1980-01-02,2026-02-01 00:00:00,80.00,特困\n"
    "P3,王五,320324198001031234,,,,低保\n"
)


def test_parquet_lands_the_strings_a_csv_export_of_the_same_table_does(tmp_path):
    pq.write_table(PARQUET, tmp_path / "a.parquet", row_group_size=2)
    (tmp_path / "a.csv").write_text(PARQUET_AS_CSV, encoding="utf-8")
    chunks = list(read_parquet(tmp_path / "a.parquet", source="s", expected=["人员编号"],
                               batch_rows=2))  # fmt: skip
    assert [c.read for c in chunks] == [2, 1]  # every row counted, in batches
    rows, rejected = _read(chunks)
    csv_rows, _ = _read(read_csv(tmp_path / "a.csv", source="s", expected=["人员编号"]))

    def values(r: dict) -> dict:  # a CSV's empty field is an empty string, Parquet's null a null
        return {k: v or None for k, v in r.items() if not k.startswith("_")}

    assert rejected == [] and [values(r) for r in rows] == [values(r) for r in csv_rows]
    assert rows[0]["补贴"] == "120.50" and rows[0]["身份证号"] == "320324198001011234"
    assert rows[1]["姓名"] is None  # a null stays a null
    assert [(r["_row"], r["_sheet"], r["_location"]) for r in rows] == [
        (i, None, str(tmp_path / "a.parquet")) for i in (1, 2, 3)
    ]


def test_nested_parquet_values_are_json(tmp_path):
    table = pa.table({"编号": ["U1"], "标签": [["出租", "重点"]], "联系人": [{"姓名": "张三"}]})
    pq.write_table(table, tmp_path / "a.parquet")
    (row,), _ = _read(read_parquet(tmp_path / "a.parquet", source="s", expected=["编号"]))
    assert (row["标签"], row["联系人"]) == ('["出租", "重点"]', '{"姓名": "张三"}')


def test_a_parquet_file_with_no_rows_still_shows_its_columns(tmp_path):
    pq.write_table(PARQUET.slice(0, 0), tmp_path / "a.parquet")
    (chunk,) = read_parquet(tmp_path / "a.parquet", source="s", expected=["人员编号"])
    assert chunk.read == 0 and chunk.rows.column_names[:2] == ["人员编号", "姓名"]


def test_a_file_that_is_not_parquet_or_is_cut_short_fails_clearly(tmp_path):
    (tmp_path / "a.parquet").write_text(PARQUET_AS_CSV, encoding="utf-8")  # a CSV, misnamed
    with pytest.raises(
        ConnectorError, match=r"^source s: a\.parquet is not a readable Parquet file"
    ):
        _read(read_parquet(tmp_path / "a.parquet", source="s", expected=["人员编号"]))
    pq.write_table(PARQUET, tmp_path / "b.parquet")
    whole = (tmp_path / "b.parquet").read_bytes()
    (tmp_path / "b.parquet").write_bytes(whole[: len(whole) // 2])  # a copy cut off mid-way
    with pytest.raises(
        ConnectorError, match=r"^source s: b\.parquet is not a readable Parquet file"
    ):
        _read(read_parquet(tmp_path / "b.parquet", source="s", expected=["人员编号"]))
    pq.write_table(PARQUET, tmp_path / "c.parquet")
    with pytest.raises(ConnectorError, match=(
        r"^source s: no column of c\.parquet is one of the mapped columns \(救助编号\)$"
    )):  # fmt: skip
        _read(read_parquet(tmp_path / "c.parquet", source="s", expected=["救助编号"]))


def test_a_bad_byte_deep_in_a_large_gb18030_file_quarantines_only_its_row(tmp_path):
    # Many read blocks; the bad byte sits mid-block, a quoted newline comes after it, and a
    # four-byte GB18030 character recurs so that some fall across a block's edge.
    parts, line, bad_at, expected = (
        ["救助编号,姓名,身份证号,救助类别\n".encode("gb18030")],
        2,
        0,
        {},
    )
    for i in range(60_000):
        if i == 31_337:
            parts.append(f"JZ{i},".encode("gb18030") + b"\x81\x20," + "1,低保\n".encode("gb18030"))
            bad_at = line
        elif i == 45_000:
            parts.append(f'JZ{i},钱七,1,"城乡\n低保"\n'.encode("gb18030"))
            expected[f"JZ{i}"] = line
        else:
            parts.append(f"JZ{i},㐀𠀀{i % 7},1,低保\n".encode("gb18030"))
            expected[f"JZ{i}"] = line
        line += 2 if i == 45_000 else 1
    path = tmp_path / "big.csv"
    path.write_bytes(b"".join(parts))
    assert path.stat().st_size > 4 * (256 << 10)
    rows, rejected = _read(read_csv(path, source="s", expected=["救助编号"], encoding="gb18030"))
    assert [(q.rule_id, q.row_number, q.field) for q in rejected] == [("C002", bad_at, "姓名")]
    assert rejected[0].raw.startswith("JZ31337,\ufffd")
    assert {r["救助编号"]: r["_row"] for r in rows} == expected
    assert rows[1]["姓名"] == "㐀𠀀1"


def test_the_decoded_stream_reads_in_any_size(tmp_path):
    from onetable.connectors.files import _Utf8Stream

    text = "JZ001,张三,㐀𠀀\n" * 50_000
    path = tmp_path / "a.csv"
    path.write_bytes(text.encode("gb18030"))
    with path.open("rb") as raw:
        stream = _Utf8Stream(raw, "gb18030")
        parts = [stream.read(1000), stream.read(-1)]
        while part := stream.read(77_777):
            parts.append(part)
    assert len(parts[0]) == 1000
    assert b"".join(parts).decode("utf-8") == text
    assert not stream.bad_bytes and not stream.quoted_newlines and not stream.blank_lines


def test_a_record_longer_than_a_block_is_read_alone_and_lands(tmp_path):
    # eight fields of 120,000 bytes: none too long, but the record covers a whole read block,
    # which stops pyarrow; its quoted newline and the record after it keep their lines
    header = "救助编号,姓名," + ",".join(f"备注{i}" for i in range(8))
    wide, short = ",".join(["长" * 40_000] * 8), ",".join(["短"] * 8)
    text = f'{header}\nJZ001,"张\n三",{wide}\nJZ002,李四,{short}\n'
    path = tmp_path / "a.csv"
    path.write_bytes(text.encode("gb18030"))
    assert path.stat().st_size > 2 * (256 << 10)
    rows, rejected = _read(read_csv(path, source="s", expected=["救助编号"]))
    assert rejected == []
    assert [(r["救助编号"], r["_row"]) for r in rows] == [("JZ001", 2), ("JZ002", 4)]
    assert rows[0]["姓名"] == "张\n三" and rows[0]["备注7"] == "长" * 40_000


@pytest.mark.parametrize("end", ["\n", ""])
def test_an_oversized_field_in_the_last_record(tmp_path, end):
    path = tmp_path / "a.csv"
    path.write_bytes((HEADER + ROWS + "JZ003,王五,1," + "长" * 600_000 + end).encode("gb18030"))
    rows, rejected = _read(read_csv(path, source="s", expected=["救助编号"]))
    assert [r["_row"] for r in rows] == [2, 3]
    assert [(q.rule_id, q.row_number, q.field) for q in rejected] == [("C005", 4, "救助类别")]


def test_an_oversized_field_that_fits_a_block_is_quarantined_all_the_same(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes((HEADER + "JZ003,王五,1," + "长" * 50_000 + "\n" + ROWS).encode("utf-8"))
    rows, rejected = _read(read_csv(path, source="s", expected=["救助编号"]))
    assert [r["_row"] for r in rows] == [3, 4]
    assert [(q.rule_id, q.row_number) for q in rejected] == [("C005", 2)]
    assert rejected[0].reason.startswith("field 救助类别 holds 50,000 characters (150,000 bytes")


def test_a_long_record_in_an_encoding_not_split_by_bytes_fails_clearly(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes((HEADER + "JZ003,王五,1," + "长" * 600_000 + "\n").encode("utf-16"))
    with pytest.raises(
        ConnectorError, match=r"record at line 2 of a\.csv is longer than the reader"
    ):
        _read(read_csv(path, source="s", expected=["救助编号"], encoding="utf-16"))


def test_an_unclosed_quote_that_runs_on_fails_clearly(tmp_path, monkeypatch):
    import onetable.connectors.files as files

    monkeypatch.setattr(files, "_MAX_ALONE", 1 << 20)  # instead of writing 64 MiB
    path = tmp_path / "a.csv"
    path.write_bytes((HEADER + 'JZ003,"王五,1,低保\n' + ROWS * 100_000).encode("utf-8"))
    with pytest.raises(ConnectorError, match=r"record at line 2 of a\.csv runs on for more than 1"):
        _read(read_csv(path, source="s", expected=["救助编号"]))


def test_an_unclosed_quote_in_a_large_file_fails_clearly(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes((HEADER + 'JZ003,"王五,1,低保\n' + ROWS * 20_000).encode("utf-8"))
    with pytest.raises(
        ConnectorError, match=r"line 2 of a\.csv opens a quote that is never closed"
    ):
        _read(read_csv(path, source="s", expected=["救助编号"]))
