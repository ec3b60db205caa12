"""Covariate balance: :func:`balance` (standardised mean differences, variance ratios, KS)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from recoverystats._checks import as_column_list, check_columns, check_option
from recoverystats._design import _is_numeric, category_levels, plain
from recoverystats.causal._common import (
    check_frame,
    check_missing,
    exposure_indicator,
    resolve_weights,
)
from recoverystats.errors import InvalidParameterError
from recoverystats.results.causal import BalanceResult

Estimand = Literal["ATE", "ATT", "ATC", "ATO"]
SDDenominator = Literal["pooled", "treated", "control"]
_STATS = ("smd", "variance_ratio", "ks")

#: |SMD| below this is the usual mark of adequate balance (Austin 2009; cobalt's default threshold).
SMD_THRESHOLD = 0.1


def _terms(df: pd.DataFrame, columns: list[str]) -> list[tuple[str, str, Any, str, np.ndarray]]:
    """(term, variable, level, kind, values as float) for each covariate term."""
    out = []
    for c in columns:
        s = df[c]
        if pd.api.types.is_bool_dtype(s.dtype):
            out.append((c, c, pd.NA, "binary", np.asarray(s, dtype=float)))
        elif _is_numeric(s):
            v = np.asarray(s, dtype=float)
            kind = "binary" if np.all((v == 0) | (v == 1)) else "continuous"
            out.append((c, c, pd.NA, kind, v))
        else:
            for lev in category_levels(s, c):
                out.append((f"{c}[{plain(lev)}]", c, plain(lev), "binary", np.asarray(s == lev, dtype=float)))
    return out


def _ks(x: np.ndarray, t: np.ndarray, w: np.ndarray) -> float:
    """Largest difference between the groups' weighted empirical CDFs."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    w1 = np.where(t[order] == 1, w[order], 0.0)
    w0 = np.where(t[order] == 1, 0.0, w[order])
    c1 = np.cumsum(w1) / w1.sum()
    c0 = np.cumsum(w0) / w0.sum()
    last = np.r_[xs[1:] != xs[:-1], True]  # the last row of each distinct value
    return float(np.max(np.abs(c1[last] - c0[last])))


def balance(
    df: pd.DataFrame,
    *,
    exposure: str,
    adjust: Any,
    weights: Any = None,
    estimand: Estimand = "ATE",
    stats: Any = ("smd", "variance_ratio"),
    ks: bool = False,
    sd_denominator: SDDenominator | None = None,
    threshold: float = SMD_THRESHOLD,
    treated: Any = None,
) -> BalanceResult:
    """Covariate balance between the two groups, before and (with ``weights``) after weighting.

    Parameters
    ----------
    df
        One row per person.
    exposure
        The two-group column (see :func:`propensity_score`).
    adjust
        The covariates to compare. Numeric columns are summarised by their means (0/1
        and boolean columns as proportions); text/categorical columns by the proportion
        at every level (one row per level).
    weights
        Balancing or matching weights: a column name, a Series aligned to ``df`` (e.g.
        ``balancing_weights(...).weights``), or a result with ``.weights``. Adds the
        ``"weighted"`` rows. Rows of weight 0 (e.g. unmatched people) drop out of the
        weighted statistics.
    estimand
        Chooses the default SD in the SMD's denominator: ``"ATT"`` the exposed group's,
        ``"ATC"`` the comparison group's, ``"ATE"``/``"ATO"`` the pooled one.
    stats
        Which statistics to compute among ``"smd"``, ``"variance_ratio"`` and ``"ks"``;
        the others are NaN. Default: SMD and variance ratio.
    ks
        Shorthand to add ``"ks"`` (Kolmogorov-Smirnov statistic) to ``stats``.
    sd_denominator
        Override the denominator: ``"pooled"``, ``"treated"`` or ``"control"``.
    threshold
        The |SMD| taken as adequate balance, drawn on the love plot (default 0.1).
    treated
        The value of ``exposure`` that marks the exposed group.

    Returns
    -------
    BalanceResult
        ``.table`` (long: one row per covariate term and sample), ``.wide()``,
        ``.max_abs_smd`` and ``.plot()`` (the love plot).

    Notes
    -----
    Standardised mean difference ``SMD = (m_1 - m_0) / s``, with ``m_g`` the (weighted)
    group means and ``s``:

    * ``"pooled"`` (ATE, ATO): ``sqrt((s_1² + s_0²) / 2)``;
    * ``"treated"`` (ATT): ``s_1``; ``"control"`` (ATC): ``s_0``;

    where ``s_g²`` is the group's variance computed **unweighted, in the full
    (unadjusted) sample** — for 0/1 terms ``p_g(1 - p_g)``, otherwise the usual n−1
    variance. The same ``s`` standardises the unadjusted and the weighted differences,
    so a change in SMD is a change in the means, not in the yardstick (weighting
    shrinks or inflates the within-group SDs, which would otherwise move the SMD by
    itself). This is the default of R ``cobalt::bal.tab`` (``s.d.denom`` by estimand,
    computed in the unadjusted sample) and of ``MatchIt::summary``; binary terms use
    ``sqrt(p(1-p))``, their Bernoulli SD, as both do (cobalt shows raw differences for
    binary terms unless ``binary = "std"``; here they are standardised so that one
    threshold applies to every row). Variance ratio: ``var_1 / var_0`` with weighted
    variances (``Σw(x−m)² Σw / ((Σw)² − Σw²)``, cobalt's), continuous terms only (a 0/1
    term's variance is fixed by its mean). KS: the largest difference between the
    groups' weighted empirical distribution functions. A note lists the terms whose
    |SMD| after weighting (or before, unweighted) is at or above ``threshold``.

    Examples
    --------
    >>> import recoverystats as rs
    >>> sim = rs.datasets.simulate_program(400, seed=3)
    >>> b = rs.balance(sim.truth.latent, exposure="group", adjust=["age", "risk_level"])
    >>> list(b.table["term"])[:3]
    ['age', 'risk_level[low]', 'risk_level[moderate]']
    """
    df = check_frame(df)
    check_option("estimand", estimand, Estimand)
    if sd_denominator is not None:
        check_option("sd_denominator", sd_denominator, SDDenominator)
    chosen = [stats] if isinstance(stats, str) else list(stats)
    for s in chosen:
        check_option("stats", s, _STATS)
    if ks and "ks" not in chosen:
        chosen.append("ks")
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise InvalidParameterError(f"threshold must be a positive number (e.g. 0.1); got {threshold!r}.")
    ex = exposure_indicator(df, exposure, treated)
    cols = as_column_list(adjust)
    if not cols:
        raise InvalidParameterError("adjust: give the covariates to compare, e.g. adjust=['age', 'risk_level'].")
    check_columns(df, cols, "adjust")
    if ex.column in cols:
        raise InvalidParameterError(f"adjust: the exposure {ex.column!r} cannot also be a covariate.")
    check_missing(df, cols)
    w = resolve_weights(df, weights)
    denom_kind = sd_denominator or {"ATT": "treated", "ATC": "control"}.get(estimand, "pooled")
    t = ex.t
    tb = t == 1
    ones = np.ones(len(t))
    samples: list[tuple[str, np.ndarray]] = [("unadjusted", ones)]
    if w is not None:
        if not (w[tb] > 0).any() or not (w[~tb] > 0).any():
            raise InvalidParameterError("weights: every row of one group has weight 0; nothing left to compare.")
        samples.append(("weighted", w))
    rows = []
    notes: list[str] = []
    ess = {name: (float(ws[tb].sum() ** 2 / (ws[tb] ** 2).sum()), float(ws[~tb].sum() ** 2 / (ws[~tb] ** 2).sum()))
           for name, ws in samples}
    terms = _terms(df, cols)
    binary = np.array([kind == "binary" for _, _, _, kind, _ in terms])
    # every term's weighted sums at once (matrix-vector products): columns centred at their
    # overall mean first, so the one-pass variance has no cancellation
    M = np.empty((len(t), len(terms)))
    for j, (*_, x) in enumerate(terms):
        M[:, j] = x
    centre = M.mean(axis=0)
    M -= centre
    M2 = M * M
    stats_by: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    for name, ws in samples:
        for g, mask in ((1, tb), (0, ~tb)):
            v = np.where(mask, ws, 0.0)
            s0 = float(v.sum())
            s1 = v @ M
            s2 = v @ M2
            sw2 = float((v * v).sum())
            mean_c = s1 / s0
            ss = np.maximum(s2 - s1 * mean_c, 0.0)
            denom = s0 * s0 - sw2
            var = ss * s0 / denom if denom > 0 else np.full(len(terms), np.nan)
            mean = mean_c + centre
            var = np.where(binary, mean * (1.0 - mean), var)
            stats_by[(name, g)] = (mean, var)
    _, v1u = stats_by[("unadjusted", 1)]
    _, v0u = stats_by[("unadjusted", 0)]
    sd_den = {"pooled": np.sqrt((v1u + v0u) / 2.0), "treated": np.sqrt(v1u), "control": np.sqrt(v0u)}[denom_kind]
    for j, (term, var, lev, kind, x) in enumerate(terms):
        for name, ws in samples:
            m1, v1 = float(stats_by[(name, 1)][0][j]), float(stats_by[(name, 1)][1][j])
            m0, v0 = float(stats_by[(name, 0)][0][j]), float(stats_by[(name, 0)][1][j])
            den = float(sd_den[j])
            smd = (m1 - m0) / den if den > 0 else (0.0 if m1 == m0 else float("nan"))
            vr = v1 / v0 if (not binary[j] and v0 > 0) else float("nan")
            kss = _ks(x, t, ws) if "ks" in chosen else float("nan")
            e1, e0 = ess[name]
            rows.append({
                "term": term, "variable": var, "level": lev, "kind": kind, "sample": name,
                "mean_treated": m1, "mean_control": m0, "sd_treated": float(np.sqrt(v1)),
                "sd_control": float(np.sqrt(v0)), "sd_denominator": den,
                "smd": smd if "smd" in chosen else float("nan"),
                "variance_ratio": vr if "variance_ratio" in chosen else float("nan"),
                "ks": kss, "n_treated": e1, "n_control": e0,
            })
    table = pd.DataFrame(rows)
    if "smd" in chosen:
        last = "weighted" if w is not None else "unadjusted"
        sub = table[table["sample"] == last]
        bad = sub[np.abs(sub["smd"]) >= threshold]["term"].tolist()
        if bad:
            shown = ", ".join(bad[:12]) + (" ..." if len(bad) > 12 else "")
            notes.append(
                f"{len(bad)} term(s) have |SMD| >= {threshold:g} {'after weighting' if w is not None else ''}: "
                f"{shown}.".replace("  ", " ")
            )
        elif w is not None:
            notes.append(f"Every term has |SMD| < {threshold:g} after weighting.")
    notes.append(
        {"pooled": "SMD denominator: pooled SD sqrt((s1² + s0²)/2)",
         "treated": "SMD denominator: SD of the exposed group",
         "control": "SMD denominator: SD of the comparison group"}[denom_kind]
        + ", unweighted, from the full sample (the same for every row); 0/1 terms use sqrt(p(1-p))."
    )
    method = "standardised differences" + (" before and after weighting" if w is not None else "")
    return BalanceResult(
        _table=table,
        method=method,
        n_used=len(df),
        notes=tuple(notes),
        exposure=ex.column,
        treated=ex.treated,
        control=ex.control,
        estimand=estimand,
        sd_denominator=denom_kind,
        threshold=float(threshold),
        weighted=w is not None,
    )
