"""Names for the demo county: surname frequencies, given names by sex and birth cohort, and
Uyghur-style transliterated names (given name · father's name).

The lists are small on purpose: the most common full names (王伟, 李娜, 张伟, 王芳, 李伟…) must
repeat inside a village, as they do in reality, so that linkage cannot lean on names alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Approximate national surname shares in percent, recalled from the 公安部 户籍 name statistics
# (2020 ranking: 王 李 张 刘 陈 杨 黄 赵 吴 周 …); northern Jiangsu differs in detail. Villages
# boost the surnames in their own names (陈王村 → 陈, 王), as single-lineage villages do.
SURNAMES: dict[str, float] = {
    "王": 7.1, "李": 7.0, "张": 6.7, "刘": 5.1, "陈": 4.6, "杨": 3.2, "黄": 2.5, "赵": 2.2,
    "吴": 2.0, "周": 1.9, "徐": 1.5, "孙": 1.5, "马": 1.5, "朱": 1.3, "胡": 1.3, "郭": 1.2,
    "何": 1.1, "林": 1.1, "罗": 1.0, "高": 1.0, "郑": 0.9, "梁": 0.8, "谢": 0.8, "宋": 0.7,
    "唐": 0.7, "许": 0.7, "韩": 0.7, "冯": 0.6, "邓": 0.6, "曹": 0.6, "彭": 0.6, "曾": 0.5,
    "肖": 0.5, "田": 0.5, "董": 0.5, "袁": 0.5, "潘": 0.4, "于": 0.4, "蒋": 0.4, "蔡": 0.4,
    "余": 0.4, "杜": 0.4, "叶": 0.4, "程": 0.4, "苏": 0.3, "魏": 0.3, "吕": 0.3, "丁": 0.3,
    "任": 0.3, "沈": 0.3, "姚": 0.3, "卢": 0.3, "姜": 0.3, "崔": 0.3, "钟": 0.2, "谭": 0.2,
    "陆": 0.2, "汪": 0.2, "范": 0.2, "金": 0.2, "石": 0.2, "贾": 0.2, "夏": 0.2, "付": 0.2,
    "方": 0.2, "白": 0.2, "邹": 0.2, "孟": 0.2, "秦": 0.2, "邱": 0.2, "薛": 0.2, "闫": 0.2,
    "侯": 0.2, "史": 0.2, "陶": 0.1, "顾": 0.1, "毛": 0.1, "邵": 0.1, "钱": 0.1, "岳": 0.1,
    "欧阳": 0.03, "上官": 0.01, "司马": 0.01, "诸葛": 0.01,
}  # fmt: skip
VILLAGE_SURNAME_BOOST = 12.0  # a surname in the village's name: about 10x its national share

# Given names by sex and birth cohort, most common first; the first few carry most weight
# (Zipf-like), the rest of a cohort's names are two characters drawn from a character pool.
_COHORTS = (1960, 1980, 2000)  # born before 1960, 1960-79, 1980-99, 2000 on
GIVEN_COMMON: dict[tuple[str, int], tuple[str, ...]] = {
    ("男", 0): ("建国", "国华", "德明", "建华", "文明", "国强", "志明", "玉林", "德胜", "福林",
               "长友", "学文", "广才", "振华", "家富", "永福", "金山", "春生", "明", "华", "军"),
    ("女", 0): ("秀英", "桂英", "秀兰", "玉兰", "桂兰", "凤英", "玉珍", "秀珍", "淑珍", "兰英",
               "桂芳", "玉英", "秀芳", "素珍", "凤兰", "桂珍", "秀云", "玉梅", "芳", "兰", "英"),
    ("男", 1): ("伟", "军", "勇", "强", "刚", "平", "杰", "涛", "明", "斌", "辉", "建军",
               "建华", "国庆", "卫东", "红兵", "海军", "志刚", "志强", "永强", "东", "波", "峰"),
    ("女", 1): ("丽", "芳", "敏", "静", "艳", "红", "霞", "娟", "燕", "玲", "萍", "梅", "丽娟",
               "海燕", "红梅", "秀英", "春梅", "艳红", "丽华", "晓燕", "美玲"),
    ("男", 2): ("伟", "磊", "涛", "超", "杰", "鹏", "浩", "强", "勇", "斌", "飞", "亮", "刚",
               "明", "军", "波", "帅", "龙", "阳", "洋", "辉", "俊", "健", "凯", "文博", "志伟"),
    ("女", 2): ("娜", "静", "敏", "婷", "丹", "倩", "雪", "丽", "艳", "芳", "燕", "玲", "颖",
               "璐", "蕾", "佳", "晶", "琳", "欢", "慧", "梦", "悦", "莉", "婷婷", "丹丹"),
    ("男", 3): ("浩然", "子轩", "宇轩", "浩宇", "俊杰", "博文", "思源", "梓豪", "一鸣", "子豪",
               "皓轩", "宇航", "晨阳", "天佑", "铭泽", "子墨", "睿", "浩", "宇", "轩", "鑫"),
    ("女", 3): ("欣怡", "梓涵", "诗涵", "雨涵", "一诺", "梓萱", "子涵", "佳怡", "可欣", "语嫣",
               "欣妍", "紫涵", "思琪", "雨桐", "佳琪", "若曦", "梦瑶", "心怡", "雨欣", "悦", "涵"),
}  # fmt: skip
GIVEN_CHARS = {
    "男": "建国志明文海伟俊宇浩子博家永德金玉春光华强军兵林峰涛成东昌立新安振庆福祥宏",
    "女": "秀英兰玉桂芳丽美霞红艳燕梅静婷雪慧敏琳佳欣怡雨涵梦思晓云凤萍娟丹倩颖",
}
SHARE_COMMON_GIVEN = 0.4  # the rest are two random characters from the pool
ZIPF_EXPONENT = 0.8  # weight of the k-th common name is k^-0.8: 伟/芳/娜 lead their cohort

# Uyghur-style transliterated names: "<given>·<father's given>".
UYGHUR_GIVEN = {
    "男": ("买买提", "艾力", "阿不都", "吐尔逊", "艾合买提", "热合曼", "伊力哈木", "阿迪力",
           "买合木提", "艾则孜", "亚森", "努尔买买提"),
    "女": ("阿依古丽", "古丽娜尔", "帕提古丽", "热依拉", "迪丽娜尔", "米热古丽", "祖丽胡玛尔",
           "阿娜尔古丽", "努尔古丽", "古再丽努尔"),
}  # fmt: skip


@dataclass(frozen=True)
class Weighted:
    """Values with weights, drawn by inverse CDF (faster than Generator.choice per draw)."""

    values: tuple[str, ...]
    cumulative: np.ndarray

    @classmethod
    def of(cls, weights: dict[str, float]) -> Weighted:
        values = tuple(weights)
        cum = np.cumsum(np.fromiter(weights.values(), dtype=float))
        return cls(values, cum / cum[-1])

    def draw(self, rng: np.random.Generator) -> str:
        return self.values[int(np.searchsorted(self.cumulative, rng.random(), side="right"))]


def surnames_for(village_name: str) -> Weighted:
    """Surname frequencies in a village: national shares, boosted for the surnames in its name."""
    weights = dict(SURNAMES)
    for s in weights:
        if s in village_name:
            weights[s] *= VILLAGE_SURNAME_BOOST
    return Weighted.of(weights)


NATIONAL_SURNAMES = Weighted.of(SURNAMES)
_COMMON = {
    key: Weighted.of({n: (k + 1) ** -ZIPF_EXPONENT for k, n in enumerate(names)})
    for key, names in GIVEN_COMMON.items()
}


def cohort(birth_year: int) -> int:
    """0: born before 1960, 1: 1960-79, 2: 1980-99, 3: 2000 on."""
    return sum(birth_year >= y for y in _COHORTS)


def given_name(rng: np.random.Generator, sex: str, birth_year: int) -> str:
    """A given name typical for the sex and birth cohort."""
    if rng.random() < SHARE_COMMON_GIVEN:
        return _COMMON[(sex, cohort(birth_year))].draw(rng)
    pool = GIVEN_CHARS[sex]
    a, b = rng.integers(0, len(pool), size=2)
    return pool[a] + pool[b]


def uyghur_given(rng: np.random.Generator, sex: str) -> str:
    names = UYGHUR_GIVEN[sex]
    return names[int(rng.integers(0, len(names)))]
