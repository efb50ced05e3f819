"""The demo county's divisions: real township and village names from the Jiangsu tree shipped in
`onetable.schemas`, with 12-digit village codes made up in the 统计用区划代码 structure.

The tree gives 9-digit township codes (most of them) and village names only, so every village
code here is synthetic, and so is any township code the tree lacks; the registry written from
this says so on every row (docs/domain.md, "Division codes"; schemas/reference/README.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import pandas as pd

from onetable.schemas.contracts import load_contracts
from onetable.schemas.divisions import registry

COUNTY_CODE = "320324"  # 睢宁县, Xuzhou (docs/domain.md, "Demo county")
PROVINCE_NAME = "江苏省"
REGISTRY_EDITION = "onetable-demo-1"  # the generator's own registry, not an official edition

# Scale: a village-level unit of the demo holds a realistic few hundred to two thousand people
# (a real 睢宁 village has about 3,500 户籍 residents; the demo samples villages rather than
# filling them), and at least two townships so that moves can cross township lines.
PERSONS_PER_VILLAGE = 1250
MIN_VILLAGES = 6
VILLAGES_PER_TOWNSHIP = 4

# 3-digit township ranges of GB/T 10114 (docs/domain.md, "Division codes"), used to type a
# township by its code and to place a township the tree gives no code in the range its name
# calls for.
TOWNSHIP_RANGES = {"街道": (1, 99), "镇": (100, 199), "乡": (200, 399), "其他": (400, 599)}
# Village-level ranges by common practice (README of the tree): 001-199 社区/居委会,
# 200-399 村委会; other units (虚拟社区, 农场生活区…) go to 400-599 (类似居委会/村委会).
VILLAGE_RANGES = {"社区": 1, "村": 200, "其他": 400}
# 城乡分类代码 (docs/domain.md, "Division codes"): 111 主城区, 121 镇中心区, 123 特殊区域,
# 220 村庄. Assigned by village type here, so synthetic too.
URBAN_RURAL = {("街道", "社区"): "111", ("镇", "社区"): "121", ("乡", "社区"): "121"}


@dataclass(frozen=True)
class Township:
    code: str
    name: str
    kind: str  # 街道 / 镇 / 乡 / 其他
    code_synthetic: bool


@dataclass(frozen=True)
class Village:
    code: str
    name: str
    township: Township
    kind: str  # 社区 / 村 / 其他
    urban_rural_code: str

    @property
    def rural(self) -> bool:
        return self.urban_rural_code.startswith("2")


@dataclass(frozen=True)
class County:
    code: str
    name: str
    city_code: str
    city_name: str
    townships: tuple[Township, ...]
    villages: tuple[Village, ...]  # every village of the county, in code order

    @property
    def prefix(self) -> str:
        """'江苏省徐州市睢宁县': the administrative part of every standard address."""
        return PROVINCE_NAME + self.city_name + self.name


def read_tree() -> list[dict[str, str]]:
    """The Jiangsu division tree the shipped contracts name (`schemas/divisions.yaml`), checked
    row by row by the registry's loader."""
    return registry(load_contracts()).to_dict("records")


def _kind_by_name(name: str, kinds: tuple[str, ...], default: str) -> str:
    return next((k for k in kinds if name.endswith(k)), default)


def _township_kind(code: str) -> str:
    n = int(code[6:9])
    return next(k for k, (lo, hi) in TOWNSHIP_RANGES.items() if lo <= n <= hi)


def load_county(tree: list[dict[str, str]], county_code: str = COUNTY_CODE) -> County:
    """A county's townships and villages with codes; missing ones made up and marked synthetic."""
    county = next(r for r in tree if r["level"] == "county" and r["code"] == county_code)
    city = next(r for r in tree if r["level"] == "city" and r["code"] == county["parent_code"])
    rows = [r for r in tree if r["level"] == "township" and r["county_code"] == county_code]
    used = {int(r["code"][6:9]) for r in rows if r["code"]}
    townships = []
    for r in sorted(rows, key=lambda r: (r["code"] == "", r["code"], r["name"])):
        if r["code"]:
            townships.append(Township(r["code"], r["name"], _township_kind(r["code"]), False))
            continue
        kind = _kind_by_name(r["name"], ("街道", "镇", "乡"), "其他")
        lo, hi = TOWNSHIP_RANGES[kind]
        n = next(n for n in range(lo, hi + 1) if n not in used)
        used.add(n)
        townships.append(Township(f"{county_code}{n:03d}", r["name"], kind, True))

    villages = []
    for t in townships:
        key = t.name if t.code_synthetic else t.code
        names = sorted(
            {
                r["name"]
                for r in tree
                if r["level"] == "village"
                and r["county_code"] == county_code
                and (r["parent_name"] if t.code_synthetic else r["parent_code"]) == key
            }
        )
        next_no = dict(VILLAGE_RANGES)
        for name in names:
            kind = _kind_by_name(name, ("社区", "居委会", "村", "村委会"), "其他")
            kind = {"居委会": "社区", "村委会": "村"}.get(kind, kind)
            code = f"{t.code}{next_no[kind]:03d}"
            next_no[kind] += 1
            urban_rural = URBAN_RURAL.get((t.kind, kind), "220" if kind == "村" else "123")
            villages.append(Village(code, name, t, kind, urban_rural))
    return County(
        county_code,
        county["name"],
        city["code"],
        city["name"],
        tuple(sorted(townships, key=lambda t: t.code)),
        tuple(sorted(villages, key=lambda v: v.code)),
    )


def choose_villages(county: County, persons: int) -> tuple[Village, ...]:
    """A deterministic subset of villages sized for `persons`: the county seat's first 街道,
    then the 镇 in code order (a rural county is mostly towns), then the rest; in a 街道 its
    社区, in a town one 社区 (standing for the town's seat) and then 村. The choice depends on
    the size only, never on the seed, so a village keeps its code and name across runs."""
    street = [t for t in county.townships if t.kind == "街道"]
    order = street[:1] + [t for t in county.townships if t.kind in ("镇", "乡")]
    order += [t for t in county.townships if t not in order]
    wanted = min(len(county.villages), max(MIN_VILLAGES, round(persons / PERSONS_PER_VILLAGE)))
    n_townships = min(len(order), max(2, math.ceil(wanted / VILLAGES_PER_TOWNSHIP)))
    chosen: list[Village] = []
    for i, t in enumerate(order[:n_townships]):
        own = [v for v in county.villages if v.township == t]
        community = [v for v in own if v.kind != "村"]
        ordered = community[:1] + [v for v in own if v.kind == "村"] + community[1:]
        if t.kind == "街道":
            ordered = community + [v for v in own if v.kind == "村"]
        share = wanted // n_townships + (i < wanted % n_townships)
        chosen.extend(ordered[:share])
    return tuple(sorted(chosen, key=lambda v: v.code))


def registry_frame(
    county: County, villages: tuple[Village, ...], reference: date, grids: pd.DataFrame
) -> pd.DataFrame:
    """The division registry the demo writes, in the registry's columns (schemas/divisions.py)
    and the demo's own: county, the townships and villages it uses, and their grids and
    micro-grids (the truth's `grids`). `code_synthetic` is true for every code this module made
    up (all village codes)."""
    townships = sorted(
        {v.township.code: v.township for v in villages}.values(), key=lambda t: t.code
    )
    rows = [
        dict(
            level="county",
            code=county.code,
            name=county.name,
            parent_code=county.city_code,
            kind="县",
            urban_rural_code=None,
            code_synthetic=False,
        )
    ]
    rows += [
        dict(
            level="township",
            code=t.code,
            name=t.name,
            parent_code=county.code,
            kind=t.kind,
            urban_rural_code=None,
            code_synthetic=t.code_synthetic,
        )
        for t in townships
    ]
    rows += [
        dict(
            level="village",
            code=v.code,
            name=v.name,
            parent_code=v.township.code,
            kind=v.kind,
            urban_rural_code=v.urban_rural_code,
            code_synthetic=True,
        )
        for v in villages
    ]
    rows += [
        dict(level="grid", code=g.grid_id, name=g.name, parent_code=g.village_code, kind=g.level,
             urban_rural_code=None, code_synthetic=True)
        for g in grids.sort_values("grid_id").itertuples()
    ]  # fmt: skip
    frame = pd.DataFrame(rows)
    names = {county.code: county.name, county.city_code: county.city_name}
    names |= {t.code: t.name for t in townships} | {v.code: v.name for v in villages}
    frame.insert(3, "county_code", county.code)
    frame.insert(5, "parent_name", frame["parent_code"].map(names))
    frame["edition"] = REGISTRY_EDITION
    frame["reference_date"] = reference.isoformat()
    frame["source"] = "synthetic: names from the Jiangsu tree (jionlp, NBS-derived); " + (
        "village codes and 城乡分类 made up by the demo generator"
    )
    return frame


@dataclass(frozen=True)
class Elsewhere:
    """A real Jiangsu county other than the demo county: an origin or a destination."""

    code: str
    name: str
    city_name: str
    places: tuple[tuple[str, str], ...]  # (township name, village name)

    def address(self, township: str, village: str, group: int, door: int) -> str:
        return f"{PROVINCE_NAME}{self.city_name}{self.name}{township}{village}{group}组{door}号"


def load_elsewhere(
    tree: list[dict[str, str]], city_codes: tuple[str, ...], exclude: str
) -> tuple[Elsewhere, ...]:
    """Counties of the given cities (GB/T 2260 codes only: the NBS x71/x72 zones never appear
    in an ID number), each with its township and village names for 户籍 addresses."""
    cities = {r["code"]: r["name"] for r in tree if r["level"] == "city"}
    township_names = {r["code"]: r["name"] for r in tree if r["level"] == "township" and r["code"]}
    places: dict[str, list[tuple[str, str]]] = {}
    for r in tree:
        if r["level"] == "village" and r["parent_code"] in township_names:
            places.setdefault(r["county_code"], []).append(
                (township_names[r["parent_code"]], r["name"])
            )
    counties = [
        r
        for r in tree
        if r["level"] == "county"
        and r["parent_code"] in city_codes
        and r["code"] != exclude
        and not r["code"][4:6].startswith("7")
        and places.get(r["code"])
    ]
    return tuple(
        Elsewhere(r["code"], r["name"], cities[r["parent_code"]], tuple(sorted(places[r["code"]])))
        for r in sorted(counties, key=lambda r: r["code"])
    )
