"""Quality checks with Great Expectations: suites from the contracts, failing keys with rule ids,
errors kept apart from failures, results in the store, and no personal value in results or docs."""

from __future__ import annotations

import json
import logging
import random
from datetime import date

import pandas as pd
import pytest

from onetable.quality.checks import PARSE_DATE, check_frame, suite_for, write_results
from onetable.quality.expectations import valid_credit_codes, valid_id_numbers
from onetable.quality.pii_scan import scan_personal_data
from onetable.schemas.contracts import load_contracts
from onetable.schemas.rules import (
    credit_code_check_char,
    id_check_char,
    is_valid_credit_code,
    is_valid_id_number,
)
from onetable.warehouse.ledger import transaction
from onetable.warehouse.store import open_store


def _id(body17: str) -> str:
    return body17 + id_check_char(body17)


def _wrong(number: str) -> str:
    """The same number with a wrong check character."""
    return number[:17] + ("0" if number[17] != "0" else "1")


GOOD = [_id(f"32032419{y}0{m}1{d}0{s}") for y, m, d, s in
        [(50, 3, 5, 12), (61, 7, 2, 23), (88, 1, 9, 34), (47, 9, 8, 45), (90, 5, 1, 56),
         (72, 6, 3, 67), (55, 2, 4, 78), (66, 8, 6, 89)]]  # fmt: skip
BAD_CHECKSUM = _wrong(_id("32032419700412003"))
LOWER_X = next(n for n in (_id(f"32032419800101{i:03d}") for i in range(1000)) if n[17] == "X")
LOWER_X = LOWER_X[:17] + "x"
ALL_IDS = [*GOOD, BAD_CHECKSUM, LOWER_X]


@pytest.fixture(scope="module")
def person():
    return load_contracts().entities["person"]


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {
        "person_id": None, "id_number": None, "name": "张三", "sex": "男",
        "birth_date": date(1960, 1, 1), "ethnicity": "汉族", "phone": "13912345678",
        "residence_type": "户籍人口", "registered_household_id": "H1", "living_household_id": "L1",
        "address_id": "A1", "village_code": "320324100201", "arrival_date": None, "status": "正常",
    }  # fmt: skip
    out = []
    for i, row in enumerate(rows, start=1):
        out.append({"row_id": 100 + i, **base, "person_id": f"P{i:04d}", **row})
    return pd.DataFrame(out)


def _bad_frame() -> pd.DataFrame:
    return _frame(
        [
            {"id_number": GOOD[0]},
            {"id_number": BAD_CHECKSUM},  # 102
            {"id_number": LOWER_X},  # 103: the standardizer upper-cases; here it is an error
            {"id_number": GOOD[1], "sex": "未知"},  # 104
            {"id_number": GOOD[2], "birth_date": date(1850, 6, 1)},  # 105
            {"id_number": GOOD[3], "name": None},  # 106
            {"id_number": None},  # 107: not required, so fine
            {"id_number": GOOD[4], "phone": None, "ethnicity": None},  # 108: fine
        ]
    )


def test_vectorised_id_check_agrees_with_the_rule_function():
    rng = random.Random(7)
    values = list(ALL_IDS)
    for _ in range(3000):
        y, m, d = rng.randint(1860, 2030), rng.randint(0, 13), rng.randint(0, 32)
        body = f"{rng.randint(110000, 659999)}{y:04d}{m:02d}{d:02d}{rng.randint(0, 999):03d}"
        number = _id(body)
        values += [number, _wrong(number), number.lower(), number[:17], number + "1"]
    values += [
        "",
        "X" * 18,
        "１１０１０５１９４９１２３１００２X",
        "11010519490229002X",
        " " + GOOD[0],
    ]
    today = date(2026, 1, 1)
    got = valid_id_numbers(pd.Series(values, dtype=object), today=today).tolist()
    assert got == [is_valid_id_number(v, today=today) for v in values]
    assert sum(got) > 1000  # the sample holds plenty of both kinds
    # Not a string (a number from a spreadsheet): never valid.
    assert valid_id_numbers(pd.Series([int(GOOD[0][:17]), 1.5], dtype=object)).tolist() == [
        False,
        False,
    ]


def test_vectorised_credit_code_check_agrees_with_the_rule_function():
    rng = random.Random(11)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    values = []
    for _ in range(3000):
        body = "".join(rng.choice(alphabet) for _ in range(17))
        code = body + credit_code_check_char(body)
        other = alphabet[(alphabet.index(code[17]) + 1) % 31]
        values += [code, body + other, code.lower(), code[:17] + "I", code[:16], "O" + code[1:]]
    got = valid_credit_codes(pd.Series(values)).tolist()
    assert got == [is_valid_credit_code(v) for v in values]
    assert sum(got) == 3000


def test_suite_is_built_from_the_contract(person):
    suite = suite_for(person)
    by_rule = {e.meta["rule_id"]: e for e in suite.expectations}
    assert by_rule["person.id_number.checksum"].expectation_type == (
        "expect_column_values_to_be_valid_cn_id_number"
    )
    assert by_rule["person.name.required"].expectation_type == "expect_column_values_to_not_be_null"
    assert by_rule["person.sex.values"].value_set == ["男", "女"]
    assert by_rule["person.phone.regex"].expectation_type == "expect_column_values_to_match_regex"
    assert by_rule["person.birth_date.range"].min_value.year == 1880
    assert by_rule["person.sex.values"].meta["reason_zh"].startswith("性别取值不在代码表内")
    assert {"person.person_id.required", "person.status.required", "person.status.values",
            "person.village_code.regex", "person.residence_type.values"} <= set(by_rule)  # fmt: skip
    unit = suite_for(load_contracts().entities["unit"])
    assert "expect_column_values_to_be_valid_credit_code" in {
        e.expectation_type for e in unit.expectations
    }


def test_known_bad_rows_fail_with_their_rule_ids(person, caplog):
    caplog.set_level(logging.DEBUG)
    result = check_frame(_bad_frame(), person, key="row_id")
    assert not result.success
    assert not result.errors
    got = set(result.failures[["key", "rule_id"]].itertuples(index=False, name=None))
    assert got == {
        (102, "person.id_number.checksum"),
        (103, "person.id_number.checksum"),
        (104, "person.sex.values"),
        (105, "person.birth_date.range"),
        (106, "person.name.required"),
    }
    assert list(result.failures.columns) == ["key", "rule_id", "field", "reason"]
    reasons = dict(zip(result.failures.rule_id, result.failures.reason, strict=True))
    assert reasons["person.name.required"] == "姓名缺失"
    assert reasons["person.birth_date.range"] == "出生日期早于1880-01-01"
    by_rule = {r["rule_id"]: r for r in result.results}
    checksum = by_rule["person.id_number.checksum"]
    assert (checksum["element_count"], checksum["unexpected_count"]) == (8, 2)
    assert checksum["expectation"] == "expect_column_values_to_be_valid_cn_id_number"
    assert (
        by_rule["person.phone.regex"]["success"] and by_rule["person.phone.regex"]["error"] is None
    )
    # No value of any row reaches the results or the log, only keys and counts.
    text = json.dumps(result.results, ensure_ascii=False) + result.failures.to_csv() + caplog.text
    assert not [v for v in ALL_IDS if v in text]
    assert "未知" not in text


def test_clean_frame_passes(person):
    frame = _frame([{"id_number": n} for n in GOOD])
    frame["birth_date"] = pd.to_datetime(frame["birth_date"])  # datetime64 works as well as dates
    result = check_frame(frame, person, key="row_id")
    assert result.success, result.failures
    assert result.failures.empty
    assert all(r["success"] and r["unexpected_count"] == 0 for r in result.results)


def test_as_of_date_decides_future_births(person):
    recent = _id("32032420200101001")
    frame = _frame([{"id_number": recent}])
    assert check_frame(frame, person, key="row_id").success
    old_run = check_frame(frame, person, key="row_id", as_of=date(2019, 12, 31))
    assert old_run.failures.rule_id.tolist() == ["person.id_number.checksum"]


def test_errored_metric_is_an_error_not_failures(person):
    frame = _bad_frame().drop(columns=["phone", "name"])
    result = check_frame(frame, person, key="row_id")
    assert not result.success
    errored = {r["rule_id"]: r for r in result.errors}
    assert set(errored) == {"person.phone.regex", "person.name.required"}
    assert all(
        r["unexpected_count"] is None and r["element_count"] is None for r in errored.values()
    )
    assert "does not exist" in errored["person.phone.regex"]["error"]
    # The other rules still ran, and the missing columns produced no failing rows.
    assert set(result.failures.field) == {"id_number", "sex", "birth_date"}


def test_unparseable_dates_are_failures_not_nulls(person):
    frame = _frame([{"id_number": GOOD[0]}, {"id_number": GOOD[1], "birth_date": "1961-02-30"}])
    frame["birth_date"] = frame["birth_date"].astype(object)
    result = check_frame(frame, person, key="row_id")
    assert result.failures.to_dict("records") == [
        {"key": 102, "rule_id": "person.birth_date.type", "field": "birth_date",
         "reason": "出生日期不是有效日期"}
    ]  # fmt: skip
    assert any(r["expectation"] == PARSE_DATE and not r["success"] for r in result.results)


def test_key_must_not_be_personal(person):
    with pytest.raises(ValueError, match="personal"):
        check_frame(_bad_frame(), person, key="id_number")
    frame = _bad_frame()
    frame.loc[1, "row_id"] = 101
    with pytest.raises(ValueError, match="unique"):
        check_frame(frame, person, key="row_id")


def test_data_docs_hold_no_id_numbers(person, tmp_path):
    docs = tmp_path / "reports" / "data_docs"
    result = check_frame(_bad_frame(), person, key="row_id", docs_dir=docs, run_name="2026-01")
    assert result.docs_index == docs.resolve() / "index.html"
    pages = sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.html"))
    assert "index.html" in pages and any(p.startswith("validations/person/2026-01/") for p in pages)
    page = next(docs.rglob("validations/**/*.html")).read_text(encoding="utf-8")
    assert "公民身份号码无效" in page  # the Chinese reason is what the auditor reads
    needles = {n: "id_number" for n in ALL_IDS} | {"13912345678": "phone"}
    assert scan_personal_data([docs], needles) == []
    # A control: the scan would have found a raw value in the same folder.
    (docs / "control.txt").write_text(BAD_CHECKSUM, encoding="utf-8")
    assert len(scan_personal_data([docs], needles)) == 1


def test_results_are_stored_and_read_back(person, store_settings):
    result = check_frame(_bad_frame().drop(columns=["phone"]), person, key="row_id")
    with open_store(store_settings) as con, transaction(con, run_id="r1", stage="check") as tx:
        n = write_results(tx, result, run_id="r1", period="2026-01", dataset="staging.person")
        assert n == len(result.results)
    with open_store(store_settings) as con, transaction(con, run_id="r1", stage="check") as tx:
        write_results(tx, result, run_id="r1", period="2026-01", dataset="staging.person")  # retry
    with open_store(store_settings) as con:
        rows = con.execute(
            'SELECT rule_id, "column", expectation, success, element_count, unexpected_count, '
            "unexpected_percent, error FROM quality.results WHERE run_id = 'r1' "
            "AND period = '2026-01' AND dataset = 'staging.person'"
        ).fetchall()
    assert len(rows) == len(result.results)  # the retry replaced, not added
    stored = {r[0]: r for r in rows}
    assert stored["person.id_number.checksum"][3:6] == (False, 8, 2)
    assert stored["person.sex.values"][5] == 1
    phone = stored["person.phone.regex"]
    assert phone[3] is False and phone[4] is None and "does not exist" in phone[7]
    assert not [v for v in ALL_IDS if v in repr(rows)]
