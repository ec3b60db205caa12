"""Cox proportional-hazards regression (``hazard_ratios``)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from recoverystats._checks import as_column_list, check_columns, check_conf_level, check_option
from recoverystats._design import (
    build_design,
    check_one_column,
    collinear_sets,
    model_spec,
    singleton_clusters,
)
from recoverystats.errors import (
    DataValidationError,
    EstimationError,
    InvalidParameterError,
    SmallSampleWarning,
)
from recoverystats.results.survival import HazardRatioResult, _z
from recoverystats.survival._coxfit import (
    concordance,
    cox_loglik,
    cox_newton,
    cox_prepare,
    cox_schoenfeld,
    cox_score_residuals,
)
from recoverystats.survival._data import group_labels, prepare
from recoverystats.survival._km import WeightType, km_arrays

__all__ = ["hazard_ratios", "Ties"]

Ties = Literal["efron", "breslow"]
Missing = Literal["drop", "raise"]

_MIN_CLUSTERS = 20
#: |log HR| beyond which a coefficient is treated as diverging (HR > 22,000).
_MONOTONE = 10.0
#: A diverging coefficient is fixed at this many log units across the covariate's range
#: (a hazard ratio of e^60 between its extremes: its rows leave the risk sets numerically).
_INFINITE = 60.0
#: Condition number of the information matrix beyond which it is treated as singular.
_MAX_COND = 1e12
_MIN_EPV = 10


def hazard_ratios(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    exposure: str | None = None,
    adjust: str | Sequence[str] = (),
    formula: str | None = None,
    reference: Mapping[str, Any] | None = None,
    ties: Ties = "efron",
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    entry: str | None = None,
    weights: str | None = None,
    weight_type: WeightType = "frequency",
    missing: Missing = "drop",
    conf_level: float = 0.95,
) -> HazardRatioResult:
    """Cox proportional-hazards regression: hazard ratios with CIs and model tests.

    Parameters
    ----------
    df : DataFrame
        One row per participant (e.g. ``relapse(...)`` or ``recidivism(...)`` output
        joined to covariates), or an :class:`~recoverystats.missing.ImputedData` (the
        model is fitted to each imputed data set and pooled by Rubin's rules on the log
        hazard ratios).
    time, event : str
        Follow-up time and the 0/1 event indicator.
    exposure : str, optional
        The column of main interest (e.g. ``"group"``); its rows come first.
    adjust : str or list of str
        Adjustment covariates. Numeric columns enter linearly, booleans as 0/1, text
        or categorical columns as indicator terms ``col[level]`` against a reference
        level (``reference[col]``; by default the first category of a ``Categorical``,
        the first code of a coded data-model column such as ``risk_level`` (``low``),
        otherwise the first sorted value) -- the same coding as ``odds_ratios``.
    formula : str, optional
        Instead of ``exposure``/``adjust``: a patsy right-hand side such as
        ``"group + age + C(risk_level) + age:site"`` (a left-hand side is ignored).
    reference : dict, optional
        ``{column: reference level}`` for categorical columns (a numeric column named
        here is treated as categorical).
    ties : {"efron", "breslow"}
        Handling of tied event times (Efron is R's default; Breslow is SAS/Stata's).
    strata : str or list of str, optional
        Stratify the baseline hazard (R ``strata(site)``): a separate baseline hazard
        per stratum, common hazard ratios.
    cluster : str, optional
        Cluster-robust (sandwich) standard errors for correlated rows (e.g. several
        participants per mentor), as R ``coxph(..., cluster = mentor_id)``.
    entry : str, optional
        Delayed entry (left truncation): a person is in the risk set at t only when
        ``entry < t <= time`` (R ``Surv(entry, time, event)``), e.g. time measured from
        release for people who enrolled later. Must be < ``time``.
    weights : str, optional
        A column of non-negative case weights (R ``coxph(weights = w)``).
    weight_type : {"frequency", "sampling"}
        ``"frequency"`` (default): a row of weight k is k people (an aggregated table);
        every estimate, SE, test and the concordance equal those of the expanded data
        exactly (with Efron's ties the weights must be whole numbers: a tie group of
        events with total weight D is D tied events). ``"sampling"``: inverse-probability,
        balancing or follow-up weights; the weighted partial likelihood with R's form of
        Efron's correction and the robust (sandwich) variance of R ``coxph(weights = w,
        robust = TRUE)``, clustered by ``cluster`` when given (each row its own cluster
        otherwise). The likelihood-ratio and score tests then assume independent,
        unweighted rows; the ``"wald"`` and ``"robust score"`` tests do not.
    missing : {"drop", "raise"}
        ``"drop"`` (default) fits the complete cases: rows with a missing value in any
        column used (time, event, covariates, strata, entry) are excluded, counted in
        ``n_excluded`` and listed per column in ``notes``. Measure tables have missing
        ``time_days`` for people enrolled after ``as_of``, which this drops.
        ``"raise"`` stops with a ``DataValidationError`` naming each column and its
        count instead. (``odds_ratios`` raises by default, because a fixed-window table
        marks incomplete windows in ``eligible``, not by missing values.)
    conf_level : float
        Confidence level of the Wald intervals.

    Returns
    -------
    HazardRatioResult
        ``.table``: term, log_hazard, std_error, estimate (HR), ci_lower, ci_upper,
        p_value, statistic (z), variable, reference. ``.model_tests`` (test,
        statistic, df, p_value, variance: likelihood ratio, wald, score, and robust
        score when the variance is robust),
        ``.concordance``, ``.loglik``, ``.vcov``, ``.check_proportional_hazards()``,
        ``.plot()`` (forest plot).

    Notes
    -----
    Maximises the partial log-likelihood with Efron's approximation for d tied
    events at t_j: l(b) = sum_j [sum_{i in D_j} x_i b -
    sum_{l=0}^{d-1} log(sum_{R_j} e^{x b} - (l/d) sum_{D_j} e^{x b})] (Breslow: drop
    the l/d term), by Newton-Raphson with step halving from b = 0 (hand-written
    vectorised numpy, see ``_coxfit``). Model-based SEs are the inverse information;
    with ``cluster`` V = I^-1 (sum_c U_c U_c') I^-1 with U_c the summed score
    residuals of cluster c (no small-sample factor, as R ``coxph(cluster=)``; the
    score residuals are the Efron-consistent ones R uses). Tests: LR = 2(l(b) - l(0)),
    Wald = b' V^-1 b (robust V when clustered), score = U(0)' I(0)^-1 U(0), all
    chi-square on p df. Concordance is Harrell's C (within strata).
    With ``cluster`` the ``"wald"`` row of ``model_tests`` uses the robust V (its
    ``variance`` column says ``"robust"``) and a ``"robust score"`` row,
    U(0)' (sum_c U_c(0) U_c(0)')^-1 U(0), is added (R prints it as "Robust").
    Monotone likelihood (e.g. every event in one level): the term's log HR is +/-inf
    with no SE or Wald test; its p-value is the likelihood-ratio test of log HR = 0
    and its CI the profile-likelihood interval (one finite end); the other terms are
    estimated at the limit, and a note says so. Terms come in the order the formula
    writes them (the exposure's first).
    Matches R ``coxph(Surv(time, event) ~ ..., ties = "efron")``, lifelines
    ``CoxPHFitter`` and statsmodels ``PHReg``.
    Rows with missing values in any column used are excluded (counted in
    ``n_excluded``).

    Examples
    --------
    >>> from recoverystats.datasets import load_rossi
    >>> from recoverystats.survival import hazard_ratios
    >>> res = hazard_ratios(load_rossi(), time="week", event="arrest", exposure="fin",
    ...                     adjust=["age", "race", "wexp", "mar", "paro", "prio"])
    >>> round(res.loglik, 3), round(float(res.table["estimate"].iloc[0]), 3)
    (-658.748, 0.684)
    """
    if type(df).__name__ == "ImputedData":  # multiple imputation: each data set, pooled (Rubin's rules)
        from recoverystats.missing.dispatch import pooled_call

        return pooled_call(hazard_ratios, locals())
    check_option("ties", ties, Ties)
    check_option("weight_type", weight_type, WeightType)
    if weight_type == "sampling" and weights is None:
        raise InvalidParameterError(
            "weight_type='sampling' needs weights= (the column of sampling weights); got weights=None."
        )
    check_option("missing", missing, Missing)
    level = check_conf_level(conf_level)
    strata_cols = as_column_list(strata)
    rhs = None
    if formula is not None:
        if not isinstance(formula, str):
            raise InvalidParameterError(f"formula must be a string such as 'group + age'; got {formula!r}.")
        rhs = formula.split("~", 1)[1] if "~" in formula else formula
    # the same columns, coding and messages as odds_ratios (recoverystats._design)
    spec = model_spec(df, func="hazard_ratios", exposure=exposure, adjust=adjust, formula=formula, rhs=rhs,
                      reference=reference)
    model_cols = spec.used
    if strata_cols:
        check_columns(df, strata_cols, "strata")
    if cluster is not None:
        check_one_column(df, cluster, "cluster")
    if entry is not None:
        check_one_column(df, entry, "entry")
    if weights is not None:
        check_one_column(df, weights, "weights")
    cluster_note = None
    if cluster is not None:
        df, cluster_note = singleton_clusters(df, cluster)
    others = [*model_cols, *strata_cols, *([cluster] if cluster else []), *([entry] if entry else []),
              *([weights] if weights else [])]
    prep = prepare(df, time=time, event=event, others=others)
    if missing == "raise" and prep.n_excluded:
        used = dict.fromkeys([time, event, *others])
        counts = {c: int(df[c].isna().sum()) for c in used}
        raise DataValidationError(
            "hazard_ratios: missing values in model columns (pass missing='drop' to fit complete cases, "
            "or impute first).",
            [f"column {c!r}: {k} missing" for c, k in counts.items() if k],
        )
    frame, t, e = prep.frame, prep.time, prep.event
    notes = list(prep.notes) + ([cluster_note] if cluster_note else [])
    n_excluded = prep.n_excluded
    if weights is not None:
        wcol = pd.to_numeric(frame[weights], errors="coerce").to_numpy(dtype=float)
        zero = wcol == 0
        if zero.any():  # a row of weight 0 stands for nobody (and must not create a level or a time)
            keep = ~zero
            frame, t, e = frame.loc[keep], t[keep], e[keep]
            n_excluded += int(zero.sum())
            notes.append(f"{int(zero.sum())} row(s) with weight 0 in {weights!r} excluded.")
    design = build_design(frame, spec, intercept=False)
    # a stratifying column as a main effect has no hazard ratio (its interactions, e.g. AGE:SITE, do)
    both = [c for c in strata_cols if any(t.variable == c for t in design.terms)]
    if both:
        raise InvalidParameterError(
            f"strata: column(s) {', '.join(map(repr, both))} also appear as covariate terms; a stratified Cox "
            "model has a separate baseline hazard per stratum, so the stratifying column itself has no hazard "
            "ratio. Remove it from exposure/adjust/formula (interactions with it may stay), or from strata."
        )
    order = design.order()  # the exposure's columns first, then as the formula writes them
    x = np.ascontiguousarray(design.X[:, order])
    names = [design.names[c] for c in order]
    variables, refs = design.column_info()
    coding = ([variables[c] for c in order], [refs[c] for c in order])
    n = len(frame)
    factors = prep.factors
    p = x.shape[1]
    if p == 0:
        raise InvalidParameterError("the model has no covariate columns after coding; check exposure/adjust/formula.")
    if e.sum() == 0:
        raise EstimationError(
            f"no events in {event!r} (everyone is censored): a Cox model cannot be estimated. "
            "Check the event coding (1 = event) or lengthen follow-up."
        )
    sd = x.std(axis=0)
    const = [j for j in range(p) if not sd[j] > 1e-12 * max(1.0, np.abs(x[:, j]).max())]
    if const:
        raise InvalidParameterError(
            f"covariate(s) {', '.join(repr(names[j]) for j in const)} take a single value in the {n} rows "
            f"analysed (every row has {', '.join(f'{names[j]} = {x[0, j]:g}' for j in const)}); "
            "drop them from the model (a constant has no hazard ratio)."
        )
    w = None
    if weights is not None:
        w = pd.to_numeric(frame[weights], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(w) | (w < 0)
        if weight_type == "frequency" and ties == "efron":
            bad |= np.abs(w - np.rint(w)) > 1e-9
        if bad.any():
            shown = pd.unique(frame[weights].to_numpy()[bad])[:5].tolist()
            rows = ", ".join(map(str, frame.index[bad][:10]))
            need = ("whole numbers >= 0 (frequency weights with Efron's ties: a weight counts people; use "
                    "ties='breslow' or weight_type='sampling' for fractional weights)"
                    if weight_type == "frequency" and ties == "efron" else "non-negative finite numbers")
            raise DataValidationError(
                f"weights: column {weights!r} must hold {need}; {int(bad.sum())} row(s) do not (values such as "
                f"{shown!r}; rows {rows}). Fix or drop those rows."
            )
        if not (w[e > 0] > 0).any():
            raise EstimationError(
                f"no events with a positive weight in {weights!r}: a Cox model cannot be estimated."
            )
    s_codes, s_keys = group_labels(frame, strata_cols, factors)
    with _single_threaded_blas():
        ent = None
        if entry is not None:
            ent = pd.to_numeric(frame[entry], errors="coerce").to_numpy(dtype=float)
            bad = ~(ent < t)
            if bad.any():
                rows = ", ".join(map(str, frame.index[bad][:10]))
                raise DataValidationError(
                    f"entry: column {entry!r} must be earlier than {time!r} (a person enters follow-up before "
                    f"leaving it); {int(bad.sum())} row(s) have entry >= time (rows {rows}). Fix or drop them."
                )
            notes.append(f"delayed entry at {entry!r}: at risk at t when {entry} < t <= {time}; "
                         "the concordance ignores delayed entry.")
        return _fit_and_report(frame, t, e, x, names, coding, s_codes, strata_cols, cluster, factors, ties,
                               level, ent, notes, n_excluded, event, w,
                               weight_type if weights is not None else None, weights)


def _monotone_terms(data: Any, fit: Any, span: np.ndarray, fixed: np.ndarray) -> dict[int, float]:
    """Coefficients whose partial likelihood still rises as they move further out: {index: sign}.

    A candidate has |beta| x (its covariate's range) > ``_MONOTONE``; it is monotone when
    moving it ``_MONOTONE / range`` further in the same direction does not lower the
    log-likelihood (for a large finite estimate the log-likelihood falls steeply).
    """
    out: dict[int, float] = {}
    ll = cox_loglik(data, fit.beta)
    for j in range(len(span)):
        b = fit.beta[j]
        if fixed[j] or not np.isfinite(b) or abs(b) * span[j] <= _MONOTONE:
            continue
        further = fit.beta.copy()
        further[j] += np.sign(b) * _MONOTONE / span[j]
        if cox_loglik(data, further) >= ll - 1e-9 * max(1.0, abs(ll)):
            out[j] = float(np.sign(b))
    return out


def _profile_likelihood(data: Any, fit: Any, free: np.ndarray, j: int, sgn: float, span: float,
                        level: float) -> tuple[float, float]:
    """LR statistic of beta_j = 0 and the finite end of the profile-likelihood CI of a monotone beta_j.

    D(b) = 2 (l_max - max_{others} l(beta_j = b)), with l_max the limit of the partial
    log-likelihood (``fit`` has beta_j, and any other monotone coefficient, fixed at
    "infinity"; the others stay there while the ``free`` ones are maximised); the interval is
    {b : D(b) <= chi2_1(level)}, unbounded on the diverging side. Returns (D(0), bound);
    the bound is NaN if D stays below the cut-off within 64 range units.
    """
    from scipy.optimize import brentq

    crit = float(stats.chi2.ppf(level, 1))

    def deviance(b: float) -> float:
        start = fit.beta.copy()
        start[j] = b
        prof = cox_newton(data, start=start, free=free)
        return 2.0 * (fit.loglik - prof.loglik)

    d0 = deviance(0.0)
    if not np.isfinite(d0):
        return float("nan"), float("nan")
    try:  # a profile fit that breaks down numerically (NaN) leaves the bound undefined
        if d0 >= crit:
            bound = brentq(lambda b: deviance(b) - crit, 0.0, float(fit.beta[j]), xtol=1e-10)
            return d0, float(bound)
        prev, step = 0.0, 1.0 / span
        while step <= 64.0 / span:
            b = -sgn * step
            if deviance(b) >= crit:
                return d0, float(brentq(lambda x: deviance(x) - crit, prev, b, xtol=1e-10))
            prev, step = b, step * 2.0
    except ValueError:
        pass
    return d0, float("nan")


def _single_threaded_blas() -> Any:
    """The fit is many small BLAS calls, where BLAS threads only add overhead (often 2x)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _fit_and_report(frame: pd.DataFrame, t: np.ndarray, e: np.ndarray, x: np.ndarray, names: list[str],
                    coding: tuple[list[Any], list[Any]], s_codes: np.ndarray, strata_cols: list[str], cluster: str | None, factors: dict | None,
                    ties: str, level: float, ent: np.ndarray | None, notes: list[str], n_excluded: int,
                    event: str, w: np.ndarray | None = None, weight_type: str | None = None,
                    weights: str | None = None) -> HazardRatioResult:
    n, p = x.shape
    xc = x - x.mean(axis=0)
    data = cox_prepare(xc, t, e, s_codes, ties, ent, w, weight_type or "frequency")
    robust = cluster is not None or weight_type == "sampling"
    fit = cox_newton(data)
    span = np.ptp(xc, axis=0)  # > 0: constant columns were rejected
    fixed = np.zeros(p, dtype=bool)
    sign = np.zeros(p)
    for _ in range(p):  # fix each diverging coefficient at "infinity", refit the others
        new = _monotone_terms(data, fit, span, fixed)
        if not new:
            break
        start = fit.beta.copy()
        for j, sgn in new.items():
            fixed[j], sign[j] = True, sgn
            start[j] = sgn * _INFINITE / span[j]
        fit = cox_newton(data, start=start, free=~fixed)
    free = np.flatnonzero(~fixed)
    mono = np.flatnonzero(fixed)
    beta = fit.beta
    info_free = fit.info[np.ix_(free, free)]
    try:
        cond = float(np.linalg.cond(info_free)) if len(free) else 1.0
    except np.linalg.LinAlgError:
        cond = np.inf
    if not fit.converged or not np.all(np.isfinite(beta)):
        raise EstimationError(
            f"the Cox model did not converge in {fit.iterations} Newton-Raphson iterations "
            f"(largest |log HR| {np.nanmax(np.abs(beta[free])) if len(free) else np.nan:.3g}). Check for "
            "covariates that perfectly separate early from late events, sparse categorical levels, or collinear terms."
        )
    if not np.isfinite(cond) or cond > _MAX_COND:
        sets = collinear_sets(xc.T @ xc, names)
        which = ("perfectly collinear: " + "; ".join("{" + ", ".join(s_) + "}" for s_ in sets) + ". "
                 if sets else f"the terms involved could not be isolated (terms: {', '.join(names)}). ")
        raise EstimationError(
            "the information matrix is singular: some terms are collinear (or constant within every "
            f"stratum): {which}Remove one term from each set, or the strata that make a term constant."
        )
    v_free = np.linalg.inv(info_free) if len(free) else np.zeros((0, 0))
    v_model = np.full((p, p), np.nan)
    v_model[np.ix_(free, free)] = v_free
    big = [names[j] for j in free if abs(beta[j]) > _MONOTONE]
    if big:
        notes.append(
            f"very large log hazard ratio(s) for {', '.join(big)}: check the covariate's scale and coding; "
            "treat these rows with caution."
        )
    n_clusters = None
    v = v_model.copy()
    cl_codes = None
    if robust:
        u = cox_score_residuals(data, beta)
        dfbeta = u[:, free] @ v_free
        if cluster is not None:
            cl_codes, cl_keys = group_labels(frame, [cluster], factors)
            n_clusters = len(cl_keys)
        else:  # sampling weights without clusters: every row is its own cluster
            cl_codes, n_clusters = np.arange(n), n
        summed = np.zeros((n_clusters, len(free)))
        np.add.at(summed, cl_codes, dfbeta)
        v[np.ix_(free, free)] = summed.T @ summed
        if cluster is not None:
            notes.append(f"cluster-robust (sandwich) standard errors over {n_clusters} clusters of {cluster!r}.")
        else:
            notes.append("robust (sandwich) standard errors for the sampling weights (R coxph(robust = TRUE)).")
        if cluster is not None and n_clusters < _MIN_CLUSTERS:
            msg = (f"only {n_clusters} clusters in {cluster!r}: sandwich standard errors are unreliable with "
                   f"fewer than {_MIN_CLUSTERS} clusters.")
            notes.append(msg)
            warnings.warn(msg, SmallSampleWarning, stacklevel=3)
    se = np.sqrt(np.diag(v))
    z = _z(level)
    zstat = beta / se
    pvals = 2 * stats.norm.sf(np.abs(zstat))
    shown = beta.copy()
    ci_lo, ci_hi = np.exp(beta - z * se), np.exp(beta + z * se)
    for j in mono:  # infinite estimate: LR test and profile-likelihood interval instead of Wald
        lr_j, bound = _profile_likelihood(data, fit, ~fixed, j, sign[j], span[j], level)
        shown[j] = sign[j] * np.inf
        pvals[j] = float(stats.chi2.sf(lr_j, 1))
        if sign[j] < 0:
            ci_lo[j], ci_hi[j] = 0.0, np.exp(bound)
        else:
            ci_lo[j], ci_hi[j] = np.exp(bound), np.inf
        side = "upper" if sign[j] < 0 else "lower"
        notes.append(
            f"monotone likelihood for {names[j]}: the partial likelihood keeps increasing as its log hazard "
            f"ratio goes to {'-' if sign[j] < 0 else '+'}infinity (e.g. no events in one level), so the hazard "
            f"ratio is {'0' if sign[j] < 0 else 'infinite'} and has no standard error or Wald test. Its p-value "
            f"is the likelihood-ratio test of log HR = 0 (chi-square {lr_j:.4g} on 1 df) and its CI the "
            f"profile-likelihood interval, whose finite {side} limit is {np.exp(bound):.4g} (where "
            f"2 (l_max - l_profile) = {stats.chi2.ppf(level, 1):.4g}); the other terms are estimated at that limit. "
            "Firth's penalised Cox model (R coxphf) is an alternative that gives a finite estimate."
        )
    se[mono] = np.nan
    zstat[mono] = np.nan
    table = pd.DataFrame({"term": names, "log_hazard": shown, "std_error": se, "estimate": np.exp(shown),
                          "ci_lower": ci_lo, "ci_upper": ci_hi,
                          "p_value": pvals, "statistic": zstat,
                          "variable": pd.Series(coding[0], dtype="object"),
                          "reference": pd.Series([None if r is None else str(r) for r in coding[1]], dtype="object")})
    if robust:
        table["std_error_model"] = np.sqrt(np.diag(v_model))
    lr = 2 * (fit.loglik - fit.loglik_null)
    try:
        wald = float(beta @ np.linalg.solve(v, beta)) if not len(mono) else float("nan")
    except np.linalg.LinAlgError:
        wald = float("nan")
    if len(mono):
        notes.append("the Wald test of the model is undefined with an infinite estimate (NaN); use the "
                     "likelihood-ratio test, which is 2 (l_max - l(0)) with l_max the limit of the partial "
                     "log-likelihood.")
    score = float(fit.score_null @ np.linalg.solve(fit.info_null, fit.score_null))
    labels = ["likelihood ratio", "wald", "score"]
    variances = ["model", "robust" if robust else "model", "model"]
    values = [lr, wald, score]
    if robust:
        # robust score test (R coxph prints it as "Robust"): U(0)' (sum_c U_c(0) U_c(0)')^-1 U(0)
        # with U_c(0) the score residuals at beta = 0 summed within cluster c
        u0 = np.zeros((n_clusters, p))
        np.add.at(u0, cl_codes, cox_score_residuals(data, np.zeros(p)))  # type: ignore[arg-type]
        try:
            robust_score = float(fit.score_null @ np.linalg.solve(u0.T @ u0, fit.score_null))
        except np.linalg.LinAlgError:
            robust_score = float("nan")
        labels.append("robust score")
        variances.append("robust")
        values.append(robust_score)
    tests = pd.DataFrame({"test": labels, "statistic": values, "df": [p] * len(values),
                          "p_value": [float(stats.chi2.sf(s_, p)) for s_ in values], "variance": variances})
    risk = xc @ beta
    c_index, n_pairs = concordance(t, e, risk, s_codes, w)
    if n_pairs == 0:
        notes.append("no comparable pairs (e.g. every time tied): concordance is undefined (NaN).")
    ph = _ph_tests(data, beta, v_free, t, e, names, free, w)
    # frequency weights: events are people (as the expanded data); sampling weights: event rows
    n_events = int(round(float(w[e > 0].sum()))) if weight_type == "frequency" else int((e > 0).sum())
    if weight_type == "frequency":
        notes.append(f"frequency weights from {weights!r}: a row of weight k counts as k people (the same "
                     "results as the expanded data).")
    elif weight_type == "sampling":
        notes.append(f"sampling weights from {weights!r}: weighted partial likelihood (R's Efron form); the "
                     "likelihood-ratio and score tests assume independent unweighted rows, the Wald and robust "
                     "score tests use the robust variance.")
    if n_events / p < _MIN_EPV:
        notes.append(f"{n_events} events for {p} terms (< {_MIN_EPV} events per term): estimates may be "
                     "biased and unstable.")
    if len(np.unique(t[e > 0])) < int((e > 0).sum()) or (weight_type == "frequency" and (w[e > 0] > 1).any()):
        notes.append(f"tied event times handled by the {ties.capitalize()} method.")
    vdf = pd.DataFrame(v, index=names, columns=names)
    vmdf = pd.DataFrame(v_model, index=names, columns=names)
    method = f"cox ({ties} ties" + (", delayed entry" if ent is not None else "") + \
        (f", strata {', '.join(strata_cols)}" if strata_cols else "") + \
        (f", {weight_type} weights" if weight_type else "") + \
        (f", cluster-robust by {cluster}" if cluster else (", robust" if robust else "")) + ")"
    return HazardRatioResult(
        _table=table, conf_level=level, method=method, n_used=n, n_excluded=n_excluded,
        notes=tuple(notes), ties=ties, n_events=n_events, loglik=fit.loglik, loglik_null=fit.loglik_null,
        concordance=c_index, strata=tuple(strata_cols), cluster=cluster, n_clusters=n_clusters,
        iterations=fit.iterations, _tests=tests, _vcov=vdf, _vcov_model=vmdf, _ph=ph,
    )


def _ph_tests(data: Any, beta: np.ndarray, v: np.ndarray, time: np.ndarray, event: np.ndarray,
              names: list[str], keep: np.ndarray, weights: np.ndarray | None = None) -> pd.DataFrame:
    """Grambsch-Therneau tests for all four time transforms (computed once, kept aggregated).

    Only the ``keep`` terms (those with a finite estimate; ``v`` is their covariance) are
    tested. With case weights each event row counts w_i times (d = sum of the weights,
    weighted centring and sums, the weighted KM and weighted mid-ranks), which is the
    expanded data's test for frequency weights.
    """
    resid, te, wt = cox_schoenfeld(data, beta, time)
    resid = resid[:, keep]
    names = [names[j] for j in keep]
    d = float(wt.sum())
    p = len(names)
    rows = []
    if len(te) < 2 or d < 2:
        return pd.DataFrame(columns=["transform", "term", "rho", "statistic", "df", "p_value"])
    km = km_arrays(time, event, weights)
    s_left = np.concatenate(([1.0], km["estimate"][:-1]))
    km_left = s_left[np.searchsorted(km["time"], te)]
    ut, inv = np.unique(te, return_inverse=True)
    w_u = np.bincount(inv, weights=wt)
    mid_rank = (np.cumsum(w_u) - w_u + (w_u + 1.0) / 2.0)[inv]  # average rank in the expanded data
    transforms = {
        "km": 1.0 - km_left,
        "identity": te,
        "rank": mid_rank,
        "log": np.log(np.where(te > 0, te, np.nan)),
    }
    r2 = resid @ v * d  # scaled Schoenfeld residuals (without the + beta, which cancels)
    for name, g in transforms.items():
        if not np.all(np.isfinite(g)):
            continue
        xx = g - (wt @ g) / d
        sxx = float(wt @ xx**2)
        if sxx == 0:
            continue
        test = (wt * xx) @ r2
        zk = test**2 / (np.diag(v) * d * sxx)
        rc = r2 - (wt @ r2) / d
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = ((wt * xx) @ rc) / np.sqrt(sxx * (wt @ rc**2))
        for k in range(p):
            rows.append({"transform": name, "term": names[k], "rho": rho[k], "statistic": zk[k], "df": 1,
                         "p_value": float(stats.chi2.sf(zk[k], 1))})
        tg = (wt * xx) @ resid
        glob = float(tg @ v @ tg * d / sxx)
        rows.append({"transform": name, "term": "GLOBAL", "rho": np.nan, "statistic": glob, "df": p,
                     "p_value": float(stats.chi2.sf(glob, p))})
    return pd.DataFrame(rows, columns=["transform", "term", "rho", "statistic", "df", "p_value"])
