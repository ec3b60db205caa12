"""k-sample tests of equal survival: log-rank and its weighted relatives (``compare_survival``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from recoverystats._checks import as_column_list, check_columns, check_option
from recoverystats.errors import EstimationError, InvalidParameterError
from recoverystats.results.survival import TestResult
from recoverystats.survival._data import group_labels, prepare

__all__ = ["compare_survival", "SurvivalTestWeights"]

SurvivalTestWeights = Literal["logrank", "wilcoxon", "tarone-ware", "peto", "fleming-harrington"]

_NAMES = {
    "logrank": "log-rank",
    "wilcoxon": "Gehan-Breslow (generalised Wilcoxon)",
    "tarone-ware": "Tarone-Ware",
    "peto": "Peto-Peto",
    "fleming-harrington": "Fleming-Harrington",
}


def _stratum_scores(
    t: np.ndarray, e: np.ndarray, g: np.ndarray, k: int, weights: str, fh_p: float, fh_q: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted O - E (length k), its covariance (k x k), and unweighted O and E per group."""
    times, inv = np.unique(t, return_inverse=True)
    m = len(times)
    removed = np.bincount(g * m + inv, minlength=k * m).reshape(k, m).astype(float)
    died = np.bincount(g * m + inv, weights=e, minlength=k * m).reshape(k, m)
    n_g = removed.sum(axis=1, keepdims=True) - np.concatenate(
        (np.zeros((k, 1)), np.cumsum(removed, axis=1)[:, :-1]), axis=1)
    n = n_g.sum(axis=0)
    d = died.sum(axis=0)
    keep = d > 0
    n_g, died, n, d = n_g[:, keep], died[:, keep], n[keep], d[keep]
    if weights == "logrank":
        w = np.ones_like(n)
    elif weights == "wilcoxon":
        w = n.copy()
    elif weights == "tarone-ware":
        w = np.sqrt(n)
    elif weights == "peto":
        w = np.cumprod(1.0 - d / (n + 1.0))
    else:  # fleming-harrington, pooled KM just before each event time
        s = np.cumprod(1.0 - d / n)
        s_minus = np.concatenate(([1.0], s[:-1]))
        w = s_minus**fh_p * (1.0 - s_minus) ** fh_q
    frac = n_g / n
    expected = frac * d
    z = ((died - expected) * w).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(n > 1, d * (n - d) / (n - 1.0), 0.0) * w**2
    # V_gh = sum_j factor_j * frac_gj (delta_gh - frac_hj)
    v = np.diag((frac * factor).sum(axis=1)) - (frac * factor) @ frac.T
    return z, v, died.sum(axis=1), expected.sum(axis=1)


def compare_survival(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    group: str,
    strata: str | Sequence[str] | None = None,
    weights: SurvivalTestWeights = "logrank",
    fh_p: float = 1.0,
    fh_q: float = 0.0,
) -> TestResult:
    """Test that survival is the same in every group (log-rank family, optionally stratified).

    Parameters
    ----------
    df : DataFrame
        One row per participant.
    time, event : str
        Follow-up time and the 0/1 event indicator.
    group : str
        The column defining the groups compared (two or more levels).
    strata : str or list of str, optional
        Stratify: scores and variances are computed within each stratum and summed
        (R ``survdiff(... + strata(site))``).
    weights : {"logrank", "wilcoxon", "tarone-ware", "peto", "fleming-harrington"}
        Weight w_j at each event time: 1 (log-rank); n_j (Gehan-Breslow generalised
        Wilcoxon, emphasises early differences); sqrt(n_j) (Tarone-Ware);
        prod_{i<=j} (1 - d_i/(n_i+1)) (Peto-Peto); S(t_j-)^p (1 - S(t_j-))^q with S
        the pooled Kaplan-Meier (Fleming-Harrington G(p, q); p = 1, q = 0 is R's
        ``survdiff(rho = 1)``).
    fh_p, fh_q : float
        The Fleming-Harrington exponents (only used with ``weights="fleming-harrington"``).

    Returns
    -------
    TestResult
        ``.table``: statistic, df, p_value, test. ``.by_group``: group, n, observed,
        expected (unweighted log-rank expectation), o_minus_e_weighted.

    Notes
    -----
    With d_gj events and n_gj at risk in group g at event time t_j (d_j, n_j pooled),
    Z_g = sum_j w_j (d_gj - n_gj d_j / n_j) and
    V_gh = sum_j w_j^2 d_j (n_j - d_j) / (n_j - 1) (n_gj / n_j)(delta_gh - n_hj / n_j).
    The statistic Z' V^- Z over the first k - 1 groups is chi-square on k - 1 df.
    Matches R ``survival::survdiff``, statsmodels ``survdiff`` (logrank, gb, tw, fh
    with p only, strata) and lifelines ``multivariate_logrank_test`` (all weightings,
    no strata).

    Examples
    --------
    >>> from recoverystats.datasets import load_rossi
    >>> from recoverystats.survival import compare_survival
    >>> res = compare_survival(load_rossi(), time="week", event="arrest", group="fin")
    >>> round(res.statistic, 3), int(res.table["df"].iloc[0])
    (3.838, 1)
    """
    check_option("weights", weights, SurvivalTestWeights)
    if not isinstance(group, str):
        raise InvalidParameterError(f"group must be one column name (str); got {group!r}.")
    check_columns(df, [group], "group")
    strata_cols = as_column_list(strata)
    if strata_cols:
        check_columns(df, strata_cols, "strata")
    for name, val in (("fh_p", fh_p), ("fh_q", fh_q)):
        if not np.isfinite(val) or val < 0:
            raise InvalidParameterError(f"{name} must be a finite number >= 0; got {val!r}.")
    prep = prepare(df, time=time, event=event, others=[group, *strata_cols])
    frame, t, e = prep.frame, prep.time, prep.event
    notes = list(prep.notes)
    g, keys = group_labels(frame, [group], prep.factors)
    k = len(keys)
    if k < 2:
        raise InvalidParameterError(
            f"group: column {group!r} has only one level ({keys[0][0]!r}) in the rows analysed; "
            "at least two groups are needed to compare survival."
        )
    if e.sum() == 0:
        raise EstimationError(
            f"no events in {event!r} (everyone is censored): survival cannot be compared. "
            "Check the event coding (1 = event) or lengthen follow-up."
        )
    s_codes, s_keys = group_labels(frame, strata_cols, prep.factors)
    z = np.zeros(k)
    v = np.zeros((k, k))
    observed = np.zeros(k)
    expected = np.zeros(k)
    for sc in range(len(s_keys)):
        m = s_codes == sc
        if e[m].sum() == 0:
            continue
        zs, vs, os_, es = _stratum_scores(t[m], e[m], g[m], k, weights, fh_p, fh_q)
        z += zs
        v += vs
        observed += os_
        expected += es
    sizes = np.bincount(g, minlength=k)
    for code, key in enumerate(keys):
        if sizes[code] == 1:
            notes.append(f"group {group}={key[0]} has a single participant; the test has little information about it.")
    zz, vv = z[:-1], v[:-1, :-1]
    try:
        stat = float(zz @ np.linalg.solve(vv, zz))
        dof = k - 1
    except np.linalg.LinAlgError:
        pinv = np.linalg.pinv(vv)
        stat = float(zz @ pinv @ zz)
        dof = int(np.linalg.matrix_rank(vv))
        notes.append("the variance matrix is singular (a group has no one at risk at any event time); "
                     f"a generalised inverse was used and df = {dof}.")
    p = float(stats.chi2.sf(stat, dof)) if dof > 0 else float("nan")
    name = _NAMES[weights]
    if weights == "fleming-harrington":
        name += f" (p={fh_p:g}, q={fh_q:g})"
    if strata_cols:
        name = "stratified " + name
    table = pd.DataFrame({"statistic": [stat], "df": [dof], "p_value": [p], "test": [name]})
    by_group = pd.DataFrame({group: [kk[0] for kk in keys], "n": sizes, "observed": observed,
                             "expected": expected, "o_minus_e_weighted": z})
    return TestResult(_table=table, conf_level=0.95, method=name, n_used=len(frame),
                      n_excluded=prep.n_excluded, notes=tuple(notes), _by_group=by_group)
