"""Print the `prior` block of a linkage model, fitted on a table of raw person records.

Run on demand:  .venv/bin/python bench/fit_prior.py FILE [--model NAME_OR_FILE]
person.yaml's prior comes from the demo county of 20,000 persons, seed 1 (FILE
DIR/records.parquet from `bench/linkage_data.py`); latin_person.yaml's from FEBRL3 (FILE from
`bench/bench_febrl.py --febrl3 FILE`). Prints parameters only, never a record.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from onetable.linkage.match import match
from onetable.linkage.model import load_model, model_path
from onetable.linkage.records import clean, read_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="raw records, CSV or Parquet")
    parser.add_argument("--model", default="person", help="a model file or a shipped name")
    args = parser.parse_args()
    model = load_model(model_path(args.model))
    result = match(clean(read_table(args.file, {}), model), model)
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
    main()
