"""The linkage model as data (`schemas/linkage/*.yaml`) and its Fellegi–Sunter parameters.

The EM here runs on the counts of distinct comparison patterns, not on pairs: a million compared
pairs fall into a few hundred patterns, so each iteration is a few array operations whatever the
county's size. u comes from random pairs (as Splink does), m and the share of matches from EM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from onetable.linkage.comparisons import Comparison
from onetable.schemas.contracts import SHIPPED, ContractError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The named cleaners an input column may take (linkage/cleaners.py). The Chinese ones run
# together as records.clean_records, on exactly CHINESE_INPUT: a verified ID number gives a
# missing birth date and sex, and the name and the number give the derived name_pinyin, id_valid.
Cleaner = Literal[
    "text", "date", "identifier",
    "chinese_name", "chinese_sex", "chinese_date", "gb11643", "chinese_phone", "chinese_address",
    "chinese_text",
]  # fmt: skip
CHINESE_INPUT = {
    "name": "chinese_name", "sex": "chinese_sex", "birth_date": "chinese_date",
    "id_number": "gb11643", "phone": "chinese_phone", "address": "chinese_address",
    "household": "chinese_text",
}  # fmt: skip
CHINESE_DERIVED = ("name_pinyin", "id_valid")


class Anchor(_Strict):
    """A verified identifier: records sharing a `key` where `when` holds are one person, and two
    such keys are never one person."""

    key: str
    when: str


class Blocking(_Strict):
    name: str
    key: str | None = None
    builtin: Literal["id_corrections"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Blocking:
        if (self.key is None) == (self.builtin is None):
            raise ValueError("a blocking rule has either `key` or `builtin`")
        return self


class Rule(_Strict):
    name: str
    when: str


class EM(_Strict):
    max_iterations: int = Field(100, ge=1)
    tolerance: float = Field(1e-6, gt=0)


class Prior(_Strict):
    """Parameters for inputs too small to fit (and EM's starting point): m and u per level."""

    m: dict[str, list[float]]
    u: dict[str, list[float]]


class Model(_Strict):
    input: dict[str, Cleaner] = Field(min_length=1)  # column -> its cleaner
    optional: list[str] = []  # input columns an input table may leave out
    anchor: Anchor | None  # None: no verified identifier, every record its own node
    blocking: list[Blocking] = Field(min_length=1)
    comparisons: dict[str, Comparison] = Field(min_length=1)
    cannot_link: list[Rule] = []
    u_random_pairs: int = Field(1_000_000, ge=1000)
    em: EM = EM()
    seed: int = 42
    threshold: float = Field(0.9, gt=0, lt=1)
    # when no records share a verified number: the probability that two random records match
    match_probability: float = Field(1e-5, gt=0, lt=1)
    min_pairs: int = Field(1000, ge=0)  # fewer compared pairs: the prior, not a fit
    prior: Prior

    @property
    def chinese(self) -> bool:
        """Whether the input is cleaned by records.clean_records (the Chinese cleaners)."""
        return bool(set(self.input.values()) & set(CHINESE_INPUT.values()))

    @property
    def columns(self) -> list[str]:
        """The cleaned columns the model's SQL sees."""
        derived = list(CHINESE_DERIVED) if self.chinese else []
        return ["record_id", "source", *self.input, *derived]

    @model_validator(mode="after")
    def _consistent(self) -> Model:
        chinese = set(CHINESE_INPUT.values())
        if set(self.input.values()) & chinese and self.input != CHINESE_INPUT:
            raise ValueError(
                f"input: the Chinese cleaners run together, on exactly {CHINESE_INPUT}"
            )
        for k in self.optional:
            if k not in self.input:
                raise ValueError(f"optional: {k} is not an input column")
        for k, c in self.comparisons.items():
            for col in (*c.columns, getattr(c, "sound", None) or c.column):
                if col not in self.columns:
                    raise ValueError(
                        f"comparisons.{k}: {col} is not a column of the model "
                        f"(input and derived: {', '.join(self.columns)})"
                    )
        if self.anchor is None and any(b.builtin for b in self.blocking):
            raise ValueError("blocking: id_corrections corrects towards anchors; anchor is null")
        for k, c in self.comparisons.items():
            for what in ("m", "u"):
                values = getattr(self.prior, what).get(k)
                if values is None or len(values) != len(c.levels):
                    raise ValueError(f"prior.{what}.{k}: one probability per level of {k}")
        return self


def model_path(name: str) -> Path:
    """A model file: `name` as a path, else the shipped `schemas/linkage/NAME.yaml`."""
    path = Path(name)
    shipped = SHIPPED / "linkage" / f"{name}.yaml"
    return shipped if not path.exists() and shipped.exists() else path


def load_model(path: Path | None = None) -> Model:
    """The Chinese person model shipped in `schemas/linkage/person.yaml`, or the one at `path`;
    a bad file is a ContractError naming the file and each wrong key."""
    path = path or SHIPPED / "linkage" / "person.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Model.model_validate(data)
    except (OSError, yaml.YAMLError) as err:
        raise ContractError(f"{path}: not a linkage model: {err}") from err
    except ValidationError as err:
        lines = [
            f"{path}: {'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}"
            for e in err.errors(include_url=False)
        ]
        raise ContractError("\n".join(lines)) from None


class Parameters(BaseModel):
    """Fitted parameters: per comparison, m and u for each level (index order); λ, the share of
    matches among the compared pairs (EM's); and the probability that two random records
    match, the prior odds of every score (as Splink's, from the records sharing a verified
    number)."""

    m: dict[str, list[float]]
    u: dict[str, list[float]]
    match_share: float
    match_probability: float
    iterations: int

    def log2_bayes_factors(self) -> dict[str, list[float]]:
        return {k: list(np.log2(np.asarray(self.m[k]) / np.asarray(self.u[k]))) for k in self.m}


def level_shares(counts: np.ndarray, levels: np.ndarray, n_levels: int) -> np.ndarray:
    """Each level's share among the non-null levels of a comparison, counts weighting patterns;
    add-one smoothing keeps a level never seen from a zero probability."""
    seen = levels >= 0
    totals = np.bincount(levels[seen], weights=counts[seen], minlength=n_levels)
    return (totals + 1) / (totals.sum() + n_levels)


def fit_em(
    patterns: np.ndarray,
    counts: np.ndarray,
    u: dict[str, np.ndarray],
    m: dict[str, np.ndarray],
    settings: EM,
    match_probability: float,
) -> Parameters:
    """m and λ by EM over comparison patterns (rows of level indices, -1 for null; columns in
    the order of `u`), u fixed, starting from `m` and λ = 0.5; stops when no parameter moves
    more than the tolerance."""
    names = list(u)
    n_levels = [len(u[k]) for k in names]
    m = [np.asarray(m[k], dtype=float) for k in names]
    share = 0.5
    log_u = [np.log(u[k]) for k in names]
    iterations = 0
    while iterations < settings.max_iterations and counts.sum() > 0:
        iterations += 1
        log_odds = np.full(len(counts), np.log(share / (1 - share)))
        for k in range(len(names)):
            g = patterns[:, k]
            seen = g >= 0
            log_odds[seen] += np.log(m[k][g[seen]]) - log_u[k][g[seen]]
        posterior = 1 / (1 + np.exp(-log_odds))
        weighted = counts * posterior
        new_share = float(weighted.sum() / counts.sum())
        new_m = [level_shares(weighted, patterns[:, k], n) for k, n in enumerate(n_levels)]
        moved = max(
            abs(new_share - share),
            *(float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True)),
        )
        share, m = min(max(new_share, 1e-9), 1 - 1e-9), new_m
        if moved < settings.tolerance:
            break
    return Parameters(
        m={k: list(map(float, v)) for k, v in zip(names, m, strict=True)},
        u={k: list(map(float, u[k])) for k in names},
        match_share=share,
        match_probability=match_probability,
        iterations=iterations,
    )
