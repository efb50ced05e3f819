"""The mapping language for real department exports (docs/mappings.md): a column to several
targets, code tables with synonyms a county extends, unknown codes, split cells, derived columns,
roles and end dates; loaded and checked, then taken through the real stages on a real store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from projects import environ, make_project

from onetable.linkage import staging
from onetable.linkage import standardize as st
from onetable.pipeline import STAGES, RunContext, new_run_id
from onetable.schemas.contracts import SHIPPED, ContractError, Mapping, load_contracts
from onetable.schemas.rules import id_check_char
from onetable.warehouse.periods import Period
from onetable.warehouse.store import open_store

HEAD = """\
source: {name}
department: 民政
name_zh: 测试
entity: {entity}
location: {{kind: file, path: {name}/*.csv, format: csv}}
record_key: {{column: 编号}}
read: {{mode: snapshot}}
"""


def _mapping(name: str, body: str, entity: str = "group_membership") -> str:
    return HEAD.format(name=name, entity=entity) + body


def _load(
    tmp_path: Path, body: str, codes: dict[str, str] | None = None, entity="group_membership"
):
    sources = tmp_path / "sources"
    sources.mkdir(exist_ok=True)
    (sources / "s.yaml").write_text(_mapping("s", body, entity), encoding="utf-8")
    codes_dir = None
    if codes is not None:
        codes_dir = tmp_path / "codes"
        codes_dir.mkdir(exist_ok=True)
        for table, text in codes.items():
            (codes_dir / f"{table}.yaml").write_text(text, encoding="utf-8")
    return load_contracts(sources_dir=sources, codes_dir=codes_dir)


def _error(tmp_path: Path, body: str, *fragments: str, **kwargs) -> str:
    with pytest.raises(ContractError) as info:
        _load(tmp_path, body, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- one column to several targets ---------------------------------------------------------


def test_a_column_maps_to_several_targets(tmp_path):
    source = _load(
        tmp_path,
        "columns:\n  残疾人证号: [{to: person.id_number, convert: id_number}, {to: reference_number}]\n"
        "  姓名: {to: person.name, convert: name}\n",
    ).sources["s"]
    assert source.targets("残疾人证号") == [
        ("person", "id_number"),
        ("group_membership", "reference_number"),
    ]
    assert source.targets("姓名") == [("person", "name")]


def test_two_mappings_to_one_target_name_both_columns(tmp_path):
    _error(
        tmp_path,
        "columns:\n  证号: [{to: person.id_number}, {to: reference_number}]\n"
        "  身份证号: {to: person.id_number}\n",
        "columns.身份证号.to: 'person.id_number' is also the target of columns.证号[0]",
    )


def test_an_error_in_a_listed_mapping_names_its_place(tmp_path):
    _error(
        tmp_path,
        "columns:\n  证号: [{to: person.id_number}, {to: ref_no}]\n",
        "s.yaml: columns.证号[1].to: 'ref_no' is not a column of entity 'group_membership'",
    )


# --- code tables ---------------------------------------------------------------------------

COUNTY_GROUPS = """\
table: groups
name_zh: 重点人群
values:
  低保: [城乡低保]
  特困: [特困供养]
  高龄津贴: [高龄补贴]
  居家养老服务: []
"""


def test_the_shipped_code_tables():
    codes = load_contracts().codes
    assert set(codes) >= {"groups", "relations", "sex"}
    groups = codes["groups"]
    assert list(groups.values) == [
        "低保", "特困", "残疾", "退役军人", "严重精神障碍", "失能", "留守儿童", "独居老人",
        "空巢老人", "计生特殊家庭", "流动人口",
    ]  # fmt: skip
    assert groups.lookup()["城乡低保"] == "低保" and groups.lookup()["特困供养"] == "特困"
    assert codes["sex"].lookup()["1"] == "男" and codes["sex"].lookup()["f"] == "女"
    relations = codes["relations"].lookup()
    assert relations["本人"] == "户主" and relations["儿子"] == "子"


def test_a_county_code_table_replaces_the_shipped_one(tmp_path):
    contracts = _load(tmp_path, "columns:\n  类别: {to: group}\n", codes={"groups": COUNTY_GROUPS})
    assert list(contracts.codes["groups"].values) == ["低保", "特困", "高龄津贴", "居家养老服务"]
    assert "男" in contracts.codes["sex"].values  # the tables it does not give stay shipped


def test_a_code_mapping_names_an_existing_table(tmp_path):
    _error(
        tmp_path,
        "columns:\n  类别: {to: group, convert: code, table: group}\n",
        "s.yaml: columns.类别.table: 'group' is not a code table (one of groups, relations, sex)",
    )


def test_a_mapping_value_is_a_canonical_value_of_its_table(tmp_path):
    _error(
        tmp_path,
        "columns:\n  类别: {to: group, convert: code, table: groups, values: {老年补贴: 高龄津贴}}\n",
        "s.yaml: columns.类别.values.老年补贴: '高龄津贴' is not a value of code table 'groups'",
    )
    # the county's own table has it
    _load(
        tmp_path,
        "columns:\n  类别: {to: group, convert: code, table: groups, values: {老年补贴: 高龄津贴}}\n",
        codes={"groups": COUNTY_GROUPS},
    )


def test_an_unknown_code_maps_to_a_canonical_value(tmp_path):
    _error(
        tmp_path,
        "columns:\n  类别: {to: group, convert: code, table: groups, unknown: {map: 其他}}\n",
        "columns.类别.unknown.map: '其他' is not a value of code table 'groups'",
    )


def test_code_options_need_a_code_conversion(tmp_path):
    _error(
        tmp_path,
        "columns:\n  类别: {to: group, split: '、'}\n",
        "columns.类别.0: Value error, split need(s) `convert: code`",
    )


def test_an_entity_rule_names_an_existing_code_table(tmp_path):
    root = tmp_path / "contracts"
    shutil.copytree(SHIPPED, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = root / "entities/person.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("{code_table: sex}", "{code_table: sexes}"),
        encoding="utf-8",
    )
    with pytest.raises(ContractError, match=r"person.yaml: columns.sex.rule.code_table: 'sexes'"):
        load_contracts(root)


def test_a_word_means_one_value_in_a_code_table(tmp_path):
    table = "table: groups\nname_zh: 重点人群\nvalues:\n  低保: [困难]\n  特困: [困难]\n"
    _error(
        tmp_path,
        "columns:\n  类别: {to: group}\n",
        "groups.yaml: values: Value error, '困难' is given for both '低保' and '特困'",
        codes={"groups": table},
    )


def test_code_standardizer_with_a_table():
    table = load_contracts().codes["groups"].lookup()
    assert st.code("城乡低保", {}, table) == ("低保", ())
    assert st.code(" 低保 ", {}, table) == ("低保", ())
    assert st.code("老年补贴", {"老年补贴": "特困"}, table) == ("特困", ())
    assert st.code("临时救助", {}, table) == ("临时救助", ("code_unknown",))


@pytest.mark.parametrize(
    "mapping, raw, expected",
    [
        pytest.param({}, "临时救助", ("临时救助", ("code_unknown",), ("临时救助",)), id="keep"),
        pytest.param(
            {"unknown": {"map": "特困"}}, "临时救助", ("特困", ("code_unknown",), ("临时救助",)),
            id="map",
        ),
        pytest.param(
            {"split": "、,"}, "高龄补贴、城乡低保,低保",
            (["高龄津贴", "低保"], (), ()), id="split",
        ),
        pytest.param(
            {"split": "、"}, "城乡低保、临时救助、",
            (["低保", "临时救助"], ("code_unknown",), ("临时救助",)), id="split-unknown",
        ),
        pytest.param({"split": "、"}, "、", (None, (), ()), id="split-nothing"),
        pytest.param({"split": "、"}, None, (None, (), ()), id="split-none"),
    ],
)  # fmt: skip
def test_cell_converter(mapping, raw, expected, tmp_path):
    codes = _load(
        tmp_path, "columns:\n  类别: {to: group}\n", codes={"groups": COUNTY_GROUPS}
    ).codes
    m = Mapping(to="group", convert="code", table="groups", **mapping)
    assert staging.cell_converter(m, staging.converter(m, codes))(raw) == expected


@pytest.mark.parametrize(
    "code, shown",
    [
        ("临时救助", "'临时救助'"),
        ("320324198003071233", "of 18 characters"),
        ("x" * 21, "of 21 characters"),
    ],
)
def test_a_quarantine_reason_shows_a_code_only_when_it_cannot_be_personal(code, shown):
    assert staging.shown_code(code) == shown


# --- derived columns -----------------------------------------------------------------------

DERIVED = """\
required: [编号, 网格编码]
derived: {{村代码: "{expression}"}}
columns:
  村代码: {{to: person.village_code}}
  姓名: {{to: person.name, convert: name}}
"""


def test_a_derived_column_loads(tmp_path):
    source = _load(tmp_path, DERIVED.format(expression="substr(网格编码, 1, 12)")).sources["s"]
    assert source.derived == {"村代码": "substr(网格编码, 1, 12)"}
    assert "村代码" not in source.declared_columns() and "网格编码" in source.declared_columns()


@pytest.mark.parametrize(
    "expression, fragment",
    [
        pytest.param(
            "substr(网格编号, 1, 12)", 'Referenced column "网格编号" not found', id="typo"
        ),
        pytest.param("substr(网格编码, 1, 12", "syntax error", id="syntax"),
        pytest.param("1); DROP TABLE x; SELECT (1", "one expression expected", id="statements"),
    ],
)
def test_a_derived_column_that_does_not_bind(tmp_path, expression, fragment):
    message = _error(tmp_path, DERIVED.format(expression=expression), "s.yaml: derived.村代码: ")
    assert fragment in message, message


def test_a_derived_column_uses_no_other_derived_column(tmp_path):
    body = DERIVED.format(expression="substr(网格编码, 1, 12)").replace(
        "derived: {", "derived: {乡镇代码: 'substr(村代码, 1, 9)', "
    )
    _error(tmp_path, body, "derived.乡镇代码:", "derived column(s) 村代码 may not be used")


def test_a_derived_column_is_not_a_landed_column(tmp_path):
    body = DERIVED.format(expression="substr(网格编码, 1, 12)").replace(
        "derived: {村代码:", "derived: {网格编码: 'upper(编号)', 村代码:"
    )
    _error(tmp_path, body, "derived.网格编码: '网格编码' is a column the department sends")


# --- roles ---------------------------------------------------------------------------------


def test_a_role_target_is_a_column_of_the_role_entity(tmp_path):
    body = (
        "roles: {landlord: {entity: person, resident: false}}\n"
        "columns:\n  房东姓名: {to: landlord.name}\n  房东证号: {to: landlord.id_no}\n"
    )
    _error(tmp_path, body, "columns.房东证号.to: 'id_no' is not a column of entity 'person'")
    body = "roles: {person: {entity: person}}\ncolumns:\n  姓名: {to: person.name}\n"
    _error(tmp_path, body, "roles.person: a role may not be named like an entity")


# --- through the stages on a store -----------------------------------------------------------

VILLAGE, OTHER_VILLAGE = "320324110201", "320324110202"
WELFARE = _mapping(
    "welfare",
    """\
required: [编号, 证号, 姓名, 类别, 网格编码]
derived: {村代码: "substr(网格编码, 1, 12)"}
ended_on: {column: 离开日期, formats: ['%Y/%m/%d']}
columns:
  证号: [{to: person.id_number, convert: id_number}, {to: reference_number}]
  姓名: {to: person.name, convert: name}
  类别: {to: group, convert: code, table: groups, split: "、，,", unknown: quarantine}
  村代码: {to: person.village_code}
""",
)
RENTAL = _mapping(
    "rental",
    """\
required: [编号, 承租人姓名, 承租人证件号码]
roles:
  landlord: {entity: person, resident: false}
  registered_address: {entity: address}
columns:
  编号: {to: registration_number}
  承租人姓名: {to: person.name, convert: name}
  承租人证件号码: {to: person.id_number, convert: id_number}
  房东姓名: {to: landlord.name, convert: name}
  房东证件号码: {to: landlord.id_number, convert: id_number}
  房东村代码: {to: landlord.village_code}
  房东户籍地址: {to: registered_address.standard_address}
  房屋地址: [{to: address.standard_address}, {to: person.village_code, convert: address_village}]
""",
    entity="rental",
)
# the county's own registry, with village codes (made up) for real names of 睢宁县凌城镇
REGISTRY = f"""level,code,name,county_code,parent_code,parent_name
county,320324,睢宁县,320324,320300,徐州市
township,320324110,凌城镇,320324,320324,睢宁县
village,{VILLAGE},凌东村,320324,320324110,凌城镇
village,{OTHER_VILLAGE},城北社区,320324,320324110,凌城镇
"""


def _id(body: str) -> str:
    return body + id_check_char(body)


A, B, C, D = (_id(f"3203241950030200{i}") for i in range(1, 5))
E, T = _id("32032419600101001"), _id("32032419900101002")


def _csv(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture
def county(tmp_path, store_settings):
    """A welfare list (a split group cell, a code only the county's table has, a code nobody
    knows, an end date past and one to come, a village only in the grid code) and a rental
    registry naming a tenant, a landlord (one of the welfare persons, and one known nowhere
    else) and a registered address; run through extract, standardize, check and link."""
    project, data = make_project(tmp_path / "project"), tmp_path / "data"
    sources = project / "sources"
    (sources / "welfare.yaml").write_text(WELFARE, encoding="utf-8")
    (sources / "rental.yaml").write_text(RENTAL, encoding="utf-8")
    (project / "codes").mkdir()
    (project / "codes/groups.yaml").write_text(COUNTY_GROUPS, encoding="utf-8")
    (project / "divisions.csv").write_text(REGISTRY, encoding="utf-8")
    (project / "divisions.yaml").write_text(
        "path: divisions.csv\nedition: test\nreference_date: 2026-01-01\nsynthetic: true\n",
        encoding="utf-8",
    )
    grid = VILLAGE + "003"
    _csv(data / "welfare/名册_20260131.csv", [
        "编号,证号,姓名,类别,网格编码,离开日期",
        f"W1,{A},张伟,高龄补贴、城乡低保,{grid},",
        f"W2,{B},王芳,特困供养,{grid},2026/01/15",
        f"W3,{C},李娜,居家养老服务,{grid},2026/03/01",
        f"W4,{D},赵强,临时救助,{grid},",
    ])  # fmt: skip
    _csv(data / "rental/出租_20260131.csv", [
        "编号,承租人姓名,承租人证件号码,房东姓名,房东证件号码,房东村代码,房东户籍地址,房屋地址",
        f"R1,孙丽,{T},张伟,{A},{OTHER_VILLAGE},王集镇南许村十一组38号,凌城镇凌东村三组5号",
        f"R2,孙丽,{T},周杰,{E},{OTHER_VILLAGE},,人民路8号",
    ])  # fmt: skip
    ctx = RunContext.create(
        "2026-01",
        new_run_id(Period.parse("2026-01")),
        environ(store_settings, project, data, tmp_path / "out"),
    )
    results = {stage: STAGES[stage](ctx) for stage in ("extract", "standardize", "check", "link")}
    return ctx, results


def _query(ctx, sql: str, params: list | None = None) -> list[tuple]:
    with open_store(ctx.store) as con:
        return con.execute(sql, params or []).fetchall()


def _person(ctx, source: str, key: str) -> str:
    rows = _query(
        ctx,
        "SELECT person_id FROM core.person_registry WHERE source = ? AND record_key = ?",
        [source, key],
    )
    assert len(rows) == 1
    return rows[0][0]


def test_staging_holds_split_cells_derived_columns_roles_and_end_dates(county):
    ctx, results = county
    assert results["standardize"]["welfare"]["quarantined"] == 1
    staged = _query(
        ctx,
        'SELECT _record_key, id_number, reference_number, "group", village_code, _ended '
        "FROM staging.welfare ORDER BY 1",
    )
    assert staged == [
        ("W1", A, A, ["高龄津贴", "低保"], VILLAGE, False),
        ("W2", B, B, ["特困"], VILLAGE, True),  # left on 2026-01-15, by the period's end
        ("W3", C, C, ["居家养老服务"], VILLAGE, False),  # leaves in March: not yet
    ]
    rental = _query(
        ctx,
        "SELECT _record_key, id_number, landlord__id_number, landlord__village_code, "
        "registered_address__standard_address, village_code, _flags FROM staging.rental ORDER BY 1",
    )
    assert rental == [
        ("R1", T, A, OTHER_VILLAGE, "王集镇南许村十一组38号", VILLAGE, []),  # read from its address
        ("R2", T, E, OTHER_VILLAGE, None, None, ["village_code:village_not_named"]),
    ]
    assert results["standardize"]["rental"]["addresses_unplaced"] == {"village_not_named": 1}


def test_an_unknown_code_the_mapping_quarantines_is_held_with_its_reason(county):
    ctx, _ = county
    rows = _query(
        ctx,
        "SELECT source, field, reason FROM quarantine.rows WHERE stage = 'standardize'",
    )
    assert rows == [(
        "welfare", "类别",
        "source welfare, record W4, column 类别: code '临时救助' is not in the mapping's codes "
        "(code table groups); the mapping says `unknown: quarantine`",
    )]  # fmt: skip
    accounting = _query(
        ctx,
        "SELECT rows_read, rows_kept, rows_quarantined FROM meta.accounting "
        "WHERE stage = 'standardize' AND source = 'welfare'",
    )
    assert accounting == [(4, 3, 1)]
    assert _query(ctx, "SELECT count(*) FROM core.person_registry WHERE record_key = 'W4'") == [
        (0,)
    ]


def test_the_check_stage_takes_the_county_code_table(county):
    ctx, results = county
    assert results["check"]["welfare"]["failed"] == 0  # 高龄津贴, 居家养老服务 are the county's
    (rule,) = _query(
        ctx,
        "SELECT element_count, unexpected_count FROM quality.results "
        "WHERE rule_id = 'group_membership.group.values'",
    )
    assert rule == (4, 0)  # one value per group of a split cell


def test_one_group_period_row_per_person_and_group(county):
    ctx, _ = county
    a, c = _person(ctx, "welfare", "W1"), _person(ctx, "welfare", "W3")
    groups = _query(ctx, 'SELECT person_id, "group", source FROM core.group_period ORDER BY 1, 2')
    assert sorted(groups) == sorted([
        (a, "低保", "welfare"), (a, "高龄津贴", "welfare"), (c, "居家养老服务", "welfare"),
    ])  # fmt: skip


def test_a_landlord_is_linked_but_neither_placed_nor_made_active(county):
    ctx, _ = county
    a = _person(ctx, "welfare", "W1")
    assert _person(ctx, "rental", "R1#landlord") == a  # linked with the same person's record
    e = _person(ctx, "rental", "R2#landlord")
    tenant = _person(ctx, "rental", "R1")
    assert _person(ctx, "rental", "R2") == tenant
    people = {
        p: rest
        for p, *rest in _query(
            ctx, "SELECT person_id, active, village_code, residence_type FROM core.person_period"
        )
    }
    assert people[a] == [True, VILLAGE, "流动人口"]  # the landlord's village code places no one
    assert people[e] == [False, None, None]  # known only as a landlord
    # the rented home's address places the tenant; no record says their 户口 is here
    assert people[tenant] == [True, VILLAGE, "流动人口"]
    assert people[_person(ctx, "welfare", "W2")][0] is False  # ended by its end date


def test_a_derived_column_the_department_also_sends_stops_the_stage(tmp_path):
    source = _load(tmp_path, DERIVED.format(expression="substr(网格编码, 1, 12)")).sources["s"]
    with pytest.raises(ContractError, match="derived column\\(s\\) 村代码 are also columns"):
        staging.rows_sql(source, Period.parse("2026-01"), {"编号", "网格编码", "村代码"})
    assert '(substr(网格编码, 1, 12)) AS "村代码"' in staging.rows_sql(
        source, Period.parse("2026-01"), {"编号", "网格编码"}
    )


def test_an_end_date_ends_a_record_from_its_period(tmp_path):
    body = (
        "ended_on: {column: 离开日期, formats: ['%d.%m.%Y']}\ncolumns:\n  姓名: {to: person.name}\n"
    )
    source = _load(tmp_path, body).sources["s"]
    frame = pd.DataFrame({"离开日期": ["31.01.2026", "01.02.2026", None, "不详", "2025-12-01"]})
    ended, flags = staging._ended_on(source, frame, Period.parse("2026-01"))
    assert ended.tolist() == [True, False, False, False, True]
    assert flags == [(), (), (), ("ended_on:date_unreadable",), ()]
