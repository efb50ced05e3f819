"""The SQL connector on real databases: SQLite, PostgreSQL and MariaDB (the services on this
machine). Cursor windows with overlap, snapshots with tombstones, forced windows, status columns,
credentials from the environment, and a database that is down."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from connector_helpers import make_source

from onetable.connectors.extract import extract_all, extract_source
from onetable.connectors.landing import Window, land_window
from onetable.connectors.reading import ConnectorError
from onetable.connectors.sql import read_sql
from onetable.warehouse.ledger import transaction, watermark
from onetable.warehouse.store import open_store

JAN, FEB, MAR, APR = (datetime(2026, m, 1) for m in (1, 2, 3, 4))
MAPPING = "sources/registry.yaml"


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def database(request, tmp_path):
    """(SQLAlchemy URL, a fresh table name); the table is dropped afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        url = request.getfixturevalue(f"{request.param}_url")
    table = f"persons_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(sa.text(
            f"CREATE TABLE {table} (人员编号 VARCHAR(20) PRIMARY KEY, 姓名 VARCHAR(40), "
            "身份证号 VARCHAR(18), 状态 VARCHAR(10), 更新时间 TIMESTAMP NULL)"
            + (" DEFAULT CHARSET=utf8mb4" if request.param == "mariadb" else "")
        ))  # fmt: skip
    yield url, table, engine
    with engine.begin() as con:
        con.execute(sa.text(f"DROP TABLE {table}"))
    engine.dispose()


def _put(engine, table, rows):
    with engine.begin() as con:
        for key, name, status, at in rows:
            con.execute(sa.text(f"DELETE FROM {table} WHERE 人员编号 = :k"), {"k": key})
            con.execute(
                sa.text(f"INSERT INTO {table} VALUES (:k, :n, :i, :s, :t)"),
                {"k": key, "n": name, "i": "320324198001011234", "s": status, "t": at},
            )


def _source(table, **kw):
    location = {"kind": "sql", "conn_id": "dept_registry", "table": table, "retries": 0}
    read = {"mode": "cursor", "cursor": "更新时间", "overlap": "1 day"}
    return make_source("registry", location, **({"read": read} | kw))


def test_cursor_windows_overlap_status_and_force(store_settings, database):
    url, table, engine = database
    env = {"AIRFLOW_CONN_DEPT_REGISTRY": url}
    _put(engine, table, [("P1", "张三", "正常", datetime(2026, 1, 5)),
                         ("P2", "李四", "正常", datetime(2026, 1, 31, 12)),
                         ("P3", "王五", "正常", datetime(2026, 2, 3))])  # fmt: skip
    source = _source(table)
    first = extract_source(store_settings, source, MAPPING, end=FEB, run_id="r1", environ=env)
    assert [(m.read, m.landed) for m in first.manifests] == [(2, 2)]
    _put(
        engine,
        table,
        [
            ("P1", "张三", "迁出", datetime(2026, 2, 10)),
            ("P4", "赵六", "正常", datetime(2026, 2, 20)),
        ],
    )
    second = extract_source(
        store_settings, source, MAPPING, end=MAR, run_id="r2", environ=env
    ).manifests[0]
    # read: P2 again (the overlap reaches back to Jan 31), P3, P1 moved out, P4
    assert (second.read, second.landed, second.unchanged) == (4, 3, 1)
    assert second.window == Window(FEB, MAR)
    rows = {r[0]: r[1:] for r in _rows(store_settings, "SELECT _record_key, 状态, _deleted, 更新时间 "
                                                       "FROM landing.registry WHERE _window_end = '2026-03-01'")}  # fmt: skip
    assert rows["P1"][:2] == ("迁出", True) and rows["P4"][:2] == ("正常", False)
    assert rows["P1"][2].startswith("2026-02-10 00:00:00")  # the database's own text for the value
    again = extract_source(store_settings, source, MAPPING, end=MAR, run_id="r3", environ=env)
    assert again.manifests == [] and again.note.startswith("already extracted up to 2026-03-01")
    forced = extract_source(
        store_settings, source, MAPPING, end=MAR, run_id="r4", environ=env, force=True
    )
    assert [(m.version, m.read, m.landed) for m in forced.manifests] == [(2, 4, 3)]
    versions = _rows(store_settings, "SELECT _version, list(_record_key || 状态 || _row_hash ORDER BY _record_key) "
                                     "FROM landing.registry WHERE _window_end = '2026-03-01' GROUP BY 1 ORDER BY 1")  # fmt: skip
    assert versions[0][1] == versions[1][1]  # the source did not change: equal versions


def test_snapshot_table_diffs_into_tombstones(store_settings, database):
    url, table, engine = database
    env = {"AIRFLOW_CONN_DEPT_REGISTRY": url}
    _put(engine, table, [("P1", "张三", "正常", None), ("P2", "李四", "正常", None)])
    # one of two records ends: far past the default share a delivery may end (tests/faults)
    source = _source(table, read={"mode": "snapshot", "max_shrink": 1})
    extract_source(store_settings, source, MAPPING, end=FEB, run_id="r1", environ=env)
    with engine.begin() as con:
        con.execute(sa.text(f"DELETE FROM {table} WHERE 人员编号 = 'P2'"))
    feb = extract_source(
        store_settings, source, MAPPING, end=MAR, run_id="r2", environ=env
    ).manifests[0]
    assert (feb.read, feb.landed, feb.unchanged, feb.tombstones) == (1, 0, 1, 1)


def test_a_query_source(store_settings, database):
    url, table, engine = database
    _put(
        engine,
        table,
        [
            ("P1", "张三", "正常", datetime(2026, 1, 5)),
            ("P2", "李四", "注销", datetime(2026, 1, 6)),
        ],
    )
    location = {
        "kind": "sql",
        "conn_id": "dept_registry",
        "query": f"SELECT 人员编号, 姓名, 状态, 更新时间 FROM {table} WHERE 状态 = '正常'",
    }
    source = make_source("registry", location, read={"mode": "cursor", "cursor": "更新时间"})
    out = extract_source(
        store_settings,
        source,
        MAPPING,
        end=FEB,
        run_id="r",
        environ={"AIRFLOW_CONN_DEPT_REGISTRY": url},
    )
    assert [(m.read, m.landed) for m in out.manifests] == [(1, 1)]


def test_streams_in_chunks_with_row_positions(database):
    url, table, engine = database
    _put(
        engine,
        table,
        [(f"P{i:03d}", "张三", "正常", datetime(2026, 1, 1 + i % 28)) for i in range(120)],
    )
    source = _source(table)
    location = source.location
    chunks = list(
        read_sql(sa.make_url(url), location, source=source, window=Window(None, FEB), batch_rows=50)
    )
    assert [c.rows.num_rows for c in chunks] == [50, 50, 20]
    assert chunks[2].rows.column("_row").to_pylist()[-1] == 120
    assert chunks[0].rows.column("_location")[0].as_py() == f"dept_registry/{table}"


def test_a_database_that_is_down_fails_its_source_with_a_clear_error(store_settings, tmp_path):
    env = {"AIRFLOW_CONN_DEPT_REGISTRY": "postgresql://etl:secret@127.0.0.1:1/registry"}
    location = {
        "kind": "sql",
        "conn_id": "dept_registry",
        "table": "persons",
        "retries": 2,
        "backoff_s": 0.01,
    }
    source = make_source("registry", location)
    with pytest.raises(ConnectorError) as info:
        extract_source(store_settings, source, MAPPING, end=FEB, run_id="r", environ=env)
    message = str(info.value)
    assert message.startswith(
        "source registry: cannot reach the database of connection 'dept_registry' after 3 attempts"
    )
    assert "secret" not in message
    with open_store(store_settings) as con:
        assert watermark(con, "registry") is None


def test_an_unset_connection_names_the_variable(store_settings):
    source = make_source("registry", {"kind": "sql", "conn_id": "dept_health", "table": "t"})
    with pytest.raises(ConnectorError, match="set AIRFLOW_CONN_DEPT_HEALTH"):
        extract_source(store_settings, source, MAPPING, end=FEB, run_id="r", environ={})


def test_airflow_json_connection(store_settings, postgres_url):
    env = {
        "AIRFLOW_CONN_DEPT_REGISTRY": '{"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}'
    }
    table = f"persons_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as con:
        con.execute(
            sa.text(
                f"CREATE TABLE {table} AS SELECT 'P1' AS 人员编号, '张三' AS 姓名, TIMESTAMP '2026-01-05' AS 更新时间"
            )
        )
    try:
        out = extract_source(
            store_settings, _source(table), MAPPING, end=FEB, run_id="r", environ=env
        )
        assert out.manifests[0].landed == 1
    finally:
        with engine.begin() as con:
            con.execute(sa.text(f"DROP TABLE {table}"))


def _rows(settings, sql):
    with open_store(settings) as con:
        return con.execute(sql).fetchall()


@pytest.mark.filterwarnings("ignore:Previous unbuffered result:UserWarning")
def test_a_crash_mid_window_then_rerun_does_not_double(store_settings, database):
    url, table, engine = database
    _put(engine, table, [(f"P{i}", "张三", "正常", datetime(2026, 1, 1 + i)) for i in range(20)])
    source = _source(table)

    def crashing():
        # a reader that fails mid-read ends its own cursor, as read_sql does when it raises; left
        # open, the COPY would hold psycopg's lock until the garbage collector met it
        with contextlib.closing(read_sql(
            sa.make_url(url), source.location, source=source, window=Window(None, FEB), batch_rows=5
        )) as chunks:  # fmt: skip
            yield next(chunks)
            yield next(chunks)
            raise ConnectionResetError("server closed the connection")

    with (
        open_store(store_settings) as con,
        pytest.raises(ConnectionResetError),
        transaction(con, run_id="r1", stage="extract") as tx,
    ):
        land_window(con, tx, source, Window(None, FEB), crashing(), MAPPING)
    out = extract_source(
        store_settings,
        source,
        MAPPING,
        end=FEB,
        run_id="r2",
        environ={"AIRFLOW_CONN_DEPT_REGISTRY": url},
    )
    assert out.manifests[0].landed == 20
    assert _rows(
        store_settings, "SELECT count(*), count(DISTINCT _record_key) FROM landing.registry"
    ) == [(20, 20)]


def test_extract_all_goes_on_past_a_failed_source(store_settings, tmp_path):
    contracts = SimpleNamespace(  # what extract_all reads
        source_file=lambda name: tmp_path / f"{name}.yaml",
        sources={
            "down": make_source(
                "down", {"kind": "sql", "conn_id": "down", "table": "t", "retries": 0}
            ),
            "up": make_source("up", {"kind": "sql", "conn_id": "up", "table": "t"}),
        },
    )

    db = tmp_path / "up.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as con:
        con.execute(sa.text("CREATE TABLE t (人员编号 TEXT, 姓名 TEXT)"))
        con.execute(sa.text("INSERT INTO t VALUES ('P1', '张三')"))
    env = {"AIRFLOW_CONN_DOWN": "mysql://root@127.0.0.1:1/x", "AIRFLOW_CONN_UP": f"sqlite:///{db}"}
    down, up = extract_all(store_settings, contracts, end=FEB, run_id="r", environ=env)
    assert down.error.startswith("source down: cannot reach the database")
    assert up.error is None and up.manifests[0].landed == 1


def test_a_row_stamped_at_midnight_belongs_to_the_window_it_opens(store_settings, database):
    url, table, engine = database
    _put(
        engine,
        table,
        [("P1", "张三", "正常", datetime(2026, 1, 31, 23, 59)), ("P2", "李四", "正常", FEB)],
    )
    source = _source(table)
    env = {"AIRFLOW_CONN_DEPT_REGISTRY": url}
    jan = extract_source(
        store_settings, source, MAPPING, end=FEB, run_id="r1", environ=env
    ).manifests[0]
    feb = extract_source(
        store_settings, source, MAPPING, end=MAR, run_id="r2", environ=env
    ).manifests[0]
    assert (jan.landed, feb.landed, feb.unchanged) == (1, 1, 1)


def test_a_read_left_early_ends_the_copy_on_the_server(postgres_url):
    """The store stopping mid-table (a failed insert, a missing column) closes the reader, which
    cancels PostgreSQL's COPY instead of leaving it blocked on a full socket."""
    import time

    from onetable.connectors.landing import read_ahead

    table = f"persons_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as con:
        con.execute(sa.text(
            f"CREATE TABLE {table} AS SELECT 'P' || i AS 人员编号, repeat('张三', 20) AS 姓名, "
            "'320324198001011234' AS 身份证号, '正常' AS 状态 FROM generate_series(1, 300000) i"
        ))  # fmt: skip
    copying = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT%' "
        "AND query LIKE :table AND pid <> pg_backend_pid()"
    )
    try:
        source = make_source("registry", {"kind": "sql", "conn_id": "x", "table": table})
        chunks = read_sql(
            sa.make_url(postgres_url), source.location, source=source, window=Window(None, FEB)
        )
        with read_ahead(source, chunks, rows=1_000) as batches:
            assert next(batches).rows.num_rows >= 1_000
            with engine.connect() as con:
                assert con.execute(copying, {"table": f"%{table}%"}).scalar() == 1
        for _ in range(50):
            with engine.connect() as con:
                if con.execute(copying, {"table": f"%{table}%"}).scalar() == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the COPY is still running on the server")
    finally:
        with engine.begin() as con:  # a COPY left running would hold the table: end it first
            con.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE :t "
                    "AND pid <> pg_backend_pid()"
                ),
                {"t": f"COPY (SELECT%{table}%"},
            )
            con.execute(sa.text(f"DROP TABLE {table}"))
        engine.dispose()


def test_a_missing_table_is_named_as_the_mapping_names_it(store_settings, tmp_path):
    db = tmp_path / "health.db"
    with sa.create_engine(f"sqlite:///{db}").begin() as con:
        con.execute(sa.text("CREATE TABLE 其他 (a TEXT)"))
    source = make_source("health", {"kind": "sql", "conn_id": "health", "table": "居民健康档案"})
    with pytest.raises(ConnectorError) as info:
        extract_source(store_settings, source, MAPPING, end=FEB, run_id="r",
                       environ={"AIRFLOW_CONN_HEALTH": f"sqlite:///{db}"})  # fmt: skip
    assert str(info.value) == (
        "source health: the database of connection 'health' has no table '居民健康档案'"
    )
