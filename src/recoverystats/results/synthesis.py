"""Result objects of :mod:`recoverystats.synthesis`.

``MetaAnalysisResult`` (pooling across sites/studies), ``EffectModificationResult``
(the exposure's effect within each level of a modifier) and
``InterruptedTimeSeriesResult`` (segmented regression). Like every result they hold
tidy tables plus metadata and no participant rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from recoverystats.results.base import ResultMixin, json_safe


@dataclass(frozen=True, slots=True, repr=False)
class MetaAnalysisResult(ResultMixin):
    """A fixed- or random-effects meta-analysis of one effect across sites or studies.

    ``.table``: one row per study, then one ``pooled`` row. Columns ``label, kind,
    estimate, ci_lower, ci_upper, std_error, statistic, p_value, weight,
    analysis_estimate, n, events``. ``estimate`` and the CI are on the reported scale
    (odds, risk or hazard ratio; a risk difference as it is); ``analysis_estimate`` and
    ``std_error`` are on the pooling scale (log ratio, or the difference). ``weight`` is
    the study's percentage weight in the pooled estimate (random-effects weights
    ``1/(v_i + tau^2)`` unless ``method="FE"``). Study CIs are Wald (normal) intervals;
    the pooled row's CI is the model's (t(k-1) with HKSJ). ``n``/``events`` are filled
    when the input had them (counts, or fitted results).

    Attributes
    ----------
    measure
        ``"or"``, ``"rr"``, ``"hr"``, ``"rd"`` or ``"generic"``.
    tau_method, hksj
        ``"REML"``, ``"DL"``, ``"PM"`` or ``"FE"``; whether HKSJ was applied.
    k
        Number of studies.
    estimate, ci_lower, ci_upper, log_estimate, std_error, statistic, df, p_value
        The pooled effect (``estimate``/CI on the reported scale; ``log_estimate`` and
        ``std_error`` on the pooling scale; ``df`` is ``inf`` for a z-test).
    tau2, tau2_se, tau, i2, h2, q, q_df, q_p_value
        Between-study variance (its SE for REML only; NaN otherwise), tau, I^2 (in %),
        H^2 and Cochran's Q test.
    pi_lower, pi_upper
        Prediction interval for the effect in a new site (random effects; NaN for FE).
    heterogeneity
        ``statistic, estimate, std_error, df, p_value`` for tau2, tau, i2, h2, q.
    egger
        Egger's regression test (``estimate`` is the slope on the SE, ``statistic`` its
        t on ``df`` = k - 2; ``limit_estimate`` the intercept); NaN with < 3 studies.
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    measure: str = "or"
    tau_method: str = "REML"
    hksj: bool = False
    k: int = 0
    estimate: float = float("nan")
    ci_lower: float = float("nan")
    ci_upper: float = float("nan")
    log_estimate: float = float("nan")
    std_error: float = float("nan")
    statistic: float = float("nan")
    df: float = float("inf")
    p_value: float = float("nan")
    tau2: float = float("nan")
    tau2_se: float = float("nan")
    tau: float = float("nan")
    i2: float = float("nan")
    h2: float = float("nan")
    q: float = float("nan")
    q_df: int = 0
    q_p_value: float = float("nan")
    pi_lower: float = float("nan")
    pi_upper: float = float("nan")
    heterogeneity: pd.DataFrame = field(default_factory=pd.DataFrame)
    egger: pd.DataFrame = field(default_factory=pd.DataFrame)
    source: str = ""
    iterations: int = 0

    _title = "Meta-analysis"

    @property
    def vcov(self) -> pd.DataFrame:
        """Variance of the pooled estimate on the pooling scale, as a 1 x 1 DataFrame (term ``pooled``)."""
        return pd.DataFrame([[self.std_error**2]], index=["pooled"], columns=["pooled"])

    def _display_table(self) -> pd.DataFrame:
        cols = ["label", "estimate", "ci_lower", "ci_upper", "weight", "n", "events"]
        t = self._table[[c for c in cols if c in self._table.columns]]
        return t.rename(columns={"weight": "weight_percent"})

    def summary(self) -> str:
        """A few lines in words: the pooled effect, heterogeneity and the prediction interval."""
        pct = f"{self.conf_level:.0%}"
        name = {"or": "odds ratio", "rr": "risk ratio", "hr": "hazard ratio", "rd": "risk difference"}.get(
            self.measure, "effect")
        lines = [
            f"Pooled {name} over {self.k} sites or studies ({self.method}): {self.estimate:.3g} "
            f"({pct} CI {self.ci_lower:.3g} to {self.ci_upper:.3g}), p = {self.p_value:.3g}.",
            f"Heterogeneity: tau^2 = {self.tau2:.4g}, I^2 = {self.i2:.1f}%, H^2 = {self.h2:.2f}, "
            f"Q({self.q_df}) = {self.q:.2f}, p = {self.q_p_value:.3g}.",
        ]
        if self.pi_lower == self.pi_lower:
            lines.append(f"{pct} prediction interval for a new site: {self.pi_lower:.3g} to {self.pi_upper:.3g}.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"{self.summary()}\n{ResultMixin.__repr__(self)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the pooled values, heterogeneity and Egger's test."""
        out = ResultMixin.to_dict(self)
        out["heterogeneity"] = json_safe(self.heterogeneity)
        out["egger"] = json_safe(self.egger)
        return out

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Forest plot: each study's estimate and CI (marker size by weight), the pooled
        diamond and the prediction interval; weights in % at the right. Returns the Axes."""
        from recoverystats.plotting.synthesis import plot_meta_analysis

        return plot_meta_analysis(self, ax=ax, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class EffectModificationResult(ResultMixin):
    """The exposure's effect in each level of a modifier, with the interaction test.

    ``.table``: one row per modifier level, columns ``modifier, level, estimate,
    ci_lower, ci_upper, std_error, statistic, p_value, n, events, n_exposed,
    events_exposed, scale``. On the ``"or"``/``"hr"`` scale ``estimate`` is the odds
    (hazard) ratio of the exposure within the level and ``std_error`` is on the log
    scale; on ``"rd"`` it is the standardised risk difference.

    Attributes
    ----------
    exposure, modifier, exposed_level, reference_level
        Columns and the compared exposure levels.
    scale
        ``"or"``, ``"rd"`` or ``"hr"``.
    interaction
        The interaction tests: ``scale, test, statistic, df, p_value``, one row per
        scale computed (the multiplicative test always; the additive one for
        ``scale="rd"``).
    reri
        Relative excess risk due to interaction (two binary factors, ratio scales):
        ``measure, estimate, ci_lower, ci_upper, std_error`` for RERI, AP and S; empty
        otherwise.
    n_subgroups
        Number of modifier levels in which an effect was estimated.
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    exposure: str = ""
    modifier: str = ""
    exposed_level: Any = None
    reference_level: Any = None
    scale: str = "or"
    interaction: pd.DataFrame = field(default_factory=pd.DataFrame)
    reri: pd.DataFrame = field(default_factory=pd.DataFrame)
    n_subgroups: int = 0
    _vcov: pd.DataFrame = field(default_factory=pd.DataFrame)

    _title = "Effect by subgroup"

    def summary(self) -> str:
        """A few lines in words: the effect in each level and the interaction test(s)."""
        pct = f"{self.conf_level:.0%}"
        name = {"or": "Odds ratio", "hr": "Hazard ratio", "rd": "Risk difference"}.get(self.scale, "Effect")
        lines = [f"{name} of {self.exposure} ({self.exposed_level} vs {self.reference_level}) by {self.modifier}:"]
        for _, r in self._table.iterrows():
            lines.append(f"  {r['level']}: {r['estimate']:.3g} ({pct} CI {r['ci_lower']:.3g} to {r['ci_upper']:.3g}), "
                         f"n = {int(r['n'])}")
        for _, r in self.interaction.iterrows():
            lines.append(f"Interaction ({r['scale']}, {r['test']}): statistic {r['statistic']:.3g} on {int(r['df'])} df, "
                         f"p = {r['p_value']:.3g}.")
        lines.append(f"{self.n_subgroups} subgroups estimated; subgroup effects are exploratory.")
        return "\n".join(lines)

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the per-level effects (log scale for OR/HR, risk scale for RD)."""
        return self._vcov.copy()

    def _display_table(self) -> pd.DataFrame:
        cols = ["modifier", "level", "estimate", "ci_lower", "ci_upper", "p_value", "n", "events"]
        return self._table[[c for c in cols if c in self._table.columns]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the interaction tests and RERI."""
        out = ResultMixin.to_dict(self)
        out["interaction"] = json_safe(self.interaction)
        out["reri"] = json_safe(self.reri)
        return out

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Subgroup forest plot (one row per level, the interaction p-value in the title)."""
        from recoverystats.plotting.synthesis import plot_effect_modification

        return plot_effect_modification(self, ax=ax, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class InterruptedTimeSeriesResult(ResultMixin):
    """Segmented regression of an interrupted time series.

    ``.table``: one row per model coefficient, columns ``term, coef, std_error,
    estimate, ci_lower, ci_upper, statistic, p_value``. ``coef`` is on the model's
    scale (log rate for Poisson families); ``estimate`` and the CI are ``exp(coef)``
    (rate ratios) for Poisson families and ``coef`` for gaussian. Terms: ``Intercept``,
    ``time`` (the pre-interruption slope per time unit), ``level_change[k]`` and
    ``slope_change[k]`` per interruption, ``sin1``, ``cos1``, ... for the season.

    Attributes
    ----------
    effects
        One row per interruption and kind: ``interruption, at, kind, estimate,
        ci_lower, ci_upper, std_error, p_value`` with kind ``level_change``,
        ``slope_change`` and ``slope_after`` (the slope in the segment after it: the
        pre-slope plus all slope changes so far, a linear combination).
    fitted
        One row per time point: ``time, observed, fitted, counterfactual, rate,
        segment`` (``rate`` is observed/offset when an offset is given); the
        counterfactual sets every level and slope change to 0.
    family, season, period, newey_west_lags, scale_parameter
        The model settings; ``scale_parameter`` is the quasi-Poisson dispersion
        (Pearson chi^2 / df) or the gaussian residual variance.
    interruptions
        The times at which the series is interrupted.
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    time: str = "time"
    outcome: str = ""
    family: str = "gaussian"
    interruptions: tuple[float, ...] = ()
    season: int = 0
    period: float | None = None
    newey_west_lags: int | None = None
    scale_parameter: float = float("nan")
    offset: str | None = None
    effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    fitted: pd.DataFrame = field(default_factory=pd.DataFrame)
    _vcov: pd.DataFrame = field(default_factory=pd.DataFrame)

    _title = "Interrupted time series"

    def summary(self) -> str:
        """A few lines in words: each interruption's level and slope change."""
        pct = f"{self.conf_level:.0%}"
        ratio = self.family != "gaussian"
        lines = [f"{self.method}."]
        for _, r in self.effects.iterrows():
            what = {"level_change": "level change", "slope_change": "slope change",
                    "slope_after": "slope after"}[r["kind"]]
            unit = " (ratio)" if ratio else ""
            lines.append(f"Interruption {r['interruption']} at {r['at']}: {what}{unit} {r['estimate']:.4g} "
                         f"({pct} CI {r['ci_lower']:.4g} to {r['ci_upper']:.4g}), p = {r['p_value']:.3g}.")
        return "\n".join(lines)

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the coefficients (Newey-West when used; scaled for quasi-Poisson)."""
        return self._vcov.copy()

    def _display_table(self) -> pd.DataFrame:
        cols = ["term", "estimate", "ci_lower", "ci_upper", "p_value"]
        return self._table[cols]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the effects table (the fitted series included)."""
        out = ResultMixin.to_dict(self)
        out["effects"] = json_safe(self.effects)
        return out

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Observed series, fitted segments and the counterfactual (dashed) after the first
        interruption; vertical lines at the interruptions. Returns the Axes."""
        from recoverystats.plotting.synthesis import plot_interrupted_time_series

        return plot_interrupted_time_series(self, ax=ax, **kwargs)
