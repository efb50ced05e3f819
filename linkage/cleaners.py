"""The named cleaners of a linkage model's input columns (`input:` in `schemas/linkage/*.yaml`)
for models whose columns clean one at a time; the Chinese model's cleaners run together as
`records.clean_records`. Each cleaner runs once per distinct value: a surname repeats.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import numpy as np
import pandas as pd

from onetable.linkage import standardize as st
from onetable.linkage.model import Model
from onetable.schemas.contracts import ContractError

_SPACES = re.compile(r"\s+")
_SEPARATORS = re.compile(r"[\s\-./]+")


def text(raw: str | None) -> str | None:
    """Latin-script text compared as typed: NFKC, case folded, trimmed, inner white space one
    space (`Smith `, `SMITH` and `smith` agree; a typo is left to the comparison)."""
    if raw is None:
        return None
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", raw).casefold()).strip() or None


def date(raw: str | None) -> str | None:
    """An ISO date (from ISO, 19500302, 1950/3/2 and the other forms of standardize.parse_date);
    a day that does not exist is missing, not evidence."""
    return st.parse_date(raw)[0]


def identifier(raw: str | None) -> str | None:
    """An identifier as its characters alone: NFKC, case folded, without the spaces, hyphens,
    dots and slashes people write in it differently."""
    if raw is None:
        return None
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw).casefold()) or None


CLEANERS: dict[str, Callable[[str | None], str | None]] = {
    "text": text, "date": date, "identifier": identifier,
}  # fmt: skip


def check_input(columns: list[str], model: Model) -> None:
    """An input table's columns against the model's: a column it needs and lacks, or one it does
    not know (a misspelt or unmapped column would otherwise be silently ignored), is an error
    naming the column and the model's key."""
    known = model.columns[:2] + list(model.input)
    for c in known:
        if c not in columns and c not in model.optional:
            key = f"input.{c}" if c in model.input else "record_id and source (every model's)"
            raise ContractError(
                f"link-records: the input has no column {c!r}, which the model needs ({key}); "
                f"map it with --map {c}=COLUMN"
            )
    for c in columns:
        if c not in known:
            raise ContractError(
                f"link-records: the input column {c!r} is not one of the model's (input: "
                f"{', '.join(model.input)}); rename it with --map CANONICAL={c} or drop it"
            )


def clean_columns(frame: pd.DataFrame, model: Model) -> pd.DataFrame:
    """record_id, source and each input column through its cleaner, as Arrow strings; an
    optional column the input lacks is null."""
    clean = {k: frame[k].astype("string[pyarrow]") for k in ("record_id", "source")}
    for column, cleaner in model.input.items():
        if column not in frame.columns:
            clean[column] = pd.Series(None, index=frame.index, dtype="string[pyarrow]")
            continue
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        values = np.array([CLEANERS[cleaner](str(v)) for v in uniques] + [None], dtype=object)
        clean[column] = pd.Series(values[codes], index=frame.index, dtype="string[pyarrow]")
    return pd.DataFrame(clean).reset_index(drop=True)
