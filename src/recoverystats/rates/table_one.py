"""Table 1: baseline characteristics by group with standardized mean differences."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from recoverystats._checks import as_column_list, check_columns, check_dataframe
from recoverystats.errors import InvalidParameterError
from recoverystats.rates._common import ordered_levels
from recoverystats.results.rates import TableOneResult

__all__ = ["table_one", "smd_continuous", "smd_categorical"]

STAT_FIELDS = ("n", "pct", "mean", "sd", "median", "q1", "q3")


def smd_continuous(x1: np.ndarray, x2: np.ndarray) -> float:
    """Absolute SMD ``|m1 − m2| / sqrt((s1² + s2²)/2)`` (sample SDs, ddof = 1)."""
    x1, x2 = np.asarray(x1, float), np.asarray(x2, float)
    if len(x1) < 2 or len(x2) < 2:
        return float("nan")
    v = (np.var(x1, ddof=1) + np.var(x2, ddof=1)) / 2.0
    diff = abs(np.mean(x1) - np.mean(x2))
    if v == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / np.sqrt(v))


def smd_categorical(p1: np.ndarray, p2: np.ndarray) -> float:
    """Yang & Dalton (2012) SMD for a categorical variable from two vectors of level shares.

    ``sqrt(Tᵀ S⁻¹ T)`` with ``T = p1 − p2`` over all levels but the first and
    ``S = (S1 + S2)/2``, ``S_k[i,i] = p_i(1−p_i)``, ``S_k[i,j] = −p_i p_j``. For a binary
    variable this is ``|p1 − p2| / sqrt((p1(1−p1) + p2(1−p2))/2)``.
    """
    p1, p2 = np.asarray(p1, float)[1:], np.asarray(p2, float)[1:]
    t = p1 - p2
    if np.allclose(t, 0):
        return 0.0

    def cov(p: np.ndarray) -> np.ndarray:
        s = -np.outer(p, p)
        np.fill_diagonal(s, p * (1 - p))
        return s

    s = (cov(p1) + cov(p2)) / 2.0
    try:
        val = float(t @ np.linalg.pinv(s) @ t)
    except np.linalg.LinAlgError:  # pragma: no cover
        return float("nan")
    return float(np.sqrt(max(val, 0.0)))


def _is_binary(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s.dtype):
        return True
    if pd.api.types.is_numeric_dtype(s.dtype):
        vals = set(pd.unique(s.dropna()))
        return len(vals) > 0 and vals <= {0, 1}
    return False


def table_one(
    df: pd.DataFrame,
    *,
    group: str,
    variables: Sequence[str] | None = None,
    smd: bool = True,
    pvalues: bool = False,
    categorical: Sequence[str] | None = None,
    nonnormal: Sequence[str] | None = None,
    overall: bool = True,
    digits: int = 1,
) -> TableOneResult:
    """Baseline characteristics by group: n (%), mean (SD), median [IQR], missing, SMD.

    Parameters
    ----------
    df
        One row per participant.
    group
        Column defining the columns of the table (e.g. ``"group"``).
    variables
        Columns to describe, in order. Default: every column except ``group``, skipping
        date columns and identifier-like text columns (every value distinct); a note
        lists what was skipped.
    smd
        Report standardized mean differences (``smd`` column).
    pvalues
        Report p-values (``p_value`` and ``test`` columns).
    categorical
        Numeric columns to treat as categorical. Text, categorical and boolean columns
        are always categorical; numeric columns holding only 0/1 are shown as binary
        (one row: the share with value 1).
    nonnormal
        Continuous columns to summarise by median [IQR] only and test with
        Kruskal-Wallis instead of the t-test/ANOVA.
    overall
        Add an ``Overall`` column.
    digits
        Decimals in the formatted display (the ``.table`` is never rounded).

    Returns
    -------
    TableOneResult
        Tidy numeric ``.table``: ``variable, level, kind`` (``count``, ``categorical``,
        ``continuous`` or ``missing``), then for each group ``g`` the columns ``g|n``,
        ``g|pct``, ``g|mean``, ``g|sd``, ``g|median``, ``g|q1``, ``g|q3``, then ``smd``,
        ``p_value``, ``test``. ``display_table()`` gives the formatted text table.

    Notes
    -----
    Levels of categorical columns appear in category order (pandas ``Categorical``), in
    the data model's code order for coded participant columns (``risk_level``: low,
    moderate, high, very_high; ``gender``; ``discharge_reason``), otherwise sorted.
    Percentages use the non-missing rows of the group as denominator; missing values
    get their own ``(missing)`` row when present. SD uses ``ddof = 1``; quartiles are
    pandas' linear interpolation (R ``quantile(type = 7)``).

    SMD, two groups: continuous ``|m1 − m2| / sqrt((s1² + s2²)/2)``; categorical and
    binary: Yang & Dalton's multivariate SMD (see :func:`smd_categorical`), computed on
    non-missing values. With more than two groups the SMD is the mean of the pairwise
    SMDs, as R ``tableone::CreateTableOne(..., smd = TRUE)`` (``ExtractSmd``) reports.

    p-values: categorical — Pearson chi-square (no continuity correction), or Fisher's
    exact test for a 2x2 table with an expected count below 5 (an r x c table with small
    expected counts keeps the chi-square and a note says so); continuous — Welch's
    t-test for two groups, one-way ANOVA for more; ``nonnormal`` — Kruskal-Wallis
    (equivalent to Wilcoxon-Mann-Whitney for two groups). Equivalent R:
    ``tableone::CreateTableOne(vars, strata = group, data, test = TRUE)`` (which uses the
    equal-variance t-test) or ``gtsummary::tbl_summary(by = group) |> add_p()``.

    References
    ----------
    Yang D, Dalton JE (2012). A unified approach to measuring the effect size between
    two groups using SAS. SAS Global Forum, paper 335-2012.
    Austin PC (2009). Balance diagnostics for comparing the distribution of baseline
    covariates between treatment groups in propensity-score matched samples.
    Stat Med 28:3083-3107.

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats.rates import table_one
    >>> d = pd.DataFrame({"arm": ["a", "a", "b", "b"], "age": [20.0, 30.0, 40.0, 50.0],
    ...                   "female": [1, 0, 1, 1]})
    >>> t1 = table_one(d, group="arm")
    >>> t1.display_table()[["variable", "level", "a", "b"]].values.tolist()
    [['n', '', '2', '2'], ['age', 'mean (SD)', '25.0 (7.1)', '45.0 (7.1)'], ['', 'median [IQR]', '25.0 [22.5, 27.5]', '45.0 [42.5, 47.5]'], ['female', '1', '1 (50.0%)', '2 (100.0%)']]
    """
    check_dataframe(df)
    if not isinstance(group, str):
        raise InvalidParameterError(f"group must be one column name; got {group!r}.")
    check_columns(df, [group], "group")
    cat_set = set(as_column_list(categorical))
    nonnormal_set = set(as_column_list(nonnormal))
    notes: list[str] = []
    if variables is None:
        chosen, skipped = [], []
        for c in df.columns:
            if c == group:
                continue
            s = df[c]
            if pd.api.types.is_datetime64_any_dtype(s.dtype):
                skipped.append(c)
                continue
            if (
                not pd.api.types.is_numeric_dtype(s.dtype)
                and not pd.api.types.is_bool_dtype(s.dtype)
                and not isinstance(s.dtype, pd.CategoricalDtype)
                and s.notna().sum() > 10
                and s.nunique(dropna=True) == s.notna().sum()
            ):
                skipped.append(c)
                continue
            chosen.append(c)
        if skipped:
            notes.append(f"Not described (dates or identifiers): {', '.join(map(str, skipped))}.")
        variables = chosen
    else:
        variables = as_column_list(variables)
        check_columns(df, variables, "variables")
        if group in variables:
            raise InvalidParameterError(
                f"variables: the group column {group!r} cannot also be described."
            )
    check_columns(df, sorted(cat_set), "categorical")
    check_columns(df, sorted(nonnormal_set), "nonnormal")

    gcol = df[group]
    n_missing_group = int(gcol.isna().sum())
    data = df.loc[gcol.notna()]
    if n_missing_group:
        notes.append(f"{n_missing_group:,} rows with a missing {group!r} excluded.")
    if isinstance(gcol.dtype, pd.CategoricalDtype):
        levels = [lv for lv in gcol.cat.categories]
    else:
        try:
            levels = sorted(pd.unique(data[group]))
        except TypeError:
            levels = sorted(pd.unique(data[group]), key=str)
    if len(levels) < 1:
        raise InvalidParameterError(f"group: column {group!r} has no non-missing values.")
    labels = [str(lv) for lv in levels]
    if len(set(labels)) != len(labels):
        raise InvalidParameterError(
            f"group: levels of {group!r} are not distinct as text: {labels!r}."
        )
    if overall and "Overall" in labels:
        raise InvalidParameterError(
            f"group: a level of {group!r} is called 'Overall'; pass overall=False."
        )
    masks = {lab: (data[group] == lv).to_numpy() for lab, lv in zip(labels, levels, strict=True)}
    cols = (["Overall"] if overall else []) + labels
    if overall:
        masks = {"Overall": np.ones(len(data), dtype=bool), **masks}
    small_chi2: list[str] = []
    empty_groups = [lab for lab in labels if not masks[lab].any()]
    if empty_groups:
        notes.append(
            f"No rows in group(s) {', '.join(map(repr, empty_groups))}: their columns are empty "
            "and they are left out of SMDs and p-values."
        )

    rows: list[dict[str, Any]] = []
    first = {"variable": "n", "level": "", "kind": "count"}
    for g in cols:
        first.update(_blank(g))
        first[f"{g}|n"] = float(masks[g].sum())
    first.update({"smd": np.nan, "p_value": np.nan, "test": ""})
    rows.append(first)

    for var in variables:
        s = data[var]
        is_bool = pd.api.types.is_bool_dtype(s.dtype)
        binary = is_bool or (var not in cat_set and _is_binary(s))
        is_cat = (
            binary
            or var in cat_set
            or not pd.api.types.is_numeric_dtype(s.dtype)
            or isinstance(s.dtype, pd.CategoricalDtype)
        )
        if var in nonnormal_set and is_cat:
            raise InvalidParameterError(
                f"nonnormal: {var!r} is categorical; nonnormal applies to continuous columns only."
            )
        miss = s.isna().to_numpy()
        if is_cat:
            rows.extend(
                _categorical_rows(
                    var, s, miss, masks, cols, labels, binary, is_bool, smd, pvalues, small_chi2
                )
            )
        else:
            rows.extend(
                _continuous_rows(
                    var, s, miss, masks, cols, labels, var in nonnormal_set, smd, pvalues
                )
            )
        if miss.any():
            row = {"variable": var, "level": "(missing)", "kind": "missing"}
            for g in cols:
                row.update(_blank(g))
                m = masks[g]
                row[f"{g}|n"] = float(miss[m].sum())
                row[f"{g}|pct"] = 100.0 * miss[m].sum() / m.sum() if m.sum() else np.nan
            row.update({"smd": np.nan, "p_value": np.nan, "test": ""})
            rows.append(row)
    if small_chi2:
        notes.append(
            "Chi-square test with expected counts below 5 (no exact r x c test computed): "
            + ", ".join(small_chi2)
            + "."
        )
    if len(labels) > 2 and smd:
        notes.append("SMD with more than two groups: mean of the pairwise SMDs (as R tableone).")
    if len(labels) < 2 and (smd or pvalues):
        notes.append(f"Only one group in {group!r}: no SMDs or p-values.")
    table = pd.DataFrame(rows)
    if not smd:
        table = table.drop(columns="smd")
    if not pvalues:
        table = table.drop(columns=["p_value", "test"])
    return TableOneResult(
        _table=table,
        conf_level=None,
        method="n (%), mean (SD), median [IQR]" + (", SMD" if smd else ""),
        n_used=int(len(data)),
        n_excluded=n_missing_group,
        notes=tuple(notes),
        group=group,
        groups=tuple(labels),
        nonnormal=tuple(v for v in variables if v in nonnormal_set),
        digits=int(digits),
    )


def _blank(g: str) -> dict[str, float]:
    return {f"{g}|{f}": np.nan for f in STAT_FIELDS}


def _pairwise_mean(values: list[float]) -> float:
    vals = [v for v in values if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _categorical_rows(
    var: str,
    s: pd.Series,
    miss: np.ndarray,
    masks: dict[str, np.ndarray],
    cols: list[str],
    labels: list[str],
    binary: bool,
    is_bool: bool,
    smd: bool,
    pvalues: bool,
    small_chi2: list[str],
) -> list[dict[str, Any]]:
    if binary:
        levels: list[Any] = [False, True] if is_bool else [0, 1]
    elif isinstance(s.dtype, pd.CategoricalDtype):
        levels = list(s.cat.categories)
    else:
        levels = ordered_levels(var, pd.unique(s.dropna()))
    src = s.astype("Int64") if binary and not is_bool else s
    codes = pd.Categorical(src, categories=levels).codes
    counts = {
        g: np.bincount(codes[masks[g] & (codes >= 0)], minlength=len(levels)).astype(float)
        for g in cols
    }
    shares = {
        g: counts[g] / counts[g].sum() if counts[g].sum() else np.full(len(levels), np.nan)
        for g in cols
    }
    smd_val = np.nan
    if smd and len(labels) >= 2 and len(levels) >= 2:
        smd_val = _pairwise_mean(
            [smd_categorical(shares[a], shares[b]) for a, b in itertools.combinations(labels, 2)]
        )
    elif smd and len(labels) >= 2:
        smd_val = 0.0
    p_value, test = np.nan, ""
    if pvalues and len(labels) >= 2:
        tab = np.array([counts[g] for g in labels])
        tab = tab[:, tab.sum(axis=0) > 0]
        tab = tab[tab.sum(axis=1) > 0]
        if tab.shape[0] >= 2 and tab.shape[1] >= 2:
            expected = stats.contingency.expected_freq(tab)
            if tab.shape == (2, 2) and (expected < 5).any():
                p_value, test = float(stats.fisher_exact(tab).pvalue), "Fisher exact"
            else:
                res = stats.chi2_contingency(tab, correction=False)
                p_value, test = float(res.pvalue), "Pearson chi-square"
                if (expected < 5).any():
                    small_chi2.append(var)
    shown = [levels[-1]] if binary else levels
    rows = []
    for lv in shown:
        k = levels.index(lv)
        row: dict[str, Any] = {"variable": var, "level": str(lv), "kind": "categorical"}
        for g in cols:
            row.update(_blank(g))
            row[f"{g}|n"] = counts[g][k]
            row[f"{g}|pct"] = 100.0 * shares[g][k] if np.isfinite(shares[g][k]) else np.nan
        row.update({"smd": smd_val, "p_value": p_value, "test": test})
        rows.append(row)
    return rows


def _continuous_rows(
    var: str,
    s: pd.Series,
    miss: np.ndarray,
    masks: dict[str, np.ndarray],
    cols: list[str],
    labels: list[str],
    nonnormal: bool,
    smd: bool,
    pvalues: bool,
) -> list[dict[str, Any]]:
    x = s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    row: dict[str, Any] = {"variable": var, "level": "", "kind": "continuous"}
    groups_x = {}
    for g in cols:
        v = x[masks[g] & ~miss]
        groups_x[g] = v
        row.update(_blank(g))
        row[f"{g}|n"] = float(len(v))
        if len(v):
            q1, med, q3 = np.percentile(v, [25, 50, 75])
            row.update(
                {
                    f"{g}|mean": float(v.mean()),
                    f"{g}|sd": float(v.std(ddof=1)) if len(v) > 1 else np.nan,
                    f"{g}|median": float(med),
                    f"{g}|q1": float(q1),
                    f"{g}|q3": float(q3),
                }
            )
    smd_val = np.nan
    if smd and len(labels) >= 2:
        smd_val = _pairwise_mean(
            [smd_continuous(groups_x[a], groups_x[b]) for a, b in itertools.combinations(labels, 2)]
        )
    p_value, test = np.nan, ""
    samples = [groups_x[g] for g in labels if len(groups_x[g]) > 0]
    if pvalues and len(samples) >= 2:
        if nonnormal:
            try:
                p_value, test = float(stats.kruskal(*samples).pvalue), "Kruskal-Wallis"
            except ValueError:  # all values identical
                p_value, test = 1.0, "Kruskal-Wallis"
        elif len(samples) == 2:
            p_value, test = float(stats.ttest_ind(*samples, equal_var=False).pvalue), "Welch t-test"
        else:
            p_value, test = float(stats.f_oneway(*samples).pvalue), "one-way ANOVA"
    row.update({"smd": smd_val, "p_value": p_value, "test": test})
    return [row]
