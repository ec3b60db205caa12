"""Kaplan-Meier survival curves (``survival_curve``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recoverystats._checks import as_column_list, check_columns, check_conf_level, check_option
from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.results.survival import SurvivalResult, _z
from recoverystats.survival._data import group_labels, prepare
from recoverystats.survival._km import ConfType, WeightType, km_arrays, km_ci, km_sampling_variance

__all__ = ["survival_curve"]


def survival_curve(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    by: str | Sequence[str] | None = None,
    conf_type: ConfType = "log-log",
    entry: str | None = None,
    weights: str | None = None,
    weight_type: WeightType = "frequency",
    conf_level: float = 0.95,
    times: Sequence[float] | None = None,
) -> SurvivalResult:
    """Kaplan-Meier estimate of the survival (event-free) function, optionally by group.

    Parameters
    ----------
    df : DataFrame
        One row per participant, e.g. the output of ``relapse(...)`` or
        ``recidivism(...)`` (``time_days``, ``event``) or any frame with a time and
        an event column; or an :class:`~recoverystats.missing.ImputedData` (with
        ``times=``).
    time : str
        Follow-up time (days, weeks, ...; non-negative; timedeltas become days).
    event : str
        1 (or True) if the event happened at ``time``, 0 if censored there.
    by : str or list of str, optional
        Grouping column(s); one curve per combination.
    conf_type : {"log-log", "log", "plain"}
        Pointwise CI transformation, as R ``survfit(conf.type=)``. "log-log" (the
        default, as Stata ``sts list`` and lifelines) keeps the bounds inside (0, 1) and
        has good coverage in small samples; R ``survfit``'s default is "log", so pass
        ``conf_type="log"`` to reproduce R (the result's first line says which is used).
    entry : str, optional
        Delayed-entry (left-truncation) time: a person is at risk at t only if
        ``entry < t <= time`` (R ``Surv(entry, time, event)``). Must be < ``time``.
    weights : str, optional
        A column of non-negative case weights. Counts in the table become weighted
        counts; what the variance does depends on ``weight_type``.
    weight_type : {"frequency", "sampling"}
        ``"frequency"`` (default): a row of weight 3 is 3 people (an aggregated table,
        e.g. one row per time, event and group with a count); every number equals that
        of the expanded data exactly, and Greenwood's variance uses the weighted counts.
        ``"sampling"``: inverse-probability, balancing or follow-up weights (e.g.
        ``followup_weights(...).weights``); the estimate is the weighted KM and its
        variance the infinitesimal-jackknife (sandwich, "robust") variance of R
        ``survfit(..., weights = w, robust = TRUE)``: Var S(t) = S(t)^2 sum_i w_i^2
        a_i(t)^2, a_i the derivative of log S(t) with respect to row i's weight. It
        equals Greenwood's with unit weights and, unlike Greenwood's, does not shrink when
        all weights are scaled up. Rows are treated as independent (no ``cluster=``).
    conf_level : float
        Confidence level of the pointwise intervals.
    times : list of float, optional
        Only with an :class:`~recoverystats.missing.ImputedData` as ``df`` (and then
        required): the times at which S(t) is pooled over the imputed data sets, by
        Rubin's rules on the complementary log-log scale (no pooled at-risk counts).

    Returns
    -------
    SurvivalResult
        ``.table``: by-columns..., time, n_at_risk, events, censored, estimate,
        ci_lower, ci_upper, std_error (one row per distinct time). Methods
        ``.at(times)``, ``.median()``, ``.quantile(p)``, ``.risk_table(times)``,
        ``.rmst(horizon)``, ``.plot()``.

    Notes
    -----
    S(t) = prod_{t_j <= t} (1 - d_j / n_j), with Greenwood's variance
    Var S(t) = S(t)^2 sum_{t_j <= t} d_j / (n_j (n_j - d_j)). With
    sigma^2 = sum d_j / (n_j (n_j - d_j)) the intervals are

    - plain: S +/- z S sigma (clipped to [0, 1]);
    - log: exp(log S +/- z sigma) (upper clipped at 1);
    - log-log: S^exp(+/- z sigma / log S).

    Matches R ``survfit(Surv(time, event) ~ by, conf.type = "log-log")`` and
    lifelines ``KaplanMeierFitter`` (whose default CI is log-log). Where S(t) = 1
    the interval is (1, 1); where S(t) = 0 the SE and interval are NaN, and a median
    (quantile) CI limit that the bound reaches only there is NaN, as R prints NA. Rows with a
    missing value in any column used are excluded and counted in ``n_excluded``.
    If nobody had the event the curve is 1 throughout (noted), and the median is NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats.survival import survival_curve
    >>> d = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]})
    >>> survival_curve(d, time="t", event="e").at([2, 3])["estimate"].round(4).tolist()
    [0.6, 0.3]
    """
    if type(df).__name__ == "ImputedData":  # multiple imputation: each data set, pooled (Rubin's rules)
        from recoverystats.missing.dispatch import pooled_call

        return pooled_call(survival_curve, locals())
    if times is not None:
        raise InvalidParameterError(
            "survival_curve: times= is for an ImputedData (the times at which S(t) is pooled); with a "
            "DataFrame use survival_curve(df, ...).at(times)."
        )
    check_option("conf_type", conf_type, ConfType)
    check_option("weight_type", weight_type, WeightType)
    if weight_type == "sampling" and weights is None:
        raise InvalidParameterError(
            "weight_type='sampling' needs weights= (the column of sampling weights); got weights=None."
        )
    level = check_conf_level(conf_level)
    by_cols = as_column_list(by)
    if by_cols:
        check_columns(df, by_cols, "by")
    if entry is not None:
        check_columns(df, [entry], "entry")
    if weights is not None:
        check_columns(df, [weights], "weights")
    prep = prepare(df, time=time, event=event,
                   others=[*by_cols, *( [entry] if entry else []), *([weights] if weights else [])])
    frame = prep.frame
    t, e = prep.time, prep.event
    notes = list(prep.notes)
    w = None
    if weights is not None:
        w = pd.to_numeric(frame[weights], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            shown = pd.unique(frame[weights].to_numpy()[bad])[:5].tolist()
            rows = ", ".join(map(str, frame.index[bad][:10]))
            raise DataValidationError(
                f"weights: column {weights!r} must hold non-negative finite numbers; {int(bad.sum())} row(s) "
                f"do not (values such as {shown!r}; rows {rows}). Fix or drop those rows.",
            )
    ent = None
    if entry is not None:
        ent = pd.to_numeric(frame[entry], errors="coerce").to_numpy(dtype=float)
        bad = ~(ent < t)
        if bad.any():
            rows = ", ".join(map(str, frame.index[bad][:10]))
            raise DataValidationError(
                f"entry: column {entry!r} must be earlier than {time!r} (a person enters before they "
                f"leave); {int(bad.sum())} row(s) have entry >= time (rows {rows}). Drop them or fix the dates.",
            )
    codes, keys = group_labels(frame, by_cols, prep.factors)
    z = _z(level)
    table_parts, curve_parts, group_rows, entry_parts = [], [], [], []
    for code, key in enumerate(keys):
        m = codes == code if len(keys) > 1 else slice(None)
        wg = None if w is None else w[m]
        eg = None if ent is None else ent[m]
        tg = t[m]
        arr = km_arrays(tg, e[m], wg, eg)
        if weight_type == "sampling" and wg is not None:
            arr["greenwood"] = km_sampling_variance(tg, e[m], wg, arr, eg)
        se, lo, hi = km_ci(arr["estimate"], arr["greenwood"], z, conf_type)
        keycols = {c: np.repeat(np.array([k], dtype=object), len(arr["time"])) for c, k in zip(by_cols, key, strict=False)}
        table_parts.append(pd.DataFrame({**keycols, "time": arr["time"], "n_at_risk": arr["n_at_risk"],
                                         "events": arr["events"], "censored": arr["censored"],
                                         "estimate": arr["estimate"], "ci_lower": lo, "ci_upper": hi,
                                         "std_error": se}))
        curve_parts.append(pd.DataFrame({**keycols, "time": arr["time"], "n_at_risk": arr["n_at_risk"],
                                         "events": arr["events"], "censored": arr["censored"],
                                         "estimate": arr["estimate"], "greenwood": arr["greenwood"]}))
        n_rows = len(tg)
        total_w = float(n_rows) if wg is None else float(wg.sum())
        n_ev = float(arr["events"].sum())
        group_rows.append({**{c: k for c, k in zip(by_cols, key, strict=False)}, "n": n_rows, "weight": total_w,
                           "events": n_ev,
                           # rows of weight 0 stand for nobody: they do not extend follow-up
                           "max_time": float(tg.max() if wg is None or not (wg > 0).any() else tg[wg > 0].max())})
        if eg is not None:
            ue, inv = np.unique(eg, return_inverse=True)
            cnt = np.bincount(inv, weights=np.ones(len(eg)) if wg is None else wg)
            entry_parts.append(pd.DataFrame({**{c: [k] * len(ue) for c, k in zip(by_cols, key, strict=False)},
                                             "entry": ue, "n": cnt}))
        label = ", ".join(f"{c}={k}" for c, k in zip(by_cols, key, strict=False)) or "all"
        if n_ev == 0:
            notes.append(f"no events in group {label}: S(t) = 1 throughout and the median is not reached.")
        if n_rows == 1:
            notes.append(f"group {label} has a single participant; its curve is a single step.")
        if len(arr["time"]) == 1 and n_rows > 1:
            notes.append(f"every time in group {label} is tied at {arr['time'][0]:g}; the curve has one step.")
    table = pd.concat(table_parts, ignore_index=True)
    curve = pd.concat(curve_parts, ignore_index=True)
    for c in by_cols:  # restore the original dtypes of the grouping columns
        try:
            table[c] = table[c].astype(frame[c].dtype)
            curve[c] = curve[c].astype(frame[c].dtype)
        except (TypeError, ValueError):
            pass
    groups = pd.DataFrame(group_rows)
    if weights is not None and weight_type == "frequency":
        notes.append(f"frequency weights from {weights!r}: a row of weight k counts as k people; counts are "
                     "weighted and Greenwood uses them (the same as the expanded data).")
    elif weights is not None:
        notes.append(f"sampling weights from {weights!r}: weighted KM with the infinitesimal-jackknife (robust) "
                     "variance; the weighted counts are not numbers of people.")
    if entry is not None:
        notes.append(f"left-truncated at {entry!r}: at risk at t when {entry} < t <= {time}.")
    method = "kaplan-meier" + (", left-truncated" if entry else "") + \
        ((", frequency-weighted" if weight_type == "frequency" else ", sampling-weighted (robust variance)")
         if weights else "")
    return SurvivalResult(
        _table=table, conf_level=level, method=method, n_used=len(frame), n_excluded=prep.n_excluded,
        notes=tuple(notes), by=tuple(by_cols), conf_type=conf_type, time_column=time, _curve=curve,
        weight_type=weight_type if weights is not None else None,
        _groups=groups, _entries=None if ent is None else pd.concat(entry_parts, ignore_index=True),
    )
