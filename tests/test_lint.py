"""The code base passes ruff (the linter named in STYLE.md) with the project's settings."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_passes():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed: install the dev extra (pip install -e '.[dev]')")
    out = subprocess.run(
        [ruff, "check", "src", "tests", "benchmarks", "tools", "notebooks"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
