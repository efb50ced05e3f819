"""Person linkage: the matcher's rules on small tables, the EM fit, the id corrections and the
stable ids (merges keep the older id, splits keep it with the larger part)."""

import numpy as np
import pandas as pd
import pytest

from onetable.linkage.ids import stable_ids
from onetable.linkage.match import cluster, id_corrections
from onetable.linkage.model import EM, fit_em, load_model
from onetable.linkage.records import link_records
from onetable.schemas.rules import id_check_char, is_valid_id_number


def _id(body: str) -> str:
    return body + id_check_char(body)


A, B = _id("32032419900101001"), _id("32032419900101003")
HOME = "睢城街道七井社区滨河路134号"
COLUMNS = ["record_id", "source", "name", "sex", "birth_date", "id_number", "phone", "address"]


def _typo(number: str, position: int) -> str:
    return number[:position] + str((int(number[position]) + 1) % 10) + number[position + 1 :]


def _persons(rows) -> dict[str, str]:
    """record_id -> person id, the records placed among a village's worth of other people so
    that the model has pairs to learn from."""
    rng = np.random.default_rng(0)
    surnames, given = "王李张刘陈杨赵黄周吴", "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚"
    others = []
    for k in range(400):
        born = f"19{rng.integers(40, 99)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
        number = _id(f"320324{born.replace('-', '')}{k:03d}")
        name = surnames[k % 10] + given[rng.integers(0, 20)] + given[rng.integers(0, 20)]
        address = f"睢城街道七井社区人民路{k}号"
        for source in ("registry", "health", "grid"):
            missing = source == "health" and k % 7 == 0
            others.append((
                f"{source}-o{k}", source, name, "男" if k % 2 else "女", born,
                "" if missing else number, f"139{k:08d}", address,
            ))  # fmt: skip
    frame = pd.DataFrame([*rows, *others], columns=COLUMNS)
    linked = link_records(frame)
    return dict(zip(linked["record_id"], linked["person_id"], strict=True))


def test_one_person_written_many_ways():
    ids = _persons([
        ("r1", "registry", "王伟", "男", "1990-01-01", A, "13912345678", HOME),
        ("h1", "health", "王 纬", "男", "1990年1月1日", "", "13912345678", HOME),  # homophone, no ID
        ("d1", "disability", "王伟", "男", "", A.lower() + "41", "", ""),  # 20-digit certificate
        ("g1", "grid", "王伟", "男", "1990-01-01", _typo(A, 9), "", HOME),  # a digit typo
        ("c1", "civil", "王伟", "男", "19900101", A[:6] + A[8:17], "", HOME),  # 15 digits
    ])  # fmt: skip
    assert ids["r1"] == ids["h1"] == ids["d1"] == ids["g1"] == ids["c1"]


def test_twins_stay_two():
    twin = _id("32032420150601002")
    ids = _persons([
        ("r1", "registry", "张浩然", "男", "2015-06-01", _id("32032420150601001"), "", HOME),
        ("r2", "registry", "张雨桐", "女", "2015-06-01", twin, "", HOME),
        ("h1", "health", "张浩然", "男", "2015-06-01", "", "", HOME),
        ("h2", "health", "张雨桐", "女", "2015-06-01", "", "", HOME),
    ])  # fmt: skip
    assert ids["r1"] == ids["h1"] != ids["r2"] == ids["h2"]


def test_common_names_in_one_village_stay_apart():
    ids = _persons([
        ("r1", "registry", "张伟", "男", "1980-03-02", _id("32032419800302011"), "", HOME),
        ("r2", "registry", "张伟", "男", "1975-07-12", _id("32032419750712013"), "", HOME),
        ("h1", "health", "张伟", "男", "1980-03-02", "", "", HOME),
        ("h2", "health", "张伟", "男", "1975-07-12", "", "", HOME),
        ("h3", "health", "张伟", "男", "1962-11-30", "", "", HOME),  # a third, known only here
    ])  # fmt: skip
    assert ids["r1"] == ids["h1"] and ids["r2"] == ids["h2"]
    assert len({ids["r1"], ids["r2"], ids["h3"]}) == 3


def test_two_verified_numbers_are_never_one_person():
    ids = _persons([
        ("r1", "registry", "王伟", "男", "1990-01-01", A, "", HOME),
        ("r2", "health", "王伟", "男", "1990-01-01", B, "", HOME),
    ])  # fmt: skip
    assert ids["r1"] != ids["r2"]


def test_ids_do_not_depend_on_record_order():
    rows = [
        ("r1", "registry", "王伟", "男", "1990-01-01", A, "", HOME),
        ("h1", "health", "王纬", "男", "1990-01-01", "", "", HOME),
        ("r2", "registry", "李娜", "女", "1990-01-01", B, "", HOME),
    ]
    forward, backward = _persons(rows), _persons(rows[::-1])
    assert forward == backward


@pytest.mark.parametrize("position", [0, 5, 9, 16])
def test_id_corrections_find_the_number_one_typo_away(position):
    typo = _typo(A, position)
    assert not is_valid_id_number(typo)
    rows, candidates = id_corrections(np.array([typo], dtype=object))
    assert A in set(candidates) and set(rows) == {0}
    assert all(c[17] == id_check_char(c[:17]) for c in candidates)


def test_id_corrections_undo_an_adjacent_swap_and_a_wrong_check_character():
    swapped = A[:10] + A[11] + A[10] + A[12:]
    wrong_check = A[:17] + ("0" if A[17] != "0" else "1")
    rows, candidates = id_corrections(np.array([swapped, wrong_check], dtype=object))
    assert A in set(candidates[rows == 0]) and A in set(candidates[rows == 1])


def test_em_recovers_m_and_the_share_of_matches():
    rng = np.random.default_rng(1)
    m, u = np.array([0.9, 0.1]), np.array([0.05, 0.95])
    match = rng.random(20000) < 0.3
    agree = np.where(match[:, None], rng.random((20000, 3)) < m[0], rng.random((20000, 3)) < u[0])
    patterns, counts = np.unique((~agree).astype(np.int64), axis=0, return_counts=True)
    start = {k: np.array([0.5, 0.5]) for k in "abc"}
    fitted = fit_em(patterns, counts.astype(float), {k: u for k in "abc"}, start, EM(), 1e-5)
    assert fitted.match_share == pytest.approx(0.3, abs=0.02)
    assert fitted.m["a"][0] == pytest.approx(0.9, abs=0.02)


def test_clustering_refuses_two_anchors_and_cannot_link_pairs():
    # records 0 and 1 hold different verified numbers and 2 matches both; 2 also matches 3, but
    # 2 cannot join 4, which 3 has joined
    nodes, anchored = np.arange(5), np.array([True, True, False, False, False])
    edges = pd.DataFrame({
        "i": [0, 1, 3, 2, 2], "j": [2, 2, 4, 3, 4],
        "weight": [20.0, 15.0, 30.0, 5.0, 0.0], "cannot": [False, False, False, False, True],
    })  # fmt: skip
    labels, refused = cluster(nodes, anchored, edges)
    assert labels[2] == labels[0] != labels[1]
    assert labels[3] == labels[4] != labels[2]
    assert refused == 2


def test_the_shipped_model_loads():
    model = load_model()
    assert model.anchor.when == "id_valid" and "name" in model.comparisons


def _stable(clusters: dict[str, int], registry: dict[str, str], start: int = 10):
    frame = pd.DataFrame({"key": list(clusters), "cluster": list(clusters.values())})
    reg = pd.DataFrame({"key": list(registry), "person_id": list(registry.values())})
    return stable_ids(frame, reg, start)


def test_a_rerun_keeps_every_id():
    ids, events, _ = _stable({"a": 0, "b": 0, "c": 2}, {"a": "P00000001", "b": "P00000001",
                                                        "c": "P00000002"})  # fmt: skip
    assert ids.to_dict() == {"a": "P00000001", "b": "P00000001", "c": "P00000002"}
    assert events.empty


def test_a_merge_keeps_the_older_id_and_is_logged():
    ids, events, _ = _stable({"a": 0, "b": 0}, {"a": "P00000007", "b": "P00000003"})
    assert set(ids) == {"P00000003"}
    assert events[["kind", "person_id", "other_id"]].values.tolist() == [
        ["merge", "P00000003", "P00000007"]
    ]


def test_a_split_keeps_the_id_with_the_larger_part_and_new_records_get_new_ids():
    registry = {"a": "P00000001", "b": "P00000001", "c": "P00000001"}
    ids, events, next_number = _stable({"a": 0, "b": 0, "c": 2, "d": 3}, registry)
    assert ids["a"] == ids["b"] == "P00000001"
    assert {ids["c"], ids["d"]} == {"P00000010", "P00000011"} and next_number == 12
    assert events[["kind", "person_id", "other_id", "records"]].values.tolist() == [
        ["split", "P00000001", ids["c"], 1]
    ]


def test_fixing_a_typo_keeps_every_id():
    from onetable.linkage.match import match
    from onetable.linkage.records import clean_records

    rows = [
        ("r1", "registry", "王伟", "男", "1990-01-01", A, "", HOME),
        ("h1", "health", "王纬", "男", "1990-01-01", _typo(A, 12), "", HOME),
        ("r2", "registry", "李娜", "女", "1990-01-01", B, "", HOME),
        ("h2", "health", "李那", "女", "1990-01-01", "", "", HOME),  # a homophone
    ]
    model = load_model()

    def ids(rows, registry):
        labels = match(clean_records(pd.DataFrame(rows, columns=COLUMNS)), model).labels
        clusters = pd.DataFrame({"key": labels.index, "cluster": labels.to_numpy()})
        out, events, _ = stable_ids(clusters, registry, 1)
        return out, events

    first, _ = ids(rows, pd.DataFrame(columns=["key", "person_id"]))
    registry = pd.DataFrame({"key": first.index, "person_id": first.to_numpy()})
    fixed = [
        rows[0],
        (*rows[1][:5], A, *rows[1][6:]),
        rows[2],
        (*rows[3][:2], "李娜", *rows[3][3:]),
    ]
    second, events = ids(fixed, registry)
    assert second.to_dict() == first.to_dict() and events.empty
    assert first["r1"] == first["h1"] != first["r2"] == first["h2"]


def test_staging_flags_a_stated_birth_date_or_sex_the_id_number_contradicts():
    from onetable.linkage.staging import consistency_flags

    staged = pd.DataFrame({
        "id_number": [A, A, A, None],
        "birth_date": ["1990-01-01", "1990-01-10", None, "1990-01-01"],
        "sex": ["男", "男", "女", "男"],
    })  # fmt: skip
    assert consistency_flags(staged) == [
        (),
        ("id_number:id_birth_mismatch",),
        # no birth date confirms the number, and its sex is not the record's: a relative's
        ("id_number:id_sex_mismatch", "id_number:id_of_another"),
        (),
    ]
    assert consistency_flags(staged.drop(columns="id_number")) == [()] * 4
    # a source with no birth date or sex column states none: nothing contradicts the number
    assert consistency_flags(staged.drop(columns=["birth_date", "sex"])) == [()] * 4
