"""`onetable demo run`: the whole pipeline over the demo county's months, the way a county data office
runs it: the department systems in DIR/sources, the grid system's API served on loopback, the
store in DIR/state (its key outside it), the outputs in DIR/out. Prints counts only."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    import pandas as pd

console = Console(soft_wrap=True)


def _key_file(path: Path) -> str:
    """A random key kept in a file of its own (mode 600), made the first time."""
    from onetable.warehouse.store import write_key_file

    if not path.exists():
        write_key_file(path)
        console.print(f"made a key: {path}")
    return path.read_text().strip()


def demo_environ(out: Path, url: str) -> dict[str, str]:
    """The environment a deployment sets: the deployment folder (which says where the store, the
    data and the outputs are), the keys, and the grid API's connection (`url`)."""
    out = out.resolve()
    return {
        **os.environ,
        "ONETABLE_PROJECT": str(out / "deployment"),
        "ONETABLE_STORE_KEY": _key_file(out / "onetable.key"),
        "ONETABLE_PSEUDONYM_KEY": _key_file(out / "pseudonym.key"),
        "AIRFLOW_CONN_DEMO_GRID": url,
    }


def databases_as_of(out: Path, month_end: str) -> dict[str, str]:
    """The two department databases as they stood at a month end: a database keeps only its
    current rows, so replaying a month reads the copy the generator kept of that month."""
    folder = out.resolve() / "sources" / "as_of" / month_end
    return {
        "AIRFLOW_CONN_DEMO_HOUSEHOLD_REGISTRY": f"sqlite:///{folder / 'household_registry.db'}",
        "AIRFLOW_CONN_DEMO_HEALTH": f"sqlite:///{folder / 'health.db'}",
    }


def linkage_against_truth(out: Path, registry: pd.DataFrame) -> dict[str, float | int]:
    """The id registry (source, record_key, person_id) against the ground truth of the same
    records: pairwise precision and recall, persons found and true persons behind them. Records
    the truth gives no person (none so far) are left out."""
    from onetable.demo.truth import load_truth
    from onetable.linkage.evaluate import pairwise

    truth = load_truth(out / "truth").source_records[["source", "record_key", "person_id"]]
    truth = truth.drop_duplicates(["source", "record_key"])
    both = registry.merge(truth, on=["source", "record_key"], suffixes=("", "_true"))
    both = both.dropna(subset=["person_id_true"])
    scores = pairwise(both["person_id"].to_numpy(), both["person_id_true"].to_numpy())
    return {
        "records": len(both),
        "persons": both["person_id"].nunique(),
        "true_persons": both["person_id_true"].nunique(),
        "precision": scores["precision"],
        "recall": scores["recall"],
    }


def one_table_against_truth(out: Path, con, table, period) -> pd.DataFrame:
    """The published one table of `period` against the truth's, per village and indicator of the
    package's system (a county's own indicators have no truth): village_code, indicator, value,
    truth, and whether they agree within max(1, 1%) of the truth."""
    from onetable.demo.truth import load_truth, one_table_on
    from onetable.schemas.one_table import load_one_table

    package = {i.id for i in load_one_table().indicators}
    where = {i.id: i.where for i in table.indicators if i.id in package}
    truth = one_table_on(load_truth(out / "truth"), where, period.reference_date)
    got = con.execute(
        "SELECT village_code, indicator, value FROM marts.one_table WHERE period = ?", [str(period)]
    ).df()
    both = truth.merge(got, on=["village_code", "indicator"], how="outer", suffixes=("_t", ""))
    both = both[both["indicator"].isin(where)].fillna({"value": 0, "value_t": 0})
    both = both.rename(columns={"value_t": "truth"})
    both["agrees"] = (both["value"] - both["truth"]).abs() <= (0.01 * both["truth"]).clip(lower=1)
    return both.reset_index(drop=True)


def run_demo(out: Path, port: int = 0) -> dict[str, dict]:
    """Run every month of a generated demo county through its deployment folder, printing
    counts only; returns each period's results. The first county's grid system is an API, served
    here (port 0: any free one), and its databases are replayed as they stood at each month end;
    the second county's departments deliver a month's files before its run."""
    import json

    from onetable.cli import print_extract, print_verdict
    from onetable.demo.serve import make_server
    from onetable.demo.variant2 import deliver
    from onetable.pipeline import RunContext, new_run_id, run_period, verdict
    from onetable.warehouse.periods import Period
    from onetable.warehouse.store import open_store

    out = out.resolve()
    meta = json.loads((out / "truth" / "meta.json").read_text(encoding="utf-8"))
    deliveries = (out / "sources" / "deliveries").is_dir()  # the second county: files, no API
    server = None if deliveries else _serve(make_server, out, port)
    url = f"http://127.0.0.1:{server.server_address[1]}" if server else "http://127.0.0.1:1"
    console.print(f"deployment folder: {out / 'deployment'}", highlight=False)
    environ = demo_environ(out, url)
    results = {}
    try:
        for month_end in meta["month_ends"]:
            period = Period.parse(month_end[:7])
            if deliveries:
                console.print(f"{period}: {len(deliver(out, str(period)))} file(s) delivered")
            replay = {} if deliveries else databases_as_of(out, month_end)
            ctx = RunContext.create(str(period), new_run_id(period), {**environ, **replay})
            results[str(period)] = run_period(ctx)
            print_extract(results[str(period)]["extract"], f"{period} extract")
            print_verdict(period, verdict(results[str(period)]))
            with open_store(ctx.store) as con:
                registry = con.execute(
                    "SELECT source, record_key, person_id FROM core.person_registry"
                ).df()
                table = one_table_against_truth(out, con, ctx.deployment.one_table, period)
            got = linkage_against_truth(out, registry)
            console.print(
                f"{period}: {got['records']} person records linked to {got['persons']} persons; "
                f"the truth has {got['true_persons']} behind them; pairwise precision "
                f"{got['precision']:.4f}, recall {got['recall']:.4f}; one table: "
                f"{int(table['agrees'].sum())} of {len(table)} village figures within max(1, 1%) "
                f"of the truth; indicator rule violations: "
                f"{len(results[str(period)]['one_table']['violations'])}",
                highlight=False,
            )
    finally:
        if server:
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


def _serve(make_server, out: Path, port: int):
    """The first county's grid API on loopback, in a thread."""
    try:
        server = make_server(out, "127.0.0.1", port)
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"the demo's grid API cannot listen on 127.0.0.1:{port}: {exc.strerror} "
            "(--port 0 takes any free port)",
        ) from None
    threading.Thread(target=server.serve_forever, name="demo-grid-api", daemon=True).start()
    console.print(f"grid system API: http://127.0.0.1:{server.server_address[1]} "
                  "(AIRFLOW_CONN_DEMO_GRID)", highlight=False)  # fmt: skip
    return server
