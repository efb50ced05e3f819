"""Rule functions every stage may use: exact checksums of the identifiers (docs/domain.md,
"ID numbers" and "Credit codes").

Written here rather than taken from python-stdnum: its cn.ric rejects 15-digit numbers outright and
validates the area code against a list that goes stale (people keep their number when 海门市 320684
becomes 海门区 320614), while the pipeline must upgrade the one and accept the other.
"""

from __future__ import annotations

import re
from datetime import date
from operator import mul

# GB 11643-1999, ISO 7064 MOD 11-2: W_i = 2^(18-i) mod 11 for positions 1..17.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
ID18 = re.compile(r"[0-9]{17}[0-9X]")  # ASCII only: \d admits full-width digits
ID15 = re.compile(r"[0-9]{15}")

# GB 32100-2015: 31 symbols (no I, O, Z, S, V), weights 3^(i-1) mod 31.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC = re.compile(f"[{USCC_ALPHABET}]{{18}}")


def id_check_char(body17: str) -> str:
    """The check character of an 18-digit 公民身份号码 from its first 17 digits."""
    if len(body17) != 17 or not body17.isascii() or not body17.isdigit():
        raise ValueError("an ID number body is 17 ASCII digits")
    total = sum(map(mul, map(int, body17), ID_WEIGHTS))  # lengths checked above
    return ID_CHECK[total % 11]


def id_birth_date(number: str) -> date | None:
    """The birth date encoded in an 18-digit number, or None if it is not a calendar date."""
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def is_valid_id_number(number: str, *, today: date | None = None) -> bool:
    """True for a well-formed 18-character number: digits, upper-case X check character, a real
    birth date not in the future, and a correct check character. The area code is not checked."""
    if not ID18.fullmatch(number):
        return False
    born = id_birth_date(number)
    if born is None or born > (today or date.today()) or born.year < 1880:
        return False
    return id_check_char(number[:17]) == number[17]


def id_sex(number: str) -> str:
    """'男' or '女' from the sequence code's last digit (odd = male), for 15 or 18 digits."""
    digit = number[16] if len(number) == 18 else number[14]
    return "男" if int(digit) % 2 else "女"


def upgrade_id15(number: str) -> str:
    """Upgrade a legacy 15-digit number (GB 11643-1989): insert '19' before the 2-digit year and
    append the check character. Every legacy number belongs to a 19xx birth in practice."""
    if not ID15.fullmatch(number):
        raise ValueError("a legacy ID number is 15 digits")
    body = number[:6] + "19" + number[6:]
    return body + id_check_char(body)


def credit_code_check_char(body17: str) -> str:
    """The check character of a 统一社会信用代码 from its first 17 characters."""
    if len(body17) != 17 or any(c not in USCC_ALPHABET for c in body17):
        raise ValueError("a credit code body is 17 characters of 0-9A-Y without I, O, Z, S, V")
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_credit_code(code: str) -> bool:
    """True for an 18-character code in the GB 32100 alphabet with a correct check character."""
    return bool(_USCC.fullmatch(code)) and credit_code_check_char(code[:17]) == code[17]
