"""A county's deployment folder (schemas/deployment.py): `onetable init` writes one that loads, and
`onetable contracts check` fails what would otherwise go wrong only in a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from onetable.cli import main
from onetable.schemas.contracts import ContractError
from onetable.schemas.deployment import check_deployment, load_deployment


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "沭阳县"
    assert main(["init", str(root), "--county", "321322"]) == 0
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_init_writes_a_folder_that_loads_and_checks(folder, monkeypatch, capsys):
    assert {p.name for p in folder.iterdir()} >= {
        "onetable.yaml", "sources", "sharing", "one_table.yaml", "codes", "divisions.yaml",
        "divisions.csv", ".env.example",
    }  # fmt: skip
    deployment = load_deployment(folder)
    check_deployment(deployment)
    assert deployment.settings.county.name == "沭阳县"
    assert deployment.sharing["civil_affairs_elderly"].row_scope == ["321322"]
    assert "沭阳县民政局" in (folder / "sharing" / "civil_affairs_elderly.yaml").read_text("utf-8")
    assert deployment.one_table.version == "2026.1+321322.1"
    assert set(deployment.contracts.codes) >= {"groups", "relations", "sex"}
    assert deployment.environ({})["ONETABLE_STATE_DIR"] == str((folder / "state").resolve())
    assert deployment.environ({"ONETABLE_STATE_DIR": "/x"})["ONETABLE_STATE_DIR"] == "/x"
    monkeypatch.setenv("ONETABLE_PROJECT", str(folder))
    assert main(["contracts", "check"]) == 0
    assert "1 sharing entries" in capsys.readouterr().out
    assert main(["init", str(folder)]) == 2  # not over a folder that has files


def test_a_scope_matching_no_division_fails_the_check(folder, capsys):
    entry = folder / "sharing" / "civil_affairs_elderly.yaml"
    _edit(entry, 'row_scope: ["321322"]', 'row_scope: ["320324"]')
    assert main(["--project", str(folder), "contracts", "check"]) == 2
    out = capsys.readouterr().out
    assert f"{entry}: row_scope: '320324' matches no division of the registry" in out.replace(
        "\n", ""
    )


def test_a_countys_one_table_extends_the_package_and_is_checked_on_load(folder):
    table = folder / "one_table.yaml"
    _edit(table, "indicators: []", 'indicators:\n  - {id: GL01, name_zh: 高龄津贴领取人数, unit: 人, '
          "where: \"active AND list_contains(groups, '高龄津贴')\"}")  # fmt: skip
    _edit(table, "rules: []", 'rules:\n  - {left: GL01, op: "<=", right: LN02}')
    loaded = load_deployment(folder).one_table
    assert [i.id for i in loaded.indicators][-2:] == ["CJ01", "GL01"]
    assert loaded.rules[-1].left == "GL01" and len(loaded.rules) == 5
    _edit(table, "list_contains(groups, '高龄津贴')", "list_contains(grups, '高龄津贴')")
    with pytest.raises(
        ContractError, match=r"one_table.yaml: indicators.9.where \(GL01\): .*grups"
    ):
        load_deployment(folder)
    _edit(table, 'extends: "2026.1"', 'extends: "2025.1"')
    with pytest.raises(ContractError, match=r"extends: '2025\.1' is not an indicator system"):
        load_deployment(folder)


def test_settings_name_sources_the_folder_has(folder):
    settings = folder / "onetable.yaml"
    _edit(settings, "# placement:\n#   - {source: grid_residents, column: village_code}",
          "placement:\n  - {source: grid_residents, column: village_code}")  # fmt: skip
    with pytest.raises(
        ContractError, match=r"placement.0.source: 'grid_residents' is not a source"
    ):
        load_deployment(folder)
    _edit(settings, "{source: grid_residents,", "{source: civil_affairs,")
    assert load_deployment(folder).settings.placement[0].source == "civil_affairs"


def test_reading_villages_from_addresses_needs_the_registrys_village_codes(folder, capsys):
    source = folder / "sources" / "civil_affairs.yaml"
    _edit(source, "  居住地址: {to: address.standard_address}", "  居住地址: [{to: address.standard_address}, "
          "{to: person.village_code, convert: address_village}]")  # fmt: skip
    assert main(["--project", str(folder), "contracts", "check"]) == 2
    assert "`convert: address_village` reads a village code" in capsys.readouterr().out
    registry = folder / "divisions.csv"  # the county fills in a village's code
    registry.write_text(
        registry.read_text("utf-8").replace("village,,", "village,321322001001,", 1)
    )
    assert main(["--project", str(folder), "contracts", "check"]) == 0
