"""The program data model (table specs) and its validation rules."""

from recoverystats.schema.rules import RULES, Finding, Rule
from recoverystats.schema.spec import (
    EVENT_TYPES,
    RECIDIVISM_LEVELS,
    TABLE_NAMES,
    TABLES,
    ColumnSpec,
    TableSpec,
)

__all__ = [
    "TABLES",
    "TABLE_NAMES",
    "EVENT_TYPES",
    "RECIDIVISM_LEVELS",
    "ColumnSpec",
    "TableSpec",
    "RULES",
    "Rule",
    "Finding",
]
