"""Result objects of the attrition part of :mod:`recoverystats.missing`.

``AttritionResult`` (completers vs non-completers, follow-up rates against the target,
a model of follow-up), ``FollowupWeightsResult`` (non-response weights) and
``TippingPointResult`` (delta-adjusted sensitivity analysis for a binary outcome).
Like every result they hold tidy tables and metadata, no participant rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from recoverystats.results.base import ResultMixin, json_safe

__all__ = ["AttritionResult", "FollowupWeightsResult", "TippingPointResult"]


@dataclass(frozen=True, slots=True, repr=False)
class AttritionResult(ResultMixin):
    """Who was followed up: completers vs non-completers, rates against the target, a model.

    ``.table``: the characteristics of completers and non-completers in the layout of
    :func:`recoverystats.table_one` (``variable, level, kind``, then for each of
    ``Overall``, ``completers``, ``non_completers`` the columns ``<g>|n``, ``<g>|pct``,
    ``<g>|mean``, ``<g>|sd``, ``<g>|median``, ``<g>|q1``, ``<g>|q3``, then ``smd``).

    Attributes
    ----------
    rates
        Follow-up rate overall, by ``by`` and by ``site``: ``variable, level, n,
        events, estimate, ci_lower, ci_upper, target, vs_target`` (``n`` = due,
        ``events`` = followed up; ``vs_target`` is ``"below"`` when the whole CI lies
        below the target, ``"meets"`` when the estimate reaches it, ``"uncertain"``
        otherwise).
    model
        The logistic model of being followed up (:class:`OddsRatioResult`) or None
        when there was nothing to model (no ``by``, ``site`` or ``adjust``).
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    followed_up: str = ""
    by: str | None = None
    site: str | None = None
    adjust: tuple[str, ...] = ()
    target: float = 0.8
    n_followed_up: int = 0
    _rates: pd.DataFrame = field(default_factory=pd.DataFrame)
    _model: Any = field(default=None, compare=False)

    _title = "Attrition: completers vs non-completers"

    @property
    def rates(self) -> pd.DataFrame:
        """Follow-up rates with CIs against the target (a copy)."""
        return self._rates.copy()

    @property
    def model(self) -> Any:
        """The logistic model of follow-up (an :class:`OddsRatioResult`), or None."""
        return self._model

    @property
    def followup_rate(self) -> float:
        """The overall follow-up rate (followed up / due)."""
        return self.n_followed_up / self.n_used if self.n_used else float("nan")

    def _display_table(self) -> pd.DataFrame:
        t = self._table
        cols = ["variable", "level"] + [c for c in t.columns if c.endswith("|n") or c.endswith("|pct")
                                        or c.endswith("|mean")] + (["smd"] if "smd" in t else [])
        return t[cols]

    def summary(self) -> str:
        """Plain-language summary: the rate against the target and the largest imbalances."""
        r = self._rates
        overall = r[r["variable"] == "overall"].iloc[0]
        text = (f"{int(overall['events']):,} of {int(overall['n']):,} due were followed up "
                f"({overall['estimate']:.1%}, {self.conf_level:.0%} CI {overall['ci_lower']:.1%} to "
                f"{overall['ci_upper']:.1%}; target {self.target:.0%}: {overall['vs_target']}).")
        if "smd" in self._table:
            t = self._table.dropna(subset=["smd"]).drop_duplicates("variable")
            big = t[t["smd"] > 0.1].sort_values("smd", ascending=False)
            if len(big):
                text += (" Completers and non-completers differ (|SMD| > 0.1) in "
                         + ", ".join(f"{v} ({s:.2f})" for v, s in zip(big["variable"], big["smd"], strict=True))
                         + ".")
            elif len(t):
                text += " No characteristic differs by more than 0.1 SMD between completers and non-completers."
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the characteristics table, the rates and the model table."""
        out = ResultMixin.to_dict(self)
        out["rates"] = json_safe(self._rates)
        out["model"] = None if self._model is None else self._model.to_dict()
        return out

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Follow-up rate by group and site with CIs and the target line (returns the Axes)."""
        from recoverystats.plotting.attrition import plot_attrition

        return plot_attrition(self, ax=ax, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class FollowupWeightsResult(ResultMixin):
    """Inverse-probability-of-follow-up (non-response) weights and their diagnostics.

    ``.table``: one row per stratum of ``by`` (or one ``overall`` row) and an
    ``overall`` row: ``stratum, n, n_followed_up, followup_rate, min_probability,
    mean_weight, median_weight, p99_weight, max_weight, sum_weights, ess,
    ess_ratio, n_trimmed`` (weights of completers; ``ess`` is Kish's effective sample
    size ``(sum w)^2 / sum w^2``, ``ess_ratio = ess / n_followed_up``).

    Attributes
    ----------
    weights
        A Series aligned to the input rows (same index): the weight of each completer,
        0 for each non-completer. Use it with ``weights=...,
        weight_type="sampling"``.
    probability
        The fitted probability of being followed up, aligned to the input rows.
    coefficients
        The follow-up model(s): ``stratum, term, log_odds, std_error``.
    vcov
        Their covariance matrix (a DataFrame; block-diagonal over the strata).
    """

    _table: pd.DataFrame
    conf_level: float | None
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    followed_up: str = ""
    adjust: tuple[str, ...] = ()
    by: str | None = None
    stabilize: bool = True
    trim: float | None = None
    _weights: pd.Series = field(default_factory=lambda: pd.Series(dtype=float), compare=False)
    _probability: pd.Series = field(default_factory=lambda: pd.Series(dtype=float), compare=False)
    _coefficients: pd.DataFrame = field(default_factory=pd.DataFrame)
    _strata: pd.Series = field(default_factory=lambda: pd.Series(dtype=str), compare=False)
    _vcov: pd.DataFrame = field(default_factory=pd.DataFrame)

    _title = "Follow-up (non-response) weights"

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the follow-up model coefficients (block-diagonal over the strata; terms
        named ``"<stratum>:<term>"`` with ``by``)."""
        return self._vcov.copy()

    @property
    def strata(self) -> pd.Series:
        """The stratum (level of ``by``, as text, or ``"overall"``) of each input row; a copy."""
        return self._strata.copy()

    @property
    def weights(self) -> pd.Series:
        """Weights aligned to the input rows (0 for non-completers); a copy."""
        return self._weights.copy()

    @property
    def probability(self) -> pd.Series:
        """Fitted probability of being followed up, aligned to the input rows; a copy."""
        return self._probability.copy()

    @property
    def coefficients(self) -> pd.DataFrame:
        """The follow-up model coefficients per stratum (a copy)."""
        return self._coefficients.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: the summary table and the model coefficients (not the weights)."""
        out = ResultMixin.to_dict(self)
        out["coefficients"] = json_safe(self._coefficients)
        return out

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Histogram of the completers' weights by stratum (returns the Axes)."""
        from recoverystats.plotting.attrition import plot_followup_weights

        return plot_followup_weights(self, ax=ax, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class TippingPointResult(ResultMixin):
    """Delta-adjusted multiple imputation of a binary outcome over a grid of shifts.

    ``.table``: one row per scenario: ``scenario`` (``"delta"`` for the grid,
    otherwise the name of a deterministic bound such as ``"all_event"``),
    ``delta_exposed, delta_reference`` (log-odds shifts; NaN for the bounds),
    ``odds_multiplier_exposed, odds_multiplier_reference`` (``exp(delta)``),
    ``estimate, ci_lower, ci_upper, std_error, p_value, df, fmi`` (odds ratio or risk
    difference of the exposure, pooled by Rubin's rules), ``significant`` and
    ``changes_conclusion`` (relative to the MAR analysis, ``delta = 0`` in both arms).

    Attributes
    ----------
    tipping
        The tipping points along each axis: ``arm, direction, delta, odds_multiplier,
        found`` (``arm`` is ``"exposed"`` or ``"reference"``; the shift of the other arm
        is 0); ``delta`` is NaN when no shift within the grid changes the conclusion.
    mar, complete_case
        One-row tables of the MAR (``delta = 0``) and complete-case results.
    text
        The conclusion in plain words.
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    outcome: str = ""
    exposure: str = ""
    exposed: str = ""
    reference: str = ""
    scale: str = "or"
    m: int = 0
    seed: int | None = None
    n_missing_exposed: int = 0
    n_missing_reference: int = 0
    text: str = ""
    _tipping: pd.DataFrame = field(default_factory=pd.DataFrame)
    _mar: pd.DataFrame = field(default_factory=pd.DataFrame)
    _complete_case: pd.DataFrame = field(default_factory=pd.DataFrame)

    _title = "Tipping-point analysis (delta adjustment)"

    @property
    def null_value(self) -> float:
        """1 for an odds ratio, 0 for a risk difference."""
        return 1.0 if self.scale == "or" else 0.0

    @property
    def grid(self) -> pd.DataFrame:
        """The delta grid rows of ``.table``."""
        t = self._table
        return t[t["scenario"] == "delta"].reset_index(drop=True)

    @property
    def bounds(self) -> pd.DataFrame:
        """The deterministic best/worst-case rows of ``.table``."""
        t = self._table
        return t[t["scenario"] != "delta"].reset_index(drop=True)

    @property
    def tipping(self) -> pd.DataFrame:
        """Tipping points along each arm's axis (a copy)."""
        return self._tipping.copy()

    @property
    def mar(self) -> pd.DataFrame:
        """The MAR result (delta = 0 in both arms)."""
        return self._mar.copy()

    @property
    def complete_case(self) -> pd.DataFrame:
        """The complete-case result (responders only)."""
        return self._complete_case.copy()

    def summary(self) -> str:
        """The conclusion in plain words."""
        return self.text

    def _display_table(self) -> pd.DataFrame:
        cols = ["scenario", "delta_exposed", "delta_reference", "estimate", "ci_lower", "ci_upper", "p_value",
                "changes_conclusion"]
        return self._table[cols]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the grid, the tipping points and the MAR / complete-case rows."""
        out = ResultMixin.to_dict(self)
        out["tipping"] = json_safe(self._tipping)
        out["mar"] = json_safe(self._mar)
        out["complete_case"] = json_safe(self._complete_case)
        return out

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Heat map of the estimate over the delta grid with the tipping boundary (returns the Axes)."""
        from recoverystats.plotting.attrition import plot_tipping_point

        return plot_tipping_point(self, ax=ax, **kwargs)
