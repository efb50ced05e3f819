"""The statistical period every stage works on: a month, viewed as of its end (月末)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class Period:
    """A month; its input is every landing window that ends by `end`, the first instant after it."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        match = re.fullmatch(r"(\d{4})-(\d{2})", text)
        if not match or not 1 <= int(match[2]) <= 12:
            raise ValueError(f"a period is written YYYY-MM, got {text!r}")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def last_complete(cls, today: date) -> Period:
        year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
        return cls(year, month)

    def shift(self, months: int) -> Period:
        """The period `months` later (earlier when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Period(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1)

    @property
    def end(self) -> datetime:
        return datetime(self.year + self.month // 12, self.month % 12 + 1, 1)

    @property
    def reference_date(self) -> date:
        """The last day of the month: the date a 一套表 return is as of."""
        return date.fromordinal(self.end.toordinal() - 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
