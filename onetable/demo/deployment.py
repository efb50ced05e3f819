"""The demo county's deployment folder, DIR/deployment: the demo runs through the same path as any
county (schemas/deployment.py), so nothing about its county is in code.

The folder is the variant's template (onetable/demo/deployments/<variant>/: settings, source
mappings, sharing list, code tables, one table) and the division registry the generator made up
for it (divisions.csv, with its villages' and grids' synthetic codes, and divisions.yaml).
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

import pandas as pd

from onetable.demo.county import REGISTRY_EDITION, registry_frame
from onetable.demo.generate import Demo

TEMPLATES = Path(str(files("onetable.demo") / "deployments"))

DIVISIONS_YAML = """\
# The demo county's division registry, made by `onetable demo generate`: the county's real
# townships and village names (the package's Jiangsu tree) with made-up village codes, and its
# grids and micro-grids (docs/demo.md). A county's own registry has the same columns.
path: divisions.csv
edition: {edition}
reference_date: {reference}
synthetic: true
notes: every village and grid code is the generator's (code_synthetic)
"""


def write_deployment(demo: Demo, grids: pd.DataFrame, out: Path, variant: str = "variant1") -> Path:
    """Write `out/deployment` afresh: the variant's template and the demo's registry."""
    folder = out / "deployment"
    if folder.exists():
        shutil.rmtree(folder)  # the generator's own folder: nothing of an earlier run may linger
    shutil.copytree(TEMPLATES / variant, folder, ignore=shutil.ignore_patterns("__pycache__"))
    start = demo.settings.start
    registry = registry_frame(demo.county, demo.villages, start, grids)
    registry.to_csv(folder / "divisions.csv", index=False, lineterminator="\n")
    (folder / "divisions.yaml").write_text(
        DIVISIONS_YAML.format(edition=REGISTRY_EDITION, reference=start.isoformat()),
        encoding="utf-8",
    )
    return folder
