"""The demo county's people, households, homes, key-group statuses and units at the start.

Households are built from templates (elderly alone, elderly couple, three generations, couple
with children, middle-aged couple, single adult) whose shares are tuned so that the age
structure comes out like a northern Jiangsu county: about a quarter aged 60+. Every family is a
户籍户 at a home in its village; its members then live there, live away from the county
(外出务工: the parents of 留守儿童), or live as a family in another village of the county
(人户分离). Tenants from other Jiangsu counties (流动人口) rent vacant homes.

All numbers below are approximate and recalled, not verified against a source, unless a
source is named; tests check the resulting shares within tolerances (tests/test_demo_county.py).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from onetable.demo import addresses as addr_mod
from onetable.demo.county import County, Elsewhere, Village, load_elsewhere
from onetable.demo.identifiers import Issuer
from onetable.demo.names import (
    GIVEN_CHARS,
    NATIONAL_SURNAMES,
    Weighted,
    given_name,
    surnames_for,
    uyghur_given,
)
from onetable.demo.world import NONE, OK, World, ages

YEAR = 365.2425

# ---- population shape ---------------------------------------------------------------------

# Tenants registered in another county, as a share of all persons. 睢宁 sends far more people out
# than it takes in; a few percent of residents is plausible for a county seat and its towns.
FLOATING_SHARE = 0.05
# Registered population per village, relative: county-seat communities are larger.
VILLAGE_WEIGHT = {"111": 1.6, "121": 1.2, "220": 1.0, "123": 0.5}
VILLAGE_WEIGHT_SPREAD = 0.25  # lognormal sigma around it

# Household templates by rural (村) / urban (社区). Tuned so that, with the ages below, about a
# quarter of residents are 60+ and about 16% under 18 (Jiangsu's 2020 census: 60+ 21.8%, 0-14
# 15.2% of 常住 persons; 户籍-based 60+ shares of recent years about 24-25%; all recalled).
TEMPLATES = {
    True: {
        "elder_single": 0.12,
        "elder_couple": 0.18,
        "three_gen": 0.27,
        "nuclear": 0.27,
        "middle_couple": 0.09,
        "single_adult": 0.07,
    },
    False: {
        "elder_single": 0.08,
        "elder_couple": 0.13,
        "three_gen": 0.15,
        "nuclear": 0.42,
        "middle_couple": 0.11,
        "single_adult": 0.11,
    },
}
# Ages of the elderly by 5-year band from 60: China's 2020 census has 55.8% of the 60+ aged
# 60-69, 30.6% aged 70-79 and 13.6% aged 80+ (recalled); the bands split those shares.
ELDER_BANDS = {60: 0.30, 65: 0.258, 70: 0.18, 75: 0.126, 80: 0.075, 85: 0.04, 90: 0.016, 95: 0.005}
CHILDREN = {  # number of children of a couple by rural/urban (two-child families common in 苏北)
    True: {0: 0.06, 1: 0.36, 2: 0.45, 3: 0.13},
    False: {0: 0.10, 1: 0.55, 2: 0.32, 3: 0.03},
}
FIRST_BIRTH_AGE = (20.0, 2.0, 2.0)  # mother's age at first birth: 20 + gamma(shape 2, scale 2)
LAST_BIRTH_AGE = 42.0  # mothers are 20-42 at a birth before the period (events: up to 44)
TWIN_SHARE = 0.005  # share of deliveries that are twins (the figure)
# Twins named alike: the second's given name shares the first character of the first's
# (张思涵 and 张思怡), one syllable apart; the others' names are drawn apart.
TWIN_SHARED_CHARACTER = 0.5
MALE_AT_BIRTH = 0.53  # sex ratio at birth about 112 (Jiangsu, 2020 census, recalled)

# Who lives where. 睢宁 is a labour-exporting county: young couples work in southern Jiangsu
# and leave children with grandparents (留守儿童); some families live in a town flat while
# their 户口 stays in the village (人户分离).
PARENTS_AWAY = {True: 0.40, False: 0.10}  # three generations: both parents work away
FATHER_AWAY = {True: 0.22, False: 0.06}  # couples under 50: the father works away
FAMILY_ELSEWHERE = {True: 0.12, False: 0.08}  # couples under 50: live in another village
YOUNG_AWAY = {True: 0.45, False: 0.25}  # unmarried 18-30 year olds work or study away
RENT_ELSEWHERE = 0.3  # a family living elsewhere in the county rents (else owns) that home
# Where people working away live: cities' shares, None = outside Jiangsu or unknown.
DESTINATIONS = {"320500": 0.35, "320100": 0.15, "320200": 0.15, "320400": 0.10, "320300": 0.10}
DESTINATION_UNKNOWN = 0.15
# Where tenants come from: nearby cities of northern Jiangsu.
ORIGINS = {"320300": 0.5, "321300": 0.3, "320700": 0.1, "320800": 0.1}
MARRIED_IN_ELSEWHERE = 0.25  # wives whose ID numbers carry another county's code
TENANT_GROUPS = {1: 0.55, 2: 0.30, 3: 0.15}  # single workers, couples, couples with a child
UYGHUR_GROUPS_PER_10K = 1  # Uyghur tenant couples (names with ·) per 10,000 persons, at least 1
HUI_FAMILY_SHARE = 0.004  # 回族 families (Jiangsu's largest minority), Han-style names
OTHER_MINORITY = ("满族", "蒙古族", "苗族", "土家族", "壮族")
OTHER_MINORITY_SPOUSE = 0.003

# ---- key-group statuses at the start -----------------------------------------------------

# 持证残疾人 by age band (<18, 18-59, 60-79, 80+): about 3% overall (China ~2.7% certified).
DISABILITY_BY_AGE = (0.007, 0.025, 0.06, 0.10)
# GB/T 26341-2010 categories (the 20th digit of 残疾人证号) and grades 1 (most severe) to 4.
DISABILITY_CATEGORY = {"1": ("视力", 0.10), "2": ("听力", 0.12), "3": ("言语", 0.01),
                       "4": ("肢体", 0.52), "5": ("智力", 0.08), "6": ("精神", 0.10),
                       "7": ("多重", 0.07)}  # fmt: skip
DISABILITY_GRADE = {1: 0.12, 2: 0.23, 3: 0.30, 4: 0.35}
VETERAN_MALE = 0.08  # men 22+: about 57 million veterans in China, nearly all men
VETERAN_FEMALE = 0.004
VETERAN_ENTITLED = 0.12  # of veterans: 优抚对象 receiving 抚恤补助
MENTAL = 0.0045  # 严重精神障碍 registered under management, of persons 15+ (~0.47% nationally)
MENTAL_DIAGNOSIS = {"精神分裂症": 0.62, "分裂情感性障碍": 0.06, "持久的妄想性障碍": 0.04,
                    "双相情感障碍": 0.12, "癫痫所致精神障碍": 0.06,
                    "精神发育迟滞伴发精神障碍": 0.10}  # fmt: skip
DISABLED_ELDER_BY_AGE = (0.03, 0.08, 0.22)  # 失能 among 60-69, 70-79, 80+
DISABLED_ELDER_DEGREE = {"部分失能": 0.65, "完全失能": 0.35}
FAMILY_PLANNING_SPECIAL = 0.03  # elderly households without children: 计生特殊家庭
FAMILY_PLANNING_TYPE = {"失独": 0.7, "伤残": 0.3}
DIBAO_HOUSEHOLDS = {True: 0.035, False: 0.018}  # 低保 households of resident 户籍户
TEKUN_ELDER_ALONE = 0.1  # 特困 among elderly living alone (分散供养) outside 低保

# ---- units ------------------------------------------------------------------------------

PERSONS_PER_UNIT = 16  # market entities: Jiangsu ~1 per 6 residents (recalled), rural fewer
UNIT_KINDS = {"个体工商户": 0.64, "企业": 0.30, "农民专业合作社": 0.06}
# (trade, GB/T 4754 门类, key-place category or None) for 个体工商户.
TRADES = (
    ("便利店", "F", "九小场所:小商店"),
    ("超市", "F", "九小场所:小商店"),
    ("五金店", "F", "九小场所:小商店"),
    ("农资店", "F", "九小场所:小商店"),
    ("服装店", "F", "九小场所:小商店"),
    ("手机店", "F", "九小场所:小商店"),
    ("小吃店", "H", "九小场所:小餐饮"),
    ("面馆", "H", "九小场所:小餐饮"),
    ("饭店", "H", "九小场所:小餐饮"),
    ("烧烤店", "H", "九小场所:小餐饮"),
    ("理发店", "O", "九小场所:小美容洗浴"),
    ("美容店", "O", "九小场所:小美容洗浴"),
    ("家电维修部", "O", None),
    ("旅馆", "H", "九小场所:小旅馆"),
    ("网吧", "R", "九小场所:小网吧"),
    ("诊所", "Q", "九小场所:小医院"),
)
# (business, 门类, key-place category or None) for 企业.
BUSINESSES = (
    ("木业", "C", "九小场所:小生产加工"),
    ("家具", "C", "九小场所:小生产加工"),
    ("电子商务", "F", None),
    ("农业科技", "A", None),
    ("建材", "C", "九小场所:小生产加工"),
    ("物流", "G", None),
    ("机械", "C", None),
    ("纺织", "C", None),
    ("食品", "C", None),
    ("建筑工程", "E", None),
    ("商贸", "F", None),
    ("汽车服务", "O", None),
    ("石油销售", "F", "加油站"),
)
PRODUCTS = ("果蔬种植", "食用菌种植", "生猪养殖", "家禽养殖", "粮食种植", "花木种植")
INDUSTRY = {"A": "农、林、牧、渔业", "C": "制造业", "E": "建筑业", "F": "批发和零售业",
            "G": "交通运输、仓储和邮政业", "H": "住宿和餐饮业", "O": "居民服务、修理和其他服务业",
            "P": "教育", "Q": "卫生和社会工作", "R": "文化、体育和娱乐业"}  # fmt: skip
# 字号 (trade names): common ones, else two characters of the usual auspicious kind.
BRANDS = ("鑫盛", "恒通", "福源", "兴旺", "金鑫", "顺达", "宏发", "永盛", "佳佳", "惠民", "诚信",
          "富贵", "红星", "阳光", "鸿运", "聚福", "华泰", "天成", "利民", "众诚")  # fmt: skip
BRAND_CHARS = "鑫盛恒通福源兴旺金顺达宏发永佳惠诚信富贵红星阳光鸿运聚华泰天成利民众德昌隆祥和嘉"
# Per township: a school, a kindergarten, a health centre (事业单位, key places).
INSTITUTIONS = (
    ("中心小学", "P", "学校"),
    ("中心幼儿园", "P", "幼儿园"),
    ("卫生院", "Q", "医疗机构"),
)


@dataclass
class Context:
    """What generation needs besides the state: the places, the random generator, the issuer."""

    county: County
    villages: tuple[Village, ...]
    rng: np.random.Generator
    issuer: Issuer
    origins: tuple[Elsewhere, ...]
    origin_cdf: np.ndarray
    destinations: tuple[Elsewhere, ...]
    destination_cdf: np.ndarray  # one more entry than destinations: unknown
    surnames: list[Weighted]  # per village
    dibao_cases: dict[str, list[int]] = field(default_factory=dict)  # case id -> persons
    floating_groups: int = 0  # tenant groups at the start, for the arrival rate

    def destination(self) -> str | None:
        """A county code for someone working away (None: outside Jiangsu or unknown)."""
        i = int(np.searchsorted(self.destination_cdf, self.rng.random(), side="right"))
        return self.destinations[i].code if i < len(self.destinations) else None

    def origin(self) -> tuple[str, str]:
        """A tenant's home county code and 户籍 address there."""
        o = self.origins[int(np.searchsorted(self.origin_cdf, self.rng.random(), side="right"))]
        township, village = o.places[int(self.rng.integers(0, len(o.places)))]
        group, door = int(self.rng.integers(1, 13)), int(self.rng.integers(1, 80))
        return o.code, o.address(township, village, group, door)


def _cdf(counties: tuple[Elsewhere, ...], city_shares: dict[str, float], rest: float = 0.0):
    """Cumulative weights over counties: each city's share split evenly among its counties."""
    per_city = {c: sum(1 for x in counties if x.code[:4] == c[:4]) for c in city_shares}
    w = [city_shares[x.code[:4] + "00"] / per_city[x.code[:4] + "00"] for x in counties]
    cum = np.cumsum([*w, rest])
    return cum / cum[-1]


def make_context(
    county: County, villages: tuple[Village, ...], tree: list[dict], rng: np.random.Generator
) -> Context:
    origins = load_elsewhere(tree, tuple(ORIGINS), county.code)
    destinations = load_elsewhere(tree, tuple(DESTINATIONS), county.code)
    return Context(
        county=county,
        villages=villages,
        rng=rng,
        issuer=Issuer(rng),
        origins=origins,
        origin_cdf=_cdf(origins, ORIGINS)[:-1],
        destinations=destinations,
        destination_cdf=_cdf(destinations, DESTINATIONS, DESTINATION_UNKNOWN),
        surnames=[surnames_for(v.name) for v in villages],
    )


def choice(rng: np.random.Generator, weights: dict):
    """A key of `weights` drawn with probability proportional to its value: the draw
    `rng.choice(len(weights), p=…)` makes (one uniform against the same cumulative weights),
    without its checks of p, which cost more than the draw a million times over."""
    items = tuple(weights.items())
    keys, cdf = _CUMULATIVE.get(items) or _CUMULATIVE.setdefault(items, _cumulative(weights))
    return keys[bisect.bisect_right(cdf, rng.random())]


_CUMULATIVE: dict[tuple, tuple[list, list[float]]] = {}


def _cumulative(weights: dict) -> tuple[list, list[float]]:
    """The keys and the cumulative weights as numpy's Generator.choice computes them."""
    p = np.fromiter(weights.values(), float)
    cdf = (p / p.sum()).cumsum()
    cdf /= cdf[-1]
    return list(weights), cdf.tolist()


def since(rng: np.random.Generator, lo: int, hi: int) -> int:
    """A day in [lo, hi), or lo when the range is empty."""
    return lo + int(rng.integers(0, hi - lo)) if hi > lo else lo


# ---- families ---------------------------------------------------------------------------


@dataclass
class Member:
    sex: int  # 1 男, 0 女
    birth: int
    mother: int = NONE  # indexes within the family
    father: int = NONE
    spouse: int = NONE
    line: bool = False  # carries the family's surname (drawn from the village's surnames)
    away: bool = False  # works or studies outside the county
    id_area: str | None = None  # another county's code in the ID number (married in)


@dataclass
class Family:
    village: int  # index into Context.villages
    members: list[Member]
    head: int
    rural: bool
    template: str
    ethnicity: str = "汉族"
    elsewhere: int = NONE  # village where the family lives (人户分离); NONE: at its 户籍 home
    origin: tuple[str, str] | None = None  # tenants: home county code and 户籍 address
    arrival: int = 0  # tenants: 来本地日期
    persons: list[int] = field(default_factory=list)  # once created
    household: int = NONE  # the 户籍户, once created


def _born(start: int, age: float) -> int:
    return start - 1 - int(age * YEAR)


def _age(start: int, birth: int) -> float:
    return (start - 1 - birth) / YEAR


def _at_least(rng: np.random.Generator, floor: float, age: float) -> float:
    """`age`, or a day in the year after `floor` when it is younger: one birth date for every
    clamped age would use up that day's 500 ID sequence codes of a sex in a large county."""
    return age if age >= floor else floor + rng.random()


def _elder_age(rng: np.random.Generator) -> float:
    """An age from the elderly bands (60 to 100)."""
    return choice(rng, ELDER_BANDS) + 5 * rng.random()


def _couple(rng: np.random.Generator, start: int, husband_age: float, wife_min: float = 20.0):
    wife_age = _at_least(rng, wife_min, husband_age - rng.normal(2.0, 2.0))
    return [
        Member(1, _born(start, husband_age), spouse=1, line=True),
        Member(0, _born(start, wife_age), spouse=0),
    ]


def _children(
    rng: np.random.Generator, start: int, members: list[Member], mother: int, father: int, n: int
) -> None:
    """Up to n children of a couple (twins at TWIN_SHARE), born when the mother was 20-42 and
    before the start; children past 30 have households of their own and are left out."""
    mb = members[mother].birth
    lo, shape, scale = FIRST_BIRTH_AGE
    t = mb + int((lo + rng.gamma(shape, scale)) * YEAR)
    for i in range(n):
        if i:
            t += int(rng.uniform(1.5, 6.0) * YEAR)
        if t >= start - 1 or (t - mb) / YEAR >= LAST_BIRTH_AGE:
            break
        for _ in range(2 if rng.random() < TWIN_SHARE else 1):
            if _age(start, t) < 30:
                sex = int(rng.random() < MALE_AT_BIRTH)
                members.append(Member(sex, t, mother=mother, father=father))


def _family(rng: np.random.Generator, start: int, rural: bool) -> tuple[str, list[Member], int]:
    """Members and head of one 户籍户 drawn from the templates."""
    template = choice(rng, TEMPLATES[rural])
    if template == "elder_single":
        return (
            template,
            [Member(int(rng.random() < 0.35), _born(start, _elder_age(rng)), line=True)],
            0,
        )
    if template == "elder_couple":
        return template, _couple(rng, start, _elder_age(rng), wife_min=57.0), 0
    if template == "middle_couple":
        return template, _couple(rng, start, rng.uniform(45, 65)), 0
    if template == "single_adult":
        return (
            template,
            [Member(int(rng.random() < 0.6), _born(start, rng.uniform(20, 60)), line=True)],
            0,
        )
    if template == "nuclear":
        members = _couple(rng, start, rng.uniform(24, 60))
        _children(rng, start, members, 1, 0, choice(rng, CHILDREN[rural]))
        return template, members, 0 if rng.random() < 0.85 else 1
    # three generations: grandparents (about 30% widowed, grandmothers outlive), a son (or a
    # daughter whose husband married in) with spouse, and their children.
    gf_age = _elder_age(rng) - 5 * rng.random()
    gm_age = _at_least(rng, 50.0, gf_age - rng.normal(2.0, 2.0))
    widowed = rng.random() < 0.3
    keep_gf = not widowed or rng.random() >= 0.7
    members: list[Member] = []
    gf = gm = NONE
    if keep_gf:
        gf = len(members)
        members.append(Member(1, _born(start, gf_age), line=True))
    if not (widowed and keep_gf):
        gm = len(members)
        members.append(Member(0, _born(start, gm_age)))
    if gf != NONE and gm != NONE:
        members[gf].spouse, members[gm].spouse = gm, gf
    middle_age = gm_age - (FIRST_BIRTH_AGE[0] + min(20.0, rng.gamma(2.0, 2.5)))
    if middle_age < 22:
        middle_age = 22 + 3 * rng.random()
    son = rng.random() < 0.8
    mate_age = middle_age - rng.normal(2, 2) if son else middle_age + rng.normal(2, 2)
    mid, mate = len(members), len(members) + 1
    members.append(Member(int(son), _born(start, middle_age), gm, gf, mate, line=True))
    members.append(Member(int(not son), _born(start, _at_least(rng, 20.0, mate_age)), spouse=mid))
    mother, father = (mate, mid) if son else (mid, mate)
    _children(rng, start, members, mother, father, max(1, choice(rng, CHILDREN[rural])))
    if son and (gf == NONE or gf_age >= 75 or rng.random() < 0.4):
        return template, members, mid
    return template, members, gf if gf != NONE else gm


def _plan_residence(rng: np.random.Generator, start: int, fam: Family, towns: list[int]) -> None:
    """Who of a family works away, or whether it lives in a town flat (人户分离)."""
    r = fam.rural
    ms = fam.members
    couples = [(i, m.spouse) for i, m in enumerate(ms) if m.sex == 1 and m.spouse != NONE]
    young = [(h, w) for h, w in couples if _age(start, ms[h].birth) < 50]
    has_kids = {m.father for m in ms} | {m.mother for m in ms}
    for h, w in young:
        if not (h in has_kids or w in has_kids):
            continue
        if fam.template == "three_gen":
            u = rng.random()
            if u < PARENTS_AWAY[r]:
                ms[h].away = ms[w].away = True
            elif u < PARENTS_AWAY[r] + FATHER_AWAY[r]:
                ms[h].away = True
        elif fam.template == "nuclear":
            u = rng.random()
            choices = [t for t in towns if t != fam.village]
            if u < FAMILY_ELSEWHERE[r] and choices:
                fam.elsewhere = choices[int(rng.integers(0, len(choices)))]
            elif u < FAMILY_ELSEWHERE[r] + FATHER_AWAY[r]:
                ms[h].away = True
    for m in ms:
        age = _age(start, m.birth)
        unmarried = m.spouse == NONE and age < 31
        if 18 <= age < 31 and unmarried and rng.random() < YOUNG_AWAY[r]:
            m.away = True
    if all(m.away for m in ms):
        ms[fam.head].away = False  # someone keeps the family home


def tenant_group(rng: np.random.Generator, start: int, village: int, rural: bool, uyghur: bool):
    size = 2 if uyghur else choice(rng, TENANT_GROUPS)
    if size == 1:
        members = [Member(int(rng.random() < 0.6), _born(start, rng.uniform(18, 50)))]
    else:
        members = _couple(rng, start, rng.uniform(22, 50))
        if size == 3:
            _children(rng, start, members, 1, 0, 1)
            members = members[:3]
    return Family(village, members, 0, rural, "tenants", "维吾尔族" if uyghur else "汉族")


def plan_families(ctx: Context, start: int, persons: int) -> tuple[list[Family], list[Family]]:
    """Registered families village by village until each village's share of the registered
    population is reached, then the tenant groups. Returns (families, tenants)."""
    rng, villages = ctx.rng, ctx.villages
    floating = round(persons * FLOATING_SHARE)
    weights = np.array([VILLAGE_WEIGHT[v.urban_rural_code] for v in villages])
    weights = weights * rng.lognormal(0.0, VILLAGE_WEIGHT_SPREAD, len(villages))
    targets = np.round(weights / weights.sum() * (persons - floating)).astype(int)
    towns = [i for i, v in enumerate(villages) if not v.rural]
    families: list[Family] = []
    for vi, v in enumerate(villages):
        count = 0
        while count < targets[vi]:
            template, members, head = _family(rng, start, v.rural)
            fam = Family(vi, members, head, v.rural, template)
            if rng.random() < HUI_FAMILY_SHARE:
                fam.ethnicity = "回族"
            for m in members:
                married_in = m.mother == NONE and m.father == NONE and not m.line and m.sex == 0
                if married_in and rng.random() < MARRIED_IN_ELSEWHERE:
                    m.id_area = ctx.origin()[0]
            _plan_residence(rng, start, fam, towns)
            families.append(fam)
            count += len(members)
    tenants: list[Family] = []
    urban = np.array([0.0 if v.rural else weights[i] for i, v in enumerate(villages)])
    rural = np.array([weights[i] if v.rural else 0.0 for i, v in enumerate(villages)])
    uyghur = max(1, round(persons * UYGHUR_GROUPS_PER_10K / 10_000))
    count = 0
    while count < floating:
        pool = urban if (rng.random() < 0.75 or rural.sum() == 0) else rural
        vi = int(rng.choice(len(villages), p=pool / pool.sum()))
        group = tenant_group(rng, start, vi, villages[vi].rural, len(tenants) < uyghur)
        group.origin = ctx.origin()
        group.arrival = start - int(rng.uniform(20, 6 * YEAR))
        tenants.append(group)
        count += len(group.members)
    return families, tenants


# ---- creating people ----------------------------------------------------------------------


def surname_of(name: str) -> str:
    return name[:2] if name[:2] in NATIONAL_SURNAMES.values else name[:1]


def add_person(
    world: World,
    ctx: Context,
    sex: int,
    birth: int,
    surname: str,
    ethnicity: str,
    *,
    mother: int = NONE,
    father: int = NONE,
    id_area: str | None = None,
    avoid: tuple[str, ...] = (),
    twin: str | None = None,
) -> int:
    """A person with a name (never one in `avoid`: siblings and twins differ), an ID number and
    no phone yet. Uyghur names are the given name and the father's given name joined by ·. A
    twin's name (`twin`, the first twin's) shares its given name's first character at
    TWIN_SHARED_CHARACTER."""
    rng = ctx.rng
    year = date.fromordinal(birth).year
    alike = twin is not None and "·" not in twin and len(twin) == len(surname) + 2
    alike = alike and rng.random() < TWIN_SHARED_CHARACTER
    while True:
        if ethnicity == "维吾尔族":
            dad = world.static[father]["name"].split("·")[0] if father != NONE else None
            name = uyghur_given(rng, "男" if sex else "女") + "·" + (dad or uyghur_given(rng, "男"))
        elif alike:
            pool = GIVEN_CHARS["男" if sex else "女"]
            name = twin[: len(surname) + 1] + pool[int(rng.integers(0, len(pool)))]
        else:
            name = surname + given_name(rng, "男" if sex else "女", year)
        if name not in avoid:
            break
    number = ctx.issuer.id_number(id_area or ctx.county.code, birth, sex == 1)
    return world.add_person(
        birth=birth,
        sex=sex,
        mother=mother,
        father=father,
        name=name,
        id_number=number,
        ethnicity=ethnicity,
        phone=None,
    )


def twin_name(world: World, persons: list[int], mother: int, birth: int) -> str | None:
    """The name of the twin among `persons` (the same mother, the same birth day), if any."""
    if mother == NONE:
        return None
    return next(
        (world.static[q]["name"] for q in persons
         if int(world.mother[q]) == mother and int(world.birth[q]) == birth),
        None,
    )  # fmt: skip


def _phone_share(age: int) -> float:
    """Share owning a mobile: none under 12; most adults; fewer of the very old."""
    for limit, share in ((12, 0.0), (18, 0.6), (70, 0.97), (80, 0.8)):
        if age < limit:
            return share
    return 0.5


def give_phones(world: World, ctx: Context, persons: list[int], day: int) -> None:
    """Own phones by age; half of the elderly without one give a younger relative's number."""
    rng = ctx.rng
    for p in persons:
        if rng.random() < _phone_share(world.age(p, day)):
            world.static[p]["phone"] = ctx.issuer.phone()
    helpers = [p for p in persons if world.static[p]["phone"] and world.age(p, day) < 60]
    for p in persons:
        without = world.static[p]["phone"] is None and world.age(p, day) >= 60
        if without and helpers and rng.random() < 0.5:
            world.static[p]["phone"] = world.static[helpers[0]]["phone"]


def _create_family(
    world: World, ctx: Context, fam: Family, homes: list[list[int]]
) -> tuple[int, int] | None:
    """The family's persons, 户籍户 and home; returns (home, since) if that home is rented."""
    rng, start = ctx.rng, world.start
    addr = homes[fam.village].pop()
    line = ctx.surnames[fam.village].draw(rng)
    idx: list[int] = []
    for m in fam.members:
        mother = idx[m.mother] if m.mother != NONE else NONE
        father = idx[m.father] if m.father != NONE else NONE
        if m.line:
            surname = line
        elif father != NONE:
            parent = father if rng.random() < 0.95 else mother
            surname = surname_of(world.static[parent]["name"])
        else:
            surname = NATIONAL_SURNAMES.draw(rng)
        ethnicity = fam.ethnicity
        if mother == NONE and father == NONE and not m.line:  # married in
            if fam.ethnicity == "回族" and rng.random() < 0.5:
                ethnicity = "汉族"
            elif rng.random() < OTHER_MINORITY_SPOUSE:
                ethnicity = OTHER_MINORITY[int(rng.integers(0, len(OTHER_MINORITY)))]
        avoid = tuple(world.static[p]["name"] for p in idx)
        idx.append(
            add_person(
                world,
                ctx,
                m.sex,
                m.birth,
                surname,
                ethnicity,
                mother=mother,
                father=father,
                id_area=m.id_area,
                avoid=avoid,
                twin=twin_name(world, idx, mother, m.birth),
            )
        )
    for m, p in zip(fam.members, idx, strict=True):
        if m.spouse != NONE:
            world.spouse[p] = idx[m.spouse]
    fam.persons = idx
    head = idx[fam.head]

    # 户籍: the 户号 dates from when the head set up house; a child is registered 10-60 days
    # after birth (出生登记), and a registration still due at the start happens in the period.
    lo = max(date(1985, 1, 1).toordinal(), int(world.addr_from[addr]))
    lo = max(lo, int(world.birth[head]) + int(20 * YEAR))
    hh_since = since(rng, lo, start - 30)
    h = world.new_household("户籍户", addr, hh_since, ctx.issuer.hukou_no())
    fam.household = h
    for p in idx:
        day = max(hh_since, int(world.birth[p]) + int(rng.integers(10, 61)))
        if day >= start:
            world.schedule(day, "birth_registration", person=p, household=h)
        else:
            world.set_registration(p, day, h, OK, world.relation(head, p))

    # Residence: at the 户籍 home, or together in a home elsewhere in the county; some away.
    if fam.elsewhere != NONE:
        home = homes[fam.elsewhere].pop()
        lo = max(int(world.addr_from[home]), date(2005, 1, 1).toordinal())
        act_since = since(rng, lo, start - 30)
        rental = (home, act_since) if rng.random() < RENT_ELSEWHERE else None
    else:
        home, act_since, rental = addr, hh_since, None
    a = world.new_household("实有户", home, act_since)
    for m, p in zip(fam.members, idx, strict=True):
        born = int(world.birth[p])
        if m.away:
            lo = max(born + int(16 * YEAR), start - int(10 * YEAR))
            world.set_residence(
                p, since(rng, lo, start - 7), away=True, away_code=ctx.destination()
            )
        else:
            world.set_residence(p, max(act_since, born), a)
    give_phones(world, ctx, idx, start)
    return rental


def create_tenants(world: World, ctx: Context, fam: Family, addr: int, arrival: int) -> None:
    """A tenant group renting `addr` since `arrival` (来本地日期), registered in its home county
    since before the period. The caller starts the rental (it needs the landlord, who must not
    be one of them)."""
    rng = ctx.rng
    surname = NATIONAL_SURNAMES.draw(rng)
    idx: list[int] = []
    for m in fam.members:
        mother = idx[m.mother] if m.mother != NONE else NONE
        father = idx[m.father] if m.father != NONE else NONE
        own = surname if (m.line or father != NONE) else NATIONAL_SURNAMES.draw(rng)
        avoid = tuple(world.static[p]["name"] for p in idx)
        idx.append(
            add_person(
                world,
                ctx,
                m.sex,
                m.birth,
                own,
                fam.ethnicity,
                mother=mother,
                father=father,
                id_area=fam.origin[0],
                avoid=avoid,
                twin=twin_name(world, idx, mother, m.birth),
            )
        )
    for m, p in zip(fam.members, idx, strict=True):
        if m.spouse != NONE:
            world.spouse[p] = idx[m.spouse]
    fam.persons = idx
    a = world.new_household("实有户", addr, arrival)
    area, outside = fam.origin
    for p in idx:
        born = int(world.birth[p])
        world.set_registration(p, min(born + 30, world.start - 1), NONE, OK, None, area, outside)
        came = max(arrival, born)
        world.set_residence(p, came, a)
        world.start_status(p, "流动人口", came, arrived_on=came)
    give_phones(world, ctx, idx, arrival)


# ---- picking people -----------------------------------------------------------------------


def residence_villages(world: World) -> np.ndarray:
    """Per person, the index of the village they live in (NONE if not in the county)."""
    hh = world.res_hh[: world.n]
    addr = world.household_addresses()
    out = np.full(world.n, NONE, dtype=np.int32)
    inside = hh != NONE
    out[inside] = world.addr_village[addr[hh[inside]]]
    return out


def pick_resident(
    world: World,
    ctx: Context,
    day: int,
    ages_between: tuple[int, int],
    village: int = NONE,
    *,
    exclude: np.ndarray | None = None,
    villages: np.ndarray | None = None,
) -> int:
    """A random resident of the county, registered here, aged in [lo, hi), preferably living
    in `village` (`villages`: residence_villages, if the caller has it); NONE if nobody fits."""
    n = world.n
    age = ages(world.ymd[:n], day)
    ok = (world.res_hh[:n] != NONE) & (age >= ages_between[0]) & (age < ages_between[1])
    ok &= world.reg_hh[:n] != NONE
    if exclude is not None:
        ok &= ~exclude[:n]
    if village != NONE:
        where = residence_villages(world) if villages is None else villages
        near = ok & (where == village)
        if near.any():
            ok = near
    candidates = np.flatnonzero(ok)
    return int(ctx.rng.choice(candidates)) if len(candidates) else NONE


class Residents:
    """pick_resident's candidates for one day, kept by village, for a loop in which nobody moves
    or registers: a pick then costs a village's people, not a scan of the county's."""

    def __init__(
        self, world: World, day: int, ages_between: tuple[int, int], villages: np.ndarray, nv: int
    ):
        n = world.n
        age = ages(world.ymd[:n], day)
        ok = (world.res_hh[:n] != NONE) & (age >= ages_between[0]) & (age < ages_between[1])
        ok &= world.reg_hh[:n] != NONE
        self.everyone = np.flatnonzero(ok)  # in index order, as pick_resident's candidates
        self.world = world
        where = villages[self.everyone]
        order = np.argsort(where, kind="stable")
        cuts = np.searchsorted(where[order], np.arange(nv + 1))
        self.near = np.split(self.everyone[order], cuts[1:-1])  # each still in index order

    def pick(
        self,
        rng: np.random.Generator,
        village: int,
        *,
        exclude: np.ndarray | None = None,
        household: int = NONE,
    ) -> int:
        """As pick_resident: one of `village` if any, else of the county; none `exclude` marks
        and none living in `household` (the tenants of a rented home)."""
        for candidates in (self.near[village], self.everyone):
            if exclude is not None:
                candidates = candidates[~exclude[candidates]]
            if household != NONE:
                candidates = candidates[self.world.res_hh[candidates] != household]
            if len(candidates):
                return int(rng.choice(candidates))
        return NONE


# ---- statuses at the start ---------------------------------------------------------------


def _band(age: np.ndarray, limits: tuple[int, ...], shares: tuple[float, ...]) -> np.ndarray:
    return np.asarray(shares)[np.searchsorted(np.asarray(limits), age, side="right")]


def _past(rng: np.random.Generator, lo: int, start: int) -> int:
    """A day from `lo` to the day before the start."""
    return since(rng, int(lo), start - 1)


def _initial_statuses(world: World, ctx: Context, families: list[Family]) -> None:
    """Key-group statuses held at the start, each since a day before it. 独居, 空巢 and 留守儿童
    are not set here: derived.py derives them from the residence timelines every day."""
    rng, start, n = ctx.rng, world.start, world.n
    age = ages(world.ymd[:n], start)
    born = world.birth[:n].astype(np.int64)
    resident = world.res_hh[:n] != NONE
    registered = world.reg_hh[:n] != NONE
    male = world.sex[:n] == 1
    cert_era = date(2008, 1, 1).toordinal()  # second-generation 残疾人证

    disabled = registered & (age >= 1)  # certified at six months at the earliest
    disabled &= rng.random(n) < _band(age, (18, 60, 80), DISABILITY_BY_AGE)
    categories = {k: w for k, (_, w) in DISABILITY_CATEGORY.items()}
    for p in np.flatnonzero(disabled):
        cat = choice(rng, categories)
        world.start_status(
            int(p),
            "残疾",
            _past(rng, max(born[p] + 180, cert_era), start),
            disability_category=cat,
            disability_category_name=DISABILITY_CATEGORY[cat][0],
            disability_grade=int(choice(rng, DISABILITY_GRADE)),
        )

    veteran_share = np.where(male, VETERAN_MALE, VETERAN_FEMALE) * (age >= 22)
    for p in np.flatnonzero(registered & (rng.random(n) < veteran_share)):
        discharged = min(int(born[p] + rng.uniform(20, 26) * YEAR), start - 30)
        detail = "优抚对象" if rng.random() < VETERAN_ENTITLED else None
        world.start_status(int(p), "退役军人", discharged, detail=detail)

    for p in np.flatnonzero(resident & (age >= 15) & (rng.random(n) < MENTAL)):
        lo = max(born[p] + int(15 * YEAR), date(2005, 1, 1).toordinal())
        world.start_status(
            int(p), "严重精神障碍", _past(rng, lo, start), detail=choice(rng, MENTAL_DIAGNOSIS)
        )

    frail = resident & (rng.random(n) < _band(age, (60, 70, 80), (0.0, *DISABLED_ELDER_BY_AGE)))
    for p in np.flatnonzero(frail):
        lo = max(born[p] + int(60 * YEAR), start - int(6 * YEAR))
        world.start_status(
            int(p), "失能", _past(rng, lo, start), detail=choice(rng, DISABLED_ELDER_DEGREE)
        )

    for fam in families:
        here = [p for p in fam.persons if world.reg_hh[p] == fam.household]
        childless = fam.template in ("elder_single", "elder_couple")
        if childless and rng.random() < FAMILY_PLANNING_SPECIAL:
            kind = choice(rng, FAMILY_PLANNING_TYPE)
            day = _past(rng, start - int(15 * YEAR), start)
            for p in here:
                world.start_status(p, "计生特殊家庭", day, detail=kind)
        if any(world.away[p] for p in fam.persons) or not here:
            continue
        share = DIBAO_HOUSEHOLDS[fam.rural] * (2 if any(disabled[p] for p in here) else 1)
        if rng.random() < share:
            case = ctx.issuer.case_id("DB")
            day = _past(rng, start - int(6 * YEAR), start)
            for p in here:
                world.start_status(p, "低保", max(day, int(world.reg_since[p])), case_id=case)
            ctx.dibao_cases[case] = list(here)
        elif (
            fam.template == "elder_single"
            and resident[here[0]]
            and rng.random() < TEKUN_ELDER_ALONE
        ):
            day = _past(rng, start - int(8 * YEAR), start)
            world.start_status(
                here[0], "特困", day, case_id=ctx.issuer.case_id("TK"), detail="分散供养"
            )


# ---- units -------------------------------------------------------------------------------


@dataclass
class UnitPlan:
    village: int
    kind: str  # 个体工商户 / 企业 / 农民专业合作社 / 事业单位
    label: str  # trade, business, product or institution
    industry: str  # GB/T 4754 门类 letter
    key_place: str | None


def plan_unit(ctx: Context, village: int) -> UnitPlan:
    """A market entity of a random kind in `village` (cooperatives only in 村)."""
    rng = ctx.rng
    kind = choice(rng, UNIT_KINDS)
    if kind == "农民专业合作社" and not ctx.villages[village].rural:
        kind = "企业"
    if kind == "个体工商户":
        label, industry, key_place = TRADES[int(rng.integers(0, len(TRADES)))]
    elif kind == "企业":
        label, industry, key_place = BUSINESSES[int(rng.integers(0, len(BUSINESSES)))]
    else:
        label, industry, key_place = PRODUCTS[int(rng.integers(0, len(PRODUCTS)))], "A", None
    return UnitPlan(village, kind, label, industry, key_place)


def _plan_units(ctx: Context, families: list[Family], persons: int) -> list[UnitPlan]:
    """Per township a school, a kindergarten and a health centre; market entities in
    proportion to the villages' registered people."""
    plans, seen = [], set()
    for vi, v in enumerate(ctx.villages):
        if v.township.code not in seen:
            seen.add(v.township.code)
            plans += [UnitPlan(vi, "事业单位", *inst) for inst in INSTITUTIONS]
    weights = np.zeros(len(ctx.villages))
    for fam in families:
        weights[fam.village] += len(fam.members)
    for _ in range(round(persons / PERSONS_PER_UNIT)):
        vi = int(ctx.rng.choice(len(weights), p=weights / weights.sum()))
        plans.append(plan_unit(ctx, vi))
    return plans


def _unit_name(ctx: Context, plan: UnitPlan, rep_name: str, taken: set[str]) -> str:
    """A registered name in the usual pattern (行政区划 + 字号 + 行业 + 组织形式), unique in the
    county as 市场监管 requires; common 字号 first, then rarer ones."""
    rng, county = ctx.rng, ctx.county
    v = ctx.villages[plan.village]
    for attempt in range(20):
        if attempt < 3:
            brand = BRANDS[int(rng.integers(0, len(BRANDS)))]
        else:
            i, j = rng.integers(0, len(BRAND_CHARS), size=2)
            brand = BRAND_CHARS[i] + BRAND_CHARS[j]
        if plan.kind == "个体工商户":
            if rng.random() < 0.4:
                brand = ("小" if rng.random() < 0.5 else "老") + surname_of(rep_name)
            name = f"{county.name}{v.township.name}{brand}{plan.label}"
        elif plan.kind == "企业":
            prefix = ("徐州", county.name, "江苏")[int(rng.integers(0, 3))]
            name = f"{prefix}{brand}{plan.label}有限公司"
        elif plan.kind == "农民专业合作社":
            name = f"{county.name}{v.name.removesuffix('村')}{plan.label}专业合作社"
            if attempt:
                name = f"{county.name}{v.name.removesuffix('村')}{brand}{plan.label}专业合作社"
        else:
            label = plan.label
            if label == "卫生院" and v.township.kind == "街道":
                label = "社区卫生服务中心"
            name = f"{county.name}{v.township.name}{label}"
        if name not in taken:
            taken.add(name)
            return name
    raise RuntimeError("no free unit name")  # 1,600 two-character 字号 never run out in practice


def create_unit(
    world: World, ctx: Context, plan: UnitPlan, founded: int, rep: int, addr: int, taken: set[str]
) -> int:
    """A unit with a valid credit code, open (存续) since `founded`, its legal representative
    `rep` (a resident), at `addr`. Returns its index."""
    rng = ctx.rng
    if plan.kind == "个体工商户":
        employees = 1 + int(rng.poisson(1.5))
    elif plan.kind == "企业":
        employees = max(3, int(rng.lognormal(2.3, 1.0)))
    elif plan.kind == "农民专业合作社":
        employees = 5 + int(rng.poisson(5))
    else:
        employees = int(rng.integers(15, 120))
    u = len(world.units)
    world.units.append(
        dict(
            name=_unit_name(ctx, plan, world.static[rep]["name"], taken),
            credit_code=ctx.issuer.credit_code(plan.kind, ctx.county.code),
            kind=plan.kind,
            industry_code=plan.industry,
            industry_name=INDUSTRY[plan.industry],
            key_place_category=plan.key_place,
            founded_on=founded,
            employees=employees,
        )
    )
    world.unit_open.append(dict(status="存续", address=addr, legal_rep=rep, valid_from=founded))
    return u


def _create_units(
    world: World, ctx: Context, plans: list[UnitPlan], shops: list[list[int]], taken: set[str]
) -> None:
    rng, start = ctx.rng, world.start
    used = np.zeros(world.n, bool)
    where, nv = residence_villages(world), len(ctx.villages)
    pools = {
        ages_ok: Residents(world, start, ages_ok, where, nv) for ages_ok in ((35, 60), (25, 66))
    }
    founded_from = {"个体工商户": 2005, "企业": 2000, "农民专业合作社": 2008, "事业单位": 1980}
    for plan in plans:
        ages_ok = (35, 60) if plan.kind == "事业单位" else (25, 66)
        rep = pools[ages_ok].pick(rng, plan.village, exclude=used)
        if rep == NONE:
            continue
        used[rep] = True
        home = world.address_of(rep)
        at_home = plan.kind == "个体工商户" and rng.random() < (
            0.45 if world.addr_rural[home] else 0.2
        )
        addr = home if at_home or not shops[plan.village] else shops[plan.village].pop()
        lo = date(founded_from[plan.kind], 1, 1).toordinal()
        founded = since(rng, max(lo, int(world.addr_from[addr])), start - 30)
        create_unit(world, ctx, plan, founded, rep, addr, taken)


LANDLORD_AGES = (35, 75)


def landlord_for(world: World, ctx: Context, addr: int, day: int, villages: np.ndarray) -> int:
    """An owner for a rented home: a registered resident aged 35-74 of the same village, not
    one of the people renting it."""
    tenants = world.res_hh[: world.n] == world.addr_actual[addr]
    village = int(world.addr_village[addr])
    return pick_resident(
        world, ctx, day, LANDLORD_AGES, village, exclude=tenants, villages=villages
    )


# ---- the whole start ---------------------------------------------------------------------

HOME_SPARE = 0.15  # vacant homes beyond the need: moves and new tenants find some (空置房)
SHOP_SPARE = 0.3  # premises beyond the units at the start: new units open in them


def populate(world: World, ctx: Context, persons: int) -> set[str]:
    """Build the county as it stands at the start: addresses, families, tenants, statuses,
    units. Returns the unit names taken (new units must not reuse them)."""
    rng, start = ctx.rng, world.start
    families, tenants = plan_families(ctx, start, persons)
    units = _plan_units(ctx, families, persons)
    nv = len(ctx.villages)
    homes_needed, shops_needed = np.zeros(nv, int), np.zeros(nv, int)
    for fam in families:
        homes_needed[fam.village] += 1
        if fam.elsewhere != NONE:
            homes_needed[fam.elsewhere] += 1
    for fam in tenants:
        homes_needed[fam.village] += 1
    for plan in units:
        shops_needed[plan.village] += 1
    codes = [v.code for v in ctx.villages]
    homes = {
        c: math.ceil(n * (1 + HOME_SPARE)) + 5 for c, n in zip(codes, homes_needed, strict=True)
    }
    shops = {
        c: math.ceil(n * (1 + SHOP_SPARE)) + 3 for c, n in zip(codes, shops_needed, strict=True)
    }
    frame, grids = addr_mod.build_addresses(ctx.county, ctx.villages, homes, shops, rng)
    set_addresses(world, frame, grids, ctx.villages)

    home_stacks: list[list[int]] = [[] for _ in range(nv)]
    shop_stacks: list[list[int]] = [[] for _ in range(nv)]
    for a in rng.permutation(len(frame)):
        stacks = home_stacks if world.addr_home[a] else shop_stacks
        stacks[world.addr_village[a]].append(int(a))
    rented = [r for fam in families if (r := _create_family(world, ctx, fam, home_stacks))]
    for fam in tenants:
        addr = home_stacks[fam.village].pop()
        arrival = max(fam.arrival, int(world.addr_from[addr]))
        create_tenants(world, ctx, fam, addr, arrival)
        rented.append((addr, arrival))
    ctx.floating_groups = len(tenants)
    owners = Residents(world, start, LANDLORD_AGES, residence_villages(world), nv)
    for addr, day in rented:  # a landlord as landlord_for picks one
        village, tenants = int(world.addr_village[addr]), int(world.addr_actual[addr])
        world.start_rental(addr, owners.pick(rng, village, household=tenants), day)
    _initial_statuses(world, ctx, families)
    taken: set[str] = set()
    _create_units(world, ctx, units, shop_stacks, taken)
    return taken


def set_addresses(world: World, frame, grids, villages: tuple[Village, ...]) -> None:
    """Attach the address table and the per-address arrays the simulation consults."""
    index = {v.code: i for i, v in enumerate(villages)}
    rural = {v.code: v.rural for v in villages}
    world.addresses, world.grids = frame, grids
    world.addr_village = frame["village_code"].map(index).to_numpy(np.int32)
    world.addr_rural = frame["village_code"].map(rural).to_numpy(bool)
    world.addr_from = np.array([d.toordinal() for d in frame["valid_from"]], dtype=np.int32)
    world.addr_home = (frame["use"] == "住宅").to_numpy()
    n = len(frame)
    world.addr_actual = np.full(n, NONE, np.int32)
    world.addr_registered = np.full(n, NONE, np.int32)
    world.addr_rental = np.full(n, NONE, np.int32)
