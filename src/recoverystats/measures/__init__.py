"""Outcome measures: program data -> one row per participant.

Each measure takes a :class:`~recoverystats.ProgramData` and a data cut-off ``as_of``
and returns a DataFrame with one row per participant: ``participant_id``, ``group``,
``site``, the covariates, the outcome column(s), ``event``, ``time_days``,
``eligible`` and ``exclusion_reason`` (``noms_change`` returns a per-item summary
instead). The definitions are written once, in
:mod:`recoverystats.measures.definitions`, and stored with every result in
``df.attrs["measure"]``; ``docs/measures.md`` carries the same text.

Fixed-window rates use only ``eligible`` rows (the outcome column is NaN for the
others); time-to-event analyses use ``time_days``/``event`` for everyone enrolled by
``as_of``.
"""

from recoverystats.measures.definitions import (
    COMMON_RULES,
    DEFINITIONS,
    MeasureDefinition,
    definitions_markdown,
)
from recoverystats.measures.engagement import engagement
from recoverystats.measures.followup import followup, followup_rate
from recoverystats.measures.noms import NOMS_ITEMS, mcnemar_test, noms_change
from recoverystats.measures.recidivism import recidivism
from recoverystats.measures.relapse import relapse
from recoverystats.measures.retention import retention

__all__ = [
    "retention",
    "relapse",
    "recidivism",
    "followup",
    "followup_rate",
    "noms_change",
    "engagement",
    "mcnemar_test",
    "NOMS_ITEMS",
    "DEFINITIONS",
    "COMMON_RULES",
    "MeasureDefinition",
    "definitions_markdown",
]
