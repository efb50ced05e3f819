"""Issue 14, no silent loss in standardizing: each fault planted, then shown flagged, not lost."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from projects import make_project

from onetable.linkage import standardize as st
from onetable.pipeline import STAGES, RunContext, new_run_id, run_period
from onetable.schemas.contracts import load_contracts
from onetable.schemas.divisions import COLUMNS, registry, village_codes
from onetable.schemas.rules import id_check_char
from onetable.warehouse.periods import Period
from onetable.warehouse.store import open_store

ID = "320324198003071233"
# one of each kind of character that displays as nothing: C0, escape, DEL, C1, zero-width space,
# BOM, soft hyphen, a bidi override, a bidi isolate, the word joiner
INVISIBLE = "\x00\x1b\x7f\x85\u200b\ufeff\u00ad\u202e\u2066\u2060"
# every standardizer of raw text, with a value it reads
STANDARDIZERS = [
    pytest.param(st.id_number, ID, id="id_number"),
    pytest.param(st.sex, "男性", id="sex"),
    pytest.param(st.credit_code, "91110000600037341L", id="credit_code"),
    pytest.param(st.name, "张成玉", id="name"),
    pytest.param(st.name, "買買提·艾力", id="name-traditional"),
    pytest.param(st.parse_date, "1950年3月2日", id="date"),
    pytest.param(lambda raw: st.parse_date(raw, ("%d/%m/%Y",)), "02/03/1950", id="date-format"),
    pytest.param(st.phone, "0516-88881234转12", id="phone"),
    pytest.param(st.address, "王集镇南许村十一组38号", id="address"),
    pytest.param(st.text, "人民路 226号", id="text"),
    pytest.param(st.integer, "1,200", id="integer"),
    pytest.param(lambda raw: st.code(raw, {"城乡低保": "低保"}), "城乡低保", id="code"),
    pytest.param(lambda raw: st.code(raw, {"城乡低保": "低保"}), "临时救助", id="code-unknown"),
]


@pytest.mark.parametrize("invisible", list(INVISIBLE), ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("standardize, raw", STANDARDIZERS)
def test_every_standardizer_removes_and_flags_invisible_characters(standardize, raw, invisible):
    """The value comes out as from the clean input, its flags led by `control_chars`."""
    value, flags = standardize(raw)
    assert value is not None
    assert standardize(raw[:2] + invisible + raw[2:] + invisible) == (
        value,
        ("control_chars", *flags),
    )


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param("张\x00成玉", ("张成玉", ("control_chars",)), id="nul"),
        pytest.param("\ufeff张成玉", ("张成玉", ("control_chars",)), id="bom-first"),
        pytest.param(
            "張\x00偉", ("张伟", ("control_chars", "name_traditional")), id="and-traditional"
        ),
        pytest.param("\x00", (None, ("control_chars", "name_missing")), id="nothing-else"),
        pytest.param("\u200b \u200b", (None, ("control_chars", "name_missing")), id="blank-else"),
        pytest.param("张\t成玉\r\n", ("张成玉", ()), id="tab-and-line-break-are-white-space"),
        pytest.param("张\ue000", ("张\ue000", ()), id="private-use-kept"),
        pytest.param("葛\U000e0100", ("葛\U000e0100", ()), id="variation-selector-kept"),
        pytest.param("张\u3000成玉", ("张成玉", ()), id="ideographic-space-is-white-space"),
    ],
)
def test_name_invisible_characters(raw, expected):
    assert st.name(raw) == expected


@pytest.mark.parametrize(
    "standardize, raw, expected",
    [
        pytest.param(st.id_number, "\x00", (None, ("control_chars", "id_missing")), id="id-only-nul"),
        pytest.param(st.id_number, "3203241980\x00", (None, ("control_chars", "id_malformed")), id="id-short"),
        pytest.param(st.sex, "\u200b", (None, ("control_chars", "sex_missing")), id="sex-only-zwsp"),
        pytest.param(st.text, "第一行\n第二行", ("第一行 第二行", ()), id="text-line-break"),
        pytest.param(st.text, "\x00", (None, ("control_chars",)), id="text-only-nul"),
        pytest.param(st.phone, "139\x1f1234\x1f5678", ("13912345678", ("control_chars",)), id="unit-separator"),
    ],
)  # fmt: skip
def test_invisible_characters_with_other_flags(standardize, raw, expected):
    assert standardize(raw) == expected


PERSONS = """\
source: persons
department: 公安
name_zh: 户籍人口
entity: person
location: {kind: file, path: persons/*.csv, format: csv}
record_key: {column: 人员编号}
read: {mode: snapshot}
columns:
  姓名: {to: name, convert: name}
  身份证号: {to: id_number, convert: id_number}
  出生日期: {to: birth_date, convert: date}
  村代码: {to: village_code}
"""


def _id(body: str) -> str:
    return body + id_check_char(body)


def _environ(tmp_path: Path, store_settings, mappings: dict[str, str]) -> dict[str, str]:
    sources = make_project(tmp_path / "project") / "sources"
    for name, text in mappings.items():
        (sources / f"{name}.yaml").write_text(text, encoding="utf-8")
    return {
        "ONETABLE_STATE_DIR": str(store_settings.state_dir),
        "ONETABLE_STORE_KEY": store_settings.key,
        "ONETABLE_PROJECT": str(sources.parent),
        "ONETABLE_DATA_ROOT": str(tmp_path / "data"),
        "ONETABLE_OUT_DIR": str(tmp_path / "out"),
        "ONETABLE_PSEUDONYM_KEY": "k" * 40,
    }


def test_a_nul_in_a_name_is_removed_and_flagged_from_landing_to_staging(tmp_path, store_settings):
    environ = _environ(tmp_path, store_settings, {"persons": PERSONS})
    path = tmp_path / "data/persons/户籍_20260131.csv"
    path.parent.mkdir(parents=True)
    rows = [
        "人员编号,姓名,身份证号,出生日期,村代码",
        f"R1,张\x00成玉,{_id('32032419400302001')},1940-03-02,320324110201",
        f"R2,王芳,{_id('32032419620715002')},1962-07-15,320324110201",
    ]
    path.write_bytes(("\n".join(rows) + "\n").encode("utf-8"))
    ctx = RunContext.create("2026-01", new_run_id(Period.parse("2026-01")), environ)
    extracted = STAGES["extract"](ctx)
    assert extracted["persons"]["landed"] == 2 and extracted["persons"]["quarantined"] == 0
    with open_store(ctx.store) as con:
        (landed,) = con.execute(
            "SELECT 姓名 FROM landing.persons WHERE _record_key = 'R1'"
        ).fetchone()
    assert landed == "张\x00成玉"  # landing keeps what the department sent
    result = STAGES["standardize"](ctx)
    assert result["persons"] == {
        "records": 2, "flagged": 1, "ended": 0,
        "unknown_village_codes": {}, "malformed_village_codes": 0, "addresses_unplaced": {},
    }  # fmt: skip
    with open_store(ctx.store) as con:
        staged = con.execute(
            "SELECT _record_key, name, _flags FROM staging.persons ORDER BY 1"
        ).fetchall()
    assert staged == [("R1", "张成玉", ["name:control_chars"]), ("R2", "王芳", [])]


# --- a village code not in the division registry ------------------------------------------------

VILLAGE_A, VILLAGE_B = "320324110201", "320324110202"
DIVISIONS = [  # a deployment's registry: level, code, name, county_code, parent_code, parent_name
    ("county", "320324", "睢宁县", "320324", "320300", "徐州市"),
    ("township", "320324110", "凌城镇", "320324", "320324", "睢宁县"),
    ("village", VILLAGE_A, "凌东村", "320324", "320324110", "凌城镇"),
    ("village", VILLAGE_B, "凌闸村", "320324", "320324110", "凌城镇"),
    ("county", "320382", "邳州市", "320382", "320300", "徐州市"),
    ("village", "", "某某村", "320382", "", ""),  # a county whose villages have names only
]
KNOWN = village_codes(pd.DataFrame(DIVISIONS, columns=COLUMNS)).knows


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param(VILLAGE_A, (VILLAGE_A, ()), id="in-registry"),
        pytest.param("３２０３２４１１０２０１", (VILLAGE_A, ()), id="full-width"),
        pytest.param(" 320324 110201 ", (VILLAGE_A, ()), id="spaces"),
        pytest.param("'320324110201", (VILLAGE_A, ()), id="spreadsheet-apostrophe"),
        pytest.param("320324110201\x00", (VILLAGE_A, ("control_chars",)), id="nul"),
        pytest.param("320324110299", ("320324110299", ("unknown_code",)), id="not-in-its-county"),
        pytest.param("320311001001", ("320311001001", ("unknown_code",)), id="county-not-in-registry"),
        pytest.param("320382100201", ("320382100201", ()), id="county-without-village-codes"),
        pytest.param("3203241102", ("3203241102", ("malformed_code",)), id="ten-digits"),
        pytest.param("32032411020X", ("32032411020X", ("malformed_code",)), id="letter"),
        pytest.param("٣٢٠٣٢٤١١٠٢٠١", ("٣٢٠٣٢٤١١٠٢٠١", ("malformed_code",)), id="non-latin-digits"),
        pytest.param(" ", (None, ()), id="blank"),
        pytest.param(None, (None, ()), id="none"),
    ],
)  # fmt: skip
def test_village_code(raw, expected):
    assert st.village_code(raw, KNOWN) == expected


def test_the_shipped_registry_checks_the_county_of_a_village_code():
    """The shipped Jiangsu tree names villages without codes: it vouches for a code's county."""
    knows = village_codes(registry(load_contracts())).knows
    assert knows("320324110201") and knows("320116400001")
    assert not knows("999999110201") and not knows("110105001001")  # no such county in Jiangsu
    assert not knows("320100001001")  # 南京市 is a city, not a county


REGISTRY = """\
source: registry
department: 公安
name_zh: 户籍人口
entity: person
location: {kind: file, path: registry/*.csv, format: csv}
record_key: {column: 人员编号}
read: {mode: snapshot}
columns:
  姓名: {to: name, convert: name}
  性别: {to: sex, convert: code}
  出生日期: {to: birth_date, convert: date}
  身份证号: {to: id_number, convert: id_number}
  村代码: {to: village_code}
  人员类型: {to: residence_type, convert: code}
"""
RESIDENTS = REGISTRY.replace("source: registry", "source: residents").replace(
    "registry/*.csv", "residents/*.csv"
)
UNKNOWN, OTHER_COUNTY, MALFORMED = "320324110199", "320311001001", "3203241102"
PEOPLE = {  # key: (name, sex, birth, id body, village code in the registry)
    "R1": ("张伟", "男", "1950-03-02", "32032419500302001", VILLAGE_A),
    "R2": ("王芳", "女", "1962-07-15", "32032419620715002", UNKNOWN),  # also in residents, in B
    "R3": ("李娜", "女", "1985-01-09", "32032419850109002", OTHER_COUNTY),
    "R4": ("赵强", "男", "1990-05-05", "32032419900505001", MALFORMED),
    "R5": ("孙丽", "女", "1972-11-20", "32032419721120002", VILLAGE_A),
}


def _persons_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    lines = ["人员编号,姓名,性别,出生日期,身份证号,村代码,人员类型"]
    for key, village in rows:
        name, sex, born, body, _ = PEOPLE[key]
        lines.append(f"{key},{name},{sex},{born},{_id(body)},{village},户籍人口")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def deployment(tmp_path, store_settings):
    """A county of five persons whose registry records carry known codes, a code its village
    list lacks, a code of a county the registry does not hold, and a value that is no code; a
    second department has one of them in a known village."""
    environ = _environ(tmp_path, store_settings, {"registry": REGISTRY, "residents": RESIDENTS})
    data = Path(environ["ONETABLE_DATA_ROOT"])
    _persons_csv(data / "registry/户籍_20260131.csv", [(k, p[4]) for k, p in PEOPLE.items()])
    _persons_csv(data / "residents/实有_20260131.csv", [("R2", VILLAGE_B)])
    root = Path(environ["ONETABLE_PROJECT"])  # the deployment's own registry
    pd.DataFrame(DIVISIONS, columns=COLUMNS).to_csv(root / "divisions.csv", index=False)
    (root / "divisions.yaml").write_text(
        "path: divisions.csv\nedition: a deployment's own\nreference_date: 2025-12-31\n",
        encoding="utf-8",
    )
    return RunContext.create("2026-01", new_run_id(Period.parse("2026-01")), environ)


def test_a_village_code_not_in_the_registry_places_no_one(deployment):
    results = run_period(deployment)
    assert results["standardize"]["registry"]["unknown_village_codes"] == {
        OTHER_COUNTY: 1, UNKNOWN: 1,
    }  # fmt: skip
    assert results["standardize"]["registry"]["malformed_village_codes"] == 1
    assert results["standardize"]["residents"]["unknown_village_codes"] == {}
    assert results["link"]["records"] == 6 and results["link"]["persons"] == 5  # none dropped
    assert results["one_table"]["villages"] == 2 and results["one_table"]["unplaced"] == 2
    summary = str(results)
    for name, _, _, body, _ in PEOPLE.values():
        assert name not in summary and _id(body) not in summary and MALFORMED not in summary
    with open_store(deployment.store) as con:
        staged = con.execute(
            "SELECT _record_key, village_code, list_filter(_flags, f -> f LIKE 'village_code:%') "
            "FROM staging.registry ORDER BY 1"
        ).fetchall()
        placed = con.execute(
            "SELECT r.record_key, p.village_code FROM core.person_period p "
            "JOIN core.person_registry r USING (person_id) WHERE r.source = 'registry' ORDER BY 1"
        ).fetchall()
        villages = con.execute(
            "SELECT village_code, value FROM marts.one_table WHERE indicator = 'RK01' ORDER BY 1"
        ).fetchall()
    assert staged == [  # kept and flagged, for linkage and the check
        ("R1", VILLAGE_A, []),
        ("R2", UNKNOWN, ["village_code:unknown_code"]),
        ("R3", OTHER_COUNTY, ["village_code:unknown_code"]),
        ("R4", MALFORMED, ["village_code:malformed_code"]),
        ("R5", VILLAGE_A, []),
    ]
    # R2 placed by the other department's record; R3 and R4 have no valid code: unplaced
    assert placed == [
        ("R1", VILLAGE_A), ("R2", VILLAGE_B), ("R3", None), ("R4", None), ("R5", VILLAGE_A),
    ]  # fmt: skip
    assert villages == [(VILLAGE_A, 2), (VILLAGE_B, 1)]  # no invented village in the one table
