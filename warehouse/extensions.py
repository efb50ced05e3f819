"""DuckDB extensions, offline (docs/architecture.md, "Offline extensions" and "Library traps").

Government networks are often air-gapped, so nothing is downloaded at run time: each extension comes
from its PyPI package `duckdb-extension-<name>` (DuckDB's signed binaries), is installed once into
the project's own extension directory, and is loaded explicitly. Automatic install and load are
off, and the extension repository points nowhere, so a missing package fails loudly instead of
reaching for the network.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from duckdb_extensions import import_extension

# package name -> the name it loads as (the scanners' entry points keep their old names)
LOAD_NAMES = {
    "ducklake": "ducklake",
    "httpfs": "httpfs",  # its crypto module is what encrypted writes need
    "encodings": "encodings",  # GB18030 and GBK in read_csv
    "sqlite": "sqlite_scanner",
    "postgres": "postgres_scanner",
    "mysql": "mysql_scanner",
}
STORE_EXTENSIONS = ("ducklake", "httpfs")


def extension_dir(state_dir: Path) -> Path:
    return state_dir / "duckdb_extensions"


def connect_offline(state_dir: Path, extensions: tuple[str, ...] = ()) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that never downloads, with `extensions` loaded.

    DuckDB's home (for its own files) is the state folder: service accounts often have no $HOME.
    """
    ext_dir = extension_dir(state_dir)
    ext_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        ":memory:",
        config={
            "home_directory": str(state_dir),
            "extension_directory": str(ext_dir),
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "custom_extension_repository": str(ext_dir / "no-download"),
        },
    )
    try:
        for name in extensions:
            load_extension(con, name)
    except BaseException:
        con.close()
        raise
    return con


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load `name`, installing it from its package into the extension directory the first time."""
    load_as = LOAD_NAMES[name]
    try:
        con.execute(f"LOAD {load_as}")
    except duckdb.IOException:
        try:
            import_extension(name, con=con)
        except ModuleNotFoundError:
            raise RuntimeError(
                f"DuckDB extension {name!r} is not installed: the package "
                f"duckdb-extension-{name}=={duckdb.__version__} is missing from this environment"
            ) from None
        con.execute(f"LOAD {load_as}")
