"""The quarterly report's configuration (a TOML file; every key has a default).

Example ``report.toml``::

    title = "Peer Mentoring Program: Quarterly Outcomes"
    seed = 20260930

    [program]                     # overrides program.toml's [program] identity (all optional)
    name = "Riverside Reentry Peer Mentoring"  # or top-level: program = "..."
    funder = "State Opioid Response"
    grant_number = "SOR-2026-014"
    reporting_period = "2026-07-01 to 2026-09-30"
    prepared_by = "Evaluation team"

    [design]                      # overrides program.toml's [design]
    comparison = "waitlist"       # randomised, waitlist, matched, other_agency, historical, other
    description = "Clients waiting for a mentor"

    [groups]
    column = "group"              # exposure column
    reference = "comparison"      # reference level (odds ratios, risk differences)
    program = ["peer_mentoring"]  # groups the targets apply to (default: every group but the reference)
    mentored = ["peer_mentoring"] # groups offered a mentor (default: groups with any mentor match)

    [analysis]
    conf_level = 0.95
    retention_days = [30, 60, 90, 180]
    relapse_window = 180
    recidivism_window = 365
    recidivism_levels = ["rearrest", "reconviction", "reincarceration"]
    adjust = ["age", "gender", "risk_level", "prior_incarcerations", "primary_substance"]
    cluster = "mentor_id"
    table_one = ["age", "gender", "race", "risk_level", "prior_incarcerations", "primary_substance", "dual_diagnosis"]
    km_times = [0, 90, 180, 270, 365]
    followup_window = [150, 240]

    [targets]                     # shown next to this and last quarter's key numbers
    retention_90 = 0.75
    relapse = 0.35                # lower is better
    rearrest = 0.25               # lower is better
    followup_rate = 0.80

    [privacy]
    min_cell = 11                 # below 11 (the policy threshold) the report is stamped "not for release"
    previous = ["../2026Q2"]      # earlier releases (report folders or results.json) for the release ledger

    [sections]                    # switch report sections on (true) or off (false); unlisted: on
    adjusted = false              # keys: see recoverystats.report.sections.SECTION_KEYS
    missing_data = true           # opt-in: "Follow-up and missing data"
    sites = true                  # opt-in: effect by site, pooled (3+ sites)
    subgroups = true              # opt-in: effect by subgroup, for [subgroups] modifiers

    [missing]                     # settings of the missing-data section (recorded in results.json)
    m = 20                        # imputations (multiple imputation and the tipping-point analysis)
    seed = 1                      # seed of the imputations (default: the report's seed)
    outcome = "any_use_30d"       # follow-up interview item analysed for the tipping point

    [subgroups]
    modifiers = ["gender", "risk_level"]  # participant columns (categorical, <= 20 levels)
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from recoverystats.errors import InvalidParameterError
from recoverystats.schema.spec import RECIDIVISM_LEVELS

__all__ = ["ReportConfig", "load_config", "DEFAULT_TARGETS", "TARGET_DIRECTIONS", "COMPARISON_DESIGNS"]

#: Default targets for the key numbers (proportions).
DEFAULT_TARGETS: dict[str, float] = {
    "retention_90": 0.75,
    "relapse": 0.35,
    "rearrest": 0.25,
    "followup_rate": 0.80,
}
#: Whether a higher value is better for each key number with a target.
TARGET_DIRECTIONS: dict[str, str] = {
    "retention_30": "higher", "retention_60": "higher", "retention_90": "higher", "retention_180": "higher",
    "relapse": "lower", "rearrest": "lower", "reconviction": "lower", "reincarceration": "lower",
    "followup_rate": "higher",
}


@dataclass(frozen=True, slots=True)
class ReportConfig:
    """Settings of one quarterly report (see the module docstring for the TOML layout)."""

    title: str = "Quarterly Outcomes Report"
    #: the program's name (``[program] name`` here or in program.toml)
    program: str = ""
    funder: str = ""
    grant_number: str = ""
    reporting_period: str = ""
    prepared_by: str = ""
    #: how the comparison group was formed (:data:`COMPARISON_DESIGNS`; empty: not stated)
    comparison: str = ""
    design_description: str = ""
    seed: int = 20260930
    group_column: str = "group"
    reference: str | None = None
    #: groups offered a mentor: the denominator of "matched" in the program flow
    #: (None: every group with at least one mentor match by the cut-off)
    mentored: tuple[str, ...] | None = None
    #: groups the targets apply to (None: every group but the reference)
    program_groups: tuple[str, ...] | None = None
    conf_level: float = 0.95
    retention_days: tuple[int, ...] = (30, 60, 90, 180)
    relapse_window: int = 180
    recidivism_window: int = 365
    recidivism_levels: tuple[str, ...] = ("rearrest", "reconviction", "reincarceration")
    adjust: tuple[str, ...] = ("age", "gender", "risk_level", "prior_incarcerations", "primary_substance")
    cluster: str | None = "mentor_id"
    table_one: tuple[str, ...] = ("age", "gender", "race", "ethnicity", "risk_level", "prior_incarcerations",
                                  "primary_substance", "dual_diagnosis")
    km_times: tuple[int, ...] = (0, 90, 180, 270, 365)
    followup_window: tuple[int, int] = (150, 240)
    targets: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    min_cell: int = 11
    #: earlier releases of the program (report folders or their results.json) whose published
    #: cells the ledger protects against differencing; relative paths in a TOML file are
    #: relative to that file
    previous: tuple[str, ...] = ()
    #: report sections switched on (True) or off (False) by key (see
    #: :data:`recoverystats.report.sections.SECTION_KEYS`); unlisted sections take their
    #: ``default_on``
    sections: Mapping[str, bool] = field(default_factory=dict)
    #: ``[labels]``: field -> {code: display label}, on top of program.toml's ``[labels]``
    #: (see :mod:`recoverystats.schema.labels`)
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: ``[missing]``: ``m``, ``seed``, ``outcome`` of the missing-data section (see
    #: :data:`MISSING_DEFAULTS`; empty: the defaults)
    missing: Mapping[str, Any] = field(default_factory=dict)
    #: ``[subgroups] modifiers``: columns whose levels the "subgroups" section estimates the
    #: group effect in (:func:`recoverystats.effect_modification`)
    subgroup_modifiers: tuple[str, ...] = ()
    source: str = "<defaults>"

    def missing_settings(self) -> dict[str, Any]:
        """The missing-data section's settings with the defaults filled in (seed: the report's)."""
        out = {**MISSING_DEFAULTS, "seed": self.seed, **dict(self.missing)}
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe settings (recorded in ``results.json``)."""
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = list(v)
        out["targets"] = dict(self.targets)
        for k in ("funder", "grant_number", "reporting_period", "prepared_by", "comparison", "design_description",
                  "program_groups"):
            if not out[k]:  # not given: the same record as releases before these keys existed
                del out[k]
        if self.sections:
            out["sections"] = dict(self.sections)
        else:  # no switches: the same record as releases before [sections] existed
            del out["sections"]
        if self.labels:
            out["labels"] = {k: dict(v) for k, v in self.labels.items()}
        else:
            del out["labels"]
        if self.missing:
            out["missing"] = dict(self.missing)
        else:  # not given: the same record as releases before [missing] existed
            del out["missing"]
        if not self.subgroup_modifiers:  # not set: the same record as releases before [subgroups] existed
            del out["subgroup_modifiers"]
        return out


#: defaults of ``[missing]`` (the seed defaults to the report's ``seed``)
MISSING_DEFAULTS: dict[str, Any] = {"m": 20, "outcome": "any_use_30d"}

#: identity fields of ``[program]`` (report config or program.toml)
IDENTITY_FIELDS = ("name", "funder", "grant_number", "reporting_period", "prepared_by")
#: ``[design] comparison`` values
COMPARISON_DESIGNS = ("randomised", "waitlist", "matched", "other_agency", "historical", "other")

_SECTIONS = {
    "": {"title", "program", "seed"},
    "program": set(IDENTITY_FIELDS),
    "design": {"comparison", "description"},
    "groups": {"column", "reference", "mentored", "program"},
    "analysis": {"conf_level", "retention_days", "relapse_window", "recidivism_window",
                 "recidivism_levels", "adjust", "cluster", "table_one", "km_times", "followup_window"},
    "targets": None,  # free keys, checked below
    "privacy": {"min_cell", "previous"},
    "sections": None,  # section keys, checked below
    "labels": None,  # fields of recoverystats.schema.labels, checked below
    "missing": {"m", "seed", "outcome"},
    "subgroups": {"modifiers"},
}


def _fail(where: str, key: str, got: Any, expected: str) -> InvalidParameterError:
    return InvalidParameterError(f"{where}: [{key}] {expected}; got {got!r}.")


def load_config(config: str | Path | Mapping[str, Any] | ReportConfig | None = None) -> ReportConfig:
    """Read a report configuration from a TOML file, a mapping, or use the defaults.

    Parameters
    ----------
    config
        ``None`` (defaults), a path to a TOML file, a mapping with the same layout as the
        TOML file, or a :class:`ReportConfig` (returned as is).

    Raises
    ------
    InvalidParameterError
        Naming the file, the key, what was received and what is expected; unknown keys
        are errors (a typo must not silently fall back to a default).
    """
    if isinstance(config, ReportConfig):
        return config
    if config is None:
        return ReportConfig()
    where = "config"
    if isinstance(config, (str, Path)):
        path = Path(config)
        where = str(path)
        if not path.is_file():
            raise InvalidParameterError(f"config: {str(path)!r} is not a file; pass the path of a report.toml.")
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise InvalidParameterError(f"{where}: not valid TOML ({exc}); fix the file's syntax.") from None
    elif isinstance(config, Mapping):
        data = dict(config)
    else:
        raise InvalidParameterError(
            f"config must be None, a path to a TOML file, a mapping or a ReportConfig; got {type(config).__name__}."
        )

    kw: dict[str, Any] = {"source": where}
    for key, value in data.items():
        if isinstance(value, Mapping):
            if key not in _SECTIONS or key == "":
                raise InvalidParameterError(
                    f"{where}: unknown section [{key}]; sections are [program], [design], [groups], [analysis], "
                    "[targets], [privacy], [sections], [labels], [missing], [subgroups]."
                )
            allowed = _SECTIONS[key]
            for sub in value:
                if allowed is not None and sub not in allowed:
                    raise InvalidParameterError(
                        f"{where}: unknown key {sub!r} in [{key}]; allowed keys: {', '.join(sorted(allowed))}."
                    )
            if key == "groups":
                if "column" in value:
                    kw["group_column"] = value["column"]
                if "reference" in value:
                    kw["reference"] = value["reference"]
                if "mentored" in value:
                    kw["mentored"] = value["mentored"]
                if "program" in value:
                    kw["program_groups"] = value["program"]
            elif key == "program":
                for sub, v in value.items():
                    kw["program" if sub == "name" else sub] = v
            elif key == "design":
                if "comparison" in value:
                    kw["comparison"] = value["comparison"]
                if "description" in value:
                    kw["design_description"] = value["description"]
            elif key == "targets":
                targets = dict(DEFAULT_TARGETS)
                for name, v in value.items():
                    if name not in TARGET_DIRECTIONS:
                        raise InvalidParameterError(
                            f"{where}: unknown target {name!r} in [targets]; known targets: "
                            f"{', '.join(sorted(TARGET_DIRECTIONS))}."
                        )
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                        raise _fail(where, f"targets.{name}", v, "must be a proportion between 0 and 1 (e.g. 0.8)")
                    targets[name] = float(v)
                kw["targets"] = targets
            elif key == "sections":
                kw["sections"] = _section_switches(value, where)
            elif key == "subgroups":
                if "modifiers" in value:
                    kw["subgroup_modifiers"] = value["modifiers"]
            elif key == "labels":
                from recoverystats.schema.labels import parse_labels

                kw["labels"] = parse_labels(value, where=f"{where}: [labels]")
            elif key == "missing":
                kw["missing"] = _missing_settings(value, where)
            else:
                kw.update(value)
        elif key in _SECTIONS[""]:
            kw[key] = value
        else:
            raise InvalidParameterError(
                f"{where}: unknown key {key!r}; top-level keys are title, program, seed and the sections "
                "[groups], [analysis], [targets], [privacy], [sections]."
            )
    return _validated(kw, where)


def _missing_settings(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ``[missing]`` table: ``m`` (>= 2), ``seed`` (>= 0), ``outcome`` (an assessment item)."""
    out: dict[str, Any] = {}
    for name, v in value.items():
        if name == "m" and (isinstance(v, bool) or not isinstance(v, int) or v < 2):
            raise _fail(where, "missing.m", v, "must be a whole number of imputations >= 2 (e.g. 20)")
        if name == "seed" and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise _fail(where, "missing.seed", v, "must be a whole number >= 0")
        if name == "outcome" and (not isinstance(v, str) or not v):
            raise _fail(where, "missing.outcome", v, "must be the name of a follow-up assessment item (text)")
        out[str(name)] = v
    return out


def _section_switches(value: Mapping[str, Any], where: str) -> dict[str, bool]:
    """The ``[sections]`` table: known section keys with true/false values."""
    from recoverystats.report.sections import SECTION_KEYS

    out: dict[str, bool] = {}
    for name, v in value.items():
        if name not in SECTION_KEYS:
            raise InvalidParameterError(
                f"{where}: unknown section key {name!r} in [sections]; allowed keys: {', '.join(SECTION_KEYS)}."
            )
        if not isinstance(v, bool):
            raise _fail(where, f"sections.{name}", v, "must be true (show the section) or false (leave it out)")
        out[str(name)] = v
    return out


def _validated(kw: dict[str, Any], where: str) -> ReportConfig:
    names = {f.name for f in fields(ReportConfig)}
    assert set(kw) <= names, set(kw) - names

    def ints(key: str, lo: int = 0) -> None:
        if key in kw:
            v = kw[key]
            if not isinstance(v, (list, tuple)) or not v or any(
                isinstance(x, bool) or not isinstance(x, int) or x < lo for x in v
            ):
                raise _fail(where, key, v, f"must be a non-empty list of whole numbers >= {lo}")
            kw[key] = tuple(int(x) for x in v)

    def strs(key: str) -> None:
        if key in kw:
            v = kw[key]
            if not isinstance(v, (list, tuple)) or any(not isinstance(x, str) for x in v):
                raise _fail(where, key, v, "must be a list of column names")
            kw[key] = tuple(v)

    for key in ("title", "program", "group_column", "funder", "grant_number", "reporting_period", "prepared_by",
                "design_description"):
        if key in kw and not isinstance(kw[key], str):
            raise _fail(where, key, kw[key], "must be text")
    if "comparison" in kw and kw["comparison"] not in COMPARISON_DESIGNS:
        raise _fail(where, "design.comparison", kw["comparison"], f"must be one of {', '.join(COMPARISON_DESIGNS)}")
    if "reference" in kw and kw["reference"] is not None and not isinstance(kw["reference"], str):
        raise _fail(where, "groups.reference", kw["reference"], "must be a group level (text)")
    if "mentored" in kw and kw["mentored"] is not None:
        v = kw["mentored"]
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)) or not v or any(not isinstance(x, str) or not x for x in v):
            raise _fail(where, "groups.mentored", kw["mentored"], "must be a group level or a list of group levels")
        kw["mentored"] = tuple(v)
    if "program_groups" in kw and kw["program_groups"] is not None:
        v = kw["program_groups"]
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)) or not v or any(not isinstance(x, str) or not x for x in v):
            raise _fail(where, "groups.program", kw["program_groups"], "must be a group level or a list of group levels")
        kw["program_groups"] = tuple(v)
    if "cluster" in kw and kw["cluster"] not in (None, "", False) and not isinstance(kw["cluster"], str):
        raise _fail(where, "analysis.cluster", kw["cluster"], "must be a column name or empty")
    if kw.get("cluster") in ("", False):
        kw["cluster"] = None
    if "seed" in kw and (isinstance(kw["seed"], bool) or not isinstance(kw["seed"], int)):
        raise _fail(where, "seed", kw["seed"], "must be a whole number")
    if "conf_level" in kw:
        v = kw["conf_level"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
            raise _fail(where, "analysis.conf_level", v, "must be between 0 and 1 (e.g. 0.95)")
        kw["conf_level"] = float(v)
    ints("retention_days", 1)
    ints("km_times", 0)
    for key in ("relapse_window", "recidivism_window"):
        if key in kw and (isinstance(kw[key], bool) or not isinstance(kw[key], int) or kw[key] < 1):
            raise _fail(where, f"analysis.{key}", kw[key], "must be a whole number of days >= 1")
    strs("adjust")
    strs("table_one")
    strs("subgroup_modifiers")
    strs("recidivism_levels")
    if "recidivism_levels" in kw:
        bad = [x for x in kw["recidivism_levels"] if x not in RECIDIVISM_LEVELS]
        if bad or not kw["recidivism_levels"]:
            raise _fail(where, "analysis.recidivism_levels", list(kw["recidivism_levels"]),
                        f"must list levels among {', '.join(RECIDIVISM_LEVELS)}")
    if "followup_window" in kw:
        v = kw["followup_window"]
        if (not isinstance(v, (list, tuple)) or len(v) != 2 or any(isinstance(x, bool) or not isinstance(x, int) for x in v)
                or not 0 <= v[0] < v[1]):
            raise _fail(where, "analysis.followup_window", v, "must be [first_day, last_day] with 0 <= first < last")
        kw["followup_window"] = (int(v[0]), int(v[1]))
    if "previous" in kw:
        v = kw["previous"]
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)) or any(not isinstance(x, str) or not x.strip() for x in v):
            raise _fail(where, "privacy.previous", kw["previous"],
                        "must be a list of earlier report folders or results.json files")
        base = Path(where).parent if where not in ("config", "<defaults>") else None
        kw["previous"] = tuple(str(base / x) if base is not None and not Path(x).is_absolute() else x for x in v)
    if "min_cell" in kw:
        v = kw["min_cell"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise _fail(where, "privacy.min_cell", v, "must be a whole number >= 1 (11 suppresses counts 1-10)")
    return ReportConfig(**kw)
