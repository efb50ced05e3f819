"""The foundation: the pins hold, the layout imports, the command answers, the environment is sound."""

import subprocess
import sys
import tomllib
from importlib.metadata import distributions, version
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[name.lower().replace("_", "-")] = pinned
    return pins


def test_forced_pins_hold():
    """The pins docs/architecture.md explains ("Pinned versions"): break one and this fails."""
    assert version("duckdb") == "1.5.5"
    assert version("duckdb-extensions") == "1.5.5"
    for ext in ("ducklake", "httpfs", "encodings", "sqlite", "postgres", "mysql"):
        assert version(f"duckdb-extension-{ext}") == "1.5.5", ext
    assert Version(version("pandas")) < Version("3")
    assert Version("5.5") <= Version(version("celery")) < Version("5.7")
    assert version("apache-airflow-providers-celery") == "3.26.0"
    assert Version(version("apache-airflow")).release[:2] == (3, 3)
    assert Version(version("great-expectations")).release[:2] == (1, 24)
    assert Version(version("sqlalchemy")).major == 2
    assert version("recordlinkage") == "0.16"
    assert Version(version("pydantic")).major == 2
    assert Version(version("pyarrow")).major >= 20


def test_installed_versions_match_constraints():
    pins = _constraints()
    installed = {d.metadata["Name"].lower().replace("_", "-"): d.version for d in distributions()}
    wrong = {n: (p, installed.get(n)) for n, p in pins.items() if installed.get(n) != p}
    assert wrong == {}, "installed versions differ from constraints.txt"
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in required:
        name = requirement.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip()
        assert name.lower().replace("_", "-") in pins, f"{name} is not pinned in constraints.txt"


def test_python_version():
    assert sys.version_info[:2] == (3, 11)


def test_pip_check_is_clean():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "module, folder",
    [("onetable.connectors", "connectors"), ("onetable.schemas", "schemas"),
     ("onetable.linkage", "linkage"), ("onetable.quality", "quality"),
     ("onetable.warehouse", "warehouse"), ("onetable", "onetable")],
)  # fmt: skip
def test_each_folder_is_a_subpackage(module, folder):
    imported = __import__(module, fromlist=["_"])
    assert Path(imported.__file__).parent == ROOT / folder


def test_command_answers():
    from onetable import __version__

    out = subprocess.run(
        [Path(sys.executable).parent / "onetable", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == f"onetable {__version__}"
    help_ = subprocess.run(
        [Path(sys.executable).parent / "onetable", "--help"], capture_output=True, text=True
    )
    assert help_.returncode == 0
    for command in ("store", "accounting", "contracts"):
        assert command in help_.stdout


def test_store_commands_end_to_end(tmp_path):
    onetable = Path(sys.executable).parent / "onetable"
    key_file = tmp_path / "keys" / "store.key"
    assert subprocess.run([onetable, "store", "new-key", key_file]).returncode == 0
    assert key_file.stat().st_mode & 0o777 == 0o600
    env = {"PATH": "/usr/bin:/bin", "ONETABLE_STATE_DIR": str(tmp_path / "state"),
           "ONETABLE_STORE_KEY": key_file.read_text().strip()}  # fmt: skip
    init = subprocess.run([onetable, "store", "init"], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    assert "store ready" in init.stdout
    bad = subprocess.run(
        [onetable, "store", "status"], env={**env, "ONETABLE_STORE_KEY": ""},
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "ONETABLE_STORE_KEY is not set" in bad.stdout
    again = subprocess.run([onetable, "store", "new-key", key_file], capture_output=True, text=True)
    assert again.returncode == 1  # never overwrite a key


@pytest.mark.parametrize(
    "flag, env, wrong",
    [([], "ONETABLE_STORE_KEY", "ONETABLE_PSEUDONYM_KEY"),
     (["--pseudonym"], "ONETABLE_PSEUDONYM_KEY", "ONETABLE_STORE_KEY")],
)  # fmt: skip
def test_new_key_names_the_variable_the_key_is_for(tmp_path, flag, env, wrong):
    onetable = Path(sys.executable).parent / "onetable"
    key_file = tmp_path / "k.key"
    out = subprocess.run(
        [onetable, "store", "new-key", *flag, key_file], capture_output=True, text=True
    )
    assert out.returncode == 0 and f"export {env}=$(cat {key_file})" in out.stdout
    assert wrong not in out.stdout


def test_the_run_summary_prints_a_failure_whole(capsys):
    """However narrow the terminal, a source's error reaches the user whole, never cut."""
    from onetable.cli import print_extract

    error = "source registry: required column(s) 姓名 missing from " + "/very/long" * 20 + ".csv"
    counts = dict.fromkeys(("windows", "read", "landed", "quarantined", "unchanged"), 0)
    print_extract({"registry": {**counts, "error": error, "note": None}}, "extract")
    out = capsys.readouterr().out
    assert error in out.replace("\n", "") and "…" not in out
