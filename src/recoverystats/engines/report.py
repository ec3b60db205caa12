"""The quarterly report on a program held by an engine.

The report code stays as it is (DESIGN 14: suppression and the privacy scan run in
Python, after collection). What it needs from the program is small: the participants
table (one row per person, with the covariates the tables are broken down by), the
mentors and matches (first mentor per participant, for clustered variances), the
validation findings and the flow. Those are collected; the large tables (events,
contacts, assessments) never leave the engine: the measures run there
(:mod:`recoverystats.engines.measures`) and only their per-participant results are
collected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recoverystats.io.program import ProgramData, empty_table

#: Tables collected for the report (one row per participant, mentor or match).
COLLECTED: tuple[str, ...] = ("participants", "mentors", "matches")


@dataclass(frozen=True, slots=True, repr=False)
class EngineBackedProgram(ProgramData):
    """A :class:`ProgramData` for the report: small tables collected, the rest on the engine.

    ``events``, ``contacts`` and ``assessments`` are empty frames here; the report asks
    :meth:`rows` for their sizes and computes the measures on :attr:`engine_program`.
    """

    engine_program: Any = None

    def rows(self, name: str) -> int:
        """Rows kept in table ``name`` (from the flow table; the engine holds the rows)."""
        f = self.flow
        hit = f[f["table"] == name]
        return int(hit["rows_kept"].iloc[0]) if len(hit) else 0


def for_report(prog: Any) -> EngineBackedProgram:
    """The program as the report takes it: participants, mentors and matches collected."""
    from recoverystats.schema.spec import TABLE_NAMES

    frames = {n: prog.to_pandas(n) if n in COLLECTED else empty_table(n) for n in TABLE_NAMES}
    return EngineBackedProgram(
        **frames,
        validation=prog.validation,
        flow=prog.flow,
        sources=prog.sources,
        as_of=prog.as_of,
        source=prog.source,
        labels=prog.labels,
        info=prog.info,
        engine_program=prog,
    )


def table_rows(prog: Any, name: str) -> int:
    """Rows of table ``name`` whether the program is in memory or on an engine."""
    if isinstance(prog, EngineBackedProgram):
        return prog.rows(name)
    return len(getattr(prog, name))


def measure_source(prog: Any) -> Any:
    """What the measures run on: the engine program behind a report program, else the program."""
    return getattr(prog, "engine_program", None) or prog


__all__ = ["EngineBackedProgram", "for_report", "table_rows", "measure_source"]
