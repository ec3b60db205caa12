"""Statistics derived from counts: the attacker with the published statistics as constraints.

A table that hides its small counts can still give them back through a statistic computed
from them: Table 1's SMD of a variable is a function of every level count of the two
compared groups, a percentage ``n / N`` with a suppressed ``N`` gives ``N = n / pct``.
The linear attacker of :mod:`recoverystats.privacy.intervals` cannot use such
constraints (they are not linear), so this module *enumerates* the whole-number
completions of the suppressed cells that agree with the published cells, the table's
relations ``A x = 0`` **and** every published statistic at its published precision, and
reports each unknown cell's range over them.

The report's rule (DESIGN section 14, #8) is to suppress every statistic computed from a
suppressed count; :func:`audit_derived` and ``privacy.scan`` verify it with this attacker.

Hand-written: no maintained library enumerates table completions under non-linear
statistics (tau-ARGUS and sdcTable handle linear relations only).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError
from recoverystats.privacy.intervals import (
    INTEGRAL_TOL,
    RESIDUAL_TOL,
    attacker_bounds,
    attacker_problem,
    interval_shortfall,
    sensitive_cells,
)

__all__ = ["PublishedStatistic", "DerivedAttackResult", "derived_bounds", "audit_derived",
           "statistic_value", "MODELLED_STATISTICS", "MAX_COMPLETIONS"]

#: Most candidate completions (points of the free cells' grid) enumerated per group of
#: linked cells. Above it the attacker gives up: the statistic is declared unsafe
#: (``DerivedAttackResult.exhaustive`` is False) and ``scan`` reports a finding.
MAX_COMPLETIONS = 2_000_000
#: Relative tolerance for a statistic published at full precision (float64 round-off of
#: the two computations, not information).
FULL_PRECISION_RTOL = 1e-9
_CHUNK = 200_000


@dataclass(frozen=True, slots=True)
class PublishedStatistic:
    """One published statistic and the cells it is computed from.

    Parameters
    ----------
    statistic
        ``"ratio"`` (``x[0] / sum(w_k x[k+1])``, a percentage or proportion; weights in
        ``params["denominator_weights"]``, default all 1) or ``"smd_categorical"``
        (Yang & Dalton SMD of ``params["groups"]`` groups x ``params["levels"]`` level
        counts, inputs group-major; the mean of the pairwise SMDs for more than two
        groups, as :func:`recoverystats.rates.table_one`).
    inputs
        Cell numbers (of the flat cell vector of
        :func:`~recoverystats.privacy.suppress.build_structure`).
    value
        The published value.
    digits
        Decimal places it is published with; ``None`` = full precision (compared with a
        relative tolerance of :data:`FULL_PRECISION_RTOL`). A value rounded to ``d``
        decimals constrains the true value to ``value ± 0.5·10^-d``.
    params
        As above.
    """

    statistic: str
    inputs: tuple[int, ...]
    value: float
    digits: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def tolerance(self) -> float:
        if self.digits is None:
            return FULL_PRECISION_RTOL * max(1.0, abs(self.value))
        return 0.5 * 10.0 ** (-int(self.digits)) + 1e-12


def _ratio(x: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    w = np.asarray(params.get("denominator_weights") or [1.0] * (x.shape[1] - 1), dtype=float)
    den = x[:, 1:] @ w
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, x[:, 0] / np.where(den > 0, den, 1.0), np.nan)


def _smd_categorical(x: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Vectorised :func:`recoverystats.rates.table_one.smd_categorical` (pairwise mean)."""
    G, L = int(params["groups"]), int(params["levels"])
    c = x.reshape(x.shape[0], G, L).astype(float)
    tot = c.sum(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(tot > 0, c / np.where(tot > 0, tot, 1.0), np.nan)
    vals = []
    for a, b in itertools.combinations(range(G), 2):
        pa, pb = p[:, a, 1:], p[:, b, 1:]
        t = pa - pb

        def cov(q: np.ndarray) -> np.ndarray:
            s = -q[:, :, None] * q[:, None, :]
            k = q.shape[1]
            s[:, np.arange(k), np.arange(k)] = q * (1 - q)
            return s

        s = (cov(pa) + cov(pb)) / 2.0
        out = np.full(x.shape[0], np.nan)
        ok = np.isfinite(t).all(axis=1) & np.isfinite(s).all(axis=(1, 2))
        if ok.any():
            sp = np.linalg.pinv(s[ok])
            v = np.einsum("ni,nij,nj->n", t[ok], sp, t[ok])
            out[ok] = np.sqrt(np.maximum(v, 0.0))
            zero = np.all(np.isclose(t[ok], 0.0), axis=1)  # as smd_categorical: allclose -> 0
            out[np.flatnonzero(ok)[zero]] = 0.0
        vals.append(out)
    stack = np.vstack(vals)
    with np.errstate(invalid="ignore"):
        fin = np.isfinite(stack)
        cnt = fin.sum(axis=0)
        return np.where(cnt > 0, np.where(fin, stack, 0.0).sum(axis=0) / np.maximum(cnt, 1), np.nan)


#: Statistics the attacker can evaluate on candidate counts (vectorised evaluators).
MODELLED_STATISTICS: dict[str, Callable[[np.ndarray, Mapping[str, Any]], np.ndarray]] = {
    "ratio": _ratio,
    "smd_categorical": _smd_categorical,
}


def statistic_value(statistic: str, counts: Sequence[float] | np.ndarray,
                    params: Mapping[str, Any] | None = None) -> float:
    """Evaluate a modelled statistic on one vector of input counts (for checks and tests)."""
    if statistic not in MODELLED_STATISTICS:
        raise InvalidParameterError(
            f"statistic: {statistic!r} is not modelled; choose one of {', '.join(MODELLED_STATISTICS)}."
        )
    x = np.asarray(counts, dtype=float)[None, :]
    return float(MODELLED_STATISTICS[statistic](x, dict(params or {}))[0])


@dataclass(frozen=True, slots=True)
class DerivedAttackResult:
    """Ranges of the target cells over every completion consistent with the statistics.

    Attributes
    ----------
    lower, upper
        Per target: smallest / largest value over the consistent completions
        (``nan`` when no completion is consistent, ``-inf``/``inf`` when not exhaustive).
    n_completions
        Number of consistent completions of the enumerated cells.
    exhaustive
        ``False`` when the enumeration was not possible (a cell with no upper bound, or
        more than ``limit`` candidates): the ranges are then the linear attacker's and the
        statistics must be treated as unsafe.
    reason
        Why the enumeration was not exhaustive ("" when it was).
    """

    lower: np.ndarray
    upper: np.ndarray
    n_completions: int
    exhaustive: bool
    reason: str = ""


def _free_and_pivots(B: np.ndarray, span: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split the columns of ``B`` into pivot (determined) and free columns.

    Columns with the widest range become pivots first, so the free cells (whose grid is
    enumerated) are those with the narrowest ranges.
    """
    order = np.argsort(-span, kind="stable")
    piv: list[int] = []
    rank = 0
    for j in order:
        trial = piv + [int(j)]
        r = np.linalg.matrix_rank(B[:, trial]) if B.shape[0] else 0
        if r > rank:
            piv, rank = trial, r
    free = np.array(sorted(set(range(B.shape[1])) - set(piv)), dtype=int)
    return np.array(sorted(piv), dtype=int), free


def derived_bounds(
    constraints: np.ndarray,
    values: np.ndarray,
    unknown: np.ndarray,
    *,
    statistics: Sequence[PublishedStatistic],
    targets: Sequence[int] | np.ndarray | None = None,
    lower: np.ndarray | None = None,
    limit: int = MAX_COMPLETIONS,
) -> DerivedAttackResult:
    """Range of every target cell over the completions consistent with the published statistics.

    Parameters
    ----------
    constraints, values, unknown, lower
        As :func:`~recoverystats.privacy.intervals.attacker_bounds`: the relations
        ``A x = 0``, the values of the known cells (unknown ones may be NaN), which cells
        the reader does not see and their lower bounds (default 0).
    statistics
        The published statistics (:class:`PublishedStatistic`, of a kind in
        :data:`MODELLED_STATISTICS`).
    targets
        Unknown cells whose range is wanted (default: every unknown cell).
    limit
        Most candidate completions enumerated (default :data:`MAX_COMPLETIONS`).

    Returns
    -------
    DerivedAttackResult

    Notes
    -----
    1. The linear attacker (:func:`~recoverystats.privacy.intervals.attacker_bounds`,
       integer bounds) gives every unknown cell a range ``[l, u]`` from the relations.
    2. The unknown cells linked to a statistic's inputs (through shared relations or a
       shared statistic) are enumerated together: the relations restricted to them are
       ``B y = r``; ``rank(B)`` pivot cells are determined by the others (the *free* cells,
       chosen with the narrowest ranges), so the candidates are the whole-number points of
       the free cells' box, at most ``limit`` of them. Each candidate's pivot cells are
       solved for, and it is kept when they are whole numbers within their ranges and every
       statistic evaluated on it equals its published value within the published precision.
    3. A cell that is not linked to any statistic keeps its linear range.

    Above ``limit`` candidates, or when a linked cell has no finite upper bound, nothing is
    enumerated, ``exhaustive`` is False and the linear ranges are returned: the caller must
    then treat the statistic as unsafe (the report suppresses it; ``scan`` fails).
    """
    A = np.asarray(constraints, dtype=float)
    vals = np.asarray(values, dtype=float)
    unk = np.asarray(unknown, dtype=bool)
    n = vals.shape[0]
    lb_all = np.zeros(n) if lower is None else np.asarray(lower, dtype=float)
    tgt = np.flatnonzero(unk) if targets is None else np.asarray(targets, dtype=int).reshape(-1)
    for st in statistics:
        if st.statistic not in MODELLED_STATISTICS:
            raise InvalidParameterError(
                f"statistics: {st.statistic!r} is not modelled; choose one of {', '.join(MODELLED_STATISTICS)}."
            )
        bad = [j for j in st.inputs if not 0 <= int(j) < n]
        if bad:
            raise InvalidParameterError(f"statistics: input cell {bad[0]} is not one of the {n} cells.")
    cells = np.flatnonzero(unk)
    # linear ranges of every unknown cell (finite values of unknown cells are not used)
    known_vals = np.where(unk, np.nan, vals)
    if cells.size:
        lin_lo, lin_hi = attacker_bounds(A, known_vals, unk, targets=cells, lower=lb_all)
    else:
        lin_lo, lin_hi = np.zeros(0), np.zeros(0)
    lo_of = dict(zip(cells.tolist(), lin_lo.tolist(), strict=True))
    hi_of = dict(zip(cells.tolist(), lin_hi.tolist(), strict=True))
    out_lo = np.array([lo_of.get(int(t), np.nan) for t in tgt], dtype=float)
    out_hi = np.array([hi_of.get(int(t), np.nan) for t in tgt], dtype=float)
    stats_u = [st for st in statistics if any(unk[int(j)] for j in st.inputs)]
    if not stats_u:
        return DerivedAttackResult(out_lo, out_hi, 1, True)

    # relations that hold on the known cells (a total that does not add up is no relation)
    filled = np.where(unk | ~np.isfinite(vals), 0.0, vals)
    known = ~unk
    usable = ~np.any((A[:, known] != 0) & ~np.isfinite(vals[known])[None, :], axis=1)
    A = A[usable]
    # group the unknown cells: linked by a relation or by a statistic
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    pos = np.full(n, -1)
    pos[cells] = np.arange(cells.size)
    rows_i, cols_i = [], []
    r = 0
    for row in A[:, cells] != 0:
        nz = np.flatnonzero(row)
        if nz.size:
            rows_i += [r] * nz.size
            cols_i += nz.tolist()
            r += 1
    for st in stats_u:
        nz = [int(pos[j]) for j in st.inputs if unk[int(j)]]
        rows_i += [r] * len(nz)
        cols_i += nz
        r += 1
    inc = csr_matrix((np.ones(len(rows_i)), (rows_i, cols_i)), shape=(r, cells.size))
    _, label = connected_components((inc.T @ inc), directed=False)
    total = 1
    reason = ""
    exhaustive = True
    for comp in sorted({int(label[pos[int(j)]]) for st in stats_u for j in st.inputs if unk[int(j)]}):
        members = cells[label == comp]
        comp_stats = [st for st in stats_u if any(unk[int(j)] and label[pos[int(j)]] == comp for j in st.inputs)]
        lo = np.array([lo_of[int(c)] for c in members])
        hi = np.array([hi_of[int(c)] for c in members])
        if not np.all(np.isfinite(hi)) or not np.all(np.isfinite(lo)):
            exhaustive, reason = False, "a suppressed input has no finite upper bound"
            out_lo[np.isin(tgt, members)] = -np.inf
            out_hi[np.isin(tgt, members)] = np.inf
            continue
        rows = np.flatnonzero(np.abs(A[:, members]).sum(axis=1) > 0)
        B = A[np.ix_(rows, members)]
        rhs = -(A[np.ix_(rows, np.flatnonzero(known))] @ filled[known]) if rows.size else np.zeros(0)
        piv, free = _free_and_pivots(B, hi - lo)
        sizes = (hi[free] - lo[free] + 1).astype(float)
        ncand = float(np.prod(sizes)) if free.size else 1.0
        if ncand > limit:
            exhaustive, reason = False, f"{ncand:.3g} candidate completions exceed the limit of {limit:,}"
            out_lo[np.isin(tgt, members)] = -np.inf
            out_hi[np.isin(tgt, members)] = np.inf
            continue
        if piv.size:
            Bp = B[:, piv]
            Bp_pinv = np.linalg.pinv(Bp)
        keep_lo = np.full(members.size, np.inf)
        keep_hi = np.full(members.size, -np.inf)
        found = 0
        grids = [np.arange(lo[f], hi[f] + 1) for f in free]
        for chunk in _grid_chunks(grids, _CHUNK):
            y = np.empty((chunk.shape[0], members.size))
            if free.size:
                y[:, free] = chunk
            if piv.size:
                resid_rhs = rhs[None, :] - (chunk @ B[:, free].T if free.size else 0.0)
                yp = resid_rhs @ Bp_pinv.T
                y[:, piv] = yp
                ok = np.all(np.abs(yp - np.round(yp)) <= INTEGRAL_TOL * 10, axis=1)
                y[:, piv] = np.round(yp)
                ok &= np.all((y >= lo[None, :] - 1e-9) & (y <= hi[None, :] + 1e-9), axis=1)
                ok &= np.all(np.abs(y @ B.T - rhs[None, :]) <= RESIDUAL_TOL * np.maximum(1.0, np.abs(rhs))[None, :],
                             axis=1)
            else:
                ok = np.ones(chunk.shape[0], dtype=bool)
            if not ok.any():
                continue
            y = y[ok]
            full = np.broadcast_to(filled, (y.shape[0], n)).copy()
            full[:, members] = y
            for st in comp_stats:
                f = MODELLED_STATISTICS[st.statistic](full[:, list(st.inputs)], st.params)
                good = np.abs(f - st.value) <= st.tolerance()
                y, full = y[good], full[good]
                if not len(y):
                    break
            if len(y):
                found += len(y)
                keep_lo = np.minimum(keep_lo, y.min(axis=0))
                keep_hi = np.maximum(keep_hi, y.max(axis=0))
        total *= max(found, 0)
        for k, t in enumerate(tgt):
            hit = np.flatnonzero(members == t)
            if hit.size:
                j = int(hit[0])
                out_lo[k] = keep_lo[j] if found else np.nan
                out_hi[k] = keep_hi[j] if found else np.nan
    return DerivedAttackResult(out_lo, out_hi, int(total), exhaustive, reason)


def _grid_chunks(grids: list[np.ndarray], size: int):
    """The Cartesian product of ``grids`` as arrays of at most ``size`` rows."""
    if not grids:
        yield np.zeros((1, 0))
        return
    lens = [len(g) for g in grids]
    total = int(np.prod(lens))
    for start in range(0, total, size):
        idx = np.arange(start, min(total, start + size))
        cols = []
        for g, length in zip(reversed(grids), reversed(lens), strict=True):
            cols.append(g[idx % length])
            idx = idx // length
        yield np.column_stack(list(reversed(cols))).astype(float)


# ---------------------------------------------------------------------------------------
# the table front end
# ---------------------------------------------------------------------------------------
def table_statistics(derived: Sequence[Mapping[str, Any]], published: pd.DataFrame,
                     index: Mapping[tuple[int, str], int]) -> list[PublishedStatistic]:
    """The modelled statistics among a table's ``derived`` entries that are published.

    ``derived`` holds entries as in ``results.json`` (``row``, ``column``, ``statistic``,
    ``inputs``, ``digits``, ``params``); ``published`` is the published table (a
    suppressed statistic is NaN/None and is not a constraint).
    """
    out = []
    for d in derived:
        if d.get("statistic") not in MODELLED_STATISTICS:
            continue
        r, c = int(d["row"]), str(d["column"])
        if c not in published or not 0 <= r < len(published):
            continue
        v = pd.to_numeric(pd.Series([published.iat[r, published.columns.get_loc(c)]]), errors="coerce").iloc[0]
        if not np.isfinite(v):
            continue
        ins = tuple(int(index[(int(i), str(col))]) for i, col in d["inputs"])
        out.append(PublishedStatistic(statistic=str(d["statistic"]), inputs=ins, value=float(v),
                                      digits=d.get("digits"), params=dict(d.get("params") or {})))
    return out


def audit_derived(table: pd.DataFrame, result: Any, derived: Sequence[Mapping[str, Any]], *,
                  limit: int = MAX_COMPLETIONS) -> pd.DataFrame:
    """The range of each small suppressed count with and without the published statistics.

    Parameters
    ----------
    table
        The original (unsuppressed) table given to
        :func:`~recoverystats.privacy.suppress`, with its statistic columns.
    result
        What :func:`~recoverystats.privacy.suppress` returned (its published table, mask,
        margins, ``min_cell`` and ``zero_ok`` are used).
    derived
        The statistics: entries ``{"row", "column", "statistic", "inputs": [[row, col],
        ...], "digits", "params"}`` (as the report writes to ``results.json``). Only the
        published ones (not suppressed) constrain the attacker.
    limit
        Most candidate completions enumerated per group of linked cells.

    Returns
    -------
    pandas.DataFrame
        One row per sensitive unknown count (a suppressed or hidden count from 1 to
        ``min_cell - 1``): ``row``, ``column``, ``lower_linear``, ``upper_linear`` (the
        attacker of :func:`~recoverystats.privacy.audit_intervals`), ``lower``, ``upper``
        (with the statistics), ``exhaustive`` and ``protected`` (the range with the
        statistics passes the interval rule, and the enumeration was exhaustive).
        Which cells are sensitive is itself confidential: keep the audit internal.
    """
    values, A, published, index, unknown, lower = attacker_problem(table, result)
    zero_ok = bool(result.zero_ok)
    sens = sensitive_cells(values, published, unknown, result.min_cell, zero_ok)
    targets = np.flatnonzero(sens)
    pub_table = result.table.reset_index(drop=True)
    stats = table_statistics(derived, pub_table, index)
    known_vals = np.where(unknown, np.nan, values)
    lin_lo, lin_hi = attacker_bounds(A, values, unknown, targets=targets, lower=lower) if targets.size else \
        (np.zeros(0), np.zeros(0))
    res = derived_bounds(A, known_vals, unknown, statistics=stats, targets=targets, lower=lower, limit=limit)
    where = {j: key for key, j in index.items()}
    reach = published[targets]
    short = interval_shortfall(res.lower, res.upper, result.min_cell, reach)
    protected = res.exhaustive & ~(short > INTEGRAL_TOL)
    return pd.DataFrame({
        "row": [where[int(j)][0] for j in targets],
        "column": [where[int(j)][1] for j in targets],
        "lower_linear": lin_lo.astype(float), "upper_linear": lin_hi.astype(float),
        "lower": res.lower.astype(float), "upper": res.upper.astype(float),
        "exhaustive": [bool(res.exhaustive)] * targets.size,
        "protected": np.asarray(protected, dtype=bool).reshape(-1) if targets.size else np.zeros(0, dtype=bool),
    })
