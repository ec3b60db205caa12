"""Attrition diagnostics: who was followed up, against the target, and what predicts it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from recoverystats._checks import as_column_list, check_columns, check_conf_level
from recoverystats.errors import DataValidationError, InvalidParameterError, RecoveryStatsError
from recoverystats.results.attrition import AttritionResult

__all__ = ["attrition", "followed_up_indicator", "COMPLETERS", "NON_COMPLETERS"]

COMPLETERS = "completers"
NON_COMPLETERS = "non_completers"
#: Largest number of levels of a text covariate used by default (ProgramData input).
MAX_DEFAULT_LEVELS = 20


def followed_up_indicator(df: pd.DataFrame, column: str, *, param: str = "followed_up") -> np.ndarray:
    """A 0/1 float array from a boolean or 0/1 column; missing values stay NaN.

    Raises ``DataValidationError`` naming the column and the offending values otherwise.
    """
    check_columns(df, [column], param)
    s = df[column]
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isnan(v) & ~np.isin(v, (0.0, 1.0))
        if not bad.any():
            return v
        shown = ", ".join(f"{x:g}" for x in np.unique(v[bad])[:8])
    else:
        shown = ", ".join(repr(x) for x in pd.unique(s.dropna())[:8])
    yes, no = ("event", "no event") if param == "outcome" else ("followed up", "not followed up")
    raise DataValidationError(
        f"{param}: column {column!r} must be 1/True ({yes}) or 0/False ({no}); found {shown}. "
        f"Code it as e.g. df[{column!r}] == 'yes'."
    )


def _from_program(prog: Any, followed_up: str | None, by: str | None, site: str | None,
                  adjust: list[str], target: float | None) -> tuple[pd.DataFrame, str, str | None, str | None,
                                                                     list[str], float, list[str]]:
    from recoverystats.measures import followup

    notes: list[str] = []
    fu = followup(prog, target=0.8 if target is None else target)
    fu = fu[fu["due"].astype(bool)].copy()
    col = followed_up or "completed_in_window"
    check_columns(fu, [col], "followed_up (a column of the followup() measure)")
    if by is None and "group" in fu and fu["group"].notna().any():
        by = "group"
    if site is None and "site" in fu and fu["site"].notna().any() and fu["site"].nunique() > 1:
        site = "site"
    if not adjust:
        covs = fu.attrs.get("measure", {}).get("covariates", [])
        for c in covs:
            s = fu[c]
            if not s.notna().any():
                continue
            if (not pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
                    and s.nunique() > MAX_DEFAULT_LEVELS):
                continue
            adjust.append(c)
        if adjust:
            notes.append("Characteristics and model: the participant covariates of the program "
                         f"({', '.join(adjust)}).")
    notes.append("Participants due for the 6-month follow-up by the cut-off (followup() measure); followed up = "
                 f"{col!r}.")
    t = fu.attrs.get("measure", {}).get("parameters", {}).get("target", 0.8) if target is None else target
    return fu, col, by, site, adjust, float(t), notes


def attrition(
    data: Any,
    *,
    followed_up: str | None = None,
    by: str | None = None,
    site: str | None = None,
    adjust: str | Iterable[str] = (),
    target: float | None = None,
    conf_level: float = 0.95,
) -> AttritionResult:
    """Attrition diagnostics: completers vs non-completers, follow-up rates, a model of follow-up.

    Parameters
    ----------
    data
        A :class:`~recoverystats.ProgramData` (the 6-month follow-up of
        :func:`recoverystats.followup` is computed: participants due by the cut-off,
        followed up = interview completed in the window) or a DataFrame with one row per
        participant. A frame with an ``eligible`` column (a measure's output) is
        restricted to eligible rows, as :func:`recoverystats.odds_ratios` does; rows
        whose ``followed_up`` is missing are left out and counted.
    followed_up
        The 1/0 (or True/False) column saying who was followed up. Required for a
        frame; for a program default ``"completed_in_window"`` (the GPRA rule).
    by
        The group column (e.g. ``"group"``; for a program ``"group"`` by default).
    site
        The site column (for a program ``"site"`` when there are several sites).
    adjust
        Baseline characteristics to compare and to put in the follow-up model. For a
        program an empty ``adjust`` means every participant covariate with a value
        (text columns with at most 20 levels); ``.notes`` lists them.
    target
        The follow-up rate target (default 0.80, the SAMHSA GPRA requirement; for a
        program the measure's target).
    conf_level
        Confidence level of the rates' Wilson intervals and the model's intervals.

    Returns
    -------
    AttritionResult
        ``.table`` (characteristics of completers vs non-completers with SMDs, the
        layout of :func:`recoverystats.table_one`), ``.rates`` (follow-up rate overall,
        by group and by site, Wilson CIs, against the target), ``.model`` (logistic
        model of being followed up on ``by``, ``site`` and ``adjust``; complete cases),
        ``.summary()`` and ``.plot()``.

    Raises
    ------
    InvalidParameterError
        Unknown columns, ``followed_up`` missing for a frame, a bad target or level.
    DataValidationError
        ``followed_up`` not 0/1, no rows left, nobody (or everybody) followed up.

    Notes
    -----
    SMDs follow :func:`recoverystats.table_one`: continuous ``|m1 - m2| /
    sqrt((s1² + s2²)/2)``, categorical and binary Yang & Dalton's multivariate SMD, on
    the non-missing values; an absolute SMD above 0.1 flags a difference. Rates and CIs:
    :func:`recoverystats.proportion` with the Wilson interval (R
    ``binom.confint(method = "wilson")``). ``vs_target``: ``"meets"`` when the rate is
    at least the target, ``"below"`` when the upper confidence limit is below it,
    ``"uncertain"`` otherwise. The model is :func:`recoverystats.odds_ratios` of being
    followed up (``method="auto"``: Firth under separation or few events), so an odds
    ratio above 1 means more likely to be followed up. Non-completers who differ from
    completers on a characteristic that also predicts the outcome make a complete-case
    comparison biased; such characteristics belong in the imputation model
    (:func:`recoverystats.missing.impute`) or the weights
    (:func:`recoverystats.missing.followup_weights`).

    References
    ----------
    SAMHSA Center for Substance Abuse Treatment. GPRA Client Outcome Measures for
    Discretionary Programs: follow-up rate requirement (80% at 6 months).
    Austin PC (2009). Balance diagnostics for comparing the distribution of baseline
    covariates between treatment groups in propensity-score matched samples. Stat Med
    28:3083-3107.

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats.missing import attrition
    >>> d = pd.DataFrame({"fu": [1, 1, 0, 1, 0, 1, 1, 0], "age": [30, 41, 22, 35, 25, 50, 38, 27],
    ...                   "arm": ["a", "b"] * 4})
    >>> res = attrition(d, followed_up="fu", by="arm", adjust=["age"])
    >>> res.rates[["variable", "level", "n", "events"]].values.tolist()
    [['overall', 'all', 8, 5], ['arm', 'a', 4, 2], ['arm', 'b', 4, 3]]
    """
    from recoverystats.io.program import ProgramData
    from recoverystats.measures.followup import _check_target
    from recoverystats.rates import proportion, table_one
    from recoverystats.regression import odds_ratios

    level = check_conf_level(conf_level)
    adjust_cols = as_column_list(adjust)
    notes: list[str] = []
    if isinstance(data, ProgramData):
        df, col, by, site, adjust_cols, t, more = _from_program(data, followed_up, by, site, adjust_cols, target)
        notes += more
        t = _check_target(t)
    elif isinstance(data, pd.DataFrame):
        if followed_up is None:
            raise InvalidParameterError(
                "followed_up: name the 1/0 column saying who was followed up (e.g. followed_up='completed'); "
                "it is required when data is a DataFrame."
            )
        df, col = data, followed_up
        t = _check_target(0.8 if target is None else target)
    else:
        raise InvalidParameterError(
            f"data must be a ProgramData or a pandas DataFrame; got {type(data).__name__}."
        )
    for name, c in (("by", by), ("site", site)):
        if c is not None and not isinstance(c, str):
            raise InvalidParameterError(f"{name} must be one column name; got {c!r}.")
    check_columns(df, [col], "followed_up")
    check_columns(df, [c for c in (by, site) if c is not None], "by/site")
    check_columns(df, adjust_cols, "adjust")
    dup = [c for c in adjust_cols if c in (col, by, site)]
    if dup:
        raise InvalidParameterError(
            f"adjust: {', '.join(map(repr, dup))} is already the followed_up, by or site column; remove it."
        )
    n_input = len(df)
    n_excluded = 0
    if "eligible" in df.columns and not isinstance(data, ProgramData):
        mask = df["eligible"].to_numpy(dtype=bool, na_value=False)
        if (~mask).any():
            n_excluded += int((~mask).sum())
            notes.append(f"{int((~mask).sum())} of {n_input} rows not eligible (column 'eligible') left out.")
            df = df.loc[mask]
    empty = [c for c in adjust_cols if not df[c].notna().any()]
    if empty:
        raise DataValidationError(
            f"adjust: column(s) {', '.join(map(repr, empty))} have no values at all (entirely missing); they "
            "cannot describe completers or predict follow-up. Remove them from adjust."
        )
    y = followed_up_indicator(df, col)
    miss = np.isnan(y)
    if miss.any():
        n_excluded += int(miss.sum())
        notes.append(f"{int(miss.sum())} rows with a missing {col!r} left out (not due / not known).")
        df, y = df.loc[~miss], y[~miss]
    if not len(df):
        raise DataValidationError(f"attrition: no rows left (all {n_input} rows were left out: {' '.join(notes)}).")
    n_fu = int(y.sum())
    if n_fu == 0 or n_fu == len(y):
        raise DataValidationError(
            f"attrition: {'nobody' if n_fu == 0 else 'everybody'} in the {len(y)} rows was followed up "
            f"(column {col!r}); completers and non-completers cannot be compared."
        )

    work = pd.DataFrame({c: df[c] for c in dict.fromkeys([*(x for x in (by, site) if x), *adjust_cols])},
                        index=df.index)
    work["_status"] = np.where(y == 1.0, COMPLETERS, NON_COMPLETERS)
    work["_status"] = pd.Categorical(work["_status"], categories=[COMPLETERS, NON_COMPLETERS])
    work["_fu"] = y
    variables = [c for c in dict.fromkeys([*(x for x in (by, site) if x), *adjust_cols])]
    t1 = table_one(work, group="_status", variables=variables, smd=True, overall=True)
    table = t1.table
    notes += [n for n in t1.notes if "SMD with more than two groups" not in n]

    # -- follow-up rates with Wilson CIs against the target ---------------------------------
    parts = []
    r = proportion(work, "_fu", conf_level=level).table
    r.insert(0, "level", "all")
    r.insert(0, "variable", "overall")
    parts.append(r)
    for c in (by, site):
        if c is None:
            continue
        wc = work[work[c].notna()]
        n_na = int(work[c].isna().sum())
        if n_na:
            notes.append(f"{n_na} rows with a missing {c!r} left out of the rates by {c}.")
        rc = proportion(wc.assign(_lvl=wc[c].astype(str)), "_fu", by="_lvl", conf_level=level).table
        rc = rc.rename(columns={"_lvl": "level"})
        rc.insert(0, "variable", c)
        parts.append(rc)
    rates = pd.concat(parts, ignore_index=True)
    rates = rates[["variable", "level", "n", "events", "estimate", "ci_lower", "ci_upper"]].copy()
    rates["n"] = rates["n"].astype("int64")
    rates["events"] = rates["events"].astype("int64")
    rates["target"] = t
    rates["vs_target"] = np.where(rates["estimate"] >= t, "meets",
                                  np.where(rates["ci_upper"] < t, "below", "uncertain"))

    # -- the logistic model of being followed up ----------------------------------------------
    model = None
    covs = [c for c in (site, *adjust_cols) if c]
    if by is not None or covs:
        mdf = work.drop(columns=["_status"]).rename(columns={"_fu": col})
        try:
            model = odds_ratios(mdf, col, exposure=by, adjust=covs, conf_level=level, missing="drop")
        except RecoveryStatsError as exc:
            notes.append(f"Model of follow-up not estimated: {exc}")
    else:
        notes.append("No by, site or adjust columns: no model of follow-up.")

    return AttritionResult(
        _table=table,
        conf_level=level,
        method="completers vs non-completers (SMD), Wilson CIs for the follow-up rate, logistic model of follow-up",
        n_used=int(len(df)),
        n_excluded=n_excluded,
        notes=tuple(notes),
        followed_up=col,
        by=by,
        site=site,
        adjust=tuple(adjust_cols),
        target=t,
        n_followed_up=n_fu,
        _rates=rates,
        _model=model,
    )
