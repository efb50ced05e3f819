"""The store: the only way any stage reads or writes data at rest (docs/architecture.md, "Storage").

One DuckLake catalog (a DuckDB-file catalog plus Parquet files), encrypted with the master key from
the environment, catalog included and with no inlining, so that nothing personal is readable on
disk without the key. A DuckDB-file catalog admits one process, so `open_store` takes a file lock
for reads and writes alike, opens for one operation and closes.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from onetable.warehouse.extensions import STORE_EXTENSIONS, connect_offline, extension_dir
from onetable.warehouse.ledger import delete_orphans, ensure_layout

KEY_ENV = "ONETABLE_STORE_KEY"
STATE_ENV = "ONETABLE_STATE_DIR"
LOCK_TIMEOUT_ENV = "ONETABLE_LOCK_TIMEOUT"
CATALOG = "lake"

# Longer than the longest holder: a global linkage of a large county.
DEFAULT_LOCK_TIMEOUT_S = 6 * 3600.0
_MIN_KEY_LENGTH = 32


class StoreError(Exception):
    """A problem with the store itself (not with the data in it)."""


class StoreKeyError(StoreError):
    """The master key is missing, malformed or wrong."""


class StoreBusyError(StoreError):
    """Another process held the store longer than the lock timeout."""


@dataclass(frozen=True)
class StoreSettings:
    """Where the store lives and how to open it. The key never appears in repr or logs."""

    state_dir: Path
    key: str = field(repr=False)
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> StoreSettings:
        """Read the state folder, the key and the lock timeout from the environment."""
        state = environ.get(STATE_ENV)
        if not state:
            raise StoreError(f"{STATE_ENV} is not set: name the folder that holds the store")
        key = environ.get(KEY_ENV, "")
        timeout = environ.get(LOCK_TIMEOUT_ENV)
        try:
            lock_timeout = float(timeout) if timeout else DEFAULT_LOCK_TIMEOUT_S
        except ValueError:
            raise StoreError(f"{LOCK_TIMEOUT_ENV}={timeout!r} is not a number of seconds") from None
        return cls(state_dir=Path(state).resolve(), key=key, lock_timeout_s=lock_timeout)

    @property
    def catalog_path(self) -> Path:
        return self.state_dir / "catalog.duckdb"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def extension_dir(self) -> Path:
        return extension_dir(self.state_dir)

    @property
    def temp_dir(self) -> Path:
        return self.state_dir / "tmp"

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "store.lock"


def new_key() -> str:
    """A fresh 256-bit master key, as hex."""
    return os.urandom(32).hex()


def write_key_file(path: Path) -> str:
    """Write a new key to `path` (mode 600), refusing to overwrite one; returns the key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def check_key(key: str) -> None:
    """Refuse a missing or weak key before DuckDB sees it."""
    if not key:
        raise StoreKeyError(
            f"{KEY_ENV} is not set: the store is encrypted and cannot be opened without its key"
        )
    if len(key) < _MIN_KEY_LENGTH or not re.fullmatch(r"[0-9A-Za-z_\-+/=]+", key):
        raise StoreKeyError(
            f"{KEY_ENV} must be at least {_MIN_KEY_LENGTH} characters of letters, digits or "
            "base64 punctuation (`onetable store new-key` makes one)"
        )


@contextlib.contextmanager
def store_lock(settings: StoreSettings) -> Iterator[bool]:
    """Hold the store's file lock, or fail with a message naming the holder after the timeout.

    Yields whether the previous holder never closed the store (killed, or ended by an error): its
    holder file is still there, so it may have left data files the catalog does not know.
    """
    with _file_lock(settings, settings.lock_path, "another process") as left_open:
        yield left_open


@contextlib.contextmanager
def run_lock(settings: StoreSettings) -> Iterator[None]:
    """Hold the store for a whole run (its stages take the store's lock one by one inside it), so
    that two runs never interleave; a run that cannot get it fails before it changes anything."""
    with _file_lock(settings, settings.state_dir / "run.lock", "another run"):
        yield


@contextlib.contextmanager
def _file_lock(settings: StoreSettings, path: Path, other: str) -> Iterator[bool]:
    """The lock at `path`; yields whether its last holder ended without releasing it cleanly."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    holder = path.with_suffix(".holder")
    lock = FileLock(path, timeout=settings.lock_timeout_s)
    try:
        lock.acquire()
    except Timeout:
        who = holder.read_text(encoding="utf-8").strip() if holder.exists() else "unknown"
        raise StoreBusyError(
            f"the store in {settings.state_dir} is busy: {other} ({who}) has held "
            f"{path.name} for more than {settings.lock_timeout_s:.0f} s. "
            f"Wait for it to finish, or raise {LOCK_TIMEOUT_ENV}."
        ) from None
    try:
        left_open = holder.exists()
        holder.write_text(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        yield left_open
        holder.unlink()  # only after a clean close, so a kill leaves the mark for the next holder
    finally:
        lock.release()


def _attach_sql(settings: StoreSettings) -> str:
    # The key is a checked token (check_key), so it is safe inside the SQL literal. The data folder
    # is always <state>/data; the catalog records the absolute path the store was made at, so a
    # state folder restored elsewhere needs OVERRIDE_DATA_PATH (docs/architecture.md, "Backup and
    # restore"). It holds for this connection only and changes nothing in the catalog.
    return (
        f"ATTACH 'ducklake:{settings.catalog_path}' AS {CATALOG} ("
        f"DATA_PATH '{settings.data_dir}/', OVERRIDE_DATA_PATH true, ENCRYPTED, "
        "DATA_INLINING_ROW_LIMIT 0, "
        f"METADATA_PARAMETERS MAP {{'ENCRYPTION_KEY': '{settings.key}'}})"
    )


def _attach(con: duckdb.DuckDBPyConnection, settings: StoreSettings) -> None:
    try:
        con.execute(_attach_sql(settings))
    except duckdb.Error as exc:
        text = str(exc)
        if "Wrong encryption key" in text:
            raise StoreKeyError(
                f"{KEY_ENV} is not the key this store was made with ({settings.catalog_path})"
            ) from None
        if "without a key" in text:
            raise StoreKeyError(
                f"the store {settings.catalog_path} is encrypted; set {KEY_ENV}"
            ) from None
        raise StoreError(f"cannot open the store {settings.catalog_path}: {text}") from None


@contextlib.contextmanager
def open_store(settings: StoreSettings) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store for one operation: lock, attach, yield a connection whose default catalog is
    the store, then close and unlock.

    Spill files go to the state folder, encrypted. The schemas of docs/architecture.md, "Storage",
    exist after the first open (see `onetable.warehouse.ledger.SCHEMAS`). When the previous holder
    never closed the store, the data files a killed writer left are removed first, under the lock;
    a clean close leaves nothing to look for, so a normal open costs nothing more.
    """
    check_key(settings.key)
    with store_lock(settings) as left_open:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.temp_dir.mkdir(parents=True, exist_ok=True)
        con = connect_offline(settings.state_dir, STORE_EXTENSIONS)
        try:
            con.execute(f"SET temp_directory = '{settings.temp_dir}'")
            con.execute("SET temp_file_encryption = true")
            _attach(con, settings)
            con.execute(f"USE {CATALOG}")
            ensure_layout(con)
            if left_open:
                delete_orphans(con)
            yield con
        finally:
            con.close()
