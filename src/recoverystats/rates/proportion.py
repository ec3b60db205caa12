"""Proportions with confidence intervals, overall or by group."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recoverystats._checks import (
    as_column_list,
    check_columns,
    check_conf_level,
    check_dataframe,
    check_option,
)
from recoverystats.errors import InvalidParameterError
from recoverystats.rates._common import (
    WeightType,
    binary_outcome,
    case_weights,
    cluster_codes,
    group_codes,
    plural,
    weight_note,
)
from recoverystats.rates._intervals import METHOD_ALIASES, RateMethod, binomial_ci
from recoverystats.results.rates import RateResult

__all__ = ["proportion"]


def resolve_method(method: str) -> str:
    """Canonical CI method name (accepts aliases such as ``"clopper_pearson"``)."""
    key = method.lower() if isinstance(method, str) else method
    if key not in METHOD_ALIASES:
        check_option("method", method, tuple(dict.fromkeys(METHOD_ALIASES.values())))
    return METHOD_ALIASES[key]


def proportion(
    df: pd.DataFrame,
    outcome: str,
    *,
    by: str | Sequence[str] | None = None,
    method: RateMethod = "wilson",
    conf_level: float = 0.95,
    weights: str | None = None,
    weight_type: WeightType = "frequency",
    cluster: str | None = None,
) -> RateResult:
    """Proportion of rows with the outcome, with a confidence interval, overall or by group.

    Parameters
    ----------
    df
        One row per unit (e.g. the output of a measure: one row per participant).
        Rates are general: every row given is used; filter to eligible rows first
        (``df[df.eligible]``) for fixed-window outcomes. An
        :class:`~recoverystats.missing.ImputedData` gives proportions pooled over the
        imputed data sets (Rubin's rules on the logit scale).
    outcome
        Column holding 0/1 or True/False. Missing values are excluded and counted in
        ``n_excluded``.
    by
        One or several grouping columns. Categorical columns keep every category, so an
        empty group appears with ``n = 0`` and NaN estimates. Rows with a missing key are
        excluded and counted.
    method
        ``"wilson"`` (default), ``"exact"`` (Clopper-Pearson), ``"jeffreys"``,
        ``"jeffreys_modified"``, ``"agresti_coull"`` or ``"wald"``. Aliases
        ``"clopper_pearson"``, ``"beta"``, ``"score"``, ``"normal"``,
        ``"modified_jeffreys"`` are accepted.
    conf_level
        Confidence level, default 0.95.
    weights
        Column of non-negative case weights (see ``weight_type``); a row of weight 0
        is left out.
    weight_type
        ``"frequency"`` (default): whole-number weights, a row stands for that many
        identical units (e.g. one row per cell of an aggregated table with its count);
        ``n``, ``events``, the estimate and every interval equal those of the expanded
        data. ``"sampling"``: survey, inverse-probability or balancing weights; the
        estimate is ``Σ w y / Σ w`` with the robust (linearisation) variance of R
        ``survey::svymean`` on ``svydesign(ids = ~1, weights = ~w)`` (``svyby`` with
        ``by=``), and the interval is the chosen ``method`` applied at the effective
        sample size ``n_eff = p(1-p)/Var(p)`` (Korn & Graubard 1998; ``"wald"`` is then
        exactly ``p ± z SE``, as ``confint(svymean(...))``). ``n`` and ``events`` are
        then unweighted row counts and ``n_effective`` is added.
    cluster
        Column identifying clusters (e.g. mentors, sites): the robust variance sums
        ``w (y - p)`` within clusters, ``G/(G-1) Σ_c (Σ_i w_i (y_i - p))² / (Σ w)²``, as
        ``survey`` with ``svydesign(ids = ~cluster, weights = ~w)``. Implies the
        sampling-weight analysis (weights of 1 when ``weights`` is not given); not with
        frequency weights. Rows with a missing cluster are excluded and counted.

    Returns
    -------
    RateResult
        ``.table`` columns: by-columns, ``n``, ``events``, ``estimate``, ``ci_lower``,
        ``ci_upper``, ``std_error`` (binomial SE ``sqrt(p(1-p)/n)``, or the robust SE
        with sampling weights; then also ``n_effective``).

    Notes
    -----
    With ``x`` events in ``n`` rows, ``p = x/n`` and ``z`` the two-sided normal quantile:

    - Wilson: ``(x + z²/2)/(n + z²) ± z/(n + z²) · sqrt(x(n-x)/n + z²/4)``;
    - exact (Clopper-Pearson): ``Beta(α/2; x, n-x+1)`` to ``Beta(1-α/2; x+1, n-x)``,
      with 0 at ``x = 0`` and 1 at ``x = n``;
    - Jeffreys: equal-tailed ``Beta(x+½, n-x+½)`` quantiles, lower limit 0 at ``x = 0``
      and upper limit 1 at ``x = n`` (the convention of R DescTools ``BinomCI``);
    - modified Jeffreys (Brown, Cai & DasGupta 2001, §4.1.2 and Table A.1): as Jeffreys,
      but the upper limit at ``x = 0`` is ``1 - (α/2)^(1/n)`` and the lower limit is 0 at
      ``x = 0`` and ``x = 1`` (mirrored at ``x = n`` and ``n - 1``);
    - Agresti-Coull: Wald interval around ``p̃ = (x + z²/2)/(n + z²)`` with ``ñ = n + z²``,
      clipped to [0, 1];
    - Wald: ``p ± z sqrt(p(1-p)/n)``, clipped to [0, 1] (poor coverage: for comparison only).

    These match statsmodels ``proportion_confint(x, n, method=...)`` with methods
    ``"wilson"``, ``"beta"``, ``"jeffreys"``, ``"agresti_coull"``, ``"normal"`` (apart
    from the Jeffreys end-point convention) and R ``binom::binom.confint``. Groups are
    counted with integer codes and ``numpy.bincount`` rather than a pandas groupby.

    Equivalent R: ``binom::binom.confint(x, n, methods = "wilson")``; Stata:
    ``ci proportions outcome, wilson``.

    With sampling weights the variance is ``n/(n-1) Σ_g w_i² (y_i - p_g)² / (Σ_g w_i)²``
    summed over the rows of group ``g``, ``n`` the rows used in all groups (domain
    estimation). With no events (or no non-events) the variance is 0 and ``n_eff`` is
    taken as the number of rows.

    References
    ----------
    Korn EL, Graubard BI (1998). Confidence intervals for proportions with small
    expected number of positive counts estimated from survey data. Survey Methodology
    24:193-201.
    Brown LD, Cai TT, DasGupta A (2001). Interval estimation for a binomial proportion.
    Statistical Science 16:101-133.

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats.rates import proportion
    >>> d = pd.DataFrame({"retained": [1, 1, 0, 1, 0, 1, 1, 1], "site": list("aabbbbbb")})
    >>> r = proportion(d, "retained", by="site")
    >>> r.table[["site", "n", "events"]].values.tolist()
    [['a', 2, 2], ['b', 6, 4]]
    >>> r.table[["estimate", "ci_lower", "ci_upper"]].round(4).values.tolist()[1]
    [0.6667, 0.3, 0.9032]
    """
    if type(df).__name__ == "ImputedData":  # multiple imputation: each data set, pooled (Rubin's rules)
        from recoverystats.missing.dispatch import pooled_call

        return pooled_call(proportion, locals())
    check_dataframe(df)
    method = resolve_method(method)
    conf_level = check_conf_level(conf_level)
    if not isinstance(outcome, str):
        raise InvalidParameterError(f"outcome must be a column name (a string); got {outcome!r}.")
    check_columns(df, [outcome], "outcome")
    by_cols = as_column_list(by)
    check_columns(df, by_cols, "by")
    if outcome in by_cols:
        raise InvalidParameterError(
            f"by: the outcome column {outcome!r} cannot also be a grouping column."
        )

    w = case_weights(df, weights, weight_type, func="proportion")
    ccodes = cluster_codes(df, cluster, func="proportion")
    if ccodes is not None:
        if w is not None and weight_type == "frequency":
            raise InvalidParameterError(
                "proportion: cluster= gives cluster-robust variances for sampling weights; frequency weights "
                "(counts) have no clusters. Pass weight_type='sampling' or drop cluster=."
            )
        if w is None:
            w, weight_type = np.ones(len(df)), "sampling"
    if w is not None:
        return _weighted_proportion(
            df, outcome, by_cols, w, weights, weight_type, method=method, conf_level=conf_level,
            clusters=ccodes, cluster=cluster,
        )
    y = binary_outcome(df, outcome)
    grouping = group_codes(df, by_cols)
    codes = grouping.codes
    n_groups = len(grouping.keys)
    y_missing = np.isnan(y)
    if grouping.n_missing_key == 0 and not y_missing.any():
        ok = np.ones(len(y), dtype=bool)
        n = np.bincount(codes, minlength=n_groups).astype(np.int64)
        events = np.bincount(codes, weights=y, minlength=n_groups).round().astype(np.int64)
    else:
        ok = ~y_missing & (codes >= 0)
        n = np.bincount(codes[ok], minlength=n_groups).astype(np.int64)
        events = np.bincount(codes[ok], weights=y[ok], minlength=n_groups).round().astype(np.int64)

    notes: list[str] = []
    n_missing_y = int(y_missing.sum())
    if n_missing_y:
        notes.append(f"{plural(n_missing_y, 'row')} with missing {outcome!r} excluded.")
    n_missing_key = int(((codes < 0) & ~np.isnan(y)).sum())
    if n_missing_key:
        notes.append(
            f"{plural(n_missing_key, 'row')} with a missing value in {', '.join(map(repr, by_cols))} excluded."
        )
    table = _rate_table(grouping.keys, by_cols, n, events, method=method, conf_level=conf_level)
    empty = int((n == 0).sum())
    if empty:
        if by_cols:
            notes.append(
                f"{plural(empty, 'group')} with no usable rows (n = 0): estimate and CI are NaN."
            )
        else:
            notes.append("No usable rows (n = 0): estimate and CI are NaN.")
    n_used = int(ok.sum())
    return RateResult(
        _table=table,
        conf_level=conf_level,
        method=method,
        n_used=n_used,
        n_excluded=int(len(df) - n_used),
        notes=tuple(notes),
        by=tuple(by_cols),
        outcome=outcome,
        kind="proportion",
    )


def _weighted_proportion(
    df: pd.DataFrame,
    outcome: str,
    by_cols: list[str],
    w: np.ndarray,
    weights: str | None,
    weight_type: str,
    *,
    method: str,
    conf_level: float,
    clusters: np.ndarray | None = None,
    cluster: str | None = None,
) -> RateResult:
    from recoverystats.rates.compare import weighted_proportion_variance

    positive = w > 0
    sub = df.loc[positive] if not positive.all() else df
    w = w[positive]
    if clusters is not None:
        clusters = clusters[positive]
    y = binary_outcome(sub, outcome)
    grouping = group_codes(sub, by_cols)
    codes = grouping.codes
    k = len(grouping.keys)
    ok = ~np.isnan(y) & (codes >= 0)
    frequency = weight_type == "frequency"
    notes: list[str] = [weight_note(weights, weight_type)] if weights is not None else []
    if clusters is not None:
        missing_cl = ok & (clusters < 0)
        if missing_cl.any():
            notes.append(f"{plural(int(missing_cl.sum()), 'row')} with a missing {cluster!r} excluded.")
        ok &= clusters >= 0
        notes.append(f"Cluster-robust (linearisation) standard errors over the clusters of {cluster!r}.")
    unit = "row"  # frequency weights: rows of the expanded data
    n_missing_y = w[np.isnan(y)].sum() if frequency else np.isnan(y).sum()
    if n_missing_y:
        notes.append(f"{plural(int(n_missing_y), unit)} with missing {outcome!r} excluded.")
    miss_key = (codes < 0) & ~np.isnan(y)
    n_missing_key = w[miss_key].sum() if frequency else miss_key.sum()
    if n_missing_key:
        notes.append(
            f"{plural(int(n_missing_key), unit)} with a missing value in {', '.join(map(repr, by_cols))} excluded."
        )
    if frequency:
        n = np.bincount(codes[ok], weights=w[ok], minlength=k).round().astype(np.int64)
        events = np.bincount(codes[ok], weights=(w * y)[ok], minlength=k).round().astype(np.int64)
        table = _rate_table(grouping.keys, by_cols, n, events, method=method, conf_level=conf_level)
        n_used = int(n.sum())
        n_excluded = int(round(float(np.sum(df[weights].to_numpy(dtype=float))))) - n_used
    else:
        yy, ww, cc = y[ok], w[ok], codes[ok]
        p, var = weighted_proportion_variance(yy, ww, cc, k, None if clusters is None else clusters[ok])
        n = np.bincount(cc, minlength=k).astype(np.int64)
        events = np.bincount(cc, weights=yy, minlength=k).round().astype(np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            n_eff = np.where(var > 0, p * (1 - p) / var, n.astype(float))
        lo, hi = binomial_ci(p * n_eff, n_eff, method=method, conf_level=conf_level)
        lo = np.where(n > 0, lo, np.nan)
        hi = np.where(n > 0, hi, np.nan)
        table = grouping.keys.reset_index(drop=True).copy() if by_cols else pd.DataFrame(index=range(1))
        table["n"] = n
        table["events"] = events
        table["estimate"] = p
        table["ci_lower"] = lo
        table["ci_upper"] = hi
        table["std_error"] = np.sqrt(var)
        table["n_effective"] = np.where(n > 0, n_eff, np.nan)
        n_used = int(ok.sum())
        n_excluded = int(len(df) - n_used)
        method = f"{method}, weighted (effective sample size)"
    empty = int((n == 0).sum())
    if empty:
        notes.append(
            f"{plural(empty, 'group')} with no usable rows (n = 0): estimate and CI are NaN."
            if by_cols
            else "No usable rows (n = 0): estimate and CI are NaN."
        )
    return RateResult(
        _table=table,
        conf_level=conf_level,
        method=method,
        n_used=n_used,
        n_excluded=n_excluded,
        notes=tuple(notes),
        by=tuple(by_cols),
        outcome=outcome,
        kind="proportion",
    )


def _rate_table(
    keys: pd.DataFrame,
    by_cols: list[str],
    n: np.ndarray,
    events: np.ndarray,
    *,
    method: str,
    conf_level: float,
) -> pd.DataFrame:
    lo, hi = binomial_ci(events, n, method=method, conf_level=conf_level)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.where(n > 0, events / np.where(n > 0, n, 1), np.nan)
        se = np.sqrt(est * (1.0 - est) / np.where(n > 0, n, np.nan))
    table = keys.reset_index(drop=True).copy() if by_cols else pd.DataFrame(index=range(1))
    table["n"] = n
    table["events"] = events
    table["estimate"] = est
    table["ci_lower"] = lo
    table["ci_upper"] = hi
    table["std_error"] = se
    return table
