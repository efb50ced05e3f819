"""Credentials: from the environment (`AIRFLOW_CONN_<ID>`, as Airflow reads them) or, inside an
Airflow task, from Airflow's own connections; never from a source's YAML in the repo."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from sqlalchemy.engine import URL, make_url

from onetable.connectors.reading import ConnectorError

# Airflow's connection types -> SQLAlchemy drivers installed with onetable
_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "sqlite": "sqlite",
}


def _env_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def _raw(conn_id: str, environ: Mapping[str, str]) -> dict | str:
    value = environ.get(_env_name(conn_id))
    if value:
        return json.loads(value) if value.lstrip().startswith("{") else value
    if environ.get("AIRFLOW_CTX_DAG_ID"):  # inside a task: Airflow's secrets backends and DB
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
        return {
            "conn_type": conn.conn_type, "host": conn.host, "port": conn.port,
            "login": conn.login, "password": conn.password, "schema": conn.schema,
        }  # fmt: skip
    raise ConnectorError(
        f"connection {conn_id!r} is not configured: set {_env_name(conn_id)} to its URI "
        "(or define it in Airflow)"
    )


def sqlalchemy_url(conn_id: str, environ: Mapping[str, str] = os.environ) -> URL:
    """The SQLAlchemy URL of a connection; Airflow's `postgres://` becomes psycopg's driver."""
    raw = _raw(conn_id, environ)
    try:
        if isinstance(raw, str):
            url = make_url(raw)
        else:
            url = URL.create(
                raw.get("conn_type", ""), username=raw.get("login"), password=raw.get("password"),
                host=raw.get("host"), port=raw.get("port"), database=raw.get("schema"),
            )  # fmt: skip
    except Exception:
        raise ConnectorError(
            f"connection {conn_id!r}: {_env_name(conn_id)} is not a valid URI"
        ) from None
    driver = url.drivername
    return url.set(drivername=_DRIVERS.get(driver, driver))


def secret(conn_id: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The password of a connection (an API's bearer token)."""
    raw = _raw(conn_id, environ)
    return make_url(raw).password if isinstance(raw, str) else raw.get("password")


def base_url(conn_id: str, environ: Mapping[str, str] = os.environ) -> str:
    """scheme://host[:port] of a connection: where an API whose mapping names only a path is
    (`url: /residents`), so that its host is deployment config, like a database's."""
    raw = _raw(conn_id, environ)
    try:
        url = make_url(raw) if isinstance(raw, str) else None
    except Exception:
        raise ConnectorError(
            f"connection {conn_id!r}: {_env_name(conn_id)} is not a valid URI"
        ) from None
    scheme, host, port = (
        (url.drivername, url.host, url.port) if url is not None
        else (raw.get("conn_type") or "http", raw.get("host"), raw.get("port"))
    )  # fmt: skip
    if not host:
        raise ConnectorError(f"connection {conn_id!r}: {_env_name(conn_id)} names no host")
    return f"{scheme}://{host}" + (f":{port}" if port else "")
