"""The demo county's state while it is generated, and the history it leaves behind.

Everything that changes goes through a `World` method that closes the open interval at the
day of the change and opens the next one, so every timeline is gap-free and dated by
construction. Intervals are [valid_from, valid_to): a change on day d ends the old row with
valid_to = d and starts the new one with valid_from = d. A row that would open and close on
the same day is dropped (it never held at any day). Days are proleptic ordinals
(`date.toordinal()`); people, households, addresses, units and rentals are integer indexes here
and get their string ids only when written (truth.py).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import date

import numpy as np

NONE = -1
OK = "正常"  # registration status; the others end a 户籍: 迁出, 注销, 死亡

# per-person integer arrays, grown together; NONE (-1) where there is no value
_INT_FIELDS = ("birth", "ymd", "death", "mother", "father", "spouse", "res_hh", "reg_hh")
_INT_FIELDS += ("last_event", "res_since", "reg_since")


@dataclass
class Registration:
    """The open 户籍 row of a person: a household in the county, or a place elsewhere."""

    household: int  # NONE when registered outside the county
    status: str
    relation: str | None
    area_code: str | None  # the county's code when registered here; for 迁出 the destination
    outside_address: str | None
    since: int


@dataclass
class World:
    """Mutable state (current residence, registration, statuses) and closed history rows."""

    county_code: str
    start: int  # first simulated day
    end: int  # first day after the period
    n: int = 0
    # per person, numpy for the daily vectorised checks (derived tags)
    birth: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    ymd: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # birth as YYYYMMDD
    death: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # 0 while alive
    sex: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # 1 男, 0 女
    mother: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    father: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    spouse: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    res_hh: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # actual household
    # registered here, living outside the county (外出)
    away: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    reg_hh: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # 正常 here only
    last_event: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    res_since: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    reg_since: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    # per person, Python objects
    static: list[dict] = field(default_factory=list)  # name, id_number, ethnicity, phone…
    away_code: list[str | None] = field(default_factory=list)
    registration: list[Registration | None] = field(default_factory=list)
    # households: kind 户籍户 / 实有户, address, dates, current members in joining order
    hh_kind: list[str] = field(default_factory=list)
    hh_no: list[str | None] = field(default_factory=list)  # 户号 of a 户籍户
    hh_addr: list[int] = field(default_factory=list)
    hh_from: list[int] = field(default_factory=list)
    hh_to: list[int | None] = field(default_factory=list)
    hh_members: list[list[int]] = field(default_factory=list)
    _hh_addr: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # addresses (static table in `addresses`); who occupies or is registered at each
    addresses: object = None  # pandas DataFrame from addresses.build_addresses
    grids: object = None  # pandas DataFrame, likewise
    addr_village: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    addr_rural: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    addr_from: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    addr_home: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # 住宅, not 商业
    addr_actual: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    addr_registered: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    addr_rental: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    # history rows (closed), and open statuses keyed by (person, tag)
    residence_rows: list[tuple] = field(default_factory=list)
    registration_rows: list[tuple] = field(default_factory=list)
    status_open: dict[int, dict[str, dict]] = field(default_factory=dict)  # person, tag: row
    holders: dict[str, dict[int, None]] = field(default_factory=dict)  # tag: persons, in order
    status_rows: list[dict] = field(default_factory=list)
    rentals: list[dict] = field(default_factory=list)
    units: list[dict] = field(default_factory=list)
    unit_open: list[dict] = field(default_factory=list)  # per unit, its current status row
    unit_rows: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    pending: list[tuple] = field(default_factory=list)  # heap of (day, seq, kind, payload)
    scheduled: int = 0  # sequence number of the last scheduled item: ties keep their order

    # ---- people -------------------------------------------------------------------------

    def add_person(self, *, birth: int, sex: int, mother: int = NONE, father: int = NONE, **static):
        """A new person, not yet resident or registered anywhere. Returns their index."""
        if self.n == len(self.birth):
            cap = max(1024, 2 * self.n)
            for name in (*_INT_FIELDS, "sex", "away"):
                old = getattr(self, name)
                new = np.full(cap, NONE if name in _INT_FIELDS else 0, dtype=old.dtype)
                new[: self.n] = old[: self.n]
                setattr(self, name, new)
        p = self.n
        self.n += 1
        self.birth[p], self.sex[p], self.mother[p], self.father[p] = birth, sex, mother, father
        self.ymd[p] = ymd(birth)
        self.death[p] = 0
        self.static.append(static)
        self.away_code.append(None)
        self.registration.append(None)
        return p

    def alive(self, p: int, day: int) -> bool:
        return self.death[p] == 0 or self.death[p] > day

    def age(self, p: int, day: int) -> int:
        """Completed years on `day` (see `ages`)."""
        return (ymd(day) - int(self.ymd[p])) // 10000

    # ---- households ---------------------------------------------------------------------

    def new_household(self, kind: str, addr: int, day: int, no: str | None = None) -> int:
        h = len(self.hh_kind)
        self.hh_kind.append(kind)
        self.hh_no.append(no)
        self.hh_addr.append(addr)
        self.hh_from.append(day)
        self.hh_to.append(None)
        self.hh_members.append([])
        if kind == "实有户":
            self.addr_actual[addr] = h
        else:
            self.addr_registered[addr] = h
        return h

    def household_addresses(self) -> np.ndarray:
        """`hh_addr` as an array (households never change address, so it only grows)."""
        if len(self._hh_addr) != len(self.hh_addr):
            tail = np.asarray(self.hh_addr[len(self._hh_addr) :], dtype=np.int64)
            self._hh_addr = np.concatenate([self._hh_addr, tail])
        return self._hh_addr

    def _leave(self, h: int, p: int, day: int) -> None:
        members = self.hh_members[h]
        members.remove(p)
        if not members:
            self.hh_to[h] = day
            addr = self.hh_addr[h]
            table = self.addr_actual if self.hh_kind[h] == "实有户" else self.addr_registered
            if table[addr] == h:
                table[addr] = NONE
            if self.hh_kind[h] == "实有户" and self.addr_rental[addr] != NONE:
                self.end_rental(addr, day)

    def head_of(self, h: int) -> int:
        """The 户主 of a 户籍户 (NONE if it has none at the moment)."""
        for p in self.hh_members[h]:
            reg = self.registration[p]
            if reg is not None and reg.relation == "户主":
                return p
        return NONE

    def relation(self, head: int, p: int) -> str:
        """p's relation to the 户主 `head` (与户主关系, GB/T 4761 terms) from the kinship links."""
        if p == head:
            return "户主"
        spouse = int(self.spouse[head])
        if p == spouse:
            return "配偶"
        male = self.sex[p] == 1
        couple = (head, spouse) if spouse != NONE else (head,)
        mother, father = int(self.mother[p]), int(self.father[p])
        if mother in couple or father in couple:
            return "子" if male else "女"
        if p in (self.mother[head], self.father[head]):
            return "父亲" if male else "母亲"
        if spouse != NONE and p in (self.mother[spouse], self.father[spouse]):
            if self.sex[head] == 1:
                return "岳父" if male else "岳母"
            return "公公" if male else "婆婆"
        mate = int(self.spouse[p])
        if mate != NONE and (self.mother[mate] in couple or self.father[mate] in couple):
            return "女婿" if male else "儿媳"
        if father != NONE and (self.mother[father] in couple or self.father[father] in couple):
            return "孙子" if male else "孙女"
        if mother != NONE and (self.mother[mother] in couple or self.father[mother] in couple):
            return "外孙子" if male else "外孙女"
        head_parents = {int(self.mother[head]), int(self.father[head])} - {NONE}
        if head_parents & {mother, father}:
            older = self.birth[p] < self.birth[head]
            return ("兄" if older else "弟") if male else ("姐" if older else "妹")
        return "其他"

    # ---- residence ----------------------------------------------------------------------

    def set_residence(
        self, p: int, day: int, hh: int = NONE, away: bool = False, away_code: str | None = None
    ) -> None:
        """Move p into actual household `hh`, or away from the county (registered here, living
        elsewhere: `away`, `away_code` the county or None if outside Jiangsu or unknown), or out
        of view (neither: died, or a tenant who left)."""
        old = int(self.res_hh[p])
        if old != NONE or self.away[p]:
            addr = self.hh_addr[old] if old != NONE else NONE
            if self.res_since[p] < day:
                self.residence_rows.append(
                    (p, addr, old, self.away_code[p], int(self.res_since[p]), day)
                )
            if old != NONE:
                self._leave(old, p, day)
        self.res_hh[p] = hh
        self.away[p] = away
        self.away_code[p] = away_code if away else None
        self.res_since[p] = day
        if hh != NONE:
            self.hh_members[hh].append(p)

    def in_county(self, p: int) -> bool:
        return self.res_hh[p] != NONE

    def address_of(self, p: int) -> int:
        return self.hh_addr[int(self.res_hh[p])] if self.res_hh[p] != NONE else NONE

    # ---- registration (户籍) ------------------------------------------------------------

    def set_registration(
        self,
        p: int,
        day: int,
        hh: int = NONE,
        status: str = OK,
        relation: str | None = None,
        area_code: str | None = None,
        outside_address: str | None = None,
    ) -> None:
        """Open p's next 户籍 row: 正常 in household `hh` of the county, 正常 elsewhere
        (`hh` NONE, `area_code` and `outside_address` given), or an ending status (迁出, 注销,
        死亡) that keeps the household it was left from and stays open."""
        old = self.registration[p]
        was = old.household if old is not None and old.status == OK else NONE
        now = hh if status == OK else NONE
        if old is not None and old.since < day:
            self.registration_rows.append((p, old, day))
        if was != NONE and was != now:
            self._leave(was, p, day)
        area = self.county_code if now != NONE else area_code
        self.registration[p] = Registration(hh, status, relation, area, outside_address, day)
        self.reg_hh[p] = now
        self.reg_since[p] = day
        if now != NONE and now != was:
            self.hh_members[now].append(p)

    def registered_here(self, p: int) -> bool:
        return self.reg_hh[p] != NONE

    # ---- statuses (key-group tags) -----------------------------------------------------

    def start_status(self, p: int, tag: str, day: int, **attrs) -> None:
        row = dict(person=p, tag=tag, valid_from=day, **attrs)
        self.status_open.setdefault(p, {})[tag] = row
        self.holders.setdefault(tag, {})[p] = None

    def end_status(self, p: int, tag: str, day: int) -> None:
        row = self.status_open[p].pop(tag)
        del self.holders[tag][p]
        if row["valid_from"] < day:
            self.status_rows.append(dict(row, valid_to=day))

    def has_status(self, p: int, tag: str) -> bool:
        return tag in self.status_open.get(p, {})

    def tags_of(self, p: int) -> list[str]:
        return list(self.status_open.get(p, {}))

    def holding(self, tag: str) -> list[int]:
        """The persons holding `tag` now, in the order they got it."""
        return list(self.holders.get(tag, {}))

    # ---- rentals ------------------------------------------------------------------------

    def start_rental(self, addr: int, landlord: int, day: int) -> None:
        self.addr_rental[addr] = len(self.rentals)
        self.rentals.append(dict(address=addr, landlord=landlord, valid_from=day, valid_to=None))

    def end_rental(self, addr: int, day: int) -> None:
        r = int(self.addr_rental[addr])
        self.rentals[r]["valid_to"] = day
        self.addr_rental[addr] = NONE
        self.event(day, "rental_end", address=addr, other_person=self.rentals[r]["landlord"])

    # ---- events -------------------------------------------------------------------------

    def schedule(self, day: int, kind: str, **payload) -> None:
        """Something that will happen on `day` (a 户籍 registration after a birth, a
        deregistration after a death); events.simulate carries it out on that day."""
        self.scheduled += 1
        heapq.heappush(self.pending, (day, self.scheduled, kind, payload))

    def event(self, day: int, kind: str, p: int = NONE, **ids) -> None:
        """Record a dated event; `p` is the person it is about (NONE for unit events)."""
        self.events.append(dict(day=day, type=kind, person=p, **ids))
        if p != NONE:
            self.last_event[p] = day


def ymd(day: int) -> int:
    """A day as the integer YYYYMMDD."""
    d = date.fromordinal(day)
    return d.year * 10000 + d.month * 100 + d.day


def ages(birth_ymd: np.ndarray, day: int) -> np.ndarray:
    """Completed years on `day` from birth dates as YYYYMMDD integers: the difference of two
    such numbers, floor-divided by 10,000, is the age (a birthday counts from the day itself;
    someone born on 29 February turns a year older on 1 March in common years)."""
    return (ymd(day) - birth_ymd) // 10000
