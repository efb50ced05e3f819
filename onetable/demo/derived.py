"""Tags that follow from who lives with whom: 独居, 空巢 (elderly) and 留守儿童.

They are recomputed from the state after every simulated day, so the stored intervals agree
with the residence and registration timelines by construction; the tests recompute them from
the written timelines by another route (truth.py readers) and compare. Definitions:

- 独居: aged 60+, living in the county, the only member of their actual household (实有户).
- 空巢: aged 60+, living in the county with their spouse and nobody else. (独居 and 空巢 are
  disjoint here; some local statistics count 独居 inside 空巢.)
- 留守儿童: under 16, registered (户籍 正常) in a 村 of the county and living in a 村 of the
  county, at least one parent alive, and no living parent living in the county (国务院 2016:
  both parents work away; the variant "one away, the other unable to care" is not modelled).

Intervals that already hold on the first simulated day start on that day: the truth does not
know since when an elderly person has lived alone before the period.
"""

from __future__ import annotations

import numpy as np

from onetable.demo.world import NONE, World, ages

DERIVED_TAGS = ("独居", "空巢", "留守儿童")


def derive(world: World, day: int) -> dict[str, np.ndarray]:
    """Per tag, a boolean per person: does it hold on `day`, after that day's events."""
    n = world.n
    hh = world.res_hh[:n]
    inside = hh != NONE
    age = ages(world.ymd[:n], day)
    size = np.bincount(hh[inside], minlength=len(world.hh_kind))
    own_size = np.where(inside, size[np.where(inside, hh, 0)], 0)
    spouse = world.spouse[:n]
    with_spouse = (spouse != NONE) & inside
    with_spouse[with_spouse] = hh[spouse[with_spouse]] == hh[with_spouse]
    elderly = inside & (age >= 60)

    hh_addr = world.household_addresses()
    lives_rural = np.zeros(n, bool)
    lives_rural[inside] = world.addr_rural[hh_addr[hh[inside]]]
    reg = world.reg_hh[:n]
    registered_rural = np.zeros(n, bool)
    registered_rural[reg != NONE] = world.addr_rural[hh_addr[reg[reg != NONE]]]
    alive = (world.death[:n] == 0) | (world.death[:n] > day)
    parent_alive = np.zeros(n, bool)
    parent_here = np.zeros(n, bool)
    for parents in (world.mother[:n], world.father[:n]):
        known = parents != NONE
        parent_alive[known] |= alive[parents[known]]
        parent_here[known] |= inside[parents[known]]
    return {
        "独居": elderly & (own_size == 1),
        "空巢": elderly & (own_size == 2) & with_spouse,
        "留守儿童": inside
        & (age < 16)
        & lives_rural
        & registered_rural
        & parent_alive
        & ~parent_here,
    }


def update_derived(world: World, day: int, before: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Open and close the derived tags' intervals where they changed since the day before
    (`before`, from the previous call; empty on the first day). Returns today's values."""
    now = derive(world, day)
    for tag, today in now.items():
        yesterday = np.zeros(len(today), bool)
        if tag in before:
            yesterday[: len(before[tag])] = before[tag]
        for p in np.flatnonzero(today & ~yesterday):
            world.start_status(int(p), tag, day)
        for p in np.flatnonzero(yesterday & ~today):
            world.end_status(int(p), tag, day)
    return now
