"""`onetable demo generate`: build the demo county and write its ground truth.

The summary printed is counts only: a name, ID number, phone or address never reaches the
console (DESIGN.md, "Never").
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

from onetable.demo import DEFAULT_START

console = Console()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `demo` command group and its `generate` subcommand."""
    demo = subparsers.add_parser("demo", help="the synthetic demo county")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True)
    p = demo_sub.add_parser(
        "generate", help="build the demo county's people, places and months, with ground truth"
    )
    p.add_argument("--persons", type=int, default=20_000, help="persons at the start")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same files)")
    p.add_argument("--months", type=int, default=3, help="months to simulate (1-24)")
    p.add_argument(
        "--start",
        type=date.fromisoformat,
        default=DEFAULT_START,
        help=f"first day of the period, YYYY-MM-DD (default {DEFAULT_START})",
    )
    p.add_argument("--out", type=Path, required=True, help="folder for truth/ and registry/")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate and write; the summary has counts only. Returns the exit code."""
    from onetable.demo.generate import Settings, generate  # numpy, pandas: only when used
    from onetable.demo.truth import write_truth

    settings = Settings(args.persons, args.seed, args.months, args.start)
    began = time.perf_counter()
    try:
        demo = generate(settings)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    frames = write_truth(demo, args.out)
    seconds = time.perf_counter() - began

    console.print(
        f"demo county {demo.county.name} ({demo.county.code}): {len(demo.villages)} villages, "
        f"{settings.start} to {settings.end} (exclusive), seed {settings.seed}, {seconds:.1f} s"
    )
    households = frames["households"]["kind"].value_counts()
    counts = Table("table", "rows", title="truth")
    counts.add_row("persons", str(len(frames["persons"])))
    for kind in ("户籍户", "实有户"):
        counts.add_row(f"households {kind}", str(households.get(kind, 0)))
    for name in ("addresses", "grids", "units", "key_places", "rentals", "events"):
        counts.add_row(name, str(len(frames[name])))
    console.print(counts)
    by_type = Table("event", "count", title="events by type")
    for kind, n in frames["events"]["type"].value_counts().sort_index().items():
        by_type.add_row(str(kind), str(n))
    console.print(by_type)
    console.print(f"wrote {args.out / 'truth'} and {args.out / 'registry' / 'divisions.csv'}")
    return 0
