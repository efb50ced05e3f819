"""The village an address names (schemas/divisions.py `VillageNames`, linkage/standardize.py
`address_village`): read against a registry, for sources that know where a person lives only as
text. Names are 睢宁县's real ones (schemas/reference/jiangsu_divisions.csv); the codes, and a
second 王集村 under 王集镇, are made up for the test."""

from __future__ import annotations

import pandas as pd
import pytest

from onetable.linkage import standardize as st
from onetable.schemas.divisions import COLUMNS, village_names

LINGDONG, CHENGBEI, WANGJI_LC = "320324110201", "320324110002", "320324110203"
SHANGBA, WANGJI_WJ = "320324103201", "320324104201"
ROWS = [
    ("city", "320300", "徐州市", "", "320000", "江苏省"),
    ("county", "320324", "睢宁县", "320324", "320300", "徐州市"),
    ("county", "320312", "铜山区", "320312", "320300", "徐州市"),
    ("township", "320324110", "凌城镇", "320324", "320324", "睢宁县"),
    ("township", "320324103", "双沟镇", "320324", "320324", "睢宁县"),
    ("township", "320324104", "王集镇", "320324", "320324", "睢宁县"),
    ("village", LINGDONG, "凌东村", "320324", "320324110", "凌城镇"),
    ("village", CHENGBEI, "城北社区", "320324", "320324110", "凌城镇"),
    ("village", WANGJI_LC, "王集村", "320324", "320324110", "凌城镇"),
    ("village", SHANGBA, "上坝村", "320324", "320324103", "双沟镇"),
    ("village", WANGJI_WJ, "王集村", "320324", "320324104", "王集镇"),
    ("village", "", "凌南村", "320324", "320324110", "凌城镇"),  # no code: cannot be given
]
NAMES = village_names(pd.DataFrame(ROWS, columns=COLUMNS))


def _read(address: str | None) -> st.Result:
    return st.address_village(address, NAMES.village_of)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("江苏省徐州市睢宁县凌城镇凌东村三组12号", LINGDONG),
        ("凌东村3组12号", LINGDONG),  # from the village down
        ("凌城镇凌东村委会三组", LINGDONG),  # the committee's name
        ("凌东村民委员会", LINGDONG),
        ("凌 东 村 三 组", LINGDONG),  # spaces a clerk typed
        ("睢宁县城北居委会人民路8号", CHENGBEI),  # 社区 and 居委会 are one
        ("凌城镇王集村五组", WANGJI_LC),  # the township tells two 王集村 apart
        ("睢宁县王集镇王集村五组", WANGJI_WJ),
        ("凌城镇城北社区上坝新村3幢", CHENGBEI),  # a compound named after a village comes later
        ("双沟镇上坝村二组", SHANGBA),
    ],
)
def test_the_village_an_address_names(address, expected):
    assert _read(address) == (expected, ())


@pytest.mark.parametrize(
    ("address", "flag"),
    [
        ("王集村五组", "village_ambiguous"),  # two 王集村 and no township
        ("人民路8号", "village_not_named"),
        ("凌城镇凌南村一组", "village_not_named"),  # the registry gives that village no code
        ("双沟镇凌东村三组", "village_not_named"),  # the township has no such village
        ("安徽省宿州市灵璧县凌东村三组", "village_outside"),  # the same name in another province
        ("徐州市铜山区城北社区", "village_outside"),  # and in another county
    ],
)
def test_an_address_that_places_no_one_says_why(address, flag):
    assert _read(address) == (None, (flag,))


def test_no_address_is_no_village_and_no_flag():
    assert _read(None) == (None, ())
    assert _read("  ") == (None, ())
