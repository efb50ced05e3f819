"""Small builders shared by the connector tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from onetable.schemas.contracts import Source


def make_source(name: str, location: dict[str, Any], **overrides: Any) -> Source:
    """A person-register source mapping, as a department's YAML would give it."""
    spec: dict[str, Any] = {
        "source": name,
        "department": "公安",
        "name_zh": "测试来源",
        "entity": "person",
        "location": location,
        "record_key": {"column": "人员编号"},
        "read": {"mode": "snapshot"},
        "deleted": {"column": "状态", "values": ["注销", "迁出"]},
        "required": ["人员编号", "姓名"],
        "columns": {
            "姓名": {"to": "name", "convert": "name"},
            "身份证号": {"to": "id_number", "convert": "id_number"},
        },
    }
    spec.update(overrides)
    return Source.model_validate(spec)


def write_csv(path: Path, header: str, rows: list[str], encoding: str = "gb18030") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    return path
