"""Shared input handling for :mod:`recoverystats.causal` (internal).

* :func:`exposure_indicator` turns the ``exposure=`` column into a 0/1 array and says
  which value is the exposed ("treated") group;
* :func:`covariate_design` builds the propensity-score design matrix (intercept first)
  with the regression engine's builder (:mod:`recoverystats._design`), after checking
  for missing values and covariates that are constant within one group;
* :func:`resolve_weights` reads ``weights=`` (a column name, a Series aligned to the
  data, or a result with ``.weights``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recoverystats._checks import as_column_list, check_columns, check_dataframe
from recoverystats._design import (
    Design,
    _is_numeric,
    build_design,
    category_levels,
    model_spec,
    plain,
)
from recoverystats.errors import DataValidationError, InvalidParameterError

Estimand = str  # "ATE" | "ATT" | "ATO"


@dataclass(frozen=True)
class Exposure:
    """The exposure as 0/1 plus the values it came from (internal)."""

    t: np.ndarray  # float 0/1
    column: str
    treated: Any  # value coded 1
    control: Any  # value coded 0

    def label(self, value: int) -> str:
        return str(plain(self.treated if value == 1 else self.control))


def exposure_indicator(df: pd.DataFrame, exposure: Any, treated: Any = None) -> Exposure:
    """The exposure column as a float 0/1 array.

    Accepted: booleans, numbers 0/1, or any column with exactly two distinct values. The
    exposed group is ``treated`` when given; otherwise ``True``/``1``, or the
    non-reference level by the package's reference rule (the first code of a coded
    column such as ``group`` -> ``comparison`` is the reference; else the first sorted
    value).
    """
    if not isinstance(exposure, str):
        raise InvalidParameterError(f"exposure must be one column name (str), e.g. 'group'; got {exposure!r}.")
    check_columns(df, [exposure], "exposure")
    s = df[exposure]
    missing = s.isna().to_numpy()
    if missing.any():
        raise DataValidationError(
            f"exposure: column {exposure!r} has {int(missing.sum())} missing value(s) (first at row "
            f"{df.index[int(np.flatnonzero(missing)[0])]!r}); every row must belong to one of the two groups. "
            f"Drop those rows first, e.g. df.dropna(subset=[{exposure!r}])."
        )
    values = pd.unique(s)
    if len(values) != 2:
        shown = ", ".join(repr(plain(v)) for v in values[:8])
        what = "a single value" if len(values) == 1 else f"{len(values)} distinct values"
        raise DataValidationError(
            f"exposure: column {exposure!r} must be binary (exactly two groups) but has {what}: {shown}. "
            "Code the comparison as two groups, e.g. df['mentored'] = df['group'] == 'peer_mentoring'."
        )
    if treated is not None:
        if treated not in set(values.tolist()):
            shown = ", ".join(repr(plain(v)) for v in values)
            raise InvalidParameterError(
                f"treated={treated!r} is not a value of column {exposure!r} (values: {shown})."
            )
        control = next(v for v in values if v != treated)
    elif pd.api.types.is_bool_dtype(s.dtype):
        treated, control = True, False
    elif _is_numeric(s) and set(np.asarray(values, dtype=float).tolist()) == {0.0, 1.0}:
        treated, control = 1, 0
    else:
        levels = category_levels(s, exposure)
        control, treated = levels[0], levels[1]
    t = np.asarray(s == treated, dtype=float)
    return Exposure(t, exposure, plain(treated), plain(control))


def check_missing(df: pd.DataFrame, columns: Iterable[str], param: str = "adjust") -> None:
    """No missing values in ``columns``: the error names each column and its count."""
    bad = []
    for c in columns:
        k = int(df[c].isna().sum())
        if k:
            bad.append(f"{c!r} ({k} missing)")
    if bad:
        cols = [b.split(" (")[0] for b in bad]
        raise DataValidationError(
            f"{param}: missing values in {', '.join(bad)}. Propensity scores, weights and balance need "
            f"complete covariates: drop those rows (df.dropna(subset=[{', '.join(cols)}])), impute them, "
            "or add a missing-value indicator column."
        )


def constant_in_one_group(df: pd.DataFrame, columns: Iterable[str], ex: Exposure) -> None:
    """Refuse a covariate that is constant among one group's rows but varies in the other.

    Then the groups do not overlap on it: the people with the other values have no
    comparators, and their propensity scores are 0 or 1.
    """
    t = ex.t.astype(bool)
    columns = list(columns)
    numeric = [c for c in columns if _is_numeric(df[c])]
    # numeric columns: min == max per group, on one matrix (cheaper than hashing a million floats)
    ranges = {}
    if numeric:
        A = df[numeric].to_numpy(dtype=float)
        for g, mask in ((1, t), (0, ~t)):
            sub = A[mask]
            ranges[g] = (sub.min(axis=0), sub.max(axis=0))
    for c in columns:
        s = df[c]
        for g, mask, name in ((1, t, ex.treated), (0, ~t, ex.control)):
            if c in numeric:
                j = numeric.index(c)
                lo, hi = ranges[g][0][j], ranges[g][1][j]
                olo, ohi = ranges[1 - g][0][j], ranges[1 - g][1][j]
                if lo != hi or (olo == ohi == lo):
                    continue
                v = plain(s[mask].iloc[0])
            else:
                vals = pd.unique(s[mask])
                other = pd.unique(s[~mask])
                if not (len(vals) == 1 and (len(other) > 1 or (len(other) == 1 and other[0] != vals[0]))):
                    continue
                v = plain(vals[0])
            raise DataValidationError(
                f"covariate {c!r} is constant ({v!r}) among the {int(mask.sum())} rows with "
                f"{ex.column} = {name!r} but takes other values in the other group: the groups do not "
                f"overlap on {c!r} (rows with other values have no comparators). Restrict the data to "
                f"{c} == {v!r} (df[df[{c!r}] == {v!r}]) or remove {c!r} from adjust."
            )


def covariate_design(
    df: pd.DataFrame,
    *,
    ex: Exposure,
    adjust: Any = (),
    formula: str | None = None,
    func: str,
) -> tuple[Design, list[str]]:
    """The propensity design matrix (intercept + covariates) and the data columns it uses."""
    if formula is not None:
        if not isinstance(formula, str):
            raise InvalidParameterError(f"formula must be a string such as '~ age + C(risk_level)'; got {formula!r}.")
        lhs, sep, rhs = formula.partition("~")
        if not sep:
            rhs, lhs = formula, ""
        if lhs.strip() and lhs.strip() != ex.column:
            raise InvalidParameterError(
                f"formula: the left-hand side {lhs.strip()!r} must be the exposure {ex.column!r} (or empty: "
                f"'~ age + sex'); got formula={formula!r}."
            )
        spec = model_spec(df, func=func, formula=formula, rhs=rhs.strip(), adjust=adjust)
    else:
        cols = as_column_list(adjust)
        if ex.column in cols:
            raise InvalidParameterError(
                f"adjust: the exposure {ex.column!r} cannot also be a covariate; remove it from adjust."
            )
        if not cols:
            spec = None
        else:
            spec = model_spec(df, func=func, adjust=cols)
    used = [] if spec is None else [c for c in spec.used if c != ex.column]
    check_missing(df, used)
    constant_in_one_group(df, used, ex)
    if spec is None:
        X = np.ones((len(df), 1))
        from recoverystats._design import Term

        return Design(X, ["Intercept"], [Term("Intercept", [0], "intercept")], 0), used
    return build_design(df, spec), used


def resolve_weights(df: pd.DataFrame, weights: Any, *, param: str = "weights") -> np.ndarray | None:
    """``weights=`` as a float array aligned to ``df`` (None when not given).

    A column name, a Series with the same index as ``df`` (e.g.
    ``balancing_weights(...).weights``) or any object with a ``.weights`` Series.
    Weights must be finite and non-negative; NaN is an error naming the rows.
    """
    if weights is None:
        return None
    name = None
    if hasattr(weights, "weights") and isinstance(weights.weights, pd.Series):
        weights = weights.weights
    if isinstance(weights, str):
        check_columns(df, [weights], param)
        name = weights
        s = df[weights]
    elif isinstance(weights, pd.Series):
        s = weights
        name = str(weights.name) if weights.name is not None else "weights"
        if len(s) != len(df) or not s.index.equals(df.index):
            try:
                s = s.reindex(df.index)
            except ValueError:
                raise InvalidParameterError(
                    f"{param}: the weights Series is not aligned to the data (its index differs and has "
                    "duplicates); compute the weights on this data frame."
                ) from None
    elif isinstance(weights, np.ndarray) and weights.ndim == 1 and len(weights) == len(df):
        s = pd.Series(weights, index=df.index)
        name = "weights"
    else:
        raise InvalidParameterError(
            f"{param} must be a column name, a pandas Series aligned to the data, or a result with .weights "
            f"(e.g. balancing_weights(...)); got {type(weights).__name__}."
        )
    if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
        raise InvalidParameterError(f"{param}: {name!r} must be numeric; got dtype {s.dtype}.")
    w = s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    nan = np.isnan(w)
    if nan.any():
        first = df.index[int(np.flatnonzero(nan)[0])]
        raise DataValidationError(
            f"{param}: {name!r} has {int(nan.sum())} missing (NaN) weight(s), first at row {first!r}. A missing "
            "weight usually means the row was not in the data the weights were computed on (or a propensity "
            "score of exactly 0 or 1): recompute the weights on this data, or drop those rows from both."
        )
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        first = df.index[int(np.flatnonzero(bad)[0])]
        raise DataValidationError(
            f"{param}: {name!r} must hold finite non-negative numbers; {int(bad.sum())} row(s) do not "
            f"(first at row {first!r}: {w[bad][0]!r})."
        )
    return w


def check_frame(df: Any) -> pd.DataFrame:
    check_dataframe(df)
    if len(df) == 0:
        raise DataValidationError("df has no rows.")
    return df
