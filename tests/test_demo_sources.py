"""The demo county, part 2: the seven department systems. Every system is read back through the
real connectors month by month, every record's truth is checked against the truth files, and the
errors seen in the data (not only the flags) are compared with the documented rates.

Assertions compare counts and booleans, never values: a failure must not print a name, an ID
number, a phone or an address.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import unicodedata
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import openpyxl
import pandas as pd
import pytest
from pypinyin import Style, pinyin

import onetable.demo
from onetable.connectors.extract import extract_source
from onetable.demo import errors as E
from onetable.demo.cli import add_parser
from onetable.demo.formats import address_text
from onetable.demo.serve import make_server
from onetable.demo.truth import Truth, load_truth, records_on, registration_on, residence_on
from onetable.schemas.contracts import load_contracts
from onetable.schemas.rules import is_valid_credit_code
from onetable.warehouse.store import StoreSettings, new_key, open_store

SMALL = 3000
SEED = 1
MONTH_ENDS = [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)]
RUN_ENDS = [datetime(2026, 2, 1), datetime(2026, 3, 1), datetime(2026, 4, 1)]
MAPPINGS = Path(onetable.demo.__file__).parent / "deployments" / "variant1" / "sources"
SQL = {"household_registry": "户籍人口", "health": "居民健康档案"}
FILES = {
    "civil_affairs": "civil_affairs/民政对象名册_{}.csv",
    "disability": "disability/持证残疾人名册_{}.xlsx",
    "rental": "rental/出租房屋登记_{}.csv",
    "market": "market/市场主体登记_{}.jsonl",
}
GRID = {"grid_residents": "residents.jsonl", "grid_key_places": "key_places.jsonl"}
SNAPSHOT = set(FILES)
ALL = [*SQL, *FILES, *GRID]


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="onetable")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["demo", *argv])
    return args.func(args)


def generate(folder: Path, *extra: str, persons: int = SMALL) -> Path:
    assert run_cli("generate", "--persons", str(persons), "--seed", str(SEED),
                   "--out", str(folder), *extra) == 0  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("county"))


@pytest.fixture(scope="module")
def truth(out: Path) -> Truth:
    return load_truth(out / "truth")


@pytest.fixture(scope="module")
def contracts():
    return load_contracts(sources_dir=MAPPINGS)


@pytest.fixture(scope="module")
def grid_url(out: Path):
    server = make_server(out, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, extension_cache: Path) -> StoreSettings:
    settings = StoreSettings(
        state_dir=tmp_path_factory.mktemp("store") / "state", key=new_key(), lock_timeout_s=60
    )
    shutil.copytree(extension_cache, settings.extension_dir, copy_function=os.link)
    return settings


def environ(out: Path, m: int) -> dict[str, str]:
    """The SQL systems as they stood at month end m: what a run at that time would read."""
    folder = out / "sources" / "as_of" / MONTH_ENDS[m].isoformat()
    return {f"AIRFLOW_CONN_DEMO_{n.upper()}": f"sqlite:///{folder / (n + '.db')}" for n in SQL}


@pytest.fixture(scope="module")
def landed(out, contracts, store, grid_url) -> dict[str, list]:
    """Every source extracted month by month (ends 2026-02-01, -03-01, -04-01) into one store."""
    manifests: dict[str, list] = {}
    for name in ALL:
        source = contracts.sources[name]
        manifests[name] = []
        for m, end in enumerate(RUN_ENDS):
            outcome = extract_source(
                store, source, MAPPINGS / f"{name}.yaml", end=end, run_id=f"{name}-{m}",
                data_root=out / "sources", environ={**environ(out, m), "AIRFLOW_CONN_DEMO_GRID": grid_url},
            )  # fmt: skip
            assert outcome.error is None, outcome.error
            assert len(outcome.manifests) == 1, (name, m, outcome.note)
            manifests[name].append(outcome.manifests[0])
    return manifests


def landing(store: StoreSettings, name: str, m: int) -> pd.DataFrame:
    """The rows landed in window m (upserts of the latest version), department columns only."""
    with open_store(store) as con:
        frame = con.execute(
            f"SELECT * FROM landing.\"{name}\" WHERE _window_end = ? AND _op = 'upsert' "
            f"QUALIFY _version = max(_version) OVER ()",
            [RUN_ENDS[m]],
        ).df()
    return frame


def columns_of(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if not c.startswith("_")]


# ---- what each system shows, read without the connectors ------------------------------------


def _text(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value)


def shown(out: Path, name: str, m: int) -> dict[str, dict[str, str | None]]:
    """The records system `name` shows at month end m, by key, every value as text."""
    stamp = MONTH_ENDS[m].strftime("%Y%m%d")
    root = out / "sources"
    if name in SQL:
        db = root / "as_of" / MONTH_ENDS[m].isoformat() / f"{name}.db"
        with sqlite3.connect(db) as con:
            cur = con.execute(f'SELECT * FROM "{SQL[name]}"')
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, r, strict=True)) for r in cur]
    elif name in GRID:
        latest: dict[str, dict] = {}
        until = (MONTH_ENDS[m] + timedelta(days=1)).isoformat()
        for line in (root / "grid" / GRID[name]).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r["更新时间"] < until:
                latest[r[KEYS[name]]] = r
        rows = list(latest.values())
    elif name == "market":
        path = root / FILES[name].format(stamp)
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    elif name == "disability":
        book = openpyxl.load_workbook(root / FILES[name].format(stamp), read_only=True)
        cells = list(book.active.iter_rows(values_only=True))
        book.close()
        rows = [dict(zip(cells[1], r, strict=True)) for r in cells[2:]]
    else:
        encoding = "gb18030" if name == "civil_affairs" else "utf-8-sig"
        raw = (root / FILES[name].format(stamp)).read_bytes().decode(encoding)
        table = list(csv.reader(io.StringIO(raw, newline="")))
        if name == "civil_affairs":
            table = table[1:]  # the title row
        rows = [dict(zip(table[0], r, strict=True)) for r in table[1:]]
    return {r[KEYS[name]]: {k: _text(v) for k, v in r.items()} for r in rows}


KEYS = {
    "household_registry": "人员编号", "health": "健康档案编号", "civil_affairs": "救助编号",
    "disability": "残疾人证号", "rental": "登记编号", "market": "统一社会信用代码",
    "grid_residents": "网格人员ID", "grid_key_places": "场所编号",
}  # fmt: skip


# ---- the command, the layout and the mappings --------------------------------------------


def test_layout_one_file_a_month_and_databases_as_of_each_month_end(out: Path):
    root = out / "sources"
    stamps = [d.strftime("%Y%m%d") for d in MONTH_ENDS]
    for pattern in FILES.values():
        folder = root / pattern.split("/")[0]
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            Path(pattern.format(s)).name for s in stamps
        )
    for name in SQL:
        assert (root / f"{name}.db").read_bytes() == (
            root / "as_of" / MONTH_ENDS[-1].isoformat() / f"{name}.db"
        ).read_bytes()
        assert all((root / "as_of" / d.isoformat() / f"{name}.db").is_file() for d in MONTH_ENDS)
    assert sorted(p.name for p in (root / "grid").iterdir()) == sorted(GRID.values())
    assert (out / "truth" / "source_records.parquet").is_file()
    readme = (out / "truth" / "README.md").read_text(encoding="utf-8")
    for constant in ("1.5%", "0.8%", "15%", "8%", "4%", "1%", "5%"):
        assert constant in readme


def test_mappings_load_and_name_the_systems_columns(out: Path, contracts):
    assert set(contracts.sources) == set(ALL)
    for name, source in contracts.sources.items():
        columns = set(next(iter(shown(out, name, 0).values())))
        used = set(source.declared_columns())  # derived columns are not the system's
        assert used and used - columns == set(), name
        expected = "snapshot" if name in SNAPSHOT else "cursor"
        assert source.read.mode == expected, name


def test_same_arguments_give_identical_files(out: Path, tmp_path: Path):
    again = generate(tmp_path / "again")
    for folder in ("sources", "truth"):
        first = {
            p.relative_to(out): p.read_bytes() for p in (out / folder).rglob("*") if p.is_file()
        }
        second = {
            p.relative_to(again): p.read_bytes() for p in (again / folder).rglob("*") if p.is_file()
        }
        assert sorted(first) == sorted(second)
        different = [str(p) for p in first if first[p] != second[p]]
        assert different == []


# ---- read back through the connectors --------------------------------------------------------


def test_every_row_read_is_landed_quarantined_or_unchanged(landed):
    for name, manifests in landed.items():
        for m, man in enumerate(manifests):
            assert man.read == man.landed + man.quarantined + man.unchanged, (name, m)
            assert man.quarantined == 0, (name, m)
            assert man.missing_columns == [], (name, m)
            assert man.read > 0 or m > 0, (name, m)


def test_each_window_reads_what_the_system_shows_that_month(landed, truth):
    wrong = {}
    for name, manifests in landed.items():
        for m, man in enumerate(manifests):
            now = records_on(truth, name, MONTH_ENDS[m])
            new = int((now["valid_from"] == pd.Timestamp(MONTH_ENDS[m])).sum())
            if name in SNAPSHOT:
                before = (
                    set(records_on(truth, name, MONTH_ENDS[m - 1])["record_key"]) if m else set()
                )
                expected = (len(now), new, len(before - set(now["record_key"])))
            else:
                at = now["updated_at"]
                window = at < pd.Timestamp(RUN_ENDS[m])
                if m:
                    window &= at >= pd.Timestamp(RUN_ENDS[m - 1] - timedelta(days=1))
                expected = (int(window.sum()), new, 0)
            got = (man.read, man.landed, man.tombstones)
            if got != expected:
                wrong[(name, m)] = (got, expected)
    assert wrong == {}


def test_landed_rows_equal_the_systems_rows_as_text(landed, store, out, truth):
    """GB18030, the BOM, the XLSX title row, full-width digits, 15-digit numbers, dates in
    cells, JSON numbers: every landed value is the text the system shows, and every record new
    or changed that month is landed (a row left out would otherwise pass unseen)."""
    mismatched = {}
    for name in landed:
        for m in range(len(MONTH_ENDS)):
            rows = landing(store, name, m)
            system = shown(out, name, m)
            columns = columns_of(rows)
            now = records_on(truth, name, MONTH_ENDS[m])
            changed = set(now.loc[now["valid_from"] == pd.Timestamp(MONTH_ENDS[m]), "record_key"])
            bad = len(changed ^ set(rows[KEYS[name]]))  # a count: a key may hold an ID number
            for record in rows[columns].to_dict("records"):
                want = system.get(record[KEYS[name]])
                got = {k: _text(v) for k, v in record.items() if k in (want or {})}
                bad += want is None or got != want or set(want) - set(got) != set()
            if bad:
                mismatched[(name, m)] = bad
    assert mismatched == {}
    civil = landing(store, "civil_affairs", 0)
    assert civil["身份证号"].str.fullmatch(r"\d{15}").sum() > 0  # legacy numbers kept as text
    assert (
        civil["出生日期"].str.contains("年").sum() > 0
        and civil["出生日期"].str.fullmatch(r"\d{8}").sum() > 0
    )
    assert not civil["姓名"].str.contains("\ufffd").any()
    cards = landing(store, "disability", 0)
    assert columns_of(cards)[0] == "残疾人证号"  # the title row was passed over
    assert cards["残疾人证号"].str.contains("[０-９]").sum() > 0
    assert cards["身份证号"].str.endswith("x").sum() > 0
    assert cards["发证日期"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert columns_of(landing(store, "rental", 0))[0] == "登记编号"  # no BOM in the name


def test_ended_records_and_disappearing_rows(landed, store, truth):
    """Status ends land as deleted rows; rows missing from the next file land as tombstones."""
    for name in ("household_registry", "health", "grid_residents"):
        ended = 0
        for m in (1, 2):
            rows = landing(store, name, m)
            now = records_on(truth, name, MONTH_ENDS[m])
            new = now[now["valid_from"] == pd.Timestamp(MONTH_ENDS[m])]
            assert int(rows["_deleted"].sum()) == int(new["deleted"].sum()), (name, m)
            ended += int(rows["_deleted"].sum())
        assert ended > 0, name
    assert sum(man.tombstones for n in SNAPSHOT for man in landed[n][1:]) > 0
    for name in ("civil_affairs", "rental"):
        assert sum(man.tombstones for man in landed[name]) > 0, name
    with open_store(store) as con:
        tombs = con.execute("SELECT count(*) FROM landing.market WHERE _op = 'delete'").fetchone()[
            0
        ]
    assert tombs == sum(man.tombstones for man in landed["market"])
    # a merged duplicate health archive is deleted from the database: gone from the next month
    merged = truth.source_records.query("source == 'health'").groupby("record_key")["valid_to"]
    assert merged.apply(lambda s: s.notna().all()).sum() > 0


def test_a_row_changed_later_is_read_again_in_its_month(landed, store, truth):
    for name in ("household_registry", "health", "grid_residents"):
        first = set(landing(store, name, 0)[KEYS[name]])
        again = 0
        for m in (1, 2):
            again += len(first & set(landing(store, name, m)[KEYS[name]]))
        assert again > 0, name


# ---- the truth of every record ---------------------------------------------------------------


def test_every_record_points_at_real_people_households_addresses_and_units(truth, out):
    r = truth.source_records
    persons, units = set(truth.persons["person_id"]), set(truth.units["unit_id"])
    households, addresses = (
        set(truth.households["household_id"]),
        set(truth.addresses["address_id"]),
    )
    checks = {
        "person_id": persons, "related_person_id": persons, "household_id": households,
        "address_id": addresses, "shown_address_id": addresses, "unit_id": units,
    }  # fmt: skip
    unknown = {c: int((r[c].notna() & ~r[c].isin(ids)).sum()) for c, ids in checks.items()}
    assert unknown == dict.fromkeys(checks, 0)
    people = r[r["source"].isin(["household_registry", "health", "civil_affairs",
                                 "disability", "rental", "grid_residents"])]  # fmt: skip
    assert people["person_id"].notna().all() and people["address_id"].notna().all()
    assert r.loc[r["source"].isin(["market", "grid_key_places"]), "unit_id"].notna().all()
    registry = r[r["source"] == "household_registry"]
    assert registry["household_id"].str.startswith("RH").all()
    assert (
        r.loc[r["source"] != "household_registry", "household_id"]
        .dropna()
        .str.startswith("AH")
        .all()
    )
    # the keys in the truth are the keys in the data, month by month
    differ = {}
    for name in ALL:
        for m, day in enumerate(MONTH_ENDS):
            records = records_on(truth, name, day)
            keys, data = set(records["record_key"]), set(shown(out, name, m))
            if len(keys) != len(records) or keys != data:
                differ[(name, m)] = len(keys ^ data)  # a count: a key may hold an ID number
    assert differ == {}


def test_records_of_living_residents_say_where_they_live(truth):
    """Open health archives and grid records place the person where the truth does; the
    registry places everyone in their 户籍户."""
    for m, day in enumerate(MONTH_ENDS):
        residence = residence_on(truth, day).set_index("person_id")
        registration = registration_on(truth, day).set_index("person_id")
        for name in ("health", "grid_residents"):
            now = records_on(truth, name, day)
            open_ = now[~now["deleted"]]
            place = residence.reindex(open_["person_id"])
            assert (place["address_id"].to_numpy() == open_["address_id"].to_numpy()).all(), (
                name,
                m,
            )
            assert (place["household_id"].to_numpy() == open_["household_id"].to_numpy()).all()
        now = records_on(truth, "household_registry", day)
        reg = registration.reindex(now["person_id"])
        assert (reg["household_id"].to_numpy() == now["household_id"].to_numpy()).all(), m
        assert (reg["status"].to_numpy() == now["status"].to_numpy()).all(), m


# ---- errors seen in the data against the documented rates ----------------------------------


def _norm_id(value: str | None) -> str | None:
    return unicodedata.normalize("NFKC", value).upper() if value else None


def _norm_name(value: str) -> str:
    text = "".join(unicodedata.normalize("NFKC", value).split())
    return text.replace(".", "·")


def _readings(c: str) -> set[str]:
    return set(pinyin(c, style=Style.TONE, heteronym=True)[0])


def _parse_date(value: str) -> date:
    value = unicodedata.normalize("NFKC", value).replace(".", "-")  # 1950.03.02, full-width
    if "年" in value:
        y, rest = value.split("年")
        mo, d = rest.rstrip("日").split("月")
        return date(int(y), int(mo), int(d))
    value = value.replace("-", "")
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


def classify_id(shown_id: str | None, true_id: str) -> set[str] | None:
    """The errors that turn the true number into the shown one (None: no explanation)."""
    if shown_id is None:
        return {"id_missing"}
    if len(shown_id) == 15:
        true_id = true_id[:6] + true_id[8:17]
    if len(shown_id) != len(true_id):
        return None
    diff = [i for i in range(len(true_id)) if shown_id[i] != true_id[i]]
    swapped = [
        i for i in diff
        if i + 1 in diff and shown_id[i] == true_id[i + 1] and shown_id[i + 1] == true_id[i]
    ]  # fmt: skip
    found = set()
    if swapped:
        found.add("id_transposition")
        diff = [i for i in diff if i not in (swapped[0], swapped[0] + 1)]
    if len(diff) == 1:
        found.add("id_digit_typo")
    elif diff:
        return None
    return found


def classify_name(shown_name: str, true_name: str) -> set[str] | None:
    a, b = _norm_name(shown_name), true_name
    if len(a) != len(b):
        return None
    found = set()
    shapes = E.similar_shapes()
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        if _readings(x) & _readings(y) and x in E.homophones(y):
            found.add("name_homophone")
        elif x in shapes.get(y, ""):
            found.add("name_similar_shape")
        else:
            return None
    return found


# per system: (ID column, name column, birth date column, address column and its level, whose)
FIELDS = {
    "civil_affairs": ("身份证号", "姓名", "出生日期", ("居住地址", "township"), "person_id"),
    "health": ("身份证号", "姓名", "出生日期", ("现住址", "county"), "person_id"),
    "disability": ("身份证号", "姓名", None, ("现住址", "province"), "person_id"),
    "rental": ("承租人证件号码", "承租人姓名", None, None, "person_id"),
    "grid_residents": ("身份证号", "姓名", "出生日期", ("居住地址", "village"), "person_id"),
    "market": ("证件号码", "法定代表人", None, None, "related_person_id"),
}


def earlier_addresses(truth: Truth, day: date) -> dict[str, str]:
    """Per resident, an address they had before (a move in the period, else the 户籍 home of
    someone living elsewhere in the county), computed from the truth independently."""
    at = pd.Timestamp(day)
    moves = truth.events[(truth.events["type"] == "move_in_county") & (truth.events["date"] <= at)]
    moved = moves.sort_values("date").groupby("person_id")["from_address_id"].last().to_dict()
    here = residence_on(truth, day).set_index("person_id")["address_id"]
    reg = registration_on(truth, day)
    reg = reg[(reg["status"] == "正常") & reg["household_id"].notna()].set_index("person_id")
    out = {}
    for pid, current in here.items():
        before = moved.get(pid)
        if before is None and pid in reg.index and reg.at[pid, "address_id"] != current:
            before = reg.at[pid, "address_id"]
        if before is not None and before != current:
            out[pid] = before
    return out


def observe(out: Path, truth: Truth, m: int):
    """Errors seen in the data at month end m: {error: (seen, eligible)}, and how many records'
    data disagree with their flags in the truth (or show a difference nothing explains)."""
    day = MONTH_ENDS[m]
    persons = truth.persons.set_index("person_id")
    addresses = truth.addresses.set_index("address_id")
    earlier = earlier_addresses(truth, day)
    seen: dict[str, list[int]] = {e: [0, 0] for e in E.ERRORS}
    disagree = 0
    for name, (id_col, name_col, birth_col, address, whose) in FIELDS.items():
        data = shown(out, name, m)
        truths = records_on(truth, name, day).set_index("record_key")
        for key, row in data.items():
            if key not in truths.index:  # never let a key (it may hold an ID number) reach output
                disagree += 1
                continue
            t = truths.loc[key]
            p = persons.loc[t[whose]]
            found: set[str] = set()
            shown_id = _norm_id(row[id_col])
            # a newborn's archive under its mother's number (a quirk) is the mother's number
            mothers = "id_of_mother" in t["quirks"]
            true_id = persons.loc[p["mother_id"], "id_number"] if mothers else p["id_number"]
            ids = classify_id(shown_id, true_id)
            names = classify_name(row[name_col], p["name"])
            if ids is None or names is None:
                disagree += 1
                continue
            found |= ids | names
            if shown_id is not None:
                seen["id_digit_typo"][1] += 1
                seen["id_transposition"][1] += 1
            if name in E.MISSING_ID:
                seen["id_missing"][1] += 1
            if any(E.homophones(c) for c in p["name"]):
                seen["name_homophone"][1] += 1
            if any(c in E.similar_shapes() for c in p["name"]):
                seen["name_similar_shape"][1] += 1
            if birth_col and row[birth_col] is not None:  # no birth date: a grid quirk
                born, shown_day = p["birth_date"].date(), _parse_date(row[birth_col])
                if E.swap_possible(born):
                    seen["birth_date_swapped"][1] += 1
                if shown_day != born:
                    if shown_day != date(born.year, born.day, born.month):
                        disagree += 1
                        continue
                    found.add("birth_date_swapped")
            if address and t["person_id"] in earlier and t["address_id"] in addresses.index:
                column, level = address
                current = address_text(
                    addresses.loc[t["address_id"]].to_dict() | {"address_id": t["address_id"]},
                    level,
                )
                if row[column] != current:
                    old = addresses.loc[earlier[t["person_id"]]].to_dict()
                    if row[column] != address_text(old, level):
                        disagree += 1
                        continue
                    found.add("address_stale")
                seen["address_stale"][1] += 1
            if name == "market":
                unit = truth.units.set_index("unit_id").loc[t["unit_id"]]
                seen["credit_code_bad_check"][1] += 1
                if key != unit["credit_code"]:
                    if is_valid_credit_code(key) or key[:17] != unit["credit_code"][:17]:
                        disagree += 1
                        continue
                    found.add("credit_code_bad_check")
            flags = set(t["errors"]) - {"duplicate_record"}
            disagree += found != flags
            for e in found:
                seen[e][0] += 1
    return {e: tuple(v) for e, v in seen.items()}, disagree


RATES = {
    "id_digit_typo": E.ID_DIGIT_TYPO, "id_transposition": E.ID_TRANSPOSITION,
    "birth_date_swapped": E.SWAPPED_DAY_MONTH, "name_homophone": E.NAME_HOMOPHONE,
    "name_similar_shape": E.NAME_SIMILAR_SHAPE, "address_stale": E.STALE_ADDRESS,
    "credit_code_bad_check": E.CREDIT_CODE_BAD_CHECK,
}  # fmt: skip


def outside_band(seen: int, n: int, rate: float) -> bool:
    """Binomial: more than three standard deviations (and one record) from n·rate. At 3,000
    persons the counts are a few dozen to a few hundred, so a rate off by a third or more falls
    outside for the common errors; the rare ones (stale, credit code) only catch gross errors."""
    return abs(seen - n * rate) > 3 * math.sqrt(n * rate * (1 - rate)) + 1


def test_errors_in_the_data_match_the_flags_and_the_documented_rates(out, truth):
    seen, disagree = observe(out, truth, len(MONTH_ENDS) - 1)
    assert disagree == 0
    off = {
        e: (seen[e], round(seen[e][1] * rate, 1))
        for e, rate in RATES.items()
        if outside_band(*seen[e], rate)
    }
    assert off == {}
    assert min(seen[e][1] for e in RATES) > 50  # every error had room to occur
    missing = {}
    for name, rate in E.MISSING_ID.items():
        data = shown(out, name, 0)
        idcol = FIELDS[name][0]
        gone = sum(r[idcol] is None for r in data.values())
        if outside_band(gone, len(data), rate):
            missing[name] = (gone, len(data))
    assert missing == {}


def test_identifier_phenomena_of_real_records_at_their_documented_rates(out, truth):
    """What linkage must cope with (docs/demo.md): grid entries with neither an ID number nor a
    birth date, 民政 dates with dots or in full-width digits, newborns' archives under the
    mother's number until 落户."""
    grid = shown(out, "grid_residents", 2)
    no_id = [r for r in grid.values() if r["身份证号"] is None]
    no_birth = sum(r["出生日期"] is None for r in no_id)
    assert not outside_band(no_birth, len(no_id), E.GRID_NO_BIRTH_WITHOUT_ID)
    assert all(r["身份证号"] is None for r in grid.values() if r["出生日期"] is None)
    civil = list(shown(out, "civil_affairs", 2).values())
    dotted = sum("." in unicodedata.normalize("NFKC", r["出生日期"]) for r in civil)
    wide = sum(r["出生日期"] != unicodedata.normalize("NFKC", r["出生日期"]) for r in civil)
    assert not outside_band(dotted, len(civil), E.DOTTED_DATE)
    assert not outside_band(wide, len(civil), E.FULLWIDTH_DATE)
    persons = truth.persons.set_index("person_id")
    health = truth.source_records[truth.source_records["source"] == "health"]
    under = health[health["quirks"].apply(lambda q: "id_of_mother" in q)]
    assert len(under) > 0
    for pid in under["person_id"]:  # born in the period, to a mother in the truth
        assert persons.at[pid, "birth_date"].date() >= MONTH_ENDS[0].replace(day=1)
        assert persons.at[pid, "mother_id"] in persons.index


def test_duplicate_health_archives_at_the_documented_rate(truth):
    first = records_on(truth, "health", MONTH_ENDS[0])
    per_person = first.groupby("person_id").size()
    duplicates = int((per_person == 2).sum())
    assert (per_person <= 2).all()
    flagged = first["errors"].apply(lambda e: "duplicate_record" in e).sum()
    assert duplicates == flagged
    opened_before = len(per_person)  # persons with an archive (nearly all opened before)
    assert not outside_band(duplicates, opened_before, E.HEALTH_DUPLICATE)


def test_twins_and_common_names_appear_in_the_registry(out: Path):
    rows = pd.DataFrame(shown(out, "household_registry", 2).values())
    same = rows.groupby(["行政区划代码", "姓名"])["公民身份号码"].nunique()
    assert (same >= 2).sum() > 0  # the same name for different people in one village


def test_error_scale_zero_injects_nothing_and_keeps_the_population(out: Path, tmp_path: Path):
    clean = generate(tmp_path / "clean", "--error-scale", "0")
    truth = load_truth(clean / "truth")
    assert truth.source_records["errors"].apply(len).sum() == 0
    assert truth.source_records["quirks"].apply(len).sum() > 0  # quirks are not errors
    seen, disagree = observe(clean, truth, 0)
    assert disagree == 0
    assert {e: s for e, (s, _) in seen.items() if s} == {}
    for name in E.MISSING_ID:
        assert all(r[FIELDS[name][0]] for r in shown(clean, name, 0).values())
    for part in ("persons", "person_residence", "addresses", "units"):
        same = (clean / "truth" / f"{part}.parquet").read_bytes()
        assert same == (out / "truth" / f"{part}.parquet").read_bytes()


def test_error_scale_must_not_be_negative(tmp_path: Path):
    assert (
        run_cli("generate", "--persons", "600", "--error-scale", "-1", "--out", str(tmp_path)) == 2
    )


# ---- the grid server -------------------------------------------------------------------------


def test_grid_api_pages_and_windows(grid_url: str, truth):
    with httpx.Client(base_url=grid_url, timeout=10) as client:
        assert client.get("/nothing").status_code == 404
        assert client.get("/residents", params={"size": 0}).status_code == 400
        everything = client.get("/residents", params={"size": 5000}).json()
        assert everything["total"] == len(everything["items"]) > 0
        pages, page = [], 1
        while True:
            body = client.get("/residents", params={"page": page, "size": 700}).json()
            pages += body["items"]
            if len(body["items"]) < 700:
                break
            page += 1
        assert [r["网格人员ID"] for r in pages] == [r["网格人员ID"] for r in everything["items"]]
        feb = client.get(
            "/residents", params={"since": "2026-02-01T00:00:00", "until": "2026-03-01T00:00:00"}
        ).json()
        changed = records_on(truth, "grid_residents", MONTH_ENDS[1])
        changed = changed[changed["valid_from"] == pd.Timestamp(MONTH_ENDS[1])]
        assert feb["total"] == len(changed) > 0
        assert all("2026-02-01" <= r["更新时间"] < "2026-03-01" for r in feb["items"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_only_its_url_and_stops_cleanly(out: Path, stop):
    port = _free_port()
    command = [str(Path(sys.executable).parent / "onetable"), "demo", "serve", "--out", str(out),
               "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}"
        body = httpx.get(url + "/key_places", params={"size": 3}, timeout=10).json()
        assert len(body["items"]) == 3
        proc.send_signal(stop)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    rest, err = proc.communicate(timeout=5)
    assert rest == "" and err == ""


def test_serve_refuses_a_missing_folder_and_a_taken_port(out: Path, tmp_path: Path, capsys):
    assert run_cli("serve", "--out", str(tmp_path)) == 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert run_cli("serve", "--out", str(out), "--port", str(s.getsockname()[1])) == 2
    printed = capsys.readouterr()
    assert "error" in printed.err and printed.out == ""


# ---- the default size ------------------------------------------------------------------------


@pytest.mark.slow
def test_default_size_rates_are_tight(tmp_path: Path):
    assert run_cli("generate", "--out", str(tmp_path), "--seed", "3") == 0
    truth = load_truth(tmp_path / "truth")
    seen, disagree = observe(tmp_path, truth, 2)
    assert disagree == 0
    off = {e: seen[e] for e, rate in RATES.items() if outside_band(*seen[e], rate)}
    assert off == {}
    twins = pd.DataFrame(shown(tmp_path, "household_registry", 2).values())
    pairs = twins.groupby(["户号", "出生日期"])["姓名"].nunique()
    assert (pairs == 2).sum() > 0  # twins: same birth date and household, different names
