"""Kaplan-Meier numerics on numpy arrays (internal).

Kept separate from the DataFrame front end so the estimator, its variance and its
confidence intervals can be reused by the log-rank tests, the cumulative-incidence
estimator, the figures and the result methods.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

ConfType = Literal["log-log", "log", "plain"]
WeightType = Literal["frequency", "sampling"]

__all__ = ["ConfType", "WeightType", "km_arrays", "km_ci", "km_sampling_variance", "step_quantile", "rmst_from_curve"]


def km_arrays(
    time: np.ndarray,
    event: np.ndarray,
    weights: np.ndarray | None = None,
    entry: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Kaplan-Meier curve of one group at every distinct observed time.

    Returns arrays ``time, n_at_risk, events, censored, estimate, greenwood`` where
    ``greenwood`` is the cumulative sum ``sum d / (n (n - d))`` (infinite once the
    curve reaches 0).
    """
    if weights is None:
        w = None
        total = float(len(time))
        lo = float(time.min()) if len(time) else 0.0
        span = float(time.max()) - lo if len(time) else 0.0
        if span <= 4 * len(time) + 100_000 and np.array_equal(time, np.floor(time)):
            # whole-number times (days, weeks) on a modest range: counting, no sort at all
            ti = (time - lo).astype(np.int64)
            counts = np.bincount(ti)
            present = np.flatnonzero(counts)
            times = present.astype(float) + lo
            removed = counts[present].astype(float)
            d = np.bincount(ti[event > 0], minlength=len(counts))[present].astype(float)
        else:
            # two plain sorts instead of an argsort (no inverse index needed)
            ts = np.sort(time)
            start = np.flatnonzero(np.concatenate(([True], ts[1:] != ts[:-1])))
            times = ts[start]
            removed = np.diff(np.append(start, len(ts))).astype(float)
            te = np.sort(time[event > 0])
            d = (np.searchsorted(te, times, side="right") - np.searchsorted(te, times, side="left")).astype(float)
    else:
        w = weights
        times, inv = np.unique(time, return_inverse=True)
        d = np.bincount(inv, weights=w * event, minlength=len(times))
        removed = np.bincount(inv, weights=w, minlength=len(times))
        total = float(w.sum())
    c = removed - d
    exited_before = np.concatenate(([0.0], np.cumsum(removed)[:-1]))
    if entry is None:
        n = total - exited_before
    else:
        order = np.argsort(entry, kind="stable")
        se = entry[order]
        cw = np.concatenate(([0.0], np.cumsum(np.ones(len(entry)) if w is None else w[order])))
        n = cw[np.searchsorted(se, times, side="left")] - exited_before
    n = np.where(np.abs(n) < 1e-9 * max(1.0, total), 0.0, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(n > 0, d / n, 0.0)
        surv = np.cumprod(1.0 - frac)
        term = np.where(d > 0, d / (n * (n - d)), 0.0)
    term = np.where((d > 0) & (n - d <= 1e-12 * np.maximum(n, 1.0)), np.inf, term)
    gw = np.cumsum(term)
    surv = np.where(surv < 1e-15, 0.0, surv)
    return {"time": times, "n_at_risk": n, "events": d, "censored": c, "estimate": surv, "greenwood": gw}


def km_sampling_variance(
    time: np.ndarray,
    event: np.ndarray,
    weights: np.ndarray,
    arr: dict[str, np.ndarray],
    entry: np.ndarray | None = None,
) -> np.ndarray:
    """Infinitesimal-jackknife (sandwich) variance of the weighted KM, as Var S(t) / S(t)^2.

    Returned on Greenwood's scale (so :func:`km_ci` takes it in place of ``greenwood``).
    With h_j = d_j / n_j (weighted), the derivative of log S(t) with respect to person
    i's weight is a_i(t) = -sum_{t_j <= t, i at risk at t_j} (dN_ij - h_j) / (n_j - d_j),
    and Var S(t) = S(t)^2 sum_i w_i^2 a_i(t)^2. With unit weights this is Greenwood's
    sum exactly; unlike Greenwood it does not change when every weight is multiplied by
    a constant. Hand-written (no library computes it for weighted KM in Python): for each
    person a_i is -(C(t) - C(E_i)) while at risk, C(t) = sum_{t_j <= t} h_j / (n_j - d_j),
    and a constant after exit, so the sum over people is three running sums.
    """
    times = arr["time"]
    n = arr["n_at_risk"]
    d = arr["events"]
    with np.errstate(divide="ignore", invalid="ignore"):
        nd = n - d
        step = np.where(d > 0, (d / n) / nd, 0.0)
        step = np.where((d > 0) & (nd <= 1e-12 * np.maximum(n, 1.0)), np.inf, step)
        c = np.cumsum(step)  # C at each distinct time
        c_ext = np.append(c, 0.0)  # index -1 -> C = 0 (before the first time)
        w2 = weights**2
        k_exit = np.searchsorted(times, time)  # index of each person's own time
        c_entry = np.zeros(len(time)) if entry is None else c_ext[np.searchsorted(times, entry, side="right") - 1]
        jump = np.where(event > 0, 1.0 / nd[k_exit], 0.0)
        a_exit = -(c[k_exit] - c_entry) + jump  # a_i after exit (constant)
        done = np.bincount(k_exit, weights=w2 * a_exit**2, minlength=len(times))
        # people at risk at t_g (entered before t_g, exit at or after t_g): a_i = -(C(t_g) - C(E_i));
        # evaluate just after t_g, where those with exit > t_g remain: sum of w^2 (C - C_E)^2
        k_entry = (np.full(len(time), -1) if entry is None
                   else np.searchsorted(times, entry, side="right") - 1)  # last time <= entry
        in0 = np.bincount(k_entry + 1, weights=w2, minlength=len(times) + 1)[:-1]
        in1 = np.bincount(k_entry + 1, weights=w2 * c_entry, minlength=len(times) + 1)[:-1]
        in2 = np.bincount(k_entry + 1, weights=w2 * c_entry**2, minlength=len(times) + 1)[:-1]
        out0 = np.bincount(k_exit, weights=w2, minlength=len(times))
        out1 = np.bincount(k_exit, weights=w2 * c_entry, minlength=len(times))
        out2 = np.bincount(k_exit, weights=w2 * c_entry**2, minlength=len(times))
        r0 = np.cumsum(in0) - np.cumsum(out0)  # entered before t_g (entry < t_g), exit after t_g
        r1 = np.cumsum(in1) - np.cumsum(out1)
        r2 = np.cumsum(in2) - np.cumsum(out2)
        at_risk = c**2 * r0 - 2.0 * c * r1 + r2
        at_risk = np.where(r0 > 0, at_risk, 0.0)
        var = np.cumsum(done) + at_risk
    return np.where(np.isfinite(c), var, np.inf)


def km_ci(
    surv: np.ndarray, greenwood: np.ndarray, z: float, conf_type: ConfType
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standard error of S(t) (Greenwood) and the pointwise CI of the chosen type.

    Where S(t) = 1 (no event yet) the interval is (1, 1); where S(t) = 0 it is
    undefined (NaN), as in R ``survfit``.
    """
    surv = np.asarray(surv, dtype=float)
    gw = np.asarray(greenwood, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sd = np.sqrt(gw)  # SE of the cumulative hazard (log S)
        se = surv * sd
        if conf_type == "plain":
            lower = np.clip(surv - z * se, 0.0, 1.0)
            upper = np.clip(surv + z * se, 0.0, 1.0)
        elif conf_type == "log":
            lower = np.exp(np.log(surv) - z * sd)
            upper = np.minimum(np.exp(np.log(surv) + z * sd), 1.0)
        else:  # log-log
            ll = np.log(-np.log(surv))
            half = z * sd / np.log(surv)
            lower = np.exp(-np.exp(ll - half))
            upper = np.exp(-np.exp(ll + half))
    one = surv >= 1.0
    zero = (surv <= 0.0) | ~np.isfinite(gw)
    lower = np.where(one, 1.0, np.where(zero, np.nan, lower))
    upper = np.where(one, 1.0, np.where(zero, np.nan, upper))
    se = np.where(one, 0.0, np.where(zero, np.nan, se))
    return se, lower, upper


def step_quantile(times: np.ndarray, curve: np.ndarray, p: float, tol: float = 1e-10) -> float:
    """First time a decreasing step curve falls to ``p`` or below (R ``quantile.survfit`` rule).

    If the curve equals ``p`` exactly on an interval, the midpoint between the start of
    that interval and the next time the curve drops below ``p`` is returned; if it stays
    at ``p`` to the end, the midpoint with the last time (censoring included), as R's
    ``quantile.survfit``. Undefined points of the curve (NaN: a confidence bound where
    S(t) = 0, whose variance is undefined) are dropped, as R's ``approx`` drops them, so
    a bound that reaches ``p`` only where it is undefined never reaches it: ``nan``
    (R prints NA). ``nan`` when the curve never reaches ``p``.
    """
    times = np.asarray(times, dtype=float)
    y = np.asarray(curve, dtype=float)
    if len(times) == 0:
        return float("nan")
    last_time = float(times[-1])
    last_defined = bool(np.isfinite(y[-1]))
    keep = np.isfinite(y)
    times, y = times[keep], y[keep]
    hit = np.flatnonzero(y <= p + tol)
    if len(hit) == 0:
        return float("nan")
    j = hit[0]
    if abs(y[j] - p) <= tol:
        below = np.flatnonzero(y < p - tol)
        if len(below):
            return float((times[j] + times[below[0]]) / 2.0)
        if last_defined:  # flat at p to the end of follow-up
            return float((times[j] + last_time) / 2.0)
    return float(times[j])


def rmst_from_curve(
    times: np.ndarray,
    surv: np.ndarray,
    n_at_risk: np.ndarray,
    events: np.ndarray,
    horizon: float,
) -> tuple[float, float]:
    """Restricted mean survival time to ``horizon`` and its variance (survRM2 ``rmst1``)."""
    keep = times <= horizon
    t = times[keep]
    s = surv[keep]
    n = n_at_risk[keep]
    d = events[keep]
    knots = np.concatenate(([0.0], t, [horizon]))
    heights = np.concatenate(([1.0], s))
    areas = np.diff(knots) * heights
    rmst = float(areas.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where((n - d) > 0, d / (n * (n - d)), 0.0)
    tail = np.cumsum(areas[1:][::-1])[::-1]  # integral of S from t_j to the horizon
    var = float(np.sum(tail**2 * v))
    return rmst, var
