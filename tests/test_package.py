"""The package imports quickly and exposes the contract's public names."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import recoverystats as rs
from recoverystats.results.base import ResultMixin, json_safe


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, recoverystats; "
        "heavy = [m for m in ('pandas', 'statsmodels', 'matplotlib', 'scipy', 'sklearn') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rs.nope  # noqa: B018


def test_program_data_from_tables_keeps_leading_zeros_and_types():
    p = rs.ProgramData.from_tables(
        participants=pd.DataFrame(
            {"participant_id": ["007"], "enrollment_date": ["2025-01-01"], "group": ["a"]}
        )
    )
    assert p.participants["participant_id"].iloc[0] == "007"
    assert str(p.participants["enrollment_date"].dtype) == "datetime64[ns]"
    assert len(p.events) == 0 and list(p.events.columns)[:3] == ["participant_id", "event_date", "event_type"]


def test_json_safe_converts_nan_and_numpy():
    import numpy as np

    assert json_safe({"a": np.float64("nan"), "b": np.int64(3), "c": pd.Timestamp("2025-01-02")}) == {
        "a": None,
        "b": 3,
        "c": "2025-01-02T00:00:00",
    }
    assert issubclass(ResultMixin, object)
