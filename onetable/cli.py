"""The `onetable` command line: one entry for the data engineer, statistician and auditor."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from onetable import __version__
from onetable.demo.cli import add_parser as add_demo_parser

console = Console(soft_wrap=True)
EXIT_WARNINGS = 3  # `onetable run`: published, with warnings
EXIT_NOT_PUBLISHED = 4  # `onetable run`: nothing published (rows lost, a stage failed)


def _deployment(args: argparse.Namespace):
    """The deployment folder `--project` or ONETABLE_PROJECT names (the package's defaults
    without one), loaded and checked."""
    import os

    from onetable.schemas.deployment import load_deployment, project_dir

    return load_deployment(project_dir(os.environ, args.project))


def _environ(args: argparse.Namespace) -> dict[str, str]:
    """The environment, with the deployment's folders where it does not set them."""
    import os

    return _deployment(args).environ(os.environ)


def _settings(args: argparse.Namespace):
    from onetable.warehouse.store import StoreSettings

    return StoreSettings.from_env(_environ(args))


def cmd_init(args: argparse.Namespace) -> int:
    from onetable.schemas.deployment import init_deployment

    written = init_deployment(args.dir, args.county)
    console.print(f"wrote a deployment folder with {len(written)} files: {args.dir}")
    console.print("  next: edit onetable.yaml, sources/, sharing/ and divisions.csv "
                  "(docs/new-county.md), then:", highlight=False)  # fmt: skip
    console.print(f"  onetable --project {args.dir} contracts check", highlight=False)
    return 0


def cmd_store_new_key(args: argparse.Namespace) -> int:
    from onetable.warehouse.sharing import PSEUDONYM_KEY_ENV
    from onetable.warehouse.store import KEY_ENV, write_key_file

    path: Path = args.path
    if path.exists():
        console.print(f"[red]{path} exists; not overwriting a key[/red]")
        return 1
    write_key_file(path)
    what, env = ("pseudonym key", PSEUDONYM_KEY_ENV) if args.pseudonym else ("store key", KEY_ENV)
    console.print(f"wrote a new {what} to {path} (mode 600). Use it with:")
    console.print(f"  export {env}=$(cat {path})")
    return 0


def cmd_store_init(args: argparse.Namespace) -> int:
    from onetable.warehouse.ledger import SCHEMAS, current_snapshot
    from onetable.warehouse.store import open_store

    settings = _settings(args)
    with open_store(settings) as con:
        snap = current_snapshot(con)
    console.print(f"store ready in {settings.state_dir} (snapshot {snap})")
    console.print(f"  schemas: {', '.join(SCHEMAS)}; encrypted; extensions from packages, offline")
    return 0


def cmd_store_status(args: argparse.Namespace) -> int:
    from onetable.warehouse.ledger import current_snapshot, run_snapshots
    from onetable.warehouse.store import open_store

    settings = _settings(args)
    with open_store(settings) as con:
        snap = current_snapshot(con)
        runs = run_snapshots(con)
        tables = con.execute(
            "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() "
            "WHERE database_name = current_database() ORDER BY 1, 2"
        ).fetchall()
    console.print(f"store {settings.state_dir}: current snapshot {snap}")
    table = Table("schema", "table", "rows")
    for schema, name, rows in tables:
        table.add_row(schema, name, str(rows))
    console.print(table)
    commits = Table("snapshot", "time", "run", "stage")
    for r in runs[-args.last :]:
        commits.add_row(str(r["snapshot"]), f"{r['at']:%Y-%m-%d %H:%M:%S}", r["run_id"], r["stage"])
    console.print(commits)
    return 0


def cmd_store_cleanup(args: argparse.Namespace) -> int:
    from onetable.pipeline import out_dir
    from onetable.warehouse.ledger import cleanup
    from onetable.warehouse.sharing import settle_extracts
    from onetable.warehouse.store import StoreSettings, open_store

    environ = _environ(args)
    settings = StoreSettings.from_env(environ)
    with open_store(settings) as con:
        removed = cleanup(con)
        extracts = settle_extracts(con, out_dir(environ, settings) / "share")
    console.print(f"removed {len(removed)} file(s) that no snapshot references")
    console.print(
        f"extracts a killed share left: {len(extracts['delivered'])} delivered, "
        f"{len(extracts['removed'])} removed (their audit rows never committed)"
    )
    return 0


def cmd_accounting(args: argparse.Namespace) -> int:
    from onetable.warehouse.ledger import accounting_summary
    from onetable.warehouse.store import open_store

    with open_store(_settings(args)) as con:
        rows = accounting_summary(con, args.run)
    counts = ("read", "kept", "quarantined", "unchanged")
    table = Table("stage", "source", *counts, title=f"run {args.run}")
    for r in rows:
        table.add_row(r["stage"], r["source"], *(str(r[k]) for k in counts))
    console.print(table)
    return 0


def cmd_contracts_check(args: argparse.Namespace) -> int:
    from onetable.schemas.deployment import check_deployment

    deployment = _deployment(args)
    check_deployment(deployment)
    contracts, table = deployment.contracts, deployment.one_table
    console.print(
        f"{deployment.root or 'package defaults'}: OK: {len(contracts.entities)} entities, "
        f"{len(contracts.sources)} sources, {len(deployment.sharing)} sharing entries, one table "
        f"{table.version} ({len(table.indicators)} indicators), division registry "
        f"{contracts.divisions.edition}",
        highlight=False,
    )
    return 0


def print_extract(result: dict, title: str) -> None:
    """The extract stage's counts and note per source, a line each and never cut to the
    terminal's width (a table would cut names and messages); each failure's whole message."""
    console.print(f"[bold]{title}[/bold]")
    for name, r in result.items():
        counts = ", ".join(f"{r[k]} {k}" for k in ("read", "landed", "quarantined", "unchanged"))
        note = "failed:" if r["error"] else r["note"] or ""
        console.print(
            f"  {name}: {r['windows']} window(s), {counts}  {note}".rstrip(), highlight=False
        )
        if r["error"]:
            console.print(f"    [red]{r['error']}[/red]", highlight=False)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the period's stages and end with the verdict; the exit status follows it: 0 published,
    3 published with warnings, 4 not published."""
    from datetime import date

    from onetable.pipeline import (
        STAGES,
        RunContext,
        check_before_run,
        new_run_id,
        run_period,
        verdict,
    )  # fmt: skip
    from onetable.warehouse.masking import scrub
    from onetable.warehouse.periods import Period

    period = Period.parse(args.period) if args.period else Period.last_complete(date.today())
    run_id = new_run_id(period)
    ctx = RunContext.create(
        str(period), run_id, accept_shrink=args.accept_shrink, project=args.project
    )
    check_before_run(ctx)
    console.print(f"run {run_id}: period {period} (input: windows ending by {period.end:%Y-%m-%d})")
    done: dict[str, dict] = {}

    def progress(stage: str, result: dict) -> None:
        done[stage] = result
        if stage == "extract":
            print_extract(result, "extract")
        else:
            console.print(f"{stage}: {result}", highlight=False)

    failure = None
    try:
        run_period(ctx, progress)
    except Exception as exc:  # the verdict names it
        stage = next((s for s in STAGES if s not in done), "the run")
        # onetable's own errors name no personal value; a library's text may hold one
        text = str(exc) if isinstance(exc, _own_errors()) else scrub(str(exc))
        failure = f"{stage} failed: {type(exc).__name__}: {text}"
    result = verdict(done, failure)
    print_verdict(period, result)
    return {"published": 0, "published with warnings": EXIT_WARNINGS}.get(
        result.status, EXIT_NOT_PUBLISHED
    )


def _own_errors() -> tuple[type[Exception], ...]:
    from onetable.connectors.reading import ConnectorError
    from onetable.schemas.contracts import ContractError
    from onetable.warehouse.ledger import AccountingError
    from onetable.warehouse.sharing import SharingError
    from onetable.warehouse.store import StoreError

    return AccountingError, ConnectorError, ContractError, SharingError, StoreError


def print_verdict(period, result) -> None:
    """The run's last lines: the verdict, its reasons, and the sources on each side."""
    colour = {"published": "green", "published with warnings": "yellow"}.get(result.status, "red")
    console.print(f"[{colour}]verdict: {period} {result.status}[/{colour}]", highlight=False)
    for reason in result.reasons:
        console.print(f"  - {reason}", highlight=False)
    console.print(
        f"  sources published: {', '.join(result.published) or 'none'}; not published: "
        f"{', '.join(result.stale) or 'none'}",
        highlight=False,
    )


def cmd_link_records(args: argparse.Namespace) -> int:
    from onetable.linkage.model import load_model, model_path
    from onetable.linkage.records import link_records, read_table, write_table

    mapping = dict(item.split("=", 1) for item in args.map)
    model = load_model(model_path(args.model))
    linked = link_records(read_table(args.input, mapping), model=model)
    write_table(linked, args.output)
    console.print(f"{len(linked)} records, {linked['person_id'].nunique()} persons: {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onetable",
        description="Collect once, share everywhere: village and community data integration.",
    )
    parser.add_argument("--version", action="version", version=f"onetable {__version__}")
    parser.add_argument("--project", type=Path, default=None, metavar="DIR",
                        help="the county's deployment folder (default: ONETABLE_PROJECT; "
                             "without either, the package's defaults)")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="write a new deployment folder with commented examples")
    p.add_argument("dir", type=Path, help="the folder to write (new or empty)")
    p.add_argument("--county", metavar="CODE",
                   help="the county's 6-digit code: its name and its part of the package's "
                        "division tree filled in")  # fmt: skip
    p.set_defaults(func=cmd_init)

    store = sub.add_parser(
        "store", help="the encrypted store (ONETABLE_STATE_DIR, ONETABLE_STORE_KEY)"
    )
    store_sub = store.add_subparsers(dest="store_command", required=True)
    p = store_sub.add_parser("new-key", help="write a new random key to a file")
    p.add_argument("path", type=Path, help="where to write it; keep it outside the state folder")
    p.add_argument("--pseudonym", action="store_true",
                   help="a key for the extracts' pseudonyms (ONETABLE_PSEUDONYM_KEY), not the store's")  # fmt: skip
    p.set_defaults(func=cmd_store_new_key)
    p = store_sub.add_parser("init", help="create the store, install extensions offline")
    p.set_defaults(func=cmd_store_init)
    p = store_sub.add_parser("status", help="tables, current snapshot and recent commits")
    p.add_argument("--last", type=int, default=20, help="how many commits to list")
    p.set_defaults(func=cmd_store_status)
    p = store_sub.add_parser("cleanup", help="remove data files left by a killed writer")
    p.set_defaults(func=cmd_store_cleanup)

    p = sub.add_parser("accounting", help="rows read, kept and quarantined per source for a run")
    p.add_argument("run", help="run id")
    p.set_defaults(func=cmd_accounting)

    p = sub.add_parser("run", help="run the pipeline for one period, every stage in order")
    p.add_argument("--period", help="YYYY-MM (default: the last complete month)")
    p.add_argument("--accept-shrink", action="append", default=[], metavar="SOURCE",
                   help="land SOURCE's snapshot although it ends more records than its mapping's "
                        "max_shrink allows (it was held on purpose; repeatable)")  # fmt: skip
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "link-records", help="link a table of records to person ids (CSV or Parquet)"
    )
    p.add_argument(
        "input",
        type=Path,
        help="record_id, source and the model's input columns (the default model's: name, sex, "
        "birth_date, id_number, phone, address, optionally household)",
    )
    p.add_argument("output", type=Path, help="record_id, person_id (.csv or .parquet)")
    p.add_argument("--map", action="append", default=[], metavar="CANONICAL=COLUMN",
                   help="read a canonical column from another column name, e.g. name=given_name")  # fmt: skip
    p.add_argument("--model", default="person", metavar="FILE",
                   help="a linkage model file, or a shipped one by name: person (Chinese, the "
                        "default), latin_person")  # fmt: skip
    p.set_defaults(func=cmd_link_records)

    contracts = sub.add_parser("contracts", help="the deployment's contracts")
    contracts_sub = contracts.add_subparsers(dest="contracts_command", required=True)
    p = contracts_sub.add_parser(
        "check", help="load and check the whole deployment folder (--project)"
    )
    p.set_defaults(func=cmd_contracts_check)

    add_demo_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from onetable.schemas.contracts import ContractError
    from onetable.warehouse.store import StoreError

    try:
        return args.func(args)
    except (StoreError, ContractError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
