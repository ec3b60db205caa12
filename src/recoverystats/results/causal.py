"""Result objects of :mod:`recoverystats.causal`.

``PropensityScoreResult`` (scores and overlap), ``BalancingWeightsResult`` (weights
and their summary), ``BalanceResult`` (covariate balance before and after
weighting), ``TreatmentEffectResult`` (marginal effects with an E-value) and
``EValueResult``. The scores and weights are per-row Series aligned to the input (so
they can be joined back or passed as ``weights=``); they are not part of
``to_dict()``, the HTML or the Markdown output, which show only summaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.results.base import ResultMixin

__all__ = [
    "PropensityScoreResult",
    "BalancingWeightsResult",
    "BalanceResult",
    "TreatmentEffectResult",
    "EValueResult",
]


@dataclass(frozen=True, slots=True, repr=False)
class PropensityScoreResult(ResultMixin):
    """Propensity scores with the overlap summary, one table row per group.

    ``.table`` columns: ``group, exposed, n, mean, min, p01, p05, p25, p50, p75, p95,
    p99, max, outside_support, share_outside`` (the scores' distribution in each group
    and how many people lie outside the common support).

    Attributes
    ----------
    exposure, treated, control
        The exposure column and its values coded 1 (exposed) and 0.
    adjust
        The data columns of the propensity model.
    common_support
        ``(lower, upper)``: the range of scores seen in both groups.
    share_outside
        Share of all people whose score lies outside the common support.
    """

    _table: pd.DataFrame
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    exposure: str = ""
    treated: Any = None
    control: Any = None
    adjust: tuple[str, ...] = ()
    common_support: tuple[float, float] = (float("nan"), float("nan"))
    share_outside: float = float("nan")
    _scores: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    _exposed: pd.Series = field(default_factory=lambda: pd.Series(dtype=bool))
    _model: pd.DataFrame = field(default_factory=pd.DataFrame)
    _vcov: pd.DataFrame = field(default_factory=pd.DataFrame)

    _title = "Propensity scores: overlap by group"

    @property
    def scores(self) -> pd.Series:
        """The estimated propensity scores, a Series aligned to the input rows."""
        return self._scores.copy()

    @property
    def exposed(self) -> pd.Series:
        """Boolean Series aligned to the input: True for the exposed group."""
        return self._exposed.copy()

    @property
    def model(self) -> pd.DataFrame:
        """The propensity model's coefficients: ``term, log_odds, std_error``."""
        return self._model.copy()

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the propensity model's coefficients (DataFrame over the terms)."""
        return self._vcov.copy()

    def binned(self, bins: int = 20) -> pd.DataFrame:
        """Counts of people per score bin and group: ``bin, lower, upper, group, exposed, n``.

        ``bins`` equal-width bins over [0, 1] (the last includes 1). A table of counts, so
        it can go through small-cell suppression before it is drawn
        (:func:`recoverystats.plotting.causal.plot_overlap_counts`); ``.plot()`` draws the
        same bins unsuppressed.
        """
        from recoverystats.errors import InvalidParameterError

        if not isinstance(bins, (int, np.integer)) or isinstance(bins, bool) or bins < 2:
            raise InvalidParameterError(f"bins must be a whole number >= 2; got {bins!r}.")
        edges = np.linspace(0.0, 1.0, int(bins) + 1)
        p = self._scores.to_numpy()
        t = self._exposed.to_numpy()
        rows = []
        for val, mask, label in ((1, t, self.treated), (0, ~t, self.control)):
            counts, _ = np.histogram(p[mask], bins=edges)
            for i, c in enumerate(counts):
                rows.append({"bin": i, "lower": float(edges[i]), "upper": float(edges[i + 1]),
                             "group": str(label), "exposed": val, "n": int(c)})
        return pd.DataFrame(rows)

    def plot(self, ax: Any = None, *, bins: int = 40, **kwargs: Any) -> Any:
        """Mirrored histograms of the scores: exposed above the axis, comparison below."""
        from recoverystats.plotting.causal import plot_overlap

        return plot_overlap(self, ax=ax, bins=bins, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class BalancingWeightsResult(ResultMixin):
    """Balancing weights with their summary, one table row per group.

    ``.table`` columns: ``group, exposed, n, sum_weights, mean, sd, min, max, ess,
    top1_share``: the weights' distribution in each group, Kish's effective sample
    size ``(sum w)^2 / sum w^2`` and the share of the group's total weight held by its
    1% largest weights.

    Use ``.weights`` as sampling weights: ``weights=result.weights`` with
    ``weight_type="sampling"`` in the outcome functions (robust variances), or pass it
    to :func:`balance` and :func:`treatment_effect`.

    Attributes
    ----------
    estimand
        ``"ATE"``, ``"ATT"`` or ``"ATO"``.
    weighting
        ``"ps"`` (inverse-probability weights from a propensity model) or ``"entropy"``.
    stabilize, trim
        As requested.
    converged
        Entropy balancing: whether the weighted moments match their targets; always
        True for ``"ps"``.
    max_moment_difference
        Entropy balancing: the largest absolute standardised difference between a
        weighted moment and its target (the convergence criterion); NaN for ``"ps"``.
    """

    _table: pd.DataFrame
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    exposure: str = ""
    treated: Any = None
    control: Any = None
    adjust: tuple[str, ...] = ()
    estimand: str = "ATE"
    weighting: str = "ps"
    stabilize: bool = True
    trim: float | None = None
    converged: bool = True
    max_moment_difference: float = float("nan")
    _weights: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    _scores: pd.Series | None = None
    _exposed: pd.Series = field(default_factory=lambda: pd.Series(dtype=bool))

    _title = "Balancing weights"

    @property
    def weights(self) -> pd.Series:
        """The weights, a Series aligned to the input rows (use with ``weight_type="sampling"``)."""
        return self._weights.copy()

    @property
    def scores(self) -> pd.Series | None:
        """The propensity scores behind ``"ps"`` weights (None for entropy balancing)."""
        return None if self._scores is None else self._scores.copy()

    @property
    def exposed(self) -> pd.Series:
        """Boolean Series aligned to the input: True for the exposed group."""
        return self._exposed.copy()

    @property
    def ess(self) -> dict[str, float]:
        """Kish's effective sample size per group label."""
        return {str(g): float(e) for g, e in zip(self._table["group"], self._table["ess"], strict=True)}

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Histogram of the weights by group (log scale), with each group's ESS in the legend."""
        from recoverystats.plotting.causal import plot_weights

        return plot_weights(self, ax=ax, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class BalanceResult(ResultMixin):
    """Covariate balance between the groups, before and after weighting.

    ``.table`` (long form) has one row per covariate term and sample: ``term,
    variable, level, kind, sample, mean_treated, mean_control, sd_treated,
    sd_control, sd_denominator, smd, variance_ratio, ks, n_treated, n_control``.
    ``kind`` is ``"binary"`` (a 0/1 or boolean column or one level of a categorical
    column, shown as proportions) or ``"continuous"``; ``sample`` is ``"unadjusted"``
    or ``"weighted"``; ``n_treated``/``n_control`` are the groups' effective sample
    sizes (plain counts unweighted); ``ks`` is NaN unless requested;
    ``variance_ratio`` is NaN for binary terms. See :func:`recoverystats.causal.balance`
    for the definitions. ``.wide()`` gives one row per term with the samples side
    by side.

    Attributes
    ----------
    exposure, treated, control
        The exposure column and its values coded 1 and 0.
    estimand, sd_denominator
        The estimand and which SD standardises the mean differences (``"pooled"``,
        ``"treated"`` or ``"control"``).
    threshold
        The |SMD| taken as acceptable balance (0.1 by default).
    """

    _table: pd.DataFrame
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    exposure: str = ""
    treated: Any = None
    control: Any = None
    estimand: str = "ATE"
    sd_denominator: str = "pooled"
    threshold: float = 0.1
    weighted: bool = False

    _title = "Covariate balance"

    def wide(self) -> pd.DataFrame:
        """One row per term: the unadjusted and weighted statistics side by side."""
        t = self._table
        keys = ["term", "variable", "level", "kind"]
        stats = [c for c in ("mean_treated", "mean_control", "smd", "variance_ratio", "ks") if c in t.columns]
        out = t[t["sample"] == "unadjusted"][keys + stats].reset_index(drop=True)
        if self.weighted:
            w = t[t["sample"] == "weighted"][keys + stats].reset_index(drop=True)
            out = out.merge(w, on=keys, suffixes=("", "_weighted"), sort=False)
        return out

    def __repr__(self) -> str:
        with pd.option_context("display.max_columns", 14, "display.width", 140, "display.precision", 3):
            body = self._display_table().head(40).to_string(index=False)
        text = f"{type(self).__name__}({self._meta_line()})\n{body}"
        for note in self.notes:
            text += f"\nNote: {note}"
        return text

    def _display_table(self) -> pd.DataFrame:
        wide = self.wide()
        drop = [c for c in wide.columns if c.startswith("ks") and wide[c].isna().all()]
        return wide.drop(columns=drop + ["variable", "level"])

    @property
    def max_abs_smd(self) -> dict[str, float]:
        """The largest |SMD| per sample (``{"unadjusted": ..., "weighted": ...}``)."""
        t = self._table
        return {str(s): float(np.nanmax(np.abs(g["smd"]))) for s, g in t.groupby("sample", sort=False)}

    def plot(self, ax: Any = None, *, threshold: float | None = None, **kwargs: Any) -> Any:
        """Love plot: |SMD| per covariate, unadjusted and weighted, with lines at ±threshold."""
        from recoverystats.plotting.causal import plot_love

        return plot_love(self, ax=ax, threshold=self.threshold if threshold is None else threshold, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class EValueResult(ResultMixin):
    """E-values for an observed association (VanderWeele & Ding 2017).

    ``.table`` columns: ``quantity`` (``point``, ``ci_lower``, ``ci_upper``),
    ``estimate`` (as given), ``risk_ratio`` (on the risk-ratio scale after any
    conversion), ``evalue``. The E-value of the CI is on the row of the bound closer
    to 1 (it is 1 when the interval includes 1); the other bound's E-value is NaN.
    """

    _table: pd.DataFrame
    method: str
    n_used: int | None = None
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    measure: str = "rr"
    rare: bool | None = None
    point: float = float("nan")
    ci: float = float("nan")

    _title = "E-value"

    def sentence(self, *, exposure: str = "the exposure", outcome: str = "the outcome") -> str:
        """The E-value in plain words."""
        from recoverystats.causal.evalue import evalue_sentence

        return evalue_sentence(self.point, self.ci, exposure=exposure, outcome=outcome)


@dataclass(frozen=True, slots=True, repr=False)
class TreatmentEffectResult(ResultMixin):
    """A marginal effect of the exposure on an outcome, with a sensitivity (E-value) note.

    ``.table`` columns: ``measure`` (``mean_difference``; ``risk_difference`` and
    ``risk_ratio``; or ``survival_difference`` and ``risk_ratio`` per time), ``time``
    (NaN except for survival), ``estimate, ci_lower, ci_upper, std_error, statistic,
    p_value``, then ``mean_treated`` and ``mean_control`` (the estimated mean outcome,
    risk or survival probability had everyone in the target population been exposed /
    not exposed), ``evalue`` and ``evalue_ci``.

    Attributes
    ----------
    outcome, exposure, treated, control
        Columns and the exposure's values coded 1 and 0.
    estimand
        ``"ATE"``, ``"ATT"`` or ``"ATO"``.
    estimator
        ``"ipw"``, ``"aipw"`` or ``"gcomp"``.
    ci_method
        ``"robust"`` (sandwich / influence-function standard errors, Wald intervals;
        ratios on the log scale) or ``"bootstrap"`` (percentile intervals).
    outcome_type
        ``"binary"``, ``"continuous"`` or ``"survival"``.
    n_boot
        Bootstrap replicates used (0 for robust intervals).
    evalue_note
        The E-value in plain words (also the first note).
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    outcome: str = ""
    exposure: str = ""
    treated: Any = None
    control: Any = None
    estimand: str = "ATE"
    estimator: str = "ipw"
    ci_method: str = "robust"
    outcome_type: str = "binary"
    n_boot: int = 0
    evalue_note: str = ""
    _vcov: pd.DataFrame = field(default_factory=pd.DataFrame)

    _title = "Treatment effect"

    @property
    def vcov(self) -> pd.DataFrame:
        """Robust covariance of the two potential-outcome means (``mean_treated``,
        ``mean_control``); empty for survival outcomes and bootstrap intervals."""
        return self._vcov.copy()

    @property
    def estimate(self) -> float:
        """The headline estimate (the first row: mean or risk difference, or the first time's
        survival difference)."""
        return float(self._table["estimate"].iloc[0])

    def _display_table(self) -> pd.DataFrame:
        cols = ["measure", "time", "estimate", "ci_lower", "ci_upper", "p_value", "mean_treated",
                "mean_control", "evalue", "evalue_ci"]
        t = self._table[[c for c in cols if c in self._table.columns]]
        if "time" in t.columns and t["time"].isna().all():
            t = t.drop(columns="time")
        return t

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """The estimates with their confidence intervals and a line at no effect."""
        from recoverystats.plotting.causal import plot_effect

        return plot_effect(self, ax=ax, **kwargs)
