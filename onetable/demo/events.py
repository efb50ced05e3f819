"""The months: births, deaths, moves within and out of the county, tenants coming and going,
户籍 registrations and deregistrations, status changes and units, day by day.

Each day first carries out what was scheduled for it (a birth registered 10-60 days after the
birth, a death deregistered days to weeks after the death, a unit's legal representative
replaced after a death), then draws the day's events in a fixed order: deaths first, so that
nobody who died that day does anything else. A person has at most one drawn event a day. Every
event is recorded in `World.events` with its day. Rates are per year, approximate and recalled
unless a source is named; they are small, so three months change a few percent of the county.
"""

from __future__ import annotations

import heapq

import numpy as np

from onetable.demo.derived import DERIVED_TAGS, update_derived
from onetable.demo.population import (
    DISABILITY_CATEGORY,
    DISABILITY_GRADE,
    DISABLED_ELDER_DEGREE,
    LANDLORD_AGES,
    MALE_AT_BIRTH,
    MENTAL_DIAGNOSIS,
    TWIN_SHARE,
    Context,
    Residents,
    add_person,
    choice,
    create_tenants,
    create_unit,
    landlord_for,
    pick_resident,
    plan_unit,
    residence_villages,
    surname_of,
    tenant_group,
)
from onetable.demo.world import NONE, OK, World, ages

DAYS_PER_YEAR = 365.2425

# Mortality: Gompertz q(age) = a·e^(b·age) a year, fitted to q(60) ≈ 0.7%, q(80) ≈ 5.5%,
# q(90) ≈ 15% (the shape of China's life tables); a floor for the young; infants about 4‰
# (Jiangsu's infant mortality is below 5‰). The crude death rate comes out at 7-8‰.
GOMPERTZ = (1.45e-5, 0.103)
MORTALITY_FLOOR = 0.0004
INFANT_MORTALITY = 0.004
# Births per married resident woman a year by age band (20-44; mothers are never under 20).
# With the demo's age structure the crude birth rate is about 5-6‰ (Jiangsu 2023: ~5‰).
FERTILITY = {20: 0.06, 25: 0.10, 30: 0.07, 35: 0.03, 40: 0.008}
BIRTH_SPACING_DAYS = 300  # no birth within this many days of the mother's previous one
REGISTRATION_LAG = (10, 61)  # days from birth to 出生登记
DEREGISTRATION_LAG = 10.0  # days from death to 死亡注销: 1 + exponential of this mean, <= 60
REP_CHANGE_LAG = (15, 91)  # days from a legal representative's death to the change
MOVE_HOUSEHOLD = 0.015  # actual households moving within the county
MOVE_REGISTRATION = 0.25  # of those, the share that also move their 户口 (new 户号)
MOVE_RENTS = 0.3  # of those, the share that rent the new home
LEAVE = {True: 0.05, False: 0.025}  # residents 18-49 leaving to work away (rural/urban)
COUPLE_LEAVES = 0.5  # a spouse living in the same household goes along
RETURN = 0.12  # of those away, coming back
MIGRATE_OUT = {"away": 0.04, "resident": 0.006}  # 户口迁出 of persons 16-40
DEREGISTER = 0.0005  # other 注销: 应征入伍 (men 18-24), 出国（境）定居
TENANT_TURNOVER = 0.35  # tenant groups leaving, and as many arriving
DIBAO_TURNOVER = 0.12  # 低保 cases starting, and as many ending
TEKUN_NEW = 0.08  # new 特困 cases (elderly living alone), relative to the stock
DISABILITY_NEW = 0.0015  # new 残疾人证 among residents (weighted to the old)
DISABILITY_REGRADE = 0.02  # re-assessed to another grade
FRAIL_NEW = 0.01  # 失能 onset among residents 60+
MENTAL_NEW = 0.0002  # new 严重精神障碍 registrations among residents 15+
UNIT_OPEN = 0.12  # new units, relative to open ones
UNIT_CLOSE = 0.08  # market units closing (注销)
ASSISTANCE = ("低保", "特困")  # end with the local 户籍


def _daily(rate: float) -> float:
    return rate / DAYS_PER_YEAR


def _count(ctx: Context, stock: float, rate: float) -> int:
    return int(ctx.rng.poisson(stock * _daily(rate)))


def mortality(age: np.ndarray) -> np.ndarray:
    a, b = GOMPERTZ
    q = np.maximum(a * np.exp(b * age), MORTALITY_FLOOR)
    return np.where(age == 0, INFANT_MORTALITY, np.minimum(q, 0.6))


def _free(world: World, day: int, *people: int) -> bool:
    return all(world.last_event[p] != day for p in people)


# ---- 户籍 ---------------------------------------------------------------------------------


def _new_head(world: World, h: int, old_head: int, day: int) -> None:
    """After the 户主 left: the spouse, else the oldest adult, else the oldest member; every
    member's relation is restated against the new head."""
    members = list(world.hh_members[h])
    living = [p for p in members if world.alive(p, day)]
    if not living:
        return  # the last members are dead and await 死亡注销
    spouse = int(world.spouse[old_head])
    adults = [p for p in living if world.age(p, day) >= 18] or living
    head = spouse if spouse in living else min(adults, key=lambda p: (world.birth[p], p))
    for p in members:
        reg = world.registration[p]
        relation = world.relation(head, p)
        if relation != reg.relation:
            world.set_registration(p, day, h, OK, relation)
    world.event(day, "head_change", head, household=h)


def _end_registration(world: World, p: int, day: int, status: str, area: str | None) -> None:
    """迁出, 注销 or 死亡: the 户籍 row keeps the household it was left from; assistance ends;
    a new 户主 is named if the head left."""
    reg = world.registration[p]
    world.set_registration(p, day, reg.household, status, reg.relation, area, reg.outside_address)
    for tag in ASSISTANCE:
        if world.has_status(p, tag):
            world.end_status(p, tag, day)
    if reg.relation == "户主" and reg.household != NONE:
        _new_head(world, reg.household, p, day)


def _birth_registration(
    world: World,
    ctx: Context,
    day: int,
    person: int,
    household: int,
    area: str | None = None,
    outside: str | None = None,
) -> None:
    """出生登记 into the household chosen at birth (or a parent's, if that 户 has dissolved
    since), or in the mother's home county for a tenant's child."""
    p = person
    if not world.alive(p, day):
        return
    if household != NONE and world.hh_to[household] is not None:  # the 户 was dissolved
        household = next(
            (
                int(world.reg_hh[q])
                for q in (world.father[p], world.mother[p])
                if q != NONE and world.reg_hh[q] != NONE
            ),
            NONE,
        )
        if household == NONE:
            return
    if household != NONE:
        head = world.head_of(household)
        relation = world.relation(head, p) if head != NONE else "其他"
        world.set_registration(p, day, household, OK, relation)
    else:
        world.set_registration(p, day, NONE, OK, None, area, outside)
        if world.in_county(p):
            world.start_status(p, "流动人口", day, arrived_on=int(world.birth[p]))
    world.event(day, "birth_registration", p, household=household)


def _death_deregistration(world: World, day: int, person: int) -> None:
    p = person
    reg = world.registration[p]
    if reg is None or reg.status != OK:
        return
    _end_registration(world, p, day, "死亡", reg.area_code)
    world.event(day, "death_deregistration", p, household=reg.household)


# ---- deaths and births ---------------------------------------------------------------------


def _deaths(world: World, ctx: Context, day: int) -> None:
    n = world.n
    alive = world.death[:n] == 0
    in_view = alive & ((world.res_hh[:n] != NONE) | world.away[:n] | (world.reg_hh[:n] != NONE))
    q = mortality(ages(world.ymd[:n], day))
    dying = np.flatnonzero(in_view & (ctx.rng.random(n) < _daily(q)))
    if len(dying):  # deaths change no unit: whom each open unit has as its representative
        reps = np.array(
            [r["legal_rep"] if r["status"] == "存续" else NONE for r in world.unit_open]
        )
        for p in dying:
            _die(world, ctx, int(p), day, np.flatnonzero(reps == p))


def _die(world: World, ctx: Context, p: int, day: int, units: np.ndarray) -> None:
    """Death ends residence and statuses on the day; 户籍 ends at 死亡注销, a few days to weeks
    later; a unit whose legal representative died changes hands later still."""
    rng = ctx.rng
    world.event(day, "death", p, household=int(world.res_hh[p]), address=world.address_of(p))
    world.death[p] = day
    world.set_residence(p, day)
    for tag in world.tags_of(p):
        if tag not in DERIVED_TAGS:
            world.end_status(p, tag, day)
    if world.registration[p] is not None:
        lag = 1 + min(59, int(rng.exponential(DEREGISTRATION_LAG)))
        world.schedule(day + lag, "death_deregistration", person=p)
    for u in units:  # the open units `p` represents, in order
        world.schedule(day + int(rng.integers(*REP_CHANGE_LAG)), "legal_rep_change", unit=int(u))


def _births(world: World, ctx: Context, day: int, last_birth: dict[int, int]) -> None:
    n = world.n
    rng = ctx.rng
    age = ages(world.ymd[:n], day)
    spouse = world.spouse[:n]
    women = (world.sex[:n] == 0) & (world.res_hh[:n] != NONE) & (age >= 20) & (age < 45)
    women &= spouse != NONE
    women[women] &= world.death[spouse[women]] == 0
    rate = np.zeros(n)
    for lo, r in FERTILITY.items():
        rate[(age >= lo) & (age < lo + 5)] = r
    for mother in np.flatnonzero(women & (rng.random(n) < _daily(rate))):
        mother = int(mother)
        if day - last_birth.get(mother, -BIRTH_SPACING_DAYS) < BIRTH_SPACING_DAYS:
            continue
        if not _free(world, day, mother):
            continue
        last_birth[mother] = day
        _deliver(world, ctx, mother, day, twins=rng.random() < TWIN_SHARE)


def _deliver(world: World, ctx: Context, mother: int, day: int, twins: bool) -> None:
    """A child (or twins) in the mother's actual household; registered with the father's 户 if
    he is registered here, else the mother's, else in the mother's home county."""
    rng = ctx.rng
    father = int(world.spouse[mother])
    hh = int(world.res_hh[mother])
    dad, mum = world.static[father], world.static[mother]
    ethnicity = dad["ethnicity"]
    if ethnicity == "汉族" and mum["ethnicity"] != "汉族" and rng.random() < 0.5:
        ethnicity = mum["ethnicity"]
    surname = surname_of(dad["name"] if rng.random() < 0.95 else mum["name"])
    target = next((int(world.reg_hh[q]) for q in (father, mother) if world.reg_hh[q] != NONE), NONE)
    area = ctx.county.code if target != NONE else world.registration[mother].area_code
    kids: list[int] = []
    for _ in range(2 if twins else 1):
        avoid = tuple(world.static[q]["name"] for q in world.hh_members[hh])
        child = add_person(
            world,
            ctx,
            int(rng.random() < MALE_AT_BIRTH),
            day,
            surname,
            ethnicity,
            mother=mother,
            father=father,
            id_area=area,
            avoid=avoid,
            twin=world.static[kids[0]]["name"] if kids else None,
        )
        world.set_residence(child, day, hh)
        world.event(
            day,
            "birth",
            child,
            household=hh,
            address=world.hh_addr[hh],
            other_person=mother,
            detail="双胞胎" if twins else None,
        )
        kids.append(child)
    for child in kids:
        lag = day + int(rng.integers(*REGISTRATION_LAG))
        if target != NONE:
            world.schedule(lag, "birth_registration", person=child, household=target)
        else:
            reg = world.registration[mother]
            world.schedule(
                lag,
                "birth_registration",
                person=child,
                household=NONE,
                area=reg.area_code,
                outside=reg.outside_address,
            )


# ---- moves ----------------------------------------------------------------------------------


def _occupancy(world: World) -> tuple[np.ndarray, np.ndarray]:
    """Per household: how many live in it now, and how many of them are registered here
    (a tenant group has none; a household of registered residents has all)."""
    n, count = world.n, len(world.hh_kind)
    hh = world.res_hh[:n]
    inside = hh != NONE
    local = inside & (world.reg_hh[:n] != NONE)
    return np.bincount(hh[inside], minlength=count), np.bincount(hh[local], minlength=count)


def _vacant_home(world: World, ctx: Context, not_in: int, urban_share: float) -> int:
    """A home nobody lives in, rents or is registered at, outside village `not_in`."""
    free = world.addr_home & (world.addr_actual == NONE) & (world.addr_registered == NONE)
    free &= (world.addr_rental == NONE) & (world.addr_village != not_in)
    urban = free & ~world.addr_rural
    pool = urban if (ctx.rng.random() < urban_share and urban.any()) else free
    candidates = np.flatnonzero(pool)
    return int(ctx.rng.choice(candidates)) if len(candidates) else NONE


def _household_moves(world: World, ctx: Context, day: int) -> None:
    """A whole actual household of registered residents moves to a vacant home in another
    village; a quarter also move their 户口 there (a new 户号), the rest are 人户分离."""
    rng = ctx.rng
    size, local = _occupancy(world)
    movable = np.flatnonzero((size > 0) & (local == size))
    for _ in range(_count(ctx, len(movable), MOVE_HOUSEHOLD)):
        h = int(movable[int(rng.integers(0, len(movable)))])
        members = list(world.hh_members[h])
        if not members or not _free(world, day, *members):
            continue
        old = world.hh_addr[h]
        dest = _vacant_home(world, ctx, int(world.addr_village[old]), 0.7)
        if dest == NONE:
            return
        a = world.new_household("实有户", dest, day)
        for p in members:
            world.set_residence(p, day, a)
            world.event(day, "move_in_county", p, household=a, address=dest, from_address=old)
        if rng.random() < MOVE_RENTS:
            landlord = landlord_for(world, ctx, dest, day, residence_villages(world))
            world.start_rental(dest, landlord, day)
            world.event(day, "rental_start", address=dest, other_person=landlord)
        registered = sorted({int(world.reg_hh[p]) for p in members})
        if len(registered) == 1 and rng.random() < MOVE_REGISTRATION:
            r = registered[0]
            if sorted(world.hh_members[r]) == sorted(members) and world.hh_addr[r] == old:
                new = world.new_household("户籍户", dest, day, ctx.issuer.hukou_no())
                for p in members:
                    world.set_registration(p, day, new, OK, world.registration[p].relation)
                    world.event(
                        day,
                        "registration_transfer",
                        p,
                        household=new,
                        address=dest,
                        from_address=old,
                    )


def _leave_and_return(world: World, ctx: Context, day: int) -> None:
    """Residents 18-49 leave to work away (their 户口 stays), half of them with their spouse;
    people away come back to their spouse or parents if those live here, else to their 户籍
    home."""
    rng, n = ctx.rng, world.n
    age = ages(world.ymd[:n], day)
    here = (world.res_hh[:n] != NONE) & (world.reg_hh[:n] != NONE) & (age >= 18) & (age < 50)
    hh_addr = world.household_addresses()
    rural = np.zeros(n, bool)
    rural[here] = world.addr_rural[hh_addr[world.res_hh[:n][here]]]
    rate = np.where(rural, _daily(LEAVE[True]), _daily(LEAVE[False]))
    for p in np.flatnonzero(here & (rng.random(n) < rate)):
        p = int(p)
        h = int(world.res_hh[p])
        spouse = int(world.spouse[p])
        going = [p]
        if spouse != NONE and world.res_hh[spouse] == h and rng.random() < COUPLE_LEAVES:
            going.append(spouse)
        staying = [q for q in world.hh_members[h] if q not in going]
        if not _free(world, day, *going) or (
            staying and max(world.age(q, day) for q in staying) < 18
        ):
            continue  # nobody leaves children alone at home
        dest = ctx.destination()
        for q in going:
            detail = dest or "省外"
            world.event(
                day, "leave_county", q, household=h, address=world.hh_addr[h], detail=detail
            )
            world.set_residence(q, day, away=True, away_code=dest)

    away = world.away[:n] & (world.reg_hh[:n] != NONE)
    for p in np.flatnonzero(away & (rng.random(n) < _daily(RETURN))):
        p = int(p)
        if not _free(world, day, p):
            continue
        kin = [q for q in (world.spouse[p], world.mother[p], world.father[p]) if q != NONE]
        h = next((int(world.res_hh[q]) for q in kin if world.res_hh[q] != NONE), NONE)
        if h == NONE:
            home = world.hh_addr[int(world.reg_hh[p])]
            h = int(world.addr_actual[home])
            if h == NONE:
                h = world.new_household("实有户", home, day)
        world.set_residence(p, day, h)
        world.event(day, "return_to_county", p, household=h, address=world.hh_addr[h])


def _registrations_out(world: World, ctx: Context, day: int) -> None:
    """户口迁出 (mostly people already living away) and other 注销; both take the person out of
    view: the truth follows nobody who is neither registered nor living in the county."""
    rng, n = ctx.rng, world.n
    age = ages(world.ymd[:n], day)
    registered = world.reg_hh[:n] != NONE
    rate = np.where(world.away[:n], MIGRATE_OUT["away"], MIGRATE_OUT["resident"])
    mover = registered & (age >= 16) & (age <= 40) & (rng.random(n) < _daily(rate))
    for p in np.flatnonzero(mover):
        p = int(p)
        if not _free(world, day, p):
            continue
        dest = world.away_code[p] or ctx.destination()
        h = int(world.reg_hh[p])
        world.event(day, "migrate_out", p, household=h, detail=dest or "省外")
        _end_registration(world, p, day, "迁出", dest)
        world.set_residence(p, day)
    adult = registered & (age >= 18) & (age <= 40)
    for p in np.flatnonzero(adult & (rng.random(n) < _daily(DEREGISTER))):
        p = int(p)
        if not _free(world, day, p):
            continue
        army = world.sex[p] == 1 and world.age(p, day) <= 24
        reason = "应征入伍" if army else "出国（境）定居"
        world.event(day, "deregistration", p, household=int(world.reg_hh[p]), detail=reason)
        _end_registration(world, p, day, "注销", world.registration[p].area_code)
        world.set_residence(p, day)


def _tenants(world: World, ctx: Context, day: int) -> None:
    """Tenant groups leave (their rental ends) and new ones arrive and rent a vacant home."""
    rng = ctx.rng
    size, local = _occupancy(world)
    groups = np.flatnonzero((size > 0) & (local == 0))
    for _ in range(_count(ctx, len(groups), TENANT_TURNOVER)):
        h = int(groups[int(rng.integers(0, len(groups)))])
        members = list(world.hh_members[h])
        if not members or not _free(world, day, *members):
            continue
        for p in members:
            world.event(day, "tenant_departure", p, household=h, address=world.hh_addr[h])
            world.set_residence(p, day)
            if world.has_status(p, "流动人口"):
                world.end_status(p, "流动人口", day)
    owners = None  # tenants neither register nor move anyone who is: one pool serves the day
    for _ in range(_count(ctx, ctx.floating_groups, TENANT_TURNOVER)):
        addr = _vacant_home(world, ctx, NONE, 0.75)
        if addr == NONE:
            return
        vi = int(world.addr_village[addr])
        # everyone in the group was born, and registered at home, before the period
        fam = tenant_group(rng, world.start, vi, bool(world.addr_rural[addr]), uyghur=False)
        fam.origin = ctx.origin()
        create_tenants(world, ctx, fam, addr, day)
        if owners is None:
            owners = Residents(
                world, day, LANDLORD_AGES, residence_villages(world), len(ctx.villages)
            )
        landlord = owners.pick(rng, vi, household=int(world.addr_actual[addr]))  # as landlord_for
        world.start_rental(addr, landlord, day)
        for p in fam.persons:
            world.event(day, "tenant_arrival", p, household=int(world.res_hh[p]), address=addr)
        world.event(day, "rental_start", address=addr, other_person=landlord)


# ---- statuses -------------------------------------------------------------------------------


def _weighted_resident(
    world: World, ctx: Context, day: int, min_age: int, tag: str, old_weight: float
) -> int:
    """A resident registered here, aged min_age+, without `tag`; the 60+ weigh `old_weight`."""
    n = world.n
    age = ages(world.ymd[:n], day)
    ok = (world.res_hh[:n] != NONE) & (world.reg_hh[:n] != NONE) & (age >= min_age)
    ok &= world.last_event[:n] != day
    w = np.where(ok, np.where(age >= 60, old_weight, 1.0), 0.0)
    w[world.holding(tag)] = 0.0
    if w.sum() == 0:
        return NONE
    return int(ctx.rng.choice(n, p=w / w.sum()))


def _status_changes(world: World, ctx: Context, day: int) -> None:
    """低保 cases start and end, new 特困, 残疾 certificates and re-grades, 失能, 严重精神障碍."""
    rng, n = ctx.rng, world.n
    residents = int((world.res_hh[:n] != NONE).sum())

    for _ in range(_count(ctx, max(1, len(ctx.dibao_cases)), DIBAO_TURNOVER)):
        p = pick_resident(world, ctx, day, (0, 120))
        h = int(world.reg_hh[p]) if p != NONE else NONE
        members = [q for q in world.hh_members[h] if world.alive(q, day)] if h != NONE else []
        if not members or any(world.has_status(q, "低保") for q in members):
            continue
        if not _free(world, day, *members):
            continue
        case = ctx.issuer.case_id("DB")
        ctx.dibao_cases[case] = members
        for q in members:
            world.start_status(q, "低保", day, case_id=case)
            world.event(day, "status_start", q, household=h, detail="低保")
    for _ in range(_count(ctx, len(ctx.dibao_cases), DIBAO_TURNOVER)):
        cases = sorted(ctx.dibao_cases)
        case = cases[int(rng.integers(0, len(cases)))]
        members = [q for q in ctx.dibao_cases.pop(case) if world.has_status(q, "低保")]
        for q in members:
            world.end_status(q, "低保", day)
            world.event(day, "status_end", q, detail="低保")

    new_tekun = _count(ctx, max(1, len(world.holding("特困"))), TEKUN_NEW)
    if new_tekun:  # among residents 70+ living alone, without assistance yet
        size, _ = _occupancy(world)
        hh = world.res_hh[:n]
        alone = (hh != NONE) & (world.reg_hh[:n] != NONE) & (ages(world.ymd[:n], day) >= 70)
        alone[alone] &= size[hh[alone]] == 1
        alone[world.holding("特困") + world.holding("低保")] = False
        alone &= world.last_event[:n] != day
        candidates = np.flatnonzero(alone)
        for p in rng.choice(candidates, size=min(new_tekun, len(candidates)), replace=False):
            p = int(p)
            world.start_status(p, "特困", day, case_id=ctx.issuer.case_id("TK"), detail="分散供养")
            world.event(day, "status_start", p, detail="特困")

    categories = {k: w for k, (_, w) in DISABILITY_CATEGORY.items()}
    for _ in range(_count(ctx, residents, DISABILITY_NEW)):
        p = _weighted_resident(world, ctx, day, 0, "残疾", 4.0)
        if p == NONE:
            continue
        cat = choice(rng, categories)
        world.start_status(
            p,
            "残疾",
            day,
            disability_category=cat,
            disability_category_name=DISABILITY_CATEGORY[cat][0],
            disability_grade=int(choice(rng, DISABILITY_GRADE)),
        )
        world.event(day, "status_start", p, detail="残疾")
    disabled = world.holding("残疾")
    for _ in range(_count(ctx, len(disabled), DISABILITY_REGRADE)):
        p = disabled[int(rng.integers(0, len(disabled)))]
        row = world.status_open[p]["残疾"]
        grade = int(choice(rng, DISABILITY_GRADE))
        if grade == row["disability_grade"] or row["valid_from"] == day or not _free(world, day, p):
            continue
        world.end_status(p, "残疾", day)
        attrs = {k: v for k, v in row.items() if k.startswith("disability_")}
        world.start_status(p, "残疾", day, **dict(attrs, disability_grade=grade))
        world.event(day, "status_change", p, detail="残疾")

    elderly = int(((world.res_hh[:n] != NONE) & (ages(world.ymd[:n], day) >= 60)).sum())
    for _ in range(_count(ctx, elderly, FRAIL_NEW)):
        p = _weighted_resident(world, ctx, day, 60, "失能", 1.0)
        if p == NONE:
            continue
        world.start_status(p, "失能", day, detail=choice(rng, DISABLED_ELDER_DEGREE))
        world.event(day, "status_start", p, detail="失能")
    for _ in range(_count(ctx, residents, MENTAL_NEW)):
        p = _weighted_resident(world, ctx, day, 15, "严重精神障碍", 1.0)
        if p == NONE:
            continue
        world.start_status(p, "严重精神障碍", day, detail=choice(rng, MENTAL_DIAGNOSIS))
        world.event(day, "status_start", p, detail="严重精神障碍")


# ---- units ----------------------------------------------------------------------------------


def _close_unit(world: World, u: int, day: int, reason: str) -> None:
    row = world.unit_open[u]
    world.unit_rows.append(dict(row, unit=u, valid_to=day))
    world.unit_open[u] = dict(row, status="注销", valid_from=day)
    world.event(day, "unit_close", unit=u, address=row["address"], detail=reason)


def _legal_rep_change(world: World, ctx: Context, day: int, unit: int) -> None:
    """After a legal representative's death: a 个体工商户 closes (its operator is gone); another
    unit takes the spouse if alive and living here, else another resident of the village."""
    row = world.unit_open[unit]
    if row["status"] != "存续" or world.alive(row["legal_rep"], day):
        return
    if world.units[unit]["kind"] == "个体工商户":
        _close_unit(world, unit, day, "经营者死亡")
        return
    spouse = int(world.spouse[row["legal_rep"]])
    if spouse != NONE and world.in_county(spouse) and world.age(spouse, day) >= 22:
        rep = spouse
    else:
        village = int(world.addr_village[row["address"]])
        rep = pick_resident(world, ctx, day, (25, 66), village)
    if rep == NONE:
        return
    world.unit_rows.append(dict(row, unit=unit, valid_to=day))
    world.unit_open[unit] = dict(row, legal_rep=rep, valid_from=day)
    world.event(day, "legal_rep_change", unit=unit, other_person=rep)


def _by_village(addresses: np.ndarray, world: World, nv: int) -> list[np.ndarray]:
    """Addresses split by village, each part in the order given."""
    village = world.addr_village[addresses]
    order = np.argsort(village, kind="stable")
    return np.split(addresses[order], np.searchsorted(village[order], np.arange(1, nv)))


def _units(world: World, ctx: Context, day: int, taken: set[str]) -> None:
    rng = ctx.rng
    open_units = [u for u, r in enumerate(world.unit_open) if r["status"] == "存续"]
    reps = used = shops_of = None  # opening a unit moves nobody: one pool serves the day
    for _ in range(_count(ctx, len(open_units), UNIT_OPEN)):
        if reps is None:
            where = residence_villages(world)
            people = np.bincount(where[where != NONE], minlength=len(ctx.villages))
            reps = Residents(world, day, (25, 66), where, len(ctx.villages))
            used = {r["address"] for r in world.unit_open if r["status"] == "存续"}
            shops_of = _by_village(np.flatnonzero(~world.addr_home), world, len(ctx.villages))
        vi = int(rng.choice(len(people), p=people / people.sum()))
        rep = reps.pick(rng, vi)
        if rep == NONE:
            continue
        shops = [int(a) for a in shops_of[vi] if int(a) not in used]
        addr = int(shops[int(rng.integers(0, len(shops)))]) if shops else world.address_of(rep)
        u = create_unit(world, ctx, plan_unit(ctx, vi), day, rep, addr, taken)
        used.add(addr)
        world.event(day, "unit_open", unit=u, address=addr, other_person=rep)
    market = [u for u in open_units if world.units[u]["kind"] != "事业单位"]
    for _ in range(_count(ctx, len(market), UNIT_CLOSE)):
        u = market[int(rng.integers(0, len(market)))]
        if world.unit_open[u]["status"] == "存续" and world.unit_open[u]["valid_from"] < day:
            _close_unit(world, u, day, "注销登记")


# ---- the loop -------------------------------------------------------------------------------


def simulate(world: World, ctx: Context, taken: set[str]) -> None:
    """Run every day of the period; derived tags are brought up to date after each day."""
    last_birth: dict[int, int] = {}
    for p in range(world.n):
        m = int(world.mother[p])
        if m != NONE:
            last_birth[m] = max(last_birth.get(m, 0), int(world.birth[p]))
    derived: dict[str, np.ndarray] = {}
    for day in range(world.start, world.end):
        while world.pending and world.pending[0][0] <= day:
            _, _, kind, payload = heapq.heappop(world.pending)
            if kind == "birth_registration":
                _birth_registration(world, ctx, day, **payload)
            elif kind == "death_deregistration":
                _death_deregistration(world, day, **payload)
            else:
                _legal_rep_change(world, ctx, day, **payload)
        _deaths(world, ctx, day)
        _births(world, ctx, day, last_birth)
        _household_moves(world, ctx, day)
        _leave_and_return(world, ctx, day)
        _registrations_out(world, ctx, day)
        _tenants(world, ctx, day)
        _status_changes(world, ctx, day)
        _units(world, ctx, day, taken)
        derived = update_derived(world, day, derived)
