"""The seven department systems as each would show the county at each month end.

Every system is a view of the truth (read back with `truth.load_truth`), with the department's
own key, columns and formats, and with the errors and quirks of `errors.py`. A system is built
month by month: on the last day of each simulated month (its month end) it holds some records,
each a row of the department's columns; a record whose row differs from the month before is a
new version, dated (更新时间) on the day of the change in the truth that made it differ, at a
working hour. What the systems do with a record over the months:

| system | a change | an end | a record that disappears |
|---|---|---|---|
| household_registry | row updated (户主变更, 户口迁移 with a new 户号) | 人员状态 迁出/注销/死亡 | never |
| civil_affairs | row updated (a move) | the person leaves the list | from the next monthly file |
| health | row updated (a move, 严重精神障碍) | 档案状态 迁出/死亡 | a duplicate archive merged |
| disability | row updated (a move) | certificate withdrawn; a new grade is a new certificate | from the next file |
| rental | - | the tenant or the rental goes | from the next file |
| grid_residents | row updated (a move) | 状态 迁出/死亡; a return sets 正常 again | never |
| grid_key_places | row updated (负责人) | 状态 注销 | never |
| market | row updated (法定代表人) | 登记状态 注销, listed that month | from the next file |

Keys are the department's own and unrelated across systems: serial numbers in the order the
department opened its records (ties broken by the dice), or opaque ones (the grid's UUIDs).
Nothing here reaches the console; the writers in systems.py put it on disk.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd

from onetable.demo import errors as E
from onetable.demo.errors import Dice
from onetable.demo.formats import (
    RENTAL_STYLES,
    address_text,
    date_chinese,
    date_compact,
    date_dotted,
    date_iso,
    rental_address,
)
from onetable.demo.truth import Truth

INF = 10**9  # an open interval's end, as a day ordinal
# Coverage: share of residents with a record (a property of the system, not an error).
HEALTH_COVERAGE = 0.92  # 居民电子健康档案 建档率 about 90% (national target; recalled)
GRID_COVERAGE = 0.97  # grid workers miss a few residents
HEALTH_ERA = date(2009, 1, 1).toordinal()  # 基本公共卫生服务 began in 2009
GRID_ERA = date(2021, 1, 1).toordinal()  # the grid system went live
NEWBORN_ARCHIVE_LAG = (7, 29)  # days from birth to the archive (新生儿访视)
ARRIVAL_ARCHIVE_LAG = (0, 31)  # days from arriving to an archive or a grid record
RENTAL_MIN_AGE = 16  # tenants registered: everyone with an ID card
WORK_HOURS = (8, 19)  # 更新时间 falls in office hours
STATUS_ENDED = {"迁出", "注销", "死亡"}
PROGRAMS = {  # 民政 lists: truth tag -> (类别, code in 救助编号)
    "低保": ("低保", "DB"),
    "特困": ("特困", "TK"),
    "退役军人": ("退役军人", "YF"),
    "独居": ("独居老人", "DJ"),
    "空巢": ("空巢老人", "KC"),
    "失能": ("失能老人", "SN"),
    "计生特殊家庭": ("计生特殊家庭", "JS"),
}
GRADES = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}
MARKET_KINDS = {
    "个体工商户": "个体工商户",
    "企业": "有限责任公司",
    "农民专业合作社": "农民专业合作社",
}


# ---- the truth, indexed by person and day ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    pid: str
    name: str
    sex: str
    birth: date
    id_number: str
    ethnicity: str
    phone: str | None
    death: int | None
    mother: str | None  # her person id, when she is in the truth


@dataclass(frozen=True, slots=True)
class Stay:
    """An in-county residence interval."""

    start: int
    end: int  # INF while open
    aid: str
    hid: str


@dataclass(frozen=True, slots=True)
class Reg:
    start: int
    end: int
    status: str
    hid: str | None
    relation: str | None
    aid: str | None
    area: str | None
    outside: str | None


def _missing(value) -> bool:
    """pd.isna for a truth date (None, NaT, NaN), without its cost a million times over."""
    return value is None or value is pd.NaT or value != value


def _day(value) -> int | None:
    return None if _missing(value) else value.toordinal()


def _end(value) -> int:
    return INF if _missing(value) else value.toordinal()


def _str(value) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


def month_ends(start: date, months: int) -> list[int]:
    """The last day of each simulated month (start + m months, less a day), as ordinals."""
    out = []
    for m in range(1, months + 1):
        month = start.month - 1 + m
        year, month = start.year + month // 12, month % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        out.append(date(year, month, day).toordinal() - 1)
    return out


def _at(intervals: list, day: int):
    for row in intervals:
        if row.start <= day < row.end:
            return row
    return None


def _records(frame: pd.DataFrame) -> Iterable[dict[str, Any]]:
    """`frame.to_dict("records")`, the same values, at half its cost (no boxing per value)."""
    columns = list(frame.columns)
    values = zip(*(frame[c].tolist() for c in columns), strict=True)
    return [dict(zip(columns, row, strict=True)) for row in values]


class TruthIndex:
    """The truth as Python lookups by person, address, unit and day (ordinals)."""

    def __init__(self, truth: Truth):
        meta = truth.meta
        self.seed = int(meta["seed"])
        self.county = meta["county_code"]
        self.start = date.fromisoformat(meta["start"]).toordinal()
        self.ends = month_ends(date.fromisoformat(meta["start"]), int(meta["months"]))
        self.persons = {
            r["person_id"]: Person(
                r["person_id"],
                r["name"],
                r["sex"],
                r["birth_date"].date(),
                r["id_number"],
                r["ethnicity"],
                _str(r["phone"]),
                _day(r["death_date"]),
                _str(r["mother_id"]),
            )
            for r in _records(truth.persons)
        }
        self.addresses = {r["address_id"]: r for r in _records(truth.addresses)}
        self.hukou = dict(
            zip(truth.households["household_id"], truth.households["hukou_no"], strict=True)
        )
        self.residence: dict[str, list[Stay]] = defaultdict(list)
        for r in _records(truth.person_residence[truth.person_residence["in_county"]]):
            self.residence[r["person_id"]].append(
                Stay(_day(r["valid_from"]), _end(r["valid_to"]), r["address_id"], r["household_id"])
            )
        self.registration: dict[str, list[Reg]] = defaultdict(list)
        for r in _records(truth.person_registration):
            self.registration[r["person_id"]].append(
                Reg(
                    _day(r["valid_from"]),
                    _end(r["valid_to"]),
                    r["status"],
                    _str(r["household_id"]),
                    _str(r["relation"]),
                    _str(r["address_id"]),
                    _str(r["area_code"]),
                    _str(r["outside_address"]),
                )
            )
        self.status: dict[str, list[_Row]] = defaultdict(list)  # by tag
        self.tags: dict[tuple[str, str], list[_Row]] = defaultdict(list)  # by (person, tag)
        for r in _records(truth.person_status):
            r["start"], r["end"] = _day(r["valid_from"]), _end(r["valid_to"])
            row = _Row(r)
            self.status[r["tag"]].append(row)
            self.tags[(r["person_id"], r["tag"])].append(row)
        self.moves: dict[str, list[tuple[int, str]]] = defaultdict(list)
        moves = truth.events[truth.events["type"] == "move_in_county"]
        for r in _records(moves):
            self.moves[r["person_id"]].append((_day(r["date"]), r["from_address_id"]))
        self.units = {r["unit_id"]: r for r in _records(truth.units)}
        self.unit_status: dict[str, list] = defaultdict(list)
        for r in _records(truth.unit_status):
            r["start"], r["end"] = _day(r["valid_from"]), _end(r["valid_to"])
            self.unit_status[r["unit_id"]].append(_Row(r))
        self.key_places = list(_records(truth.key_places))
        self.rentals = list(_records(truth.rentals))

    # ---- by person and day --------------------------------------------------------------

    def stay(self, pid: str, day: int) -> Stay | None:
        return _at(self.residence.get(pid, ()), day)

    def last_stay(self, pid: str, day: int) -> Stay | None:
        """The latest in-county residence that began by `day` (held or ended)."""
        best = None
        for s in self.residence.get(pid, ()):
            if s.start <= day and (best is None or s.start > best.start):
                best = s
        return best

    def reg(self, pid: str, day: int) -> Reg | None:
        return _at(self.registration.get(pid, ()), day)

    def county_reg(self, pid: str, day: int) -> Reg | None:
        """The person's 户籍 row in the county on `day` (an ending status keeps its household)."""
        r = self.reg(pid, day)
        return r if r is not None and r.hid is not None else None

    def earlier_address(self, pid: str, day: int, current: str) -> str | None:
        """An address the person had before the current one: the home left by the latest move
        within the county, else the 户籍 home of someone living elsewhere in the county."""
        moves = [m for m in self.moves.get(pid, ()) if m[0] <= day]
        if moves:
            before = max(moves)[1]
            return before if before != current else None
        r = self.reg(pid, day)
        if r is not None and r.status == "正常" and r.hid and r.aid and r.aid != current:
            return r.aid
        return None

    def tag(self, pid: str, tag: str, day: int) -> _Row | None:
        return _at(self.tags.get((pid, tag), ()), day)

    def age(self, pid: str, day: int) -> int:
        b = self.persons[pid].birth
        d = date.fromordinal(day)
        return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


class _Row(dict):
    """A dict with `start` and `end` attributes, so `_at` reads truth rows too."""

    @property
    def start(self) -> int:
        return self["start"]

    @property
    def end(self) -> int:
        return self["end"]


# ---- records and versions --------------------------------------------------------------------


@dataclass(slots=True)
class Rec:
    """A record as the system shows it at one month end."""

    row: dict[str, Any]  # department column -> value (str, int, date or None)
    truth: dict[str, str | None]  # person_id, household_id, address_id, shown_address_id, …
    errors: tuple[str, ...]
    quirks: tuple[str, ...]
    since: int  # the day of the latest change in what the row shows
    status: str | None = None
    deleted: bool = False


@dataclass(slots=True)
class Version:
    key: str
    first: int  # index of the first month end that shows it
    last: int | None  # index of the first month end that no longer does; None: still shown
    updated: datetime
    rec: Rec


TRUTH_IDS = ("person_id", "household_id", "address_id", "shown_address_id", "unit_id",
             "related_person_id")  # fmt: skip


@dataclass(frozen=True)
class Counts:
    """What the summary and meta.json say of a system, kept once its records are written."""

    records: list[int]  # at each month end
    versions: int
    flawed: int  # versions with errors


@dataclass
class System:
    """One department source: its key column, its columns, its records at each month end."""

    name: str
    key: str
    columns: list[str]
    views: list[dict[str, Rec]]
    versions: list[Version] = field(default_factory=list)
    _by_key: list[Version] = field(default_factory=list, repr=False)

    def build_versions(self, ends: list[int], dice: Dice) -> None:
        """A new version wherever a record's row differs from the month before; its 更新时间 is
        the day of the change (within that month), at an office hour from the dice."""
        current: dict[str, Version] = {}
        for m, view in enumerate(self.views):
            for key in sorted(set(current) - set(view)):
                current.pop(key).last = m
            for key in sorted(view):
                rec = view[key]
                old = current.get(key)
                if old is not None and old.rec.row == rec.row:
                    continue
                day = min(rec.since, ends[m]) if m == 0 else max(rec.since, ends[m - 1] + 1)
                day = min(day, ends[m])
                seconds = dice.index(
                    f"{key}/{m}", "updated", (WORK_HOURS[1] - WORK_HOURS[0]) * 3600
                )
                when = datetime.combine(date.fromordinal(day), time(WORK_HOURS[0]))
                version = Version(key, m, None, when + timedelta(seconds=seconds), rec)
                if old is not None:
                    old.last = m
                current[key] = version
                self.versions.append(version)

    def counts(self) -> Counts:
        return Counts(
            [len(view) for view in self.views],
            len(self.versions),
            sum(1 for v in self.versions if v.rec.errors),
        )

    def rows(self, m: int, *, updated: str | None = None) -> Iterator[dict[str, Any]]:
        """The rows shown at month end `m`, by key; with `updated`, that column holds 更新时间.
        One at a time: a writer need not hold a million copies."""
        if len(self._by_key) != len(self.versions):
            self._by_key = sorted(self.versions, key=lambda v: v.key)
        for v in self._by_key:
            if v.first <= m and (v.last is None or v.last > m):
                row = dict(v.rec.row)
                if updated:
                    row[updated] = v.updated.isoformat(" ")  # whole seconds: YYYY-MM-DD HH:MM:SS
                yield row


# ---- shared pieces ---------------------------------------------------------------------------


class Shown:
    """A person's identity fields as one record shows them, with its errors and quirks."""

    __slots__ = ("birth", "errors", "id", "name", "quirks")

    def __init__(self, person: Person, dice: Dice, rid: str, *, missing_id: float = 0.0,
                 legacy15: bool = False):  # fmt: skip
        self.quirks: list[str] = []
        self.errors: list[str] = []
        number = person.id_number
        if legacy15 and person.birth.year < 2000 and dice.quirk(rid, "id_legacy_15", E.LEGACY_ID15):
            number = E.legacy_id15(number)
            self.quirks.append("id_legacy_15")
        self.id, errs = E.id_with_errors(number, dice, rid, missing_rate=missing_id)
        self.errors += errs
        self.name, errs = E.name_with_errors(person.name, dice, rid)
        self.errors += errs
        self.birth, errs = E.birth_date_with_errors(person.birth, dice, rid)
        self.errors += errs


def _serials(items: Iterable[tuple[Any, int, str]], dice: Dice) -> dict[Any, int]:
    """1, 2, 3… by (day, dice) for (item, day it was opened, record id): the order a department
    numbered its records."""
    ordered = sorted(items, key=lambda t: (t[1], dice.u(t[2], "order"), t[2]))
    return {item: i + 1 for i, (item, _, _) in enumerate(ordered)}


def _truth(
    *, person_id=None, household_id=None, address_id=None, shown_address_id=None, unit_id=None,
    related_person_id=None,
) -> dict[str, str | None]:  # fmt: skip
    """The truth's ids of a record (TRUTH_IDS), None where they do not apply."""
    return {
        "person_id": person_id, "household_id": household_id, "address_id": address_id,
        "shown_address_id": shown_address_id, "unit_id": unit_id,
        "related_person_id": related_person_id,
    }  # fmt: skip


def _address_choice(ix: TruthIndex, dice: Dice, rid: str, pid: str, day: int, stay: Stay | None):
    """(true address, shown address, error) of someone living at `stay`: an earlier address is
    shown when the record went stale."""
    if stay is None:
        return None, None, None
    before = ix.earlier_address(pid, day, stay.aid)
    if before is not None and dice.error(rid, "address_stale", E.STALE_ADDRESS):
        return stay.aid, before, "address_stale"
    return stay.aid, stay.aid, None


# ---- 公安户籍 --------------------------------------------------------------------------------

REGISTRY_COLUMNS = ["人员编号", "公民身份号码", "姓名", "性别", "民族", "出生日期", "户号",
                    "与户主关系", "户籍地址", "行政区划代码", "人员状态", "变动日期", "迁往地区",
                    "联系电话"]  # fmt: skip


def household_registry(ix: TruthIndex, dice: Dice) -> System:
    """Everyone ever registered in the county (户籍人口), ending statuses kept; the registry is
    the reference for ID numbers and names, so no errors are injected into it."""
    first = {}
    for pid, rows in ix.registration.items():
        days = [r.start for r in rows if r.hid is not None]
        if days and min(days) <= ix.ends[-1]:
            first[pid] = min(days)
    serial = _serials(((p, d, p) for p, d in first.items()), dice)
    keys = {p: f"RK{serial[p]:010d}" for p in first}
    views = []
    for end in ix.ends:
        view = {}
        for pid, opened in first.items():
            if opened > end:
                continue
            r = ix.county_reg(pid, end) or next(
                x for x in reversed(ix.registration[pid]) if x.hid and x.start <= end
            )
            p = ix.persons[pid]
            a = ix.addresses[r.aid]
            row = {
                "人员编号": keys[pid], "公民身份号码": p.id_number, "姓名": p.name, "性别": p.sex,
                "民族": p.ethnicity, "出生日期": date_iso(p.birth), "户号": ix.hukou[r.hid],
                "与户主关系": r.relation, "户籍地址": address_text(a, "province"),
                "行政区划代码": a["village_code"], "人员状态": r.status,
                "变动日期": date_iso(date.fromordinal(r.start)),
                "迁往地区": r.area if r.status == "迁出" else None, "联系电话": p.phone,
            }  # fmt: skip
            view[keys[pid]] = Rec(
                row, _truth(person_id=pid, household_id=r.hid, address_id=r.aid,
                            shown_address_id=r.aid), (), (), r.start, r.status,
                r.status in STATUS_ENDED,
            )  # fmt: skip
        views.append(view)
    return System("household_registry", "人员编号", REGISTRY_COLUMNS, views)


# ---- 卫健 健康档案 ----------------------------------------------------------------------------

HEALTH_COLUMNS = ["健康档案编号", "姓名", "性别", "出生日期", "身份证号", "联系电话", "现住址",
                  "所属村居", "建档机构", "建档日期", "严重精神障碍", "档案状态"]  # fmt: skip


def _clinic(a: dict) -> str:
    township = a["township_name"]
    return township + ("社区卫生服务中心" if township.endswith("街道") else "卫生院")


def _opened(ix: TruthIndex, dice: Dice, pid: str, era: int, lag: tuple[int, int]) -> int | None:
    """When a system first recorded a resident: some day since `era` for those living in the
    county before the period, else days after they arrived (were born)."""
    stays = ix.residence.get(pid)
    if not stays:
        return None
    first = min(s.start for s in stays)
    if first < ix.start:
        lo = max(first, era)
        return lo + dice.index(pid, "opened", max(1, ix.start - 1 - lo)) if lo < ix.start else first
    if first > ix.ends[-1]:
        return None
    born_here = ix.persons[pid].birth.toordinal() == first
    lo, hi = NEWBORN_ARCHIVE_LAG if born_here else lag
    day = first + lo + dice.index(pid, "opened_lag", hi - lo)
    return day if ix.stay(pid, day) is not None else None  # gone before they were recorded


def health(ix: TruthIndex, dice: Dice) -> System:
    """Archives of residents (about 92%), kept after a death or a departure with their status;
    1% of people resident at the start have a second, duplicate archive, merged away (deleted)
    at a quarter a month. Missing ID numbers (15%), the usual name, date and address errors; a
    维吾尔族 name's · is typed as '.'."""
    archives = []  # (rid, pid, opened, merged month index or None, duplicate)
    for pid in ix.residence:
        if not dice.quirk(pid, "covered", HEALTH_COVERAGE):
            continue
        opened = _opened(ix, dice, pid, HEALTH_ERA, ARRIVAL_ARCHIVE_LAG)
        if opened is None:
            continue
        archives.append((pid, pid, opened, None, False))
        if opened < ix.start and dice.error(pid, "duplicate_record", E.HEALTH_DUPLICATE):
            dup_opened = opened + dice.index(pid, "duplicate_opened", max(1, ix.start - 1 - opened))
            merged = next(
                (m for m in range(1, len(ix.ends))
                 if dice.u(pid, f"merged_{m}") < E.HEALTH_DUPLICATE_MERGED_PER_MONTH),
                None,
            )  # fmt: skip
            archives.append((pid + "/duplicate", pid, dup_opened, merged, True))
    village_of = {}
    for rid, pid, opened, _, _ in archives:
        s = ix.stay(pid, opened) or min(ix.residence[pid], key=lambda s: s.start)
        village_of[rid] = ix.addresses[s.aid]["village_code"]
    by_village: dict[str, list] = defaultdict(list)
    for rid, _, opened, _, _ in archives:
        by_village[village_of[rid]].append((rid, opened, rid))
    keys = {}
    for village, items in by_village.items():
        for rid, n in _serials(items, dice).items():
            keys[rid] = f"{village}{n:05d}"
    shown = {}
    views = []
    for m, end in enumerate(ix.ends):
        view = {}
        for rid, pid, opened, merged, duplicate in archives:
            if opened > end or (merged is not None and merged <= m):
                continue
            p = ix.persons[pid]
            if rid not in shown:
                shown[rid] = Shown(p, dice, rid, missing_id=E.MISSING_ID["health"])
            s = shown[rid]
            number, quirks, own = s.id, tuple(s.quirks), list(s.errors)
            if _under_mothers_number(ix, dice, rid, p, opened, end):
                number, quirks = ix.persons[p.mother].id_number, (*quirks, "id_of_mother")
                own = [e for e in own if not e.startswith("id_")]  # its own number's, not shown
            stay = ix.stay(pid, end)
            true_aid, aid, stale = _address_choice(ix, dice, rid, pid, end, stay)
            since = opened
            if stay is not None:
                status, hid = "在管", stay.hid
                since = max(since, stay.start) if not stale else since
            else:
                last = ix.last_stay(pid, end)
                true_aid = aid = last.aid
                hid = None
                status = "死亡" if p.death is not None and p.death <= end else "迁出"
                since = max(since, p.death if status == "死亡" else last.end)
            mental = ix.tag(pid, "严重精神障碍", end)
            if mental is not None:
                since = max(since, mental.start)
            a = ix.addresses[aid]
            errs = own + ([stale] if stale else []) + (["duplicate_record"] if duplicate else [])
            name = s.name.replace("·", ".")
            row = {
                "健康档案编号": keys[rid], "姓名": name, "性别": p.sex,
                "出生日期": date_iso(s.birth), "身份证号": number, "联系电话": p.phone,
                "现住址": address_text(a, "county"), "所属村居": a["village_name"],
                "建档机构": _clinic(ix.addresses[_first_address(ix, pid, opened)]),
                "建档日期": date_iso(date.fromordinal(opened)),
                "严重精神障碍": "是" if mental is not None else "否", "档案状态": status,
            }  # fmt: skip
            quirks += ("name_dot_variant",) if "·" in s.name else ()
            view[keys[rid]] = Rec(
                row, _truth(person_id=pid, household_id=hid, address_id=true_aid,
                            shown_address_id=aid), tuple(errs), quirks, since, status,
                status != "在管",
            )  # fmt: skip
        views.append(view)
    return System("health", "健康档案编号", HEALTH_COLUMNS, views)


def _under_mothers_number(
    ix: TruthIndex, dice: Dice, rid: str, p: Person, opened: int, end: int
) -> bool:
    """Whether a newborn's archive shows its mother's number at `end`: opened before 落户 gave
    the child a number of its own (NEWBORN_MOTHER_ID of them), until 落户."""
    if p.mother is None or p.birth.toordinal() < ix.start:
        return False
    settled = min((r.start for r in ix.registration.get(p.pid, ())), default=None)
    before = settled is None or opened < settled
    return (
        before
        and (settled is None or end < settled)
        and dice.quirk(rid, "id_of_mother", E.NEWBORN_MOTHER_ID)
    )


def _first_address(ix: TruthIndex, pid: str, day: int) -> str:
    s = ix.stay(pid, day) or min(ix.residence[pid], key=lambda s: s.start)
    return s.aid


# ---- 网格 实有人口 and 重点场所 ---------------------------------------------------------------

GRID_COLUMNS = ["网格人员ID", "姓名", "性别", "民族", "身份证号", "出生日期", "联系电话",
                "居住地址", "网格编码", "微网格编码", "人员类型", "状态"]  # fmt: skip
PLACE_COLUMNS = ["场所编号", "场所名称", "场所类型", "场所地址", "网格编码", "微网格编码",
                 "负责人", "联系电话", "状态"]  # fmt: skip


def grid_residents(ix: TruthIndex, dice: Dice) -> System:
    """Residents by grid and micro-grid (about 97%), from when the grid worker recorded them; a
    death or a departure sets 状态, a return sets it back. Missing ID numbers (8%), the usual
    errors; names typed with spaces (5%)."""
    people = []
    for pid in ix.residence:
        if dice.quirk(pid, "covered", GRID_COVERAGE):
            opened = _opened(ix, dice, pid, GRID_ERA, ARRIVAL_ARCHIVE_LAG)
            if opened is not None:
                people.append((pid, opened))
    keys = {pid: _uuid(dice.hex(pid, "key")) for pid, _ in people}
    shown = {}
    views = []
    for end in ix.ends:
        view = {}
        for pid, opened in people:
            if opened > end:
                continue
            p = ix.persons[pid]
            if pid not in shown:
                shown[pid] = Shown(p, dice, pid, missing_id=E.MISSING_ID["grid_residents"])
            s = shown[pid]
            stay = ix.stay(pid, end)
            true_aid, aid, stale = _address_choice(ix, dice, pid, pid, end, stay)
            since = opened
            if stay is not None:
                status, hid = "正常", stay.hid
                since = max(since, stay.start) if not stale else max(since, _returned(ix, pid, end))
            else:
                last = ix.last_stay(pid, end)
                true_aid = aid = last.aid
                hid = None
                status = "死亡" if p.death is not None and p.death <= end else "迁出"
                since = max(since, p.death if status == "死亡" else last.end)
            r = ix.reg(pid, end)
            registered = r is not None and r.status == "正常" and r.hid is not None
            name, quirks = s.name, list(s.quirks)
            if dice.quirk(pid, "name_spaces", E.NAME_SPACES):
                name = E.spaced_name(name, dice, pid)
                quirks.append("name_spaces")
            born, errors = date_iso(s.birth), list(s.errors)
            if s.id is None and dice.quirk(pid, "no_birth_date", E.GRID_NO_BIRTH_WITHOUT_ID):
                born = None
                quirks.append("birth_date_missing")
                errors = [e for e in errors if e != "birth_date_swapped"]  # no date to swap
            a = ix.addresses[aid]
            row = {
                "网格人员ID": keys[pid], "姓名": name, "性别": p.sex, "民族": p.ethnicity,
                "身份证号": s.id, "出生日期": born, "联系电话": p.phone,
                "居住地址": address_text(a, "village"), "网格编码": a["grid_id"],
                "微网格编码": a["micro_grid_id"], "人员类型": "户籍人口" if registered else "流动人口",
                "状态": status,
            }  # fmt: skip
            view[keys[pid]] = Rec(
                row, _truth(person_id=pid, household_id=hid, address_id=true_aid,
                            shown_address_id=aid),
                tuple(errors) + ((stale,) if stale else ()), tuple(quirks), since, status,
                status != "正常",
            )  # fmt: skip
        views.append(view)
    return System("grid_residents", "网格人员ID", GRID_COLUMNS, views)


def _returned(ix: TruthIndex, pid: str, day: int) -> int:
    """The start of the person's stay on `day` if they came back into the county to it (the
    record's status changed then), else 0."""
    stay = ix.stay(pid, day)
    stays = ix.residence.get(pid, ())
    came_back = stay is not None and not any(s.end == stay.start for s in stays)
    return stay.start if came_back and stay.start >= ix.start else 0


def _uuid(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def grid_key_places(ix: TruthIndex, dice: Dice) -> System:
    """Key places with their 负责人 (the unit's legal representative) and status; no errors."""
    places = [k for k in ix.key_places if _end(k["valid_to"]) > ix.start]
    opened = {k["place_id"]: _day(k["valid_from"]) for k in places}
    by_village: dict[str, list] = defaultdict(list)
    for k in places:
        village = ix.addresses[k["address_id"]]["village_code"]
        by_village[village].append((k["place_id"], opened[k["place_id"]], k["place_id"]))
    keys = {}
    for village, items in by_village.items():
        for place, n in _serials(items, dice).items():
            keys[place] = f"CS{village}{n:04d}"
    views = []
    for end in ix.ends:
        view = {}
        for k in places:
            start, stop = opened[k["place_id"]], _end(k["valid_to"])
            if start > end:
                continue
            unit = _at(ix.unit_status[k["unit_id"]], min(end, stop - 1))
            rep = ix.persons[unit["legal_rep_id"]]
            a = ix.addresses[k["address_id"]]
            status = "正常" if stop > end else "注销"
            row = {
                "场所编号": keys[k["place_id"]], "场所名称": k["name"], "场所类型": k["category"],
                "场所地址": address_text(a, "village"), "网格编码": a["grid_id"],
                "微网格编码": a["micro_grid_id"], "负责人": rep.name, "联系电话": rep.phone,
                "状态": status,
            }  # fmt: skip
            since = stop if status == "注销" else max(start, unit.start)
            view[keys[k["place_id"]]] = Rec(
                row, _truth(unit_id=k["unit_id"], address_id=k["address_id"],
                            shown_address_id=k["address_id"], related_person_id=rep.pid),
                (), (), since, status, status == "注销",
            )  # fmt: skip
        views.append(view)
    return System("grid_key_places", "场所编号", PLACE_COLUMNS, views)


# ---- 民政 ---------------------------------------------------------------------------------

CIVIL_COLUMNS = ["救助编号", "类别", "姓名", "性别", "身份证号", "出生日期", "乡镇（街道）",
                 "村（社区）", "居住地址", "联系电话", "认定日期", "家庭编号", "备注"]  # fmt: skip


def _home(ix: TruthIndex, dice: Dice, rid: str, pid: str, day: int):
    """(true address, shown address, stale error, household, since) for the county's lists of
    people living here or registered here and living away (their 户籍 address); None for
    someone neither (the 户口 moved out: the county's case ends)."""
    stay = ix.stay(pid, day)
    if stay is not None:
        true_aid, aid, stale = _address_choice(ix, dice, rid, pid, day, stay)
        return true_aid, aid, stale, stay.hid, stay.start
    r = ix.county_reg(pid, day)
    if r is not None and r.status == "正常":
        return r.aid, r.aid, None, None, r.start
    return None


def civil_affairs(ix: TruthIndex, dice: Dice) -> System:
    """One record per person and list (低保, 特困, 退役军人, and the 特殊困难老年人: 独居, 空巢,
    失能, 计生特殊家庭), for as long as the person is on it; 15-digit ID numbers for some born
    before 2000, dates as 1950年3月2日 or 19500302 by record, the usual errors."""
    spells = []  # (rid, pid, tag, row)
    for tag in PROGRAMS:
        for r in ix.status.get(tag, ()):
            if any(r.start <= end < r.end for end in ix.ends):
                spells.append((f"{r['person_id']}/{tag}/{r.start}", r["person_id"], tag, r))
    township = {}
    for rid, pid, _, r in spells:
        home = next(
            (
                h
                for d in (max(r.start, ix.start - 1), *ix.ends)
                if (h := _home(ix, dice, rid, pid, d))
            ),
            None,
        )
        township[rid] = ix.addresses[home[1]]["township_code"] if home else ix.county + "000"
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for rid, _, tag, r in spells:
        groups[(PROGRAMS[tag][1], township[rid])].append((rid, r.start, rid))
    keys = {}
    for (code, town), items in groups.items():
        for rid, n in _serials(items, dice).items():
            keys[rid] = f"MZ{code}{town}{n:05d}"
    shown = {}
    views = []
    for end in ix.ends:
        view = {}
        for rid, pid, tag, r in spells:
            if not r.start <= end < r.end:
                continue
            home = _home(ix, dice, rid, pid, end)
            if home is None:
                continue
            true_aid, aid, stale, hid, moved = home
            p = ix.persons[pid]
            if rid not in shown:
                shown[rid] = Shown(p, dice, rid, legacy15=True)
            s = shown[rid]
            chinese = dice.quirk(rid, "date_style", E.CHINESE_DATE_STYLE)
            dotted = dice.quirk(rid, "date_dotted", E.DOTTED_DATE)
            style = date_dotted if dotted else date_chinese if chinese else date_compact
            wide = dice.quirk(rid, "date_fullwidth", E.FULLWIDTH_DATE)
            born, decided = style(s.birth), style(date.fromordinal(r.start))
            if wide:
                born, decided = E.fullwidth(born), E.fullwidth(decided)
            a = ix.addresses[aid]
            case = r.get("case_id") if tag == "低保" else None
            row = {
                "救助编号": keys[rid], "类别": PROGRAMS[tag][0], "姓名": s.name, "性别": p.sex,
                "身份证号": s.id, "出生日期": born, "乡镇（街道）": a["township_name"],
                "村（社区）": a["village_name"], "居住地址": address_text(a, "township"),
                "联系电话": p.phone, "认定日期": decided,
                "家庭编号": f"JT{a['township_code']}{case[2:]}" if case else None,
                "备注": _str(r.get("detail")),
            }  # fmt: skip
            quirks = (*s.quirks, style.__name__, *(("date_fullwidth",) if wide else ()))
            since = r.start if stale else max(r.start, moved)
            view[keys[rid]] = Rec(
                row, _truth(person_id=pid, household_id=hid, address_id=true_aid,
                            shown_address_id=aid),
                tuple(s.errors) + ((stale,) if stale else ()), quirks, since,
            )  # fmt: skip
        views.append(view)
    return System("civil_affairs", "救助编号", CIVIL_COLUMNS, views)


# ---- 残联 ---------------------------------------------------------------------------------

DISABILITY_COLUMNS = ["残疾人证号", "姓名", "性别", "身份证号", "残疾类别", "残疾等级",
                      "乡镇（街道）", "村（社区）", "现住址", "联系电话", "发证日期"]  # fmt: skip


def disability(ix: TruthIndex, dice: Dice) -> System:
    """持证残疾人: one record per certificate (a new grade is a new certificate); the 20-digit
    残疾人证号 is the ID number as recorded, the category (1-7) and the grade (1-4). Lower-case
    x and full-width digits as quirks, the usual errors (no birth date column)."""
    certs = [
        (f"{r['person_id']}/残疾/{r.start}", r["person_id"], r)
        for r in ix.status.get("残疾", ())
        if any(r.start <= end < r.end for end in ix.ends)
    ]
    static = {}
    for rid, pid, r in certs:
        p = ix.persons[pid]
        s = Shown(p, dice, rid)
        number, quirks = s.id, list(s.quirks)
        key = f"{number}{r['disability_category']}{int(r['disability_grade'])}"
        phone = p.phone
        if number.endswith("X") and dice.quirk(rid, "id_lowercase_x", E.LOWERCASE_X):
            number, key = number[:-1] + "x", key[:-3] + "x" + key[-2:]
            quirks.append("id_lowercase_x")
        if dice.quirk(rid, "fullwidth_digits", E.FULLWIDTH_DIGITS):
            number, key = E.fullwidth(number), E.fullwidth(key)
            phone = E.fullwidth(phone) if phone else phone
            quirks.append("fullwidth_digits")
        static[rid] = (s, number, key, phone, tuple(quirks))
    views = []
    for end in ix.ends:
        view = {}
        for rid, pid, r in certs:
            if not r.start <= end < r.end:
                continue
            home = _home(ix, dice, rid, pid, end)
            if home is None:
                continue
            true_aid, aid, stale, hid, moved = home
            p = ix.persons[pid]
            s, number, key, phone, quirks = static[rid]
            a = ix.addresses[aid]
            row = {
                "残疾人证号": key, "姓名": s.name, "性别": p.sex, "身份证号": number,
                "残疾类别": r["disability_category_name"],
                "残疾等级": GRADES[int(r["disability_grade"])],
                "乡镇（街道）": a["township_name"], "村（社区）": a["village_name"],
                "现住址": address_text(a, "province"), "联系电话": phone,
                "发证日期": date.fromordinal(r.start),
            }  # fmt: skip
            errs = tuple(e for e in s.errors if e != "birth_date_swapped")
            since = r.start if stale else max(r.start, moved)
            view[key] = Rec(
                row, _truth(person_id=pid, household_id=hid, address_id=true_aid,
                            shown_address_id=aid),
                errs + ((stale,) if stale else ()), quirks, since,
            )  # fmt: skip
        views.append(view)
    return System("disability", "残疾人证号", DISABILITY_COLUMNS, views)


# ---- 住建 出租房屋登记 -------------------------------------------------------------------------

RENTAL_COLUMNS = ["登记编号", "房屋地址", "出租人姓名", "出租人证件号码", "承租人姓名",
                  "承租人证件号码", "承租人联系电话", "承租人户籍地址", "入住日期",
                  "租赁起始日期"]  # fmt: skip


def rental(ix: TruthIndex, dice: Dice) -> System:
    """One registration per rental and tenant aged 16+, while both last. Tenants from other
    counties are in no registry of this county; addresses are written the registry's way."""
    residents_at: list[dict[str, list[tuple[str, Stay]]]] = []
    for end in ix.ends:
        at: dict[str, list[tuple[str, Stay]]] = defaultdict(list)
        for pid, stays in ix.residence.items():
            s = _at(stays, end)
            if s is not None and ix.age(pid, end) >= RENTAL_MIN_AGE:
                at[s.aid].append((pid, s))
        residents_at.append(at)
    leases = {}  # rid -> (rental row, pid, registered day)
    per_month: list[list[str]] = []
    for m, end in enumerate(ix.ends):
        here = []
        for rent in ix.rentals:
            if not _day(rent["valid_from"]) <= end < _end(rent["valid_to"]):
                continue
            for pid, stay in sorted(residents_at[m].get(rent["address_id"], ())):
                rid = f"{rent['rental_id']}/{pid}"
                if rid not in leases:
                    day = max(_day(rent["valid_from"]), stay.start)
                    leases[rid] = (rent, pid, day, stay)
                here.append(rid)
        per_month.append(here)
    serial = _serials(((rid, day, rid) for rid, (_, _, day, _) in leases.items()), dice)
    keys = {
        rid: f"ZL{date.fromordinal(day).year}{serial[rid]:06d}"
        for rid, (_, _, day, _) in leases.items()
    }
    static = {}
    views = []
    for m, end in enumerate(ix.ends):
        view = {}
        for rid in per_month[m]:
            rent, pid, day, _ = leases[rid]
            p, landlord = ix.persons[pid], ix.persons[rent["landlord_id"]]
            if rid not in static:
                s = Shown(p, dice, rid)
                style = RENTAL_STYLES[dice.index(rid, "address_style", len(RENTAL_STYLES))]
                if not dice.quirk(rid, "address_variant", E.ADDRESS_VARIANT):
                    style = "standard"
                static[rid] = (s, style)
            s, style = static[rid]
            a = ix.addresses[rent["address_id"]]
            text = rental_address(a, style)
            quirks = tuple(s.quirks) + (
                (f"address_variant:{style}",) if text != rental_address(a, "standard") else ()
            )
            r = ix.reg(pid, end)
            home = None
            if r is not None and r.hid and r.aid:
                home = address_text(ix.addresses[r.aid], "province")
            elif r is not None:
                home = r.outside
            stay = ix.stay(pid, end)
            row = {
                "登记编号": keys[rid], "房屋地址": text, "出租人姓名": landlord.name,
                "出租人证件号码": landlord.id_number, "承租人姓名": s.name,
                "承租人证件号码": s.id, "承租人联系电话": p.phone, "承租人户籍地址": home,
                "入住日期": date_iso(date.fromordinal(day)),
                "租赁起始日期": date_iso(date.fromordinal(_day(rent["valid_from"]))),
            }  # fmt: skip
            errs = tuple(e for e in s.errors if e != "birth_date_swapped")
            view[keys[rid]] = Rec(
                row, _truth(person_id=pid, household_id=stay.hid, address_id=rent["address_id"],
                            shown_address_id=rent["address_id"],
                            related_person_id=landlord.pid), errs, quirks, day,
            )  # fmt: skip
        views.append(view)
    return System("rental", "登记编号", RENTAL_COLUMNS, views)


# ---- 市场监管 ------------------------------------------------------------------------------

MARKET_COLUMNS = ["统一社会信用代码", "企业名称", "市场主体类型", "法定代表人", "证件号码",
                  "住所", "成立日期", "行业门类", "从业人数", "登记状态", "注销日期", "核准日期",
                  "登记机关"]  # fmt: skip


def market(ix: TruthIndex, dice: Dice) -> System:
    """Market entities (no 事业单位: those register elsewhere): 存续 ones, and those 注销 that
    month; a few credit codes with a wrong check character; the legal representative's name and
    ID number with the usual errors (a new representative gets his own)."""
    county = next(iter(ix.addresses.values()))
    office = address_text(county, "county")[: address_text(county, "county").index("县") + 1]
    views = []
    codes = {}
    for m, end in enumerate(ix.ends):
        view = {}
        before = ix.ends[m - 1] if m else ix.start - 1
        for uid, u in ix.units.items():
            if u["kind"] not in MARKET_KINDS:
                continue
            st = _at(ix.unit_status[uid], end)
            if st is None or (st["status"] == "注销" and st.start <= before):
                continue
            if uid not in codes:
                code, errs = u["credit_code"], ()
                if dice.error(uid, "credit_code_bad_check", E.CREDIT_CODE_BAD_CHECK):
                    code, errs = E.bad_check_char(code, dice, uid), ("credit_code_bad_check",)
                codes[uid] = (code, errs)
            code, code_errs = codes[uid]
            rep_id = st["legal_rep_id"]
            rid = f"{uid}/{rep_id}"
            rep = Shown(ix.persons[rep_id], dice, rid)
            a = ix.addresses[st["address_id"]]
            closed = st["status"] == "注销"
            row = {
                "统一社会信用代码": code, "企业名称": u["name"],
                "市场主体类型": MARKET_KINDS[u["kind"]], "法定代表人": rep.name,
                "证件号码": rep.id, "住所": address_text(a, "city"),
                "成立日期": date_iso(u["founded_on"].date()), "行业门类": u["industry_name"],
                "从业人数": int(u["employees"]), "登记状态": st["status"],
                "注销日期": date_iso(date.fromordinal(st.start)) if closed else None,
                "核准日期": date_iso(date.fromordinal(st.start)),
                "登记机关": f"{office}市场监督管理局",
            }  # fmt: skip
            errs = code_errs + tuple(e for e in rep.errors if e != "birth_date_swapped")
            view[code] = Rec(
                row, _truth(unit_id=uid, address_id=st["address_id"],
                            shown_address_id=st["address_id"], related_person_id=rep_id),
                errs, (), st.start, st["status"], closed,
            )  # fmt: skip
        views.append(view)
    return System("market", "统一社会信用代码", MARKET_COLUMNS, views)


BUILDERS: dict[str, Callable[[TruthIndex, Dice], System]] = {
    "household_registry": household_registry,
    "civil_affairs": civil_affairs,
    "health": health,
    "disability": disability,
    "rental": rental,
    "grid_residents": grid_residents,
    "grid_key_places": grid_key_places,
    "market": market,
}


def each_system(ix: TruthIndex, scale: float) -> Iterator[System]:
    """Every system with its versions, one at a time: each is independent of the others (its
    own dice), so a writer can let one go before the next is built."""
    for name, build in BUILDERS.items():
        dice = Dice(ix.seed, name, scale)
        system = build(ix, dice)
        system.build_versions(ix.ends, dice)
        yield system
        del system  # gone before the next is built, once the caller lets it go


def build_systems(truth: Truth, scale: float) -> tuple[TruthIndex, dict[str, System]]:
    """Every system with its versions, from the truth and the error scale."""
    ix = TruthIndex(truth)
    return ix, {system.name: system for system in each_system(ix, scale)}
