"""The demo county's generator (issue 16): seconds and peak RSS of `onetable demo generate`.

`python bench/bench_generate.py --persons 100000 1000000 [--months 1] [--variant 1]` runs the
generation the linkage benchmark makes (bench/linkage_data.py: seed 1, one month, the documented
error rates) in a fresh process for each size, into a temporary folder, and prints a Markdown
table: wall seconds, CPU seconds (user + system) and the process's peak RSS. Each size runs in a
process of its own, started from this one's, so that peaks do not mix (getrusage of the
children reports the largest child so far, hence one size per child of a child). Counts only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from bench_linkage import machine  # noqa: E402


def measure(persons: int, months: int, variant: int, out: Path) -> dict[str, float]:
    """One generation in a child process: wall seconds, CPU seconds and peak RSS (MiB)."""
    onetable = Path(sys.executable).with_name("onetable")
    command = [onetable, "demo", "generate", "--out", out, "--persons", str(persons),
               "--seed", "1", "--months", str(months), "--variant", str(variant)]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return dict(wall=wall, cpu=usage.ru_utime + usage.ru_stime, peak_mib=usage.ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[100_000])
    parser.add_argument("--months", type=int, default=1)
    parser.add_argument("--variant", type=int, choices=(1, 2), default=1)
    args = parser.parse_args()
    rows = []
    for persons in args.persons:
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, __file__, "--worker", str(persons), str(args.months),
                       str(args.variant), tmp]  # fmt: skip
            done = subprocess.run(command, check=True, capture_output=True, text=True)
        f = json.loads(done.stdout)
        rows.append(f"| {persons:,} | {args.months} | {f['wall']:.0f} | {f['cpu']:.0f} "
                    f"| {f['peak_mib']:,.0f} |")  # fmt: skip
    print(f"Machine: {machine()}. Date: {date.today().isoformat()}.")
    print(
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}` (variant {args.variant})\n"
    )
    print("| persons | months | seconds | CPU seconds | peak RSS (MiB) |")
    print("|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        persons, months, variant = (int(a) for a in sys.argv[2:5])
        print(json.dumps(measure(persons, months, variant, Path(sys.argv[5]))))
    else:
        main()
