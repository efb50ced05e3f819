"""Person linkage (issue 8): onetable against recordlinkage and Splink on the demo county's records.

`python bench/bench_linkage.py DIR [--tools onetable recordlinkage splink]` takes a folder written by
bench/linkage_data.py. Each tool runs in a fresh process on DIR/records.parquet, the whole path
from the raw records (read, clean_records, link), timed end to end, with its peak RSS (imports
included) and its own step timings; the person ids it gives are scored against DIR/truth.parquet
and DIR/twins.parquet (onetable.linkage.evaluate). The hard records are those without a valid ID
number after clean_records. Prints a Markdown table; figures and counts only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd

BENCH = Path(__file__).resolve().parent
BASELINES = {"recordlinkage": "baseline_recordlinkage", "splink": "baseline_splink"}


def link(tool: str, records: Path) -> tuple[pd.Series, dict[str, float]]:
    """One tool's person ids for the raw records, and its step timings (clean included)."""
    from onetable.linkage.records import clean_records, link_records, read_table

    started = time.perf_counter()
    raw = read_table(records, {})  # as `onetable link-records` reads it, for every tool
    timings: dict[str, float] = {"read": time.perf_counter() - started}
    if tool == "onetable":
        linked = link_records(raw, timings)
        return linked.set_index("record_id")["person_id"], timings
    sys.path.insert(0, str(BENCH))
    baseline = __import__(BASELINES[tool])
    started = time.perf_counter()
    clean = clean_records(raw)
    timings["clean"] = time.perf_counter() - started
    return baseline.run(clean, timings), timings


def worker(tool: str, records: Path, out: Path) -> None:
    """Run one tool (in its own process) and write its ids and figures next to `out`."""
    started = time.perf_counter()
    persons, timings = link(tool, records)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    # the largest process the tool started (onetable's standardizers run in one per core)
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    frame = pd.DataFrame({"record_id": persons.index, "person_id": persons.astype(str).to_numpy()})
    frame.to_parquet(out.with_suffix(".parquet"), index=False)
    figures = dict(wall=wall, peak_mib=peak, helper_mib=helpers, timings=timings)
    out.with_suffix(".json").write_text(json.dumps(figures), encoding="utf-8")


def hard_records(records: Path) -> pd.Series:
    """record_id -> True where the record has no valid ID number after clean_records."""
    from onetable.linkage.records import clean_records, read_table

    clean = clean_records(read_table(records, {}))
    return pd.Series(~clean["id_valid"].astype(bool).to_numpy(), index=clean["record_id"])


def machine() -> str:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return (f"{platform.node()}, {os.cpu_count()} cores, {pages / 2**30:.0f} GiB, "
            f"Python {platform.python_version()}, {platform.platform(terse=True)}")  # fmt: skip


def _step_text(timings: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v:,}"
                     for k, v in timings.items())  # fmt: skip


def main() -> None:
    from onetable.linkage.evaluate import evaluate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="a folder written by bench/linkage_data.py")
    parser.add_argument("--tools", nargs="+", default=["onetable", "recordlinkage", "splink"],
                        choices=["onetable", *BASELINES])  # fmt: skip
    args = parser.parse_args()
    records = args.dir / "records.parquet"
    truth = pd.read_parquet(args.dir / "truth.parquet").set_index("record_id")["person_id"]
    twins = pd.read_parquet(args.dir / "twins.parquet")
    hard = hard_records(records)
    rows, steps = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for tool in args.tools:
            if tool in BASELINES and not (BENCH / f"{BASELINES[tool]}.py").exists():
                print(f"{tool}: bench/{BASELINES[tool]}.py not found, skipped", file=sys.stderr)
                continue
            out = Path(tmp) / tool
            command = [sys.executable, __file__, "--worker", tool, str(records), str(out)]
            started = time.perf_counter()
            done = subprocess.run(command, check=False)
            wall = time.perf_counter() - started
            if done.returncode:
                print(f"{tool}: failed (exit {done.returncode})", file=sys.stderr)
                continue
            figures = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
            predicted = pd.read_parquet(out.with_suffix(".parquet")).set_index("record_id")
            e = evaluate(predicted["person_id"], truth, hard, twins)
            rows.append(
                f"| {tool} | {wall:.1f} | {figures['peak_mib']:,.0f} | {figures['helper_mib']:,.0f} "
                f"| {e['pair_precision']:.4f} "
                f"| {e['pair_recall']:.4f} | {e['pair_f1']:.4f} | {e['hard_precision']:.4f} "
                f"| {e['hard_recall']:.4f} | {e['bcubed_f1']:.4f} "
                f"| {e['twins_merged']}/{e['twin_pairs']} | {e['predicted_clusters']:,} "
                f"| {e['persons_split']:,} | {e['persons_merged']:,} |"
            )
            steps.append(f"- {tool}: {_step_text(figures['timings'])}")
    print(f"Machine: {machine()}. Date: {date.today().isoformat()}.")
    print(f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`")
    print(f"Records: {len(truth):,}, persons {truth.nunique():,}, hard (no valid ID number) "
          f"{int(hard.sum()):,}, twin pairs {len(twins):,} in the truth.\n")  # fmt: skip
    print(
        "| tool | seconds | peak RSS (MiB) | its largest helper process (MiB) | pair P | pair R "
        "| pair F1 | hard P | hard R | B³ F1 | twins merged | clusters | persons split "
        "| persons merged |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print("\nSteps (seconds; pair counts):\n" + "\n".join(steps))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
