"""Table-driven cases for every standardizer."""

import pytest

from onetable.demo.formats import RENTAL_STYLES, address_text, rental_address
from onetable.linkage import standardize as st
from onetable.schemas.rules import id_check_char

BODY = "32032419800307123"
VALID = BODY + "3"  # its check character, asserted below


def with_check(body17: str) -> str:
    return body17 + id_check_char(body17)


def test_body_check_char():
    assert id_check_char(BODY) == "3"


@pytest.mark.parametrize(
    "raw, value, flags",
    [
        pytest.param("320324198003071233", VALID, (), id="valid"),
        pytest.param("３２０３２４１９８００３０７１２３３", VALID, (), id="full-width-digits"),
        pytest.param(" 320324 19800307 1233 ", VALID, (), id="spaces"),
        pytest.param("'320324198003071233", VALID, (), id="spreadsheet-apostrophe"),
        pytest.param("‘320324198003071233’", VALID, (), id="curly-quotes"),
        pytest.param("3.20324198003071E+17", None, ("id_scientific",), id="scientific"),
        pytest.param("3.20324E17", None, ("id_scientific",), id="scientific-short"),
        pytest.param("11010519491231002x", "11010519491231002X", (), id="lower-case-x"),
        pytest.param("11010519491231002ｘ", "11010519491231002X", (), id="full-width-x"),
        pytest.param(
            "32032419800307123341", VALID, ("id_from_disability_card",), id="disability-card-20"
        ),
        pytest.param(
            "11010519491231002X11",
            "11010519491231002X",
            ("id_from_disability_card",),
            id="disability-card-20-with-x",
        ),
        pytest.param("340524800101001", "34052419800101001X", ("id_upgraded_15",), id="legacy-15"),
        pytest.param(
            "320324198003071232", "320324198003071232", ("id_bad_checksum",), id="bad-checksum"
        ),
        pytest.param(
            "320324198013071231",
            "320324198013071231",
            ("id_bad_date", "id_bad_checksum"),
            id="month-13",
        ),
        pytest.param(
            with_check("32032419800230123"),
            with_check("32032419800230123"),
            ("id_bad_date",),
            id="february-30",
        ),
        pytest.param(
            with_check("32032429990101123"),
            with_check("32032429990101123"),
            ("id_bad_date",),
            id="birth-in-future",
        ),
        pytest.param(
            with_check("32068419800307123"),
            with_check("32068419800307123"),
            (),
            id="abolished-area-code",
        ),
        pytest.param(
            with_check("99999919800307123"), with_check("99999919800307123"), (), id="unknown-area"
        ),
        pytest.param("32032419800307", None, ("id_malformed",), id="too-short"),
        pytest.param("٣٢٠٣٢٤١٩٨٠٠٣٠٧١", None, ("id_malformed",), id="non-latin-digits-15"),
        pytest.param("", None, ("id_missing",), id="empty"),
        pytest.param(None, None, ("id_missing",), id="none"),
    ],
)
def test_id_number(raw, value, flags):
    assert st.id_number(raw) == (value, flags)


@pytest.mark.parametrize(
    "id18, expected",
    [
        pytest.param(VALID, ("1980-03-07", "1"), id="male-odd-17th"),
        pytest.param("11010519491231002X", ("1949-12-31", "2"), id="female-even-17th"),
        pytest.param("320324198013071231", (None, "1"), id="no-calendar-date"),
        pytest.param("3203241980030712", (None, None), id="malformed"),
        pytest.param(None, (None, None), id="none"),
    ],
)
def test_id_facts(id18, expected):
    assert st.id_facts(id18) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param("男", ("1", ()), id="男"),
        pytest.param("女", ("2", ()), id="女"),
        pytest.param(" 男性 ", ("1", ()), id="男性-spaces"),
        pytest.param("女性", ("2", ()), id="女性"),
        pytest.param("1", ("1", ()), id="code-1"),
        pytest.param("２", ("2", ()), id="full-width-code-2"),
        pytest.param("M", ("1", ()), id="M"),
        pytest.param("f", ("2", ()), id="lower-f"),
        pytest.param("Ｆ", ("2", ()), id="full-width-F"),
        pytest.param("Male", ("1", ()), id="Male"),
        pytest.param("FEMALE", ("2", ()), id="FEMALE"),
        pytest.param("未知", (None, ("sex_unknown",)), id="未知"),
        pytest.param("9", (None, ("sex_unknown",)), id="code-9-unstated"),
        pytest.param("", (None, ("sex_missing",)), id="empty"),
        pytest.param(None, (None, ("sex_missing",)), id="none"),
    ],
)
def test_sex(raw, expected):
    assert st.sex(raw) == expected


@pytest.mark.parametrize(
    "id18, born, sex, expected",
    [
        pytest.param(VALID, "1980-03-07", "1", (), id="agree"),
        pytest.param(VALID, "1980-03-08", "1", ("id_birth_mismatch",), id="birth-differs"),
        pytest.param(VALID, "1980-03-07", "2", ("id_sex_mismatch",), id="sex-differs"),
        pytest.param(
            VALID, "1979-03-07", "2", ("id_birth_mismatch", "id_sex_mismatch"), id="both-differ"
        ),
        pytest.param(VALID, None, None, (), id="nothing-stated"),
        # a newborn girl's record under her father's number: the number is another person's
        pytest.param(
            VALID,
            "2026-01-05",
            "2",
            ("id_birth_mismatch", "id_sex_mismatch", "id_of_another"),
            id="a-relatives-number",
        ),
        pytest.param(
            VALID, "2026-01-05", None, ("id_birth_mismatch", "id_of_another"), id="decades-away"
        ),
        pytest.param(VALID, None, "2", ("id_sex_mismatch", "id_of_another"), id="sex-unconfirmed"),
        pytest.param(VALID, "1980-07-03", "1", ("id_birth_mismatch",), id="day-month-typo"),
        pytest.param(VALID, "1986-03-07", "1", ("id_birth_mismatch",), id="one-digit-typo"),
        pytest.param(VALID, "1908-03-07", "1", ("id_birth_mismatch",), id="adjacent-swap"),
        pytest.param(None, "1980-03-07", "2", (), id="no-id"),
        pytest.param("320324198013071231", "1980-03-07", None, (), id="id-without-date"),
    ],
)
def test_id_consistency(id18, born, sex, expected):
    assert st.id_consistency(id18, born, sex) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param("91110000600037341L", ("91110000600037341L", ()), id="valid"),
        pytest.param(
            "９１１１００００６０００３７３４１Ｌ", ("91110000600037341L", ()), id="full-width"
        ),
        pytest.param("91110000600037341l", ("91110000600037341L", ()), id="lower-case"),
        pytest.param(" 9111 0000 6000 3734 1L ", ("91110000600037341L", ()), id="spaces"),
        pytest.param(
            "91110000600037341M", ("91110000600037341M", ("code_bad_checksum",)), id="bad-check"
        ),
        pytest.param(
            "91110000600037341O", ("91110000600037341O", ("code_bad_checksum",)), id="letter-O"
        ),
        pytest.param("9111000060003734", (None, ("code_malformed",)), id="too-short"),
        pytest.param("", (None, ("code_missing",)), id="empty"),
    ],
)
def test_credit_code(raw, expected):
    assert st.credit_code(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param("张三", ("张三", ()), id="plain"),
        pytest.param("张 三", ("张三", ()), id="inner-space"),
        pytest.param("张\u3000三 ", ("张三", ()), id="ideographic-space"),
        pytest.param("ＡＢＣ", ("ABC", ()), id="full-width-latin"),
        pytest.param("买买提•艾力", ("买买提·艾力", ()), id="bullet"),
        pytest.param("买买提.艾力", ("买买提·艾力", ()), id="full-stop"),
        pytest.param("买买提．艾力", ("买买提·艾力", ()), id="full-width-full-stop"),
        pytest.param("买买提・艾力", ("买买提·艾力", ()), id="katakana-middle-dot"),
        pytest.param("买买提･艾力", ("买买提·艾力", ()), id="half-width-katakana-middle-dot"),
        pytest.param("买买提‧艾力", ("买买提·艾力", ()), id="hyphenation-point"),
        pytest.param("买买提∙艾力", ("买买提·艾力", ()), id="bullet-operator"),
        pytest.param("买买提⋅艾力", ("买买提·艾力", ()), id="dot-operator"),
        pytest.param("阿依古丽 · 吐尔逊", ("阿依古丽·吐尔逊", ()), id="spaced-dot"),
        pytest.param("·艾力·", ("艾力", ()), id="dots-at-ends"),
        pytest.param("張偉", ("张伟", ("name_traditional",)), id="traditional-張偉"),
        pytest.param("陳", ("陈", ("name_traditional",)), id="traditional-陳"),
        pytest.param("劉", ("刘", ("name_traditional",)), id="traditional-劉"),
        pytest.param("黃", ("黄", ("name_traditional",)), id="traditional-黃"),
        pytest.param("鄭", ("郑", ("name_traditional",)), id="traditional-鄭"),
        pytest.param("歐陽 麗", ("欧阳丽", ("name_traditional",)), id="traditional-spaced"),
        pytest.param("  ", (None, ("name_missing",)), id="blank"),
        pytest.param(None, (None, ("name_missing",)), id="none"),
    ],
)
def test_name(raw, expected):
    assert st.name(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param("1950-03-02", ("1950-03-02", ()), id="iso"),
        pytest.param("19500302", ("1950-03-02", ()), id="compact"),
        pytest.param("1950年3月2日", ("1950-03-02", ()), id="chinese"),
        pytest.param("１９５０年３月２日", ("1950-03-02", ()), id="chinese-full-width"),
        pytest.param("1950/3/2", ("1950-03-02", ()), id="slashes"),
        pytest.param("1950.3.2", ("1950-03-02", ()), id="dots"),
        pytest.param("2026-01-05 10:00:00", ("2026-01-05", ()), id="datetime"),
        pytest.param("1950-03-02T00:00:00Z", ("1950-03-02", ()), id="datetime-iso-t"),
        pytest.param("1950/3/2 0:00:00", ("1950-03-02", ()), id="datetime-spreadsheet"),
        pytest.param("18324", ("1950-03-02", ("date_excel_serial",)), id="excel-serial"),
        pytest.param("44927", ("2023-01-01", ("date_excel_serial",)), id="excel-serial-2023"),
        pytest.param("18324.5", ("1950-03-02", ("date_excel_serial",)), id="excel-serial-time"),
        pytest.param("61", (None, ("date_unreadable",)), id="short-number"),
        pytest.param("1950", (None, ("date_unreadable",)), id="year-only-not-serial"),
        pytest.param("1950-02-30", (None, ("date_impossible",)), id="february-30"),
        pytest.param("19501302", (None, ("date_impossible",)), id="month-13"),
        pytest.param("1950年13月2日", (None, ("date_impossible",)), id="month-13-chinese"),
        pytest.param("1899-12-31", ("1899-12-31", ("date_implausible",)), id="before-1900"),
        pytest.param("2999-01-01", ("2999-01-01", ("date_implausible",)), id="future"),
        pytest.param(
            "99999", ("2173-10-13", ("date_excel_serial", "date_implausible")), id="serial-future"
        ),
        pytest.param("三月二日", (None, ("date_unreadable",)), id="words"),
        pytest.param("", (None, ("date_missing",)), id="empty"),
        pytest.param(None, (None, ("date_missing",)), id="none"),
    ],
)
def test_parse_date(raw, expected):
    assert st.parse_date(raw) == expected


def test_declared_date_format_first():
    assert st.parse_date("02/03/1950", ("%d/%m/%Y",)) == ("1950-03-02", ())
    assert st.parse_date("02/03/1850", ("%d/%m/%Y",)) == ("1850-03-02", ("date_implausible",))


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param("13912345678", ("13912345678", ()), id="mobile"),
        pytest.param("+86 139 1234 5678", ("13912345678", ()), id="mobile-plus86-spaces"),
        pytest.param("008613912345678", ("13912345678", ()), id="mobile-0086"),
        pytest.param("8613912345678", ("13912345678", ()), id="mobile-86"),
        pytest.param("139-1234-5678", ("13912345678", ()), id="mobile-dashes"),
        pytest.param("１３９１２３４５６７８", ("13912345678", ()), id="mobile-full-width"),
        pytest.param("0516-88881234", ("0516-88881234", ()), id="landline"),
        pytest.param("(0516)88881234", ("0516-88881234", ()), id="landline-parentheses"),
        pytest.param(
            "（０５１６）８８８８１２３４", ("0516-88881234", ()), id="landline-full-width"
        ),
        pytest.param("051688881234", ("0516-88881234", ()), id="landline-run-on"),
        pytest.param("0516-8888123", ("0516-8888123", ()), id="landline-7-digits"),
        pytest.param("025-88881234", ("025-88881234", ()), id="area-025"),
        pytest.param("02588881234", ("025-88881234", ()), id="area-025-run-on"),
        pytest.param("010 8888 1234", ("010-88881234", ()), id="area-010"),
        pytest.param("+86 25 8888 1234", ("025-88881234", ()), id="landline-plus86"),
        pytest.param("+86-516-88881234", ("0516-88881234", ()), id="landline-plus86-4"),
        pytest.param("88881234", ("88881234", ("phone_no_area_code",)), id="no-area-8"),
        pytest.param("8888123", ("8888123", ("phone_no_area_code",)), id="no-area-7"),
        pytest.param(
            "0516-88881234转123", ("0516-88881234", ("phone_extension",)), id="extension-转"
        ),
        pytest.param(
            "0516-88881234分机 8", ("0516-88881234", ("phone_extension",)), id="extension-分机"
        ),
        pytest.param(
            "0516-88881234-123", ("0516-88881234", ("phone_extension",)), id="extension-dash"
        ),
        pytest.param(
            "88881234-12",
            ("88881234", ("phone_extension", "phone_no_area_code")),
            id="extension-no-area",
        ),
        pytest.param("12345", (None, ("phone_invalid",)), id="too-short"),
        pytest.param("1391234567", (None, ("phone_invalid",)), id="mobile-10-digits"),
        pytest.param("0516-123", (None, ("phone_invalid",)), id="landline-too-short"),
        pytest.param(None, (None, ("phone_missing",)), id="none"),
    ],
)
def test_phone(raw, expected):
    assert st.phone(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param("王集镇南许村十一组38号", "南许村11组38号", id="group-numeral"),
        pytest.param("王集镇南许村11组三十八号", "南许村11组38号", id="door-numeral"),
        pytest.param("王集镇南许村 十一组 38号", "南许村11组38号", id="spaces"),
        pytest.param("人民路二百零六号", "人民路206号", id="door-numeral-hundreds"),
        pytest.param(
            "江苏省徐州市睢宁县睢城街道七井社区滨河路134号", "七井社区滨河路134号", id="divisions"
        ),
        pytest.param(
            "徐州市睢宁县双沟镇双东社区永安路366号", "双东社区永安路366号", id="city-town"
        ),
        pytest.param("七井社区滨河路134号", "七井社区滨河路134号", id="社区-not-a-district"),
        pytest.param("新城小区2幢1单元501室", "新城小区2幢1单元501室", id="小区-not-a-district"),
        pytest.param("南京市鼓楼区中山路1号", "中山路1号", id="city-district"),
        pytest.param(
            "人民路226号凤凰公寓3幢1单元201室", "人民路226号凤凰公寓3幢1单元201室", id="standard"
        ),
        pytest.param(
            "人民路226号凤凰公寓3栋1单元201", "人民路226号凤凰公寓3幢1单元201室", id="栋-no-室"
        ),
        pytest.param(
            "人民路226号凤凰公寓3号楼1单元201室", "人民路226号凤凰公寓3幢1单元201室", id="号楼"
        ),
        pytest.param("人民路226号凤凰公寓3-1-201", "人民路226号凤凰公寓3幢1单元201室", id="dashes"),
        pytest.param(
            "人民路226号凤凰公寓3－1－201室",
            "人民路226号凤凰公寓3幢1单元201室",
            id="full-width-dashes",
        ),
        pytest.param(
            "人民路226号凤凰公寓三幢一单元201室",
            "人民路226号凤凰公寓3幢1单元201室",
            id="building-numerals",
        ),
        pytest.param("凤凰公寓3幢1单元二〇一室", "凤凰公寓3幢1单元201室", id="room-digit-by-digit"),
        pytest.param("凤凰公寓3幢1单元201号", "凤凰公寓3幢1单元201室", id="room-as-号"),
        pytest.param("八一路十里铺一组2号", "八一路十里铺1组2号", id="place-names-kept"),
        pytest.param("南许村第十一村民小组38号", "南许村11组38号", id="村民小组"),
        pytest.param("南许村第11组38号", "南许村11组38号", id="第X组"),
        pytest.param("南许村十一队38号", "南许村11组38号", id="生产队"),
        pytest.param("南许村11小组38号", "南许村11组38号", id="小组"),
        pytest.param("南许村车队路5号", "南许村车队路5号", id="队-in-a-street-name"),
        pytest.param("人民路226-228号", "人民路226-228号", id="door-range-kept"),
    ],
)
def test_address(raw, expected):
    assert st.address(raw) == (expected, ())


def test_empty_address():
    assert st.address(" ") == (None, ("address_missing",))
    assert st.address(None) == (None, ("address_missing",))


_VILLAGE_HOUSE = {
    "standard_address": "江苏省徐州市睢宁县王集镇南许村十一组38号",
    "township_name": "王集镇",
    "village_name": "南许村",
    "group_name": "十一组",
    "road": None,
    "door_no": "38",
    "compound": None,
}
_FLAT = {
    "standard_address": "江苏省徐州市睢宁县王集镇人民社区人民路226号凤凰公寓3幢1单元201室",
    "township_name": "王集镇",
    "village_name": "人民社区",
    "group_name": None,
    "road": "人民路",
    "door_no": "226",
    "compound": "凤凰公寓",
    "building": "3",
    "unit": "1",
    "room": "201",
}


@pytest.mark.parametrize("style", RENTAL_STYLES)
@pytest.mark.parametrize(
    "house, standard",
    [(_VILLAGE_HOUSE, "南许村11组38号"), (_FLAT, "人民社区人民路226号凤凰公寓3幢1单元201室")],
    ids=["village-house", "flat"],
)
def test_address_meets_demo_rental_styles(house, standard, style):
    """Each way the demo's rental registry writes an address standardizes to the standard one,
    written out here: a standardizer that mangled both the same way would still make them equal."""
    assert st.address(address_text(house, "county")) == (standard, ())
    assert st.address(rental_address(house, style)) == (standard, ())


def test_code_integer_text():
    values = {"城乡低保": "低保", "特困供养": "特困"}
    assert st.code("城乡低保", values) == ("低保", ())
    assert st.code("低保", values) == ("低保", ())
    assert st.code("临时救助", values) == ("临时救助", ("code_unknown",))
    assert st.integer("1,200") == ("1200", ())
    assert st.integer("3.0") == ("3", ())
    assert st.integer("三") == (None, ("integer_invalid",))
    assert st.text("  人民路  226号 ") == ("人民路 226号", ())


@pytest.mark.parametrize(
    "name, key",
    [
        pytest.param("王伟", "wang wei", id="王伟"),
        pytest.param("王纬", "wang wei", id="homophone-王纬"),
        pytest.param("买买提·艾力", "mai mai ti · ai li", id="interpunct"),
        pytest.param("张ABC", "zhang ABC", id="latin-run"),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
    ],
)
def test_pinyin_key(name, key):
    assert st.pinyin_key(name) == key


def test_pinyin_key_tells_names_apart():
    assert st.pinyin_key("李娜") != st.pinyin_key("李妍")


@pytest.mark.parametrize("char", ["单", "曾", "长", "乐", "朴", "解", "查", "区"])
def test_pinyin_key_reads_a_character_one_way(char):
    """A polyphonic character gets one reading wherever it stands, so a name's key does not
    depend on its neighbours."""
    alone = st.pinyin_key(char)
    assert st.pinyin_key(char + "伟") == f"{alone} wei"
    assert st.pinyin_key("王" + char) == f"wang {alone}"
    assert st.pinyin_key(char + char) == f"{alone} {alone}"
