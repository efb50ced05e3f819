"""The comparisons a linkage model names (`schemas/linkage/*.yaml`), each expanded into the levels
the matcher runs: SQL over `l.` and `r.` (the two records of a pair), from the most to the least
alike, the last catching every pair left. A model says `{comparison: jaro_winkler, column:
surname, thresholds: [0.92, 0.8]}` rather than SQL, so every model gets the same tested levels and
a mistake in one is a key pydantic names.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(_Strict):
    name: str
    when: str | None = None  # None: every pair left (the last level)
    term_frequency: str | None = None  # a column whose value's frequency replaces u


def _exact(column: str, term_frequency: bool) -> Level:
    """Equal values; with `term_frequency` a common value agreeing says less than a rare one."""
    return Level(
        name="exact",
        when=f"l.{column} = r.{column}",
        term_frequency=column if term_frequency else None,
    )


def _guarded(guard: str | None, test: str) -> str:
    """`test` only where `guard` holds: CASE, not AND, so DuckDB runs a costly distance only on
    the pairs the cheap guard lets through."""
    return test if guard is None else f"CASE WHEN {guard} THEN {test} ELSE false END"


class _Comparison(_Strict):
    column: str  # a pair with a null here gets no level (it adds no evidence)

    @property
    def columns(self) -> list[str]:
        return [self.column]


class Exact(_Comparison):
    comparison: Literal["exact"]
    term_frequency: bool = False

    @property
    def levels(self) -> list[Level]:
        return [_exact(self.column, self.term_frequency), Level(name="other")]


class JaroWinkler(_Comparison):
    """Exact, then (with `sound`) equal sound keys, then Jaro-Winkler similarity at or above each
    threshold; `prefix` scores only pairs whose first that many characters agree."""

    comparison: Literal["jaro_winkler"]
    thresholds: list[Annotated[float, Field(gt=0, lt=1)]] = Field(min_length=1)
    term_frequency: bool = False
    sound: str | None = None  # a column of sound keys (e.g. the name's pinyin)
    prefix: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _descending(self) -> JaroWinkler:
        if self.thresholds != sorted(set(self.thresholds), reverse=True):
            raise ValueError("thresholds: from the highest similarity down, each once")
        return self

    @property
    def levels(self) -> list[Level]:
        c = self.column
        guard = f"left(l.{c}, {self.prefix}) = left(r.{c}, {self.prefix})" if self.prefix else None
        levels = [_exact(c, self.term_frequency)]
        if self.sound:
            levels.append(Level(name="same_sound", when=f"l.{self.sound} = r.{self.sound}"))
        levels += [
            Level(
                name=f"jaro_winkler_{t}",
                when=_guarded(guard, f"jaro_winkler_similarity(l.{c}, r.{c}) >= {t}"),
            )
            for t in self.thresholds
        ]
        return [*levels, Level(name="other")]


class Levenshtein(_Comparison):
    """Exact, then at most each threshold of edits (insertions, deletions, substitutions)."""

    comparison: Literal["levenshtein"]
    thresholds: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    term_frequency: bool = False

    @model_validator(mode="after")
    def _ascending(self) -> Levenshtein:
        if self.thresholds != sorted(set(self.thresholds)):
            raise ValueError("thresholds: from the fewest edits up, each once")
        return self

    @property
    def levels(self) -> list[Level]:
        c = self.column
        return [
            _exact(c, self.term_frequency),
            *(
                Level(name=f"levenshtein_{t}", when=f"levenshtein(l.{c}, r.{c}) <= {t}")
                for t in self.thresholds
            ),
            Level(name="other"),
        ]


class Identifier(_Comparison):
    """An identifier typed by hand: exact, one character wrong, two adjacent characters swapped
    (the two typos a check character catches). Values of different lengths compare only exactly:
    DuckDB's hamming refuses them."""

    comparison: Literal["identifier"]

    @property
    def levels(self) -> list[Level]:
        c = self.column
        same_length = f"length(l.{c}) = length(r.{c})"
        return [
            _exact(c, False),
            Level(name="one_digit", when=_guarded(same_length, f"hamming(l.{c}, r.{c}) = 1")),
            Level(
                name="adjacent_swap",
                when=f"CASE WHEN length(l.{c}) <> length(r.{c}) THEN false "
                f"WHEN hamming(l.{c}, r.{c}) = 2 THEN damerau_levenshtein(l.{c}, r.{c}) = 1 "
                "ELSE false END",
            ),
            Level(name="other"),
        ]


class Date(_Comparison):
    """ISO dates (the `date` cleaner's): exact; with `swaps` day and month swapped; with `typos`
    at most that many characters wrong; then within each of `tolerance_days`."""

    comparison: Literal["date"]
    swaps: bool = False
    typos: int | None = Field(None, ge=1, le=4)
    tolerance_days: list[Annotated[int, Field(ge=1)]] = []

    @model_validator(mode="after")
    def _ascending(self) -> Date:
        if self.tolerance_days != sorted(set(self.tolerance_days)):
            raise ValueError("tolerance_days: from the fewest days up, each once")
        return self

    @property
    def levels(self) -> list[Level]:
        c = self.column
        levels = [_exact(c, False)]
        if self.swaps:
            swapped = (
                f"substr(l.{c}, 1, 4) = substr(r.{c}, 1, 4) AND "
                f"substr(l.{c}, 6, 2) = substr(r.{c}, 9, 2) AND "
                f"substr(l.{c}, 9, 2) = substr(r.{c}, 6, 2)"
            )
            levels.append(Level(name="day_month_swapped", when=swapped))
        if self.typos:
            when = f"hamming(l.{c}, r.{c}) <= {self.typos}"
            levels.append(Level(name=f"typos_{self.typos}", when=when))
        days = f"abs(date_diff('day', TRY_CAST(l.{c} AS DATE), TRY_CAST(r.{c} AS DATE)))"
        levels += [
            Level(name=f"within_{d}_days", when=f"{days} <= {d}") for d in self.tolerance_days
        ]
        return [*levels, Level(name="other")]


class Numeric(_Comparison):
    """Numbers (as text): equal, then within each absolute tolerance; text that is not a number
    agrees only exactly (its gap is null, which no level takes)."""

    comparison: Literal["numeric"]
    tolerances: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _ascending(self) -> Numeric:
        if self.tolerances != sorted(set(self.tolerances)):
            raise ValueError("tolerances: from the smallest up, each once")
        return self

    @property
    def levels(self) -> list[Level]:
        c = self.column
        gap = f"abs(TRY_CAST(l.{c} AS DOUBLE) - TRY_CAST(r.{c} AS DOUBLE))"
        return [
            _exact(c, False),
            *(Level(name=f"within_{t:g}", when=f"{gap} <= {t}") for t in self.tolerances),
            Level(name="other"),
        ]


Comparison = Annotated[
    Exact | JaroWinkler | Levenshtein | Identifier | Date | Numeric,
    Field(discriminator="comparison"),
]
