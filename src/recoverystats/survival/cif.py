"""Cumulative incidence with competing events (Aalen-Johansen) and Gray's test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from recoverystats._checks import as_column_list, check_columns, check_conf_level, check_option
from recoverystats.errors import EstimationError, InvalidParameterError
from recoverystats.results.survival import CumulativeIncidenceResult, _z
from recoverystats.survival._data import group_labels, prepare

__all__ = ["cumulative_incidence", "aalen_johansen_arrays", "gray_test_arrays", "CIFConfType", "CIFVariance"]

CIFConfType = Literal["log-log", "plain"]
CIFVariance = Literal["delta", "aalen"]


def aalen_johansen_arrays(time: np.ndarray, status: np.ndarray, *, variance: CIFVariance = "delta") -> dict[str, np.ndarray]:
    """Aalen-Johansen CIF of status 1 (2 = competing, 0 = censored) and its variance.

    ``variance="delta"`` (default) is the delta-method variance, ``"aalen"`` the Aalen
    (1978) variance exactly as R ``cmprsk``'s Fortran routine ``cinc`` computes it (see
    :func:`cumulative_incidence`). Returns arrays over the distinct times: ``time,
    n_at_risk, events, competing, censored, estimate, variance``.
    """
    times, inv = np.unique(time, return_inverse=True)
    m = len(times)
    d1 = np.bincount(inv, weights=(status == 1).astype(float), minlength=m)
    d2 = np.bincount(inv, weights=(status == 2).astype(float), minlength=m)
    removed = np.bincount(inv, minlength=m).astype(float)
    n = len(time) - np.concatenate(([0.0], np.cumsum(removed)[:-1]))
    d = d1 + d2
    surv = np.cumprod(1.0 - d / n)
    s_prev = np.concatenate(([1.0], surv[:-1]))
    f = np.cumsum(s_prev * d1 / n)
    out = {"time": times, "n_at_risk": n, "events": d1, "competing": d2, "censored": removed - d, "estimate": f}
    if variance == "aalen":
        return {**out, "variance": _aalen_variance(n, d1, d2, s_prev, surv, f)}
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where((d > 0) & (n - d > 0), d / (n * (n - d)), 0.0)
    b = s_prev**2 * d1 * (n - d1) / n**3
    c = s_prev * d1 / n**2
    ca, caf, caf2 = np.cumsum(a), np.cumsum(a * f), np.cumsum(a * f * f)
    cb, cc, ccf = np.cumsum(b), np.cumsum(c), np.cumsum(c * f)
    # sum_j [(F_k - F_j)^2 a_j + b_j - 2 (F_k - F_j) c_j] for j <= k, expanded into prefix sums
    var = f * f * ca - 2 * f * caf + caf2 + cb - 2 * (f * cc - ccf)
    return {**out, "variance": np.maximum(var, 0.0)}


def _aalen_variance(n: np.ndarray, d1: np.ndarray, d2: np.ndarray, s_prev: np.ndarray, surv: np.ndarray,
                    f: np.ndarray) -> np.ndarray:
    """Aalen (1978) variance of the CIF as R ``cmprsk`` computes it (Fortran ``cinc``, cincsub.f).

    cmprsk accumulates, over distinct times j with events, ``v1 += t6 t4^2``, ``v2 += t6 t3 t4``,
    ``v3 += t6 t3^2`` once for the competing events (t4 = F_j / S_j) and once for the cause
    (t4 = 1 + F_j / S_j), with t3 = 1 / S_j, t6 = S_{j-1}^2 t5 d / n_j^2 and the tie factor
    t5 = 1 - (d - 1)/(n_j - 1) for d > 1 (else 1); the competing term is skipped and t3 = 0
    once S_j = 0. Var F(t) = v1 + F^2 v3 - 2 F v2, recorded at the cause's event times only and
    carried forward between them (as ``cmprsk::timepoints`` reads the step function). The same
    sums are prefix sums here.
    """
    def t6(dk: np.ndarray) -> np.ndarray:
        tie = np.where(dk > 1, 1.0 - (dk - 1.0) / np.where(n > 1, n - 1.0, 1.0), 1.0)
        return s_prev**2 * tie * dk / n**2

    alive = surv > 0
    t3 = np.where(alive, 1.0 / np.where(alive, surv, 1.0), 0.0)
    w_cause, w_comp = t6(d1), np.where(alive, t6(d2), 0.0)
    t4_cause, t4_comp = 1.0 + t3 * f, t3 * f
    v1 = np.cumsum(w_comp * t4_comp**2 + w_cause * t4_cause**2)
    v2 = np.cumsum(w_comp * t3 * t4_comp + w_cause * t3 * t4_cause)
    v3 = np.cumsum((w_comp + w_cause) * t3**2)
    at_cause = v1 + f * f * v3 - 2.0 * f * v2
    last = np.maximum.accumulate(np.where(d1 > 0, np.arange(len(f)), -1))
    var = np.where(last >= 0, at_cause[np.maximum(last, 0)], 0.0)
    return np.maximum(var, 0.0)  # rounding only: the sum is of squares times t6 >= 0


def _cif_ci(f: np.ndarray, var: np.ndarray, z: float, conf_type: str) -> tuple[np.ndarray, np.ndarray]:
    se = np.sqrt(var)
    if conf_type == "plain":
        return np.clip(f - z * se, 0, 1), np.clip(f + z * se, 0, 1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ll = np.log(-np.log(f))
        st = se / (f * np.abs(np.log(f)))
        lower = np.exp(-np.exp(ll + z * st))
        upper = np.exp(-np.exp(ll - z * st))
    lower = np.where(f <= 0, 0.0, np.where(f >= 1, 1.0, lower))
    upper = np.where(f <= 0, 0.0, np.where(f >= 1, 1.0, upper))
    return lower, upper


@np.errstate(divide="ignore", invalid="ignore")
def _gray_stratum(t: np.ndarray, status: np.ndarray, g: np.ndarray, k: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Score (k-1) and covariance (k-1 x k-1) of Gray's test within one stratum.

    Follows Gray (1988), section 2, as implemented in R ``cmprsk::crstm`` (rewritten
    here with the group dimension vectorised).
    """
    order = np.argsort(t, kind="stable")
    t, status, g = t[order], status[order], g[order]
    times, start = np.unique(t, return_index=True)
    stop = np.concatenate((start[1:], [len(t)]))
    risk = np.bincount(g, minlength=k).astype(float)
    f1m = np.zeros(k)
    skmm = np.ones(k)
    fm = 0.0
    score = np.zeros(k)
    cmat = np.zeros((k, k))
    v3 = np.zeros(k)
    v2 = np.zeros((k, k))
    v = np.zeros((k, k))
    for lo, hi in zip(start, stop, strict=False):
        gs, ss = g[lo:hi], status[lo:hi]
        d1 = np.bincount(gs[ss == 1], minlength=k).astype(float)
        d2 = np.bincount(gs[ss == 2], minlength=k).astype(float)
        leaving = np.bincount(gs, minlength=k).astype(float)
        nd1, nd2 = d1.sum(), d2.sum()
        if nd1 > 0 or nd2 > 0:
            act = risk > 0
            safe_r = np.where(act, risk, 1.0)
            skm = np.where(act, skmm * (risk - d1 - d2) / safe_r, skmm)
            f1 = np.where(act, f1m + skmm * d1 / safe_r, f1m)
            h = np.where(act, risk / skmm, 0.0)  # "t1" in Gray's notation: R_r / S_r(t-)
            tr = h.sum()
            tq = np.where(act, risk * (1 - f1m) / skmm, 0.0).sum()
            f = fm + nd1 / tr
            fb = (1.0 - fm) ** rho
            a = fb * (np.diag(h) - np.outer(h, h) / tr)
            cmat += a * nd1 / (tr * (1.0 - fm))
            score += np.where(act, fb * (d1 - nd1 * risk * (1 - f1m) / (skmm * tq)), 0.0)
            if nd1 > 0:
                with np.errstate(divide="ignore", invalid="ignore"):
                    t4 = np.where(skm > 0, 1.0 - (1.0 - f) / skm, 1.0)
                    t5 = 1.0 - (nd1 - 1.0) / (tr * skmm - 1.0) if nd1 > 1 else np.ones(k)
                    t3 = np.where(act, t5 * skmm * nd1 / (tr * safe_r), 0.0)
                v3 += t4 * t4 * t3
                m = a - cmat * t4[None, :]  # column kk: a[:, kk] - t4_kk c[:, kk]
                v2 += m * (t4 * t3)[None, :]
                v += (m * t3[None, :]) @ m.T
            if nd2 > 0:
                use = (skm > 0) & (d2 > 0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    t4 = np.where(use, (1.0 - f) / np.where(skm > 0, skm, 1.0), 0.0)
                    t5 = np.where(d2 > 1, 1.0 - (d2 - 1.0) / (safe_r - 1.0), 1.0)
                    t3 = np.where(use, t5 * skmm**2 * d2 / safe_r**2, 0.0)
                v3 += t4 * t4 * t3
                m = cmat * t4[None, :]
                v2 -= m * (t4 * t3)[None, :]
                v += (m * t3[None, :]) @ m.T
            fm = f
            f1m = f1
            skmm = skm
        risk -= leaving
    v += (cmat * v3[None, :]) @ cmat.T + cmat @ v2.T + v2 @ cmat.T
    return score[:-1], v[:-1, :-1]


def gray_test_arrays(time: np.ndarray, status: np.ndarray, group: np.ndarray, strata: np.ndarray,
                     rho: float = 0.0) -> tuple[float, int, np.ndarray, np.ndarray]:
    """Gray's k-sample test for cause 1; returns statistic, df, score and its covariance."""
    k = int(group.max()) + 1
    score = np.zeros(k - 1)
    cov = np.zeros((k - 1, k - 1))
    for s in np.unique(strata):
        m = strata == s
        sc, vv = _gray_stratum(time[m], status[m], group[m], k, rho)
        score += sc
        cov += vv
    try:
        stat = float(score @ np.linalg.solve(cov, score))
        dof = k - 1
    except np.linalg.LinAlgError:
        stat = float(score @ np.linalg.pinv(cov) @ score)
        dof = int(np.linalg.matrix_rank(cov))
    return stat, dof, score, cov


def cumulative_incidence(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    cause: Any,
    by: str | Sequence[str] | None = None,
    censored: Any = 0,
    strata: str | Sequence[str] | None = None,
    conf_type: CIFConfType = "log-log",
    conf_level: float = 0.95,
    variance: CIFVariance = "delta",
) -> CumulativeIncidenceResult:
    """Cumulative incidence of one cause when other events compete (Aalen-Johansen).

    Parameters
    ----------
    df : DataFrame
        One row per participant, e.g. ``recidivism(...)`` output where death competes
        with re-arrest.
    time : str
        Time to the first event of any kind, or to censoring.
    event : str
        Event-type code: ``censored`` (default 0) for censored, ``cause`` for the event
        of interest, any other value for a competing event (e.g. 0 censored, 1
        re-arrest, 2 death). Codes may be numbers or strings.
    cause : scalar
        The code of the event of interest; it must occur in the data.
    by : str or list of str, optional
        Grouping column(s): one curve per group and Gray's test across groups.
    censored : scalar
        The code meaning "censored" (default 0).
    strata : str or list of str, optional
        Strata for Gray's test (the curves are not stratified).
    conf_type : {"log-log", "plain"}
        Pointwise CI: the SE carried to the log(-log F) scale by the delta method
        (default, bounds inside (0, 1)) or F +/- z SE.
    conf_level : float
        Confidence level.
    variance : {"delta", "aalen"}
        Variance of F_1(t) behind ``std_error`` and the CIs: the delta-method
        (Greenwood-type) estimator (default; SAS ``PROC LIFETEST error=delta``,
        lifelines, statsmodels) or Aalen's (1978) estimator exactly as R
        ``cmprsk::cuminc`` computes it (and so ``tidycmprsk``). Estimates are the same.

    Returns
    -------
    CumulativeIncidenceResult
        ``.table``: by-columns..., time, n_at_risk, events, competing, censored,
        estimate, ci_lower, ci_upper, std_error; ``.at(times)``; ``.gray_test``;
        ``.plot()``.

    Notes
    -----
    F_1(t) = sum_{t_j <= t} S(t_{j-1}) d_1j / n_j with S the all-cause Kaplan-Meier,
    d_1j events of the cause, d_2j competing events (all competing codes together),
    d_j = d_1j + d_2j, n_j at risk, at the distinct times t_j.

    ``variance="delta"``: Var F_1(t) = sum_{t_j <= t} { [F_1(t) - F_1(t_j)]^2 d_j / (n_j (n_j - d_j))
    + S(t_{j-1})^2 d_1j (n_j - d_1j) / n_j^3
    - 2 [F_1(t) - F_1(t_j)] S(t_{j-1}) d_1j / n_j^2 } (delta method, as SAS
    ``PROC LIFETEST error=delta`` and lifelines ``AalenJohansenFitter``, which it matches when no
    event times are tied across causes; lifelines jitters such ties, this does not; at a
    last time where everyone at risk has an event the 0/0 first term is taken as 0, as
    survRM2 does for the Greenwood term, where lifelines returns NaN).

    ``variance="aalen"``: with a_j = F_1(t) - F_1(t_j), S_j = S(t_j) and, for k = 1, 2,
    w_kj = S(t_{j-1})^2 d_kj (n_j - d_kj) / (n_j^2 (n_j - 1)) (w_kj = S(t_{j-1})^2 / n_j^2
    when d_kj = 1, including n_j = 1),
    Var F_1(t) = sum_{t_j <= t} { w_1j (1 - a_j / S_j)^2 + w_2j (a_j / S_j)^2 },
    with a_j / S_j taken as 0 where S_j = 0. This is R ``cmprsk``'s Fortran routine
    ``cinc`` (src/cincsub.f of the CRAN sources) term for term: it keeps the sums
    v1 = sum w t4^2, v2 = sum w t3 t4, v3 = sum w t3^2 (t3 = 1/S_j; t4 = F_1(t_j)/S_j for the
    competing term, 1 + F_1(t_j)/S_j for the cause's) and returns v1 + F^2 v3 - 2 F v2, the
    same prefix sums computed here, vectorised. Expanded (while n_j > d_j), it is
    sum { a_j^2 [d_1j (n_j - d_1j) + d_2j (n_j - d_2j)] / ((n_j - 1)(n_j - d_j)^2)
    + S(t_{j-1})^2 d_1j (n_j - d_1j) / (n_j^2 (n_j - 1))
    - 2 a_j S(t_{j-1}) d_1j (n_j - d_1j) / (n_j (n_j - 1)(n_j - d_j)) }: the first weight
    is d_j / ((n_j - 1)(n_j - d_j)) unless both causes occur at the same t_j. Without
    competing events (and while S(t) > 0) it is S(t)^2 sum d_j / ((n_j - 1)(n_j - d_j)), Greenwood's
    sum with n_j replaced by n_j - 1, so the SEs are slightly larger than the
    delta method's. Matches the standard errors and log-log CIs R ``tidycmprsk::cuminc``
    prints (``tidy(cuminc(Surv(time, status) ~ group, data))``, CI
    F^exp(+/- z SE / (F log F))). Written by hand: no maintained Python library provides
    cmprsk's variance (lifelines ``AalenJohansenFitter`` and statsmodels
    ``CumIncidenceRight`` compute the delta-method variance only).

    1 - KM of the cause (treating competing events as censoring) would overstate
    the incidence; this estimator does not. Gray's test (Gray 1988, rho = 0) compares
    the cause's subdistribution hazards across groups, as R ``cmprsk::cuminc``; it is
    hand-written (no maintained Python library provides it).

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats.survival import cumulative_incidence
    >>> d = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "status": [1, 2, 1, 0, 1, 2]})
    >>> cumulative_incidence(d, time="t", event="status", cause=1).at([3, 6])["estimate"].round(4).tolist()
    [0.3333, 0.5833]

    Standard errors at t = 1 (one event among 6): delta method sqrt(5/216), cmprsk's Aalen 1/6.

    >>> [cumulative_incidence(d, time="t", event="status", cause=1, variance=v).at([1])["std_error"].round(4).tolist()
    ...  for v in ("delta", "aalen")]
    [[0.1521], [0.1667]]

    References
    ----------
    Aalen O (1978). Nonparametric estimation of partial transition probabilities in
    multiple decrement models. Annals of Statistics 6:534-545.

    Gray RJ (1988). A class of K-sample tests for comparing the cumulative incidence
    of a competing risk. Annals of Statistics 16:1141-1154.
    """
    check_option("conf_type", conf_type, CIFConfType)
    check_option("variance", variance, CIFVariance)
    level = check_conf_level(conf_level)
    by_cols = as_column_list(by)
    strata_cols = as_column_list(strata)
    if by_cols:
        check_columns(df, by_cols, "by")
    if strata_cols:
        check_columns(df, strata_cols, "strata")
    prep = prepare(df, time=time, event=event, others=[*by_cols, *strata_cols], event_is_code=True)
    frame, t, codes = prep.frame, prep.time, prep.event
    notes = list(prep.notes)
    ser = frame[event]
    present = pd.unique(codes)
    if _same(cause, censored):
        raise InvalidParameterError(
            f"cause={cause!r} is the censoring code; choose the code of the event of interest."
        )
    is_cause = (ser == cause).to_numpy(dtype=bool)
    if not is_cause.any():
        shown = sorted(map(str, present))
        raise InvalidParameterError(
            f"cause: code {cause!r} never occurs in column {event!r} (codes present: {', '.join(shown)}). "
            "Pass one of those codes as cause=, or check the event coding."
        )
    is_cens = (ser == censored).to_numpy(dtype=bool)
    status = np.full(len(codes), 2, dtype=np.int64)
    status[is_cens] = 0
    status[is_cause] = 1
    if (status == 2).sum() == 0:
        notes.append("no competing events occurred: the cumulative incidence equals 1 - Kaplan-Meier.")
    comp_codes = sorted(map(str, pd.unique(ser.to_numpy()[status == 2])))
    if comp_codes:
        notes.append(f"competing event code(s): {', '.join(comp_codes)}; censoring code {censored!r}.")
    g, keys = group_labels(frame, by_cols, prep.factors)
    z = _z(level)
    parts, group_rows = [], []
    for code, key in enumerate(keys):
        m = g == code
        arr = aalen_johansen_arrays(t[m], status[m], variance=variance)
        lo, hi = _cif_ci(arr["estimate"], arr["variance"], z, conf_type)
        keycols = {c: np.repeat(np.array([kk], dtype=object), len(arr["time"])) for c, kk in zip(by_cols, key, strict=False)}
        parts.append(pd.DataFrame({**keycols, "time": arr["time"], "n_at_risk": arr["n_at_risk"],
                                   "events": arr["events"], "competing": arr["competing"],
                                   "censored": arr["censored"], "estimate": arr["estimate"],
                                   "ci_lower": lo, "ci_upper": hi, "std_error": np.sqrt(arr["variance"])}))
        group_rows.append({**dict(zip(by_cols, key, strict=False)), "n": int(m.sum()), "events": float(arr["events"].sum()),
                           "competing": float(arr["competing"].sum()), "max_time": float(t[m].max())})
        label = ", ".join(f"{c}={kk}" for c, kk in zip(by_cols, key, strict=False)) or "all"
        if arr["events"].sum() == 0:
            notes.append(f"no {cause!r} events in group {label}: its cumulative incidence is 0 throughout.")
        if m.sum() == 1:
            notes.append(f"group {label} has a single participant.")
    table = pd.concat(parts, ignore_index=True)
    for c in by_cols:
        try:
            table[c] = table[c].astype(frame[c].dtype)
        except (TypeError, ValueError):
            pass
    gray = None
    if by_cols:
        if len(keys) < 2:
            notes.append("only one group in the data: Gray's test is not computed.")
        else:
            s_codes, _ = group_labels(frame, strata_cols, prep.factors)
            if (status == 1).sum() == 0:
                raise EstimationError("no events of the cause of interest: Gray's test is undefined.")
            stat, dof, _, _ = gray_test_arrays(t, status, g, s_codes)
            name = "Gray's test" + (" (stratified)" if strata_cols else "")
            gray = pd.DataFrame({"statistic": [stat], "df": [dof],
                                 "p_value": [float(stats.chi2.sf(stat, dof)) if dof > 0 else np.nan],
                                 "test": [name]})
    return CumulativeIncidenceResult(
        _table=table, conf_level=level, method=f"aalen-johansen ({conf_type} CI, {_VARIANCE_LABEL[variance]})", n_used=len(frame),
        n_excluded=prep.n_excluded, notes=tuple(notes), by=tuple(by_cols), cause=cause, time_column=time,
        _groups=pd.DataFrame(group_rows), _gray=gray,
    )


_VARIANCE_LABEL = {"delta": "delta-method variance", "aalen": "Aalen variance as R cmprsk"}


def _same(a: Any, b: Any) -> bool:
    """Code equality that treats 1, 1.0 and numpy scalars alike but not '1' and 1."""
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False

