"""Loaders: program exports (CSV, Excel, Parquet, SPSS, Stata, SQL) -> ``ProgramData``."""

from recoverystats.io.program import ProgramData

__all__ = ["ProgramData"]
