"""The walking pipeline's matching rules, on records as the standardize stage leaves them."""

import pandas as pd

from onetable.linkage.link import assign_ids
from onetable.schemas.rules import id_check_char


def _id(body: str) -> str:
    return body + id_check_char(body)


A, B = _id("32032419900101001"), _id("32032419900101003")


def _records(rows):
    frame = pd.DataFrame(
        rows, columns=["_source", "_record_key", "id_number", "name", "birth_date", "_flags"]
    )
    frame["_flags"] = frame["_flags"].map(lambda f: f or [])
    return frame


def _ids(records, registry=None, start=1):
    registry = (
        registry
        if registry is not None
        else pd.DataFrame(columns=["source", "record_key", "person_id"])
    )
    out, _ = assign_ids(records, registry, start)
    return dict(zip(out["_record_key"], out["person_id"], strict=True))


def test_two_valid_numbers_are_two_persons_even_with_one_name_and_birth_date():
    ids = _ids(_records([
        ("health", "h1", None, "王伟", "1990-01-01", None),
        ("registry", "r1", A, "王伟", "1990-01-01", None),
        ("registry", "r2", B, "王伟", "1990-01-01", None),  # a namesake born the same day
    ]))  # fmt: skip
    assert ids["r1"] != ids["r2"]
    assert ids["h1"] in (ids["r1"], ids["r2"])


def test_a_record_without_a_number_joins_by_sound_and_birth_date():
    ids = _ids(_records([
        ("grid", "g1", None, "王纬", "1990-01-01", None),  # a homophone typo, listed first
        ("registry", "r1", A, "王伟", "1990-01-01", None),
        ("rental", "t1", A.lower(), "王伟", None, None),  # birth date from the number
    ]))  # fmt: skip
    assert ids["g1"] == ids["r1"]


def test_a_bad_checksum_falls_back_to_name_and_birth_date():
    typo = A[:5] + str((int(A[5]) + 1) % 10) + A[6:]
    ids = _ids(_records([
        ("registry", "r1", A, "李娜", "1990-01-01", None),
        ("health", "h1", typo, "李娜", "1990-01-01", ["id_number:id_bad_checksum"]),
    ]))  # fmt: skip
    assert ids["h1"] == ids["r1"]


def test_known_records_keep_their_ids():
    registry = pd.DataFrame(
        {"source": ["registry"], "record_key": ["r1"], "person_id": ["P00000007"]}
    )
    ids = _ids(_records([("registry", "r1", B, "张三", "1990-01-01", None)]), registry, start=8)
    assert ids == {"r1": "P00000007"}
