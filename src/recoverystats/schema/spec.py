"""The canonical program data model: six tables, their columns, types, codes and keys.

This module is the single definition of the data model (DESIGN section 3); the loaders,
the validator, the simulator, the measures and ``docs/data-model.md`` all read it.
Column kinds map to pandas dtypes as follows:

========  =====================================  ==============================
kind      pandas dtype                           notes
========  =====================================  ==============================
id        ``string`` (``pd.StringDtype()``)      never numeric: ``007`` stays ``007``
date      ``datetime64[ns]`` (midnight)          calendar dates
code      ``string``                             value must be one of ``codes``
string    ``string``                             free text
int       ``Int64`` (nullable)                   counts
float     ``float64``
bool      ``boolean`` (nullable)
========  =====================================  ==============================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnKind = Literal["id", "date", "code", "string", "int", "float", "bool"]

#: pandas dtype of each column kind.
KIND_DTYPES: dict[str, str] = {
    "id": "string",
    "date": "datetime64[ns]",
    "code": "string",
    "string": "string",
    "int": "Int64",
    "float": "float64",
    "bool": "boolean",
}

EVENT_TYPES: tuple[str, ...] = (
    "substance_use",
    "drug_screen",
    "relapse",
    "arrest",
    "conviction",
    "incarceration",
    "parole_violation",
    "probation_violation",
    "hospitalization",
    "ed_visit",
    "overdose",
    "death",
)
#: Event types that count as a relapse (a drug_screen only when ``result == "positive"``).
RELAPSE_EVENT_TYPES: tuple[str, ...] = ("relapse", "substance_use", "drug_screen")
#: Recidivism levels and the event types each level counts (rearrest ⊇ reconviction ⊇ reincarceration).
RECIDIVISM_LEVELS: dict[str, tuple[str, ...]] = {
    "rearrest": ("arrest", "conviction", "incarceration"),
    "reconviction": ("conviction", "incarceration"),
    "reincarceration": ("incarceration",),
}
TECHNICAL_VIOLATION_TYPES: tuple[str, ...] = ("parole_violation", "probation_violation")

SCREEN_RESULTS: tuple[str, ...] = ("positive", "negative", "dilute", "invalid", "refused")
RISK_LEVELS: tuple[str, ...] = ("low", "moderate", "high", "very_high")
GENDERS: tuple[str, ...] = ("male", "female", "nonbinary", "other", "unknown")
MODALITIES: tuple[str, ...] = ("in_person", "phone", "video", "text", "group")
TIMEPOINTS: tuple[str, ...] = ("intake", "followup_6m", "discharge", "other")
DISCHARGE_REASONS: tuple[str, ...] = (
    "completed",
    "withdrew",
    "lost_contact",
    "incarcerated",
    "administrative",
    "transferred",
    "died",
    "other",
)
#: Discharge reasons that count as a successful completion (retention with completion_counts=True).
COMPLETION_REASONS: tuple[str, ...] = ("completed",)


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column of a canonical table."""

    name: str
    kind: ColumnKind
    required: bool = False
    codes: tuple[str, ...] | None = None
    description: str = ""
    #: Plausible numeric range (inclusive) for range checks, if any.
    range: tuple[float, float] | None = None
    #: Computed by the loader (not read from the source); any source column of this name is replaced.
    derived: bool = False

    @property
    def dtype(self) -> str:
        return KIND_DTYPES[self.kind]


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One canonical table: its columns, its key, and what its rows point at."""

    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...] = ()
    #: column -> (table, column) it must match (referential integrity).
    references: dict[str, tuple[str, str]] = field(default_factory=dict)
    description: str = ""

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> ColumnSpec | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def dtypes(self) -> dict[str, str]:
        return {c.name: c.dtype for c in self.columns}


C = ColumnSpec

PARTICIPANTS = TableSpec(
    "participants",
    (
        C("participant_id", "id", True, description="Unique participant identifier (kept as text)."),
        C("enrollment_date", "date", True, description="Date the participant enrolled in the program."),
        C("group", "string", True, description="Study arm, e.g. peer_mentoring / comparison."),
        C("site", "string", description="Program site."),
        C("release_date", "date", description="Release from prison/jail (index date for recidivism)."),
        C("discharge_date", "date", description="Date the participant left the program."),
        C("discharge_reason", "code", codes=DISCHARGE_REASONS, description="Why the participant left."),
        C("birth_date", "date", description="Date of birth (never reported)."),
        C("age", "float", range=(10, 100), description="Age in years at enrollment."),
        C("gender", "code", codes=GENDERS),
        C("race", "string"),
        C("ethnicity", "string"),
        C("risk_level", "code", codes=RISK_LEVELS, description="Criminogenic risk level (e.g. LSI-R/ORAS band)."),
        C("risk_score", "float", description="Criminogenic risk score."),
        C("prior_incarcerations", "int", range=(0, 200)),
        C("primary_substance", "string"),
        C("dual_diagnosis", "bool", description="Co-occurring mental-health diagnosis."),
        C("followup_end_date", "date", description="End of research follow-up (censoring date)."),
    ),
    key=("participant_id",),
    description="One row per enrolled participant. The only required table.",
)

MENTORS = TableSpec(
    "mentors",
    (
        C("mentor_id", "id", True),
        C("site", "string"),
        C("gender", "code", codes=GENDERS),
        C("lived_incarceration", "bool", description="Mentor has lived experience of incarceration."),
        C("lived_recovery", "bool", description="Mentor is in recovery."),
        C("years_in_recovery", "float", range=(0, 80)),
        C("certified_date", "date", description="Peer-specialist certification date."),
    ),
    key=("mentor_id",),
    description="One row per peer mentor.",
)

MATCHES = TableSpec(
    "matches",
    (
        C("participant_id", "id", True),
        C("mentor_id", "id", True),
        C("match_date", "date", True),
        C("end_date", "date"),
        C("match_basis", "string", description="Why this mentor was matched (e.g. shared_substance)."),
    ),
    key=("participant_id", "mentor_id", "match_date"),
    references={"participant_id": ("participants", "participant_id"), "mentor_id": ("mentors", "mentor_id")},
    description="Participant-mentor pairings over time.",
)

CONTACTS = TableSpec(
    "contacts",
    (
        C("participant_id", "id", True),
        C("contact_date", "date", True),
        C("mentor_id", "id"),
        C("modality", "code", codes=MODALITIES),
        C("minutes", "float", range=(0, 24 * 60)),
    ),
    references={"participant_id": ("participants", "participant_id"), "mentor_id": ("mentors", "mentor_id")},
    description="Mentor-participant contacts.",
)

EVENTS = TableSpec(
    "events",
    (
        C("participant_id", "id", True),
        C("event_date", "date", True),
        C("event_type", "code", True, codes=EVENT_TYPES),
        C("result", "code", codes=SCREEN_RESULTS, description="Drug-screen result."),
        C("substance", "string"),
        C("source", "string", description="Where the event was recorded (self-report, state repository, ...)."),
        C("before_enrollment", "bool", derived=True,
          description="Derived by the loader: event_date is before the participant's enrollment_date (history)."),
    ),
    references={"participant_id": ("participants", "participant_id")},
    description="Dated outcome events (use, screens, justice contacts, health events, death).",
)

ASSESSMENTS = TableSpec(
    "assessments",
    (
        C("participant_id", "id", True),
        C("assessment_date", "date", True),
        C("timepoint", "code", True, codes=TIMEPOINTS),
        C("any_use_30d", "bool", description="Any alcohol or illegal drug use in the past 30 days."),
        C("arrested_30d", "bool", description="Arrested in the past 30 days."),
        C("employed_or_school", "bool", description="Employed or attending school."),
        C("stable_housing", "bool", description="Stable housing in the past 30 days."),
        C("social_support", "bool", description="Has social support for recovery (GPRA item)."),
        C("satisfaction", "float", range=(1, 5)),
        C("quality_of_life", "float", range=(1, 5)),
    ),
    key=("participant_id", "timepoint"),
    references={"participant_id": ("participants", "participant_id")},
    description="GPRA/NOMs-style assessments at intake, 6-month follow-up and discharge.",
)

#: The six canonical tables in load order (referenced tables first).
TABLES: dict[str, TableSpec] = {
    t.name: t for t in (PARTICIPANTS, MENTORS, MATCHES, CONTACTS, EVENTS, ASSESSMENTS)
}
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
