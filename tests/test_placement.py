"""Who lives where: the link stage's placement precedence and activity rules (linkage/link.py),
as pure functions of linked records and the deployment's settings."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from onetable.linkage.link import activity, place
from onetable.schemas.deployment import Placement, Settings
from onetable.warehouse.periods import Period

V1, V2, V3 = "320324001001", "320324001002", "320324102201"
STEPS = [Placement(source="grid"), Placement(source="registry")]


def _records(*rows: tuple) -> pd.DataFrame:
    """(person, source, key, window end, ended, resident, grid's code, registry's code, flags)"""
    frame = pd.DataFrame(rows, columns=["person_id", "_source", "_record_key", "_window_end",
                                        "_ended", "_resident", "_place_0", "_place_1", "_flags"])  # fmt: skip
    frame["_window_end"] = pd.to_datetime(frame["_window_end"])
    return frame


def test_the_first_step_places_and_no_vote_is_taken():
    records = _records(
        # P1: two registry records say V2, one grid record says V1: the grid's step comes first
        ("P1", "registry", "r1", "2026-02-01", False, True, None, V2, []),
        ("P1", "registry", "r2", "2026-02-01", False, True, None, V2, []),
        ("P1", "grid", "g1", "2026-01-01", False, True, V1, None, []),
        # P2: no grid record: the registry's, the later of two
        ("P2", "registry", "r3", "2026-01-01", False, True, None, V1, []),
        ("P2", "registry", "r4", "2026-02-01", False, True, None, V3, []),
        # P3: the grid's code is one the registry does not hold: falls to the next step
        ("P3", "grid", "g2", "2026-02-01", False, True, "320324999999", None,
         ["village_code:unknown_code"]),
        ("P3", "registry", "r5", "2026-01-01", False, True, None, V2, []),
        # P4: only a landlord's record with a code: not where they live
        ("P4", "grid", "g3#landlord", "2026-02-01", False, False, V1, None, []),
    )  # fmt: skip
    placed = place(records, STEPS)
    assert placed.to_dict() == {"P1": V1, "P2": V3, "P3": V2}


def test_activity_follows_residence_sources_end_and_the_last_time_seen():
    records = _records(
        ("P1", "registry", "r1", "2026-03-01", False, True, None, V1, []),  # registry only
        ("P2", "grid", "g1", "2026-03-01", False, True, V1, None, []),  # seen this month
        ("P3", "grid", "g2", "2025-12-01", False, True, V1, None, []),  # last seen in November
        ("P4", "grid", "g3", "2026-03-01", True, True, V1, None, []),  # ended
        ("P5", "grid", "g4#landlord", "2026-03-01", False, False, V1, None, []),  # a landlord
    )  # fmt: skip
    seen = records["_window_end"]
    settings = Settings(residence_sources=["grid"], gone_after_periods=3)
    got = activity(records, settings, Period(2026, 2), seen)
    assert got["active"].to_dict() == {
        "P1": False, "P2": True, "P3": False, "P4": False, "P5": False,
    }  # fmt: skip
    assert got.loc["P1", "reason"] == "no record in a residence source"
    assert got.loc["P3", "reason"] == "seen in no source for 3 periods (last 2025-11-30)"
    assert got.loc["P4", "reason"].startswith("every record ended")
    # seen in December (window end 2026-01-01) is one of the last three periods of February
    assert activity(records, settings, Period(2026, 2), seen.where(
        records["person_id"] != "P3", datetime(2026, 1, 1))).loc["P3", "active"]  # fmt: skip
    # without residence sources or a horizon, every live resident record counts
    default = activity(records, Settings(), Period(2026, 2), seen)
    assert default["active"].to_dict() == {
        "P1": True, "P2": True, "P3": True, "P4": False, "P5": False,
    }  # fmt: skip
