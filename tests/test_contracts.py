"""Contracts load into typed models; every error names the file, the key and what is expected."""

import shutil
from pathlib import Path

import pytest

from onetable.schemas.contracts import SHIPPED, ContractError, load_contracts

FIXTURES = Path(__file__).parent / "fixtures" / "contracts"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A writable copy of the shipped contracts with the example source mapping."""
    dest = tmp_path / "contracts"
    shutil.copytree(SHIPPED, dest, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(FIXTURES / "sources", dest / "sources")
    return dest


def test_shipped_contracts_load():
    contracts = load_contracts()
    assert set(contracts.entities) == {
        "person", "registered_household", "living_household", "address", "house", "unit",
        "group_membership", "key_place", "rental",
    }  # fmt: skip
    person = contracts.entities["person"]
    assert person.columns["id_number"].rule.checksum == "cn_id_number"
    assert person.columns["id_number"].level == "sensitive_personal"
    assert list(person.all_columns())[-3:] == ["valid_from", "valid_to", "recorded_at"]
    assert contracts.divisions.resolve(contracts.root).exists()
    assert not contracts.divisions.synthetic


def test_every_column_has_a_known_category_and_level():
    contracts = load_contracts()
    levels = {lv.id for lv in contracts.classification.levels}
    for entity in contracts.entities.values():
        for column in entity.all_columns().values():
            assert column.level in levels
            assert column.category in contracts.classification.categories


def test_example_source_mapping(root):
    source = load_contracts(root).sources["civil_affairs"]
    assert source.record_key.column == "救助编号"
    assert source.location.kind == "file" and source.location.encoding == "gb18030"
    assert source.deleted.values == ["注销", "停保"]
    assert source.targets("身份证号") == [("person", "id_number")]
    assert source.targets("救助编号") == [("group_membership", "reference_number")]


def test_the_entity_key_is_not_mapped(root):
    _edit(root / "sources/civil_affairs.yaml", "{to: reference_number}", "{to: person.person_id}")
    _expect(root, "columns.救助编号.to: 'person_id' is the key of entity 'person'", "record_key")


def test_qualified_target_must_exist(root):
    _edit(root / "sources/civil_affairs.yaml", "{to: person.id_number", "{to: persons.id_number")
    _expect(root, "columns.身份证号.to: 'persons.id_number' names no entity")
    _edit(root / "sources/civil_affairs.yaml", "{to: persons.id_number", "{to: person.id_no")
    _expect(root, "columns.身份证号.to: 'id_no' is not a column of entity 'person'")


def _expect(root: Path, *fragments: str) -> str:
    with pytest.raises(ContractError) as info:
        load_contracts(root)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_unknown_level_names_file_key_and_choices(root):
    _edit(root / "entities/person.yaml", "category: 人口, level: personal, personal: name",
          "category: 人口, level: secret, personal: name")  # fmt: skip
    _expect(root, "entities/person.yaml", "columns.name.level", "'secret'", "sensitive_personal")


def test_wrong_type_names_the_key(root):
    _edit(root / "entities/unit.yaml", "credit_code: {type: string", "credit_code: {type: text")
    _expect(root, "entities/unit.yaml", "columns.credit_code.type", "'string'")


def test_unknown_key_is_refused(root):
    _edit(root / "entities/house.yaml", "key: [house_id]", "key: [house_id]\nprimary: true")
    _expect(root, "entities/house.yaml", "primary", "Extra inputs are not permitted")


def test_bad_yaml_names_the_line(root):
    (root / "entities/house.yaml").write_text("entity: house\ncolumns: [a\n", encoding="utf-8")
    _expect(root, "entities/house.yaml", "line 3", "not valid YAML")


def test_entity_name_must_match_file(root):
    _edit(root / "entities/house.yaml", "entity: house", "entity: houses")
    _expect(root, "entities/house.yaml", "must equal the file name 'house'")


def test_key_column_must_exist(root):
    _edit(root / "entities/house.yaml", "key: [house_id]", "key: [house_no]")
    _expect(root, "entities/house.yaml", "key column(s) ['house_no']")


def test_source_maps_to_unknown_entity_column(root):
    _edit(root / "sources/civil_affairs.yaml", "{to: reference_number}", "{to: assistance_no}")
    _expect(root, "sources/civil_affairs.yaml", "columns.救助编号.to", "'assistance_no'",
            "'group_membership'")  # fmt: skip


def test_source_record_key_needs_exactly_one_form(root):
    _edit(root / "sources/civil_affairs.yaml", "{column: 救助编号}",
          "{column: 救助编号, hash_of: [姓名, 身份证号]}")  # fmt: skip
    _expect(
        root, "sources/civil_affairs.yaml", "record_key", "exactly one of `column` or `hash_of`"
    )


def test_cursor_mode_needs_a_cursor(root):
    _edit(root / "sources/civil_affairs.yaml", "{mode: snapshot}", "{mode: cursor}")
    _expect(root, "sources/civil_affairs.yaml", "read", "needs `cursor: <column>`")


def test_unknown_location_kind(root):
    _edit(root / "sources/civil_affairs.yaml", "kind: file", "kind: ftp")
    _expect(root, "sources/civil_affairs.yaml", "location", "'ftp'")


def test_missing_division_file(root):
    _edit(root / "divisions.yaml", "reference/jiangsu_divisions.csv", "reference/nowhere.csv")
    _expect(root, "divisions.yaml", "path", "does not exist")


def test_missing_classification_file(root):
    (root / "classification.yaml").unlink()
    _expect(root, "classification.yaml", "file not found")


def test_not_a_mapping(root):
    (root / "divisions.yaml").write_text("- a\n- b\n", encoding="utf-8")
    _expect(root, "divisions.yaml", "expected a mapping")


def test_several_problems_are_reported_together(root):
    _edit(
        root / "entities/person.yaml", "level: personal, personal: name", "level: x, personal: name"
    )
    _edit(root / "entities/person.yaml", "category: 人口, level: personal, personal: phone",
          "category: 电话, level: personal, personal: phone")  # fmt: skip
    message = _expect(root, "columns.name.level", "columns.phone.category")
    assert len(message.splitlines()) == 2


def test_one_table_contract(tmp_path):
    from onetable.schemas.one_table import load_one_table

    table = load_one_table()
    assert {i.id for i in table.indicators} >= {"RK01", "LN01", "LN02", "JZ01", "CJ01"}
    bad = tmp_path / "one_table.yaml"
    bad.write_text(
        (SHIPPED / "one_table.yaml").read_text(encoding="utf-8")
        + "  - {left: XX01, op: '<=', right: RK01}\n",
        encoding="utf-8",
    )
    with pytest.raises(ContractError, match=r"rules\.4: XX01 <= RK01: rules must name indicators"):
        load_one_table(bad)
    bad.write_text(
        (SHIPPED / "one_table.yaml")
        .read_text(encoding="utf-8")
        .replace('where: "active AND age >= 80"', 'where: "active AND agee >= 80"'),
        encoding="utf-8",
    )
    with pytest.raises(ContractError, match=r"indicators\.4\.where \(LN02\): .*agee"):
        load_one_table(bad)


def test_the_demo_mappings_load():
    from importlib.resources import files

    demo = Path(str(files("onetable.demo") / "deployments" / "variant1"))
    contracts = load_contracts(sources_dir=demo / "sources")
    assert len(contracts.sources) == 8
    assert contracts.sources["disability"].constants == {"group": "残疾"}


def test_an_error_in_a_deployments_mapping_names_that_file(tmp_path):
    mappings = tmp_path / "deployment" / "sources"
    shutil.copytree(FIXTURES / "sources", mappings)
    path = mappings / "civil_affairs.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("{to: reference_number}", "{to: assistance_no}"),
        encoding="utf-8",
    )
    with pytest.raises(ContractError) as caught:
        load_contracts(sources_dir=mappings)
    assert str(caught.value).startswith(f"{path}: columns.救助编号.to: 'assistance_no'")
    assert load_contracts(sources_dir=FIXTURES / "sources").source_file("civil_affairs") == (
        FIXTURES / "sources" / "civil_affairs.yaml"
    )
