"""Coerce and validate in-memory canonical tables into ``ProgramData``.

Interim version: coerces types only. The full validation pipeline (rules, findings,
drop/raise) replaces this in the loader work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from recoverystats.io.program import FLOW_COLUMNS, ProgramData, empty_table
from recoverystats.schema.spec import TABLE_NAMES, TABLES


def _coerce(name: str, df: pd.DataFrame) -> pd.DataFrame:
    spec = TABLES[name]
    out = df.copy()
    for col in spec.columns:
        if col.name not in out:
            out[col.name] = pd.Series(index=out.index, dtype=col.dtype)
        if col.kind == "date":
            out[col.name] = pd.to_datetime(out[col.name]).astype("datetime64[ns]")
        else:
            out[col.name] = out[col.name].astype(col.dtype)
    ordered = list(spec.column_names) + [c for c in out.columns if c not in spec.column_names]
    return out[ordered].reset_index(drop=True)


def build_program(tables: Mapping[str, pd.DataFrame], *, as_of: Any = None, on_error: str = "raise",
                  source: str = "<in-memory>") -> ProgramData:
    frames = {}
    flow = []
    for name in TABLE_NAMES:
        df = tables.get(name)
        frames[name] = empty_table(name) if df is None else _coerce(name, df)
        flow.append((name, len(frames[name]), len(frames[name]), 0))
    return ProgramData(**frames, flow=pd.DataFrame(flow, columns=list(FLOW_COLUMNS)),
                       as_of=None if as_of is None else pd.Timestamp(as_of), source=source)
