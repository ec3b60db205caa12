"""Result objects of :mod:`recoverystats.regression`.

``OddsRatioResult`` (adjusted odds ratios), ``RiskDifferenceResult`` and
``RiskRatioResult`` (g-computation), ``DiagnosticsResult`` (model checks). Like every
result they hold a tidy table plus metadata; the odds-ratio result additionally keeps
a private reference to the fitted numeric model (design matrix, outcome, coefficients)
so that ``risk_difference()``, ``risk_ratio()`` and ``diagnostics()`` can be computed
on demand. That private part holds no identifiers, is never serialised (``to_dict``,
HTML, Markdown) and is dropped by :meth:`OddsRatioResult.without_data`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.results.base import ResultMixin, json_safe
from recoverystats.results.render import render_html_table


@dataclass(frozen=True, slots=True, repr=False)
class OddsRatioResult(ResultMixin):
    """Adjusted odds ratios from a logistic model, one row per model coefficient.

    ``.table`` columns: ``term, log_odds, std_error, estimate, ci_lower, ci_upper,
    p_value`` then ``statistic, variable, reference, n, events, term_p_value``.
    The exposure's rows come first and the intercept last. ``estimate`` and the CI are
    odds ratios; ``reference`` is the reference level a categorical term is compared
    with; ``n``/``events`` count the rows (and events) at that level (or with a 0/1
    covariate equal to 1); ``term_p_value`` is the global test of a multi-column term.

    Attributes
    ----------
    outcome, exposure
        Column names of the outcome and the exposure (``None`` if not designated).
    n_events
        Number of rows with outcome 1.
    events_per_variable
        ``min(events, non-events) / number of non-intercept coefficients``.
    term_tests
        One row per multi-column term: ``term, df, statistic, p_value, test``.
    cluster, n_clusters, cluster_correction
        Cluster column, number of clusters and ``"CR1"``/``"CR2"`` (``None`` when
        model-based standard errors are used).
    loglik
        The maximised log-likelihood (penalised for Firth).
    formula
        The model formula that was fitted (patsy dialect).
    headline
        Set when ``method="auto"`` fitted Firth's penalised likelihood instead of
        maximum likelihood, e.g. ``"Firth (events per variable 3.7 < 5): set
        method='mle' for ML"``; printed as the first line of ``repr`` and of the HTML
        display. Empty otherwise.
    loglik_null
        Log-likelihood of the intercept-only model (penalised for Firth; NaN with
        sampling weights).
    aic, bic
        ``-2 loglik + 2k`` and ``-2 loglik + k log(n)`` (``n`` the participants, the
        sum of frequency weights); NaN for Firth and with sampling weights.
    weights, weight_type
        The case-weight column and ``"frequency"``/``"sampling"`` (``None`` if unweighted).
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    outcome: str = ""
    exposure: str | None = None
    n_events: int = 0
    events_per_variable: float = float("nan")
    term_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    cluster: str | None = None
    n_clusters: int | None = None
    cluster_correction: str | None = None
    loglik: float = float("nan")
    formula: str = ""
    headline: str = ""
    loglik_null: float = float("nan")
    aic: float = float("nan")
    bic: float = float("nan")
    weights: str | None = None
    weight_type: str | None = None
    _tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    _vcov: pd.DataFrame = field(default_factory=pd.DataFrame)
    _model: Any = field(default=None, compare=False)

    _title = "Adjusted odds ratios"

    @property
    def model_tests(self) -> pd.DataFrame:
        """Tests that every non-intercept coefficient is 0: ``test, statistic, df,
        df_denominator, p_value, robust``.

        ``"likelihood ratio"`` (against the intercept-only model; penalised for Firth;
        absent with sampling weights) and ``"wald"`` (``robust`` is True when the
        covariance is cluster-robust or a sampling-weight sandwich). The names are
        stable; R ``anova(glm(y ~ 1, binomial), fit, test = "LRT")`` gives the first.
        """
        return self._tests.copy()

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the log odds ratios over the terms, in table order (the one
        used for the SEs: cluster-robust or sandwich when those were requested)."""
        return self._vcov.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict including the model tests (the covariance matrix is left out)."""
        out = ResultMixin.to_dict(self)
        out["model_tests"] = json_safe(self._tests)
        return out

    def __repr__(self) -> str:
        text = ResultMixin.__repr__(self)
        return f"{self.headline}\n{text}" if self.headline else text

    def _repr_html_(self) -> str:
        caption = f"{self._title} ({self._meta_line()})"
        return render_html_table(self._display_table(), title=caption, notes=self.notes, headline=self.headline)

    def _display_table(self) -> pd.DataFrame:
        cols = ["term", "reference", "estimate", "ci_lower", "ci_upper", "p_value", "n", "events"]
        t = self._table[[c for c in cols if c in self._table.columns]]
        return t.rename(columns={"estimate": "odds_ratio"})

    # -- views -----------------------------------------------------------------------
    def inverted(self) -> OddsRatioResult:
        """The same result with the exposure's odds ratios inverted (1/OR).

        Evaluators quote both directions ("mentored participants had 0.6 times the
        odds" and "comparison participants had 1.7 times the odds"). For a categorical
        exposure each row becomes ``exposure[reference]`` compared with the former
        level (the ``reference`` column says which); for a numeric exposure the term
        reads ``exposure (0 vs 1)`` or ``exposure (per -1 unit)``. The log odds ratio
        changes sign and the CI limits swap; SEs and p-values are unchanged.
        """
        if self.exposure is None:
            from recoverystats.errors import InvalidParameterError

            raise InvalidParameterError(
                "inverted(): this result has no designated exposure; refit with exposure='column'."
            )
        t = self._table.copy()
        rows = t["variable"] == self.exposure
        main = rows & ~t["term"].astype(str).str.contains(":", regex=False)
        lo, hi = t.loc[main, "ci_lower"].copy(), t.loc[main, "ci_upper"].copy()
        t.loc[main, "log_odds"] = -t.loc[main, "log_odds"]
        t.loc[main, "estimate"] = 1.0 / t.loc[main, "estimate"]
        t.loc[main, "ci_lower"] = 1.0 / hi
        t.loc[main, "ci_upper"] = 1.0 / lo
        if "statistic" in t.columns:
            t.loc[main, "statistic"] = np.where(
                self.method.startswith("Firth"), t.loc[main, "statistic"], -t.loc[main, "statistic"]
            )
        new_terms = []
        new_refs = []
        for term, ref, is_main in zip(t["term"], t["reference"], main, strict=False):
            if not is_main:
                new_terms.append(term)
                new_refs.append(ref)
                continue
            if isinstance(ref, str) or (ref is not None and not pd.isna(ref)):
                level = str(term)[len(self.exposure) + 1 : -1]
                new_terms.append(f"{self.exposure}[{ref}]")
                new_refs.append(level)
            else:
                kind = getattr(self._model, "exposure_kind", None) if self._model is not None else None
                lv = getattr(self._model, "exposure_levels", ()) if self._model is not None else ()
                if kind == "binary" and len(lv) == 2:
                    new_terms.append(f"{term} ({lv[0]:g} vs {lv[1]:g})")
                else:
                    new_terms.append(f"{term} (per -1 unit)")
                new_refs.append(ref)
        t["term"] = new_terms
        t["reference"] = new_refs
        # n/events now describe the former reference group (every row's new "level")
        model = self._model
        if model is not None and not getattr(model, "pooled", False) and main.any():
            cols = [c for term in model.design.exposure_terms for c in term.columns]
            X = model.design.X
            if model.exposure_kind == "binary" and len(cols) == 1:
                ref_rows = X[:, cols[0]] == model.exposure_levels[0]
            else:
                ref_rows = ~(X[:, cols] != 0).any(axis=1)
            w = getattr(model, "weights", None)
            if w is not None and getattr(model, "weight_type", None) == "frequency":
                t.loc[main, "n"] = int(round(float(w[ref_rows].sum())))
                t.loc[main, "events"] = int(round(float((w * model.y)[ref_rows].sum())))
            else:
                t.loc[main, "n"] = int(ref_rows.sum())
                t.loc[main, "events"] = int(model.y[ref_rows].sum())
        else:
            t.loc[main, ["n", "events"]] = pd.NA
        note = f"Exposure odds ratios inverted (1/OR): odds of the outcome in the reference level relative to each level of {self.exposure!r}."
        return dataclasses.replace(self, _table=t, notes=(*self.notes, note))

    def without_data(self) -> OddsRatioResult:
        """A copy without the private fitted model (no design matrix is kept).

        ``risk_difference()``, ``risk_ratio()`` and ``diagnostics()`` are unavailable
        on the copy.
        """
        return dataclasses.replace(self, _model=None)

    def _need_model(self, what: str):
        if self._model is None:
            from recoverystats.errors import InvalidParameterError

            raise InvalidParameterError(
                f"{what}: this result was stripped of its fitted model (without_data()); "
                "refit with odds_ratios(...) to compute it."
            )
        return self._model

    # -- derived analyses --------------------------------------------------------------
    def risk_difference(
        self, *, n_boot: int = 0, seed: int | None = None, conf_level: float | None = None
    ) -> RiskDifferenceResult:
        """Adjusted risk difference(s) of the exposure by g-computation.

        See :func:`recoverystats.regression.standardised_effect` for the formulas.
        ``n_boot > 0`` gives percentile bootstrap intervals (cluster bootstrap when the
        model has a ``cluster``); otherwise delta-method intervals.
        """
        from recoverystats.regression._postfit import standardised_effect

        model = self._need_model("risk_difference()")
        if getattr(model, "pooled", False):  # multiple imputation: per data set, then Rubin's rules
            return model.standardised("rd", n_boot=n_boot, seed=seed, conf_level=conf_level)
        return standardised_effect(model, self, measure="rd",
                                   n_boot=n_boot, seed=seed, conf_level=conf_level)

    def risk_ratio(
        self, *, n_boot: int = 0, seed: int | None = None, conf_level: float | None = None
    ) -> RiskRatioResult:
        """Adjusted risk ratio(s) of the exposure by g-computation (CI on the log scale)."""
        from recoverystats.regression._postfit import standardised_effect

        model = self._need_model("risk_ratio()")
        if getattr(model, "pooled", False):
            return model.standardised("rr", n_boot=n_boot, seed=seed, conf_level=conf_level)
        return standardised_effect(model, self, measure="rr",
                                   n_boot=n_boot, seed=seed, conf_level=conf_level)

    def diagnostics(self, *, data: pd.DataFrame | None = None, groups: int = 10) -> DiagnosticsResult:
        """Discrimination, calibration, collinearity and events-per-variable checks.

        ``data`` (optional) evaluates AUC, Brier, Hosmer-Lemeshow and calibration on
        new rows (external validation) instead of the fitting data.
        """
        from recoverystats.regression._postfit import diagnostics

        model = self._need_model("diagnostics()")
        if getattr(model, "pooled", False):
            return model.diagnostics()
        return diagnostics(model, self, data=data, groups=groups)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Forest plot of the odds ratios (log axis, line at 1); returns the Axes."""
        from recoverystats.plotting.regression import plot_odds_ratios

        return plot_odds_ratios(self, ax=ax, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class _StandardisedResult(ResultMixin):
    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    exposure: str | None = None
    n_boot: int = 0
    seed: int | None = None

    def _display_table(self) -> pd.DataFrame:
        cols = ["comparison", "risk_exposed", "risk_reference", "estimate", "ci_lower", "ci_upper", "p_value"]
        return self._table[[c for c in cols if c in self._table.columns]]

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Forest plot of the effect(s) with their intervals; returns the Axes."""
        from recoverystats.plotting.regression import plot_standardised

        return plot_standardised(self, ax=ax, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class RiskDifferenceResult(_StandardisedResult):
    """Adjusted (marginally standardised) risk difference(s), one row per exposure level.

    ``.table`` columns: ``comparison, estimate, ci_lower, ci_upper, p_value`` then
    ``std_error, risk_exposed, risk_reference, level, reference``. ``estimate`` is a
    difference of proportions (0.12 = 12 more per 100 participants).
    """

    _title = "Adjusted risk difference (g-computation)"


@dataclass(frozen=True, slots=True, repr=False)
class RiskRatioResult(_StandardisedResult):
    """Adjusted (marginally standardised) risk ratio(s), one row per exposure level.

    ``.table`` columns: ``comparison, estimate, ci_lower, ci_upper, p_value`` then
    ``std_error`` (of the log risk ratio), ``risk_exposed, risk_reference, level,
    reference``.
    """

    _title = "Adjusted risk ratio (g-computation)"


@dataclass(frozen=True, slots=True, repr=False)
class DiagnosticsResult(ResultMixin):
    """Checks of a fitted logistic model.

    ``.table``: one row per measure — ``measure, estimate, ci_lower, ci_upper,
    statistic, df, p_value`` for ``auc``, ``brier``, ``hosmer_lemeshow``,
    ``calibration_intercept``, ``calibration_slope``, ``events_per_variable``.

    Attributes
    ----------
    vif
        One row per non-intercept design column: ``term, vif``, plus ``gvif``,
        ``gvif_df`` and ``gvif_adjusted`` (GVIF^(1/(2 df))) for the whole term.
    calibration
        The Hosmer-Lemeshow groups: ``group, n, observed, expected, mean_predicted,
        observed_rate``.
    events_per_variable
        ``min(events, non-events) / non-intercept coefficients``.
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    vif: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    events_per_variable: float = float("nan")

    _title = "Model diagnostics"

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Calibration plot: observed vs mean predicted risk by group; returns the Axes."""
        from recoverystats.plotting.regression import plot_calibration

        return plot_calibration(self, ax=ax, **kwargs)
