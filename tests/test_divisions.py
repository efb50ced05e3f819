"""The shipped Jiangsu registry loads with its documented counts; bad rows are named."""

import pytest

from onetable.schemas.contracts import ContractError, load_contracts
from onetable.schemas.divisions import children, load_divisions, name_of, registry


def test_shipped_registry():
    divisions = registry(load_contracts())
    assert divisions["level"].value_counts().to_dict() == {
        "village": 22173, "township": 1533, "county": 106, "city": 13,
    }  # fmt: skip
    assert name_of(divisions, "320324") == "睢宁县"
    assert name_of(divisions, "999999") is None
    towns = children(divisions, "320324", "township")
    assert len(towns) > 10 and towns["code"].str.startswith("320324").all()


def test_bad_rows_name_row_and_field(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(
        "level,code,name,county_code,parent_code,parent_name\n"
        "county,320324,睢宁县,320324,320300,徐州市\n"
        "township,32032410,某镇,320324,320324,睢宁县\n"
        "hamlet,,某组,320324,,\n",
        encoding="utf-8",
    )
    with pytest.raises(ContractError) as info:
        load_divisions(path)
    assert "row 3: code: a township code is 9 digits, got '32032410'" in str(info.value)
    assert "row 4: level: 'hamlet'" in str(info.value)


def test_missing_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("level,code,name\ncity,320300,徐州市\n", encoding="utf-8")
    with pytest.raises(ContractError, match="missing column"):
        load_divisions(path)
