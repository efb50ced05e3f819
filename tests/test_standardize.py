"""Table-driven cases for every standardizer."""

import pytest

from onetable.linkage import standardize as st

BODY = "32032419800307123"
VALID = BODY + "3"  # its check character, asserted below


def test_body_check_char():
    from onetable.schemas.rules import id_check_char

    assert id_check_char(BODY) == "3"


@pytest.mark.parametrize(
    "raw, value, flags",
    [
        ("320324198003071233", VALID, ()),
        ("３２０３２４１９８００３０７１２３３", VALID, ()),  # full-width digits
        (" 320324 19800307 1233 ", VALID, ()),  # spaces
        ("'320324198003071233", VALID, ()),  # a spreadsheet's text apostrophe
        ("3.20324198003071E+17", None, ("id_scientific",)),
        ("11010519491231002x", "11010519491231002X", ()),  # lower-case x
        (
            "32032419800307123341",
            VALID,
            ("id_from_disability_card",),
        ),  # 残疾人证号: + category + grade
        ("340524800101001", "34052419800101001X", ("id_upgraded_15",)),
        ("320324198003071232", "320324198003071232", ("id_bad_checksum",)),
        ("320324198013071231", "320324198013071231", ("id_bad_date", "id_bad_checksum")),
        ("32032419800307", None, ("id_malformed",)),
        ("", None, ("id_missing",)),
        (None, None, ("id_missing",)),
        ("999999198003071233", None, None),  # an unknown area code is no error: checked below
    ],
)
def test_id_number(raw, value, flags):
    if flags is None:
        got, got_flags = st.id_number(raw)
        assert got == raw and "id_malformed" not in got_flags
        return
    assert st.id_number(raw) == (value, flags)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("91110000600037341L", ("91110000600037341L", ())),
        (" 91110000600037341l ", ("91110000600037341L", ())),
        ("91110000600037341M", ("91110000600037341M", ("code_bad_checksum",))),
        ("9111000060003734", (None, ("code_malformed",))),
        ("", (None, ("code_missing",))),
    ],
)
def test_credit_code(raw, expected):
    assert st.credit_code(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("张三", "张三"),
        ("张 三", "张三"),
        ("张\u3000三 ", "张三"),
        ("买买提•艾力", "买买提·艾力"),
        ("买买提.艾力", "买买提·艾力"),
        ("买买提・艾力", "买买提·艾力"),
        ("阿依古丽 · 吐尔逊", "阿依古丽·吐尔逊"),
        ("ＡＢＣ", "ABC"),
    ],
)
def test_name(raw, expected):
    assert st.name(raw) == (expected, ())


def test_empty_name():
    assert st.name("  ") == (None, ("name_missing",))


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1950-03-02", ("1950-03-02", ())),
        ("19500302", ("1950-03-02", ())),
        ("1950年3月2日", ("1950-03-02", ())),
        ("1950/3/2", ("1950-03-02", ())),
        ("1950.3.2", ("1950-03-02", ())),
        ("2026-01-05 10:00:00", ("2026-01-05", ())),
        ("１９５０年３月２日", ("1950-03-02", ())),
        ("18324", ("1950-03-02", ("date_excel_serial",))),
        ("1950-02-30", (None, ("date_impossible",))),
        ("19501302", (None, ("date_impossible",))),
        ("三月二日", (None, ("date_unreadable",))),
        ("", (None, ("date_missing",))),
    ],
)
def test_parse_date(raw, expected):
    assert st.parse_date(raw) == expected


def test_declared_date_format_first():
    assert st.parse_date("02/03/1950", ("%d/%m/%Y",)) == ("1950-03-02", ())


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("13912345678", ("13912345678", ())),
        ("+86 139 1234 5678", ("13912345678", ())),
        ("139-1234-5678", ("13912345678", ())),
        ("008613912345678", ("13912345678", ())),
        ("0516-88881234", ("0516-88881234", ())),
        ("(0516)88881234", ("0516-88881234", ())),
        ("12345", (None, ("phone_invalid",))),
        (None, (None, ("phone_missing",))),
    ],
)
def test_phone(raw, expected):
    assert st.phone(raw) == expected


def test_code_integer_text():
    values = {"城乡低保": "低保", "特困供养": "特困"}
    assert st.code("城乡低保", values) == ("低保", ())
    assert st.code("低保", values) == ("低保", ())
    assert st.code("临时救助", values) == ("临时救助", ("code_unknown",))
    assert st.integer("1,200") == ("1200", ())
    assert st.integer("3.0") == ("3", ())
    assert st.integer("三") == (None, ("integer_invalid",))
    assert st.text("  人民路  226号 ") == ("人民路 226号", ())


def test_pinyin_key_joins_homophones():
    assert st.pinyin_key("王伟") == st.pinyin_key("王纬") == "wang wei"
    assert st.pinyin_key("李娜") != st.pinyin_key("李妍")
    assert st.pinyin_key("买买提·艾力") == "mai mai ti · ai li"
    assert st.pinyin_key(None) is None
