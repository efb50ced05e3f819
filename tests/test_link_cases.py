"""Person linkage on what real department records hold (issue 16), each kind written by hand: a
newborn under its mother's number, records with neither an ID number nor a birth date, twins one
syllable apart, and identifiers written in the variants departments use."""

from __future__ import annotations

import pandas as pd
from projects import environ, make_project

from onetable.linkage.records import COLUMNS, clean_records, link_records
from onetable.pipeline import STAGES, RunContext, new_run_id
from onetable.schemas.rules import id_check_char
from onetable.warehouse.periods import Period
from onetable.warehouse.store import open_store


def _number(body: str) -> str:
    return body + id_check_char(body)


MOTHER = _number("32032419980510002")  # a woman born 1998-05-10
BABY = _number("32032420260105001")  # her son's own number, after 落户
HOME, PHONE = "凌城镇凌东村3组12号", "13912345678"


# The county's other residents, 2,000 names none of the cases uses: a name agreeing says as
# much as it does in a county (the model weighs an exact name by how common it is).
OTHERS = [
    {"record_id": f"o{i}", "source": "registry", "name": s + g + h}
    for i, (s, g, h) in enumerate(
        (s, g, h) for s in "赵钱孙周吴郑冯褚卫蒋沈韩杨朱秦尤许何吕施" for g in "建国志明春秀兰英华玉"
        for h in "梅军杰涛斌超勇艳娟霞"
    )
]  # fmt: skip


def _persons(rows: list[dict]) -> dict[str, str]:
    """record_id -> person id for hand-written records (missing columns empty), linked among
    the county's others."""
    frame = pd.DataFrame(rows + OTHERS).reindex(columns=[*COLUMNS, "household"])
    frame = frame.astype(object).where(frame.notna(), None)
    ids = dict(link_records(frame).itertuples(index=False))
    assert len({ids[o["record_id"]] for o in OTHERS}) == len(OTHERS)
    return {r["record_id"]: ids[r["record_id"]] for r in rows}


def _same(ids: dict[str, str], *records: str) -> bool:
    return len({ids[r] for r in records}) == 1


def test_a_newborn_under_its_mothers_number_is_not_its_mother():
    mother = {"name": "王芳", "birth_date": "1998-05-10", "id_number": MOTHER, "phone": PHONE,
              "address": HOME}  # fmt: skip
    baby = {
        "name": "李小宝",
        "sex": "男",
        "birth_date": "2026-01-05",
        "phone": PHONE,
        "address": HOME,
    }
    rows = [
        {"record_id": "m1", "source": "registry", **mother},
        {"record_id": "m2", "source": "health", **mother},
        # 卫健 and the vaccination register carry the mother's number until 落户
        {"record_id": "b1", "source": "health", **baby, "id_number": MOTHER},
        {"record_id": "b2", "source": "vaccination", **baby, "id_number": MOTHER},
        {"record_id": "b3", "source": "registry", **baby, "id_number": BABY},
        # a boy's record with no birth date: the number's sex is not his
        {
            "record_id": "b4",
            "source": "grid",
            "name": "李小宝",
            "sex": "男",
            "id_number": MOTHER,
            "phone": PHONE,
        },
    ]
    ids = _persons(rows)
    assert _same(ids, "m1", "m2") and _same(ids, "b1", "b2", "b3", "b4")
    assert ids["m1"] != ids["b1"]
    clean = clean_records(pd.DataFrame(rows).reindex(columns=[*COLUMNS, "household"])).set_index(
        "record_id"
    )
    # the mother's number is no identity of the baby's records, and gives them no birth date
    assert clean.loc["b1", "id_number"] is pd.NA and not clean.loc["b1", "id_valid"]
    assert clean.loc["b4", "birth_date"] is pd.NA


def test_a_stated_sex_mistyped_beside_a_confirming_birth_date_keeps_the_number():
    rows = [
        {
            "record_id": "m1",
            "source": "registry",
            "name": "王芳",
            "birth_date": "1998-05-10",
            "id_number": MOTHER,
        },
        {
            "record_id": "m2",
            "source": "health",
            "name": "王芳",
            "sex": "男",
            "birth_date": "1998-05-10",
            "id_number": MOTHER,
        },
    ]
    clean = clean_records(pd.DataFrame(rows).reindex(columns=[*COLUMNS, "household"]))
    assert clean["id_valid"].all()
    assert _same(_persons(rows), "m1", "m2")


def test_records_without_number_or_birth_date_link_where_they_agree_and_else_stay_alone():
    rows = [
        {
            "record_id": "r1",
            "source": "registry",
            "name": "王芳",
            "birth_date": "1998-05-10",
            "id_number": MOTHER,
            "phone": PHONE,
            "address": HOME,
        },
        # a grid entry and a tenancy: a name, a phone, an address
        {"record_id": "g1", "source": "grid", "name": "王芳", "phone": PHONE, "address": HOME},
        {"record_id": "t1", "source": "rental", "name": "王芳", "address": HOME},
        # a homophone typo (汪 for 王) on an entry with only a phone besides
        {"record_id": "g2", "source": "grid", "name": "汪芳", "phone": PHONE},
        # a tenant known to no one else, twice: the same name and phone
        {"record_id": "t2", "source": "rental", "name": "赵强", "phone": "13800001111"},
        {
            "record_id": "t3",
            "source": "grid",
            "name": "赵强",
            "phone": "13800001111",
            "address": "凌城镇城北社区人民路8号",
        },
        # a key place's contact with a name alone, and another 赵强 elsewhere
        {"record_id": "k1", "source": "key_places", "name": "孙丽"},
        {"record_id": "t4", "source": "rental", "name": "赵强", "phone": "13700002222"},
    ]
    ids = _persons(rows)
    assert set(ids) == {r["record_id"] for r in rows} and all(ids.values())
    assert _same(ids, "r1", "g1", "t1", "g2") and _same(ids, "t2", "t3")
    assert len({ids["r1"], ids["t2"], ids["k1"], ids["t4"]}) == 4


def test_twins_one_syllable_apart_stay_apart_by_rule():
    twin = {"birth_date": "2015-06-01", "sex": "女", "phone": PHONE, "address": HOME,
            "household": "H1"}  # fmt: skip
    rows = [
        {
            "record_id": "a1",
            "source": "registry",
            "name": "张思涵",
            **twin,
            "id_number": _number("32032420150601002"),
        },
        {
            "record_id": "a2",
            "source": "health",
            "name": "张思涵",
            **twin,
            "id_number": _number("32032420150601002"),
        },
        # her sister, known only to the grid, without a number: nothing but the name differs
        {"record_id": "b1", "source": "grid", "name": "张思怡", **twin},
        # a homophone typo of the first twin's name on a record without a number is hers
        {"record_id": "a3", "source": "grid", "name": "张思含", **twin},
    ]
    ids = _persons(rows)
    assert _same(ids, "a1", "a2", "a3") and ids["b1"] != ids["a1"]


def test_a_typo_on_one_numbered_record_does_not_keep_the_persons_other_records_away():
    number = _number("32032419651120393")
    home = {"birth_date": "1965-11-20", "phone": PHONE, "address": HOME}
    rows = [
        {"record_id": "r1", "source": "registry", "name": "吴浩东", "id_number": number, **home},
        # 民政 typed a character of another sound, beside the right number
        {"record_id": "c1", "source": "civil", "name": "吴诰东", "id_number": number, **home},
        # 卫健 has the right name and no number: it is his, though it reads otherwise than c1
        {"record_id": "h1", "source": "health", "name": "吴浩东", **home},
    ]
    assert _same(_persons(rows), "r1", "c1", "h1")


def test_identifiers_in_the_variants_departments_write():
    # numbers keep the county code of their issue: 溧水县 320124, now 溧水区 320117
    old, new = _number("32012419700101001"), _number("32011719700101001")
    rows = [
        {
            "record_id": "p1",
            "source": "registry",
            "name": "陈刚",
            "birth_date": "1970-01-01",
            "id_number": old,
            "address": "和凤镇张家村第三村民小组5号",
        },
        # 残联: the 20-digit certificate (number and two digits), in full-width digits
        {
            "record_id": "p2",
            "source": "disability",
            "name": "陈刚",
            "id_number": old.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
            + "１２",
        },
        # 民政: a 15-digit first-generation card, the birth date with dots
        {
            "record_id": "p3",
            "source": "civil",
            "name": "陈刚",
            "birth_date": "1970.01.01",
            "id_number": old[:6] + old[8:17],
        },
        # the grid: no number, the group as 三队, the birth date in full-width digits
        {
            "record_id": "p4",
            "source": "grid",
            "name": "陈刚",
            "birth_date": "１９７０－０１－０１",
            "address": "张家村三队5号",
        },
        # another man of the same village born the same day, under the new code
        {
            "record_id": "q1",
            "source": "registry",
            "name": "陈强",
            "birth_date": "1970-01-01",
            "id_number": new,
            "address": "张家村3组5号",
        },
    ]
    ids = _persons(rows)
    assert _same(ids, "p1", "p2", "p3", "p4") and ids["q1"] != ids["p1"]
    clean = clean_records(pd.DataFrame(rows).reindex(columns=[*COLUMNS, "household"])).set_index(
        "record_id"
    )
    assert clean.loc["p2", "id_number"] == old and clean.loc["p1", "id_valid"]
    assert clean.loc["p4", "address"] == clean.loc["q1", "address"] == "张家村3组5号"


HEALTH = """\
source: health
department: 卫健
name_zh: 居民健康档案
entity: person
location: {kind: file, path: health/*.csv, format: csv}
record_key: {column: 档案编号}
read: {mode: snapshot}
columns:
  姓名: {to: name, convert: name}
  性别: {to: sex, convert: code, values: {男: 男, 女: 女}}
  出生日期: {to: birth_date, convert: date}
  身份证号: {to: id_number, convert: id_number}
  现住址: {to: address.standard_address}
"""


def test_the_stages_give_a_newborn_neither_its_mothers_number_nor_her_id(tmp_path, store_settings):
    project, data = make_project(tmp_path / "project"), tmp_path / "data"
    (project / "sources" / "health.yaml").write_text(HEALTH, encoding="utf-8")
    (data / "health").mkdir(parents=True)
    (data / "health" / "档案_20260131.csv").write_text(
        "档案编号,姓名,性别,出生日期,身份证号,现住址\n"
        f"H1,王芳,女,1998-05-10,{MOTHER},{HOME}\n"
        f"H2,李小宝,男,2026-01-05,{MOTHER},{HOME}\n",  # before 落户: the mother's number
        encoding="utf-8",
    )
    ctx = RunContext.create(
        "2026-01",
        new_run_id(Period.parse("2026-01")),
        environ(store_settings, project, data, tmp_path / "out"),
    )
    for stage in ("extract", "standardize", "check", "link"):
        STAGES[stage](ctx)
    with open_store(ctx.store) as con:
        flags = dict(con.execute("SELECT _record_key, _flags FROM staging.health").fetchall())
        people = con.execute(
            "SELECT r.record_key, p.id_number, p.birth_date::VARCHAR FROM core.person_registry r "
            "JOIN core.person_period p USING (person_id) ORDER BY 1"
        ).fetchall()
    assert "id_number:id_of_another" in flags["H2"] and flags["H1"] == []
    assert people == [("H1", MOTHER, "1998-05-10"), ("H2", None, "2026-01-05")]
