"""A county's deployment folder: everything about one county that onetable needs, as data.

    onetable.yaml      settings: the county, where the store, the data and the outputs are, who
                       counts as living here and how a person's village is found
    sources/*.yaml     one mapping per department source (docs/mappings.md)
    sharing/*.yaml     the county's sharing list (docs/sharing.md)
    one_table.yaml     the county's one table: the package's indicator system by version, with
                       the county's own indicators and rules
    codes/*.yaml       code tables with synonyms; a table replaces the package's of that name
    divisions.yaml     the division registry: the county's villages with codes, and grid codes
    .env.example       the environment a run needs (keys, connections), without the secrets

`onetable init DIR` writes one with commented examples; every command takes it as `--project
DIR` or ONETABLE_PROJECT. Without one, the package's defaults apply: its contracts, code tables,
one table and division registry, and an empty sharing list. Nothing about any county is in code
(docs/new-county.md walks a new county through it).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from onetable.schemas.contracts import (
    _NAME,
    SHIPPED,
    ContractError,
    Contracts,
    _parse,
    load_contracts,
)
from onetable.schemas.one_table import Indicator, OneTable, Rule, check_one_table, load_one_table
from onetable.schemas.sharing import SharingEntry, load_sharing_list

PROJECT_ENV = "ONETABLE_PROJECT"
SETTINGS_FILE = "onetable.yaml"
TEMPLATE = Path(str(resources.files("onetable.schemas") / "template"))
# the environment a run reads (warehouse/store.py, onetable/pipeline.py), filled from the settings
# where it does not set them itself (a container may)
STATE_ENV, DATA_ENV, OUT_ENV = "ONETABLE_STATE_DIR", "ONETABLE_DATA_ROOT", "ONETABLE_OUT_DIR"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class County(_Strict):
    code: Annotated[str, Field(pattern=r"^\d{6}$")]
    name: str = Field(min_length=1)


class Placement(_Strict):
    """One step of the precedence that places a person in a village: the staged `column` (a
    12-digit village code) of `source`'s records."""

    source: Annotated[str, Field(pattern=_NAME)]
    column: Annotated[str, Field(pattern=_NAME)] = "village_code"


class Settings(_Strict):
    """onetable.yaml. Paths are relative to the deployment folder."""

    county: County | None = None
    state: str = "state"
    data_root: str = "data"
    out: str = "out"
    # who lives here (实有人口): a person is active while a non-ended record of one of these sources
    # exists; null: any person source's record
    residence_sources: list[str] | None = None
    # a person's village: the first step any of their records gives (not a vote among records)
    placement: list[Placement] = []
    # a person seen in no source for this many periods is gone (not active), with the reason
    gone_after_periods: int | None = Field(default=None, ge=1)


class CountyTable(_Strict):
    """one_table.yaml of a deployment: the package's system `extends`, plus the county's own."""

    extends: str
    version: str = Field(min_length=1)
    indicators: list[Indicator] = []
    rules: list[Rule] = []


@dataclass(frozen=True)
class Deployment:
    root: Path | None  # None: the package's defaults
    settings: Settings
    contracts: Contracts
    sharing: dict[str, SharingEntry]
    one_table: OneTable

    def path(self, value: str) -> Path:
        """A settings path, relative to the deployment folder (or the working folder)."""
        path = Path(value)
        return path if path.is_absolute() or self.root is None else self.root / path

    def environ(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`environ` with the settings' folders where it does not set them."""
        folders = {STATE_ENV: self.settings.state, DATA_ENV: self.settings.data_root,
                   OUT_ENV: self.settings.out}  # fmt: skip
        if self.root is None:
            return dict(environ)
        return {**environ, **{k: str(self.path(v).resolve()) for k, v in folders.items()
                              if not environ.get(k)}}  # fmt: skip


def project_dir(environ: Mapping[str, str], given: Path | None = None) -> Path | None:
    """The deployment folder: `--project`, else ONETABLE_PROJECT, else none (package defaults)."""
    value = given or environ.get(PROJECT_ENV)
    return Path(value) if value else None


def load_deployment(root: Path | None) -> Deployment:
    """Load and cross-check a deployment folder (None: the package's defaults)."""
    if root is None:
        contracts = load_contracts()
        return Deployment(None, Settings(), contracts, {}, load_one_table())
    root = Path(root)
    if not root.is_dir():
        raise ContractError(
            f"{root}: deployment folder not found (`onetable init {root}` makes one)"
        )
    settings = _parse(Settings, root / SETTINGS_FILE)
    contracts = load_contracts(
        sources_dir=root / "sources",
        codes_dir=root / "codes" if (root / "codes").is_dir() else None,
        divisions_file=_if_file(root / "divisions.yaml"),
    )
    sharing_dir = root / "sharing"
    sharing = load_sharing_list(sharing_dir, contracts) if sharing_dir.is_dir() else {}
    table_file = root / "one_table.yaml"
    table = county_table(table_file) if table_file.exists() else load_one_table()
    _check_settings(root / SETTINGS_FILE, settings, contracts)
    return Deployment(root, settings, contracts, sharing, table)


def _if_file(path: Path) -> Path | None:
    return path if path.is_file() else None


def county_table(path: Path) -> OneTable:
    """The package's one table of version `extends`, with the county's indicators and rules."""
    own = _parse(CountyTable, path)
    base = load_one_table()
    if own.extends != base.version:
        raise ContractError(
            f"{path}: extends: {own.extends!r} is not an indicator system of this package "
            f"(it has {base.version!r})"
        )
    taken = {i.id for i in base.indicators} & {i.id for i in own.indicators}
    if taken:
        raise ContractError(
            f"{path}: indicators: {', '.join(sorted(taken))} are the package's; give the county's "
            "own indicators ids of their own"
        )
    table = OneTable(
        version=own.version,
        indicators=[*base.indicators, *own.indicators],
        rules=[*base.rules, *own.rules],
    )
    check_one_table(table, path)
    return table


def _check_settings(where: Path, settings: Settings, contracts: Contracts) -> None:
    problems = []
    named = [("residence_sources", s) for s in settings.residence_sources or []]
    named += [(f"placement.{i}.source", p.source) for i, p in enumerate(settings.placement)]
    for key, source in named:
        if source not in contracts.sources:
            problems.append(
                f"{where}: {key}: {source!r} is not a source in sources/ "
                f"(one of {', '.join(sorted(contracts.sources)) or 'none'})"
            )
    if problems:
        raise ContractError("\n".join(problems))


def check_deployment(deployment: Deployment) -> None:
    """What loading cannot see file by file (`onetable contracts check`): every sharing entry's
    row scope and the settings' county are divisions of the registry, so an extract cannot go
    silently empty because its scope names another county; a mapping that reads villages from
    addresses has village codes to give."""
    from onetable.schemas.divisions import registry

    codes = [c for c in registry(deployment.contracts)["code"] if c]
    where = deployment.root or SHIPPED
    problems = []
    for entry in deployment.sharing.values():
        for prefix in [] if entry.row_scope == "all" else entry.row_scope:
            if not any(code.startswith(prefix) for code in codes):
                problems.append(
                    f"{where / 'sharing' / f'{entry.id}.yaml'}: row_scope: {prefix!r} matches no "
                    f"division of the registry ({deployment.contracts.divisions_path()}): the "
                    "extract would be empty"
                )
    county = deployment.settings.county
    if county is not None and county.code not in codes:
        problems.append(
            f"{where / SETTINGS_FILE}: county.code: {county.code!r} is not in the registry "
            f"({deployment.contracts.divisions_path()})"
        )
    villages = [c for c in codes if len(c) == 12]
    for source in deployment.contracts.sources.values():
        for column, mapping, _ in source.mappings():
            if mapping.convert == "address_village" and not villages:
                problems.append(
                    f"{source.source}: {column}: `convert: address_village` reads a village code "
                    f"from the registry's village codes, and the registry "
                    f"({deployment.contracts.divisions_path()}) gives none: fill them in"
                )
    if problems:
        raise ContractError("\n".join(problems))


_PLACEHOLDER = re.compile(r"\{(county_code|county_name)\}")


def init_deployment(root: Path, county_code: str | None = None) -> list[Path]:
    """Write a new deployment folder from the package's template (commented examples); with a
    county's code, its name filled in and its part of the package's division tree as the
    registry. Refuses a folder that already has files, and a code the tree does not hold."""
    from onetable.schemas.divisions import COLUMNS, name_of, registry

    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise ContractError(f"{root}: not empty; `onetable init` writes a new deployment folder")
    tree = registry(load_contracts())
    name = name_of(tree, county_code) if county_code else "示例县"
    if name is None:
        raise ContractError(f"{county_code}: not a county of the package's division tree")
    county = County(code=county_code or "000000", name=name)
    values = {"county_code": county.code, "county_name": county.name}
    written = []
    for item in sorted(TEMPLATE.rglob("*")):
        if item.is_dir() or item.name == "__pycache__" or item.suffix == ".pyc":
            continue
        dest = root / item.relative_to(TEMPLATE)
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = item.read_text(encoding="utf-8")
        dest.write_text(_PLACEHOLDER.sub(lambda m: values[m[1]], text), encoding="utf-8")
        written.append(dest)
    for name in ("groups", "relations", "sex"):
        shipped = SHIPPED / "codes" / f"{name}.yaml"
        if shipped.exists():
            (root / "codes").mkdir(exist_ok=True)
            shutil.copyfile(shipped, root / "codes" / f"{name}.yaml")
            written.append(root / "codes" / f"{name}.yaml")
    # the county's rows of the tree: names, village codes blank for the county to fill in
    rows = tree[tree["county_code"] == county.code]
    rows.to_csv(root / "divisions.csv", columns=COLUMNS, index=False, encoding="utf-8")
    return [*written, root / "divisions.csv"]
