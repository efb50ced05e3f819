"""The second demo county, 沭阳县 (321322), written the way its departments export: monthly files
dropped into folders, with other columns and spellings than the first county's, so that its
deployment folder has to use the mapping features rather than the shipped defaults.

The truth is the same machinery (generate.py, truth.py) for another county, and the records are
`departments.build_systems`' records recast: the same persons, keys, errors and quirks, shown
with this county's columns. Only 民政 is built anew, because it keeps one row per person with
all their programmes in one cell, two of them (高龄津贴, 居家养老服务) the county's own.

    sources/deliveries/<YYYY-MM>/<dept>/<plain name>   a month's exports, no date in any name
    sources/inbox/<dept>/                              the drop folders `deliver` fills

| source | dept folder, file | format |
|---|---|---|
| household_registry | household_registry/户籍人口.csv | GB18030 CSV, a column 导出日期 |
| civil_affairs | civil_affairs/救助对象.parquet | Parquet, 享受待遇 a combined cell |
| health | health/居民健康档案.parquet | Parquet |
| disability | disability/持证残疾人.xlsx | XLSX, a title row, no ID column |
| rental | rental/出租房屋.parquet | Parquet, two persons and two addresses |
| grid_residents | grid/实有人口.parquet | Parquet, the village only in 所属网格 |
| grid_key_places | grid/重点场所.parquet | Parquet |
| market | market/市场主体.jsonl | JSON Lines |
"""

from __future__ import annotations

import calendar
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from onetable.demo.departments import (
    Counts,
    Rec,
    Shown,
    System,
    TruthIndex,
    _home,
    _serials,
    _truth,
    build_systems,
)
from onetable.demo.errors import Dice
from onetable.demo.formats import address_text, date_iso
from onetable.demo.systems import (
    SOURCES_MARK,
    _update_meta,
    _write_csv,
    _write_jsonl,
    _write_records,
    _write_xlsx,
)
from onetable.demo.truth import load_truth

COUNTY_CODE = "321322"  # 沭阳县, 宿迁市, in the shipped division tree
FILES = {  # source: (dept folder, file name)
    "household_registry": ("household_registry", "户籍人口.csv"),
    "civil_affairs": ("civil_affairs", "救助对象.parquet"),
    "health": ("health", "居民健康档案.parquet"),
    "disability": ("disability", "持证残疾人.xlsx"),
    "rental": ("rental", "出租房屋.parquet"),
    "grid_residents": ("grid", "实有人口.parquet"),
    "grid_key_places": ("grid", "重点场所.parquet"),
    "market": ("market", "市场主体.jsonl"),
}
EXPORTED = "导出日期"  # 公安's export date, a column of every row (not a version's content)

# This county's spellings of the first county's codes.
SEX = {"男": "1", "女": "2"}  # GB/T 2261.1
RELATIONS = {"户主": "本人", "子": "儿子", "女": "女儿"}  # the rest as the registry writes them
REGISTRY_STATUS = {"正常": "正常", "迁出": "迁出户籍", "注销": "注销", "死亡": "死亡"}
HEALTH_STATUS = {"在管": "在册", "迁出": "迁出", "死亡": "死亡"}
GRID_STATUS = {"正常": "在住", "迁出": "离开", "死亡": "死亡"}
GRID_KIND = {"户籍人口": "户籍", "流动人口": "流动"}
PLACE_STATUS = {"正常": "在营", "注销": "注销"}
# 民政's programmes: the truth's tags under this county's names, then the county's own two.
PROGRAMMES = {"低保": "城乡低保", "特困": "特困供养", "退役军人": "优抚对象", "独居": "独居老人",
              "空巢": "空巢老人", "失能": "失能老人", "计生特殊家庭": "计生特殊家庭"}  # fmt: skip
ALLOWANCE = "高龄津贴"  # every resident aged 80 and over (the county's 高龄津贴 age; made up)
ALLOWANCE_AGE = 80
HOME_CARE = "居家养老服务"  # a seeded share of residents aged 60 and over
HOME_CARE_AGE = 60
HOME_CARE_SHARE = 0.08  # made up: a county buying home-care hours for a few of its elderly
COMMA_SHARE = 0.1  # quirk: a combined cell typed with '，' instead of '、'

S, D, I32 = pa.string(), pa.date32(), pa.int32()


# ---- the records, recast ---------------------------------------------------------------------


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _recast(system: System, key: str, columns: dict, row: Callable[[Rec, int], dict]) -> System:
    """The same records (keys, truth, errors, quirks) with this county's columns: `row` gives a
    record's row at month end `m`."""
    views = [
        {k: replace(rec, row=row(rec, m)) for k, rec in view.items()}
        for m, view in enumerate(system.views)
    ]
    return System(system.name, key, list(columns), views)


REGISTRY = {"人员编号": S, "证件号码": S, "姓名": S, "性别": S, "民族": S, "出生日期": S,
            "户号": S, "户主姓名": S, "与户主关系": S, "户籍地址": S, "户籍地区划代码": S,
            "人员状态": S, "变动日期": S, "迁往地区": S, "联系电话": S}  # fmt: skip


def household_registry(ix: TruthIndex, system: System) -> System:
    """户籍人口 with the 户主's name on every member's row; 性别 1/2, 本人/儿子, 迁出户籍."""
    heads = [_heads(ix, end) for end in ix.ends]

    def row(rec: Rec, m: int) -> dict:
        r = rec.row
        return {
            "人员编号": r["人员编号"], "证件号码": r["公民身份号码"], "姓名": r["姓名"],
            "性别": SEX[r["性别"]], "民族": r["民族"], "出生日期": r["出生日期"],
            "户号": r["户号"], "户主姓名": heads[m].get(rec.truth["household_id"]),
            "与户主关系": RELATIONS.get(r["与户主关系"], r["与户主关系"]),
            "户籍地址": r["户籍地址"], "户籍地区划代码": r["行政区划代码"],
            "人员状态": REGISTRY_STATUS[r["人员状态"]],
            "变动日期": r["变动日期"].replace("-", ""), "迁往地区": r["迁往地区"],
            "联系电话": r["联系电话"],
        }  # fmt: skip

    return _recast(system, "人员编号", REGISTRY, row)


def _heads(ix: TruthIndex, day: int) -> dict[str, str]:
    """The 户主's name of every 户籍户 on `day`."""
    out = {}
    for pid in ix.registration:
        r = ix.reg(pid, day)
        if r is not None and r.hid and r.relation == "户主" and r.status == "正常":
            out[r.hid] = ix.persons[pid].name
    return out


HEALTH = {"档案编号": S, "姓名": S, "性别": S, "出生日期": D, "身份证件号码": S, "联系电话": S,
          "居住地详址": S, "所属村居": S, "建档机构": S, "建档日期": D, "严重精神障碍": S,
          "档案状态": S}  # fmt: skip


def health(ix: TruthIndex, system: System) -> System:
    def row(rec: Rec, m: int) -> dict:
        r = rec.row
        return {
            "档案编号": r["健康档案编号"], "姓名": r["姓名"], "性别": SEX[r["性别"]],
            "出生日期": _day(r["出生日期"]), "身份证件号码": r["身份证号"],
            "联系电话": r["联系电话"], "居住地详址": r["现住址"], "所属村居": r["所属村居"],
            "建档机构": r["建档机构"], "建档日期": _day(r["建档日期"]),
            "严重精神障碍": r["严重精神障碍"], "档案状态": HEALTH_STATUS[r["档案状态"]],
        }  # fmt: skip

    return _recast(system, "档案编号", HEALTH, row)


DISABILITY = {"残疾人证号": S, "姓名": S, "性别": S, "残疾类别": S, "残疾等级": S,
              "所属乡镇": S, "居住地详址": S, "联系电话": S, "发证日期": D}  # fmt: skip


def disability(ix: TruthIndex, system: System) -> System:
    """No ID number column: the 20-digit 残疾人证号 is the ID number and the certificate."""

    def row(rec: Rec, m: int) -> dict:
        r = rec.row
        return {
            "残疾人证号": r["残疾人证号"], "姓名": r["姓名"], "性别": SEX[r["性别"]],
            "残疾类别": r["残疾类别"], "残疾等级": r["残疾等级"], "所属乡镇": r["乡镇（街道）"],
            "居住地详址": r["现住址"], "联系电话": r["联系电话"], "发证日期": r["发证日期"],
        }  # fmt: skip

    return _recast(system, "残疾人证号", DISABILITY, row)


RENTAL = {"登记编号": S, "出租房屋地址": S, "出租人姓名": S, "出租人证件号码": S,
          "承租人姓名": S, "承租人证件号码": S, "承租人联系电话": S, "承租人户籍地址": S,
          "入住日期": D, "租赁起始日期": D}  # fmt: skip


def rental(ix: TruthIndex, system: System) -> System:
    """Two persons (出租人, 承租人) and two addresses (the rented home, the tenant's 户籍) a row."""

    def row(rec: Rec, m: int) -> dict:
        r = rec.row
        return {
            "登记编号": r["登记编号"], "出租房屋地址": r["房屋地址"],
            "出租人姓名": r["出租人姓名"], "出租人证件号码": r["出租人证件号码"],
            "承租人姓名": r["承租人姓名"], "承租人证件号码": r["承租人证件号码"],
            "承租人联系电话": r["承租人联系电话"], "承租人户籍地址": r["承租人户籍地址"],
            "入住日期": _day(r["入住日期"]), "租赁起始日期": _day(r["租赁起始日期"]),
        }  # fmt: skip

    return _recast(system, "登记编号", RENTAL, row)


GRID = {"网格人员ID": S, "姓名": S, "性别": S, "民族": S, "身份证件号码": S, "出生日期": D,
        "联系电话": S, "居住地详址": S, "所属网格": S, "所属微网格": S, "人员类别": S,
        "居住状态": S, "离开日期": D}  # fmt: skip


def grid_residents(ix: TruthIndex, system: System) -> System:
    """No village column: 所属网格 is the 15-digit grid id, its first 12 digits the village
    code. A departure or a death sets 居住状态 and 离开日期."""

    def row(rec: Rec, m: int) -> dict:
        r = rec.row
        gone = r["状态"] != "正常"
        return {
            "网格人员ID": r["网格人员ID"], "姓名": r["姓名"], "性别": SEX[r["性别"]],
            "民族": r["民族"], "身份证件号码": r["身份证号"], "出生日期": _day(r["出生日期"]),
            "联系电话": r["联系电话"], "居住地详址": r["居住地址"], "所属网格": r["网格编码"],
            "所属微网格": r["微网格编码"], "人员类别": GRID_KIND[r["人员类型"]],
            "居住状态": GRID_STATUS[r["状态"]],
            "离开日期": date.fromordinal(rec.since) if gone else None,
        }  # fmt: skip

    return _recast(system, "网格人员ID", GRID, row)


PLACES = {"场所编号": S, "场所名称": S, "场所类别": S, "场所地址": S, "所属网格": S,
          "负责人": S, "负责人电话": S, "人员数": I32, "状态": S}  # fmt: skip


def grid_key_places(ix: TruthIndex, system: System) -> System:
    def row(rec: Rec, m: int) -> dict:
        r = rec.row
        return {
            "场所编号": r["场所编号"], "场所名称": r["场所名称"], "场所类别": r["场所类型"],
            "场所地址": r["场所地址"], "所属网格": r["网格编码"], "负责人": r["负责人"],
            "负责人电话": r["联系电话"], "人员数": int(ix.units[rec.truth["unit_id"]]["employees"]),
            "状态": PLACE_STATUS[r["状态"]],
        }  # fmt: skip

    return _recast(system, "场所编号", PLACES, row)


# ---- 民政: one row per person ---------------------------------------------------------------

CIVIL = {"救助对象编号": S, "姓名": S, "性别": S, "证件号码": S, "出生日期": D, "所属乡镇": S,
         "居住地详址": S, "联系电话": S, "享受待遇": S}  # fmt: skip


def _turned(birth: date, years: int) -> int:
    """The day someone born on `birth` turns `years` (29 February: 1 March)."""
    if (birth.month, birth.day) == (2, 29) and not calendar.isleap(birth.year + years):
        return date(birth.year + years, 3, 1).toordinal()
    return birth.replace(year=birth.year + years).toordinal()


def _programmes(ix: TruthIndex, dice: Dice, end: int) -> dict[str, list[tuple[str, int]]]:
    """Who 民政 lists at a month end, with (programme, day it began for them), in a fixed order:
    the truth's tags, then 高龄津贴 (every resident 80+), then 居家养老服务 (a seeded share of
    residents 60+)."""
    on: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for tag, name in PROGRAMMES.items():
        for r in ix.status.get(tag, ()):
            if r.start <= end < r.end:
                on[r["person_id"]].append((name, r.start))
    for pid in sorted(ix.residence):
        stay = ix.stay(pid, end)
        if stay is None:
            continue
        birth, age = ix.persons[pid].birth, ix.age(pid, end)
        if age >= ALLOWANCE_AGE:
            on[pid].append((ALLOWANCE, max(stay.start, _turned(birth, ALLOWANCE_AGE))))
        if age >= HOME_CARE_AGE and dice.quirk(pid, "home_care", HOME_CARE_SHARE):
            on[pid].append((HOME_CARE, max(stay.start, _turned(birth, HOME_CARE_AGE))))
    return on


def civil_affairs(ix: TruthIndex, dice: Dice) -> System:
    """民政救助对象: one record per person while on any programme, 享受待遇 naming them all
    (城乡低保、高龄津贴); the person's ID number and birth date with the usual errors and the
    15-digit quirk; someone on no programme any more is gone from the next file."""
    months = [_programmes(ix, dice, end) for end in ix.ends]
    first: dict[str, int] = {}
    for on in months:
        for pid, items in on.items():
            first.setdefault(pid, min(day for _, day in items))
    serial = _serials(((pid, day, pid) for pid, day in first.items()), dice)
    keys = {pid: f"MZ{ix.county}{n:06d}" for pid, n in serial.items()}
    shown: dict[str, Shown] = {}
    views = []
    for end, on in zip(ix.ends, months, strict=True):
        view = {}
        for pid in sorted(on):
            rid = f"{pid}/民政"
            home = _home(ix, dice, rid, pid, end)
            if home is None:
                continue
            true_aid, aid, stale, hid, moved = home
            p = ix.persons[pid]
            if pid not in shown:
                shown[pid] = Shown(p, dice, rid, legacy15=True)
            s = shown[pid]
            names = [name for name, _ in on[pid]]
            comma = len(names) > 1 and dice.quirk(rid, "programmes_comma", COMMA_SHARE)
            a = ix.addresses[aid]
            row = {
                "救助对象编号": keys[pid], "姓名": s.name, "性别": SEX[p.sex], "证件号码": s.id,
                "出生日期": s.birth, "所属乡镇": a["township_name"],
                "居住地详址": address_text(a, "township"), "联系电话": p.phone,
                "享受待遇": ("，" if comma else "、").join(names),
            }  # fmt: skip
            began = max(day for _, day in on[pid])
            since = began if stale else max(began, moved)
            view[keys[pid]] = Rec(
                row, _truth(person_id=pid, household_id=hid, address_id=true_aid,
                            shown_address_id=aid),
                tuple(s.errors) + ((stale,) if stale else ()),
                tuple(s.quirks) + (("programmes_comma",) if comma else ()), since,
            )  # fmt: skip
        views.append(view)
    return System("civil_affairs", "救助对象编号", list(CIVIL), views)


RECAST: dict[str, tuple[Callable[[TruthIndex, System], System], dict]] = {
    "household_registry": (household_registry, REGISTRY),
    "health": (health, HEALTH),
    "disability": (disability, DISABILITY),
    "rental": (rental, RENTAL),
    "grid_residents": (grid_residents, GRID),
    "grid_key_places": (grid_key_places, PLACES),
}
COLUMNS = {**{name: cols for name, (_, cols) in RECAST.items()}, "civil_affairs": CIVIL}


def build(ix: TruthIndex, systems: dict[str, System], scale: float) -> dict[str, System]:
    """This county's systems from `build_systems`' (market as it is), with their versions."""
    out = {}
    for name, system in systems.items():
        dice = Dice(ix.seed, name, scale)
        if name == "civil_affairs":
            new = civil_affairs(ix, Dice(ix.seed, "variant2/civil_affairs", scale))
        elif name in RECAST:
            new = RECAST[name][0](ix, system)
        else:
            out[name] = system
            continue
        new.build_versions(ix.ends, dice)
        out[name] = new
    return out


# ---- writing and delivering ------------------------------------------------------------------


def period_of(end: int) -> str:
    """A month end's period, YYYY-MM: the folder of that month's delivery."""
    return date.fromordinal(end).strftime("%Y-%m")


def write_sources(out: Path, error_scale: float = 1.0) -> dict[str, Counts]:
    """Write every month's delivery into `out/sources/deliveries/`, an empty drop folder per
    department in `out/sources/inbox/`, and `out/truth/source_records.parquet`."""
    if error_scale < 0:
        raise ValueError("--error-scale must be 0 or more")
    truth = load_truth(out / "truth")
    ix, base = build_systems(truth, error_scale)
    systems = build(ix, base, error_scale)
    root = out / "sources"
    if root.exists():
        shutil.rmtree(root)  # the generator's own folder: no file of an earlier run may linger
    county = truth.meta["county_name"]
    for m, end in enumerate(ix.ends):
        month = root / "deliveries" / period_of(end)
        for name, (folder, file) in FILES.items():
            path = month / folder / file
            path.parent.mkdir(parents=True, exist_ok=True)
            system = systems[name]
            rows = list(system.rows(m))
            if name == "household_registry":
                rows = [{**r, EXPORTED: date_iso(date.fromordinal(end))} for r in rows]
                _write_csv(path, [*system.columns, EXPORTED], rows, "gb18030", None)
            elif name == "disability":
                _write_xlsx(path, system.columns, rows, f"{county}持证残疾人名册", end)
            elif name == "market":
                _write_jsonl(path, rows)
            else:
                _write_parquet(path, COLUMNS[name], rows)
    for folder in sorted({folder for folder, _ in FILES.values()}):
        (root / "inbox" / folder).mkdir(parents=True)
    _write_records(out / "truth", ix, systems)
    counts = {name: system.counts() for name, system in systems.items()}
    _update_meta(out / "truth", ix, counts, error_scale, sources_readme(ix, error_scale))
    return counts


def _write_parquet(path: Path, schema: dict[str, pa.DataType], rows: list[dict[str, Any]]):
    """Typed columns (dates as date32, counts as int32), no pandas metadata: same rows, same
    bytes."""
    arrow = pa.schema(list(schema.items()))
    table = pa.table({c: [r[c] for r in rows] for c in schema}, schema=arrow)
    pq.write_table(table, path)


def deliver(out: Path, period: str) -> list[Path]:
    """Copy one month's delivery into the departments' drop folders (`sources/inbox/<dept>/`),
    as the departments would drop their exports; returns the files written there."""
    month = out / "sources" / "deliveries" / period
    if not month.is_dir():
        raise FileNotFoundError(f"no delivery for period {period}: {month} does not exist")
    copied = []
    for path in sorted(p for p in month.rglob("*") if p.is_file()):
        target = out / "sources" / "inbox" / path.relative_to(month)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied.append(target)
    return copied


def sources_readme(ix: TruthIndex, scale: float) -> str:
    ends = ", ".join(date.fromordinal(d).isoformat() for d in ix.ends)
    rows = "\n".join(
        f"| {name} | `deliveries/<YYYY-MM>/{folder}/{file}` |"
        for name, (folder, file) in FILES.items()
    )
    return SOURCES_README.format(mark=SOURCES_MARK, ends=ends, scale=f"{scale:g}", rows=rows)


SOURCES_README = """\
{mark}

The second demo county (`onetable demo generate --variant 2`; docs/demo.md, "The second
county"): the records of the first county's seven systems, for this county, as its departments
export them, at the month ends {ends} (error scale {scale}; the errors and quirks are the first
county's, see docs/demo.md). Each month is a delivery of files named without a date:

| source | file |
|---|---|
{rows}

`onetable.demo.variant2.deliver(DIR, "YYYY-MM")` copies a month's files into `inbox/<dept>/`.
公安's CSV carries the export date in 导出日期. 民政 has one record per person (救助对象编号) with
every programme in 享受待遇 (城乡低保、高龄津贴, a few with '，'); 高龄津贴 is every resident aged 80
and over at the month end, 居家养老服务 a seeded share of residents 60 and over; the other
programmes are the truth's tags (person_status) under the county's names. `source_records.parquet`
is as for the first county; a 民政 record's address is the person's, and it carries no programme.
"""
