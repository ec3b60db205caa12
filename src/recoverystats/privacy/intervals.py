"""Interval (bounds) disclosure: the attacker's linear programs (DESIGN section 8).

Exact recovery is not the only way a suppressed count leaks. The published cells, the
table's additive relations ``A x = 0`` and the fact that counts are non-negative whole
numbers can pin a suppressed cell into a narrow range ("between 3 and 4") even when no
linear combination gives it exactly. Statistical agencies check this with the
*attacker problem* (Fischetti and Salazar 2000; tau-ARGUS; R ``sdcTable::attack``;
R ``GaussSuppression::ComputeIntervals``): for every sensitive cell ``s``,

    minimise / maximise  x_s   subject to   A x = 0,   x_k = v_k for every published cell k,
                                            x_u >= l_u for every unknown cell u,

and compare the range ``[min, max]`` with the protection required for that cell.

:func:`attacker_bounds` solves these programs with HiGHS (``scipy.optimize.linprog``)
on the connected components of the unknown cells (two unknown cells are connected when
they share a relation), so each program only holds the cells that can move together;
:func:`audit_intervals` runs it on a table that :func:`~recoverystats.privacy.suppress`
suppressed; :func:`interval_shortfall` is the protection rule that ``suppress`` enforces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.privacy.suppress import SuppressionResult

__all__ = ["IntervalAuditResult", "attacker_bounds", "audit_intervals", "interval_shortfall", "AUDIT_COLUMNS"]

AUDIT_COLUMNS: tuple[str, ...] = ("row", "column", "kind", "sensitive", "lower", "upper", "protected")

#: A bound of the linear program within this distance of a whole number is that whole
#: number (HiGHS works to a primal feasibility tolerance of 1e-7; counts are integers).
INTEGRAL_TOL = 1e-6
#: A relation whose true values leave a residual above this does not hold (a margin that
#: does not add up): it is left out of the attacker's programs, as no reader can use it.
RESIDUAL_TOL = 1e-6


def interval_shortfall(lower: np.ndarray, upper: np.ndarray, min_cell: int,
                       reach: bool | np.ndarray = True) -> np.ndarray:
    """How far each derivable range falls short of the interval rule (0 = protected).

    Parameters
    ----------
    lower, upper
        The range a reader can derive for each sensitive cell (:func:`attacker_bounds`).
    min_cell
        Smallest count that may be shown.
    reach
        Whether the range must also reach ``min_cell`` (per cell, or one value for all):
        ``True`` for suppressed published cells, ``False`` for hidden counts.

    Returns
    -------
    numpy.ndarray
        ``max(0, (min_cell - 1) - (upper - lower))`` plus, where ``reach``,
        ``max(0, min_cell - upper)``: zero when the range is protected.

    Notes
    -----
    *Width*: ``upper - lower >= min_cell - 1``, so the reader's uncertainty is at least as
    wide as the band ``1 .. min_cell - 1`` of suppressed values (with ``min_cell = 11``
    the range holds at least 11 possible counts). *Reach* (published cells):
    ``upper >= min_cell``, so a reader cannot tell that a suppressed cell is a small count
    rather than a complementary suppression, which is shown with the same mark. A hidden
    count (``n - events``) carries no mark, so only its width is required. In the
    protection-level terms of tau-ARGUS and sdcTable (``lower <= v - LPL``,
    ``upper >= v + UPL``, ``upper - lower >= SPL``) this is the sliding protection level
    ``SPL = min_cell - 1`` and, for published cells, ``UPL = min_cell - v``.
    """
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    with np.errstate(invalid="ignore"):
        width = np.where(np.isinf(hi) | np.isinf(lo), np.inf, hi - lo)
    need_reach = np.broadcast_to(np.asarray(reach, dtype=bool), hi.shape)
    return np.maximum(0.0, (min_cell - 1) - width) + np.where(need_reach, np.maximum(0.0, min_cell - hi), 0.0)


def attacker_bounds(
    constraints: np.ndarray,
    values: np.ndarray,
    unknown: np.ndarray,
    *,
    targets: Sequence[int] | np.ndarray | None = None,
    lower: np.ndarray | None = None,
    integer: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The range of every target cell over all tables consistent with the published cells.

    Parameters
    ----------
    constraints
        ``(m, n)`` matrix of the linear relations ``A x = 0`` among the ``n`` cells.
    values
        ``(n,)`` true values. Known cells (``~unknown``) that take part in a relation must
        be finite; a relation that the finite true values do not satisfy (a total that
        does not add up) is dropped, as no reader can use it.
    unknown
        Boolean ``(n,)``: cells a reader does not see (suppressed or hidden).
    targets
        Cell numbers (unknown cells) whose range is wanted; default every unknown cell.
    lower
        ``(n,)`` lower bounds of the unknown cells (default 0: counts are non-negative);
        ``-inf`` for an unbounded cell.
    integer
        Counts are whole numbers: bounds are rounded inward (``ceil``/``floor``) and, when
        the optimal vertex of a program is fractional, the bound is re-solved as an integer
        program (``scipy.optimize.milp``). ``False`` gives the continuous LP bounds.

    Returns
    -------
    tuple of numpy.ndarray
        ``(low, high)`` for the targets, in order; ``high`` is ``inf`` when nothing bounds
        the cell from above.

    Raises
    ------
    InvalidParameterError
        When a target is not unknown, or when the published cells admit no non-negative
        table at all.

    Notes
    -----
    Two linear programs per target (minimise and maximise ``x_s``), solved by HiGHS
    through ``scipy.optimize.linprog(method="highs")``. Only the connected component of
    the unknown cells that holds ``s`` enters its programs (cells of other components
    cannot move it), so a large table is a series of small programs. This is the
    "attacker problem" of Fischetti and Salazar (2000), the check of R ``sdcTable::attack``
    and ``GaussSuppression::ComputeIntervals`` (which also use HiGHS).

    References
    ----------
    Fischetti, M. and Salazar-Gonzalez, J. J. (2000). Models and algorithms for optimizing
    cell suppression in tabular data with linear constraints. *Journal of the American
    Statistical Association* 95, 916-928.
    """
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    A = np.asarray(constraints, dtype=float)
    vals = np.asarray(values, dtype=float)
    unk = np.asarray(unknown, dtype=bool)
    n = vals.shape[0]
    if A.ndim != 2 or A.shape[1] != n or unk.shape != (n,):
        raise InvalidParameterError(
            f"constraints must be (m, {n}) and unknown ({n},); got {A.shape} and {unk.shape}."
        )
    lb_all = np.zeros(n) if lower is None else np.asarray(lower, dtype=float)
    tgt = np.flatnonzero(unk) if targets is None else np.asarray(targets, dtype=int).reshape(-1)
    if tgt.size and not unk[tgt].all():
        bad = int(tgt[~unk[tgt]][0])
        raise InvalidParameterError(f"targets: cell {bad} is published, not unknown; only unknown cells have a range.")
    low = np.full(tgt.size, -np.inf)
    high = np.full(tgt.size, np.inf)
    if tgt.size == 0:
        return low, high

    # relations that hold at the true values; the known part moves to the right-hand side
    known = ~unk
    involved_known = (A[:, known] != 0)
    if np.any(involved_known & ~np.isfinite(vals[known])[None, :]):
        raise InvalidParameterError("values: a known cell taking part in a relation is not finite; mark it unknown.")
    filled = np.where(np.isfinite(vals), vals, 0.0)
    finite_rows = ~np.any((A != 0) & ~np.isfinite(vals)[None, :], axis=1)
    residual = np.abs(A @ filled)
    holds = ~finite_rows | (residual <= RESIDUAL_TOL * np.maximum(1.0, np.abs(A) @ np.abs(filled)))
    cols = np.flatnonzero(unk)
    pos = np.full(n, -1)
    pos[cols] = np.arange(cols.size)
    B = A[holds][:, cols]
    rhs = -(A[holds][:, known] @ filled[known])
    keep = np.abs(B).sum(axis=1) > 0
    B, rhs = B[keep], rhs[keep]
    lb = lb_all[cols]
    integral_system = bool(np.all(np.abs(B - np.round(B)) <= 0)) and bool(
        np.all(np.abs(rhs - np.round(rhs)) <= INTEGRAL_TOL))

    pattern = csr_matrix((B != 0).astype(np.int8))
    ncomp, label = connected_components(pattern.T @ pattern, directed=False)
    comps: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def component(c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if c not in comps:
            members = np.flatnonzero(label == c)
            rows = np.flatnonzero(np.abs(B[:, members]).sum(axis=1) > 0)
            comps[c] = (members, B[np.ix_(rows, members)], rhs[rows])
        return comps[c]

    for k, cell in enumerate(tgt):
        p = int(pos[cell])
        members, Bc, rc = component(int(label[p]))
        j = int(np.flatnonzero(members == p)[0])
        if Bc.shape[0] == 0:  # takes part in no relation: only its own bound
            low[k], high[k] = lb[p], np.inf
            continue
        bounds = [(float(b) if np.isfinite(b) else None, None) for b in lb[members]]
        for sense in (1.0, -1.0):
            cvec = np.zeros(members.size)
            cvec[j] = sense
            res = linprog(cvec, A_eq=Bc, b_eq=rc, bounds=bounds, method="highs")
            if res.status == 2:
                raise InvalidParameterError(
                    "the published cells admit no table with non-negative counts: a total does not "
                    "add up with its parts; check the margins of the table."
                )
            if res.status == 3:  # unbounded in this direction
                bound = -np.inf if sense > 0 else np.inf
            elif res.status != 0:  # pragma: no cover - HiGHS numerical trouble
                raise InvalidParameterError(f"the attacker problem could not be solved: {res.message}")
            else:
                bound = float(res.x[j])
                if integer and integral_system:
                    frac = np.abs(res.x - np.round(res.x)) > INTEGRAL_TOL
                    if frac.any():
                        bound = _integer_bound(cvec, Bc, rc, bounds, fallback=bound)
                    bound = math.ceil(bound - INTEGRAL_TOL) if sense > 0 else math.floor(bound + INTEGRAL_TOL)
            if sense > 0:
                low[k] = bound
            else:
                high[k] = bound
    return low, high


def _integer_bound(c: np.ndarray, B: np.ndarray, rhs: np.ndarray, bounds: list, *, fallback: float) -> float:
    """Optimum of ``c @ x`` over the integer points (``scipy.optimize.milp``, HiGHS)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    res = milp(c, constraints=LinearConstraint(B, rhs, rhs), integrality=np.ones(c.size),
               bounds=Bounds(lo, np.full(c.size, np.inf)))
    if res.status != 0 or res.x is None:  # pragma: no cover - the LP optimum stays a valid bound
        return fallback
    j = int(np.flatnonzero(c)[0])
    return float(res.x[j])


# ---------------------------------------------------------------------------------------
# the table front end
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, repr=False)
class IntervalAuditResult:
    """What :func:`audit_intervals` found: the range a reader can derive for each unknown cell.

    Attributes
    ----------
    table
        One row per suppressed or hidden count: ``row`` (position), ``column`` (count
        column, or the hidden count's name), ``kind`` (``suppressed``/``hidden``),
        ``sensitive`` (a small count that the rule protects), ``lower`` and ``upper``
        (the range a reader can derive; ``upper`` may be ``inf``) and ``protected``
        (``False`` for a sensitive cell whose range fails :func:`interval_shortfall`).
        Which cells are ``sensitive`` is itself confidential: keep the audit internal.
    min_cell, zero_ok, integer
        The settings used.
    """

    _table: pd.DataFrame
    min_cell: int
    zero_ok: bool
    integer: bool

    @property
    def table(self) -> pd.DataFrame:
        return self._table.copy()

    @property
    def n_sensitive(self) -> int:
        """Number of sensitive (small) suppressed or hidden counts."""
        return int(self._table["sensitive"].sum())

    @property
    def n_pinned(self) -> int:
        """Number of sensitive counts whose derivable range fails the interval rule."""
        return int((~self._table["protected"]).sum())

    @property
    def ok(self) -> bool:
        """``True`` when every sensitive count is protected."""
        return self.n_pinned == 0

    def __repr__(self) -> str:
        return (f"IntervalAuditResult(min_cell={self.min_cell}, "
                f"sensitive={self.n_sensitive}, pinned={self.n_pinned})\n{self._table.to_string(index=False)}")

    def _repr_html_(self) -> str:
        from recoverystats.results.render import render_html_table

        return render_html_table(self._table, title=(f"Interval audit (min_cell={self.min_cell}): "
                                                     f"{self.n_pinned} of {self.n_sensitive} sensitive cells pinned"))

    def to_markdown(self, digits: int = 3) -> str:
        from recoverystats.results.render import render_markdown_table

        return render_markdown_table(self._table, digits=digits)

    def to_dict(self) -> dict[str, Any]:
        from recoverystats.results.base import json_safe

        return {"result": type(self).__name__, "table": json_safe(self._table),
                "min_cell": self.min_cell, "zero_ok": self.zero_ok, "integer": self.integer,
                "n_sensitive": self.n_sensitive, "n_pinned": self.n_pinned}


def sensitive_cells(values: np.ndarray, published: np.ndarray, unknown: np.ndarray, min_cell: int,
                    zero_ok: bool) -> np.ndarray:
    """Unknown cells the interval rule protects: small counts (and zeros when they are hidden too)."""
    finite = np.isfinite(values)
    small = finite & (values >= 1) & (values < min_cell)
    if not zero_ok:
        small |= finite & (values == 0) & published
    return unknown & small


def cell_lower_bounds(values: np.ndarray, published: np.ndarray, zero_ok: bool) -> np.ndarray:
    """What a reader knows from below about each unknown cell.

    A suppressed published count is at least 1 when zeros are shown (``zero_ok``): a zero
    would have been printed. (A zero chosen as a complementary suppression keeps the
    bound 0, so the true table stays feasible.) Hidden counts and suppressed counts when
    zeros are suppressed too are at least 0; a hidden combination whose true value is
    negative is not a count and has no bound.
    """
    lower = np.zeros(values.shape[0])
    if zero_ok:
        lower[published & np.isfinite(values) & (values >= 1)] = 1.0
    lower[np.isfinite(values) & (values < 0)] = -np.inf
    return lower


def attacker_problem(table: pd.DataFrame, result: SuppressionResult
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[tuple[int, str], int], np.ndarray, np.ndarray]:
    """The attacker's problem for a suppressed table: what the reader knows and does not.

    Returns ``(values, A, published, index, unknown, lower)``: the true values of every
    count and hidden count, the relations ``A x = 0``, which cells are published cells of
    the table, ``(row, column) -> position``, which values the reader does not see (hidden
    counts and every suppressed cell) and each value's lower bound (1 for a suppressed
    count when zeros are shown). Shared by :func:`audit_intervals` and
    :func:`~recoverystats.privacy.audit_derived`.
    """
    from recoverystats.privacy.suppress import build_structure

    t = table.reset_index(drop=True)
    if t.shape[0] != result.mask.shape[0]:
        raise InvalidParameterError(
            f"table has {t.shape[0]} rows but the suppression result has {result.mask.shape[0]}; "
            "pass the same table that was given to suppress()."
        )
    values, A, published, _, index = build_structure(t, list(result.count_columns), result.margins)
    unknown = ~published | ~np.isfinite(values)
    cols = list(result.mask.columns)
    for (i, c), j in index.items():
        if c in cols and bool(result.mask.iat[i, cols.index(c)]):
            unknown[j] = True
    lower = cell_lower_bounds(values, published, bool(result.zero_ok))
    return values, A, published, index, unknown, lower


def audit_intervals(table: pd.DataFrame, result: SuppressionResult, *, integer: bool = True) -> IntervalAuditResult:
    """Solve the attacker's problems for a suppressed table and check the interval rule.

    Parameters
    ----------
    table
        The original (unsuppressed) table that was passed to
        :func:`~recoverystats.privacy.suppress`.
    result
        What :func:`~recoverystats.privacy.suppress` returned for it (its mask, counts,
        margins, ``min_cell`` and ``zero_ok`` are used).
    integer
        Use the integrality of counts (default); ``False`` gives the LP relaxation.

    Returns
    -------
    IntervalAuditResult
        The range a reader can derive for every suppressed count and hidden count, and
        whether each sensitive one satisfies the rule of :func:`interval_shortfall`.

    Notes
    -----
    The published cells are fixed at their values, every suppressed or hidden cell is
    unknown with the lower bound of :func:`cell_lower_bounds`, and
    :func:`attacker_bounds` gives its range. A sensitive cell (a count between 1 and
    ``min_cell - 1``, or a zero when ``zero_ok`` is false) is protected when its range is
    at least ``min_cell - 1`` wide and, for a suppressed published cell, reaches
    ``min_cell`` (:func:`interval_shortfall`). Count cells with no value (NaN) are
    unknown to a reader too.

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats.privacy import audit_intervals, suppress
    >>> t = pd.DataFrame({"site": ["A", "B", "C", "Total"], "n": [200, 5, 300, 505]})
    >>> r = suppress(t, count_columns="n", margins={"total_row": {"site": "Total"}})
    >>> audit = audit_intervals(t, r)
    >>> audit.table[["row", "sensitive", "lower", "upper", "protected"]]
       row  sensitive  lower  upper  protected
    0    0      False    1.0  204.0       True
    1    1       True    1.0  204.0       True
    """
    values, A, published, index, unknown, lower = attacker_problem(table, result)
    cols = list(result.mask.columns)
    zero_ok = bool(result.zero_ok)
    rows = [(i, c, j) for (i, c), j in sorted(index.items(), key=lambda kv: kv[1]) if unknown[j]
            and (not published[j] or bool(result.mask.iat[i, cols.index(c)]))]
    targets = np.array([j for _, _, j in rows], dtype=int)
    lo, hi = attacker_bounds(A, values, unknown, targets=targets, lower=lower, integer=integer)
    sens = sensitive_cells(values, published, unknown, result.min_cell, zero_ok)[targets] if targets.size else \
        np.zeros(0, dtype=bool)
    reach = published[targets] if targets.size else np.zeros(0, dtype=bool)
    protected = ~sens | (interval_shortfall(lo, hi, result.min_cell, reach) <= INTEGRAL_TOL)
    out = pd.DataFrame({
        "row": [i for i, _, _ in rows],
        "column": [c for _, c, _ in rows],
        "kind": ["suppressed" if published[j] else "hidden" for _, _, j in rows],
        "sensitive": sens.astype(bool),
        "lower": lo.astype(float),
        "upper": hi.astype(float),
        "protected": protected.astype(bool),
    }, columns=list(AUDIT_COLUMNS))
    return IntervalAuditResult(_table=out, min_cell=int(result.min_cell), zero_ok=zero_ok,
                               integer=bool(integer))
