"""The generator's shortcuts draw what the plain way draws (issue 16): a faster pick or weighted
choice must leave the random stream where the slower one did, or the same seed would give another
county."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from onetable.demo.generate import Settings, generate
from onetable.demo.population import (
    DISABILITY_GRADE,
    ELDER_BANDS,
    TEMPLATES,
    Residents,
    choice,
    pick_resident,
    residence_villages,
)
from onetable.demo.world import NONE, World


def test_choice_draws_as_generator_choice_does():
    ours, numpy = np.random.default_rng(7), np.random.default_rng(7)
    for i in range(3000):
        weights = (TEMPLATES[True], ELDER_BANDS, DISABILITY_GRADE)[i % 3]
        keys = list(weights)
        p = np.fromiter(weights.values(), float)
        assert choice(ours, weights) == keys[int(numpy.choice(len(keys), p=p / p.sum()))]
    assert ours.random() == numpy.random()


@pytest.fixture(scope="module")
def world() -> World:
    return generate(Settings(persons=2000, months=1)).world


def test_residents_pick_as_pick_resident(world: World):
    """Village by village, with people excluded and a household's members left out, and where
    a village has nobody who fits (the pick falls back to the county)."""
    where = residence_villages(world)
    villages = int(where.max()) + 1
    ours, plain = np.random.default_rng(3), np.random.default_rng(3)
    exclude = np.random.default_rng(4).random(world.n) < 0.3
    for ages_between in ((25, 66), (35, 75), (95, 120)):
        pool = Residents(world, world.start, ages_between, where, villages)
        for village in range(villages):
            household = int(world.res_hh[int(np.flatnonzero(where == village)[0])])
            for mask, leave_out in ((None, NONE), (exclude, NONE), (None, household)):
                tenants = world.res_hh[: world.n] == household if leave_out != NONE else None
                expected = pick_resident(
                    world, SimpleNamespace(rng=plain), world.start, ages_between, village,
                    exclude=mask if tenants is None else tenants, villages=where,
                )  # fmt: skip
                assert pool.pick(ours, village, exclude=mask, household=leave_out) == expected
    assert ours.random() == plain.random()
