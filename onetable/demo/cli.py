"""`onetable demo generate`: build the demo county, write its ground truth and its department
systems; `onetable demo serve`: the grid system's HTTP API.

The summary printed is counts only: a name, ID number, phone or address never reaches the
console (docs/architecture.md, "Never").
"""

from __future__ import annotations

import argparse
import gc
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
    p.add_argument(
        "--error-scale",
        type=float,
        default=1.0,
        help="multiply every documented error rate of the department systems (0: no errors)",
    )
    p.add_argument(
        "--variant",
        type=int,
        choices=(1, 2),
        default=1,
        help="1: 睢宁县 with databases, dated files and an API; 2: 沭阳县 with monthly "
        "deliveries of undated files and its own deployment folder (docs/demo.md)",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="folder for truth/, sources/ and deployment/"
    )
    p.set_defaults(func=cmd_generate)
    s = demo_sub.add_parser(
        "serve", help="serve the grid system's paged JSON API from a generated folder"
    )
    s.add_argument("--out", type=Path, required=True, help="the folder `generate` wrote")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    s.set_defaults(func=cmd_serve)
    r = demo_sub.add_parser(
        "run", help="run the pipeline over every month of a generated folder, serving its API"
    )
    r.add_argument("--out", type=Path, required=True, help="the folder `generate` wrote")
    r.add_argument("--port", type=int, default=0,
                   help="the grid API's port (default 0: any free one, printed)")  # fmt: skip
    r.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """The pipeline over the demo's months; counts only. Returns the exit code."""
    from onetable.demo.run import run_demo

    try:
        run_demo(args.out, args.port)
    except OSError as exc:
        console.print(f"[red]error:[/red] {exc.strerror or exc}", highlight=False)
        return 2
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate and write; the summary has counts only. Returns the exit code. The cyclic
    garbage collector is off meanwhile: the county is millions of objects that live to the end
    and hold no cycles, and its passes over them found nothing and took an eighth of the time."""
    gc.disable()
    try:
        return _generate(args)
    finally:
        gc.enable()


def _generate(args: argparse.Namespace) -> int:
    from onetable.demo import systems as first
    from onetable.demo import variant2 as second
    from onetable.demo.county import COUNTY_CODE
    from onetable.demo.deployment import write_deployment
    from onetable.demo.generate import Settings, generate  # numpy, pandas: only when used
    from onetable.demo.truth import write_truth

    county = second.COUNTY_CODE if args.variant == 2 else COUNTY_CODE
    write_sources = second.write_sources if args.variant == 2 else first.write_sources
    settings = Settings(args.persons, args.seed, args.months, args.start, county)
    if args.error_scale < 0:
        console.print("[red]error:[/red] --error-scale must be 0 or more", highlight=False)
        return 2
    began = time.perf_counter()
    try:
        demo = generate(settings)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    frames = write_truth(demo, args.out)
    deployment = write_deployment(demo, frames["grids"], args.out, f"variant{args.variant}")
    place = f"{demo.county.name} ({demo.county.code}): {len(demo.villages)} villages"
    households = frames["households"]["kind"].value_counts()
    counts = Table("table", "rows", title="truth")
    counts.add_row("persons", str(len(frames["persons"])))
    for kind in ("户籍户", "实有户"):
        counts.add_row(f"households {kind}", str(households.get(kind, 0)))
    for name in ("addresses", "grids", "units", "key_places", "rentals", "events"):
        counts.add_row(name, str(len(frames[name])))
    by_type = Table("event", "count", title="events by type")
    for kind, n in frames["events"]["type"].value_counts().sort_index().items():
        by_type.add_row(str(kind), str(n))
    del demo, frames  # the systems are built from the files just written: let the county go
    systems = write_sources(args.out, args.error_scale)
    seconds = time.perf_counter() - began

    console.print(
        f"demo county {place}, "
        f"{settings.start} to {settings.end} (exclusive), seed {settings.seed}, {seconds:.1f} s"
    )
    console.print(counts)
    console.print(by_type)
    sources = Table(
        "source", "records by month end", "versions", "with errors",
        title=f"department systems (error scale {args.error_scale:g})",
    )  # fmt: skip
    for name, c in systems.items():
        months = " → ".join(str(n) for n in c.records)
        sources.add_row(name, months, str(c.versions), str(c.flawed))
    console.print(sources)
    console.print(
        f"wrote {args.out / 'truth'}, {args.out / 'sources'} and the county's deployment folder "
        f"{deployment}"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the grid API until Ctrl-C or SIGTERM; prints its URL only."""
    from onetable.demo.serve import serve

    return serve(args.out, args.host, args.port)
