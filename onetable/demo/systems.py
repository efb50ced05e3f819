"""Write the department systems into `DIR/sources/`, and what they hold into the truth.

`write_sources(out, error_scale)` reads the truth back from `out/truth/`, builds the systems
(departments.py) and writes each in its own format:

    sources/household_registry.db    公安户籍, SQLite, table 户籍人口 (the registry now)
    sources/health.db                卫健, SQLite, table 居民健康档案 (the archives now)
    sources/as_of/<month end>/*.db   both databases as they stood at each month end
    sources/civil_affairs/民政对象名册_<YYYYMMDD>.csv      GB18030, one full list a month
    sources/disability/持证残疾人名册_<YYYYMMDD>.xlsx       a title row above the header
    sources/rental/出租房屋登记_<YYYYMMDD>.csv             UTF-8 with BOM
    sources/market/市场主体登记_<YYYYMMDD>.jsonl           JSON Lines
    sources/grid/residents.jsonl, key_places.jsonl         every version, served by serve.py

and `truth/source_records.parquet`: one row per record version with the truth's ids and the
errors and quirks injected, plus a section of `truth/README.md` with the rates. Files are
written in a fixed order with fixed timestamps, so the same truth and scale give the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import zipfile
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from onetable.demo import errors as E
from onetable.demo.departments import (
    GRID_COVERAGE,
    HEALTH_COVERAGE,
    TRUTH_IDS,
    Counts,
    System,
    TruthIndex,
    each_system,
)
from onetable.demo.population import TWIN_SHARED_CHARACTER
from onetable.demo.truth import SCHEMAS, load_truth

UPDATED = "更新时间"
SQL_TABLES = {"household_registry": "户籍人口", "health": "居民健康档案"}
FILES = {  # source: (folder, file name stem, extension, encoding, title row above the header)
    "civil_affairs": ("civil_affairs", "民政对象名册", "csv", "gb18030", "{county}民政对象名册"),
    "disability": ("disability", "持证残疾人名册", "xlsx", None, "{county}持证残疾人名册"),
    "rental": ("rental", "出租房屋登记", "csv", "utf-8-sig", None),
    "market": ("market", "市场主体登记", "jsonl", "utf-8", None),
}
GRID_FILES = {"grid_residents": "residents.jsonl", "grid_key_places": "key_places.jsonl"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every XLSX member's timestamp: no clock in the bytes
JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps(…, ensure_ascii=False) made one a line


def month_name(day: int) -> str:
    """A month end as the YYYYMMDD a department puts in a file name."""
    return date.fromordinal(day).strftime("%Y%m%d")


def write_sources(out: Path, error_scale: float = 1.0) -> dict[str, Counts]:
    """Write `out/sources/` and `out/truth/source_records.parquet` from `out/truth/`; returns each
    system's counts. Each system is written and let go before the next is built: at a million
    persons, holding all eight at once took gigabytes."""
    if error_scale < 0:
        raise ValueError("--error-scale must be 0 or more")
    truth = load_truth(out / "truth")
    ix, county = TruthIndex(truth), truth.meta["county_name"]
    del truth  # the index holds what the systems read
    root = out / "sources"
    if root.exists():
        shutil.rmtree(root)  # the generator's own folder: no file of an earlier run may linger
    root.mkdir(parents=True)
    (root / "grid").mkdir()
    counts, records = {}, []
    for system in each_system(ix, error_scale):
        name = system.name
        if name in SQL_TABLES:
            _write_databases(root, ix, system, SQL_TABLES[name])
        elif name in FILES:
            _write_files(root, ix, system, county)
        else:
            _write_versions(root / "grid" / GRID_FILES[name], system)
        records.append(_records_table(ix, system))
        counts[name] = system.counts()
        del system
    pq.write_table(pa.concat_tables(records).combine_chunks(), out / "truth" / RECORDS_FILE)
    _update_meta(out / "truth", ix, counts, error_scale, sources_readme(error_scale, ix))
    return counts


def _write_files(root: Path, ix: TruthIndex, system: System, county: str) -> None:
    """A system's monthly files, one a month end."""
    folder, stem, ext, encoding, title = FILES[system.name]
    (root / folder).mkdir()
    for m, end in enumerate(ix.ends):
        path = root / folder / f"{stem}_{month_name(end)}.{ext}"
        heading = f"{title.format(county=county)}（截至{_chinese_day(end)}）" if title else None
        if ext == "csv":
            _write_csv(path, system.columns, system.rows(m), encoding, heading)
        elif ext == "xlsx":
            _write_xlsx(path, system.columns, system.rows(m), heading, end)
        else:
            _write_jsonl(path, system.rows(m))


def _chinese_day(day: int) -> str:
    d = date.fromordinal(day)
    return f"{d.year}年{d.month}月{d.day}日"


# ---- formats ---------------------------------------------------------------------------------


def _write_sqlite(path: Path, table: str, columns: list[str], rows: Iterable[dict]) -> None:
    """A table with the key as primary key and an index on 更新时间, rows inserted by key."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    try:
        names = [*columns, UPDATED]
        spec = [f'"{columns[0]}" TEXT PRIMARY KEY', *(f'"{c}" TEXT' for c in columns[1:])]
        con.execute(f'CREATE TABLE "{table}" ({", ".join(spec)}, "{UPDATED}" DATETIME NOT NULL)')
        con.execute(f'CREATE INDEX "{table}_{UPDATED}" ON "{table}" ("{UPDATED}")')
        marks = ", ".join("?" * len(names))
        con.executemany(
            f'INSERT INTO "{table}" VALUES ({marks})', ([r[c] for c in names] for r in rows)
        )
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)


def _write_databases(root: Path, ix: TruthIndex, system: System, table: str) -> None:
    """The database as it stood at each month end (as_of/), and now (the last month end)."""
    for m, end in enumerate(ix.ends):
        folder = root / "as_of" / date.fromordinal(end).isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        _write_sqlite(
            folder / f"{system.name}.db", table, system.columns, system.rows(m, updated=UPDATED)
        )
    last = root / "as_of" / date.fromordinal(ix.ends[-1]).isoformat() / f"{system.name}.db"
    shutil.copyfile(last, root / f"{system.name}.db")


def _write_csv(
    path: Path, columns: list[str], rows: Iterable[dict], encoding: str, heading: str | None
) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    if heading:
        writer.writerow([heading])
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in columns])
    path.write_bytes(buffer.getvalue().encode(encoding))


def _write_xlsx(
    path: Path, columns: list[str], rows: Iterable[dict], heading: str, end: int
) -> None:
    """A sheet with a merged title row, then the header; text cells except the dates. The
    workbook's and its members' timestamps are fixed, so the bytes depend on the content only."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.writer.excel import ExcelWriter

    book = Workbook()
    sheet = book.active
    sheet.title = "持证残疾人"
    sheet.append([heading])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(columns))
    sheet.cell(1, 1).font = Font(bold=True, size=14)
    sheet.cell(1, 1).alignment = Alignment(horizontal="center")
    sheet.append(columns)
    # rows counted here: openpyxl's max_row scans every cell, quadratic for a large county
    for number, row in enumerate(rows, start=3):
        sheet.append([row[c] for c in columns])
        cell = sheet.cell(number, len(columns))
        if isinstance(row[columns[-1]], date):
            cell.number_format = "yyyy-mm-dd"
    stamp = datetime.combine(date.fromordinal(end), datetime.min.time())
    book.properties.created = book.properties.modified = stamp
    book.properties.creator = "残联"
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(book, archive).save()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = info.external_attr
            dst.writestr(member, src.read(info.filename))


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    text = "".join(JSON.encode(r) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")


def _write_versions(path: Path, system: System) -> None:
    """Every version of every record with its 更新时间, in time order: what the grid API
    serves, a window [since, until) at a time."""
    with path.open("w", encoding="utf-8", newline="") as f:  # a line at a time, not one string
        for v in sorted(system.versions, key=lambda v: (v.updated, v.key)):
            row = dict(v.rec.row)
            row[UPDATED] = v.updated.isoformat(" ")  # whole seconds: YYYY-MM-DD HH:MM:SS
            f.write(JSON.encode(row) + "\n")


# ---- the truth of the records ----------------------------------------------------------------

RECORDS_SCHEMA = SCHEMAS["source_records"]
RECORDS_FILE = "source_records.parquet"


def _records_table(ix: TruthIndex, system: System) -> pa.Table:
    """A system's rows of truth/source_records.parquet: a row per record version, valid from the
    month end that first shows it to the one that no longer does (null: still shown at the
    last)."""
    versions = sorted(system.versions, key=lambda v: (v.key, v.first))
    ends = [date.fromordinal(d) for d in ix.ends]
    columns = {
        "source": [system.name] * len(versions),
        "record_key": [v.key for v in versions],
        "valid_from": [ends[v.first] for v in versions],
        "valid_to": [ends[v.last] if v.last is not None else None for v in versions],
        "updated_at": [v.updated for v in versions],
        "status": [v.rec.status for v in versions],
        "deleted": [v.rec.deleted for v in versions],
        **{key: [v.rec.truth[key] for v in versions] for key in TRUTH_IDS},
        "errors": [list(v.rec.errors) for v in versions],
        "quirks": [list(v.rec.quirks) for v in versions],
    }
    return pa.table(columns, schema=RECORDS_SCHEMA)


def _write_records(truth_dir: Path, ix: TruthIndex, systems: dict[str, System]) -> None:
    """truth/source_records.parquet: every system's record versions, in the systems' order."""
    table = pa.concat_tables([_records_table(ix, s) for s in systems.values()])
    pq.write_table(table.combine_chunks(), truth_dir / RECORDS_FILE)


def _update_meta(
    truth_dir: Path, ix: TruthIndex, counts: dict[str, Counts], scale: float, section: str
) -> None:
    """meta.json's sources and month ends, and the truth README's section on the systems."""
    path = truth_dir / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["error_scale"] = scale
    meta["month_ends"] = [date.fromordinal(d).isoformat() for d in ix.ends]
    meta["sources"] = {
        name: {"records": c.records, "versions": c.versions} for name, c in counts.items()
    }
    path.write_text(json.dumps(meta, ensure_ascii=False, indent=2, sort_keys=True) + "\n", "utf-8")
    readme = truth_dir / "README.md"
    text = readme.read_text(encoding="utf-8").split(SOURCES_MARK)[0].rstrip("\n") + "\n"
    readme.write_text(text + "\n" + section, encoding="utf-8")


SOURCES_MARK = "## The department systems (../sources/)"


def sources_readme(scale: float, ix: TruthIndex) -> str:
    ends = ", ".join(date.fromordinal(d).isoformat() for d in ix.ends)
    pct = lambda x: f"{100 * x:g}%"  # noqa: E731
    return SOURCES_README.format(
        mark=SOURCES_MARK, scale=f"{scale:g}", ends=ends,
        typo=pct(E.ID_DIGIT_TYPO), transposition=pct(E.ID_TRANSPOSITION),
        missing_health=pct(E.MISSING_ID["health"]), missing_grid=pct(E.MISSING_ID["grid_residents"]),
        swap=pct(E.SWAPPED_DAY_MONTH), homophone=pct(E.NAME_HOMOPHONE),
        shape=pct(E.NAME_SIMILAR_SHAPE), stale=pct(E.STALE_ADDRESS),
        credit=pct(E.CREDIT_CODE_BAD_CHECK), duplicate=pct(E.HEALTH_DUPLICATE),
        merged=pct(E.HEALTH_DUPLICATE_MERGED_PER_MONTH), id15=pct(E.LEGACY_ID15),
        lower_x=pct(E.LOWERCASE_X), fullwidth=pct(E.FULLWIDTH_DIGITS),
        spaces=pct(E.NAME_SPACES), chinese_date=pct(E.CHINESE_DATE_STYLE),
        dotted=pct(E.DOTTED_DATE), wide_date=pct(E.FULLWIDTH_DATE),
        mother_id=pct(E.NEWBORN_MOTHER_ID), no_birth=pct(E.GRID_NO_BIRTH_WITHOUT_ID),
        twin_names=pct(TWIN_SHARED_CHARACTER),
        variant=pct(E.ADDRESS_VARIANT), health_cover=pct(HEALTH_COVERAGE),
        grid_cover=pct(GRID_COVERAGE),
    )  # fmt: skip


SOURCES_README = """\
{mark}

`../sources/` holds the county as its seven department systems hold it, each with its own key,
columns, formats and mistakes, at the month ends:
{ends}.
Error scale {scale} (the rates below are at scale 1; `--error-scale` multiplies every error
rate, not the quirks).

| source | system, format | key | what its months show |
|---|---|---|---|
| household_registry | 公安户籍: SQLite `household_registry.db`, table 户籍人口, 更新时间 | 人员编号 | everyone ever registered in the county; 人员状态 正常/迁出/注销/死亡; 户主 changes and 户口 moves update the row |
| civil_affairs | 民政: `civil_affairs/民政对象名册_YYYYMMDD.csv`, GB18030, a title row | 救助编号 | a full list a month: 低保, 特困, 退役军人, 独居老人, 空巢老人, 失能老人, 计生特殊家庭; who leaves a list is gone from the next file |
| health | 卫健: SQLite `health.db`, table 居民健康档案, 更新时间 | 健康档案编号 (17 digits) | archives of residents ({health_cover}); 档案状态 在管/迁出/死亡; merged duplicate archives are deleted rows |
| disability | 残联: `disability/持证残疾人名册_YYYYMMDD.xlsx`, a title row | 残疾人证号 (20 digits) | a full list a month; a new grade is a new certificate |
| rental | 住建: `rental/出租房屋登记_YYYYMMDD.csv`, UTF-8 with BOM | 登记编号 | one row per rental and tenant aged 16+; tenants from other counties are in no registry here |
| grid_residents | 网格: `grid/residents.jsonl` served by `onetable demo serve` at /residents | 网格人员ID (UUID) | residents ({grid_cover}) by grid and micro-grid; 状态 正常/迁出/死亡 |
| grid_key_places | 网格: `grid/key_places.jsonl`, at /key_places | 场所编号 | key places; 状态 正常/注销 |
| market | 市场监管: `market/市场主体登记_YYYYMMDD.jsonl` | 统一社会信用代码 | 存续 units and those 注销 that month |

The SQLite databases are the systems now (the last month end); `as_of/<month end>/` holds them
as they stood at each month end, so that a pipeline can replay the months as it would have read
them (a cursor read of a database that keeps only its current rows cannot see last month's
state of a row changed since). A row changed in a month carries that month's 更新时间; a row
deleted from a database (a merged duplicate health archive) is simply gone. The grid files hold
every version of every record with its 更新时间; the server answers a window [since, until) with
each record's latest version in it. The monthly files are full snapshots named with the month
end, so a run whose window ends the day after picks each up; a record missing from the next
month's file was deleted.

Errors (they change what a value says), per source record among the records where they can
occur:

| error | rate | where | in `errors` |
|---|---|---|---|
| ID number: one digit replaced | {typo} | records showing an ID number, except the registry (the reference) | id_digit_typo |
| ID number: adjacent characters swapped | {transposition} | likewise | id_transposition |
| ID number missing | {missing_health} health, {missing_grid} grid residents | | id_missing |
| birth date: day and month swapped | {swap} | civil affairs, health, grid residents; birth day 1-12 and not the month | birth_date_swapped |
| name: a homophone (same pinyin and tone) | {homophone} | every person record but the registry's; market: the legal representative | name_homophone |
| name: a similar-shaped character | {shape} | likewise, names with a character in `errors.SIMILAR_GROUPS` | name_similar_shape |
| an older address after a move | {stale} | civil affairs, health, disability, grid residents; persons with an earlier address (a move in the period, or the 户籍 home of a family living elsewhere in the county) | address_stale |
| credit code with a wrong check character | {credit} | market | credit_code_bad_check |
| a duplicate health archive ({merged} merged a month) | {duplicate} | health, persons living here at the start | duplicate_record |

Quirks (lossless: another way of writing the same value; not scaled): 15-digit ID numbers in
civil affairs for {id15} of records of persons born before 2000 (id_legacy_15); dates there as
1950.03.02 for {dotted} of records (date_dotted), else 1950年3月2日 for {chinese_date} of them,
else 19500302 (date_chinese, date_compact), in full-width digits for {wide_date} (date_fullwidth);
a newborn's health archive opened before 落户 shows the mother's ID number until then for
{mother_id} of such archives (id_of_mother); {no_birth} of grid entries without an ID number
have no birth date either (birth_date_missing); in the
disability list a lower-case x for {lower_x} of ID numbers ending in X (id_lowercase_x) and
full-width digits in the ID number, certificate number and phone of {fullwidth} of records
(fullwidth_digits); the health system types a name's · as '.' (name_dot_variant); grid workers
type a space in or after {spaces} of names (name_spaces); the rental registry writes
{variant} of addresses otherwise: numbers in Chinese numerals, 栋 or 号楼 for 幢, no 室, or
building-unit-room with dashes, 第三村民小组 or 三队 for 三组 (address_variant:<style>). Twins
(0.5% of deliveries; the second's given name shares the first's first character for
{twin_names} of them) and very
common names (王伟, 李娜…) repeated within villages come from the population itself.

`source_records.parquet`: one row per record version: source, record_key (the department's key
as written), valid_from and valid_to (month ends: the first that shows this version and the
first that no longer does, null while still shown at the last), updated_at (更新时间 for the
SQL and grid systems; the day of the change for the files), status and deleted (the record's
own status and whether it means the record ended), person_id, household_id (the registry: the
户籍户; the others: the 实有户 the person lives in, null when not living in the county),
address_id (where the record's subject truly is), shown_address_id (the address the record
shows), unit_id, related_person_id (a rental's landlord, a unit's legal representative or a
key place's 负责人), errors and quirks (lists, as above).
"""
