"""`onetable link-records` on a small table: one person written three ways, and twins."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

from onetable.schemas.rules import id_check_char

A = "32032419900101001" + id_check_char("32032419900101001")
B = "32032419900101003" + id_check_char("32032419900101003")
ROWS = [
    ("r1", "registry", "王伟", "男", "1990-01-01", A, "13912345678", ""),
    ("h1", "health", "王 纬", "男", "1990年1月1日", "", "", ""),  # homophone, no ID
    ("d1", "disability", "王伟", "男", "", A.lower() + "41", "", ""),  # 20-digit certificate
    ("r2", "registry", "王芳", "女", "1990-01-01", B, "", ""),  # a twin: same birth date
]


def test_link_records_cli(tmp_path):
    src = tmp_path / "in.csv"
    pd.DataFrame(
        ROWS,
        columns=["rid", "source", "name", "sex", "birth_date", "id_number", "phone", "address"],
    ).to_csv(src, index=False)
    out = tmp_path / "out.parquet"
    onetable = Path(sys.executable).parent / "onetable"
    result = subprocess.run(
        [onetable, "link-records", src, out, "--map", "record_id=rid"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    ids = dict(pd.read_parquet(out).itertuples(index=False))
    assert ids["r1"] == ids["h1"] == ids["d1"] != ids["r2"]
    assert "4 records, 2 persons" in result.stdout
