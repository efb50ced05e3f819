"""The ground truth on disk: typed Parquet files in `truth/`, a README describing them, and the
division registry in `deployment/` (onetable/demo/deployment.py); plus the readers later stages and tests use.

Files are written with pyarrow from explicit schemas, rows sorted, no timestamps anywhere, so
the same settings give byte-identical files. Dates are `date32`; `valid_to` is exclusive and
null while a row is still open at the end of the period.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from onetable.demo.addresses import address_id
from onetable.demo.county import REGISTRY_EDITION
from onetable.demo.derived import DERIVED_TAGS
from onetable.demo.generate import Demo
from onetable.demo.world import NONE, Registration, World

S, D, I8, I32, B = pa.string(), pa.date32(), pa.int8(), pa.int32(), pa.bool_()
INTERVAL = [("valid_from", D), ("valid_to", D)]
SCHEMAS: dict[str, pa.Schema] = {
    "persons": pa.schema([
        ("person_id", S), ("name", S), ("sex", S), ("birth_date", D), ("id_number", S),
        ("ethnicity", S), ("phone", S), ("mother_id", S), ("father_id", S), ("spouse_id", S),
        ("death_date", D),
    ]),
    "person_residence": pa.schema([
        ("person_id", S), ("in_county", B), ("address_id", S), ("household_id", S),
        ("village_code", S), ("away_area_code", S), *INTERVAL,
    ]),
    "person_registration": pa.schema([
        ("person_id", S), ("status", S), ("household_id", S), ("relation", S),
        ("address_id", S), ("village_code", S), ("area_code", S), ("outside_address", S),
        *INTERVAL,
    ]),
    "person_status": pa.schema([
        ("person_id", S), ("tag", S), *INTERVAL, ("derived", B), ("disability_category", S),
        ("disability_category_name", S), ("disability_grade", I8), ("case_id", S),
        ("detail", S), ("arrived_on", D),
    ]),
    "households": pa.schema([
        ("household_id", S), ("kind", S), ("hukou_no", S), ("address_id", S),
        ("village_code", S), *INTERVAL,
    ]),
    "addresses": pa.schema([
        ("address_id", S), ("county_code", S), ("township_code", S), ("township_name", S),
        ("village_code", S), ("village_name", S), ("grid_id", S), ("micro_grid_id", S),
        ("road", S), ("group_name", S), ("door_no", S), ("compound", S), ("building", S),
        ("unit", S), ("room", S), ("use", S), ("standard_address", S), *INTERVAL,
    ]),
    "grids": pa.schema([
        ("grid_id", S), ("level", S), ("parent_id", S), ("village_code", S), ("name", S),
    ]),
    "units": pa.schema([
        ("unit_id", S), ("name", S), ("credit_code", S), ("kind", S), ("industry_code", S),
        ("industry_name", S), ("founded_on", D), ("employees", I32),
    ]),
    "unit_status": pa.schema([
        ("unit_id", S), ("status", S), ("address_id", S), ("legal_rep_id", S), *INTERVAL,
    ]),
    "key_places": pa.schema([
        ("place_id", S), ("unit_id", S), ("name", S), ("category", S), ("address_id", S),
        ("grid_id", S), *INTERVAL,
    ]),
    "rentals": pa.schema([
        ("rental_id", S), ("address_id", S), ("landlord_id", S), *INTERVAL,
    ]),
    "events": pa.schema([
        ("event_id", S), ("date", D), ("type", S), ("person_id", S), ("household_id", S),
        ("address_id", S), ("from_address_id", S), ("unit_id", S), ("other_person_id", S),
        ("detail", S),
    ]),
    # written by systems.py with the department systems (part 2)
    "source_records": pa.schema([
        ("source", S), ("record_key", S), ("valid_from", D), ("valid_to", D),
        ("updated_at", pa.timestamp("s")), ("status", S), ("deleted", B), ("person_id", S),
        ("household_id", S), ("address_id", S), ("shown_address_id", S), ("unit_id", S),
        ("related_person_id", S), ("errors", pa.list_(S)), ("quirks", pa.list_(S)),
    ]),
}  # fmt: skip


# ---- ids ------------------------------------------------------------------------------------


def _person(p: int) -> str | None:
    return f"P{p + 1:07d}" if p != NONE else None


def _household(world: World, h: int) -> str | None:
    if h == NONE:
        return None
    return f"{'RH' if world.hh_kind[h] == '户籍户' else 'AH'}{h + 1:07d}"


def _address(a: int) -> str | None:
    return address_id(a) if a != NONE else None


def _unit(u: int) -> str | None:
    return f"U{u + 1:06d}" if u != NONE else None


def _day(d: int | None) -> date | None:
    return date.fromordinal(d) if d is not None and d != NONE else None


# ---- tables ---------------------------------------------------------------------------------


def _columns(rows: list, **columns: Callable[[Any], object]) -> pd.DataFrame:
    """A frame with a column per function of a row: a list per column, not a dict per row (a
    million dicts took more memory than the frame)."""
    return pd.DataFrame({name: [f(r) for r in rows] for name, f in columns.items()})


def truth_tables(demo: Demo) -> dict[str, pd.DataFrame]:
    """Every truth table as a DataFrame in file order (sorted by id and valid_from)."""
    w = demo.world
    village_of = w.addresses["village_code"].tolist()

    def village(a: int) -> str | None:
        return village_of[a] if a != NONE else None

    n, static = w.n, w.static
    mother, father, spouse = (a[:n].tolist() for a in (w.mother, w.father, w.spouse))
    persons = pd.DataFrame({
        "person_id": [_person(p) for p in range(n)],
        "name": [s["name"] for s in static],
        "sex": ["男" if x == 1 else "女" for x in w.sex[:n].tolist()],
        "birth_date": [_day(b) for b in w.birth[:n].tolist()],
        "id_number": [s["id_number"] for s in static],
        "ethnicity": [s["ethnicity"] for s in static],
        "phone": [s["phone"] for s in static],
        "mother_id": [_person(p) for p in mother],
        "father_id": [_person(p) for p in father],
        "spouse_id": [_person(p) for p in spouse],
        "death_date": [_day(d) if d else None for d in w.death[:n].tolist()],
    })  # fmt: skip

    residence = list(w.residence_rows)
    hh_addr = w.hh_addr
    for p, h, away, since in zip(range(n), w.res_hh[:n].tolist(), w.away[:n].tolist(),
                                 w.res_since[:n].tolist(), strict=True):  # fmt: skip
        if h != NONE or away:  # open rows
            residence.append((p, hh_addr[h] if h != NONE else NONE, h, w.away_code[p], since, None))
    person_residence = _columns(
        residence,
        person_id=lambda r: _person(r[0]),
        in_county=lambda r: r[2] != NONE,
        address_id=lambda r: _address(r[1]),
        household_id=lambda r: _household(w, r[2]),
        village_code=lambda r: village(r[1]),
        away_area_code=lambda r: r[3] if r[2] == NONE else None,
        valid_from=lambda r: _day(r[4]),
        valid_to=lambda r: _day(r[5]),
    )

    registration = list(w.registration_rows)
    registration += [(p, r, None) for p, r in enumerate(w.registration) if r is not None]

    def reg_address(r: Registration) -> int:
        return hh_addr[r.household] if r.household != NONE else NONE

    person_registration = _columns(
        registration,
        person_id=lambda t: _person(t[0]),
        status=lambda t: t[1].status,
        household_id=lambda t: _household(w, t[1].household),
        relation=lambda t: t[1].relation,
        address_id=lambda t: _address(reg_address(t[1])),
        village_code=lambda t: village(reg_address(t[1])),
        area_code=lambda t: t[1].area_code,
        outside_address=lambda t: t[1].outside_address,
        valid_from=lambda t: _day(t[1].since),
        valid_to=lambda t: _day(t[2]),
    )

    still_open = [dict(r, valid_to=None) for tags in w.status_open.values() for r in tags.values()]
    person_status = _columns(
        w.status_rows + still_open,
        person_id=lambda r: _person(r["person"]),
        tag=lambda r: r["tag"],
        valid_from=lambda r: _day(r["valid_from"]),
        valid_to=lambda r: _day(r["valid_to"]),
        derived=lambda r: r["tag"] in DERIVED_TAGS,
        disability_category=lambda r: r.get("disability_category"),
        disability_category_name=lambda r: r.get("disability_category_name"),
        disability_grade=lambda r: r.get("disability_grade"),
        case_id=lambda r: r.get("case_id"),
        detail=lambda r: r.get("detail"),
        arrived_on=lambda r: _day(r.get("arrived_on")),
    )

    households = pd.DataFrame({
        "household_id": [_household(w, h) for h in range(len(w.hh_kind))],
        "kind": w.hh_kind,
        "hukou_no": w.hh_no,
        "address_id": [_address(a) for a in hh_addr],
        "village_code": [village(a) for a in hh_addr],
        "valid_from": [_day(d) for d in w.hh_from],
        "valid_to": [_day(d) for d in w.hh_to],
    })  # fmt: skip

    addresses = w.addresses.copy()
    units = pd.DataFrame(
        dict(
            unit_id=_unit(u),
            name=s["name"],
            credit_code=s["credit_code"],
            kind=s["kind"],
            industry_code=s["industry_code"],
            industry_name=s["industry_name"],
            founded_on=_day(s["founded_on"]),
            employees=s["employees"],
        )
        for u, s in enumerate(w.units)
    )
    unit_rows = w.unit_rows + [dict(r, unit=u, valid_to=None) for u, r in enumerate(w.unit_open)]
    unit_status = pd.DataFrame(
        dict(
            unit_id=_unit(r["unit"]),
            status=r["status"],
            address_id=_address(r["address"]),
            legal_rep_id=_person(r["legal_rep"]),
            valid_from=_day(r["valid_from"]),
            valid_to=_day(r["valid_to"]),
        )
        for r in unit_rows
    )
    grid_of = w.addresses["micro_grid_id"].tolist()
    closed = {r["unit"]: r["valid_from"] for r in unit_rows if r["status"] == "注销"}
    key_places = pd.DataFrame(
        dict(
            place_id=f"K{k + 1:06d}",
            unit_id=_unit(u),
            name=s["name"],
            category=s["key_place_category"],
            address_id=_address(w.unit_open[u]["address"]),
            grid_id=grid_of[w.unit_open[u]["address"]],
            valid_from=_day(s["founded_on"]),
            valid_to=_day(closed.get(u)),
        )
        for k, (u, s) in enumerate((u, s) for u, s in enumerate(w.units) if s["key_place_category"])
    )
    rentals = pd.DataFrame(
        dict(
            rental_id=f"R{r + 1:06d}",
            address_id=_address(row["address"]),
            landlord_id=_person(row["landlord"]),
            valid_from=_day(row["valid_from"]),
            valid_to=_day(row["valid_to"]),
        )
        for r, row in enumerate(w.rentals)
    )
    events = pd.DataFrame(
        dict(
            event_id=f"E{i + 1:07d}",
            date=_day(e["day"]),
            type=e["type"],
            person_id=_person(e["person"]),
            household_id=_household(w, e.get("household", NONE)),
            address_id=_address(e.get("address", NONE)),
            from_address_id=_address(e.get("from_address", NONE)),
            unit_id=_unit(e.get("unit", NONE)),
            other_person_id=_person(e.get("other_person", NONE)),
            detail=e.get("detail"),
        )
        for i, e in enumerate(w.events)
    )
    frames = dict(
        persons=persons,
        person_residence=person_residence,
        person_registration=person_registration,
        person_status=person_status,
        households=households,
        addresses=addresses,
        grids=w.grids,
        units=units,
        unit_status=unit_status,
        key_places=key_places,
        rentals=rentals,
        events=events,
    )
    order = dict(
        person_residence=["person_id", "valid_from"],
        person_registration=["person_id", "valid_from"],
        person_status=["person_id", "tag", "valid_from"],
        unit_status=["unit_id", "valid_from"],
        grids=["grid_id"],
    )
    for name, keys in order.items():
        frames[name] = frames[name].sort_values(keys, kind="stable").reset_index(drop=True)
    return frames


# ---- writing --------------------------------------------------------------------------------


def write_truth(demo: Demo, out: Path) -> dict[str, pd.DataFrame]:
    """Write `out/truth/*.parquet`, `out/truth/README.md` and `out/truth/meta.json`. Returns the
    tables written."""
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    frames = truth_tables(demo)
    for name, frame in frames.items():
        schema = SCHEMAS[name]
        table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
        pq.write_table(table.replace_schema_metadata(None), truth_dir / f"{name}.parquet")
    s = demo.settings
    meta = dict(
        generator="onetable.demo",
        seed=s.seed,
        persons_requested=s.persons,
        months=s.months,
        start=s.start.isoformat(),
        end=s.end.isoformat(),
        county_code=demo.county.code,
        county_name=demo.county.name,
        villages=[v.code for v in demo.villages],
        registry="../deployment/divisions.csv",
        registry_edition=REGISTRY_EDITION,
        rows={name: len(frame) for name, frame in frames.items()},
    )
    text = json.dumps(meta, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    (truth_dir / "meta.json").write_text(text, encoding="utf-8")
    (truth_dir / "README.md").write_text(README.format(**meta), encoding="utf-8")
    return frames


README = """\
# Ground truth of the demo county

Synthetic: invented people in the real townships and villages of {county_name} ({county_code}),
made by `onetable demo generate` with seed {seed}, {persons_requested} persons requested, from
{start} for {months} month(s) (the period ends before {end}). Village codes, grids, addresses,
names, ID numbers, phones and credit codes are all made up (ID numbers and credit codes carry
valid check characters). The division registry is `../deployment/divisions.csv`, edition
`{registry_edition}`, every village code marked `code_synthetic`. See docs/demo.md.

The truth stands for reality, as department systems never see it: the pipeline must not read
it; tests and the department systems built from it (part 2) do. No indicator is precomputed:
derive them from the timelines. Intervals are [valid_from, valid_to): a change on day d ends
the old row with valid_to = d and starts the next with valid_from = d; valid_to is null while
a row is open at the end of the period. Rows that began before the period carry their real
(invented) start; derived tags (below) start at the period start at the earliest.

| file | one row per | columns |
|---|---|---|
| persons | person | person_id (P…), name, sex 男/女, birth_date, id_number (18 digits), ethnicity, phone (11-digit mobile; may be shared with a relative; null: none), mother_id, father_id, spouse_id (null: not in the truth), death_date |
| person_residence | person and interval | person_id, in_county, address_id, household_id (the 实有户), village_code, away_area_code (living away: county code, null if outside Jiangsu or unknown), valid_from, valid_to. No row: not yet born, dead, or out of view (a tenant who left, a 户口 moved out) |
| person_registration | person and interval | person_id, status (正常; 迁出, 注销, 死亡 end a 户籍 and stay open), household_id (the 户籍户, kept on ending rows), relation (与户主关系), address_id, village_code, area_code (county of the 户口; for 迁出 the destination, null outside Jiangsu), outside_address (户籍 address of people registered elsewhere), valid_from, valid_to. A newborn has no row until 出生登记; a death is deregistered days to weeks after it |
| person_status | person, tag and interval | person_id, tag, valid_from, valid_to, derived, disability_category (GB/T 26341: 1 视力 2 听力 3 言语 4 肢体 5 智力 6 精神 7 多重) and _name, disability_grade (1 most severe to 4), case_id (低保 household case DB…, 特困 case TK…), detail (失能 degree, 严重精神障碍 diagnosis, 计生特殊家庭 type, 优抚对象 for veterans, 特困 供养方式), arrived_on (流动人口: 来本地日期) |
| households | household | household_id (RH… 户籍户, AH… 实有户), kind, hukou_no (户号), address_id, village_code, valid_from, valid_to. Members: person_registration (户籍户) or person_residence (实有户); the 户主 is the member whose relation is 户主 |
| addresses | address | address_id, county/township/village codes and names, grid_id, micro_grid_id, road (街路巷) or group_name (村民小组), door_no, compound (小区), building (幢), unit (单元), room (室), use (住宅/商业), standard_address, valid_from (built), valid_to |
| grids | grid or micro-grid | grid_id, level (网格/微网格), parent_id (village code or grid), village_code, name |
| units | unit | unit_id, name, credit_code (统一社会信用代码), kind, industry_code/name (GB/T 4754 门类), founded_on, employees |
| unit_status | unit and interval | unit_id, status (存续/注销), address_id, legal_rep_id (a person), valid_from, valid_to |
| key_places | key place | place_id, unit_id, name, category (学校, 幼儿园, 医疗机构, 加油站, 九小场所:…), address_id, grid_id (micro-grid), valid_from, valid_to |
| rentals | rental | rental_id, address_id, landlord_id, valid_from, valid_to; the tenants are who lives at the address meanwhile |
| events | event | event_id (in date order), date, type, person_id, household_id, address_id, from_address_id, unit_id, other_person_id (mother, landlord, legal representative), detail |

Tags in person_status: 低保, 特困, 残疾, 退役军人, 严重精神障碍, 失能, 计生特殊家庭, 流动人口 (set by
the generator and its events), and the derived tags 独居 (60+, lives alone), 空巢 (60+, lives
with the spouse only), 留守儿童 (under 16, registered and living in a 村, no living parent living
in the county, at least one alive), recomputed from the residence and registration timelines
every day (`derived` is true for them).

Event types: birth, birth_registration, death, death_deregistration, head_change,
move_in_county, registration_transfer, leave_county, return_to_county, migrate_out,
deregistration, tenant_arrival, tenant_departure, rental_start, rental_end, status_start,
status_end, status_change (detail: the tag), unit_open, unit_close, legal_rep_change.

`meta.json` holds the settings and row counts. Read with `onetable.demo.truth.load_truth`;
`residents_on(truth, village_code, day)` answers who lived in a village on a day.
"""


# ---- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Truth:
    meta: dict
    persons: pd.DataFrame
    person_residence: pd.DataFrame
    person_registration: pd.DataFrame
    person_status: pd.DataFrame
    households: pd.DataFrame
    addresses: pd.DataFrame
    grids: pd.DataFrame
    units: pd.DataFrame
    unit_status: pd.DataFrame
    key_places: pd.DataFrame
    rentals: pd.DataFrame
    events: pd.DataFrame
    source_records: pd.DataFrame | None = None  # once the department systems are written

    def __repr__(self) -> str:
        """Counts only: a failing test or a log must not show a name or an ID number."""
        rows = ", ".join(
            f"{f.name}={len(getattr(self, f.name))}"
            for f in fields(self)[1:]
            if getattr(self, f.name) is not None
        )
        return f"Truth(seed={self.meta.get('seed')}, {rows})"


def load_truth(truth_dir: Path) -> Truth:
    """The truth files of `truth_dir` (an `--out` folder's `truth/`); date columns become
    pandas datetimes (NaT for an open valid_to)."""
    truth_dir = Path(truth_dir)
    frames = {}
    for f in fields(Truth)[1:]:
        path = truth_dir / f"{f.name}.parquet"
        if f.name == "source_records" and not path.exists():
            continue
        frame = pq.read_table(path).to_pandas()
        for column, kind in zip(SCHEMAS[f.name].names, SCHEMAS[f.name].types, strict=True):
            if kind == D:
                frame[column] = pd.to_datetime(frame[column])
        frames[f.name] = frame
    meta = json.loads((truth_dir / "meta.json").read_text(encoding="utf-8"))
    return Truth(meta=meta, **frames)


def _holds(frame: pd.DataFrame, on: date) -> pd.Series:
    day = pd.Timestamp(on)
    return (frame["valid_from"] <= day) & (frame["valid_to"].isna() | (frame["valid_to"] > day))


def residence_on(truth: Truth, on: date) -> pd.DataFrame:
    """Where everyone in the county lived on `on`: person_id, address_id, household_id,
    village_code (one row per resident)."""
    r = truth.person_residence
    return r[_holds(r, on) & r["in_county"]][
        ["person_id", "address_id", "household_id", "village_code"]
    ].reset_index(drop=True)


def residents_on(truth: Truth, village_code: str, on: date) -> set[str]:
    """The persons who actually lived in the village on `on` (实有人口, by residence)."""
    r = residence_on(truth, on)
    return set(r.loc[r["village_code"] == village_code, "person_id"])


def registration_on(truth: Truth, on: date) -> pd.DataFrame:
    """Everyone's 户籍 row on `on` (any status; 正常 rows with a household_id are registered in
    the county)."""
    r = truth.person_registration
    return r[_holds(r, on)].reset_index(drop=True)


def status_on(truth: Truth, tag: str, on: date) -> set[str]:
    """The persons holding `tag` on `on`."""
    s = truth.person_status
    return set(s.loc[(s["tag"] == tag) & _holds(s, on), "person_id"])


def records_on(truth: Truth, source: str, month_end: date) -> pd.DataFrame:
    """The versions of a department system's records that it shows at `month_end` (one of
    `truth.meta["month_ends"]`): one row per record (source_records.parquet)."""
    r = truth.source_records
    if r is None:
        raise ValueError("no source_records.parquet: the department systems were not written")
    r = r[r["source"] == source]
    return r[_holds(r, month_end)].reset_index(drop=True)


def persons_on(truth: Truth, on: date) -> pd.DataFrame:
    """The truth's residents on `on` in the columns of marts.person_period that indicators read:
    person_id, village_code (where they live), age (whole years), residence_type (户籍人口 when
    their 户口 is 正常 in the county, else 流动人口), active (true), groups (the tags they hold)."""
    living = residence_on(truth, on)
    reg = registration_on(truth, on)
    registered = set(reg.loc[(reg["status"] == "正常") & reg["household_id"].notna(), "person_id"])
    born = truth.persons.set_index("person_id")["birth_date"].dt.date
    s = truth.person_status
    held = s[_holds(s, on)].groupby("person_id")["tag"].agg(lambda t: sorted(set(t)))
    return pd.DataFrame({
        "person_id": living["person_id"],
        "village_code": living["village_code"],
        "age": [_age(born[p], on) for p in living["person_id"]],
        "residence_type": ["户籍人口" if p in registered else "流动人口" for p in living["person_id"]],
        "active": True,
        "groups": [held.get(p, []) for p in living["person_id"]],
    })  # fmt: skip


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def one_table_on(truth: Truth, where: dict[str, str], on: date) -> pd.DataFrame:
    """Each indicator (id -> its `where`, as the one table defines it) counted over the truth's
    residents per village on `on`: village_code, indicator, value (0 rows are kept)."""
    import duckdb

    _persons = persons_on(truth, on)
    counts = ", ".join(f'count(*) FILTER (WHERE {w}) AS "{i}"' for i, w in where.items())
    wide = duckdb.sql(
        f"SELECT village_code, {counts} FROM _persons GROUP BY village_code ORDER BY 1"
    ).df()
    return wide.melt("village_code", var_name="indicator", value_name="value")
