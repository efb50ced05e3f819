"""Standard addresses, grids and micro-grids of the demo villages.

Address elements follow GA/T 2000.32 (docs/domain.md, "Address elements"): 乡镇 — 村/社区 —
组 or 街路巷 — 门牌号 — 小区 — 幢 — 单元 — 室. A village (村) is 村民小组 of houses (`一组18号`); a
community (社区) is roads with street-front houses and shops and compounds of apartment
buildings. Grids and micro-grids are local, opaque codes with a parent pointer (docs/domain.md,
"Grids and micro-grids"): a grid is the village code plus 3 digits, a micro-grid the grid
code plus 2 digits (a common convention, not a standard). They are cut from addresses in
generation order, which is street by street.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd

from onetable.demo.county import County, Village

# Dwellings per micro-grid: 精网微格 asks for micro-grids of about 20-50 households
# (docs/domain.md, "Grids and micro-grids": recalled); grids of about 6 micro-grids (a few
# hundred households).
MICRO_GRID_DWELLINGS = {"rural": 30, "urban": 40}
MICRO_GRIDS_PER_GRID = 6
HOUSES_PER_GROUP = 40  # 村民小组: a few dozen households
STREET_HOUSE_SHARE = {"111": 0.2, "121": 0.45}  # the rest of a community's homes are apartments
ROAD_STEMS = (
    "人民", "解放", "建设", "中山", "八一", "青年", "新华", "天虹", "红叶", "团结", "幸福", "和平",
    "文化", "环城", "兴业", "民主", "振兴", "迎宾", "育才", "工农", "光明", "东风", "健康", "长安",
    "滨河", "富民", "友谊", "向阳", "朝阳", "金水", "府前", "学府", "永安", "安康", "创业", "商贸",
)  # fmt: skip
ROAD_SUFFIX = {"路": 0.6, "街": 0.25, "大道": 0.1, "巷": 0.05}
COMPOUND_STEMS = (
    "阳光", "锦绣", "幸福", "金色", "翠苑", "富康", "和谐", "水岸", "名都", "世纪", "书香", "东方",
    "康居", "碧水", "华府", "御景", "丽景", "盛世", "凤凰", "紫薇", "润园", "新城", "万家", "金桂",
)  # fmt: skip
COMPOUND_SUFFIX = ("花园", "小区", "家园", "苑", "新村", "公寓", "华庭")
_NUMERALS = "零一二三四五六七八九"

COLUMNS = (
    "address_id", "county_code", "township_code", "township_name", "village_code",
    "village_name", "grid_id", "micro_grid_id", "road", "group_name", "door_no", "compound",
    "building", "unit", "room", "use", "standard_address", "valid_from", "valid_to",
)  # fmt: skip


def address_id(a: int) -> str:
    """The truth id of the address with index `a` (row `a` of the address table)."""
    return f"A{a + 1:07d}"


def chinese_number(n: int) -> str:
    """1-99 in Chinese numerals, as in 村民小组 names (三组, 十二组)."""
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _NUMERALS[ones]
    head = "" if tens == 1 else _NUMERALS[tens]
    return head + "十" + (_NUMERALS[ones] if ones else "")


def standard_address(prefix: str, a: dict) -> str:
    """The canonical string: 行政区划 + 村/社区 + 组 or 街路巷 + 门牌号 + 小区 幢 单元 室."""
    s = prefix + a["township_name"] + a["village_name"]
    s += a["group_name"] or a["road"]
    s += f"{a['door_no']}号"
    if a["compound"]:
        s += f"{a['compound']}{a['building']}幢{a['unit']}单元{a['room']}室"
    return s


def _day(rng: np.random.Generator, first_year: int, last_year: int) -> date:
    base = date(int(rng.integers(first_year, last_year + 1)), 1, 1).toordinal()
    return date.fromordinal(base + int(rng.integers(0, 365)))


def _rural(homes: int, shops: int, rng: np.random.Generator) -> list[dict]:
    """Houses in 村民小组, shops among them; numbers with the odd gap of a demolished house."""
    total = homes + shops
    groups = max(1, math.ceil(total / HOUSES_PER_GROUP))
    is_shop = rng.permutation(np.r_[np.zeros(homes, bool), np.ones(shops, bool)])
    rows, k = [], 0
    for g in range(groups):
        n = total // groups + (g < total % groups)
        door = 0
        for _ in range(n):
            door += 1 + int(rng.random() < 0.1)
            rows.append(
                dict(
                    group_name=chinese_number(g + 1) + "组",
                    road=None,
                    door_no=str(door),
                    use="商业" if is_shop[k] else "住宅",
                    valid_from=_day(rng, 1980, 2015),
                )
            )
            k += 1
    return rows


def _road_name(rng: np.random.Generator, stems: list[str]) -> str:
    """A road name not yet used in the township (人民路, then 人民东路… once the stems run out)."""
    if not stems:
        stems.extend(s + d for d in "东西南北" for s in ROAD_STEMS)
    suffix = list(ROAD_SUFFIX)
    p = np.fromiter(ROAD_SUFFIX.values(), float)
    return stems.pop(int(rng.integers(0, len(stems)))) + suffix[rng.choice(len(suffix), p=p)]


def _urban(
    v: Village,
    homes: int,
    shops: int,
    roads: list[str],
    doors: dict[str, int],
    rng: np.random.Generator,
) -> list[dict]:
    """Street-front houses and shops along the community's roads, then compounds of apartment
    buildings (幢, 单元, floors of two rooms: 501, 502). Door numbers run along a road across the
    township, two at a time (odd and even sides), so no two addresses share one."""
    street = round(homes * STREET_HOUSE_SHARE.get(v.urban_rural_code, 0.3))
    rows = []
    fronts = rng.permutation(np.r_[np.zeros(street, bool), np.ones(shops, bool)])
    for i, shop in enumerate(fronts):
        road = roads[i * len(roads) // max(1, len(fronts))]
        doors[road] += 2
        rows.append(
            dict(
                group_name=None,
                road=road,
                door_no=str(doors[road]),
                use="商业" if shop else "住宅",
                valid_from=_day(rng, 1985, 2015),
            )
        )
    left = homes - street
    while left > 0:
        road = roads[int(rng.integers(0, len(roads)))]
        doors[road] += 2
        stem = COMPOUND_STEMS[int(rng.integers(0, len(COMPOUND_STEMS)))]
        name = stem + COMPOUND_SUFFIX[int(rng.integers(0, len(COMPOUND_SUFFIX)))]
        floors = 6 if rng.random() < 0.6 else int(rng.integers(11, 19))
        units = int(rng.integers(1, 4))
        per_building = floors * units * 2
        buildings = min(int(rng.integers(4, 13)), math.ceil(left / per_building))
        built = _day(rng, 1998, 2022)
        for b in range(1, buildings + 1):
            for u in range(1, units + 1):
                for f in range(1, floors + 1):
                    for r in (1, 2):
                        rows.append(
                            dict(
                                group_name=None,
                                road=road,
                                door_no=str(doors[road]),
                                compound=name,
                                building=str(b),
                                unit=str(u),
                                room=f"{f}{r:02d}",
                                use="住宅",
                                valid_from=built,
                            )
                        )
        left -= buildings * per_building
    return rows


def build_addresses(
    county: County,
    villages: tuple[Village, ...],
    homes: dict[str, int],
    shops: dict[str, int],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Addresses (at least `homes` dwellings and `shops` business premises per village code) and
    the grid table. Returns (addresses, grids), both in village code order."""
    road_pools: dict[str, list[str]] = {}
    doors: dict[str, int] = {}
    addresses, grids = [], []
    for v in villages:
        if v.rural:
            rows = _rural(homes[v.code], shops[v.code], rng)
        else:
            stems = road_pools.setdefault(v.township.code, list(ROAD_STEMS))
            roads = [_road_name(rng, stems) for _ in range(int(rng.integers(3, 6)))]
            for r in roads:
                doors.setdefault(r, 0)
            rows = _urban(v, homes[v.code], shops[v.code], roads, doors, rng)
        per_micro = MICRO_GRID_DWELLINGS["rural" if v.rural else "urban"]
        for i, a in enumerate(rows):
            micro = i // per_micro
            grid = micro // MICRO_GRIDS_PER_GRID
            grid_id = f"{v.code}{grid + 1:03d}"
            a.update(
                county_code=county.code,
                township_code=v.township.code,
                township_name=v.township.name,
                village_code=v.code,
                village_name=v.name,
                grid_id=grid_id,
                micro_grid_id=f"{grid_id}{micro % MICRO_GRIDS_PER_GRID + 1:02d}",
            )
            for key in ("compound", "building", "unit", "room"):
                a.setdefault(key, None)
            a["standard_address"] = standard_address(county.prefix, a)
            a["valid_to"] = None
        micro_ids = sorted({(a["grid_id"], a["micro_grid_id"]) for a in rows})
        for grid_id in sorted({g for g, _ in micro_ids}):
            n = int(grid_id[-3:])
            grids.append(
                dict(
                    grid_id=grid_id,
                    level="网格",
                    parent_id=v.code,
                    village_code=v.code,
                    name=f"{v.name}第{chinese_number(n)}网格",
                )
            )
        for grid_id, micro_id in micro_ids:
            grids.append(
                dict(
                    grid_id=micro_id,
                    level="微网格",
                    parent_id=grid_id,
                    village_code=v.code,
                    name=f"{v.name}第{chinese_number(int(grid_id[-3:]))}网格"
                    f"第{chinese_number(int(micro_id[-2:]))}微网格",
                )
            )
        addresses.extend(rows)
    frame = pd.DataFrame(addresses)
    frame.insert(0, "address_id", [address_id(i) for i in range(len(frame))])
    return frame[list(COLUMNS)], pd.DataFrame(grids)
