"""`onetable demo run`: the whole pipeline over the demo county's months, the way a county data office
runs it: the department systems in DIR/sources, the grid system's API served on loopback, the
store in DIR/state (its key outside it), the outputs in DIR/out. Prints counts only."""

from __future__ import annotations

import os
import shutil
import threading
from datetime import date
from importlib.resources import files
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)
DEMO_URL = "http://127.0.0.1:8765"  # what the shipped mappings name; replaced by the real port


def _key_file(path: Path) -> str:
    """A random key kept in a file of its own (mode 600), made the first time."""
    from onetable.warehouse.store import write_key_file

    if not path.exists():
        write_key_file(path)
        console.print(f"made a key: {path}")
    return path.read_text().strip()


def mappings(out: Path, url: str) -> Path:
    """The demo's source mappings for this deployment: the shipped ones, with the API's URL."""
    folder = out / "mappings"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for item in (files("onetable.demo") / "sources").iterdir():
        if item.name.endswith(".yaml"):
            (folder / item.name).write_text(
                item.read_text(encoding="utf-8").replace(DEMO_URL, url), encoding="utf-8"
            )
    return folder


def demo_environ(out: Path, url: str) -> dict[str, str]:
    """The environment a deployment sets: store, keys, mappings, data root, connections."""
    out = out.resolve()
    sources = out / "sources"
    return {
        **os.environ,
        "ONETABLE_STATE_DIR": str(out / "state"),
        "ONETABLE_STORE_KEY": _key_file(out / "onetable.key"),
        "ONETABLE_PSEUDONYM_KEY": _key_file(out / "pseudonym.key"),
        "ONETABLE_SOURCES_DIR": str(mappings(out, url)),
        "ONETABLE_DATA_ROOT": str(sources),
        "ONETABLE_OUT_DIR": str(out / "out"),
    }


def databases_as_of(out: Path, month_end: str) -> dict[str, str]:
    """The two department databases as they stood at a month end: a database keeps only its
    current rows, so replaying a month reads the copy the generator kept of that month."""
    folder = out.resolve() / "sources" / "as_of" / month_end
    return {
        "AIRFLOW_CONN_DEMO_HOUSEHOLD_REGISTRY": f"sqlite:///{folder / 'household_registry.db'}",
        "AIRFLOW_CONN_DEMO_HEALTH": f"sqlite:///{folder / 'health.db'}",
    }


def truth_persons(out: Path, month_end: date) -> int:
    """Real persons the departments' records show at a month end (ground truth)."""
    from onetable.demo.truth import load_truth, records_on

    truth = load_truth(out / "truth")
    sources = truth.source_records["source"].unique()
    ids = set()
    for source in sources:
        ids |= set(records_on(truth, source, month_end)["person_id"].dropna())
    return len(ids)


def _extract_table(period: str, result: dict) -> Table:
    table = Table(
        "source", "read", "landed", "quarantined", "unchanged", "note", title=f"{period} extract"
    )
    for name, r in result.items():
        table.add_row(name, str(r["read"]), str(r["landed"]), str(r["quarantined"]), str(r["unchanged"]),
                      r["error"] or r["note"] or "")  # fmt: skip
    return table


def run_demo(out: Path, port: int = 8765) -> dict[str, dict]:
    """Serve the grid API, run every month of the demo, print counts; returns each period's results."""
    import json

    from onetable.demo.serve import make_server
    from onetable.pipeline import RunContext, new_run_id, run_period
    from onetable.warehouse.periods import Period
    from onetable.warehouse.store import open_store

    out = out.resolve()
    meta = json.loads((out / "truth" / "meta.json").read_text(encoding="utf-8"))
    server = make_server(out, "127.0.0.1", port)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, name="demo-grid-api", daemon=True).start()
    console.print(f"grid system API: {url}")
    environ = demo_environ(out, url)
    results = {}
    try:
        for month_end in meta["month_ends"]:
            period = Period.parse(month_end[:7])
            ctx = RunContext.create(
                str(period), new_run_id(period), {**environ, **databases_as_of(out, month_end)}
            )
            results[str(period)] = run_period(ctx)
            console.print(_extract_table(str(period), results[str(period)]["extract"]))
            with open_store(ctx.store) as con:
                (core,) = con.execute(
                    "SELECT count(*) FILTER (WHERE active) FROM marts.person_period WHERE period = ?",
                    [str(period)],
                ).fetchone()
            truth = truth_persons(out, date.fromisoformat(month_end))
            link = results[str(period)]["link"]
            console.print(
                f"{period}: {link['records']} person records linked to {core} persons in the core; "
                f"the truth has {truth} ({(core - truth) / truth:+.1%}); "
                f"indicator rule violations: {len(results[str(period)]['one_table']['violations'])}"
            )
    finally:
        server.shutdown()
        server.server_close()
    console.print(
        f"store (encrypted): {out / 'state'}; keys: {out / 'onetable.key'}, {out / 'pseudonym.key'}"
    )
    console.print(f"department systems: {out / 'sources'}; ground truth: {out / 'truth'}")
    console.print(
        f"extracts: {out / 'out' / 'share'}; quality docs: {out / 'out' / 'quality' / 'data_docs'}"
    )
    return results
