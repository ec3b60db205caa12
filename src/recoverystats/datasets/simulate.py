"""A synthetic peer-mentoring program with known true parameters.

:func:`simulate_program` generates the six canonical tables of a peer-mentoring /
reentry program (participants, mentors, matches, contacts, events, assessments) from a
fully specified data-generating model, and returns the model's true parameters with
them, so that every measure and estimator in the package can be checked against the
truth. The model is described in full in ``docs/simulator.md``.

Hand-written: no maintained library simulates program data of this shape.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from recoverystats._checks import check_option
from recoverystats.errors import InvalidParameterError
from recoverystats.schema.spec import (
    DISCHARGE_REASONS,
    RISK_LEVELS,
    TABLE_NAMES,
    TABLES,
)

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.io.program import ProgramData

__all__ = [
    "SimulationParameters",
    "SimulationTruth",
    "SimulatedProgram",
    "simulate_program",
    "GROUPS",
    "OUTCOMES",
]

#: The two study arms generated (treatment first).
GROUPS: tuple[str, str] = ("peer_mentoring", "comparison")
#: Outcomes with a proportional-hazards data-generating model.
OUTCOMES: tuple[str, ...] = ("relapse", "rearrest", "dropout")
#: Reference values of the linear predictor (the "reference participant").
REFERENCE = {"group": "comparison", "risk_level": "low", "age": 35.0, "gender": "male"}
AGE_CENTER = 35.0

WriteFormat = Literal["csv", "parquet"]

_GENDERS = ("male", "female", "nonbinary")
_RACES = ("white", "black", "american_indian_alaska_native", "asian", "multiracial", "other")
_ETHNICITIES = ("not_hispanic", "hispanic")
_SUBSTANCES = ("opioids", "alcohol", "methamphetamine", "cocaine", "cannabis", "other")
_MODALITIES = ("in_person", "phone", "text", "video", "group")
_MATCH_BASES = ("shared_substance", "shared_justice_history", "gender", "availability")
#: Share of mentors with lived experience of incarceration / of recovery (independent).
_P_MENTOR_LIVED_INCARCERATION = 0.6
_P_MENTOR_LIVED_RECOVERY = 0.9
#: LSI-R-style score bands of the four risk levels (inclusive).
_RISK_SCORE_BANDS = ((0, 13), (14, 23), (24, 33), (34, 54))
_NOMS_ITEMS = (
    "any_use_30d",
    "arrested_30d",
    "employed_or_school",
    "stable_housing",
    "social_support",
)


# ---------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SimulationParameters:
    """Every setting of the data-generating model, with its default.

    Any field can be overridden through ``simulate_program(**effects)``, e.g.
    ``simulate_program(relapse_mentoring=-0.5, mentor_sd=0.0)``.

    Hazard models (``relapse``, ``rearrest``, ``dropout``) are proportional hazards on
    the **natural-log hazard scale, time in days**::

        h(t | x) = h0(t) * exp(eta),
        eta = b_mentoring * [group == peer_mentoring]
            + b_risk[risk_level]                     (low = 0)
            + b_age * (age - 35)                      (per year of age)
            + b_female * [gender == female] + b_nonbinary * [gender == nonbinary]
            + b_mentor_lived_incarceration * [mentor m has lived_incarceration]
            + b_mentor_lived_recovery * [mentor m has lived_recovery]
            + u_m                                     (relapse and rearrest only)

    with a Weibull baseline ``H0(t) = (t / scale) ** shape`` (``dropout``:
    exponential, ``H0(t) = dropout_rate * t``). ``m`` is the participant's assigned
    (first) mentor; the mentor terms are 0 for the comparison group and for mentored
    participants never matched. ``u_m ~ Normal(0, mentor_sd**2)`` is the mentor's
    random effect, independent of the mentor's characteristics; the realised effects
    are centred so that their average over matched participants is exactly 0. The
    mentor-characteristic coefficients (``<outcome>_mentor_lived_incarceration``,
    ``<outcome>_mentor_lived_recovery``) are 0 by default: mentor characteristics then
    have no effect. With a nonzero one, ``b_mentoring`` is the effect of mentoring by
    a mentor without the characteristic. Relapse time is
    measured from ``enrollment_date``; rearrest time from ``release_date`` (the
    ``enrollment_date`` when the participant has no release date).
    """

    # --- population -----------------------------------------------------------
    p_mentoring: float = 0.5
    """Probability of randomisation to peer_mentoring (independent Bernoulli per participant)."""
    mentoring_risk_confounding: float = 0.0
    """Confounding of group assignment by risk level (a non-randomised comparison): the log-odds
    of peer_mentoring is ``logit(p_mentoring) + c * (r - 1.5)`` with ``r`` = 0, 1, 2, 3 for
    risk_level low ... very_high. 0 (the default) is randomisation and leaves every table
    unchanged; ``c > 0`` puts higher-risk people in the program more often, so the
    unadjusted comparison is biased towards harm. The covariate distribution and the
    ``population`` columns of ``marginal``/``contrasts`` do not change: they remain the
    causal, population-standardised risks (the ATE's truth). The ``sample`` columns
    average each group's own participants and so carry the confounding."""
    age_beta: tuple[float, float] = (2.0, 4.0)
    """Age in completed years is ``18 + floor(53 * Beta(a, b))``, capped at 70."""
    p_gender: tuple[float, float, float] = (0.70, 0.28, 0.02)
    """Probabilities of male, female, nonbinary."""
    p_risk: tuple[float, float, float, float] = (0.20, 0.35, 0.30, 0.15)
    """Probabilities of risk_level low, moderate, high, very_high."""
    p_justice_involved: tuple[float, float, float, float] = (0.35, 0.55, 0.70, 0.80)
    """Probability of a recent release from prison/jail, by risk level."""
    release_gap_days: int = 30
    """Release date is 0..release_gap_days days before enrollment (uniform)."""
    p_dual_diagnosis: float = 0.40
    # --- mentoring ------------------------------------------------------------
    p_match: float = 0.92
    """Probability that a peer_mentoring participant is ever matched with a mentor."""
    match_delay_mean: float = 14.0
    """Days from enrollment to first match: 1 + Gamma(shape=2, mean=match_delay_mean)."""
    p_rematch: float = 0.12
    """Probability of a second mentor 30-200 days after the first match."""
    mentor_sd: float = 0.30
    """SD of the mentor random effect u_m on the log-hazard of relapse and rearrest."""
    # --- relapse (time from enrollment, days) ------------------------------------
    relapse_shape: float = 0.8
    relapse_scale: float = 1050.0
    relapse_mentoring: float = -0.35
    relapse_risk_moderate: float = 0.20
    relapse_risk_high: float = 0.45
    relapse_risk_very_high: float = 0.70
    relapse_age: float = -0.015
    relapse_female: float = -0.10
    relapse_nonbinary: float = 0.0
    relapse_mentor_lived_incarceration: float = 0.0
    """Log-HR for a matched participant whose assigned mentor has lived experience of incarceration."""
    relapse_mentor_lived_recovery: float = 0.0
    """Log-HR for a matched participant whose assigned mentor has lived experience of recovery."""
    # --- rearrest (time from release/enrollment, days) ---------------------------
    rearrest_shape: float = 0.9
    rearrest_scale: float = 2700.0
    rearrest_mentoring: float = -0.30
    rearrest_risk_moderate: float = 0.40
    rearrest_risk_high: float = 0.80
    rearrest_risk_very_high: float = 1.20
    rearrest_age: float = -0.025
    rearrest_female: float = -0.35
    rearrest_nonbinary: float = 0.0
    rearrest_mentor_lived_incarceration: float = 0.0
    """Log-HR for a matched participant whose assigned mentor has lived experience of incarceration."""
    rearrest_mentor_lived_recovery: float = 0.0
    """Log-HR for a matched participant whose assigned mentor has lived experience of recovery."""
    rearrest_repeat_rate: float = 0.5
    """Yearly rate (times exp(eta)) of further arrests after the first (at most 4 more)."""
    p_conviction: float = 0.55
    """Probability that an arrest leads to a conviction, 30-180 days later."""
    p_incarceration: float = 0.45
    """Probability that a conviction leads to incarceration, 0-14 days after it."""
    violation_rate: float = 0.25
    """Yearly rate of technical violations (justice-involved; times exp(0.3 * risk index))."""
    p_parole: float = 0.6
    """Share of the justice-involved on parole (the rest on probation)."""
    # --- dropout / discharge --------------------------------------------------------
    dropout_rate: float = 0.0025
    """Daily hazard of leaving early (withdrew/lost_contact/...) for the reference participant."""
    dropout_mentoring: float = -0.40
    dropout_risk_moderate: float = 0.10
    dropout_risk_high: float = 0.20
    dropout_risk_very_high: float = 0.30
    dropout_age: float = -0.01
    dropout_female: float = 0.0
    dropout_nonbinary: float = 0.0
    dropout_mentor_lived_incarceration: float = 0.0
    """Log-HR for a matched participant whose assigned mentor has lived experience of incarceration."""
    dropout_mentor_lived_recovery: float = 0.0
    """Log-HR for a matched participant whose assigned mentor has lived experience of recovery."""
    program_days: int = 365
    """Planned program length; completion is at program_days + Uniform{-30..30} days."""
    followup_days: int = 730
    """Research follow-up after enrollment (followup_end_date = enrollment + followup_days)."""
    # --- health -------------------------------------------------------------------
    death_rate: float = 0.006
    """Yearly rate of death from causes other than overdose at age 35 (times exp(0.05 (age-35)))."""
    overdose_rate: float = 0.12
    """Yearly overdose rate after relapse (x2.5 when primary_substance is opioids)."""
    p_overdose_fatal: float = 0.08
    hospitalization_rate: float = 0.15
    """Yearly rate of hospitalisation (x1.5 with dual diagnosis); ED visits at 2.5 times this rate."""
    # --- drug use after relapse ------------------------------------------------------
    screen_rate: float = 1.0
    """Drug screens per 30 days while enrolled."""
    p_screen_positive: float = 0.55
    """Probability that a screen on or after the relapse day is positive (never before)."""
    use_report_rate: float = 0.5
    """Self-reported substance_use events per 30 days after the relapse."""
    # --- contacts -------------------------------------------------------------------
    contact_rate_early: float = 6.0
    """Mentor contacts per 30 days in the first 90 days after enrollment (mean)."""
    contact_rate_late: float = 3.0
    """Mentor contacts per 30 days after day 90 (mean)."""
    engagement_shape: float = 2.0
    """Per-participant Gamma(shape, 1/shape) multiplier of the contact rates."""
    # --- assessments -----------------------------------------------------------------
    p_intake: float = 0.97
    p_followup: float = 0.80
    """Probability that the 6-month follow-up is done (missing completely at random)."""
    p_followup_outside_window: float = 0.10
    """Share of done follow-ups dated outside the 5-8 month window (152-243 days)."""
    p_use_after_relapse: float = 0.60
    """P(any_use_30d) at a follow-up after the relapse day (0 before it)."""
    noms: Mapping[str, tuple[float, float, float, float]] = field(
        default_factory=lambda: {
            # item: (intake prevalence, alpha, gamma (intake), delta (mentoring))
            "employed_or_school": (0.30, -1.00, 1.50, 0.30),
            "stable_housing": (0.45, -0.30, 1.40, 0.35),
            "social_support": (0.55, 0.00, 1.20, 0.50),
        }
    )
    """Follow-up items: ``logit P(item_fu) = alpha + gamma * item_intake + delta * mentoring``."""
    p_intake_use: float = 0.50
    """P(any_use_30d) at intake."""
    p_intake_arrested: float = 0.08
    """P(arrested_30d) at intake."""

    # ------------------------------------------------------------------
    def coefficients(self, outcome: str) -> dict[str, float]:
        """The log-hazard coefficients of one outcome, keyed by patsy-style term name.

        The participant terms (``group[peer_mentoring]``, ``risk_level[...]``, ``age``,
        ``gender[...]``), then the mentor-characteristic terms
        ``mentor_lived_incarceration`` and ``mentor_lived_recovery`` (indicators of the
        assigned mentor's characteristic; 0 for participants without a mentor).
        """
        check_option("outcome", outcome, OUTCOMES)
        g = lambda name: float(getattr(self, f"{outcome}_{name}"))  # noqa: E731
        return {
            "group[peer_mentoring]": g("mentoring"),
            "risk_level[moderate]": g("risk_moderate"),
            "risk_level[high]": g("risk_high"),
            "risk_level[very_high]": g("risk_very_high"),
            "age": g("age"),
            "gender[female]": g("female"),
            "gender[nonbinary]": g("nonbinary"),
            "mentor_lived_incarceration": g("mentor_lived_incarceration"),
            "mentor_lived_recovery": g("mentor_lived_recovery"),
        }

    def baseline_cumhaz(self, outcome: str, days: Any) -> np.ndarray:
        """Baseline cumulative hazard ``H0(t)`` of one outcome (reference participant, u = 0)."""
        check_option("outcome", outcome, OUTCOMES)
        t = np.asarray(days, dtype=float)
        if outcome == "dropout":
            return self.dropout_rate * t
        shape = getattr(self, f"{outcome}_shape")
        scale = getattr(self, f"{outcome}_scale")
        return (t / scale) ** shape


def _check_parameters(p: SimulationParameters) -> None:
    def prob(name: str, v: float) -> None:
        if not (0.0 <= float(v) <= 1.0):
            raise InvalidParameterError(f"{name} must be a probability in [0, 1]; got {v!r}.")

    for name in (
        "p_mentoring",
        "p_dual_diagnosis",
        "p_match",
        "p_rematch",
        "p_conviction",
        "p_incarceration",
        "p_parole",
        "p_overdose_fatal",
        "p_screen_positive",
        "p_intake",
        "p_followup",
        "p_followup_outside_window",
        "p_use_after_relapse",
        "p_intake_use",
        "p_intake_arrested",
    ):
        prob(name, getattr(p, name))
    for name in ("p_justice_involved",):
        for v in getattr(p, name):
            prob(name, v)
    for name, k in (("p_gender", 3), ("p_risk", 4)):
        v = np.asarray(getattr(p, name), dtype=float)
        if v.shape != (k,) or (v < 0).any() or not math.isclose(v.sum(), 1.0, abs_tol=1e-9):
            raise InvalidParameterError(
                f"{name} must be {k} non-negative probabilities summing to 1; got {getattr(p, name)!r}."
            )
    for name in (
        "relapse_shape",
        "relapse_scale",
        "rearrest_shape",
        "rearrest_scale",
        "dropout_rate",
        "match_delay_mean",
        "engagement_shape",
    ):
        if not float(getattr(p, name)) > 0:
            raise InvalidParameterError(f"{name} must be positive; got {getattr(p, name)!r}.")
    for name in (
        "mentor_sd",
        "rearrest_repeat_rate",
        "violation_rate",
        "death_rate",
        "overdose_rate",
        "hospitalization_rate",
        "screen_rate",
        "use_report_rate",
        "contact_rate_early",
        "contact_rate_late",
    ):
        if not float(getattr(p, name)) >= 0:
            raise InvalidParameterError(
                f"{name} must be zero or positive; got {getattr(p, name)!r}."
            )
    for name in ("program_days", "followup_days", "release_gap_days"):
        v = getattr(p, name)
        if int(v) != v or v < (0 if name == "release_gap_days" else 31):
            raise InvalidParameterError(
                f"{name} must be a whole number of days (>= 31); got {v!r}."
            )
    if p.release_gap_days > 3650:
        raise InvalidParameterError(
            f"release_gap_days must be at most 3650 (10 years); got {p.release_gap_days!r}."
        )
    for item, spec in p.noms.items():
        if item not in ("employed_or_school", "stable_housing", "social_support") or len(spec) != 4:
            raise InvalidParameterError(
                "noms must map employed_or_school/stable_housing/social_support to "
                f"(intake prevalence, alpha, gamma, delta); got {item!r}: {spec!r}."
            )


# ---------------------------------------------------------------------------
# truth
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, repr=False)
class SimulationTruth:
    """The known truth behind one simulated program.

    Attributes
    ----------
    parameters
        The :class:`SimulationParameters` used (defaults with the overrides applied).
    settings
        ``n_participants, n_mentors, n_sites, start, end, quarters, seed, contacts,
        assessments``: the call that produced the data.
    as_of
        The data cut-off: the last day of the last quarter (``end - 1 day``). Nothing is
        dated after it; it is the default ``as_of`` of :meth:`SimulatedProgram.program`.
    coefficients
        ``outcome, term, log_hazard, hazard_ratio`` for ``relapse``, ``rearrest`` and
        ``dropout`` (natural-log hazard scale, time in days; age per year), including
        the planted effects of mentor characteristics (terms
        ``mentor_lived_incarceration`` and ``mentor_lived_recovery``; 0 unless set).
    mentor_sd
        SD of the mentor random effect on the log-hazard of relapse and rearrest.
    mentor_effects
        ``mentor_id, site, effect``: the realised mentor effects ``u_m`` (drawn from
        ``Normal(0, mentor_sd**2)``, then shifted so that their average over matched
        participants is exactly 0).
    latent
        One row per participant with the uncensored latent quantities: ``participant_id,
        group, risk_level, age, gender, justice_involved, index_date, assigned_mentor_id,
        mentor_effect, lp_relapse, lp_rearrest, lp_dropout, relapse_time, rearrest_time,
        dropout_time, death_time, discharge_time, discharge_cause, relapse_day,
        rearrest_day`` (times in days from enrollment, rearrest from the index date;
        ``relapse_time``, ``rearrest_time``, ``dropout_time`` continuous, ``death_time``
        and ``discharge_time`` whole days;
        ``*_day`` the absolute dates the events would carry,
        ``ceil(time)`` days after the origin; ``discharge_time`` and ``discharge_cause``
        (completed/dropout/incarcerated/died) without administrative censoring).
    marginal
        ``outcome, days, group, population, sample``: the true probability of the
        event within ``days`` in the absence of death and censoring (the "net" risk,
        1 - S(days)); ``population`` integrates over the covariate and mentor-effect
        distributions exactly, ``sample`` averages each simulated participant's true
        probability (given their covariates and realised mentor effect).
    contrasts
        ``outcome, days, measure, population, sample`` with ``measure`` in ``rd``
        (peer_mentoring minus comparison), ``rr`` and ``or`` of the marginal risks.
    noms
        ``item, group, intake, followup``: complete-data prevalences of the GPRA items
        (every participant assessed at intake and at their scheduled follow-up date,
        whether or not the assessment was recorded). Recorded follow-ups are missing
        completely at random, so matched-pair estimates target these.
    realized
        ``outcome, days, group, n, events, share``: the realised complete-data share of
        each group with the event within ``days`` of its origin, as if everyone were
        followed without administrative censoring; death competes (a participant who
        dies first has no event). Outcomes ``relapse`` (from enrollment), ``rearrest``,
        ``reconviction``, ``reincarceration`` (first arrest / conviction /
        incarceration after the index date) and ``retention`` (still enrolled ``days``
        after enrollment, length of stay >= days, or discharged as completed). A
        fixed-window measure among participants whose window is observed by ``as_of``
        estimates these without bias (eligibility depends only on the enrollment date).
    """

    parameters: SimulationParameters
    settings: dict[str, Any]
    as_of: pd.Timestamp
    coefficients: pd.DataFrame
    mentor_sd: float
    mentor_effects: pd.DataFrame
    latent: pd.DataFrame
    marginal: pd.DataFrame
    contrasts: pd.DataFrame
    noms: pd.DataFrame
    realized: pd.DataFrame

    def __repr__(self) -> str:
        s = self.settings
        beta = self.coefficients.set_index(["outcome", "term"])["log_hazard"]
        planted = "".join(
            f", {outcome} log-HR({term})={b:g}"
            for (outcome, term), b in beta.items()
            if term.startswith("mentor_") and b != 0
        )
        return (
            f"SimulationTruth(n_participants={s['n_participants']}, seed={s['seed']}, "
            f"as_of={self.as_of.date()}, relapse log-HR(mentoring)="
            f"{beta['relapse', 'group[peer_mentoring]']:g}, rearrest log-HR(mentoring)="
            f"{beta['rearrest', 'group[peer_mentoring]']:g}, mentor_sd={self.mentor_sd:g}"
            f"{planted})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The truth as JSON-safe data (what ``recoverystats simulate`` writes to ``truth.json``).

        Holds ``settings``, ``as_of``, ``parameters`` (every :class:`SimulationParameters`
        field), ``mentor_sd`` and the tables ``coefficients`` (planted log-hazard effects),
        ``mentor_effects``, ``marginal`` (true event probabilities by group),
        ``contrasts``, ``noms`` and ``realized`` as lists of records. The per-participant
        ``latent`` table is left out (it is as large as the data; use the Python API).
        """
        from recoverystats.results.base import table_records

        def plain(v: Any) -> Any:
            if isinstance(v, pd.Timestamp):
                return v.date().isoformat()
            if isinstance(v, np.generic):
                return v.item()
            if isinstance(v, tuple | list):
                return [plain(x) for x in v]
            if isinstance(v, Mapping):
                return {str(k): plain(x) for k, x in v.items()}
            return v

        return {
            "settings": plain(dict(self.settings)),
            "as_of": self.as_of.date().isoformat(),
            "parameters": plain(dataclasses.asdict(self.parameters)),
            "mentor_sd": float(self.mentor_sd),
            "coefficients": table_records(self.coefficients),
            "mentor_effects": table_records(self.mentor_effects),
            "marginal": table_records(self.marginal),
            "contrasts": table_records(self.contrasts),
            "noms": table_records(self.noms),
            "realized": table_records(self.realized),
        }

    def log_hazard_ratio(self, outcome: str, term: str = "group[peer_mentoring]") -> float:
        """One true coefficient on the log-hazard scale (e.g. ``("rearrest", "age")``)."""
        check_option("outcome", outcome, OUTCOMES)
        c = self.coefficients
        row = c[(c["outcome"] == outcome) & (c["term"] == term)]
        if row.empty:
            terms = ", ".join(c.loc[c["outcome"] == outcome, "term"])
            raise InvalidParameterError(f"term must be one of {terms}; got {term!r}.")
        return float(row["log_hazard"].iloc[0])

    def cloglog_coefficients(self, outcome: str, days: float) -> pd.Series:
        """True coefficients of the binary outcome "event within ``days``" on the cloglog scale.

        Under proportional hazards ``P(T <= t | x) = 1 - exp(-H0(t) exp(eta))``, so the
        binary indicator follows a binomial GLM with complementary log-log link whose
        slopes are the log-hazard coefficients and whose intercept is
        ``log H0(t) - b_age * 35`` (for raw age in years). The conditional log-odds are
        not linear in the covariates; use :attr:`marginal`/:attr:`contrasts` for the
        marginal risk difference, risk ratio and odds ratio.
        (Without the mentor effect; with it, the slopes are conditional on ``u_m``.)
        """
        p = self.parameters
        coefs = p.coefficients(outcome)
        h0 = float(p.baseline_cumhaz(outcome, days))
        out = {"Intercept": math.log(h0) - coefs["age"] * AGE_CENTER, **coefs}
        return pd.Series(out, name=f"{outcome}_{days:g}d_cloglog")

    def event_probability(
        self,
        outcome: str,
        days: float,
        *,
        group: Any,
        risk_level: Any = "low",
        age: Any = AGE_CENTER,
        gender: Any = "male",
        mentor_effect: Any = 0.0,
        mentor_lived_incarceration: Any = False,
        mentor_lived_recovery: Any = False,
    ) -> np.ndarray:
        """True ``P(T <= days | x)`` in the absence of death and censoring (vectorised).

        ``1 - exp(-H0(days) * exp(eta(x)))`` with ``eta`` as in
        :class:`SimulationParameters`; ``mentor_effect`` is ignored for ``dropout``.
        ``mentor_lived_incarceration`` / ``mentor_lived_recovery`` are the assigned
        mentor's characteristics (only a ``peer_mentoring`` participant has a mentor).
        """
        p = self.parameters
        check_option("outcome", outcome, OUTCOMES)
        groups = np.atleast_1d(np.asarray(group, dtype=object))
        if not np.isin(groups, GROUPS).all():
            raise InvalidParameterError(f"group must be one of {', '.join(GROUPS)}; got {group!r}.")
        mentored = groups == "peer_mentoring"
        chars = {}
        for name, value in (
            ("mentor_lived_incarceration", mentor_lived_incarceration),
            ("mentor_lived_recovery", mentor_lived_recovery),
        ):
            v = np.atleast_1d(np.asarray(value, dtype=bool))
            if (v & ~mentored).any():
                raise InvalidParameterError(
                    f"{name} must be False for group 'comparison' (only a peer_mentoring "
                    f"participant has a mentor); got {value!r} with group {group!r}."
                )
            chars[name] = v.astype(float)
        eta = _linear_predictor(
            p,
            outcome,
            mentored.astype(float),
            _risk_index(np.atleast_1d(risk_level)),
            np.asarray(np.atleast_1d(age), dtype=float),
            _gender_index(np.atleast_1d(gender)),
            mentor_lived_incarceration=chars["mentor_lived_incarceration"],
            mentor_lived_recovery=chars["mentor_lived_recovery"],
        )
        if outcome != "dropout":
            eta = eta + np.asarray(mentor_effect, dtype=float)
        return -np.expm1(-p.baseline_cumhaz(outcome, days) * np.exp(eta))


def _risk_index(values: Any) -> np.ndarray:
    idx = pd.Index(RISK_LEVELS).get_indexer(np.asarray(values, dtype=object))
    if (idx < 0).any():
        raise InvalidParameterError(
            f"risk_level must be one of {', '.join(RISK_LEVELS)}; got {values!r}."
        )
    return idx


def _gender_index(values: Any) -> np.ndarray:
    idx = pd.Index(_GENDERS).get_indexer(np.asarray(values, dtype=object))
    if (idx < 0).any():
        raise InvalidParameterError(f"gender must be one of {', '.join(_GENDERS)}; got {values!r}.")
    return idx


def _linear_predictor(
    p: SimulationParameters,
    outcome: str,
    mentoring: np.ndarray,
    risk: np.ndarray,
    age: np.ndarray,
    gender: np.ndarray,
    *,
    mentor_lived_incarceration: np.ndarray | float = 0.0,
    mentor_lived_recovery: np.ndarray | float = 0.0,
) -> np.ndarray:
    """``eta`` without ``u_m``; the mentor characteristics are 0/1 indicators (0: no mentor)."""
    c = p.coefficients(outcome)
    risk_b = np.array(
        [0.0, c["risk_level[moderate]"], c["risk_level[high]"], c["risk_level[very_high]"]]
    )
    gender_b = np.array([0.0, c["gender[female]"], c["gender[nonbinary]"]])
    return (
        c["group[peer_mentoring]"] * mentoring
        + risk_b[risk]
        + c["age"] * (age - AGE_CENTER)
        + gender_b[gender]
        + c["mentor_lived_incarceration"] * mentor_lived_incarceration
        + c["mentor_lived_recovery"] * mentor_lived_recovery
    )


def _age_distribution(p: SimulationParameters) -> tuple[np.ndarray, np.ndarray]:
    """Exact distribution of age: P(A = k) = I((k-17)/53) - I((k-18)/53), I the Beta CDF."""
    from scipy.special import betainc

    ages = np.arange(18, 71)
    a, b = p.age_beta
    cdf = betainc(a, b, np.append((ages - 18) / 53.0, 1.0))
    probs = np.diff(cdf)
    probs[-1] += 1.0 - probs.sum()  # ages above 70 are capped at 70
    return ages.astype(float), probs


#: Windows (days) at which the truth reports marginal risks.
_TRUTH_DAYS = {
    "relapse": (90, 180, 365, 730),
    "rearrest": (180, 365, 730),
    "dropout": (30, 60, 90, 180),
}


def _population_marginal(
    p: SimulationParameters, outcome: str, days: float, mentoring: int
) -> float:
    ages, age_p = _age_distribution(p)
    risk = np.arange(4)
    gender = np.arange(3)
    R, G, A = np.meshgrid(risk, gender, np.arange(len(ages)), indexing="ij")
    w = (np.asarray(p.p_risk)[R] * np.asarray(p.p_gender)[G] * age_p[A]).ravel()
    eta = _linear_predictor(
        p, outcome, np.full(w.shape, float(mentoring)), R.ravel(), ages[A.ravel()], G.ravel()
    )
    h0 = float(p.baseline_cumhaz(outcome, days))

    def risk_given(u: np.ndarray | float) -> float:
        return float(np.sum(w * -np.expm1(-h0 * np.exp(eta + u))))

    c = p.coefficients(outcome)
    b_inc, b_rec = c["mentor_lived_incarceration"], c["mentor_lived_recovery"]
    sd = 0.0 if outcome == "dropout" else p.mentor_sd
    if not mentoring or p.p_match == 0 or (sd == 0 and b_inc == 0 and b_rec == 0):
        return risk_given(0.0)
    # E over u ~ N(0, sd^2) by Gauss-Hermite quadrature (probabilists' weights)
    x, wq = np.polynomial.hermite_e.hermegauss(60)
    wq = wq / wq.sum()

    def given_shift(shift: float) -> float:
        if sd == 0:
            return risk_given(shift)
        return sum(wi * risk_given(shift + sd * xi) for xi, wi in zip(x, wq, strict=True))

    if b_inc == 0 and b_rec == 0:
        with_mentor = sum(wi * risk_given(sd * xi) for xi, wi in zip(x, wq, strict=True))
    else:
        # the assigned mentor's characteristics: independent Bernoulli over the mentor population
        pi, pr = _P_MENTOR_LIVED_INCARCERATION, _P_MENTOR_LIVED_RECOVERY
        with_mentor = sum(
            w * given_shift(b_inc * inc + b_rec * rec)
            for inc, rec, w in (
                (1, 1, pi * pr),
                (1, 0, pi * (1 - pr)),
                (0, 1, (1 - pi) * pr),
                (0, 0, (1 - pi) * (1 - pr)),
            )
        )
    return p.p_match * with_mentor + (1 - p.p_match) * risk_given(0.0)


# ---------------------------------------------------------------------------
# the simulated program
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, repr=False)
class SimulatedProgram:
    """A simulated program: the six canonical tables and the truth behind them.

    Attributes
    ----------
    tables
        ``participants, mentors, matches, contacts, events, assessments`` as
        DataFrames with the canonical column names and dtypes of
        :mod:`recoverystats.schema.spec` (an empty typed frame for a table switched
        off with ``contacts=False`` / ``assessments=False``).
    truth
        The :class:`SimulationTruth`: parameters, coefficients, mentor effects, latent
        times and true marginal risks.
    """

    tables: dict[str, pd.DataFrame]
    truth: SimulationTruth

    def __repr__(self) -> str:
        rows = ", ".join(f"{k}={len(v)}" for k, v in self.tables.items())
        return f"SimulatedProgram({rows}; as_of={self.truth.as_of.date()}, seed={self.truth.settings['seed']})"

    @property
    def as_of(self) -> pd.Timestamp:
        """The data cut-off (last day of the last quarter)."""
        return self.truth.as_of

    def program(self, as_of: Any = None) -> ProgramData:
        """The tables as validated :class:`~recoverystats.io.program.ProgramData`.

        Parameters
        ----------
        as_of
            The data cut-off; default the simulation's own cut-off, ``truth.as_of``
            (the last day of the last quarter).
        """
        from recoverystats.io.program import ProgramData

        return ProgramData.from_tables(
            self.tables, as_of=self.truth.as_of if as_of is None else as_of
        )

    def write(self, directory: str | Path, *, format: WriteFormat = "csv") -> dict[str, Path]:
        """Write the six tables as ``<directory>/<table>.<format>`` (canonical stems).

        Dates are written as ``YYYY-MM-DD``, booleans as ``true``/``false``, missing
        values as empty cells (CSV). Beside them, ``program.toml`` (the program's name,
        its cut-off ``as_of`` and the six files, so that ``read_program(directory)`` and
        ``recoverystats report directory`` need no other input) and ``truth.json``
        (:meth:`SimulationTruth.to_dict`: the planted effects and true event
        probabilities to compare estimates with). Returns ``{table: path}`` for the six
        tables. The directory is created when missing; existing files of the same names
        are overwritten.
        """
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        check_option("format", format, WriteFormat)
        out = Path(directory)
        if out.exists() and not out.is_dir():
            raise InvalidParameterError(f"directory must be a folder; got the file {str(out)!r}.")
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for name in TABLE_NAMES:
            df = self.tables[name]
            arrays, names = [], []
            for col in df.columns:
                s = df[col]
                if pd.api.types.is_datetime64_any_dtype(s.dtype):
                    arr = pa.array(
                        s.to_numpy(dtype="datetime64[D]"),
                        type=pa.date32(),
                        mask=s.isna().to_numpy(),
                    )
                else:
                    arr = pa.Array.from_pandas(s)
                arrays.append(arr)
                names.append(str(col))
            table = pa.Table.from_arrays(arrays, names=names)
            path = out / f"{name}.{format}"
            if format == "csv":
                pacsv.write_csv(
                    table, path, write_options=pacsv.WriteOptions(quoting_style="needed")
                )
            else:
                pq.write_table(table, path)
            paths[name] = path
        s = self.truth.settings
        toml = [
            "# A program simulated by recoverystats (simulate_program); its truth is in truth.json.",
            "# Format: docs/mapping.md. Paths are relative to this file.",
            "",
            "[program]",
            f'name = "Simulated peer-mentoring program ({s["n_participants"]} participants, seed {s["seed"]})"',
            f'as_of = "{self.as_of.date().isoformat()}"',
        ]
        for name, path in paths.items():
            toml += ["", f"[tables.{name}]", f'file = "{path.name}"']
        (out / "program.toml").write_text("\n".join(toml) + "\n", encoding="utf-8")
        import json

        (out / "truth.json").write_text(
            json.dumps(self.truth.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        return paths


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _ids(prefix: str, n: int, width: int | None = None) -> np.ndarray:
    width = width or max(len(str(n)), 4)
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def _str(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype="string")


def _take_str(labels: np.ndarray, codes: np.ndarray) -> pd.Series:
    """``labels[codes]`` as a ``string`` Series (codes < 0 are missing).

    The labels are converted once and then taken, so the result has the default
    ``string`` storage of the installed pandas (python objects under pandas 2, pyarrow
    under pandas 3) like every other ``string`` column; building a ``StringArray``
    directly would give python storage under a pyarrow dtype on pandas 3, which
    ``merge`` cannot join.
    """
    lab = pd.array(np.asarray(labels, dtype=object), dtype="string")
    return pd.Series(lab.take(np.asarray(codes, dtype=np.intp), allow_fill=True))


def _dates(base: np.datetime64, days: np.ndarray) -> np.ndarray:
    """``base + days`` as datetime64[ns]; NaN days give NaT."""
    d = np.asarray(days, dtype=float)
    ok = np.isfinite(d) & (np.abs(d) < 80_000)  # beyond ~220 years: outside datetime64[ns]
    out = np.full(d.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    out[ok] = (base + d[ok].astype(np.int64).astype("timedelta64[D]")).astype("datetime64[ns]")
    return out


def _bool(x: np.ndarray, mask: np.ndarray | None = None) -> pd.Series:
    arr = pd.array(np.asarray(x, dtype=bool), dtype="boolean")
    if mask is not None:
        arr[np.asarray(mask, dtype=bool)] = pd.NA
    return pd.Series(arr)


def _choice(rng: np.random.Generator, probs: Any, size: int) -> np.ndarray:
    cdf = np.cumsum(np.asarray(probs, dtype=float))
    cdf /= cdf[-1]
    return np.searchsorted(cdf, rng.random(size), side="right").astype(np.int64)


def _poisson_points(
    rng: np.random.Generator, owner: np.ndarray, lo: np.ndarray, hi: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson points on ``[lo, hi)`` (per owner, ``rate`` per day): (owner index, time)."""
    length = np.clip(hi - lo, 0.0, None)
    counts = rng.poisson(rate * length)
    idx = np.repeat(owner, counts)
    t = np.repeat(lo, counts) + rng.random(idx.size) * np.repeat(length, counts)
    return idx, t


def _weibull_times(
    rng: np.random.Generator, shape: float, scale: float, eta: np.ndarray
) -> np.ndarray:
    """Inverse-CDF draw from ``H(t) = (t/scale)^shape * exp(eta)``."""
    e = rng.standard_exponential(eta.size)
    return scale * (e * np.exp(-eta)) ** (1.0 / shape)


def _exp_times(e: np.ndarray, rate: Any) -> np.ndarray:
    """Exponential times ``e / rate`` from unit exponentials; ``inf`` where the rate is 0."""
    rate = np.broadcast_to(np.asarray(rate, dtype=float), e.shape)
    out = np.full(e.shape, np.inf)
    np.divide(e, rate, out=out, where=rate > 0)
    return out


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


# ---------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------
def simulate_program(
    n_participants: int = 1200,
    *,
    n_mentors: int = 40,
    n_sites: int = 3,
    start: Any = "2024-10-01",
    quarters: int = 8,
    seed: int = 0,
    contacts: bool = True,
    assessments: bool = True,
    **effects: Any,
) -> SimulatedProgram:
    """Simulate a peer-mentoring program with known true parameters.

    Parameters
    ----------
    n_participants
        Participants enrolled (uniformly over the study period).
    n_mentors
        Peer mentors, assigned to sites in turn (mentor ``k`` to site ``k mod n_sites``).
    n_sites
        Program sites (``site_a``, ``site_b``, ...); each participant's site is drawn
        with equal probabilities.
    start
        First day of the study period (anything :func:`pandas.Timestamp` accepts).
    quarters
        Length of the study period in quarters of three calendar months. The data
        cut-off is the last day of the last quarter (``truth.as_of``): nothing is dated
        after it (administrative censoring).
    seed
        Seed of the :class:`numpy.random.Generator`; the same arguments and seed give
        identical tables. Each table family draws from its own child stream, so
        ``contacts=False``/``assessments=False`` leave the other tables unchanged.
    contacts, assessments
        Generate the contacts / assessments tables (switch off for lean, very large
        simulations; the table is then empty).
    **effects
        Overrides of any :class:`SimulationParameters` field, e.g.
        ``relapse_mentoring=-0.5`` or ``mentor_sd=0``.

    Returns
    -------
    SimulatedProgram
        ``.tables`` (six canonical DataFrames), ``.truth`` (:class:`SimulationTruth`),
        ``.program(as_of=None)`` and ``.write(directory, format="csv")``.

    Notes
    -----
    Relapse, rearrest and dropout follow proportional-hazards models on the natural-log
    hazard scale with time in days (see :class:`SimulationParameters`)::

        H(t | x) = H0(t) exp(eta),  eta = b_mentoring [mentoring] + b_risk[level]
                   + b_age (age - 35) + b_gender[gender]
                   + b_mentor_lived_incarceration [mentor m has lived incarceration]
                   + b_mentor_lived_recovery [mentor m has lived recovery] + u_m

    where ``m`` is the participant's assigned (first) mentor; the mentor terms and
    ``u_m`` are 0 without one, and ``u_m`` is absent for dropout. With Weibull
    baselines ``H0(t) = (t/scale)^shape`` (dropout: exponential). Latent times are drawn
    by inversion, ``T = scale (E exp(-eta))^(1/shape)``, ``E ~ Exp(1)``, and an event is
    dated ``ceil(T)`` days after its origin (so "within 365 days" is exactly
    ``T <= 365``). A Cox model of time to the first relapse/rearrest event with these
    covariates recovers the coefficients, up to the attenuation of the group log-HR
    towards 0 caused by the unmodelled mentor effect (about 0.02 at the default SD 0.3);
    add ``truth.latent.mentor_effect`` as a covariate (or offset) for exact recovery.

    The mentor-characteristic coefficients default to 0 (mentor characteristics have no
    effect); plant one with e.g. ``rearrest_mentor_lived_incarceration=-0.5``, and the
    truth is in ``truth.coefficients`` (term ``mentor_lived_incarceration``). The
    mentor's characteristic (from ``matches`` and ``mentors``) then enters the Cox model
    as a covariate; ``b_mentoring`` is the effect of a mentor without the
    characteristic. Because ``u_m`` is drawn independently of the characteristics, the
    estimate also carries the realised difference in mean ``u_m`` between mentors with
    and without the characteristic (SD about ``mentor_sd * sqrt(1/k1 + 1/k0)`` for
    ``k1``, ``k0`` mentors): use standard errors clustered by mentor.

    Events are observed until ``min(followup_end_date, death, truth.as_of)``;
    convictions follow arrests and incarcerations follow convictions, so rearrest ⊇
    reconviction ⊇ reincarceration per participant. The full model is in
    ``docs/simulator.md``. Hand-written (no maintained library simulates this).

    Examples
    --------
    >>> from recoverystats.datasets import simulate_program
    >>> sim = simulate_program(500, seed=1)
    >>> sim.tables["participants"].shape[0]
    500
    >>> sim.truth.log_hazard_ratio("rearrest")
    -0.3
    """
    n = _check_int("n_participants", n_participants, 1)
    n_sites = _check_int("n_sites", n_sites, 1)
    n_mentors = _check_int("n_mentors", n_mentors, 1)
    if n_mentors < n_sites:
        raise InvalidParameterError(
            f"n_mentors must be at least n_sites so every site has a mentor; got n_mentors={n_mentors}, "
            f"n_sites={n_sites}."
        )
    quarters = _check_int("quarters", quarters, 1)
    if quarters > 400:
        raise InvalidParameterError(f"quarters must be at most 400 (100 years); got {quarters}.")
    seed = _check_int("seed", seed, 0)
    try:
        start_ts = pd.Timestamp(start).normalize()
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"start must be a date such as '2024-10-01'; got {start!r}."
        ) from None
    if start_ts is pd.NaT:
        raise InvalidParameterError(f"start must be a date such as '2024-10-01'; got {start!r}.")
    valid = {f.name for f in dataclasses.fields(SimulationParameters)}
    unknown = sorted(set(effects) - valid)
    if unknown:
        raise InvalidParameterError(
            f"unknown simulation parameter(s) {', '.join(map(repr, unknown))}; valid names are the fields "
            f"of SimulationParameters: {', '.join(sorted(valid))}."
        )
    params = dataclasses.replace(SimulationParameters(), **effects)
    _check_parameters(params)

    end_ts = start_ts + pd.DateOffset(months=3 * quarters)
    as_of = end_ts - pd.Timedelta(days=1)
    n_days = int((end_ts - start_ts).days)
    base = np.datetime64(start_ts.date(), "D")
    as_of_day = n_days - 1  # day offsets from start

    ss = np.random.SeedSequence(seed)
    (rng_pop, rng_mentor, rng_out, rng_justice, rng_health, rng_use, rng_contact, rng_assess) = (
        np.random.default_rng(s) for s in ss.spawn(8)
    )

    p = params
    # ---------------------------------------------------------------- participants
    enroll = np.sort(rng_pop.integers(0, n_days, n))  # IDs in enrollment order
    site = rng_pop.integers(0, n_sites, n)
    u_assign = rng_pop.random(n)
    a_, b_ = p.age_beta
    age = np.minimum(18 + np.floor(53 * rng_pop.beta(a_, b_, n)), 70).astype(float)
    gender = _choice(rng_pop, p.p_gender, n)
    risk = _choice(rng_pop, p.p_risk, n)
    if p.mentoring_risk_confounding == 0.0:
        mentoring = u_assign < p.p_mentoring  # randomised (the same draws as before the option existed)
    else:
        logit0 = math.log(p.p_mentoring / (1.0 - p.p_mentoring)) if 0.0 < p.p_mentoring < 1.0 else (
            -np.inf if p.p_mentoring == 0.0 else np.inf)
        mentoring = u_assign < _expit(logit0 + p.mentoring_risk_confounding * (risk - 1.5))
    race = _choice(rng_pop, (0.50, 0.33, 0.04, 0.02, 0.07, 0.04), n)
    ethnicity = (rng_pop.random(n) < 0.18).astype(np.int64)
    substance = _choice(rng_pop, (0.40, 0.20, 0.15, 0.10, 0.10, 0.05), n)
    dual = rng_pop.random(n) < p.p_dual_diagnosis
    justice = rng_pop.random(n) < np.asarray(p.p_justice_involved)[risk]
    release_gap = rng_pop.integers(0, p.release_gap_days + 1, n)
    lo_band = np.array([b[0] for b in _RISK_SCORE_BANDS])
    hi_band = np.array([b[1] for b in _RISK_SCORE_BANDS])
    risk_score = (
        lo_band[risk] + np.floor(rng_pop.random(n) * (hi_band[risk] - lo_band[risk] + 1))
    ).astype(float)
    prior_mean = np.array([0.5, 1.5, 3.0, 5.0])[risk]
    prior = rng_pop.poisson(np.where(justice, prior_mean, 0.3 * prior_mean)) + justice.astype(
        np.int64
    )
    birth_offset = rng_pop.random(n)  # position of the birthday within the year of age
    on_parole = justice & (rng_pop.random(n) < p.p_parole)
    on_probation = ~on_parole & (justice | (rng_pop.random(n) < 0.3))

    index_day = np.where(justice, enroll - release_gap, enroll).astype(float)
    fu_end = enroll + p.followup_days
    cut = np.minimum(fu_end, as_of_day).astype(float)  # last observable day (absolute)

    # ---------------------------------------------------------------- mentors, matches
    m_site = np.arange(n_mentors) % n_sites
    mentor_u = p.mentor_sd * rng_mentor.standard_normal(
        n_mentors
    )  # drawn even when sd = 0 (same streams)
    m_gender = _choice(rng_mentor, (0.6, 0.38, 0.02), n_mentors)
    m_lived_inc = rng_mentor.random(n_mentors) < _P_MENTOR_LIVED_INCARCERATION
    m_lived_rec = rng_mentor.random(n_mentors) < _P_MENTOR_LIVED_RECOVERY
    m_years = np.round(np.where(m_lived_rec, 2 + rng_mentor.gamma(2.0, 3.0, n_mentors), np.nan), 1)
    m_cert = np.floor(-30 - rng_mentor.random(n_mentors) * 5 * 365)
    m_cert_missing = rng_mentor.random(n_mentors) < 0.1
    m_cert = np.where(m_cert_missing, np.nan, m_cert)
    by_site = [np.flatnonzero(m_site == s) for s in range(n_sites)]
    site_sizes = np.array([len(b) for b in by_site])
    # a participant's mentors are drawn from their own site
    u1 = rng_mentor.random(n)
    pick1 = np.floor(u1 * site_sizes[site]).astype(np.int64)
    site_offsets = np.concatenate([[0], np.cumsum(site_sizes)[:-1]])
    site_mentors = np.concatenate(by_site)
    mentor1 = site_mentors[site_offsets[site] + pick1]
    shift = 1 + np.floor(rng_mentor.random(n) * np.maximum(site_sizes[site] - 1, 1)).astype(
        np.int64
    )
    mentor2 = site_mentors[site_offsets[site] + (pick1 + shift) % site_sizes[site]]
    matched = mentoring & (rng_mentor.random(n) < p.p_match)
    match_delay = 1 + np.floor(rng_mentor.gamma(2.0, p.match_delay_mean / 2.0, n))
    rematch = matched & (rng_mentor.random(n) < p.p_rematch) & (site_sizes[site] > 1)
    rematch_delay = 30 + np.floor(rng_mentor.random(n) * 171)
    basis1 = _choice(rng_mentor, (0.35, 0.3, 0.15, 0.2), n)
    basis2 = _choice(rng_mentor, (0.35, 0.3, 0.15, 0.2), n)
    # Centre the realised effects so that their average over matched participants is exactly 0:
    # the group coefficient is then the effect of mentoring in this sample, not shifted by the
    # luck of the mentor draw (with 40 mentors that shift has SD 0.3/sqrt(40) ~ 0.05).
    if matched.any() and p.mentor_sd > 0:
        mentor_u = mentor_u - mentor_u[mentor1[matched]].mean()
    u_part = np.where(matched, mentor_u[mentor1], 0.0)
    engagement = rng_mentor.gamma(p.engagement_shape, 1.0 / p.engagement_shape, n)

    # ---------------------------------------------------------------- latent outcome times
    g_idx = gender
    m_f = mentoring.astype(float)
    # the assigned mentor's characteristics (0 without a mentor); they act like u_m, from enrollment
    mentor_chars = {
        "mentor_lived_incarceration": (matched & m_lived_inc[mentor1]).astype(float),
        "mentor_lived_recovery": (matched & m_lived_rec[mentor1]).astype(float),
    }
    lp_relapse = _linear_predictor(p, "relapse", m_f, risk, age, g_idx, **mentor_chars) + u_part
    lp_rearrest = _linear_predictor(p, "rearrest", m_f, risk, age, g_idx, **mentor_chars) + u_part
    lp_dropout = _linear_predictor(p, "dropout", m_f, risk, age, g_idx, **mentor_chars)
    t_relapse = _weibull_times(rng_out, p.relapse_shape, p.relapse_scale, lp_relapse)
    t_arrest1 = _weibull_times(rng_out, p.rearrest_shape, p.rearrest_scale, lp_rearrest)
    t_dropout = _exp_times(rng_out.standard_exponential(n), p.dropout_rate * np.exp(lp_dropout))
    t_death_other = _exp_times(
        rng_out.standard_exponential(n), p.death_rate / 365.25 * np.exp(0.05 * (age - AGE_CENTER))
    )
    completion = p.program_days + rng_out.integers(-30, 31, n)

    relapse_day = enroll + np.ceil(t_relapse)
    # arrests: the first from the PH model, up to 4 more as a Poisson process
    k_more = 4
    gaps = _exp_times(
        rng_justice.standard_exponential((n, k_more)),
        (p.rearrest_repeat_rate / 365.25 * np.exp(lp_rearrest))[:, None],
    )
    arrest_t = np.concatenate(
        [t_arrest1[:, None], t_arrest1[:, None] + np.cumsum(gaps, axis=1)], axis=1
    )
    arrest_day = index_day[:, None] + np.ceil(arrest_t)
    convicted = rng_justice.random(arrest_day.shape) < p.p_conviction
    conviction_day = arrest_day + 30 + np.floor(rng_justice.random(arrest_day.shape) * 151)
    jailed = convicted & (rng_justice.random(arrest_day.shape) < p.p_incarceration)
    incarceration_day = conviction_day + np.floor(rng_justice.random(arrest_day.shape) * 15)
    conviction_day = np.where(convicted, conviction_day, np.inf)
    incarceration_day = np.where(jailed, incarceration_day, np.inf)

    # overdoses after relapse (fatal ones end follow-up)
    od_rate = p.overdose_rate / 365.25 * np.where(substance == 0, 2.5, 1.0)
    od_gaps = _exp_times(rng_health.standard_exponential((n, 3)), od_rate[:, None])
    od_day = relapse_day[:, None] + np.ceil(np.cumsum(od_gaps, axis=1))
    od_fatal = rng_health.random(od_day.shape) < p.p_overdose_fatal
    first_fatal = np.where(od_fatal, od_day, np.inf).min(axis=1)
    death_day = np.minimum(enroll + np.ceil(t_death_other), first_fatal)
    end_obs = np.minimum(cut, death_day)  # last day anything is recorded

    # ---------------------------------------------------------------- discharge
    first_incarc_in_program = np.where(
        incarceration_day >= enroll[:, None], incarceration_day, np.inf
    ).min(axis=1)
    first_incarc_in_program = np.where(
        first_incarc_in_program <= end_obs, first_incarc_in_program, np.inf
    )
    cand = np.stack(
        [
            enroll + completion.astype(float),
            enroll + np.ceil(t_dropout),
            first_incarc_in_program,
            np.where(death_day <= cut, death_day, np.inf),
        ]
    )
    which = np.argmin(cand, axis=0)
    discharge_day = cand[which, np.arange(n)]
    discharged = discharge_day <= as_of_day
    dropout_reason = _choice(
        rng_out, (0.40, 0.50, 0.05, 0.05), n
    )  # withdrew, lost, transferred, admin
    reason_code = np.select(
        [which == 0, which == 2, which == 3],
        [
            DISCHARGE_REASONS.index("completed"),
            DISCHARGE_REASONS.index("incarcerated"),
            DISCHARGE_REASONS.index("died"),
        ],
        default=np.array(
            [
                DISCHARGE_REASONS.index(r)
                for r in ("withdrew", "lost_contact", "transferred", "administrative")
            ]
        )[dropout_reason],
    )
    reason_code = np.where(discharged, reason_code, -1)
    # complete-data discharge (no cut-off): equals the observed discharge whenever that is <= as_of
    first_incarc = np.where(incarceration_day >= enroll[:, None], incarceration_day, np.inf).min(
        axis=1
    )
    full_end = np.minimum(fu_end, death_day)
    cand_full = np.stack(
        [
            cand[0],
            cand[1],
            np.where(first_incarc <= full_end, first_incarc, np.inf),
            np.where(death_day <= fu_end, death_day, np.inf),
        ]
    )
    which_full = np.argmin(cand_full, axis=0)
    discharge_full = cand_full[which_full, np.arange(n)] - enroll
    enrolled_until = np.where(discharged, discharge_day, np.inf)  # absolute day the enrollment ends
    active_end = np.minimum(np.minimum(enrolled_until, end_obs + 1), as_of_day + 1)

    # birth dates: age completed years at enrollment
    enroll_dates = base + enroll.astype("timedelta64[D]")
    e_y = enroll_dates.astype("datetime64[Y]").astype(np.int64) + 1970
    upper = _shift_years(e_y - age.astype(np.int64), enroll_dates)  # last possible birth date
    lower = _shift_years(e_y - age.astype(np.int64) - 1, enroll_dates)  # exclusive
    span = (upper - lower).astype(np.int64)
    birth = upper - np.floor(birth_offset * span).astype(np.int64).astype("timedelta64[D]")

    site_labels = np.array([f"site_{_letters(i)}" for i in range(n_sites)], dtype=object)
    pid = _ids("P", n, max(6, len(str(n))))
    mid = _ids("M", n_mentors, 3)
    groups = np.array(GROUPS, dtype=object)
    participants = pd.DataFrame(
        {
            "participant_id": _str(pid),
            "enrollment_date": _dates(base, enroll),
            "group": _take_str(groups, np.where(mentoring, 0, 1)),
            "site": _take_str(site_labels, site),
            "release_date": _dates(base, np.where(justice, enroll - release_gap, np.nan)),
            "discharge_date": _dates(base, np.where(discharged, discharge_day, np.nan)),
            "discharge_reason": _take_str(np.array(DISCHARGE_REASONS, dtype=object), reason_code),
            "birth_date": birth.astype("datetime64[ns]"),
            "age": age,
            "gender": _take_str(np.array(_GENDERS, dtype=object), gender),
            "race": _take_str(np.array(_RACES, dtype=object), race),
            "ethnicity": _take_str(np.array(_ETHNICITIES, dtype=object), ethnicity),
            "risk_level": _take_str(np.array(RISK_LEVELS, dtype=object), risk),
            "risk_score": risk_score,
            "prior_incarcerations": pd.array(prior, dtype="Int64"),
            "primary_substance": _take_str(np.array(_SUBSTANCES, dtype=object), substance),
            "dual_diagnosis": _bool(dual),
            "followup_end_date": _dates(base, fu_end),
        }
    )

    mentors = pd.DataFrame(
        {
            "mentor_id": _str(mid),
            "site": _take_str(site_labels, m_site),
            "gender": _take_str(np.array(_GENDERS, dtype=object), m_gender),
            "lived_incarceration": _bool(m_lived_inc),
            "lived_recovery": _bool(m_lived_rec),
            "years_in_recovery": m_years,
            "certified_date": _dates(base, m_cert),
        }
    )

    # matches: recorded when the match date is on or before the end of enrollment and as_of
    m1_day = enroll + match_delay
    has_m1 = matched & (m1_day < np.minimum(enrolled_until, end_obs + 1)) & (m1_day <= as_of_day)
    m2_day = m1_day + rematch_delay
    has_m2 = (
        has_m1
        & rematch
        & (m2_day < np.minimum(enrolled_until, end_obs + 1))
        & (m2_day <= as_of_day)
    )
    # a match ends at the re-match or at discharge (death and incarceration discharge too)
    m2_end = np.where(discharged, discharge_day, np.nan)
    m1_end = np.where(has_m2, m2_day, m2_end)
    i1 = np.flatnonzero(has_m1)
    i2 = np.flatnonzero(has_m2)
    basis_labels = np.array(_MATCH_BASES, dtype=object)
    matches = pd.DataFrame(
        {
            "participant_id": _str(np.concatenate([pid[i1], pid[i2]])),
            "mentor_id": _str(np.concatenate([mid[mentor1[i1]], mid[mentor2[i2]]])),
            "match_date": _dates(base, np.concatenate([m1_day[i1], m2_day[i2]])),
            "end_date": _dates(base, np.concatenate([m1_end[i1], m2_end[i2]])),
            "match_basis": _take_str(basis_labels, np.concatenate([basis1[i1], basis2[i2]])),
        }
    )
    matches = matches.sort_values(["match_date", "participant_id"], kind="stable").reset_index(
        drop=True
    )

    # ---------------------------------------------------------------- events
    # Each event is packed into one int64 sort key (owner | day | type | result | substance | source),
    # so sorting, de-duplicating and decoding 10M events costs one np.sort.
    day_offset = p.release_gap_days + 1  # events can precede the start by the release gap
    ev_keys: list[np.ndarray] = []
    type_code = {t: i for i, t in enumerate(TABLES["events"].column("event_type").codes)}
    result_code = {"positive": 0, "negative": 1, "dilute": 2, "invalid": 3, "refused": 4}
    sources = (
        "self_report",
        "case_note",
        "lab",
        "state_repository",
        "court",
        "vital_records",
        "hospital_records",
        "supervision_officer",
    )
    src = {s: i for i, s in enumerate(sources)}

    def add(
        owner: np.ndarray,
        day: np.ndarray,
        etype: Any,
        *,
        result: Any = -1,
        subst: Any = -1,
        source: Any = 0,
    ) -> None:
        keep = day <= end_obs[owner]

        def col(v: Any) -> np.ndarray:
            arr = np.asarray(v, dtype=np.int64)
            return (
                np.broadcast_to(arr, keep.shape)[keep]
                if arr.ndim
                else np.full(int(keep.sum()), int(arr))
            )

        key = owner[keep].astype(np.int64) << 31
        key |= (day[keep].astype(np.int64) + day_offset) << 13
        key |= col(etype) << 9
        key |= (col(result) + 1) << 6
        key |= (col(subst) + 1) << 3
        key |= col(source)
        ev_keys.append(key)

    all_idx = np.arange(n)
    # relapse: recorded on the relapse day as a staff-recorded relapse or a self-reported use
    rel_as_report = rng_use.random(n) < 0.4
    add(
        all_idx,
        relapse_day,
        np.where(rel_as_report, type_code["substance_use"], type_code["relapse"]),
        subst=substance,
        source=np.where(rel_as_report, src["self_report"], src["case_note"]),
    )
    # further self-reported use after the relapse
    o, t = _poisson_points(
        rng_use, all_idx, relapse_day, end_obs + 1.0, np.full(n, p.use_report_rate / 30.0)
    )
    add(o, np.floor(t), type_code["substance_use"], subst=substance[o], source=src["self_report"])
    # drug screens while enrolled; positive only on/after the relapse day
    o, t = _poisson_points(
        rng_use,
        all_idx,
        enroll.astype(float),
        active_end.astype(float),
        np.full(n, p.screen_rate / 30.0),
    )
    sday = np.floor(t)
    after = sday >= relapse_day[o]
    r = rng_use.random(o.size)
    res = np.where(
        after & (r < p.p_screen_positive),
        result_code["positive"],
        np.where(
            r > 0.97, _choice(rng_use, (1 / 3, 1 / 3, 1 / 3), o.size) + 2, result_code["negative"]
        ),
    )
    add(
        o,
        sday,
        type_code["drug_screen"],
        result=res,
        subst=np.where(res == 0, substance[o], -1),
        source=src["lab"],
    )
    # arrests, convictions, incarcerations (state repository / court)
    rows = np.repeat(all_idx, arrest_day.shape[1])
    add(rows, arrest_day.ravel(), type_code["arrest"], source=src["state_repository"])
    cflat = conviction_day.ravel()
    ok = np.isfinite(cflat)
    add(rows[ok], cflat[ok], type_code["conviction"], source=src["court"])
    iflat = incarceration_day.ravel()
    ok = np.isfinite(iflat)
    add(rows[ok], iflat[ok], type_code["incarceration"], source=src["state_repository"])
    # technical violations while under supervision (from release/enrollment)
    sup = np.flatnonzero(on_parole | on_probation)
    v_rate = p.violation_rate / 365.25 * np.exp(0.3 * risk[sup])
    o, t = _poisson_points(rng_justice, sup, index_day[sup] + 1.0, end_obs[sup] + 1.0, v_rate)
    add(
        o,
        np.floor(t),
        np.where(on_parole[o], type_code["parole_violation"], type_code["probation_violation"]),
        source=src["supervision_officer"],
    )
    # overdoses (fatal ones are also deaths)
    rows_od = np.repeat(all_idx, od_day.shape[1])
    odf = od_day.ravel()
    ok = np.isfinite(odf)
    add(
        rows_od[ok],
        odf[ok],
        type_code["overdose"],
        subst=substance[rows_od[ok]],
        source=src["hospital_records"],
    )
    # hospitalisations and ED visits
    h_rate = p.hospitalization_rate / 365.25 * np.where(dual, 1.5, 1.0)
    o, t = _poisson_points(rng_health, all_idx, enroll + 1.0, end_obs + 1.0, h_rate)
    add(o, np.floor(t), type_code["hospitalization"], source=src["hospital_records"])
    o, t = _poisson_points(rng_health, all_idx, enroll + 1.0, end_obs + 1.0, 2.5 * h_rate)
    add(o, np.floor(t), type_code["ed_visit"], source=src["hospital_records"])
    # deaths
    dead = np.flatnonzero(death_day <= cut)
    add(dead, death_day[dead], type_code["death"], source=src["vital_records"])

    keys = np.sort(np.concatenate(ev_keys))
    # two identical events on one day (e.g. two self-reports) are recorded once
    keys = keys[_first_of_runs(keys)]
    src_all = keys & 7
    sub_all = ((keys >> 3) & 7) - 1
    res_all = ((keys >> 6) & 7) - 1
    etype = (keys >> 9) & 15
    day = ((keys >> 13) & (2**18 - 1)) - day_offset
    owner = keys >> 31
    del keys
    events = pd.DataFrame(
        {
            "participant_id": _take_str(pid.astype(object), owner),
            "event_date": _dates(base, day),
            "event_type": _take_str(
                np.array(TABLES["events"].column("event_type").codes, dtype=object), etype
            ),
            "result": _take_str(np.array(list(result_code), dtype=object), res_all),
            "substance": _take_str(np.array(_SUBSTANCES, dtype=object), sub_all),
            "source": _take_str(np.array(sources, dtype=object), src_all),
        }
    )

    # ---------------------------------------------------------------- contacts
    if contacts:
        contacts_df = _contacts(
            rng_contact,
            p,
            base,
            pid,
            mid,
            has_m1,
            has_m2,
            m1_day,
            m2_day,
            mentor1,
            mentor2,
            enroll,
            active_end,
            engagement,
        )
    else:
        contacts_df = _empty("contacts")

    # ---------------------------------------------------------------- assessments (and NOMs truth)
    assess_df, noms_truth = _assessments(
        rng_assess,
        p,
        base,
        pid,
        n,
        enroll,
        mentoring,
        relapse_day,
        arrest_day,
        death_day,
        as_of_day,
        discharged & (reason_code == DISCHARGE_REASONS.index("completed")),
        discharge_day,
        make=assessments,
    )

    # ---------------------------------------------------------------- truth
    coef_rows = []
    for outcome in OUTCOMES:
        for term, b in p.coefficients(outcome).items():
            coef_rows.append((outcome, term, b, math.exp(b)))
    coefficients = pd.DataFrame(
        coef_rows, columns=["outcome", "term", "log_hazard", "hazard_ratio"]
    )
    latent = pd.DataFrame(
        {
            "participant_id": _str(pid),
            "group": _take_str(groups, np.where(mentoring, 0, 1)),
            "risk_level": _take_str(np.array(RISK_LEVELS, dtype=object), risk),
            "age": age,
            "gender": _take_str(np.array(_GENDERS, dtype=object), gender),
            "justice_involved": justice,
            "index_date": _dates(base, index_day),
            "assigned_mentor_id": _take_str(mid.astype(object), np.where(matched, mentor1, -1)),
            "mentor_effect": u_part,
            "lp_relapse": lp_relapse,
            "lp_rearrest": lp_rearrest,
            "lp_dropout": lp_dropout,
            "relapse_time": t_relapse,
            "rearrest_time": t_arrest1,
            "dropout_time": t_dropout,
            "death_time": death_day - enroll,
            "discharge_time": discharge_full,
            "discharge_cause": _take_str(
                np.array(["completed", "dropout", "incarcerated", "died"], dtype=object), which_full
            ),
            "relapse_day": _dates(base, relapse_day),
            "rearrest_day": _dates(base, arrest_day[:, 0]),
        }
    )
    marg_rows = []
    h_by = {
        "relapse": (t_relapse, lp_relapse),
        "rearrest": (t_arrest1, lp_rearrest),
        "dropout": (t_dropout, lp_dropout),
    }
    for outcome, days_list in _TRUTH_DAYS.items():
        lp = h_by[outcome][1]
        for days in days_list:
            h0 = float(p.baseline_cumhaz(outcome, days))
            prob_i = -np.expm1(-h0 * np.exp(lp))
            for gi, gname in enumerate(GROUPS):
                sel = mentoring if gi == 0 else ~mentoring
                samp = float(prob_i[sel].mean()) if sel.any() else float("nan")
                pop = _population_marginal(p, outcome, days, 1 if gi == 0 else 0)
                marg_rows.append((outcome, days, gname, pop, samp))
    marginal = pd.DataFrame(marg_rows, columns=["outcome", "days", "group", "population", "sample"])
    con_rows = []
    for (outcome, days), g in marginal.groupby(["outcome", "days"], sort=False):
        t_ = g.set_index("group")
        p1 = t_.loc["peer_mentoring", ["population", "sample"]].to_numpy(dtype=float)
        p0 = t_.loc["comparison", ["population", "sample"]].to_numpy(dtype=float)
        con_rows.append((outcome, days, "rd", *(p1 - p0)))
        con_rows.append((outcome, days, "rr", *(p1 / p0)))
        con_rows.append((outcome, days, "or", *((p1 / (1 - p1)) / (p0 / (1 - p0)))))
    contrasts = pd.DataFrame(
        con_rows, columns=["outcome", "days", "measure", "population", "sample"]
    )

    # realised complete-data shares (no administrative censoring; death competes)
    real_rows = []
    first_conv = conviction_day.min(axis=1)
    first_inc_any = incarceration_day.min(axis=1)
    for gi, gname in enumerate(GROUPS):
        sel = mentoring if gi == 0 else ~mentoring
        k = int(sel.sum())
        for days in (90, 180, 365):
            hit = (relapse_day - enroll <= days) & (relapse_day <= death_day)
            real_rows.append(("relapse", days, gname, k, int(hit[sel].sum())))
        for level, first in (
            ("rearrest", arrest_day[:, 0]),
            ("reconviction", first_conv),
            ("reincarceration", first_inc_any),
        ):
            for days in (180, 365):
                hit = (first - index_day <= days) & (first <= death_day)
                real_rows.append((level, days, gname, k, int(hit[sel].sum())))
        for days in (30, 60, 90, 180):
            kept = (which_full == 0) | (discharge_full >= days)
            real_rows.append(("retention", days, gname, k, int(kept[sel].sum())))
    realized = pd.DataFrame(real_rows, columns=["outcome", "days", "group", "n", "events"])
    realized["share"] = realized["events"] / realized["n"].where(realized["n"] > 0)

    truth = SimulationTruth(
        parameters=p,
        settings={
            "n_participants": n,
            "n_mentors": n_mentors,
            "n_sites": n_sites,
            "start": start_ts,
            "end": end_ts,
            "quarters": quarters,
            "seed": seed,
            "contacts": bool(contacts),
            "assessments": bool(assessments),
        },
        as_of=as_of,
        coefficients=coefficients,
        mentor_sd=float(p.mentor_sd),
        mentor_effects=pd.DataFrame(
            {"mentor_id": _str(mid), "site": _take_str(site_labels, m_site), "effect": mentor_u}
        ),
        latent=latent,
        marginal=marginal,
        contrasts=contrasts,
        noms=noms_truth,
        realized=realized,
    )
    tables = {
        "participants": _conform("participants", participants),
        "mentors": _conform("mentors", mentors),
        "matches": _conform("matches", matches),
        "contacts": _conform("contacts", contacts_df),
        "events": _conform("events", events),
        "assessments": _conform("assessments", assess_df),
    }
    return SimulatedProgram(tables=tables, truth=truth)


def _letters(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(97 + r) + s
    return s


def _shift_years(years: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """The same month and day as ``dates`` in ``years`` (29 February -> 28 February)."""
    y0 = dates.astype("datetime64[Y]")
    m = dates.astype("datetime64[M]")
    month = (m - y0.astype("datetime64[M]")).astype(np.int64)
    day = (dates - m.astype("datetime64[D]")).astype(np.int64)
    leap = ((years % 4 == 0) & (years % 100 != 0)) | (years % 400 == 0)
    day = np.where((month == 1) & (day == 28) & ~leap, 27, day)
    ys = (years - 1970).astype("datetime64[Y]")
    first_of_month = (ys.astype("datetime64[M]") + month.astype("timedelta64[M]")).astype(
        "datetime64[D]"
    )
    return first_of_month + day.astype("timedelta64[D]")


def _empty(name: str) -> pd.DataFrame:
    from recoverystats.io.program import empty_table

    return empty_table(name)


def _conform(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Canonical column order and dtypes (derived loader columns are not generated)."""
    spec = TABLES[name]
    cols = [c for c in spec.columns if not getattr(c, "derived", False)]
    if not isinstance(df.index, pd.RangeIndex) or df.index.start != 0 or df.index.step != 1:
        df = df.reset_index(drop=True)
    if list(df.columns) == [c.name for c in cols] and all(
        str(df[c.name].dtype) == c.dtype for c in cols
    ):
        return df
    out = {}
    for c in cols:
        s = df[c.name] if c.name in df else pd.Series(index=df.index, dtype=c.dtype)
        out[c.name] = s if str(s.dtype) == c.dtype else s.astype(c.dtype)
    return pd.DataFrame(out, copy=False)


def _contacts(
    rng: np.random.Generator,
    p: SimulationParameters,
    base: np.datetime64,
    pid: np.ndarray,
    mid: np.ndarray,
    has_m1: np.ndarray,
    has_m2: np.ndarray,
    m1_day: np.ndarray,
    m2_day: np.ndarray,
    mentor1: np.ndarray,
    mentor2: np.ndarray,
    enroll: np.ndarray,
    active_end: np.ndarray,
    engagement: np.ndarray,
) -> pd.DataFrame:
    idx = np.flatnonzero(has_m1)
    lo = m1_day[idx].astype(float)
    hi = active_end[idx].astype(float)
    early_end = enroll[idx] + 90.0
    rate_e = p.contact_rate_early / 30.0 * engagement[idx]
    rate_l = p.contact_rate_late / 30.0 * engagement[idx]
    o1, t1 = _poisson_points(rng, idx, lo, np.minimum(hi, early_end), rate_e)
    o2, t2 = _poisson_points(rng, idx, np.maximum(lo, early_end), hi, rate_l)
    owner = np.concatenate([o1, o2])
    day = np.floor(np.concatenate([t1, t2]))
    second = has_m2[owner] & (day >= m2_day[owner])
    mentor = np.where(second, mentor2[owner], mentor1[owner])
    modality = _choice(rng, (0.45, 0.30, 0.12, 0.08, 0.05), owner.size)
    median = np.array([45.0, 15.0, 5.0, 30.0, 60.0])[modality]
    minutes = np.clip(np.round(median * np.exp(0.4 * rng.standard_normal(owner.size))), 1, 240)
    k1 = (owner.astype(np.int64) << 18) | day.astype(np.int64)
    k2 = (
        (mentor.astype(np.int64) << 11)
        | (modality.astype(np.int64) << 8)
        | minutes.astype(np.int64)
    )
    order = np.lexsort((k2, k1))
    order = order[_first_of_runs(k1[order], k2[order])]
    return pd.DataFrame(
        {
            "participant_id": _take_str(pid.astype(object), owner[order]),
            "contact_date": _dates(base, day[order]),
            "mentor_id": _take_str(mid.astype(object), mentor[order]),
            "modality": _take_str(np.array(_MODALITIES, dtype=object), modality[order]),
            "minutes": minutes[order],
        }
    )


def _first_of_runs(*keys: np.ndarray) -> np.ndarray:
    """Mask keeping the first row of each run of identical rows (keys already sorted)."""
    n = keys[0].size
    keep = np.ones(n, dtype=bool)
    if n > 1:
        same = np.ones(n - 1, dtype=bool)
        for k in keys:
            same &= k[1:] == k[:-1]
        keep[1:] = ~same
    return keep


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _assessments(
    rng: np.random.Generator,
    p: SimulationParameters,
    base: np.datetime64,
    pid: np.ndarray,
    n: int,
    enroll: np.ndarray,
    mentoring: np.ndarray,
    relapse_day: np.ndarray,
    arrest_day: np.ndarray,
    death_day: np.ndarray,
    as_of_day: int,
    completed: np.ndarray,
    discharge_day: np.ndarray,
    *,
    make: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    intake_day = enroll + rng.integers(0, 8, n)
    in_window = rng.random(n) >= p.p_followup_outside_window
    early = rng.random(n) < 0.5
    fu_offset = np.where(
        in_window,
        152 + rng.integers(0, 92, n),
        np.where(early, 100 + rng.integers(0, 52, n), 244 + rng.integers(0, 57, n)),
    )
    fu_day = intake_day + fu_offset
    done_intake = rng.random(n) < p.p_intake
    done_fu = rng.random(n) < p.p_followup

    def items(day: np.ndarray, intake: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        k = day.size
        out: dict[str, np.ndarray] = {}
        if intake is None:
            out["any_use_30d"] = rng.random(k) < p.p_intake_use
            out["arrested_30d"] = rng.random(k) < p.p_intake_arrested
            for item, (prev, *_rest) in p.noms.items():
                out[item] = rng.random(k) < prev
            out["quality_of_life"] = np.clip(np.round(2.8 + 0.8 * rng.standard_normal(k)), 1, 5)
            out["satisfaction"] = np.full(k, np.nan)
        else:
            out["any_use_30d"] = (relapse_day <= day) & (rng.random(k) < p.p_use_after_relapse)
            out["arrested_30d"] = (
                (arrest_day > (day - 30)[:, None]) & (arrest_day <= day[:, None])
            ).any(axis=1)
            for item, (_prev, alpha, gamma, delta) in p.noms.items():
                prob = _expit(alpha + gamma * intake[item] + delta * mentoring)
                out[item] = rng.random(k) < prob
            out["quality_of_life"] = np.clip(
                np.round(
                    intake["quality_of_life"] + 0.4 + 0.2 * mentoring + 0.8 * rng.standard_normal(k)
                ),
                1,
                5,
            )
            out["satisfaction"] = np.clip(
                np.round(3.8 + 0.3 * mentoring + 0.8 * rng.standard_normal(k)), 1, 5
            )
        return out

    base_items = items(intake_day, None)
    fu_items = items(fu_day, base_items)
    # complete-data truth
    rows = []
    for gi, gname in enumerate(GROUPS):
        sel = mentoring if gi == 0 else ~mentoring
        for item in _NOMS_ITEMS:
            rows.append(
                (
                    item,
                    gname,
                    int(sel.sum()),
                    float(base_items[item][sel].mean()) if sel.any() else float("nan"),
                    float(fu_items[item][sel].mean()) if sel.any() else float("nan"),
                )
            )
    noms_truth = pd.DataFrame(rows, columns=["item", "group", "n", "intake", "followup"])
    if not make:
        return _empty("assessments"), noms_truth

    rec_int = done_intake & (intake_day <= as_of_day) & (intake_day <= death_day)
    rec_fu = rec_int & done_fu & (fu_day <= as_of_day) & (fu_day <= death_day)
    # discharge assessment for completers (satisfaction and quality of life with the follow-up items)
    dis_day = discharge_day
    rec_dis = rec_int & completed & (dis_day <= as_of_day) & ~(rec_fu & (fu_day == dis_day))
    dis_items = items(np.where(np.isfinite(dis_day), dis_day, 0.0), base_items)

    parts = []
    for mask, tp, day, vals in (
        (rec_int, "intake", intake_day, base_items),
        (rec_fu, "followup_6m", fu_day, fu_items),
        (rec_dis, "discharge", dis_day, dis_items),
    ):
        i = np.flatnonzero(mask)
        frame = {
            "participant_id": _take_str(pid.astype(object), i),
            "assessment_date": _dates(base, day[i]),
            "timepoint": pd.Series([tp] * i.size, dtype="string"),
        }
        for item in _NOMS_ITEMS:
            frame[item] = _bool(vals[item][i])
        frame["satisfaction"] = vals["satisfaction"][i]
        frame["quality_of_life"] = vals["quality_of_life"][i]
        parts.append(pd.DataFrame(frame))
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values(["participant_id", "assessment_date"], kind="stable").reset_index(
        drop=True
    )
    return out, noms_truth
