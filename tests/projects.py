"""Deployment folders for tests: the settings file, a sources/ folder the test fills, and the demo
county's sharing list (its 60+ list for 睢宁县 民政)."""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

DEMO_DEPLOYMENT = Path(str(files("onetable.demo") / "deployments" / "variant1"))


def make_project(root: Path, settings: str = "{}\n", sharing: bool = True) -> Path:
    """A deployment folder at `root` (package defaults but for `settings`, onetable.yaml's text);
    returns it. Its sources/ is empty: the test writes its mappings there."""
    (root / "sources").mkdir(parents=True, exist_ok=True)
    (root / "onetable.yaml").write_text(settings, encoding="utf-8")
    if sharing:
        shutil.copytree(DEMO_DEPLOYMENT / "sharing", root / "sharing")
    return root
