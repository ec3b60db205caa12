"""Shared helpers for the rates subpackage: outcome coercion and fast grouping (internal)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError


def binary_outcome(df: pd.DataFrame, column: str, *, param: str = "outcome") -> np.ndarray:
    """The column as float64 with values 0.0/1.0 and NaN for missing.

    Accepts bool, nullable boolean, and numeric columns holding only 0 and 1. Anything
    else raises ``InvalidParameterError`` naming the column and the offending values.
    """
    s = df[column]
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        if isinstance(dtype, pd.BooleanDtype):
            return s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        return s.to_numpy(dtype=float)
    if pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_integer_dtype(dtype) and not isinstance(
            dtype, pd.api.extensions.ExtensionDtype
        ):
            raw = s.to_numpy()
            if len(raw) == 0 or (raw.min() >= 0 and raw.max() <= 1):
                return raw.astype(float)
            _raise_not_binary(column, param, pd.unique(raw[(raw != 0) & (raw != 1)]))
        if isinstance(dtype, pd.api.extensions.ExtensionDtype):
            values = s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        else:
            values = s.to_numpy(dtype=float)
        # fast path: check 0/1 without building a mask of every row when possible
        # |v - 0.5| == 0.5 exactly for 0 and 1; NaN and anything else fail it
        candidates = np.abs(values - 0.5) != 0.5
        if np.count_nonzero(candidates) != np.count_nonzero(np.isnan(values)):
            bad = candidates & ~np.isnan(values)
            _raise_not_binary(column, param, pd.unique(s.to_numpy()[bad]))
        return values
    # object / string / categorical columns: allow True/False objects only
    values = s.to_numpy(dtype=object)
    notna = pd.notna(values)
    shown = pd.unique(pd.Series(values[notna]))
    if all(
        isinstance(v, (bool, np.bool_))
        or (isinstance(v, (int, float, np.integer, np.floating)) and v in (0, 1))
        for v in shown
    ):
        out = np.full(len(values), np.nan)
        out[notna] = values[notna].astype(float)
        return out
    bad_vals = [
        v for v in shown if not (isinstance(v, (bool, np.bool_, int, float)) and v in (0, 1))
    ]
    _raise_not_binary(column, param, bad_vals)
    raise AssertionError("unreachable")  # pragma: no cover


def _raise_not_binary(column: str, param: str, bad: Sequence[object]) -> None:
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in list(bad)[:5])
    more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
    raise InvalidParameterError(
        f"{param}: column {column!r} must hold 0/1 or True/False values (missing allowed); "
        f"found {shown}{more}. Recode it first, e.g. df[{column!r}] = df[{column!r}].eq(<event value>)."
    )


@dataclass(frozen=True)
class Grouping:
    """Integer group codes for the rows and the key frame of the groups (internal)."""

    codes: np.ndarray  # one code per row; -1 where a key is missing
    keys: pd.DataFrame  # one row per group, in output order
    n_missing_key: int


def ordered_levels(var: str, values: Any) -> list[Any]:
    """Levels in the data model's code order for coded participant columns (e.g.
    ``risk_level``: low, moderate, high, very_high), otherwise sorted."""
    from recoverystats.schema.spec import PARTICIPANTS

    try:
        ordered = sorted(values)
    except TypeError:
        ordered = sorted(values, key=str)
    spec = PARTICIPANTS.column(var)
    if spec is not None and spec.codes:
        rank = {code: i for i, code in enumerate(spec.codes)}
        ordered = sorted(ordered, key=lambda v: (rank.get(v, len(rank)), str(v)))
    return ordered


def group_codes(df: pd.DataFrame, by: Sequence[str]) -> Grouping:
    """Combine one or several key columns into group codes (sorted keys, NaN keys -> -1).

    Categorical columns keep every category, so unobserved categories appear as empty
    groups (n = 0). Uses ``pd.factorize`` and integer arithmetic instead of a pandas
    groupby, which is several times faster on millions of rows.
    """
    n = len(df)
    if not by:
        return Grouping(np.zeros(n, dtype=np.int64), pd.DataFrame(index=[0]), 0)
    per_codes = []
    per_levels = []
    for col in by:
        s = df[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = s.cat.codes.to_numpy().astype(np.int64)
            levels = s.cat.categories
            if not s.cat.ordered:
                # keep category order (the user's choice), as pandas groupby does
                pass
        else:
            codes, levels = pd.factorize(s, sort=True, use_na_sentinel=True)
            codes = codes.astype(np.int64)
            ordered = ordered_levels(col, list(levels))
            if ordered != list(levels):  # a coded column of the data model: code-list order
                position = {v: i for i, v in enumerate(ordered)}
                remap = np.array([position[v] for v in levels], dtype=np.int64)
                codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], codes)
                levels = ordered
        per_codes.append(codes)
        per_levels.append(pd.Index(levels))
    sizes = [max(len(lv), 1) for lv in per_levels]
    any_missing = any(len(c) and int(c.min()) < 0 for c in per_codes)
    combined = per_codes[0].copy()
    for codes, size in zip(per_codes[1:], sizes[1:], strict=True):
        combined *= size
        combined += codes  # rows with a missing key hold garbage here; reset below
    if any_missing:
        missing = np.zeros(n, dtype=bool)
        for codes in per_codes:
            missing |= codes < 0
        combined[missing] = 0
        observed_codes = combined[~missing]
    else:
        missing = None
        observed_codes = combined
    total = int(np.prod(sizes, dtype=np.int64))
    any_categorical = any(isinstance(df[c].dtype, pd.CategoricalDtype) for c in by)
    if len(by) == 1 or total <= 1_000_000:
        counts = np.bincount(observed_codes, minlength=total) if total else np.array([], int)
        if any_categorical:
            # keep every combination of categorical levels; non-categorical keys only as observed
            keep = _keep_mask(counts, per_levels, by, df)
        else:
            keep = counts > 0
        used = np.flatnonzero(keep)
    else:  # very many combinations: only observed ones
        used = np.unique(observed_codes)
    if len(used) == total:
        codes_out = combined
    else:
        remap = np.full(total, -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        codes_out = remap[combined]
    if missing is not None:
        codes_out[missing] = -1
    # decode used combined codes back to levels
    keys = {}
    rem = used.copy()
    for col, lv, size in reversed(list(zip(by, per_levels, sizes, strict=True))):
        idx = rem % size
        rem = rem // size
        keys[col] = lv.take(idx) if len(lv) else pd.Index([np.nan] * len(idx))
    key_frame = pd.DataFrame({c: np.asarray(keys[c]) for c in by})
    for c in by:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            key_frame[c] = pd.Categorical(
                key_frame[c], categories=df[c].cat.categories, ordered=df[c].cat.ordered
            )
    return Grouping(codes_out, key_frame, 0 if missing is None else int(missing.sum()))


def _keep_mask(
    counts: np.ndarray, per_levels: list[pd.Index], by: Sequence[str], df: pd.DataFrame
) -> np.ndarray:
    """Observed combinations plus every level of categorical keys crossed with observed others."""
    shape = [max(len(lv), 1) for lv in per_levels]
    observed = (counts > 0).reshape(shape)
    keep = observed.copy()
    cat_axes = [i for i, c in enumerate(by) if isinstance(df[c].dtype, pd.CategoricalDtype)]
    other_axes = [i for i in range(len(by)) if i not in cat_axes]
    if other_axes:
        seen_other = observed.any(axis=tuple(cat_axes)) if cat_axes else observed
        expand = np.expand_dims(seen_other, axis=tuple(cat_axes))
        keep = keep | np.broadcast_to(expand, keep.shape)
    else:
        keep[...] = True
    return keep.reshape(-1)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


WeightType = Literal["frequency", "sampling"]


def case_weights(
    df: pd.DataFrame, weights: str | None, weight_type: str, *, func: str
) -> np.ndarray | None:
    """The ``weights=`` column as a float array (``None`` when no weights are given).

    Weights must be non-negative and finite (missing is not allowed: a row without a
    weight is an error, not an exclusion). Frequency weights must be whole numbers: a
    row of weight 3 stands for 3 identical units, and counts, exact tests and
    intervals are computed as if the data had been expanded. Non-integer weights are
    sampling (analytic) weights: pass ``weight_type="sampling"``.
    """
    from recoverystats._checks import check_option

    check_option("weight_type", weight_type, WeightType)
    if weights is None:
        return None
    if not isinstance(weights, str):
        raise InvalidParameterError(f"weights must be one column name; got {weights!r}.")
    if weights not in df.columns:
        avail = ", ".join(map(str, list(df.columns)[:30]))
        raise InvalidParameterError(
            f"weights: column {weights!r} not found in the data. Available columns: {avail}."
        )
    s = df[weights]
    if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
        raise InvalidParameterError(
            f"weights: column {weights!r} must be numeric (non-negative case weights); got dtype {s.dtype}."
        )
    w = s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        shown = ", ".join(repr(float(v)) for v in pd.unique(w[bad])[:5])
        raise InvalidParameterError(
            f"{func}: weights column {weights!r} must hold non-negative finite numbers; "
            f"{plural(int(bad.sum()), 'row')} hold {shown} (first at position {first}). "
            "Fix or drop those rows."
        )
    if weight_type == "frequency":
        frac = np.abs(w - np.round(w)) > 1e-9
        if frac.any():
            first = int(np.flatnonzero(frac)[0])
            raise InvalidParameterError(
                f"{func}: frequency weights in {weights!r} must be whole numbers (a row of weight 3 "
                f"counts as 3 people); found {w[first]!r} at position {first}. For survey, "
                "inverse-probability or balancing weights pass weight_type='sampling'."
            )
        w = np.round(w)
    return w


def weight_note(weights: str, weight_type: str) -> str:
    """The note every weighted rate result carries."""
    if weight_type == "frequency":
        return (
            f"Frequency weights from {weights!r}: each row counts as that many units; results "
            "equal those of the expanded data."
        )
    return (
        f"Sampling weights from {weights!r}: weighted estimates with robust (linearisation) "
        "standard errors and Wald-type intervals."
    )


def cluster_codes(df: pd.DataFrame, cluster: str | None, *, func: str) -> np.ndarray | None:
    """Integer codes of the ``cluster=`` column (-1 where missing), or ``None``."""
    if cluster is None:
        return None
    if not isinstance(cluster, str):
        raise InvalidParameterError(f"cluster must be one column name; got {cluster!r}.")
    if cluster not in df.columns:
        avail = ", ".join(map(str, list(df.columns)[:30]))
        raise InvalidParameterError(
            f"{func}: cluster column {cluster!r} not found in the data. Available columns: {avail}."
        )
    codes, _ = pd.factorize(df[cluster], use_na_sentinel=True)
    return codes.astype(np.int64)


def robust_group_variance(
    z: np.ndarray, groups: np.ndarray, k: int, clusters: np.ndarray | None
) -> tuple[np.ndarray, int]:
    """Linearisation variance per group from per-row influence values ``z`` (internal).

    ``Var_g = G/(G-1) Σ_c (Σ_{i in c, i in g} z_i)²`` with ``G`` the number of
    clusters among the rows given (each row its own cluster when ``clusters`` is
    None: ``n/(n-1) Σ z_i²``) — the with-replacement (Hansen-Hurwitz) variance of R
    ``survey`` for ``svydesign(ids = ~cluster, weights = ~w)``. ``z`` sums to 0 within
    each group. Returns the variances and ``G``.
    """
    if clusters is None:
        G = len(z)
        ss = np.bincount(groups, weights=z * z, minlength=k)
    else:
        cl, uniq = pd.factorize(clusters)
        G = len(uniq)
        combo = groups.astype(np.int64) * G + cl
        sums = np.bincount(combo, weights=z, minlength=k * G)
        ss = (sums * sums).reshape(k, G).sum(axis=1)
    factor = G / (G - 1.0) if G > 1 else np.nan
    return factor * ss, G
