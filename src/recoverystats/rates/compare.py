"""Comparing proportions between groups: risk difference, risk ratio, odds ratio.

Unstratified comparisons use the Newcombe hybrid score CI (RD), the Katz log CI (RR),
and Woolf's logit CI or the exact conditional (Cornfield) CI (OR). Stratified
comparisons use Mantel-Haenszel pooling. The MH variance estimators, the Breslow-Day-
Tarone test and the Cochran Q homogeneity tests are written here by hand (statsmodels
``StratifiedTable`` covers only the odds ratio and the MH risk ratio point estimate);
the tests check them against statsmodels and direct re-implementations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

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
    plural,
    robust_group_variance,
    weight_note,
)
from recoverystats.rates._intervals import exact_odds_ratio, newcombe_difference, z_value
from recoverystats.results.rates import ComparisonResult

__all__ = ["compare_proportions"]

Measure = Literal["rd", "rr", "or"]
TestKind = Literal["auto", "chi2", "fisher"]
OddsRatioCI = Literal["auto", "exact", "woolf"]

MEASURE_NAMES = {"rd": "risk difference", "rr": "risk ratio", "or": "odds ratio"}


def compare_proportions(
    df: pd.DataFrame,
    outcome: str,
    *,
    group: str,
    measure: Measure = "rd",
    strata: str | Sequence[str] | None = None,
    reference: Any = None,
    conf_level: float = 0.95,
    test: TestKind = "auto",
    ci: OddsRatioCI = "auto",
    continuity: bool = False,
    weights: str | None = None,
    weight_type: WeightType = "frequency",
    cluster: str | None = None,
) -> ComparisonResult:
    """Compare the proportion with the outcome between groups (RD, RR or OR).

    Parameters
    ----------
    df
        One row per unit, or an :class:`~recoverystats.missing.ImputedData` (the
        comparison is pooled over the imputed data sets by Rubin's rules: RD on its own
        scale, RR and OR on the log scale).
    outcome
        0/1 or boolean column; missing values are excluded and counted.
    group
        Column with the groups. With more than two groups every non-reference group is
        compared with the reference (one row each).
    measure
        ``"rd"`` risk difference (group − reference), ``"rr"`` risk ratio,
        ``"or"`` odds ratio.
    strata
        One or several columns to stratify by: the estimate is then the Mantel-Haenszel
        pooled measure, the p-value the Cochran-Mantel-Haenszel test, and a homogeneity
        test across strata is reported.
    reference
        The reference level of ``group`` (a value, or ``{group: value}``). Default: the
        first category of a categorical column, otherwise the smallest value in sort
        order (as R's ``factor``).
    conf_level
        Confidence level.
    test
        p-value of an unstratified comparison: ``"chi2"`` (Pearson chi-square, no
        continuity correction), ``"fisher"`` (Fisher's exact test, two-sided), or
        ``"auto"`` (Fisher when any expected count is below 5, else chi-square). With
        ``strata`` the p-value is always the Cochran-Mantel-Haenszel test.
    ci
        Interval for an unstratified odds ratio: ``"exact"`` (conditional maximum-
        likelihood estimate and exact conditional interval, as R ``fisher.test``),
        ``"woolf"`` (sample odds ratio ``ad/bc`` with Woolf's logit interval; 0.5 is
        added to every cell when one is zero, with a note), or ``"auto"`` (default):
        exact whenever the p-value is Fisher's exact test (``test="fisher"``, or
        ``"auto"`` with an expected count below 5) or a cell is zero, otherwise Woolf.
        The p-value and the interval thus come from the same method. Only ``"auto"``
        applies to risk differences, risk ratios and stratified comparisons.
    continuity
        Continuity correction of the chi-square tests (default ``False``). ``True``
        gives Yates' corrected Pearson chi-square (R ``chisq.test``'s default) and the
        corrected Cochran-Mantel-Haenszel test (R ``mantelhaen.test``'s default
        ``correct = TRUE``). Fisher's exact test and the estimates are unaffected.
    weights
        Column of non-negative case weights (see ``weight_type``). Rows of weight 0
        are left out, as if absent.
    weight_type
        ``"frequency"`` (default): whole-number weights, each row stands for that many
        identical units (e.g. one row per cell of a 2x2 or stratified table with its
        count); every estimate, interval and test (exact ones included) equals the
        result on the expanded data. ``"sampling"``: survey, inverse-probability or
        balancing weights; unstratified comparisons only, with robust (linearisation)
        standard errors, Wald intervals on the measure's scale (risk, log RR, log OR)
        and a Wald test, as R ``survey::svyglm`` on ``svydesign(ids = ~1, weights = ~w)``
        (factor ``n/(n-1)``, ``n`` the rows of the two groups); ``n``/``events`` are then
        the unweighted row counts and ``risk`` the weighted proportions. Exact and chi-square
        tests and Mantel-Haenszel pooling are not defined for sampling weights and
        raise an error.
    cluster
        Column identifying clusters (e.g. mentors, sites): robust variances sum the
        influence values within clusters, ``G/(G-1) Σ_c (Σ_i z_i)²``, as ``survey`` with
        ``svydesign(ids = ~cluster, weights = ~w)``. Implies the sampling-weight
        analysis (weights of 1 when ``weights`` is not given); not with frequency
        weights or ``strata``. Rows with a missing cluster are excluded and counted.

    Returns
    -------
    ComparisonResult
        ``.table`` columns: ``comparison, estimate, ci_lower, ci_upper, p_value``, then
        ``n, events, risk, n_reference, events_reference, risk_reference, std_error,
        method, test`` and, when stratified, ``n_strata, homogeneity_statistic,
        homogeneity_df, homogeneity_p_value, homogeneity_test``.
        ``std_error`` is on the scale the interval is built on: the risk scale for RD
        (Wald SE, or the MH variance), the log scale for RR and OR (NaN for exact OR).

    Notes
    -----
    For one comparison let ``a/n1`` be the events in the group and ``c/n0`` in the
    reference, ``b = n1 − a``, ``d = n0 − c``.

    - **RD**: ``a/n1 − c/n0`` with Newcombe's (1998) hybrid score interval (method 10):
      ``d − sqrt((p1−l1)² + (u0−p0)²)`` to ``d + sqrt((u1−p1)² + (p0−l0)²)`` from the two
      Wilson intervals. Matches R ``Epi::ci.pd(method = "Nc")`` and
      ``PropCIs::diffscoreci``-style "Newcombe" in ``DescTools::BinomDiffCI(method="score")``.
    - **RR**: ``(a/n1)/(c/n0)``, CI ``exp(log RR ± z sqrt(1/a − 1/n1 + 1/c − 1/n0))``
      (Katz log method, as statsmodels ``Table2x2.riskratio_confint`` and
      ``epitools::riskratio.wald``). With a zero count 0.5 is added to each cell and a
      note says so.
    - **OR**: ``ad/bc`` with Woolf's logit CI ``exp(log OR ± z sqrt(1/a+1/b+1/c+1/d))``
      (statsmodels ``Table2x2.oddsratio_confint``). When any expected count is below 5 or
      a cell is zero the conditional maximum-likelihood OR and the exact (Cornfield) CI
      are reported instead, as R ``fisher.test(...)$estimate`` / ``$conf.int``, and the
      notes say so.
    - **Mantel-Haenszel** (``strata=``), with ``N`` the stratum total:
      ``RR_MH = Σ(a n0/N) / Σ(c n1/N)``, ``OR_MH = Σ(ad/N) / Σ(bc/N)``,
      ``RD_MH = Σ(a n0 − c n1)/N / Σ(n1 n0/N)``. Variances: Robins-Breslow-Greenland for
      log OR_MH (as statsmodels ``StratifiedTable.logodds_pooled_se``), Greenland-Robins
      (1985) for log RR_MH, ``Σ(n1 n0 m1 − a c N)/N² / (Σ a n0/N · Σ c n1/N)``, and
      Sato (1989) for RD_MH, ``(RD·P + Q)/W²`` (consistent in sparse and large strata).
      The p-value is the Cochran-Mantel-Haenszel test
      ``(|Σa − ΣE(a)| − c)² / Σ Var(a)`` with ``E(a) = n1 m1/N`` and
      ``Var(a) = n1 n0 m1 m0 / (N² (N − 1))``; ``c = 0`` by default (SAS
      ``PROC FREQ / CMH``; statsmodels ``test_null_odds(correction=False)``; R
      ``mantelhaen.test(correct = FALSE)``) and ``c = 0.5`` (when ``|Σa − ΣE(a)| ≥ 0.5``)
      with ``continuity=True`` (R's default ``mantelhaen.test(correct = TRUE)``). Homogeneity: Breslow-Day with Tarone's
      correction for OR (statsmodels ``test_equal_odds(adjust=True)``); Cochran's Q on
      the inverse-variance weighted log RR or RD (Woolf-type test) for RR and RD.
      Strata in which one of the two groups is absent carry no information and are
      dropped with a note.

    Equivalent R: ``epitools::epi.2by2`` / ``epiR::epi.2by2(method = "cohort.count")``.

    References
    ----------
    Newcombe RG (1998). Interval estimation for the difference between independent
    proportions: comparison of eleven methods. Stat Med 17:873-890.
    Greenland S, Robins JM (1985). Estimation of a common effect parameter from sparse
    follow-up data. Biometrics 41:55-68.
    Robins J, Breslow N, Greenland S (1986). Estimators of the Mantel-Haenszel variance
    consistent in both sparse data and large-strata limiting models. Biometrics 42:311-323.
    Sato T (1989). On the variance estimator for the Mantel-Haenszel risk difference.
    Biometrics 45:1323-1324.
    Tarone RE (1985). On heterogeneity tests based on efficient scores. Biometrika 72:91-95.

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats.rates import compare_proportions
    >>> d = pd.DataFrame({"grp": ["a"] * 70 + ["b"] * 80,
    ...                   "y": [1] * 56 + [0] * 14 + [1] * 48 + [0] * 32})
    >>> r = compare_proportions(d, "y", group="grp", reference="b")
    >>> r.table[["comparison", "estimate", "ci_lower", "ci_upper"]].round(4).values.tolist()
    [['a vs b', 0.2, 0.0524, 0.3339]]
    """
    if type(df).__name__ == "ImputedData":  # multiple imputation: each data set, pooled (Rubin's rules)
        from recoverystats.missing.dispatch import pooled_call

        return pooled_call(compare_proportions, locals())
    check_dataframe(df)
    measure = check_option("measure", measure, Measure)
    test = check_option("test", test, TestKind)
    ci = check_option("ci", ci, OddsRatioCI)
    if not isinstance(continuity, (bool, np.bool_)):
        raise InvalidParameterError(f"continuity must be True or False; got {continuity!r}.")
    conf_level = check_conf_level(conf_level)
    if not isinstance(group, str):
        raise InvalidParameterError(f"group must be one column name; got {group!r}.")
    check_columns(df, [outcome], "outcome")
    check_columns(df, [group], "group")
    strata_cols = as_column_list(strata)
    check_columns(df, strata_cols, "strata")
    if group in strata_cols:
        raise InvalidParameterError(f"strata: the group column {group!r} cannot also be a stratum.")
    if ci != "auto" and (measure != "or" or strata_cols):
        what = "stratified comparisons" if strata_cols else f"measure={measure!r}"
        raise InvalidParameterError(
            f"ci={ci!r} applies to unstratified odds ratios only; got {what}. Leave ci='auto' "
            "(or use measure='or' without strata)."
        )
    w = case_weights(df, weights, weight_type, func="compare_proportions")
    ccodes = cluster_codes(df, cluster, func="compare_proportions")
    if ccodes is not None:
        if w is not None and weight_type == "frequency":
            raise InvalidParameterError(
                "compare_proportions: cluster= gives cluster-robust variances for sampling weights; with "
                "frequency weights (counts) pass weight_type='sampling' only if the weights are not counts."
            )
        if w is None:
            w = np.ones(len(df))
            weights, weight_type = None, "sampling"
    sampling = w is not None and weight_type == "sampling"
    if sampling:
        if strata_cols:
            raise InvalidParameterError(
                "compare_proportions: Mantel-Haenszel pooling and the Cochran-Mantel-Haenszel test take "
                "frequency weights only; with sampling weights fit odds_ratios(df, outcome, exposure=group, "
                f"adjust={strata_cols!r}, weights={weights!r}, weight_type='sampling') instead."
            )
        if test != "auto" or ci != "auto" or continuity:
            raise InvalidParameterError(
                "compare_proportions: with weight_type='sampling' the p-value is a robust Wald test and the "
                "interval a Wald interval; exact (Fisher), chi-square and continuity-corrected tests assume "
                f"counts. Got test={test!r}, ci={ci!r}, continuity={continuity!r}: leave them at their defaults, "
                "or use weight_type='frequency' for whole-number counts."
            )

    y = binary_outcome(df, outcome)
    g = df[group]
    keep = ~np.isnan(y) & g.notna().to_numpy()
    for s in strata_cols:
        keep &= df[s].notna().to_numpy()
    if ccodes is not None:
        keep &= ccodes >= 0
    notes: list[str] = []
    if w is not None:
        positive = w > 0
        n_missing = int(round(w[~keep & positive].sum())) if not sampling else int((~keep & positive).sum())
        keep &= positive
        if weights is not None:
            notes.append(weight_note(weights, weight_type))
        if ccodes is not None:
            notes.append(f"Cluster-robust (linearisation) standard errors over the clusters of {cluster!r}.")
    else:
        n_missing = int(len(df) - keep.sum())
    if n_missing:
        cols = ", ".join(repr(c) for c in [outcome, group, *strata_cols, *([cluster] if cluster else [])])
        notes.append(f"{plural(n_missing, 'row')} with a missing value in {cols} excluded.")

    levels = _levels(g)
    ref = _reference(reference, group, levels)
    observed = set(pd.unique(g[keep]))
    if ref not in observed:
        raise InvalidParameterError(
            f"reference: group {ref!r} has no rows with a non-missing {outcome!r}; "
            "choose another reference (reference=...) or check the data."
        )
    others = [lv for lv in levels if lv != ref]
    if not others:
        raise InvalidParameterError(
            f"group: column {group!r} has only one level ({ref!r}); a comparison needs at least two groups."
        )

    data = pd.DataFrame({"y": y[keep], "g": g.to_numpy()[keep]})
    data["w"] = 1.0 if w is None else w[keep]
    if ccodes is not None:
        data["c"] = ccodes[keep]
    if strata_cols:
        data["s"] = _stratum_key(df.loc[keep, strata_cols])
    rows = []
    for lv in others:
        sub = data[(data["g"] == lv) | (data["g"] == ref)]
        if strata_cols:
            row = _stratified_row(
                sub, lv, ref, measure=measure, conf_level=conf_level, continuity=continuity, notes=notes
            )
        elif sampling:
            row = _sampling_row(sub, lv, ref, measure=measure, conf_level=conf_level, notes=notes)
        else:
            row = _simple_row(
                sub, lv, ref, measure=measure, conf_level=conf_level, test=test, ci=ci,
                continuity=continuity, notes=notes,
            )
        row = {"comparison": f"{lv} vs {ref}", **row}
        rows.append(row)
    table = pd.DataFrame(rows)
    first = ["comparison", "estimate", "ci_lower", "ci_upper", "p_value"]
    table = table[first + [c for c in table.columns if c not in first]]
    methods = tuple(dict.fromkeys(table["method"]))
    return ComparisonResult(
        _table=table,
        conf_level=conf_level,
        method="; ".join(methods),
        n_used=int(keep.sum()) if w is None or sampling else int(round(w[keep].sum())),
        n_excluded=n_missing,
        notes=tuple(dict.fromkeys(notes)),
        measure=measure,
        group=group,
        reference=ref,
        strata=tuple(strata_cols),
    )


# -- helpers --------------------------------------------------------------------------


def _levels(g: pd.Series) -> list[Any]:
    if isinstance(g.dtype, pd.CategoricalDtype):
        return list(g.cat.categories)
    vals = pd.unique(g.dropna())
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


def _reference(reference: Any, group: str, levels: list[Any]) -> Any:
    if isinstance(reference, Mapping):
        if group not in reference:
            raise InvalidParameterError(
                f"reference: the mapping has no entry for the group column {group!r}; "
                f"got keys {list(reference)!r}. Use reference={{{group!r}: <level>}}."
            )
        reference = reference[group]
    if reference is None:
        if not levels:
            raise InvalidParameterError(f"group: column {group!r} has no non-missing values.")
        return levels[0]
    if reference not in levels:
        raise InvalidParameterError(
            f"reference: {reference!r} is not a level of {group!r}; levels are "
            f"{', '.join(map(repr, levels[:20]))}."
        )
    return reference


def _stratum_key(frame: pd.DataFrame) -> np.ndarray:
    if frame.shape[1] == 1:
        return frame.iloc[:, 0].astype(str).to_numpy()
    return frame.astype(str).agg(" / ".join, axis=1).to_numpy()


def _counts(sub: pd.DataFrame, lv: Any, ref: Any) -> tuple[int, int, int, int]:
    is1 = (sub["g"] == lv).to_numpy()
    y = sub["y"].to_numpy()
    w = sub["w"].to_numpy()
    a = int(round(float((w * y)[is1].sum())))
    n1 = int(round(float(w[is1].sum())))
    c = int(round(float((w * y)[~is1].sum())))
    n0 = int(round(float(w[~is1].sum())))
    return a, n1, c, n0


def _expected_small(a: int, n1: int, c: int, n0: int) -> bool:
    n = n1 + n0
    m1 = a + c
    m0 = n - m1
    if n == 0:
        return True
    expected = np.array([n1 * m1, n1 * m0, n0 * m1, n0 * m0], dtype=float) / n
    return bool((expected < 5).any())


def two_by_two_pvalue(
    a: int, n1: int, c: int, n0: int, *, test: str, continuity: bool = False
) -> tuple[float, str]:
    """p-value for a 2x2 table: Pearson chi-square or Fisher's exact test.

    ``continuity=True`` applies Yates' correction as R ``chisq.test``: the
    ``|ad - bc|`` term is reduced by ``min(N/2, |ad - bc|)`` (i.e. each
    ``|O - E|`` by ``min(0.5, |O - E|)``).
    """
    b, d = n1 - a, n0 - c
    if test == "auto":
        test = "fisher" if _expected_small(a, n1, c, n0) else "chi2"
    if test == "fisher":
        return float(stats.fisher_exact([[a, b], [c, d]]).pvalue), "Fisher exact"
    m1, m0, n = a + c, b + d, n1 + n0
    if min(m1, m0, n1, n0) == 0:
        return float("nan"), "Pearson chi-square"
    diff = abs(a * d - b * c)
    if continuity:
        diff -= min(n / 2.0, diff)
    chi2 = n * diff**2 / (n1 * n0 * m1 * m0)
    return float(stats.chi2.sf(chi2, 1)), "Pearson chi-square"


def _simple_row(
    sub: pd.DataFrame,
    lv: Any,
    ref: Any,
    *,
    measure: str,
    conf_level: float,
    test: str,
    ci: str = "auto",
    continuity: bool = False,
    notes: list[str],
) -> dict[str, Any]:
    a, n1, c, n0 = _counts(sub, lv, ref)
    b, d = n1 - a, n0 - c
    z = z_value(conf_level)
    se = float("nan")
    if n1 == 0:
        p_value, test_name = float("nan"), ""
    else:
        p_value, test_name = two_by_two_pvalue(a, n1, c, n0, test=test, continuity=continuity)
    if n1 == 0:
        est = lo = hi = float("nan")
        method = "none"
        notes.append(f"Group {lv!r} has no usable rows: estimate and CI are NaN.")
    elif measure == "rd":
        est, lo, hi = newcombe_difference(a, n1, c, n0, conf_level=conf_level)
        p1, p0 = a / n1, c / n0
        se = float(np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0))
        method = "Newcombe hybrid score"
    elif measure == "rr":
        aa, bb, cc, dd = float(a), float(b), float(c), float(d)
        method = "Katz log"
        if a == 0 or c == 0:
            aa, bb, cc, dd = aa + 0.5, bb + 0.5, cc + 0.5, dd + 0.5
            method = "Katz log (0.5 added to each cell)"
            notes.append(
                f"{lv} vs {ref}: a zero event count; 0.5 was added to every cell for the risk ratio and its CI."
            )
        nn1, nn0 = aa + bb, cc + dd
        log_rr = np.log((aa / nn1) / (cc / nn0))
        se = float(np.sqrt(1 / aa - 1 / nn1 + 1 / cc - 1 / nn0))
        est, lo, hi = (
            float(np.exp(log_rr)),
            float(np.exp(log_rr - z * se)),
            float(np.exp(log_rr + z * se)),
        )
    else:  # odds ratio
        zero = min(a, b, c, d) == 0
        use_exact = ci == "exact" or (ci == "auto" and (test_name == "Fisher exact" or zero))
        if use_exact:
            est, lo, hi = exact_odds_ratio(a, b, c, d, conf_level=conf_level)
            method = "conditional MLE, exact (Cornfield) CI"
            if ci == "auto" and test == "auto":
                notes.append(
                    f"{lv} vs {ref}: an expected count below 5 or a zero cell; the conditional "
                    "maximum-likelihood odds ratio with an exact CI (as R fisher.test) is reported instead of Woolf's."
                )
            elif ci == "auto" and test_name != "Fisher exact":
                notes.append(
                    f"{lv} vs {ref}: a zero cell; the conditional maximum-likelihood odds ratio with an "
                    "exact CI (as R fisher.test) is reported instead of Woolf's (set ci='woolf' for Woolf's "
                    "interval with 0.5 added to each cell)."
                )
        else:
            aa, bb, cc, dd = float(a), float(b), float(c), float(d)
            method = "Woolf logit"
            if zero:
                aa, bb, cc, dd = aa + 0.5, bb + 0.5, cc + 0.5, dd + 0.5
                method = "Woolf logit (0.5 added to each cell)"
                notes.append(
                    f"{lv} vs {ref}: a zero cell; 0.5 was added to every cell for the odds ratio and its CI."
                )
            log_or = np.log(aa * dd / (bb * cc))
            se = float(np.sqrt(1 / aa + 1 / bb + 1 / cc + 1 / dd))
            est, lo, hi = (
                float(np.exp(log_or)),
                float(np.exp(log_or - z * se)),
                float(np.exp(log_or + z * se)),
            )
            if test_name == "Fisher exact":
                notes.append(
                    f"{lv} vs {ref}: Woolf's interval (ci='woolf') with Fisher's exact p-value: the two can "
                    "disagree near the significance level."
                )
    return {
        "estimate": est,
        "ci_lower": lo,
        "ci_upper": hi,
        "p_value": p_value,
        "n": n1,
        "events": a,
        "risk": a / n1 if n1 else float("nan"),
        "n_reference": n0,
        "events_reference": c,
        "risk_reference": c / n0 if n0 else float("nan"),
        "std_error": se,
        "method": method,
        "test": test_name,
        "continuity_correction": bool(continuity and test_name == "Pearson chi-square"),
    }


def weighted_proportion_influence(
    y: np.ndarray, w: np.ndarray, codes: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted proportions per group and each row's influence value (internal).

    ``p_g = Σ w y / Σ w`` over the rows of group ``g``; row ``i`` of group ``g`` has
    influence ``z_i = w_i (y_i - p_g) / Σ_g w``. The variance of ``p_g`` is then
    :func:`~recoverystats.rates._common.robust_group_variance` of ``z`` (R
    ``survey::svymean`` / ``svyby``, domain estimation over all rows given).
    """
    wt = np.bincount(codes, weights=w, minlength=k)
    wy = np.bincount(codes, weights=w * y, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(wt > 0, wy / np.where(wt > 0, wt, 1.0), np.nan)
        z = w * (y - p[codes]) / np.where(wt > 0, wt, 1.0)[codes]
    return p, z


def weighted_proportion_variance(
    y: np.ndarray, w: np.ndarray, codes: np.ndarray, k: int, clusters: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted proportions per group and their linearisation variances (internal).

    ``Var(p_g) = G/(G-1) Σ_c (Σ_{i in c, g} w_i (y_i - p_g))² / (Σ_g w)²``, ``G`` the
    clusters (rows when unclustered: ``n/(n-1)``) of the whole analysis, as R
    ``survey::svymean`` / ``svyby`` on ``svydesign(ids = ~cluster, weights = ~w)``.
    Returns ``(p, variance)``.
    """
    p, z = weighted_proportion_influence(y, w, codes, k)
    var, _ = robust_group_variance(z, codes, k, clusters)
    return p, np.where(np.isfinite(p), var, np.nan)


def _sampling_row(
    sub: pd.DataFrame, lv: Any, ref: Any, *, measure: str, conf_level: float, notes: list[str]
) -> dict[str, Any]:
    """One comparison with sampling weights: Wald interval and test with robust variances."""
    is1 = (sub["g"] == lv).to_numpy()
    codes = is1.astype(np.intp)  # 1 = group, 0 = reference
    y = sub["y"].to_numpy()
    w = sub["w"].to_numpy()
    clusters = sub["c"].to_numpy() if "c" in sub.columns else None
    (p0, p1), infl = weighted_proportion_influence(y, w, codes, 2)
    z = z_value(conf_level)
    with np.errstate(divide="ignore", invalid="ignore"):
        # influence of the measure on its own scale: delta method row by row, so that a
        # cluster holding both groups contributes its covariance
        if measure == "rd":
            theta, d1, d0 = p1 - p0, 1.0, 1.0
        elif measure == "rr":
            theta, d1, d0 = np.log(p1 / p0), 1.0 / p1, 1.0 / p0
        else:
            theta = np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0))
            d1, d0 = 1.0 / (p1 * (1 - p1)), 1.0 / (p0 * (1 - p0))
        zm = np.where(is1, d1 * infl, -d0 * infl)
        var, _ = robust_group_variance(zm, np.zeros(len(zm), dtype=np.int64), 1, clusters)
        se = float(np.sqrt(var[0]))
    n1, n0 = int(is1.sum()), int((~is1).sum())
    if not (np.isfinite(theta) and np.isfinite(se) and se > 0):
        est = float(np.exp(theta)) if measure != "rd" and np.isfinite(theta) else float(theta)
        lo = hi = p_value = float("nan")
        notes.append(
            f"{lv} vs {ref}: a weighted proportion of 0 or 1 (or a group without rows); the robust "
            f"{MEASURE_NAMES[measure]} interval and test are undefined (NaN)."
        )
    else:
        lo, hi = theta - z * se, theta + z * se
        p_value = float(2 * stats.norm.sf(abs(theta / se)))
        est = float(theta)
        if measure != "rd":
            est, lo, hi = float(np.exp(theta)), float(np.exp(lo)), float(np.exp(hi))
    scale = {"rd": "risk", "rr": "log risk ratio", "or": "log odds ratio"}[measure]
    return {
        "estimate": est,
        "ci_lower": float(lo),
        "ci_upper": float(hi),
        "p_value": p_value,
        "n": n1,
        "events": int(y[is1].sum()),
        "risk": float(p1),
        "n_reference": n0,
        "events_reference": int(y[~is1].sum()),
        "risk_reference": float(p0),
        "std_error": se,
        "method": f"weighted, robust (linearisation) Wald CI on the {scale} scale",
        "test": "Wald (robust)",
        "continuity_correction": False,
    }


@dataclass(frozen=True)
class _Strata:
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray

    @property
    def n1(self) -> np.ndarray:
        return self.a + self.b

    @property
    def n0(self) -> np.ndarray:
        return self.c + self.d

    @property
    def n(self) -> np.ndarray:
        return self.a + self.b + self.c + self.d


def _strata_counts(sub: pd.DataFrame, lv: Any) -> tuple[_Strata, int]:
    is1 = (sub["g"] == lv).to_numpy()
    y = sub["y"].to_numpy()
    s = sub["s"].to_numpy()
    w = sub["w"].to_numpy()
    keys, inv = np.unique(s, return_inverse=True)
    k = len(keys)
    a = np.bincount(inv, weights=w * y * is1, minlength=k).round()
    n1 = np.bincount(inv, weights=w * is1, minlength=k).round()
    c = np.bincount(inv, weights=w * y * ~is1, minlength=k).round()
    n0 = np.bincount(inv, weights=w * ~is1, minlength=k).round()
    informative = (n1 > 0) & (n0 > 0)
    st = _Strata(a[informative], (n1 - a)[informative], c[informative], (n0 - c)[informative])
    return st, int(k - informative.sum())


def mantel_haenszel(
    st: _Strata, measure: str, conf_level: float, *, continuity: bool = False
) -> dict[str, float]:
    """Mantel-Haenszel pooled estimate, CI, CMH test and homogeneity test (internal)."""
    a, b, c, d = st.a, st.b, st.c, st.d
    n1, n0, n = st.n1, st.n0, st.n
    m1, m0 = a + c, b + d
    z = z_value(conf_level)
    k = len(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "or":
            r = a * d / n
            s = b * c / n
            R, S = r.sum(), s.sum()
            est = R / S
            P = (a + d) / n
            Q = (b + c) / n
            var = (
                (P * r).sum() / (2 * R**2)
                + ((P * s) + (Q * r)).sum() / (2 * R * S)
                + (Q * s).sum() / (2 * S**2)
            )
            se = float(np.sqrt(var))
            lo, hi = est * np.exp(-z * se), est * np.exp(z * se)
            het = _breslow_day_tarone(st, est)
        elif measure == "rr":
            R = (a * n0 / n).sum()
            S = (c * n1 / n).sum()
            est = R / S
            var = ((n1 * n0 * m1 - a * c * n) / n**2).sum() / (R * S)
            se = float(np.sqrt(var))
            lo, hi = est * np.exp(-z * se), est * np.exp(z * se)
            het = _cochran_q(st, "rr", np.log(est))
        else:
            W = (n1 * n0 / n).sum()
            est = ((a * n0 - c * n1) / n).sum() / W
            P = ((n1**2 * c - n0**2 * a + n1 * n0 * (n0 - n1) / 2.0) / n**2).sum()
            Q = ((a * (n0 - c) + c * (n1 - a)) / (2.0 * n)).sum()
            var = (est * P + Q) / W**2
            se = float(np.sqrt(var))
            lo, hi = est - z * se, est + z * se
            het = _cochran_q(st, "rd", est)
        # Cochran-Mantel-Haenszel test; R mantelhaen.test(correct = TRUE) subtracts 0.5
        # from |delta| only when |delta| >= 0.5
        ea = n1 * m1 / n
        va = np.where(n > 1, n1 * n0 * m1 * m0 / (n**2 * (n - 1)), 0.0)
        delta = abs(a.sum() - ea.sum())
        if continuity and delta >= 0.5:
            delta -= 0.5
        cmh = delta**2 / va.sum()
    p_value = float(stats.chi2.sf(cmh, 1)) if np.isfinite(cmh) else float("nan")
    return {
        "estimate": float(est),
        "ci_lower": float(lo),
        "ci_upper": float(hi),
        "p_value": p_value,
        "std_error": se,
        "cmh_statistic": float(cmh),
        "n_strata": k,
        **het,
    }


def _breslow_day_tarone(st: _Strata, or_mh: float) -> dict[str, Any]:
    """Breslow-Day statistic with Tarone's correction, df = informative strata − 1.

    A stratum whose expected count under the common OR sits on the edge of its support
    (zero variance, e.g. no events at all in the stratum) carries no information on
    heterogeneity and is left out, as in SAS ``PROC FREQ``.
    """
    out = {
        "homogeneity_statistic": float("nan"),
        "homogeneity_df": 0,
        "homogeneity_p_value": float("nan"),
        "homogeneity_test": "Breslow-Day (Tarone)",
    }
    if not (np.isfinite(or_mh) and or_mh > 0):
        return out
    a, n1, n0, m1 = st.a, st.n1, st.n0, st.a + st.c
    lo = np.maximum(0.0, m1 - n0)
    hi = np.minimum(n1, m1)
    ea = np.full(len(a), np.nan)
    va = np.full(len(a), np.nan)
    for i in range(len(a)):
        if hi[i] <= lo[i]:
            continue  # a single possible table: no information
        # expected a under the common OR: the root in [lo, hi] of
        # x (n0 - m1 + x) = OR (n1 - x)(m1 - x)
        qa = 1.0 - or_mh
        qb = (n0[i] - m1[i]) + or_mh * (n1[i] + m1[i])
        qc = -or_mh * n1[i] * m1[i]
        if abs(qa) < 1e-12:
            root = -qc / qb
        else:
            disc = np.sqrt(max(qb * qb - 4 * qa * qc, 0.0))
            roots = np.array([(-qb + disc) / (2 * qa), (-qb - disc) / (2 * qa)])
            inside = roots[(roots >= lo[i] - 1e-9) & (roots <= hi[i] + 1e-9)]
            root = float(inside[0]) if len(inside) else float(np.clip(roots[0], lo[i], hi[i]))
        cells = np.array([root, n1[i] - root, m1[i] - root, n0[i] - m1[i] + root])
        if np.any(cells <= 1e-12):
            continue
        ea[i] = root
        va[i] = 1.0 / np.sum(1.0 / cells)
    use = np.isfinite(va) & (va > 0)
    df = int(use.sum()) - 1
    if df < 1:
        return out
    a, ea, va = a[use], ea[use], va[use]
    bd = float(((a - ea) ** 2 / va).sum() - (a.sum() - ea.sum()) ** 2 / va.sum())
    out.update(
        {
            "homogeneity_statistic": bd,
            "homogeneity_df": df,
            "homogeneity_p_value": float(stats.chi2.sf(bd, df)),
        }
    )
    return out


def _cochran_q(st: _Strata, measure: str, pooled: float) -> dict[str, Any]:
    """Cochran's Q on stratum-specific log RR or RD with inverse-variance weights."""
    a, b, c, d = st.a, st.b, st.c, st.d
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "rr":
            zero = (a == 0) | (c == 0)
            aa, bb, cc, dd = (x + 0.5 * zero for x in (a, b, c, d))
            theta = np.log((aa / (aa + bb)) / (cc / (cc + dd)))
            var = 1 / aa - 1 / (aa + bb) + 1 / cc - 1 / (cc + dd)
        else:
            p1, p0 = a / (a + b), c / (c + d)
            theta = p1 - p0
            var = p1 * (1 - p1) / (a + b) + p0 * (1 - p0) / (c + d)
        ok = np.isfinite(theta) & np.isfinite(var) & (var > 0)
        w = 1 / var[ok]
        th = theta[ok]
        pooled_iv = (w * th).sum() / w.sum() if ok.any() else np.nan
        q = float((w * (th - pooled_iv) ** 2).sum())
    df = int(ok.sum()) - 1
    p = float(stats.chi2.sf(q, df)) if df > 0 else float("nan")
    name = "Cochran Q (log RR)" if measure == "rr" else "Cochran Q (RD)"
    return {
        "homogeneity_statistic": q if df > 0 else float("nan"),
        "homogeneity_df": max(df, 0),
        "homogeneity_p_value": p,
        "homogeneity_test": name,
    }


def _stratified_row(
    sub: pd.DataFrame,
    lv: Any,
    ref: Any,
    *,
    measure: str,
    conf_level: float,
    continuity: bool = False,
    notes: list[str],
) -> dict[str, Any]:
    st, dropped = _strata_counts(sub, lv)
    if dropped:
        notes.append(
            f"{lv} vs {ref}: {plural(dropped, 'stratum')} without both groups carry no information and were dropped."
        )
    a, n1, c, n0 = int(st.a.sum()), int(st.n1.sum()), int(st.c.sum()), int(st.n0.sum())
    if len(st.a) == 0:
        res: dict[str, Any] = {
            "estimate": np.nan,
            "ci_lower": np.nan,
            "ci_upper": np.nan,
            "p_value": np.nan,
            "std_error": np.nan,
            "n_strata": 0,
            "cmh_statistic": np.nan,
            "homogeneity_statistic": np.nan,
            "homogeneity_df": 0,
            "homogeneity_p_value": np.nan,
            "homogeneity_test": "",
        }
        notes.append(f"{lv} vs {ref}: no stratum holds both groups; nothing to pool.")
    else:
        res = mantel_haenszel(st, measure, conf_level, continuity=continuity)
        if not (np.isfinite(res["ci_lower"]) and np.isfinite(res["ci_upper"])):
            notes.append(
                f"{lv} vs {ref}: the Mantel-Haenszel {MEASURE_NAMES[measure]} or its CI is undefined "
                "(zero events or zero non-events in one group in every stratum); no CI is given. "
                "Report the stratum counts or an exact analysis instead."
            )
    variance = {"or": "Robins-Breslow-Greenland", "rr": "Greenland-Robins", "rd": "Sato"}[measure]
    return {
        "estimate": res["estimate"],
        "ci_lower": res["ci_lower"],
        "ci_upper": res["ci_upper"],
        "p_value": res["p_value"],
        "n": n1,
        "events": a,
        "risk": a / n1 if n1 else np.nan,
        "n_reference": n0,
        "events_reference": c,
        "risk_reference": c / n0 if n0 else np.nan,
        "std_error": res["std_error"],
        "method": f"Mantel-Haenszel ({variance} variance)",
        "test": "Cochran-Mantel-Haenszel",
        "statistic": res["cmh_statistic"],
        "continuity_correction": bool(continuity),
        "n_strata": res["n_strata"],
        "homogeneity_statistic": res["homogeneity_statistic"],
        "homogeneity_df": res["homogeneity_df"],
        "homogeneity_p_value": res["homogeneity_p_value"],
        "homogeneity_test": res["homogeneity_test"],
    }
