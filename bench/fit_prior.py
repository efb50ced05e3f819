"""Print the `prior` block of schemas/linkage/person.yaml, fitted on a table of raw person records.

Run on demand:  .venv/bin/python bench/fit_prior.py DIR/records.parquet
(DIR from `bench/linkage_data.py`; the shipped prior comes from the demo county of 20,000
persons, seed 1). Prints parameters only, never a record.
"""

from __future__ import annotations

import sys

import pandas as pd
import yaml

from onetable.linkage.match import match
from onetable.linkage.model import load_model
from onetable.linkage.records import clean_records


def main(path: str) -> None:
    result = match(clean_records(pd.read_parquet(path)), load_model())
    p = result.parameters
    prior = {
        what: {k: [float(f"{x:.4g}") for x in v] for k, v in getattr(p, what).items()}
        for what in ("m", "u")
    }
    print(yaml.safe_dump({"prior": prior}, default_flow_style=None, sort_keys=False))
    print(
        f"# {result.pairs} compared pairs, EM {p.iterations} iterations, {result.edges} match "
        f"edges, {result.refused} merges refused",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main(sys.argv[1])
