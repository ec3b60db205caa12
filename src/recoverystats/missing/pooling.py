"""Rubin's rules: :func:`pool_estimates` (arrays) and :func:`pool` (result objects).

Pooling is written once here and works on any result that exposes its estimates and
their covariance (``.vcov``); the analysis functions do not have pooled variants of
their own (DESIGN §12). Hand-written: the formulas are a few lines, and statsmodels'
``MICE`` pools only its own fitted models (no Barnard-Rubin df with ``dfcom``, no fmi,
no D1 test).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from recoverystats._checks import check_conf_level
from recoverystats.errors import InvalidParameterError
from recoverystats.results.pooling import PooledResult

__all__ = ["pool_estimates", "pool", "rubin", "barnard_rubin_df", "d1_test", "MI_COLUMNS"]

#: Columns every pooled result table gains (after its own columns).
MI_COLUMNS = ("df", "riv", "lambda", "fmi", "ubar", "b", "total_variance", "m")


# ---------------------------------------------------------------------------
# the formulas
# ---------------------------------------------------------------------------
def barnard_rubin_df(m: int, b: np.ndarray, t: np.ndarray, dfcom: float = np.inf) -> np.ndarray:
    """Barnard & Rubin (1999) small-sample degrees of freedom of a pooled scalar.

    ``lambda = (1 + 1/m) b / t``; ``df_old = (m - 1) / lambda^2``; with finite
    ``dfcom``, ``df = (m - 1) * c / ((dfcom + 3)(m - 1) + lambda^2 c)`` where
    ``c = (1 - lambda)(1 + dfcom) dfcom`` (the algebraically equal form used by mice
    ``barnard.rubin``, finite also at ``lambda = 0``). With ``dfcom = inf`` the large-sample
    ``df_old`` (Rubin 1987).
    """
    b = np.asarray(b, dtype=float)
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = (1.0 + 1.0 / m) * b / t
        df_old = (m - 1) / lam**2
        if not np.isfinite(dfcom):
            return df_old
        c = (1.0 - lam) * (1.0 + dfcom) * dfcom
        return (m - 1) * c / ((dfcom + 3.0) * (m - 1) + lam**2 * c)


def rubin(
    estimates: np.ndarray, variances: np.ndarray, *, dfcom: float = np.inf
) -> dict[str, np.ndarray]:
    """Rubin's rules for ``k`` scalar estimands over ``m`` imputations.

    ``estimates`` is ``(m, k)``, ``variances`` ``(m, k)`` (squared SEs). Returns arrays
    of length ``k``: ``qbar, ubar, b, t, df, riv, lambda, fmi``, with
    ``t = ubar + (1 + 1/m) b``, ``riv = (1 + 1/m) b / ubar``, ``lambda = (1 + 1/m) b / t``
    and ``fmi = (riv + 2/(df + 3)) / (1 + riv)`` (as mice ``pool``).
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    m = q.shape[0]
    qbar = q.mean(axis=0)
    ubar = u.mean(axis=0)
    b = q.var(axis=0, ddof=1)
    t = ubar + (1.0 + 1.0 / m) * b
    df = barnard_rubin_df(m, b, t, dfcom)
    with np.errstate(divide="ignore", invalid="ignore"):
        riv = (1.0 + 1.0 / m) * b / ubar
        lam = (1.0 + 1.0 / m) * b / t
        fmi = (riv + 2.0 / (df + 3.0)) / (riv + 1.0)
    return {"qbar": qbar, "ubar": ubar, "b": b, "t": t, "df": df, "riv": riv, "lambda": lam, "fmi": fmi}


def d1_test(
    estimates: np.ndarray, covariances: np.ndarray, *, dfcom: float | None = None,
    null: np.ndarray | None = None,
) -> dict[str, Any]:
    """D1 multiparameter Wald test that ``k`` pooled parameters equal ``null`` (default 0).

    Li, Raghunathan & Rubin (1991), as mitml ``testModels(method = "D1")`` and mice
    ``D1``: with ``Qbar``, ``Ubar`` and ``B`` the mean estimate, mean covariance and
    between-imputation covariance,
    ``r = (1 + 1/m) tr(B Ubar^-1) / k`` and
    ``D1 = (Qbar - Q0)' Ubar^-1 (Qbar - Q0) / (k (1 + r))``, referred to ``F(k, v)``.
    With ``a = k (m - 1)``: ``v = 4 + (a - 4) (1 + (1 - 2/a) / r)^2`` when ``a > 4``,
    else ``a (1 + 1/k) (1 + 1/r)^2 / 2``; when ``dfcom`` is given, Reiter's (2007)
    small-sample ``v`` (mitml's ``df.com``; requires ``a > 4``).

    Returns ``statistic, df1, df2, p_value, riv, test``.
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(covariances, dtype=float)
    if q.ndim == 1:
        q = q[:, None]
    m, k = q.shape
    if u.shape != (m, k, k):
        raise InvalidParameterError(f"d1_test: covariances must be (m, k, k) = ({m}, {k}, {k}); got {u.shape}.")
    q0 = np.zeros(k) if null is None else np.asarray(null, dtype=float)
    qbar = q.mean(axis=0)
    ubar = u.mean(axis=0)
    bmat = np.atleast_2d(np.cov(q, rowvar=False, ddof=1))
    ubar_inv = np.linalg.inv(ubar)
    r = (1.0 + 1.0 / m) * float(np.trace(bmat @ ubar_inv)) / k
    d = qbar - q0
    stat = float(d @ ubar_inv @ d) / (k * (1.0 + r))
    a = k * (m - 1)
    if dfcom is not None and np.isfinite(dfcom) and a > 4:
        aa = r * a / (a - 2)
        vstar = (dfcom + 1.0) / (dfcom + 3.0) * dfcom
        c0 = 1.0 / (a - 4)
        c1 = vstar - 2.0 * (1.0 + aa)
        c2 = vstar - 4.0 * (1.0 + aa)
        z = (1.0 / c2
             + c0 * (aa**2 * c1 / ((1.0 + aa) ** 2 * c2))
             + c0 * (8.0 * aa**2 * c1 / ((1.0 + aa) * c2**2) + 4.0 * aa**2 / ((1.0 + aa) * c2))
             + c0 * (4.0 * aa**2 / (c2 * c1) + 16.0 * aa**2 * c1 / c2**3)
             + c0 * (8.0 * aa**2 / c2**2))
        v = 4.0 + 1.0 / z
        test = "D1 (Li, Raghunathan & Rubin 1991; Reiter 2007 df)"
    elif a > 4:
        v = 4.0 + (a - 4.0) * (1.0 + (1.0 - 2.0 / a) / r) ** 2 if r > 0 else np.inf
        test = "D1 (Li, Raghunathan & Rubin 1991)"
    else:
        v = a * (1.0 + 1.0 / k) * (1.0 + 1.0 / r) ** 2 / 2.0 if r > 0 else np.inf
        test = "D1 (Li, Raghunathan & Rubin 1991)"
    p = float(stats.f.sf(stat, k, v)) if np.isfinite(v) else float(stats.chi2.sf(stat * k, k))
    return {"statistic": stat, "df1": float(k), "df2": float(v), "p_value": p, "riv": r, "test": test}


# ---------------------------------------------------------------------------
# pool_estimates
# ---------------------------------------------------------------------------
def _as_estimates(estimates: Any) -> tuple[np.ndarray, list[str] | None]:
    if isinstance(estimates, pd.DataFrame):
        return estimates.to_numpy(dtype=float), [str(c) for c in estimates.columns]
    if isinstance(estimates, (list, tuple)) and estimates and isinstance(estimates[0], pd.Series):
        frame = pd.DataFrame(list(estimates))
        return frame.to_numpy(dtype=float), [str(c) for c in frame.columns]
    arr = np.asarray(estimates, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InvalidParameterError(
            f"pool_estimates: estimates must be m values or an (m, k) array (one row per imputation); "
            f"got an array of shape {arr.shape}."
        )
    return arr, None


def pool_estimates(
    estimates: Any,
    variances: Any,
    *,
    dfcom: float | None = None,
    terms: Sequence[str] | None = None,
    conf_level: float = 0.95,
) -> PooledResult:
    """Pool per-imputation estimates by Rubin's rules (with Barnard-Rubin df).

    Parameters
    ----------
    estimates
        One estimate per imputed data set (``m`` values), or ``(m, k)`` for ``k``
        parameters (a DataFrame's columns name the terms; a list of Series too).
    variances
        The squared standard errors, the same shape as ``estimates``, or ``m``
        covariance matrices ``(m, k, k)`` (a list of DataFrames such as ``.vcov``);
        with matrices the pooled ``.vcov`` is the full total covariance and
        ``.wald_test()`` (D1) is available.
    dfcom
        Complete-data degrees of freedom (``n - p`` for a regression, as mice's
        ``dfcom``); ``None`` assumes a large sample (``inf``).
    terms
        Names of the parameters (default: the DataFrame's columns, or ``"0", "1", ...``).
    conf_level
        Confidence level of the t(df) intervals.

    Returns
    -------
    PooledResult
        ``.table``: ``term, estimate, ci_lower, ci_upper, p_value, std_error, statistic,
        df, ubar, b, total_variance, riv, lambda, fmi, dfcom, m``.

    Notes
    -----
    With ``Q_i`` and ``U_i`` the estimate and its variance in data set ``i``:
    ``Qbar = mean(Q_i)``, ``Ubar = mean(U_i)``, ``B = var(Q_i)`` (divisor ``m - 1``),
    total variance ``T = Ubar + (1 + 1/m) B``, relative increase in variance
    ``riv = (1 + 1/m) B / Ubar``, ``lambda = (1 + 1/m) B / T``, Barnard-Rubin (1999) df
    (see :func:`barnard_rubin_df`), fraction of missing information
    ``fmi = (riv + 2/(df + 3)) / (1 + riv)``. Matches R mice ``pool()`` /
    ``pool.scalar(Q, U, n = dfcom + 1)``.

    Pool on the scale where the estimate is approximately normal: log odds / hazard
    ratios, the logit of a proportion, the complementary log-log of a survival
    probability.

    References
    ----------
    Rubin DB (1987). Multiple Imputation for Nonresponse in Surveys. Wiley.
    Barnard J, Rubin DB (1999). Small-sample degrees of freedom with multiple
    imputation. Biometrika 86:948-955.
    van Buuren S (2018). Flexible Imputation of Missing Data, 2nd ed., §2.3 and §5.3.

    Examples
    --------
    >>> from recoverystats import pool_estimates
    >>> r = pool_estimates([1.0, 1.2, 0.9, 1.1, 1.05], [0.04] * 5, dfcom=50)
    >>> round(float(r.table["estimate"].iloc[0]), 3), round(float(r.table["riv"].iloc[0]), 3)
    (1.05, 0.375)
    """
    conf_level = check_conf_level(conf_level)
    q, names = _as_estimates(estimates)
    m, k = q.shape
    if m < 2:
        raise InvalidParameterError(
            f"pool_estimates: Rubin's rules need estimates from at least 2 imputed data sets; got m = {m}. "
            "Impute more data sets (impute(..., m=20))."
        )
    covs: np.ndarray | None
    if isinstance(variances, (list, tuple)) and variances and isinstance(variances[0], pd.DataFrame):
        covs = np.stack([v.to_numpy(dtype=float) for v in variances])
    else:
        covs = np.asarray(variances, dtype=float)
    if covs.ndim == 1 and k == 1:
        covs = covs[:, None]
    if covs.shape == (m, k):
        var = covs
        covs = None
    elif covs.shape == (m, k, k):
        var = np.stack([np.diag(c) for c in covs])
    else:
        raise InvalidParameterError(
            f"pool_estimates: variances must have shape (m, k) = ({m}, {k}) (squared SEs) or (m, k, k) "
            f"(covariance matrices); got {covs.shape}."
        )
    if not np.isfinite(q).all() or not np.isfinite(var).all() or (var < 0).any():
        raise InvalidParameterError(
            "pool_estimates: every estimate must be finite and every variance finite and non-negative "
            "(an infinite log odds ratio under separation cannot be pooled; refit with method='firth')."
        )
    if dfcom is None:
        dfc = np.inf
    else:
        dfc = float(dfcom)
        if not dfc > 0:
            raise InvalidParameterError(f"pool_estimates: dfcom must be positive (or None for a large sample); got {dfcom!r}.")
    if terms is not None:
        names = [str(t) for t in terms]
        if len(names) != k:
            raise InvalidParameterError(f"pool_estimates: {len(names)} terms given for {k} parameters.")
    if names is None:
        names = [str(j) for j in range(k)]
    r = rubin(q, var, dfcom=dfc)
    table = _pooled_table(r, conf_level=conf_level)
    table.insert(0, "term", names)
    table["dfcom"] = dfc
    table["m"] = m
    first = ["term", "estimate", "ci_lower", "ci_upper", "p_value"]
    table = table[first + [c for c in table.columns if c not in first]]
    if covs is not None:
        bmat = np.atleast_2d(np.cov(q, rowvar=False, ddof=1))
        tmat = covs.mean(axis=0) + (1.0 + 1.0 / m) * bmat
    else:
        tmat = np.diag(r["t"])
    vcov = pd.DataFrame(tmat, index=names, columns=names)
    return PooledResult(
        _table=table, conf_level=conf_level, method="Rubin's rules (Barnard-Rubin df)", n_used=m,
        notes=(_df_note(dfc),), m=m, dfcom=dfc, _estimates=q, _covariances=covs, _vcov=vcov,
    )


def _df_note(dfc: float) -> str:
    if np.isfinite(dfc):
        return f"Barnard-Rubin (1999) degrees of freedom with complete-data df {dfc:g}."
    return "large-sample degrees of freedom (Rubin 1987; no complete-data df given)."


def _pooled_table(r: dict[str, np.ndarray], *, conf_level: float) -> pd.DataFrame:
    """estimate/CI/p (t with df) plus the MI columns, on the pooling scale."""
    se = np.sqrt(r["t"])
    df = r["df"]
    crit = _t_crit(df, conf_level)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = r["qbar"] / se
    p = _t_p(stat, df)
    return pd.DataFrame({
        "estimate": r["qbar"], "ci_lower": r["qbar"] - crit * se, "ci_upper": r["qbar"] + crit * se,
        "p_value": p, "std_error": se, "statistic": stat, "df": df, "ubar": r["ubar"], "b": r["b"],
        "total_variance": r["t"], "riv": r["riv"], "lambda": r["lambda"], "fmi": r["fmi"],
    })


def _t_crit(df: np.ndarray, conf_level: float) -> np.ndarray:
    df = np.asarray(df, dtype=float)
    a = 1.0 - conf_level
    # df = inf (no between-imputation variance) is the normal distribution
    return np.where(np.isfinite(df), stats.t.ppf(1.0 - a / 2.0, np.where(np.isfinite(df), df, 1.0)),
                    stats.norm.ppf(1.0 - a / 2.0))


def _t_p(stat: np.ndarray, df: np.ndarray) -> np.ndarray:
    df = np.asarray(df, dtype=float)
    return np.where(np.isfinite(df), 2.0 * stats.t.sf(np.abs(stat), np.where(np.isfinite(df), df, 1.0)),
                    2.0 * stats.norm.sf(np.abs(stat)))


# ---------------------------------------------------------------------------
# pool(results)
# ---------------------------------------------------------------------------
def pool(results: Sequence[Any], *, dfcom: float | None = None, times: Any = None) -> Any:
    """Pool a list of results, one per imputed data set, into one result of the same type.

    Parameters
    ----------
    results
        ``m >= 2`` results of the same analysis on each completed data set (e.g.
        ``[odds_ratios(d, ...) for d in imp]``). Supported: ``OddsRatioResult``,
        ``HazardRatioResult`` (pooled from their estimates and ``.vcov``),
        ``RateResult`` from ``proportion`` (pooled on the logit scale),
        ``ComparisonResult`` (risk differences on their own scale, risk and odds ratios
        on the log scale), ``SurvivalResult`` (S(t) at ``times=`` on the complementary
        log-log scale); any other result with a ``term`` column, coefficients
        (``log_odds``, ``log_hazard``, ``log_estimate``, ``coef`` or ``estimate``, the first
        found) and ``.vcov`` is pooled on that column into a ``PooledResult``.
    dfcom
        Complete-data degrees of freedom; default as mice: ``n - p`` for logistic
        models, ``events - p`` for Cox models, ``n - 1`` for a proportion, ``n1 + n0 - 2``
        for a comparison, the group size minus 1 for a survival probability.
    times
        Required for ``SurvivalResult``: the times at which S(t) is pooled.

    Returns
    -------
    The same result type, with pooled estimates, CIs from t(Barnard-Rubin df) and the
    columns ``df, riv, lambda, fmi, ubar, b, total_variance, m`` added to ``.table``
    (on the pooling scale), and a note saying what was pooled and on which scale.
    Multi-column terms of regression models get the D1 Wald test in ``term_tests``.

    Notes
    -----
    This is the one pooling path behind every analysis function called with an
    :class:`~recoverystats.missing.ImputedData`; ``pool_estimates`` holds the formulas.
    """
    from recoverystats.missing import dispatch

    res = list(results)
    if len(res) < 2:
        raise InvalidParameterError(
            f"pool: Rubin's rules need results from at least 2 imputed data sets; got {len(res)}."
        )
    kinds = {type(r) for r in res}
    if len(kinds) > 1:
        raise InvalidParameterError(
            f"pool: the results must all be of one type; got {sorted(k.__name__ for k in kinds)}."
        )
    return dispatch.pool_results(res, dfcom=dfcom, times=times)


def with_mi_columns(table: pd.DataFrame, r: dict[str, np.ndarray], m: int) -> pd.DataFrame:
    """Append the MI columns (``df, riv, lambda, fmi, ubar, b, total_variance, m``)."""
    t = table.copy()
    t["df"] = r["df"]
    t["riv"] = r["riv"]
    t["lambda"] = r["lambda"]
    t["fmi"] = r["fmi"]
    t["ubar"] = r["ubar"]
    t["b"] = r["b"]
    t["total_variance"] = r["t"]
    t["m"] = m
    return t


def replace_notes(result: Any, *notes: str) -> Any:
    """The result with notes appended (deduplicated)."""
    return dataclasses.replace(result, notes=tuple(dict.fromkeys((*result.notes, *notes))))
