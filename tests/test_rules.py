"""The identifier checksums, against the test vectors of docs/domain.md, "ID numbers" and
"Credit codes"."""

from datetime import date

import pytest

from onetable.schemas.rules import (
    credit_code_check_char,
    id_birth_date,
    id_check_char,
    id_sex,
    is_valid_credit_code,
    is_valid_id_number,
    upgrade_id15,
)


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014"])
def test_valid_id_numbers(number):
    assert is_valid_id_number(number)


def test_check_char_vector():
    assert id_check_char("34052419800101001") == "X"
    assert id_check_char("11010519491231002") == "X"


@pytest.mark.parametrize(
    "number, why",
    [
        ("110105194912310021", "wrong check character"),
        ("11010519491231002x", "lower-case x is normalised by the standardizer, not here"),
        ("11010519491331002X", "month 13"),
        ("1101051949123100", "too short"),
        ("11010520991231002X", "born in the future"),
        ("１１０１０５１９４９１２３１００２X", "full-width digits"),
    ],
)
def test_invalid_id_numbers(number, why):
    assert not is_valid_id_number(number, today=date(2026, 1, 1)), why


def test_unknown_area_code_is_not_an_error():
    body = "999999" + "19800101" + "001"
    assert is_valid_id_number(body + id_check_char(body))


def test_upgrade_legacy_15_digits():
    upgraded = upgrade_id15("340524800101001")
    assert upgraded == "34052419800101001X"
    assert is_valid_id_number(upgraded)
    with pytest.raises(ValueError):
        upgrade_id15("34052480010100")


def test_birth_date_and_sex():
    assert id_birth_date("11010519491231002X") == date(1949, 12, 31)
    assert id_birth_date("11010519490231002X") is None
    assert id_sex("11010519491231002X") == "女"  # 17th digit 2: even
    assert id_sex("440524188001010014") == "男"
    assert id_sex("340524800101001") == "男"  # 15 digits: the last digit is the sequence


def test_credit_code():
    assert is_valid_credit_code("91110000600037341L")
    assert credit_code_check_char("91110000600037341") == "L"
    assert not is_valid_credit_code("91110000600037341M")
    assert not is_valid_credit_code("91110000600037341I")  # I is not in the alphabet
    assert not is_valid_credit_code("9111000060003734")
    with pytest.raises(ValueError):
        credit_code_check_char("9111000060003734O")
