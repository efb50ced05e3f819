"""Custom Great Expectations for the identifiers (docs/domain.md, "ID numbers" and
"Credit codes"), registered on import.

GX registers an expectation class (and its metric) when the class is defined, so importing this
module is all it takes; it must be imported before a suite that uses these types is built or
loaded, or GX drops them silently (docs/architecture.md, "Library traps").
`onetable.quality.checks` imports it.

The vectorised functions give the same answers as the rule functions of `onetable.schemas.rules`
(`is_valid_id_number`, `is_valid_credit_code`), which stay the definition; the tests compare
them value by value. Like every map expectation, GX leaves nulls out before calling them: a
missing value is the concern of the column's not-null rule.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

from onetable.schemas.rules import ID_CHECK, ID_WEIGHTS, USCC_ALPHABET, USCC_WEIGHTS

# GB 11643-1999, ISO 7064 MOD 11-2, vectorized
_ID_WEIGHTS = np.array(ID_WEIGHTS, dtype=np.int64)
_ID_CHECK = np.frombuffer(ID_CHECK.encode("ascii"), dtype="S1")
# GB 32100-2015, vectorized
_USCC_WEIGHTS = np.array(USCC_WEIGHTS, dtype=np.int64)
_USCC_VALUE = np.full(256, -1, dtype=np.int64)
_USCC_VALUE[np.frombuffer(USCC_ALPHABET.encode("ascii"), dtype=np.uint8)] = np.arange(31)


def _strings(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The values as str, and which of them were str to begin with (the rule functions take
    strings; a number read from a spreadsheet has lost its leading zeros and is not valid)."""
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        return values.astype(str), values.notna().to_numpy(bool)
    is_str = values.map(lambda v: isinstance(v, str)).to_numpy(bool)
    return values.where(is_str, "").astype(str), is_str


def valid_id_numbers(values: pd.Series, today: date | None = None) -> pd.Series:
    """`is_valid_id_number` over a Series: 17 ASCII digits and a digit or upper-case X, a real
    birth date from 1880 up to `today`, and the right check character."""
    text, is_str = _strings(values)
    ok = is_str & text.str.fullmatch(r"[0-9]{17}[0-9X]").fillna(False).to_numpy(bool)
    out = np.zeros(len(text), dtype=bool)
    if ok.any():
        good = text[ok]
        born = pd.to_datetime(good.str.slice(6, 14), format="%Y%m%d", errors="coerce")
        limit = pd.Timestamp(today or date.today())
        dated = (born.notna() & (born <= limit) & (born >= pd.Timestamp(1880, 1, 1))).to_numpy()
        raw = np.frombuffer("".join(good).encode("ascii"), dtype="S1").reshape(-1, 18)
        digits = raw[:, :17].view(np.uint8).astype(np.int64) - 48
        checked = raw[:, 17] == _ID_CHECK[(digits @ _ID_WEIGHTS) % 11]
        out[ok] = dated & checked
    return pd.Series(out, index=values.index)


def valid_credit_codes(values: pd.Series) -> pd.Series:
    """`is_valid_credit_code` over a Series: 18 characters of the GB 32100 alphabet with the right
    check character."""
    text, is_str = _strings(values)
    ok = is_str & text.str.fullmatch(f"[{USCC_ALPHABET}]{{18}}").fillna(False).to_numpy(bool)
    out = np.zeros(len(text), dtype=bool)
    if ok.any():
        raw = np.frombuffer("".join(text[ok]).encode("ascii"), dtype=np.uint8).reshape(-1, 18)
        symbols = _USCC_VALUE[raw]
        check = (31 - (symbols[:, :17] @ _USCC_WEIGHTS) % 31) % 31
        out[ok] = symbols[:, 17] == check
    return pd.Series(out, index=values.index)


class ColumnValuesCnIdNumberValid(ColumnMapMetricProvider):
    condition_metric_name = "column_values.cn_id_number_valid"
    condition_value_keys = ("as_of",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, as_of: str | None = None, **kwargs) -> pd.Series:
        return valid_id_numbers(column, date.fromisoformat(as_of) if as_of else None)


class ExpectColumnValuesToBeValidCnIdNumber(ColumnMapExpectation):
    """Expect valid 18-character 公民身份号码 (GB 11643-1999): format, birth date no later than
    `as_of` (an ISO date, default today) and check character."""

    map_metric = "column_values.cn_id_number_valid"
    as_of: str | None = None
    success_keys = ("mostly", "as_of")


class ColumnValuesCreditCodeValid(ColumnMapMetricProvider):
    condition_metric_name = "column_values.credit_code_valid"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        return valid_credit_codes(column)


class ExpectColumnValuesToBeValidCreditCode(ColumnMapExpectation):
    """Expect valid 18-character 统一社会信用代码 (GB 32100-2015) with the right check character."""

    map_metric = "column_values.credit_code_valid"
