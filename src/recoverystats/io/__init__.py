"""Loaders: program exports (CSV, Excel, Parquet, SPSS, Stata, SQL) -> ``ProgramData``.

- :func:`read_program` reads a folder of exports or a ``program.toml`` mapping;
- :meth:`ProgramData.from_tables` validates in-memory frames with the same rules;
- :func:`load_mapping` checks a mapping (path or dict) on its own.
"""

from recoverystats.io.mapping import load_mapping
from recoverystats.io.program import ProgramData
from recoverystats.io.read import read_program

__all__ = ["ProgramData", "read_program", "load_mapping"]
