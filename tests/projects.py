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


def environ(store_settings, project: Path, data: Path, out: Path) -> dict[str, str]:
    """The environment a run of the deployment at `project` reads: the store, its key, the
    data root, the outputs and a pseudonym key."""
    return {
        "ONETABLE_STATE_DIR": str(store_settings.state_dir),
        "ONETABLE_STORE_KEY": store_settings.key,
        "ONETABLE_PROJECT": str(project),
        "ONETABLE_DATA_ROOT": str(data),
        "ONETABLE_OUT_DIR": str(out),
        "ONETABLE_PSEUDONYM_KEY": "k" * 40,
    }
