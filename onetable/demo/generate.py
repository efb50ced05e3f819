"""Build the demo county for a size, seed, start and number of months."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

import numpy as np

from onetable.demo import DEFAULT_START
from onetable.demo.county import (
    COUNTY_CODE,
    County,
    Village,
    choose_villages,
    load_county,
    read_tree,
)
from onetable.demo.events import simulate
from onetable.demo.population import make_context, populate
from onetable.demo.world import World

MIN_PERSONS = 500  # below this a village has too few people for the shares to mean anything


@dataclass(frozen=True)
class Settings:
    persons: int = 20_000
    seed: int = 1
    months: int = 3
    start: date = DEFAULT_START
    county: str = COUNTY_CODE  # the county of the shipped division tree to simulate

    @property
    def end(self) -> date:
        """The first day after the period: the start plus `months` calendar months."""
        month = self.start.month - 1 + self.months
        year, month = self.start.year + month // 12, month % 12 + 1
        return date(year, month, min(self.start.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Demo:
    settings: Settings
    county: County
    villages: tuple[Village, ...]
    world: World


def generate(settings: Settings) -> Demo:
    """The county at the start and its history over the period, from one seeded generator."""
    if settings.persons < MIN_PERSONS:
        raise ValueError(f"--persons must be at least {MIN_PERSONS}")
    if not 1 <= settings.months <= 24:
        raise ValueError("--months must be between 1 and 24")
    rng = np.random.default_rng(settings.seed)
    tree = read_tree()
    county = load_county(tree, settings.county)
    villages = choose_villages(county, settings.persons)
    world = World(county.code, settings.start.toordinal(), settings.end.toordinal())
    ctx = make_context(county, villages, tree, rng)
    taken = populate(world, ctx, settings.persons)
    simulate(world, ctx, taken)
    return Demo(settings, county, villages, world)
