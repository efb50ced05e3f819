"""Benchmark: 1,000,000-row GB18030 CSV and PostgreSQL table (12 person columns) to landing.

Run on demand (never in tests):  .venv/bin/python bench/bench_connectors.py [--rows N ...]
Each measurement runs in a fresh process so its peak memory (ru_maxrss) and CPU time are its own,
`--repeat` times (the median of each figure is reported). Prints a Markdown table for
docs/benchmarks.md, with plain pandas.read_csv / read_sql of the same data, and the machine's
load average: wall-clock figures mean little on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

COLUMNS = ["人员编号", "姓名", "性别", "出生日期", "公民身份号码", "联系电话", "户号", "与户主关系",
           "户籍地址", "现住址", "人员状态", "更新时间"]  # fmt: skip
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"


def _row(i: int, rnd: random.Random) -> list[str]:
    born = f"19{rnd.randint(30, 99)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
    return [
        f"P{i:09d}", rnd.choice(SURNAMES) + rnd.choice(GIVEN) + rnd.choice(GIVEN), rnd.choice("男女"),
        born, f"320324{born.replace('-', '')}{i % 1000:03d}{rnd.choice('0123456789X')}",
        f"1{rnd.randint(3, 9)}{rnd.randint(0, 999999999):09d}", f"H{i // 3:08d}", rnd.choice(["户主", "配偶", "子", "女"]),
        f"江苏省徐州市睢宁县睢城街道{rnd.randint(1, 300)}号", f"睢宁县{rnd.choice(['八一东路', '人民路', '中山路'])}{rnd.randint(1, 500)}号",
        rnd.choice(["正常", "正常", "正常", "迁出"]), f"2026-01-{rnd.randint(1, 28):02d} 10:00:00",
    ]  # fmt: skip


def make_csv(path: Path, rows: int) -> None:
    rnd = random.Random(7)
    with path.open("w", encoding="gb18030", newline="") as f:
        f.write(",".join(COLUMNS) + "\n")
        for i in range(rows):
            f.write(",".join(_row(i, rnd)) + "\n")


def make_table(table: str, rows: int) -> None:
    import sqlalchemy as sa

    rnd = random.Random(7)
    engine = sa.create_engine(PG_URL)
    with engine.begin() as con:
        con.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        cols = ", ".join(
            f"{c} {'TIMESTAMP' if c == '更新时间' else 'DATE' if c == '出生日期' else 'TEXT'}"
            for c in COLUMNS
        )
        con.execute(sa.text(f"CREATE TABLE {table} ({cols})"))
        raw = con.connection.driver_connection
        with raw.cursor().copy(f"COPY {table} FROM STDIN") as copy:
            for i in range(rows):
                copy.write_row(_row(i, rnd))


def _source(kind: str, table: str):
    from onetable.schemas.contracts import Source

    location = (
        {"kind": "file", "path": "*.csv", "format": "csv"}
        if kind == "csv"
        else {"kind": "sql", "conn_id": "bench", "table": table}
    )
    return Source.model_validate({
        "source": f"bench_{kind}", "department": "公安", "name_zh": "基准", "entity": "person",
        "location": location, "record_key": {"column": "人员编号"},
        "read": {"mode": "cursor", "cursor": "更新时间"} if kind == "sql" else {"mode": "snapshot"},
        "required": ["人员编号", "姓名"], "columns": {"姓名": {"to": "name", "convert": "name"}},
    })  # fmt: skip


def _cpu() -> float:
    """CPU seconds of this process so far: on a shared machine, steadier than the wall clock."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(kind: str, target: str, work: str) -> dict:
    """One measurement, in this process: landing through onetable, or plain pandas. Imports stay
    outside the timing, pandas's included: pyarrow imports it on first use (about 0.3 s, once a
    process), which would otherwise land in the first measured read."""
    import pandas as pd
    import sqlalchemy as sa

    if kind in ("csv", "sql"):  # the pandas runs' peak holds pandas's imports only
        from onetable.connectors.extract import extract_source
        from onetable.warehouse.store import StoreSettings, new_key, open_store

        settings = StoreSettings(state_dir=Path(work) / "state", key=new_key())
        with open_store(settings):  # a deployed store: extensions installed, layout made
            pass
    started = time.perf_counter()
    cpu_before = _cpu()
    if kind == "csv-pandas":
        rows = len(pd.read_csv(target, encoding="gb18030", dtype=str))
    elif kind == "sql-pandas":
        rows = len(pd.read_sql(f"SELECT * FROM {target}", sa.create_engine(PG_URL)))
    else:
        source = _source(kind, target)
        data_root = Path(target).parent if kind == "csv" else None
        outcome = extract_source(settings, source, Path("bench.yaml"), end=datetime(2026, 2, 1), run_id="bench",
                                 data_root=data_root, environ={"AIRFLOW_CONN_BENCH": PG_URL})  # fmt: skip
        assert outcome.error is None, outcome.error
        rows = sum(m.landed for m in outcome.manifests)
    seconds = time.perf_counter() - started
    cpu = _cpu() - cpu_before
    return {
        "kind": kind,
        "rows": rows,
        "seconds": seconds,
        "cpu_s": cpu,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(kind: str, target: str, work: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, target, work],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--kinds", nargs="+", default=["csv", "csv-pandas", "sql", "sql-pandas"])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median is kept")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            folder = Path(tmp) / f"csv{n}"
            folder.mkdir()
            csv_path = folder / "persons_20260131.csv"
            make_csv(csv_path, n)
            table = f"bench_persons_{n}"
            make_table(table, n)
            for kind, target in [
                ("csv", csv_path),
                ("csv-pandas", csv_path),
                ("sql", table),
                ("sql-pandas", table),
            ]:
                if kind not in args.kinds:
                    continue
                runs = []
                for i in range(args.repeat):
                    work = Path(tmp) / f"work-{kind}-{n}-{i}"
                    work.mkdir()
                    run = _child(kind, str(target), str(work))
                    assert run["rows"] == n, f"{kind}: {run['rows']:,} rows of {n:,}"
                    runs.append(run)
                runs.sort(key=lambda r: r["seconds"])
                # the median of each figure on its own: a run's peak and its time vary apart
                result = {
                    k: statistics.median(r[k] for r in runs)
                    for k in ("seconds", "cpu_s", "peak_mib")
                }
                result |= {"kind": kind, "n": n, "range": (runs[0]["seconds"], runs[-1]["seconds"])}
                results.append(result)
                each = ", ".join(f"{r['seconds']:.2f} s {r['peak_mib']:.0f} MiB" for r in runs)
                print(f"{kind:11} {n:>9,} rows  {result['seconds']:6.2f} s  {n / result['seconds']:>9,.0f} rows/s  "
                      f"cpu {result['cpu_s']:6.2f} s  peak {result['peak_mib']:6.0f} MiB  (runs: {each})", flush=True)  # fmt: skip
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.python_version()}, load average {os.getloadavg()[1]:.1f} (5 min); "
          f"medians of {args.repeat} runs\n")  # fmt: skip
    print(
        "| what | rows | seconds | rows/s | runs (s) | CPU seconds | peak RSS (MiB) |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    names = {"csv": "GB18030 CSV → landing (onetable)", "csv-pandas": "pandas.read_csv, same file",
             "sql": "PostgreSQL table → landing (onetable)", "sql-pandas": "pandas.read_sql, same table"}  # fmt: skip
    for r in results:
        low, high = r["range"]
        print(
            f"| {names[r['kind']]} | {r['n']:,} | {r['seconds']:.2f} | {r['n'] / r['seconds']:,.0f} | "
            f"{low:.2f}–{high:.2f} | {r['cpu_s']:.2f} | {r['peak_mib']:.0f} |"
        )


if __name__ == "__main__":
    main()
