"""Inverse-probability-of-follow-up (non-response) weights: :func:`followup_weights`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from recoverystats._checks import as_column_list, check_columns, check_dataframe
from recoverystats._design import build_design, collinear_sets, model_spec
from recoverystats.errors import DataValidationError, EstimationError, InvalidParameterError
from recoverystats.missing.attrition import followed_up_indicator
from recoverystats.regression import _engine as E
from recoverystats.results.attrition import FollowupWeightsResult

__all__ = ["followup_weights", "kish_ess"]


def kish_ess(w: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of positive weights."""
    w = np.asarray(w, float)
    w = w[w > 0]
    s2 = float((w**2).sum())
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0


def _fit_stratum(data: pd.DataFrame, y: np.ndarray, adjust: list[str], label: str
                 ) -> tuple[np.ndarray, pd.DataFrame, np.ndarray, list[str]]:
    """Fitted P(followed up) of the rows of one stratum, its coefficient table and covariance."""
    notes: list[str] = []
    n, k = len(y), int(y.sum())
    if k == n:
        notes.append(f"{label}: everybody followed up; weights 1.")
        return np.ones(n), pd.DataFrame(columns=["term", "log_odds", "std_error"]), np.zeros((0, 0)), notes
    if not adjust:
        p = np.full(n, k / n)
        lo = np.log(k / (n - k))
        v = 1 / k + 1 / (n - k)
        return (p, pd.DataFrame({"term": ["Intercept"], "log_odds": [lo], "std_error": [np.sqrt(v)]}),
                np.array([[v]]), notes)
    spec = model_spec(data, func="followup_weights", adjust=adjust)
    design = build_design(data, spec)
    X = design.X
    sets = collinear_sets(X.T @ X, design.names)
    if sets:
        raise DataValidationError(
            f"followup_weights: {label}: perfectly collinear covariates "
            + "; ".join("{" + ", ".join(s) + "}" for s in sets)
            + ". Remove one of each set from adjust."
        )
    fit = E.fit_mle(X, y)
    if not fit.converged or not np.all(np.isfinite(fit.beta)) or np.max(np.abs(fit.eta)) > 30:
        raise EstimationError(
            f"followup_weights: {label}: the logistic model of follow-up did not converge (separation: some "
            "covariate pattern is always or never followed up, so its weight would be infinite). Use fewer or "
            "coarser covariates in adjust, or drop by= for this stratum."
        )
    coef = pd.DataFrame({"term": design.names, "log_odds": fit.beta, "std_error": np.sqrt(np.diag(fit.cov))})
    return fit.p, coef, fit.cov, notes


def followup_weights(
    df: pd.DataFrame,
    *,
    followed_up: str,
    adjust: str | Iterable[str],
    by: str | None = None,
    stabilize: bool = True,
    trim: float | None = None,
) -> FollowupWeightsResult:
    """Inverse-probability-of-follow-up (non-response) weights for follow-up outcomes.

    A logistic model of being followed up on baseline characteristics gives each
    participant's probability ``p̂`` of being followed up; each completer gets the weight
    ``1 / p̂`` (stabilised: ``P(followed up | stratum) / p̂``), each non-completer 0, so the
    completers stand in for the non-completers who resemble them. Analyse the follow-up
    outcome with these weights as *sampling* weights::

        w = followup_weights(df, followed_up="completed", adjust=["age", "risk_level"], by="group")
        odds_ratios(df.assign(w=w.weights), "abstinent", exposure="group",
                    weights="w", weight_type="sampling", missing="drop")

    Parameters
    ----------
    df
        One row per participant due for follow-up (completers and non-completers).
    followed_up
        1/0 (or True/False) column: followed up or not. No missing values.
    adjust
        Baseline characteristics that predict follow-up (numeric and boolean columns
        enter linearly, text or categorical ones as dummies, the coding of
        :func:`recoverystats.odds_ratios`). No missing values: impute them first
        (:func:`recoverystats.missing.impute`) or code "missing" as a level.
    by
        Optional group column (e.g. ``"group"``): a **separate** model is fitted in
        each group (equivalent to one model with every covariate interacted with the
        group), so follow-up may depend on the characteristics differently in each
        group, and stabilised weights use each group's own follow-up rate.
    stabilize
        Multiply ``1 / p̂`` by the (group's) observed follow-up rate (default True):
        weights then average about 1 among completers and sum to about the number of
        completers; False gives ``1 / p̂`` (summing to about the number due).
    trim
        ``None`` (default) or a quantile ``q`` in (0.5, 1): completers' weights above
        the ``q``-th quantile of the completers' weights (within each ``by`` group) are
        set to that quantile (truncation; Cole & Hernán 2008). The count is in
        ``.table`` (``n_trimmed``).

    Returns
    -------
    FollowupWeightsResult
        ``.weights`` (Series aligned to ``df.index``; use with
        ``weight_type="sampling"``), ``.probability`` (``p̂``), ``.coefficients``
        (the follow-up model per stratum), ``.table`` (per stratum and overall: n,
        completers, follow-up rate, smallest ``p̂``, mean/median/99th-percentile/maximum
        weight, sum of weights, Kish's effective sample size ESS and ESS / completers,
        weights trimmed) and ``.plot()`` (histogram of the weights).

    Raises
    ------
    InvalidParameterError
        Unknown columns, ``by`` in ``adjust``, a bad ``trim``.
    DataValidationError
        ``followed_up`` not 0/1 or missing, missing covariate values, a stratum with
        nobody followed up, collinear covariates.
    EstimationError
        The logistic model did not converge (separation: a weight would be infinite).

    Notes
    -----
    The weighted completers estimate the full sample's quantities when follow-up is
    missing at random given ``adjust`` (and ``by``) and every participant had a chance
    of being followed up (positivity). The model is the package's logistic engine (the
    fit of :func:`recoverystats.odds_ratios`, maximum likelihood, no Firth penalty);
    ``p̂`` equals statsmodels ``Logit(y, X).fit().predict()`` (tested to 1e-8). Kish's
    ESS ``(Σw)² / Σw²`` says how many unweighted completers the weighted ones are worth;
    a small ESS ratio or a few very large weights (``max_weight``) mean that a few
    completers stand for many non-completers and the weighted estimate is unstable.
    Sampling weights give sandwich (robust) standard errors in
    :func:`recoverystats.odds_ratios`, :func:`recoverystats.proportion` and
    :func:`recoverystats.hazard_ratios`; these treat the weights as known, which is
    conservative for inverse-probability weights estimated from the data (Lunceford &
    Davidian 2004).

    References
    ----------
    Robins JM, Rotnitzky A, Zhao LP (1995). Analysis of semiparametric regression models
    for repeated outcomes in the presence of missing data. JASA 90:106-121.
    Seaman SR, White IR (2013). Review of inverse probability weighting for dealing with
    missing data. Stat Methods Med Res 22:278-295.
    Cole SR, Hernán MA (2008). Constructing inverse probability weights for marginal
    structural models. Am J Epidemiol 168:656-664.
    Kish L (1965). *Survey Sampling*. Wiley.

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats.missing import followup_weights
    >>> d = pd.DataFrame({"fu": [1, 1, 0, 1, 1, 0, 1, 1], "risk": [0, 0, 0, 0, 1, 1, 1, 1]})
    >>> w = followup_weights(d, followed_up="fu", adjust=["risk"], stabilize=False)
    >>> w.weights.round(3).tolist()
    [1.333, 1.333, 0.0, 1.333, 1.333, 0.0, 1.333, 1.333]
    """
    check_dataframe(df)
    adjust_cols = as_column_list(adjust)
    check_columns(df, [followed_up], "followed_up")
    check_columns(df, adjust_cols, "adjust")
    if by is not None:
        if not isinstance(by, str):
            raise InvalidParameterError(f"by must be one column name; got {by!r}.")
        check_columns(df, [by], "by")
        if by in adjust_cols:
            raise InvalidParameterError(
                f"adjust: {by!r} is the by column (a separate model is fitted in each of its groups); remove it "
                "from adjust."
            )
    if followed_up in adjust_cols or followed_up == by:
        raise InvalidParameterError(f"followed_up column {followed_up!r} also appears in adjust/by; remove it.")
    if not isinstance(stabilize, (bool, np.bool_)):
        raise InvalidParameterError(f"stabilize must be True or False; got {stabilize!r}.")
    if trim is not None:
        try:
            q = float(trim)
        except (TypeError, ValueError):
            q = float("nan")
        if not 0.5 < q < 1.0:
            raise InvalidParameterError(
                f"trim must be None or a quantile between 0.5 and 1 (e.g. 0.99: weights above the 99th percentile "
                f"are set to it); got {trim!r}."
            )
        trim = q
    if not len(df):
        raise DataValidationError("followup_weights: df has no rows.")
    y_all = followed_up_indicator(df, followed_up)
    if np.isnan(y_all).any():
        raise DataValidationError(
            f"followed_up: column {followed_up!r} has {int(np.isnan(y_all).sum())} missing value(s); every row "
            "must be 1 (followed up) or 0 (not): keep only the participants due for follow-up."
        )
    cols = adjust_cols + ([by] if by else [])
    na = df[cols].isna().sum() if cols else pd.Series(dtype=int)
    na = na[na > 0]
    if len(na):
        raise DataValidationError(
            "followup_weights: missing values in the model columns ("
            + "; ".join(f"column {c!r}: {int(k)} missing" for c, k in na.items())
            + "). Impute them first (recoverystats.missing.impute) or code 'missing' as a level; a participant "
            "without a probability of follow-up cannot be weighted."
        )

    n = len(df)
    p = np.full(n, np.nan)
    w = np.zeros(n)
    notes: list[str] = []
    coef_parts = []
    cov_parts: list[tuple[list[str], np.ndarray]] = []
    rows = []
    if by is None:
        strata: list[tuple[str, np.ndarray]] = [("overall", np.ones(n, dtype=bool))]
    else:
        gv = df[by]
        try:
            levels = sorted(pd.unique(gv))
        except TypeError:
            levels = sorted(pd.unique(gv), key=str)
        strata = [(str(lv), (gv == lv).to_numpy(dtype=bool)) for lv in levels]
    n_trim_total = 0
    stratum = np.empty(n, dtype=object)
    for label, mask in strata:
        stratum[mask] = label
        y = y_all[mask]
        if y.sum() == 0:
            raise DataValidationError(
                f"followup_weights: nobody in {by!r} = {label!r} ({int(mask.sum())} rows) was followed up; "
                "no completer can stand in for them. Leave this group out or drop by=."
            )
        sub = df.loc[mask, adjust_cols] if adjust_cols else df.loc[mask, []]
        ps, coef, cov, more = _fit_stratum(sub, y, adjust_cols, label if by else "model")
        notes += more
        if len(coef):
            names = [f"{label}:{t}" if by else str(t) for t in coef["term"]]
            coef.insert(0, "stratum", label)
            coef_parts.append(coef)
            cov_parts.append((names, cov))
        p[mask] = ps
        num = y.mean() if stabilize else 1.0
        ws = np.where(y == 1.0, num / ps, 0.0)
        n_trim = 0
        if trim is not None:
            cap = float(np.quantile(ws[y == 1.0], trim))
            n_trim = int((ws > cap).sum())
            ws = np.minimum(ws, cap)
            n_trim_total += n_trim
        w[mask] = ws
        rows.append(_summary_row(label, y, ps, ws, n_trim))
    if by is not None:
        rows.append(_summary_row("overall", y_all, p, w, n_trim_total))
    table = pd.DataFrame(rows)
    names_all = [nm for names, _ in cov_parts for nm in names]
    vcov = pd.DataFrame(linalg.block_diag(*[c for _, c in cov_parts]) if cov_parts else np.zeros((0, 0)),
                        index=names_all, columns=names_all)
    coefs = pd.concat(coef_parts, ignore_index=True) if coef_parts else pd.DataFrame(
        columns=["stratum", "term", "log_odds", "std_error"])
    big = float(np.max(w)) if n else float("nan")
    if big > 10 * (1.0 if stabilize else 1.0 / max(y_all.mean(), 1e-12)):
        notes.append(f"Largest weight {big:.1f}: a few completers stand for many non-completers; check positivity "
                     "and consider trim=.")
    method = ("inverse probability of follow-up, logistic model"
              + (f" fitted separately in each {by!r} group" if by else "")
              + ("; stabilised by the" + (" group's" if by else "") + " follow-up rate" if stabilize else "")
              + (f"; truncated at the {trim:g} quantile" if trim is not None else ""))
    return FollowupWeightsResult(
        _table=table,
        conf_level=None,
        method=method,
        n_used=n,
        n_excluded=0,
        notes=tuple(notes),
        followed_up=followed_up,
        adjust=tuple(adjust_cols),
        by=by,
        stabilize=bool(stabilize),
        trim=trim,
        _weights=pd.Series(w, index=df.index, name="followup_weight"),
        _probability=pd.Series(p, index=df.index, name="p_followed_up"),
        _coefficients=coefs,
        _strata=pd.Series(stratum, index=df.index, name="stratum"),
        _vcov=vcov,
    )


def _summary_row(label: str, y: np.ndarray, p: np.ndarray, w: np.ndarray, n_trim: int) -> dict[str, Any]:
    wc = w[y == 1.0]
    ess = kish_ess(wc)
    return {
        "stratum": label,
        "n": int(len(y)),
        "n_followed_up": int(y.sum()),
        "followup_rate": float(y.mean()),
        "min_probability": float(np.min(p)),
        "mean_weight": float(wc.mean()),
        "median_weight": float(np.median(wc)),
        "p99_weight": float(np.quantile(wc, 0.99)),
        "max_weight": float(wc.max()),
        "sum_weights": float(wc.sum()),
        "ess": ess,
        "ess_ratio": ess / len(wc),
        "n_trimmed": int(n_trim),
    }
