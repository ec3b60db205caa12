"""NOMs change: intake vs 6-month follow-up on matched pairs, with McNemar's test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recoverystats._checks import as_column_list
from recoverystats.errors import InvalidParameterError
from recoverystats.io.program import ProgramData
from recoverystats.measures._common import (
    attach_summary_attrs,
    beyond_cutoff_note,
    check_collect,
    check_program,
    day_number,
    earliest,
    is_engine_program,
    positions,
    resolve_as_of,
    text_take,
    to_days,
)
from recoverystats.measures.followup import FOLLOWUP_TIMEPOINT, check_window

#: NOMs items: name -> (assessment column, True when the positive outcome is the column being False).
NOMS_ITEMS: dict[str, tuple[str, bool]] = {
    "abstinence": ("any_use_30d", True),
    "no_arrest": ("arrested_30d", True),
    "employed_or_school": ("employed_or_school", False),
    "stable_housing": ("stable_housing", False),
    "social_support": ("social_support", False),
}

NOMS_COLUMNS: tuple[str, ...] = (
    "item", "n_pairs", "intake_yes", "followup_yes", "pct_intake", "pct_followup", "change_pp",
    "yes_to_no", "no_to_yes", "test", "statistic", "p_value",
)
TEST_EXACT = "exact binomial"
TEST_CHI2 = "chi-square (continuity corrected)"


def mcnemar_test(b: np.ndarray, c: np.ndarray, *, exact_threshold: int = 25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """McNemar's test on discordant counts, vectorised.

    Exact two-sided binomial test when ``b + c < exact_threshold`` (statistic
    ``min(b, c)``, ``p = min(1, 2 * binom.cdf(min(b, c), b + c, 0.5))``), otherwise the
    continuity-corrected chi-square ``(|b - c| - 1)^2 / (b + c)`` on 1 df. Matches
    statsmodels ``mcnemar([[a, b], [c, d]], exact=..., correction=True)``. With no
    discordant pairs (``b + c = 0``) the exact test is used whatever the threshold
    (statistic 0, p = 1): the chi-square is undefined there (statsmodels returns an
    infinite statistic and p = 0).
    Returns ``(test, statistic, p_value)``.
    """
    from scipy.special import bdtr, chdtrc  # lighter to import than scipy.stats

    b = np.asarray(b, dtype="float64")
    c = np.asarray(c, dtype="float64")
    nd = b + c
    # no discordant pairs: no evidence of change (exact p = 1); the chi-square would divide by zero
    exact = (nd < exact_threshold) | (nd == 0)
    k = np.minimum(b, c)
    p_exact = np.minimum(1.0, 2.0 * bdtr(k.astype("int64"), nd.astype("int64"), 0.5))
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = (np.abs(b - c) - 1.0) ** 2 / nd
    p_chi2 = chdtrc(1.0, chi2)
    stat = np.where(exact, k, chi2)
    p = np.where(exact, p_exact, p_chi2)
    test = np.where(exact, TEST_EXACT, TEST_CHI2).astype(object)
    return test, stat, p


def _first_per_participant(a: pd.DataFrame, pos_all: np.ndarray, day_all: np.ndarray, n: int, timepoint: str,
                           cols: list[str], as_of_day: float, index_day: np.ndarray | None = None,
                           window: tuple[int, int] | None = None) -> pd.DataFrame:
    """Each participant's first ``timepoint`` assessment up to ``as_of`` (within ``window``
    days of ``index_day`` when given): ``pos, day`` and the ``cols`` as "boolean", by ``pos``.
    ``pos_all``/``day_all``: participant position (of ``n``) and day number of every row of ``a``."""
    rows = np.flatnonzero((a["timepoint"] == timepoint).fillna(False).to_numpy(dtype=bool))
    day = day_all[rows]
    pos = pos_all[rows]
    ok = (pos >= 0) & ~np.isnan(day) & (day <= as_of_day)
    if window is not None and index_day is not None:
        rel = day - index_day[np.maximum(pos, 0)]
        ok &= (rel >= window[0]) & (rel <= window[1])
    # each participant's earliest assessment (ties: data order), in participant order
    kept = np.flatnonzero(ok)
    i = earliest(pos[kept], day[kept], n)
    first = kept[i[i >= 0]]
    out = pd.DataFrame({"pos": pos[first], "day": day[first]})
    for c in cols:
        out[c] = a[c].take(rows).astype("boolean").array.take(first)
    return out


def noms_change(
    prog: ProgramData,
    *,
    items: Sequence[str] = tuple(NOMS_ITEMS),
    by: str | Sequence[str] | None = None,
    window: tuple[int, int] | None = None,
    as_of: Any = None,
    exact_threshold: int = 25,
    collect: bool = True,
) -> pd.DataFrame:
    """Change in past-30-day NOMs items from intake to the 6-month follow-up, matched pairs.

    Parameters
    ----------
    prog
        The program: ``assessments`` with ``intake`` and ``followup_6m`` rows.
    items
        Any of ``abstinence`` (not ``any_use_30d``), ``no_arrest`` (not
        ``arrested_30d``), ``employed_or_school``, ``stable_housing``,
        ``social_support`` (default: all five).
    by
        Optional participant column(s) to stratify by (e.g. ``"group"``).
    window
        Optional ``(start, end)`` days after intake: only follow-ups in that window
        count (e.g. ``(150, 240)``); default every ``followup_6m`` assessment.
    as_of
        Data cut-off (assessments after it are ignored); default ``prog.as_of``, else
        the latest date in the data.
    exact_threshold
        Use the exact binomial test when the discordant pairs number fewer than this
        (default 25), else the continuity-corrected chi-square.
    collect
        Programs held by an engine (``read_program(..., engine="duckdb"|"spark")``) only:
        ``True`` (default) runs the measure's engine definition
        (:mod:`recoverystats.engines.measures`) and returns this DataFrame; ``False``
        returns the unexecuted Ibis expression, for the sufficient statistics
        (``engines.measures.survival_counts``, ``proportion_cells``, ``pattern_counts``)
        when the per-participant table is too large to collect.

    Returns
    -------
    pandas.DataFrame
        A tidy table (not one row per participant; this is a summary), one row per
        by-level and item: ``by-columns..., item, n_pairs, intake_yes, followup_yes,
        pct_intake, pct_followup`` (percent, 0-100), ``change_pp`` (percentage points,
        follow-up minus intake), ``yes_to_no`` (b), ``no_to_yes`` (c), ``test``,
        ``statistic``, ``p_value``. ``n_pairs == 0`` gives NaN percentages and p-value.
        ``df.attrs["measure"]`` holds the definition and parameters.

    Notes
    -----
    For an item with matched pairs tabulated as intake (rows) x follow-up (columns),
    ``[[a, b], [c, d]]`` (yes first), :math:`\\Delta = (c - b) / n` and McNemar's test
    uses only the discordant pairs b and c: exact
    :math:`p = \\min(1, 2 P(X \\le \\min(b, c)))`, :math:`X \\sim \\text{Bin}(b + c, 1/2)`
    when :math:`b + c` < ``exact_threshold``, otherwise
    :math:`\\chi^2 = (|b - c| - 1)^2 / (b + c)` on 1 df. Matches statsmodels
    ``statsmodels.stats.contingency_tables.mcnemar(table, exact=b + c < 25,
    correction=True)`` and R ``mcnemar.test(table)`` (chi-square) /
    ``binom.test(min(b, c), b + c)`` (exact).
    """
    if is_engine_program(prog):
        from recoverystats.engines.measures import run_measure

        return run_measure(prog, "noms_change", collect=collect, items=items, by=by, window=window, as_of=as_of,
                           exact_threshold=exact_threshold)
    check_collect(collect, "noms_change")
    check_program(prog, "noms_change")
    items = [items] if isinstance(items, str) else list(items)
    bad = [i for i in items if i not in NOMS_ITEMS]
    if bad or not items:
        raise InvalidParameterError(
            f"items: unknown NOMs item(s) {', '.join(map(repr, bad)) or '(none given)'}; "
            f"choose from {', '.join(NOMS_ITEMS)}."
        )
    if not isinstance(exact_threshold, (int, np.integer)) or exact_threshold < 0:
        raise InvalidParameterError(f"exact_threshold must be a non-negative whole number (e.g. 25); got {exact_threshold!r}.")
    win = None if window is None else check_window(window)
    by_cols = as_column_list(by)
    p = prog.participants
    missing = [c for c in by_cols if c not in p.columns]
    if missing:
        raise InvalidParameterError(
            f"by: column(s) {', '.join(map(repr, missing))} not found in participants; "
            f"available: {', '.join(map(str, p.columns))}."
        )
    as_of_ts, as_of_source = resolve_as_of(prog, as_of, "noms_change")
    a = day_number(as_of_ts)
    cols = sorted({NOMS_ITEMS[i][0] for i in items})
    for c in cols:
        if c not in prog.assessments.columns:
            raise InvalidParameterError(f"items: assessments has no column {c!r}; add it or drop the item.")

    asm = prog.assessments
    pos_all = positions(prog, asm["participant_id"])  # one lookup for both timepoints
    day_all = to_days(asm["assessment_date"])
    intake = _first_per_participant(asm, pos_all, day_all, len(p), "intake", cols, a)
    idx = np.full(len(p), np.nan)
    idx[intake["pos"].to_numpy()] = intake["day"].to_numpy()
    fu = _first_per_participant(asm, pos_all, day_all, len(p), FOLLOWUP_TIMEPOINT, cols, a, idx, win)
    pairs = intake.merge(fu, on="pos", suffixes=("_intake", "_fu"))
    for c in by_cols:
        at = pairs["pos"].to_numpy()
        pairs[c] = text_take(p[c], at) if isinstance(p[c].dtype, pd.StringDtype) else p[c].astype(object).to_numpy()[at]
    levels = p[by_cols].astype(object).drop_duplicates().sort_values(by_cols, na_position="last") if by_cols else None

    rows = []
    for item in items:
        col, negate = NOMS_ITEMS[item]
        x0 = pairs[f"{col}_intake"]
        x1 = pairs[f"{col}_fu"]
        ok = (x0.notna() & x1.notna()).to_numpy(dtype=bool)
        y0 = x0.to_numpy(dtype=bool, na_value=False)
        y1 = x1.to_numpy(dtype=bool, na_value=False)
        if negate:
            y0, y1 = ~y0, ~y1
        t = pd.DataFrame({
            "n_pairs": ok.astype("int64"),
            "intake_yes": (ok & y0).astype("int64"),
            "followup_yes": (ok & y1).astype("int64"),
            "yes_to_no": (ok & y0 & ~y1).astype("int64"),
            "no_to_yes": (ok & ~y0 & y1).astype("int64"),
        })
        for c in by_cols:
            t[c] = pairs[c]  # same default index; keeps the dtype without re-inferring it
        if levels is not None:
            g = t.groupby(by_cols, dropna=False, observed=True).sum().reset_index()
            g = levels.merge(g, on=by_cols, how="left").fillna(
                {k: 0 for k in ("n_pairs", "intake_yes", "followup_yes", "yes_to_no", "no_to_yes")})
        else:
            g = t.sum().to_frame().T
        g.insert(len(by_cols), "item", item)
        rows.append(g)
    out = pd.concat(rows, ignore_index=True)
    for c in ("n_pairs", "intake_yes", "followup_yes", "yes_to_no", "no_to_yes"):
        out[c] = out[c].astype("int64")
    npairs = out["n_pairs"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["pct_intake"] = np.where(npairs > 0, 100.0 * out["intake_yes"] / npairs, np.nan)
        out["pct_followup"] = np.where(npairs > 0, 100.0 * out["followup_yes"] / npairs, np.nan)
    out["change_pp"] = out["pct_followup"] - out["pct_intake"]
    test, stat, pval = mcnemar_test(out["yes_to_no"].to_numpy(), out["no_to_yes"].to_numpy(),
                                    exact_threshold=int(exact_threshold))
    empty = npairs == 0
    out["test"] = np.where(empty, None, test)
    out["statistic"] = np.where(empty, np.nan, stat)
    out["p_value"] = np.where(empty, np.nan, pval)
    out = out[[*by_cols, *NOMS_COLUMNS]]
    notes = [n for n in (beyond_cutoff_note(prog, as_of_ts),) if n]
    if empty.any():
        notes.append(f"{int(empty.sum())} row(s) with no matched pairs: percentages and p-value are NaN.")
    attach_summary_attrs(out, "noms_change", as_of=as_of_ts, as_of_source=as_of_source,
                         parameters={"items": tuple(items), "by": tuple(by_cols), "window": win,
                                     "exact_threshold": int(exact_threshold)},
                         n_participants_with_pairs=int(len(pairs)), notes=notes)
    return out
