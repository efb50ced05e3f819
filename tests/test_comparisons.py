"""The comparison library (linkage/comparisons.py), the model file's errors, and the Latin model
end to end: each comparison's levels run on DuckDB, the Chinese model's expansion against the
levels it had as SQL, a bad file or input named by its key."""

import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import TypeAdapter

from onetable.linkage.cleaners import check_input, clean_columns
from onetable.linkage.comparisons import Comparison
from onetable.linkage.match import _case, match
from onetable.linkage.model import load_model, model_path
from onetable.schemas.contracts import ContractError

LATIN = load_model(model_path("latin_person"))


def _level(spec: dict, left, right) -> str | None:
    """The name of the level a pair of records gets (None: a null, no level). A record is a
    value of column v, or a (v, s) pair where s is a sound key."""
    c = TypeAdapter(Comparison).validate_python({"column": "v", **spec})
    left, right = (x if isinstance(x, tuple) else (x, None) for x in (left, right))
    (g,) = duckdb.execute(
        f"SELECT {_case(c.levels, c.columns)} FROM (SELECT ?::VARCHAR AS v, ?::VARCHAR AS s) l, "
        "(SELECT ?::VARCHAR AS v, ?::VARCHAR AS s) r",
        [*left, *right],
    ).fetchone()
    return None if g == -1 else c.levels[g].name


@pytest.mark.parametrize(
    ("spec", "left", "right", "level"),
    [
        ({"comparison": "exact"}, "smith", "smith", "exact"),
        ({"comparison": "exact"}, "smith", "smyth", "other"),
        ({"comparison": "exact"}, "smith", None, None),
        ({"comparison": "jaro_winkler", "thresholds": [0.92, 0.8]}, "smith", "smith", "exact"),
        ({"comparison": "jaro_winkler", "thresholds": [0.92, 0.8]}, "katherine", "katherina",
         "jaro_winkler_0.92"),
        ({"comparison": "jaro_winkler", "thresholds": [0.92, 0.8]}, "smith", "smyth",
         "jaro_winkler_0.8"),
        ({"comparison": "jaro_winkler", "thresholds": [0.92, 0.8]}, "smith", "jones", "other"),
        ({"comparison": "jaro_winkler", "thresholds": [0.92], "sound": "s"}, ("王伟", "wang wei"),
         ("王纬", "wang wei"), "same_sound"),
        # prefix: the similarity only where the first characters agree
        ({"comparison": "jaro_winkler", "thresholds": [0.8], "prefix": 2}, "smith", "smyth",
         "jaro_winkler_0.8"),
        ({"comparison": "jaro_winkler", "thresholds": [0.8], "prefix": 3}, "smith", "smyth",
         "other"),
        ({"comparison": "levenshtein", "thresholds": [1, 2]}, "4066625", "4066625", "exact"),
        ({"comparison": "levenshtein", "thresholds": [1, 2]}, "4066625", "406662", "levenshtein_1"),
        ({"comparison": "levenshtein", "thresholds": [1, 2]}, "4066625", "4066652",
         "levenshtein_2"),
        ({"comparison": "levenshtein", "thresholds": [1, 2]}, "4066625", "1234567", "other"),
        ({"comparison": "identifier"}, "4066625", "4066626", "one_digit"),
        ({"comparison": "identifier"}, "4066625", "4066652", "adjacent_swap"),
        ({"comparison": "identifier"}, "4066625", "40666255", "other"),  # lengths differ
        ({"comparison": "identifier"}, "4066625", "4066600", "other"),
        ({"comparison": "date", "swaps": True}, "1990-03-04", "1990-04-03", "day_month_swapped"),
        ({"comparison": "date"}, "1990-03-04", "1990-04-03", "other"),
        ({"comparison": "date", "typos": 1}, "1990-03-04", "1991-03-04", "typos_1"),
        ({"comparison": "date", "typos": 1}, "1990-03-04", "1991-04-04", "other"),
        ({"comparison": "date", "tolerance_days": [30, 365]}, "1990-03-04", "1990-03-20",
         "within_30_days"),
        ({"comparison": "date", "tolerance_days": [30, 365]}, "1990-03-04", "1990-12-20",
         "within_365_days"),
        ({"comparison": "date", "tolerance_days": [30]}, "1990-03-04", "2000-03-04", "other"),
        ({"comparison": "numeric", "tolerances": [1, 5]}, "12", "12", "exact"),
        ({"comparison": "numeric", "tolerances": [1, 5]}, "12", "12.5", "within_1"),
        ({"comparison": "numeric", "tolerances": [1, 5]}, "12", "16", "within_5"),
        ({"comparison": "numeric", "tolerances": [1, 5]}, "12", "12a", "other"),  # not a number
    ],
)  # fmt: skip
def test_each_comparison_gives_its_level(spec, left, right, level):
    assert _level(spec, left, right) == level


def test_term_frequency_marks_the_exact_level_alone():
    spec = {"comparison": "jaro_winkler", "column": "surname", "thresholds": [0.9]}
    plain = TypeAdapter(Comparison).validate_python(spec)
    adjusted = TypeAdapter(Comparison).validate_python({**spec, "term_frequency": True})
    assert [lv.term_frequency for lv in plain.levels] == [None, None, None]
    assert [lv.term_frequency for lv in adjusted.levels] == ["surname", None, None]


# The levels person.yaml wrote as SQL before the library: its expansion must be the same, but
# for the identifier's guard on equal lengths (hamming refuses others; a cleaned 公民身份号码
# always has 18 characters, so no pair's level changes).
FORMER = """
id_number:
  columns: [id_number]
  levels:
    - {when: "l.id_number = r.id_number"}
    - {when: "CASE WHEN length(l.id_number) = length(r.id_number) THEN hamming(l.id_number, r.id_number) = 1 ELSE false END"}
    - {when: "CASE WHEN length(l.id_number) <> length(r.id_number) THEN false WHEN hamming(l.id_number, r.id_number) = 2 THEN damerau_levenshtein(l.id_number, r.id_number) = 1 ELSE false END"}
    - {}
name:
  columns: [name]
  levels:
    - {when: "l.name = r.name", term_frequency: name}
    - {when: "l.name_pinyin = r.name_pinyin"}
    - {when: "jaro_winkler_similarity(l.name, r.name) >= 0.9"}
    - {}
birth_date:
  columns: [birth_date]
  levels:
    - {when: "l.birth_date = r.birth_date"}
    - {when: "substr(l.birth_date, 1, 4) = substr(r.birth_date, 1, 4) AND substr(l.birth_date, 6, 2) = substr(r.birth_date, 9, 2) AND substr(l.birth_date, 9, 2) = substr(r.birth_date, 6, 2)"}
    - {when: "hamming(l.birth_date, r.birth_date) <= 2"}
    - {}
sex: {columns: [sex], levels: [{when: "l.sex = r.sex"}, {}]}
phone: {columns: [phone], levels: [{when: "l.phone = r.phone"}, {}]}
address:
  columns: [address]
  levels:
    - {when: "l.address = r.address"}
    - {when: "CASE WHEN left(l.address, 6) = left(r.address, 6) THEN jaro_winkler_similarity(l.address, r.address) >= 0.92 ELSE false END"}
    - {}
household: {columns: [household], levels: [{when: "l.household = r.household"}, {}]}
"""


def test_the_chinese_model_expands_to_its_former_levels():
    former = yaml.safe_load(FORMER)
    expanded = {
        k: {
            "columns": c.columns,
            "levels": [
                {k: v for k, v in lv.model_dump().items() if v is not None and k != "name"}
                for lv in c.levels
            ],
        }
        for k, c in load_model().comparisons.items()
    }
    assert expanded == former


def _model_file(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(model_path("latin_person").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["comparisons"]["surname"].update(comparison="soundex"),
         "comparisons.surname: Input tag 'soundex'"),
        (lambda d: d["comparisons"]["surname"].update(thresholds=[0.8, 0.92]),
         "comparisons.surname.jaro_winkler: Value error, thresholds"),
        (lambda d: d["comparisons"]["surname"].update(thresholds=[1.5]),
         "comparisons.surname.jaro_winkler.thresholds.0"),
        (lambda d: d["comparisons"]["postcode"].update(distance=1),
         "comparisons.postcode.levenshtein.distance: Extra inputs"),
        (lambda d: d["comparisons"]["surname"].update(column="family_name"),
         "comparisons.surname: family_name is not a column of the model"),
        (lambda d: d["comparisons"]["surname"].update(sound="surname_sound"),
         "comparisons.surname: surname_sound is not a column"),
        (lambda d: d.update(optional=["province"]), "optional: province is not an input column"),
        (lambda d: d["input"].update(surname="soundex"), "input.surname"),
        (lambda d: d["input"].update(surname="chinese_name"), "the Chinese cleaners run together"),
        (lambda d: d.pop("anchor"), "anchor: Field required"),
        (lambda d: d["blocking"].append({"name": "ids", "builtin": "id_corrections"}),
         "blocking: id_corrections"),
    ],
)  # fmt: skip
def test_a_bad_model_file_names_the_file_and_the_key(tmp_path, change, message):
    path = _model_file(tmp_path, change)
    with pytest.raises(ContractError) as err:
        load_model(path)
    assert str(path) in str(err.value) and message in str(err.value)


INPUT = ["record_id", "source", *LATIN.input]


def test_an_input_without_a_column_the_model_needs_names_it():
    with pytest.raises(ContractError, match=r"no column 'surname'.*input\.surname"):
        check_input([c for c in INPUT if c != "surname"], LATIN)
    with pytest.raises(ContractError, match=r"no column 'source'"):
        check_input(INPUT[:1] + INPUT[2:], LATIN)


def test_an_input_column_the_model_does_not_know_is_an_error():
    check_input(INPUT, LATIN)
    with pytest.raises(ContractError, match=r"input column 'family_name' is not one of"):
        check_input([*INPUT, "family_name"], LATIN)


def test_an_optional_column_may_be_missing():
    chinese = load_model()
    columns = ["record_id", "source", *chinese.input]
    check_input([c for c in columns if c != "household"], chinese)
    with pytest.raises(ContractError, match=r"input\.phone"):
        check_input([c for c in columns if c != "phone"], chinese)


def test_latin_cleaning():
    raw = pd.DataFrame({
        "record_id": ["1", "2"], "source": ["a", "b"], "given_name": [" Mary  Ann ", None],
        "surname": ["O'BRIEN", ""], "birth_date": ["19800512", "19801312"],
        "id_number": ["123-45 67", None],
    })  # fmt: skip
    clean = clean_columns(raw, LATIN)
    assert clean.iloc[0][["given_name", "surname", "birth_date", "id_number"]].tolist() == [
        "mary ann", "o'brien", "1980-05-12", "1234567",
    ]  # fmt: skip
    # empty text, a month 13 and an absent column are missing, not values
    assert clean.iloc[1][["given_name", "surname", "birth_date", "suburb"]].isna().all()


# A few Latin-script records: John Smith written twice (a typo in his given name, his social
# security number with two digits swapped, no state), and Mary Smith, who lives in the same
# suburb and shares his surname and postcode but nothing else.
ROWS = [
    ("a1", "A", "john", "smith", "19800512", "4066625", "12", "pinkerton circuit", "", "richlands", "4560", "vic"),
    ("b1", "B", "jonh", "Smith ", "1980-05-12", "4066652", "12", "pinkerton circuit", "", "richlands", "4560", ""),
    ("a2", "A", "mary", "smith", "19631130", "9239102", "3", "stanley street", "miami", "richlands", "4560", "vic"),
    ("b2", "B", "charles", "green", "19480930", "4365168", "38", "salkauskas crescent", "kela", "dapto", "4566", "nsw"),
]  # fmt: skip


def _cli(tmp_path: Path, rows, columns, *args: str) -> subprocess.CompletedProcess:
    src = tmp_path / "in.csv"
    pd.DataFrame(rows, columns=columns).to_csv(src, index=False)
    onetable = Path(sys.executable).parent / "onetable"
    return subprocess.run(
        [onetable, "link-records", src, tmp_path / "out.csv", *args], capture_output=True, text=True
    )


def test_link_records_with_the_latin_model(tmp_path):
    columns = ["rid", "source", *LATIN.input]
    result = _cli(tmp_path, ROWS, columns, "--model", "latin_person", "--map", "record_id=rid")
    assert result.returncode == 0, result.stderr
    ids = dict(pd.read_csv(tmp_path / "out.csv").itertuples(index=False))
    assert ids["a1"] == ids["b1"]
    assert len({ids["a1"], ids["a2"], ids["b2"]}) == 3


def test_link_records_names_an_unknown_column_and_the_model(tmp_path):
    columns = [*["record_id", "source", *LATIN.input][:-1], "province"]
    result = _cli(tmp_path, ROWS, columns, "--model", str(model_path("latin_person")))
    assert result.returncode == 2
    assert "no column 'state'" in result.stdout and "input.state" in result.stdout


def test_without_an_anchor_the_prior_odds_are_the_matches_em_finds():
    """400 records of 200 persons, each written twice: the chance that two random records are
    one person is about 200 / (400 · 399 / 2)."""
    rng = np.random.default_rng(1)
    given = ["john", "mary", "peter", "susan", "james", "linda", "david", "karen"]
    family = ["smith", "jones", "brown", "wilson", "taylor", "white", "martin", "clarke"]
    rows = []
    for k in range(200):
        person = [given[k % 8], family[(k // 8) % 8], f"19{rng.integers(30, 99)}0{rng.integers(1, 9)}1{rng.integers(0, 9)}",
                  f"{1000000 + k * 7919}", str(k), "main street", "", "richlands", str(4000 + k % 25), "vic"]  # fmt: skip
        typo = [*person]
        typo[3] = typo[3][:-1] + str((int(typo[3][-1]) + 1) % 10)
        rows += [(f"a{k}", "A", *person), (f"b{k}", "B", *typo)]
    frame = pd.DataFrame(rows, columns=["record_id", "source", *LATIN.input])
    model = LATIN.model_copy(update={"min_pairs": 0, "u_random_pairs": 20000})
    result = match(clean_columns(frame, model), model)
    expected = 200 / (400 * 399 / 2)
    assert expected / 2 < result.parameters.match_probability < expected * 2
    assert result.labels.nunique() == 200
