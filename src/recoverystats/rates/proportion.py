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
from recoverystats.rates._common import binary_outcome, group_codes, plural
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
) -> RateResult:
    """Proportion of rows with the outcome, with a confidence interval, overall or by group.

    Parameters
    ----------
    df
        One row per unit (e.g. the output of a measure: one row per participant).
        Rates are general: every row given is used; filter to eligible rows first
        (``df[df.eligible]``) for fixed-window outcomes.
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

    Returns
    -------
    RateResult
        ``.table`` columns: by-columns, ``n``, ``events``, ``estimate``, ``ci_lower``,
        ``ci_upper``, ``std_error`` (binomial SE ``sqrt(p(1-p)/n)``).

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

    References
    ----------
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
