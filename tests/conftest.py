"""Shared test set-up: slow and service markers, a repo-local Airflow home, throwaway stores."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"

# Airflow reads its settings at import, so they are fixed before any test module imports it.
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
os.environ["AIRFLOW_CONFIG"] = str(ROOT / "airflow.cfg")
os.environ["AIRFLOW_HOME"] = str(ROOT / ".airflow-test")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runslow", action="store_true", help="run tests marked slow (CI always does)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_CI or config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or CI=true")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, port: int) -> None:
    """Skip outside CI when a server is down; in CI a missing server is a failure."""
    if _reachable("127.0.0.1", port):
        return
    message = f"{name} is not reachable on 127.0.0.1:{port} (tests/services.sh starts it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    require_service("PostgreSQL", 5432)
    return "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    require_service("MariaDB", 3306)
    return "mysql+pymysql://root@127.0.0.1:3306/test"


@pytest.fixture(scope="session")
def redis_url() -> str:
    require_service("Redis", 6379)
    return "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def extension_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DuckDB extensions installed once from their packages, copied into each test's store."""
    from onetable.warehouse.extensions import LOAD_NAMES, connect_offline, extension_dir

    state = tmp_path_factory.mktemp("extension_cache")
    connect_offline(state, tuple(LOAD_NAMES)).close()
    return extension_dir(state)


@pytest.fixture
def store_settings(tmp_path: Path, extension_cache: Path):
    """Settings of a fresh store in tmp_path, with a fresh key."""
    from onetable.warehouse.store import StoreSettings, new_key

    settings = StoreSettings(state_dir=tmp_path / "state", key=new_key(), lock_timeout_s=60)
    shutil.copytree(extension_cache, settings.extension_dir, copy_function=os.link)
    return settings


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's metadata database (SQLite in the repo-local test home), migrated once."""
    import subprocess
    import sys

    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(exist_ok=True)
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)


@pytest.fixture(scope="session")
def demo_county(tmp_path_factory: pytest.TempPathFactory):
    """A generated demo county run end to end, by variant (1: 睢宁县, 2: 沭阳县), made once a session:
    `demo_county(N)` returns its folder and each month's results. 1,500 persons, two months."""
    import contextlib
    import subprocess
    import sys

    from onetable.demo.run import run_demo
    from onetable.demo.serve import DEFAULT_PORT

    made: dict[int, tuple[Path, dict]] = {}

    def county(variant: int) -> tuple[Path, dict]:
        if variant not in made:
            out = tmp_path_factory.mktemp(f"variant{variant}")
            onetable = Path(sys.executable).parent / "onetable"
            subprocess.run([onetable, "demo", "generate", "--variant", str(variant), "--persons",
                            "1500", "--months", "2", "--out", out], check=True, capture_output=True)  # fmt: skip
            # the grid API's usual port is taken: the demo serves its API on a free one
            with socket.socket() as taken:
                with contextlib.suppress(OSError):  # or someone else holds it: taken either way
                    taken.bind(("127.0.0.1", DEFAULT_PORT))
                    taken.listen()
                made[variant] = out, run_demo(out)
        return made[variant]

    return county
