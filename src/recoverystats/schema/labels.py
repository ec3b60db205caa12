"""Display labels of the data model's codes: one mapping, applied at render time.

Tables (``.table`` of every result, the report's tables) hold the raw codes
(``peer_mentoring``, ``lost_contact``); the report, the figures and the API's displays turn
them into words with :class:`Labels` when they render. The release ledger's cell ids are
built from the raw codes, so renaming a label never changes which cell is which.

The defaults are :data:`DEFAULT_LABELS` (one entry per field of the data model, plus the
codes the simulator and common exports use); any code not listed reads as its humanised
self (``site_a`` -> "Site a"). ``program.toml`` and the report configuration override
them in a ``[labels]`` table, one sub-table per field::

    [labels.group]
    peer_mentoring = "Mentored"
    [labels.race]
    other = "Another race"
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recoverystats.errors import InvalidParameterError
from recoverystats.schema.spec import (
    DISCHARGE_REASONS,
    EVENT_TYPES,
    GENDERS,
    MODALITIES,
    RISK_LEVELS,
    SCREEN_RESULTS,
    TABLES,
    TIMEPOINTS,
)

__all__ = ["DEFAULT_LABELS", "LABEL_FIELDS", "Labels", "column_words", "humanise", "parse_labels"]

_SPECIAL: dict[str, str] = {
    "american_indian_alaska_native": "American Indian or Alaska Native",
    "native_hawaiian_pacific_islander": "Native Hawaiian or Other Pacific Islander",
    "black": "Black or African American",
    "not_hispanic": "Not Hispanic or Latino",
    "hispanic": "Hispanic or Latino",
    "nonbinary": "Nonbinary",
    "very_high": "Very high",
    "ed_visit": "Emergency department visit",
    "in_person": "In person",
    "followup_6m": "6-month follow-up",
    "lost_contact": "Lost contact",
    "peer_mentoring": "Peer mentoring",
    "employed_or_school": "Employed or in school",
    "no_arrest": "No arrest",
}


def humanise(code: str) -> str:
    """A code in words: underscores to spaces, first letter capitalised (``site_a`` -> "Site a")."""
    if code in _SPECIAL:
        return _SPECIAL[code]
    text = str(code).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _defaults(codes: tuple[str, ...]) -> dict[str, str]:
    return {c: humanise(c) for c in codes}


#: Default labels per field: the code lists of :mod:`recoverystats.schema.spec` and the
#: values the simulator writes for the free-text fields (group, race, ethnicity, substances).
DEFAULT_LABELS: dict[str, dict[str, str]] = {
    "group": _defaults(("peer_mentoring", "comparison", "control", "waitlist", "treatment")),
    "discharge_reason": _defaults(DISCHARGE_REASONS),
    "gender": _defaults(GENDERS),
    "race": _defaults(("white", "black", "american_indian_alaska_native", "asian",
                       "native_hawaiian_pacific_islander", "multiracial", "other", "unknown")),
    "ethnicity": _defaults(("not_hispanic", "hispanic", "unknown")),
    "risk_level": _defaults(RISK_LEVELS),
    "primary_substance": _defaults(("opioids", "alcohol", "methamphetamine", "cocaine", "cannabis", "other")),
    "substance": _defaults(("opioids", "alcohol", "methamphetamine", "cocaine", "cannabis", "other")),
    "event_type": _defaults(EVENT_TYPES),
    "result": _defaults(SCREEN_RESULTS),
    "modality": _defaults(MODALITIES),
    "timepoint": _defaults(TIMEPOINTS),
    "recidivism_level": _defaults(("rearrest", "reconviction", "reincarceration")),
    "noms_item": _defaults(("abstinence", "no_arrest", "employed_or_school", "stable_housing", "social_support")),
    #: column (variable) names as they appear in rows of a table (Table 1, model terms)
    "variable": {
        **{c.name: humanise(c.name) for t in TABLES.values() for c in t.columns},
        "age": "Age (years)",
        "prior_incarcerations": "Prior incarcerations",
        "dual_diagnosis": "Co-occurring mental-health diagnosis",
        "risk_level": "Risk level",
        "primary_substance": "Primary substance",
    },
}
#: The fields a ``[labels]`` table may name.
LABEL_FIELDS: tuple[str, ...] = tuple(DEFAULT_LABELS) + ("site",)

#: Table columns whose values are codes of a field (the report's tables).
COLUMN_FIELDS: dict[str, str] = {
    "group": "group", "reason": "discharge_reason", "discharge_reason": "discharge_reason",
    "gender": "gender", "race": "race", "ethnicity": "ethnicity", "risk_level": "risk_level",
    "primary_substance": "primary_substance", "substance": "substance", "event_type": "event_type",
    "result": "result", "modality": "modality", "timepoint": "timepoint", "item": "noms_item",
    "variable": "variable", "site": "site",
}

_CODE = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
_TERM = re.compile(r"^(?P<var>[A-Za-z_][A-Za-z0-9_]*)\[(?:T\.)?(?P<level>[^\]]+)\]$")


@dataclass(frozen=True, slots=True)
class Labels:
    """Display labels of codes: the defaults with the program's and the report's overrides.

    Parameters
    ----------
    overrides
        Field -> {code: label}; the fields are :data:`LABEL_FIELDS`.

    Examples
    --------
    >>> lab = Labels({"group": {"peer_mentoring": "Mentored"}})
    >>> lab.code("peer_mentoring", field="group"), lab.code("lost_contact", field="discharge_reason")
    ('Mentored', 'Lost contact')
    >>> lab.term("gender[female]", reference="male")
    'Gender: Female (vs Male)'
    """

    overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def merged(self, other: Mapping[str, Mapping[str, str]] | Labels | None) -> Labels:
        """These labels with ``other``'s overrides on top."""
        extra = other.overrides if isinstance(other, Labels) else (other or {})
        out: dict[str, dict[str, str]] = {k: dict(v) for k, v in self.overrides.items()}
        for f, m in extra.items():
            out.setdefault(f, {}).update(m)
        return Labels(out)

    def code(self, value: Any, *, field: str | None = None) -> str:
        """The label of one code (a field's own labels first, then any field's, then humanised).

        Text that is not a code (has capitals or spaces, e.g. "Relapse within 180 days" or
        "2026Q3") is returned unchanged.
        """
        text = str(value)
        if field is not None:
            for source in (self.overrides.get(field, {}), DEFAULT_LABELS.get(field, {})):
                if text in source:
                    return source[text]
        if not _CODE.match(text):
            return text
        for f, m in self.overrides.items():
            if f != "variable" and text in m:
                return m[text]
        for f, m in DEFAULT_LABELS.items():
            if f != "variable" and text in m:
                return m[text]
        return humanise(text)

    def known(self, value: Any, *, field: str | None = None) -> str:
        """The label of a code listed in the overrides or the defaults; any other value as it is
        (for the API's figures, whose groups are the user's own values: ``a`` stays ``a``)."""
        text = str(value)
        for source in (self.overrides.get(field or "", {}), DEFAULT_LABELS.get(field or "", {})):
            if text in source:
                return source[text]
        return text

    def variable(self, name: str) -> str:
        """The label of a column used as a variable (``age`` -> "Age (years)")."""
        return self.code(name, field="variable")

    def term(self, term: str, *, reference: Any = None) -> str:
        """A model term in words: ``gender[female]`` -> "Gender: Female (vs Male)".

        A numeric term reads as its variable's label (``age`` -> "Age (years)"); a
        categorical one (patsy/formulaic ``var[level]`` or ``var[T.level]``) as
        "Variable: level", with "(vs reference)" when the reference level is known.
        """
        m = _TERM.match(str(term))
        if m is None:
            return self.variable(str(term)) if _CODE.match(str(term)) else str(term)
        var, level = m.group("var"), m.group("level")
        fld = var if var in DEFAULT_LABELS or var in self.overrides else None
        text = f"{self.variable(var)}: {self.code(level, field=fld)}"
        if reference is not None and str(reference) != "":
            text += f" (vs {self.code(reference, field=fld)})"
        return text


_WINDOWED = re.compile(r"^(?P<base>[a-z][a-z_]*?)_(?P<days>\d+)(?:d|_days)?$")


def column_words(name: Any) -> str:
    """A measure column in words for axis labels and titles: ``retained_90`` -> "Retained at
    90 days", ``relapsed`` -> "Relapsed"; other names humanised."""
    text = str(name)
    m = _WINDOWED.match(text)
    if m is not None:
        return f"{humanise(m.group('base'))} at {int(m.group('days'))} days"
    return DEFAULT_LABELS["variable"].get(text) or humanise(text) if _CODE.match(text) else text


def parse_labels(raw: Any, *, where: str = "[labels]") -> dict[str, dict[str, str]]:
    """Check a ``[labels]`` table: field -> {code: label}, labels non-empty text.

    Raises
    ------
    InvalidParameterError
        Naming the sub-table or key, what was received and the allowed fields.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidParameterError(
            f"{where} must be a table of tables ([labels.group] peer_mentoring = \"Mentored\"); "
            f"got {type(raw).__name__} {raw!r}.")
    out: dict[str, dict[str, str]] = {}
    for fld, m in raw.items():
        if fld not in LABEL_FIELDS:
            raise InvalidParameterError(
                f"{where}: unknown field {fld!r}; allowed fields: {', '.join(LABEL_FIELDS)} "
                f"(e.g. [labels.group] peer_mentoring = \"Mentored\").")
        if not isinstance(m, Mapping):
            raise InvalidParameterError(
                f"{where[:-1]}.{fld}] must be a table of code = \"label\"; got {type(m).__name__} {m!r}.")
        for code, text in m.items():
            if not isinstance(text, str) or not text.strip():
                raise InvalidParameterError(
                    f"{where[:-1]}.{fld}] {code}: a label must be non-empty text; got {text!r}.")
        out[str(fld)] = {str(k): str(v).strip() for k, v in m.items()}
    return out
