"""The mistakes department systems make, at fixed documented rates, and the harmless ways they
write the same value otherwise.

Two kinds, kept apart:

- **Errors** change what a value says: a mistyped or transposed ID digit, a missing ID number,
  a birth date with day and month swapped, a homophone or similar-shaped character in a name, an
  address left behind after a move, a credit code with a wrong check character, a second
  health record for the same person. Their rates are the constants below, per source record
  (among the records where the error can occur: see each constant), and `--error-scale`
  multiplies them all; at scale 0 there are none.
- **Quirks** only write a value otherwise and lose nothing: a legacy 15-digit ID number,
  full-width digits, a lower-case check `x`, spaces in a name, another interpunct in a
  维吾尔族 name, another date or address style. They belong to a system, not to chance, and
  `--error-scale` leaves them alone.

Every decision is a pure function of (seed, source, record, what): a record keeps its mistakes
from month to month, a larger scale only adds mistakes to the ones a smaller scale made, and
nothing here draws from the generator of the county (the truth is the same at every scale).
The truth file `source_records.parquet` lists the errors and quirks of every record version.
"""

from __future__ import annotations

import hashlib
from datetime import date
from functools import cache

# ---- error rates, per source record (the figures; benchmarks use them) ---------------

# One digit of the ID number replaced by another (any of the 18 positions; a check X becomes a
# digit). Among records that show an ID number. A single substitution always breaks MOD 11-2.
ID_DIGIT_TYPO = 0.015
# Two adjacent, different characters of the ID number swapped. Among records that show one.
ID_TRANSPOSITION = 0.008
# No ID number at all, by system (the others always carry one).
MISSING_ID = {"health": 0.15, "grid_residents": 0.08}
# Birth date with day and month swapped: 1950-03-02 written as 1950-02-03. Among records with a
# birth date column whose day is 1-12 and differs from the month (elsewhere the swap would give
# no date, or the same one).
SWAPPED_DAY_MONTH = 0.015
# One character of the name replaced by a homophone (same pinyin and tone: the wrong candidate
# of a pinyin input method), among the 3,755 common characters of GB 2312 level 1. Among
# records whose name has a character with a homophone (nearly all).
NAME_HOMOPHONE = 0.04
# One character replaced by a similar-shaped one (王/玉, 郑/邓, 未/末: SIMILAR_SHAPES). Among
# records whose name has a character in that table.
NAME_SIMILAR_SHAPE = 0.01
# The address the person lived at before a move, left in the record: after a move within the
# county in the period, or for a family living away from its 户籍 home (人户分离), the record
# keeps the older address. Among records of persons who have such an earlier address, in the
# systems that record where people live (civil affairs, health, disability, grid).
STALE_ADDRESS = 0.05
# 市场监管: a credit code whose check character is wrong ("a few"). Among unit records.
CREDIT_CODE_BAD_CHECK = 0.01
# 卫健: a second health record (健康档案) for the same person, opened at another clinic; each
# month a quarter of them are found and merged, and the duplicate row is deleted.
HEALTH_DUPLICATE = 0.01
HEALTH_DUPLICATE_MERGED_PER_MONTH = 0.25

# ---- quirks (lossless; not scaled) -----------------------------------------------------------

LEGACY_ID15 = 0.08  # 民政: 15-digit numbers, for persons born before 2000 (first-generation cards)
LOWERCASE_X = 0.35  # 残联: of ID numbers ending in X, written with a lower-case x
FULLWIDTH_DIGITS = 0.04  # 残联: ID number, certificate number and phone typed in full-width digits
NAME_SPACES = 0.05  # 网格: a space (or an ideographic space) inside or after the name
CHINESE_DATE_STYLE = 0.5  # 民政: 1950年3月2日 rather than 19500302 (each township office its own)
ADDRESS_VARIANT = (
    0.75  # 住建: addresses written otherwise (numerals, 幢/栋/号楼, 室 or -, 村民小组/队)
)
DOTTED_DATE = 0.15  # 民政: 1950.03.02 (by record, whichever the township office's style)
FULLWIDTH_DATE = 0.04  # 民政: dates typed in full-width digits
# 卫健: a newborn's archive, opened before 落户 gives the child a number, carries the mother's
# number until then (then the child's own); among archives of newborns opened before 落户.
NEWBORN_MOTHER_ID = 0.7
# 网格: an entry without an ID number that has no birth date either (a floating resident the
# grid worker knows by name, phone and home). Among grid entries without an ID number.
GRID_NO_BIRTH_WITHOUT_ID = 0.5

ERRORS = (
    "id_digit_typo",
    "id_transposition",
    "id_missing",
    "birth_date_swapped",
    "name_homophone",
    "name_similar_shape",
    "address_stale",
    "credit_code_bad_check",
    "duplicate_record",
)

# Groups of characters easily taken for one another (形近字), chosen among the surnames and
# given-name characters the demo uses so that most names have one. Within a group, any
# character may stand for any other.
SIMILAR_GROUPS = (
    "王玉主", "李季", "张涨", "刘浏", "陈阵", "杨扬汤", "黄簧", "周凋", "吴昊", "徐涂", "孙逊",
    "马乌", "朱珠", "胡湖", "郭廓", "何河", "林淋", "罗萝", "高膏", "郑邓", "梁粱", "宋宗",
    "唐康", "许浒", "曹曾", "田由甲申", "彭膨", "肖宵", "董懂", "袁哀衰", "于干千", "潘番",
    "蒋将", "余佘", "杜社", "沈枕", "姚桃", "卢户", "崔摧", "程呈", "苏办", "魏巍", "吕侣",
    "丁了", "任壬", "姜美", "汪注", "石右", "贾贯", "夏复", "白自百", "毛手", "史吏", "侯候",
    "陶淘", "孟盂", "秦泰", "蔡祭", "叶吐", "方万", "付咐", "邹绉", "金全", "范苑", "谭潭",
    "闫闰", "伟伪", "刚冈钢", "平乎", "明朋", "辉挥", "国固围", "霞暇", "娟绢", "玲铃",
    "梅海悔", "桂佳", "珍诊", "凤风", "宇字", "浩诰", "子孑", "博搏", "永水", "春舂", "峰锋",
    "成戌戍", "昌冒", "新亲", "振赈", "祥详", "婷停", "慧彗", "欣忻", "怡饴", "雨两", "思恩",
    "倩情", "颖颍", "晶品", "娜哪", "磊垒", "帅师", "龙尤", "阳阴", "轩轨", "泽择", "墨默",
    "萱宣", "妍研", "琪棋", "桐铜", "若苦", "曦羲", "瑶摇", "心必", "建健", "安按", "兵乒",
    "涛祷", "晓烧", "勇甬", "兰当", "英央", "秀季", "军车", "强虽", "华毕",
    "红江", "静睁", "艳绝", "燕蒸", "萍苹", "云去", "志忘", "德徳",
    "东车", "立六", "庆厌", "福幅", "宏宠", "雪雷", "琳淋", "涵函", "梦楚", "丹舟", "超起",
    "飞乞", "亮亭", "俊浚", "凯岂", "鹏朋", "鑫森", "睿叡", "铭铬", "诺若", "佳住", "悦锐",
    "洋详", "紫柴", "天夭", "人入", "土士", "己已", "日曰", "末未", "今令", "免兔",
)  # fmt: skip


@cache
def similar_shapes() -> dict[str, str]:
    """Each character of SIMILAR_GROUPS to the characters it may be taken for, in order; a
    pair that also sounds alike (伟/伪) counts as a homophone, so the two errors stay apart."""
    out: dict[str, list[str]] = {}
    for group in SIMILAR_GROUPS:
        for c in group:
            others = out.setdefault(c, [])
            others.extend(o for o in group if o != c and o not in others and o not in homophones(c))
    return {c: "".join(others) for c, others in out.items() if others}


@cache
def _common_characters() -> tuple[str, ...]:
    """GB 2312 level 1: the 3,755 most common characters, in pinyin order."""
    chars = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            if hi == 0xD7 and lo > 0xF9:
                break
            chars.append(bytes((hi, lo)).decode("gb2312"))
    return tuple(chars)


def _reading(c: str) -> str | None:
    from pypinyin.pinyin_dict import pinyin_dict  # the project's pinyin data, loaded once

    value = pinyin_dict.get(ord(c))
    return value.split(",")[0] if value else None


@cache
def _by_reading() -> dict[str, tuple[str, ...]]:
    pool: dict[str, list[str]] = {}
    for c in _common_characters():
        reading = _reading(c)
        if reading:
            pool.setdefault(reading, []).append(c)
    return {k: tuple(sorted(v)) for k, v in pool.items()}


@cache
def homophones(c: str) -> tuple[str, ...]:
    """Common characters read exactly like `c` (first reading, with its tone), `c` excluded."""
    reading = _reading(c)
    return tuple(o for o in _by_reading().get(reading, ()) if o != c) if reading else ()


# ---- deterministic dice ----------------------------------------------------------------------


class Dice:
    """Uniform numbers in [0, 1) from (seed, source, record, what): the same record always gets
    the same mistakes, independently of every other record and of the order of generation."""

    def __init__(self, seed: int, source: str, scale: float = 1.0):
        self._prefix = f"{seed}\x1f{source}\x1f".encode()
        self.source = source
        self.scale = scale

    def u(self, record: str, what: str) -> float:
        digest = hashlib.blake2b(
            self._prefix + record.encode() + b"\x1f" + what.encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2**64

    def index(self, record: str, what: str, n: int) -> int:
        return min(n - 1, int(self.u(record, what) * n))

    def error(self, record: str, what: str, rate: float) -> bool:
        """Does this record get error `what` at `rate` (times the error scale)?"""
        return self.u(record, what) < rate * self.scale

    def quirk(self, record: str, what: str, share: float) -> bool:
        return self.u(record, what) < share

    def hex(self, record: str, what: str) -> str:
        """A 32-digit hex string (an opaque key)."""
        digest = hashlib.blake2b(
            self._prefix + record.encode() + b"\x1f" + what.encode(), digest_size=16
        ).hexdigest()
        return digest


# ---- errors ----------------------------------------------------------------------------------


def digit_typo(number: str, dice: Dice, record: str) -> str:
    """One character replaced by another digit."""
    i = dice.index(record, "typo_position", len(number))
    digits = [d for d in "0123456789" if d != number[i]]
    return number[:i] + digits[dice.index(record, "typo_digit", len(digits))] + number[i + 1 :]


def transposition_positions(number: str) -> list[int]:
    return [i for i in range(len(number) - 1) if number[i] != number[i + 1]]


def transpose(number: str, dice: Dice, record: str) -> tuple[str, int]:
    """Two adjacent different characters swapped; returns the number and the first position."""
    candidates = transposition_positions(number)
    i = candidates[dice.index(record, "transposition_position", len(candidates))]
    return number[:i] + number[i + 1] + number[i] + number[i + 2 :], i


def id_with_errors(
    number: str, dice: Dice, record: str, *, missing_rate: float = 0.0
) -> tuple[str | None, list[str]]:
    """The ID number as a department holds it (15 or 18 characters in), with the errors drawn
    for this record: missing, an adjacent transposition, a digit typo (never on the transposed
    pair, so each stays recognisable)."""
    if missing_rate and dice.error(record, "id_missing", missing_rate):
        return None, ["id_missing"]
    errors = []
    swapped: tuple[int, int] | None = None
    if dice.error(record, "id_transposition", ID_TRANSPOSITION):
        number, i = transpose(number, dice, record)
        swapped = (i, i + 1)
        errors.append("id_transposition")
    if dice.error(record, "id_digit_typo", ID_DIGIT_TYPO):
        typo = digit_typo(number, dice, record)
        changed = next(i for i in range(len(number)) if typo[i] != number[i])
        if swapped is None or changed not in swapped:
            number = typo
            errors.append("id_digit_typo")
    return number, errors


def swap_possible(day: date) -> bool:
    return day.day <= 12 and day.day != day.month


def birth_date_with_errors(day: date, dice: Dice, record: str) -> tuple[date, list[str]]:
    if swap_possible(day) and dice.error(record, "birth_date_swapped", SWAPPED_DAY_MONTH):
        return date(day.year, day.day, day.month), ["birth_date_swapped"]
    return day, []


def _replace_one(name: str, table, dice: Dice, record: str, what: str, avoid: int | None):
    positions = [i for i, c in enumerate(name) if table(c) and i != avoid]
    if not positions:
        return name, None
    i = positions[dice.index(record, what + "_position", len(positions))]
    options = table(name[i])
    return name[:i] + options[dice.index(record, what + "_char", len(options))] + name[i + 1 :], i


def name_with_errors(name: str, dice: Dice, record: str) -> tuple[str, list[str]]:
    """A homophone, then a similar-shaped character at another position."""
    errors = []
    at = None
    if dice.error(record, "name_homophone", NAME_HOMOPHONE):
        name, at = _replace_one(name, homophones, dice, record, "name_homophone", None)
        if at is not None:
            errors.append("name_homophone")
    if dice.error(record, "name_similar_shape", NAME_SIMILAR_SHAPE):
        shapes = similar_shapes()
        name, i = _replace_one(name, shapes.get, dice, record, "name_similar_shape", at)
        if i is not None:
            errors.append("name_similar_shape")
    return name, errors


def bad_check_char(code: str, dice: Dice, record: str) -> str:
    alphabet = [c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if c != code[-1]]
    return code[:-1] + alphabet[dice.index(record, "credit_code_char", len(alphabet))]


# ---- quirks ----------------------------------------------------------------------------------

_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def fullwidth(text: str) -> str:
    return text.translate(_FULLWIDTH)


def legacy_id15(number: str) -> str:
    """The 15-digit number of a first-generation card: no century, no check character."""
    return number[:6] + number[8:17]


def spaced_name(name: str, dice: Dice, record: str) -> str:
    """'王 伟', '王　伟' or '王伟 ' (grid workers typing on a phone)."""
    how = dice.index(record, "name_spaces_how", 3)
    if how == 2 or "·" in name:
        return name + " "
    surname = 2 if name[:2] in ("欧阳", "上官", "司马", "诸葛") else 1
    return name[:surname] + (" " if how == 0 else "\u3000") + name[surname:]
