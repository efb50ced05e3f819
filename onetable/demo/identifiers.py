"""Unique identifiers the demo issues: ID numbers, mobile numbers, credit codes, 户号, case ids.

ID numbers and credit codes carry valid check characters from `onetable.schemas.rules`; the
issuer only remembers what it gave out so that nothing is issued twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from onetable.schemas.rules import credit_code_check_char, id_check_char

# Mobile prefixes of the three carriers (移动 134-139/15x/18x/198, 联通 130-132/155/156/185/186/166,
# 电信 133/153/180/181/189/177/199), the common ones only.
MOBILE_PREFIXES = (
    "134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159", "182",
    "183", "187", "188", "198", "130", "131", "132", "155", "156", "185", "186", "166", "133",
    "153", "180", "181", "189", "177", "199",
)  # fmt: skip
# Counties made districts: numbers keep the code of their issue (docs/domain.md, "Renamed
# divisions"), so a person born before carries the old one. Recalled, not checked against
# GB/T 2260's change list: 铜山县 320323 became 铜山区 320312 in 2010, 宿豫县 321321 宿豫区
# 321311 in 2004. (new code -> old code, first year of the new)
RENAMED = {"320312": ("320323", 2010), "321311": ("321321", 2004)}
_USCC_BODY = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100 alphabet (no I, O, Z, S, V)
# 登记管理部门码 + 机构类别码 by kind of unit (docs/domain.md, "Credit codes").
CREDIT_PREFIX = {
    "企业": "91",
    "个体工商户": "92",
    "农民专业合作社": "93",
    "事业单位": "12",
    "民办非企业单位": "52",
}


@dataclass
class Issuer:
    """Hands out identifiers, each at most once, from the one random generator of the run."""

    rng: np.random.Generator
    _used: set[str] = field(default_factory=set)
    _hukou: int = 0
    _cases: dict[str, int] = field(default_factory=dict)

    def _fresh(self, make) -> str:
        while (value := make()) in self._used:
            pass
        self._used.add(value)
        return value

    def id_number(self, area: str, birth: int, male: bool) -> str:
        """GB 11643: area code (a renamed county's old one for those born before, RENAMED),
        birth date, a sequence code whose last digit is odd for men, and the MOD 11-2 check
        character."""
        d = date.fromordinal(birth)
        old, since = RENAMED.get(area, (area, 0))
        area = old if d.year < since else area
        born = f"{d.year:04d}{d.month:02d}{d.day:02d}"  # strftime's %Y%m%d, at a third of its cost

        def make() -> str:
            seq = int(self.rng.integers(0, 500)) * 2 + (1 if male else 0)
            body = f"{area}{born}{seq:03d}"
            return body + id_check_char(body)

        return self._fresh(make)

    def phone(self) -> str:
        def make() -> str:
            prefix = MOBILE_PREFIXES[int(self.rng.integers(0, len(MOBILE_PREFIXES)))]
            return f"{prefix}{int(self.rng.integers(0, 10**8)):08d}"

        return self._fresh(make)

    def credit_code(self, kind: str, area: str) -> str:
        """GB 32100: department and category, the area code, a subject code (new market
        entities' codes start 'MA'; institutions' are numeric), the MOD 31 check character.
        The subject code's own GB 11714 check is not applied."""

        def make() -> str:
            if kind in ("事业单位", "民办非企业单位"):
                subject = "4" + "".join(str(d) for d in self.rng.integers(0, 10, size=8))
            else:
                picks = self.rng.integers(0, len(_USCC_BODY), size=7)
                subject = "MA" + "".join(_USCC_BODY[i] for i in picks)
            body = CREDIT_PREFIX[kind] + area + subject
            return body + credit_code_check_char(body)

        return self._fresh(make)

    def hukou_no(self) -> str:
        """户号: a 9-digit number; police stations issue them in rising order with gaps."""
        self._hukou += int(self.rng.integers(1, 40))
        return f"{100000000 + self._hukou:09d}"

    def case_id(self, prefix: str) -> str:
        """A truth-level case number for an assistance case (低保 household, 特困 person);
        the 民政 system of part 2 derives its own 救助编号 from it."""
        n = self._cases.get(prefix, 0) + 1
        self._cases[prefix] = n
        return f"{prefix}{n:06d}"
