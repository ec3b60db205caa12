"""Small-cell suppression: primary, complementary and dependent (DESIGN section 8).

Counts ``1 .. min_cell - 1`` are suppressed (*primary*). Other cells are then
suppressed (*complementary*) until no suppressed cell can be recovered exactly from the
published cells and the table's additive structure (totals, a total column, the
``n - events`` complement), and finally every percentage, rate or confidence bound that
was computed from a suppressed count is suppressed too (*dependent*).

The additive structure is written as linear equations ``A x = 0`` over the cells of the
table (a total row gives one equation per count column and ``by`` group; a total column
one per row; an ``n``/``events`` pair adds a hidden "non-event" cell ``n - events``).
A suppressed cell ``s`` can be recovered exactly iff the unit vector ``e_s`` lies in the
row space of ``A`` restricted to the suppressed cells, i.e. iff every vector of the
null space of ``A[:, S]`` is zero at ``s``. That test covers *every* linear recovery
(row/column totals minus visible cells, differences of totals, chains through several
lines), not only the one-line "total minus the rest" attack.

No well-kept Python library does complementary cell suppression (sdcTable and
tau-ARGUS exist for R and Java and solve the optimal version by integer programming),
so this is hand-written: a greedy fixed-point heuristic that protects every suppressed
cell against exact linear recovery, choosing the smallest-valued complement each time.
It is not optimal (it may suppress more than tau-ARGUS's optimal solution) but it is
always safe in the sense above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recoverystats._checks import as_column_list, check_columns, check_dataframe
from recoverystats.errors import InvalidParameterError

__all__ = ["Margins", "SuppressionResult", "suppress", "SUPPRESSED_MARK", "LOG_COLUMNS", "POLICY_MIN_CELL"]

#: The policy threshold (CMS cell size suppression policy, DESIGN section 14): counts 1-10
#: are never published in a report meant for release. ``min_cell`` may be raised freely;
#: an output built with a lower ``min_cell`` is stamped "not for release", and the scan
#: checks unstamped outputs against this threshold whatever ``min_cell`` they were built with.
POLICY_MIN_CELL = 11

#: How a suppressed cell is displayed in every report output (the same mark for primary
#: and complementary cells, so readers cannot tell which cells are the small ones).
SUPPRESSED_MARK = "*"
LOG_COLUMNS: tuple[str, ...] = ("row", "column", "reason", "detail")

_TOL = 1e-9  # numerical zero for null-space components
_INTERVAL_TOL = 1e-6  # a range short of the interval rule by less than this is not short


@dataclass(frozen=True, slots=True)
class Margins:
    """The additive structure of a table, i.e. what a reader can subtract.

    Parameters
    ----------
    total_row
        ``{column: label}``: rows whose ``column`` equals ``label`` are the sum of the
        other rows (within the same ``by`` group), for every count column.
    by
        Columns that split a stacked table into independent blocks, each with its own
        total row (e.g. ``("measure",)``).
    total_columns
        ``{total_column: [part_columns]}``: in every row, ``total_column`` equals the sum
        of ``part_columns``.
    complements
        ``{n_column: events_column}`` or a list of ``(n_column, events_column)`` pairs:
        the hidden count ``n - events`` (the non-events) is also a count and must not be
        recoverable when it is between 1 and ``min_cell - 1``.
    hidden
        ``{name: {column: coefficient}}``: further hidden per-row counts defined as linear
        combinations of count columns (e.g. the concordant "yes-yes" cell of a McNemar
        table, ``{"yes_yes": {"intake_yes": 1, "yes_to_no": -1}}``). Hidden names may be
        used as parts in ``total_columns``.
    """

    total_row: Mapping[str, Any] = field(default_factory=dict)
    by: tuple[str, ...] = ()
    total_columns: Mapping[str, Sequence[str]] = field(default_factory=dict)
    complements: tuple[tuple[str, str], ...] = ()
    hidden: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: Margins | Mapping[str, Any] | None) -> Margins:
        if value is None:
            return cls()
        if isinstance(value, Margins):
            return value
        if not isinstance(value, Mapping):
            raise InvalidParameterError(
                "margins must be None, a Margins object or a mapping with keys "
                f"'total_row', 'by', 'total_columns', 'complements'; got {type(value).__name__}."
            )
        unknown = set(value) - {"total_row", "by", "total_columns", "complements", "hidden"}
        if unknown:
            raise InvalidParameterError(
                f"margins: unknown key(s) {', '.join(sorted(map(repr, unknown)))}; allowed keys are "
                "'total_row', 'by', 'total_columns', 'complements', 'hidden'."
            )
        comp = value.get("complements") or ()
        pairs = tuple(comp.items()) if isinstance(comp, Mapping) else tuple(tuple(p) for p in comp)
        return cls(
            total_row=dict(value.get("total_row") or {}),
            by=tuple(as_column_list(value.get("by"))),
            total_columns={k: list(v) for k, v in dict(value.get("total_columns") or {}).items()},
            complements=tuple((str(a), str(b)) for a, b in pairs),
            hidden={str(k): {str(c): float(x) for c, x in dict(v).items()}
                    for k, v in dict(value.get("hidden") or {}).items()},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (written to ``results.json`` so ``scan`` can re-check)."""
        return {
            "total_row": {str(k): str(v) for k, v in self.total_row.items()},
            "by": list(self.by),
            "total_columns": {str(k): [str(c) for c in v] for k, v in self.total_columns.items()},
            "complements": [[a, b] for a, b in self.complements],
            "hidden": {k: dict(v) for k, v in self.hidden.items()},
        }


@dataclass(frozen=True, slots=True, repr=False)
class SuppressionResult:
    """A table after small-cell suppression.

    Attributes
    ----------
    table
        The published table: suppressed counts are ``<NA>`` (nullable ``Int64``),
        suppressed derived values ``NaN``. Never contains a suppressed value.
    mask
        Boolean frame of the same shape: ``True`` where a cell was suppressed.
    log
        One row per suppressed cell: ``row`` (position), ``column``, ``reason``
        (``primary``/``complementary``/``interval``/``ledger``/``dependent``/``linked``) and ``detail``. The log
        holds no suppressed values, so it is safe to keep next to the output.
    min_cell, count_columns, margins, dependent_columns, zero_ok, interval_protection
        The settings used.
    """

    table: pd.DataFrame
    mask: pd.DataFrame
    log: pd.DataFrame
    min_cell: int
    count_columns: tuple[str, ...]
    margins: Margins
    dependent_columns: Mapping[str, tuple[str, ...]]
    zero_ok: bool = True
    interval_protection: bool = True

    @property
    def n_suppressed(self) -> int:
        return int(self.mask.to_numpy().sum())

    def __repr__(self) -> str:
        reasons = self.log["reason"].value_counts().to_dict() if len(self.log) else {}
        return (f"SuppressionResult(min_cell={self.min_cell}, suppressed={self.n_suppressed} cells "
                f"{reasons})\n{self.table.to_string(index=False)}")

    # -- rich display (same renderer as every result and the report) ---------------------
    def _display_table(self) -> pd.DataFrame:
        """The published table with each suppressed cell shown as ``SUPPRESSED_MARK``."""
        return self.table.astype(object).mask(self.mask.to_numpy(), SUPPRESSED_MARK)

    def _repr_html_(self) -> str:
        from recoverystats.results.render import render_html_table

        title = (f"Suppressed table (min_cell={self.min_cell}, {self.n_suppressed} cells "
                 f"suppressed, shown as {SUPPRESSED_MARK})")
        return render_html_table(self._display_table(), title=title)

    def to_markdown(self, digits: int = 3) -> str:
        """The published table as Markdown, suppressed cells shown as ``SUPPRESSED_MARK``."""
        from recoverystats.results.render import render_markdown_table

        return render_markdown_table(self._display_table(), digits=digits)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the published table (suppressed cells ``None``), mask, log and settings."""
        from recoverystats.results.base import json_safe

        return {
            "result": type(self).__name__,
            "table": json_safe(self.table),
            "mask": json_safe(self.mask),
            "log": json_safe(self.log),
            "min_cell": int(self.min_cell),
            "count_columns": list(self.count_columns),
            "n_suppressed": self.n_suppressed,
        }


# ---------------------------------------------------------------------------------------
# the linear-structure engine (works on a flat vector of cells)
# ---------------------------------------------------------------------------------------
def recoverable(constraints: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """Which unknown cells are determined exactly by ``constraints @ x = 0`` and the known cells.

    Parameters
    ----------
    constraints
        ``(m, n)`` matrix of the linear relations among the ``n`` cells.
    unknown
        Boolean ``(n,)``: cells a reader does not see (suppressed or hidden).

    Returns
    -------
    Boolean ``(n,)``: ``True`` for unknown cells that can be recovered exactly.

    Notes
    -----
    Cell ``s`` is recovered iff ``e_s`` is in the row space of ``A[:, S]`` (``S`` the
    unknown cells), i.e. iff the null space of ``A[:, S]`` vanishes at ``s``. The null
    space is computed by SVD (``scipy.linalg.null_space``).
    """
    from scipy.linalg import null_space

    out = np.zeros(unknown.shape[0], dtype=bool)
    idx = np.flatnonzero(unknown)
    if idx.size == 0:
        return out
    if constraints.shape[0] == 0:
        return out
    sub = constraints[:, idx]
    rows = np.flatnonzero(np.abs(sub).sum(axis=1) > 0)
    if rows.size == 0:
        return out
    sub = sub[rows]
    # only columns that take part in some relation can be recovered
    involved = np.abs(sub).sum(axis=0) > 0
    if not sub.shape[1]:
        return out
    # the null space of a block-diagonal matrix is the product of its blocks' null spaces:
    # one SVD per connected component of the unknown cells (two unknown cells are connected
    # when they share a relation) instead of one SVD of the whole table
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    nz = sub != 0
    pattern = csr_matrix(nz.astype(np.int8))
    _, label = connected_components(pattern.T @ pattern, directed=False)
    determined = np.zeros(sub.shape[1], dtype=bool)
    sizes = np.bincount(label)
    # a cell linked to no other unknown cell is the only unknown of every relation it is in
    determined[(sizes[label] == 1) & involved] = True
    for comp in np.flatnonzero(sizes > 1):
        members = np.flatnonzero(label == comp)
        crow = np.flatnonzero(nz[:, members].any(axis=1))
        ns = null_space(sub[np.ix_(crow, members)])
        if ns.size == 0:
            determined[members] = True
        else:
            determined[members] = np.abs(ns).max(axis=1) < 1e-8
    out[idx[determined & involved]] = True
    return out


def _protect(values: np.ndarray, constraints: np.ndarray, published: np.ndarray,
             primary: np.ndarray, candidate: np.ndarray, min_cell: int,
             labels: Sequence[str], *, zero_ok: bool = True, interval: bool = False,
             ledger: np.ndarray | None = None) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
    """Greedy complementary suppression to a fixed point.

    ``values`` may contain NaN (unknown values: never sensitive, never complements).
    Hidden cells (``~published``) are always unknown; they are sensitive when their value
    is in ``1..min_cell-1``. With ``interval`` the fixed point also satisfies the interval
    rule (:func:`~recoverystats.privacy.intervals.interval_shortfall`) for every sensitive
    cell. Returns the suppressed mask over all cells and the list of
    ``(cell, reason, detail)`` choices (reason ``complementary`` or ``interval``; ``ledger``
    when the protected count is a change since an earlier release, cells marked in ``ledger``).
    """
    n = values.shape[0]
    is_change = np.zeros(n, dtype=bool) if ledger is None else np.asarray(ledger, dtype=bool)
    supp = primary.copy()
    hidden = ~published
    small_hidden = hidden & np.isfinite(values) & (values >= 1) & (values < min_cell)
    chosen: list[tuple[int, str, str]] = []
    member = [np.flatnonzero(constraints[:, j]) for j in range(n)]
    eligible = candidate & published & np.isfinite(values)
    if interval:
        from recoverystats.privacy.intervals import (
            attacker_bounds,
            cell_lower_bounds,
            interval_shortfall,
            sensitive_cells,
        )

        lower = cell_lower_bounds(values, published, zero_ok)
        nan_cells = ~np.isfinite(values)
        # sensitive: the small primary cells and the small hidden counts (complements are
        # never small: every small published count is primary already)
        sensitive = np.flatnonzero(sensitive_cells(values, published, supp | hidden, min_cell, zero_ok))

        def shortfall(trial: np.ndarray, cells: np.ndarray) -> np.ndarray:
            """How far each cell's derivable range falls short of the rule (0 = protected)."""
            lo, hi = attacker_bounds(constraints, values, trial | hidden | nan_cells, targets=cells, lower=lower)
            return interval_shortfall(lo, hi, min_cell, reach=published[cells])

    def lines_through(cells: np.ndarray) -> np.ndarray:
        """Every cell that shares a relation with one of ``cells``."""
        rows = np.unique(np.concatenate([member[int(c)] for c in cells])) if cells.size else np.zeros(0, int)
        if rows.size == 0:
            return np.zeros(0, dtype=int)
        return np.flatnonzero(np.abs(constraints[rows]).sum(axis=0) > 0)

    def component(cell: int, unknown: np.ndarray) -> np.ndarray:
        """The unknown cells linked to ``cell`` through chains of relations."""
        seen = np.zeros(n, dtype=bool)
        seen[cell] = True
        frontier = np.array([cell])
        while frontier.size:
            nxt = lines_through(frontier)
            nxt = nxt[unknown[nxt] & ~seen[nxt]]
            seen[nxt] = True
            frontier = nxt
        return np.flatnonzero(seen)

    def order(cands: np.ndarray) -> list[int]:
        # smallest non-zero value first; zeros last (weak protection); totals are just
        # cells with large values, so they come late naturally
        vals = values[cands]
        key = np.where(vals > 0, vals, np.inf)
        return [int(c) for c in cands[np.lexsort((cands, key))]]

    for _ in range(4 * n + 10):
        unknown = supp | hidden
        rec = recoverable(constraints, unknown)
        exposed = np.flatnonzero(rec & (supp | small_hidden))
        # the sum of the suppressed cells of one line must not itself be a small count
        line_fix: list[tuple[int, int]] = []
        for r in range(constraints.shape[0]):
            coef = constraints[r]
            inline = np.flatnonzero((coef != 0) & unknown)
            if inline.size < 2 or is_change[inline].any():
                # (a change since an earlier release is protected by its own range, not as a line sum)
                continue
            signs = np.sign(coef[inline])
            if not (np.all(signs > 0) or np.all(signs < 0)):
                continue
            if not np.all(np.isfinite(values[inline])):
                continue
            total = values[inline].sum()
            if 1 <= total < min_cell:
                line_fix.append((r, int(inline[0])))
        if exposed.size == 0 and not line_fix:
            if not interval or sensitive.size == 0:
                return supp, chosen
            short = shortfall(supp, sensitive)
            failing = sensitive[short > _INTERVAL_TOL]
            if failing.size == 0:
                return supp, chosen
            s = int(failing[0])
            current = float(short[short > _INTERVAL_TOL][0])
            picked = None
            tried: set[int] = set()
            # widen step by step: the cell's own lines, then the lines of the unknown cells
            # met there, then the lines of every unknown cell linked to it (no other cell
            # can move its range)
            unknown_now = supp | hidden | nan_cells
            near = lines_through(np.array([s]))
            second = lines_through(near[unknown_now[near]])
            linked = lines_through(component(s, unknown_now))
            for pool in (near, second, linked):
                cands = [c for c in order(pool[eligible[pool] & ~supp[pool]]) if c not in tried]
                best, best_short = None, current
                for c in cands:
                    tried.add(c)
                    trial = supp.copy()
                    trial[c] = True
                    got = float(shortfall(trial, np.array([s]))[0])
                    if got < best_short - _INTERVAL_TOL:
                        best, best_short = c, got
                        if got <= _INTERVAL_TOL:
                            break
                if best is not None:
                    picked = best
                    break
            if picked is None:
                # no single cell widens the range: suppress the smallest cell of its lines and
                # let the next round (exact recovery first) build on it
                cands = near[eligible[near] & ~supp[near]]
                if cands.size == 0:
                    cands = np.flatnonzero(eligible & ~supp)
                if cands.size == 0:
                    raise InvalidParameterError(
                        f"cannot protect suppressed cell {labels[s]} against interval disclosure: every "
                        "other cell is already suppressed or not eligible as a complement; aggregate the "
                        "table or pass interval_protection=False (and check the ranges yourself)."
                    )
                picked = order(cands)[0]
            supp[picked] = True
            chosen.append((picked, "ledger" if is_change[s] else "interval",
                           f"widens the range a reader can derive for {labels[s]}"))
            continue
        if exposed.size:
            s = int(exposed[0])
            rel = member[s]
            pool = np.unique(np.concatenate([np.flatnonzero(constraints[r] != 0) for r in rel]))
            cands = pool[candidate[pool] & ~supp[pool] & published[pool] & np.isfinite(values[pool])]
            why = f"protects {labels[s]} from recovery by subtraction"
            picked = None
            for c in order(cands):
                trial = supp.copy()
                trial[c] = True
                if not recoverable(constraints, trial | hidden)[s]:
                    picked = c
                    break
            if picked is None and cands.size:
                picked = order(cands)[0]
            if picked is None:
                # nothing in the cell's own lines can be suppressed: widen to every
                # published candidate cell (rare: only with unusual constraint sets)
                wider = np.flatnonzero(candidate & ~supp & published & np.isfinite(values))
                if wider.size == 0:
                    raise InvalidParameterError(
                        f"cannot protect suppressed cell {labels[s]}: every other cell is "
                        "already suppressed or not eligible as a complement; drop the total "
                        "rows/columns or aggregate the table."
                    )
                picked = order(wider)[0]
            supp[picked] = True
            chosen.append((picked, "ledger" if is_change[s] else "complementary", why))
        else:
            r, s = line_fix[0]
            pool = np.flatnonzero(constraints[r] != 0)
            cands = pool[candidate[pool] & ~supp[pool] & published[pool] & np.isfinite(values[pool])]
            if cands.size == 0:
                # the line's suppressed cells add to a small count that a reader can get
                # from the line's published cells; suppress the other cells of the lines
                # meeting the first suppressed cell
                wider = np.unique(np.concatenate([np.flatnonzero(constraints[q] != 0) for q in member[s]]))
                cands = wider[candidate[wider] & ~supp[wider] & published[wider] & np.isfinite(values[wider])]
                if cands.size == 0:
                    raise InvalidParameterError(
                        f"cannot protect the suppressed cells of the line through {labels[s]}: "
                        "their sum is a small count and no other cell can be suppressed."
                    )
            picked = order(cands)[0]
            supp[picked] = True
            chosen.append((picked, "complementary",
                           f"the suppressed cells of the line through {labels[s]} add to a small count"))
    raise InvalidParameterError("complementary suppression did not reach a fixed point")  # pragma: no cover


# ---------------------------------------------------------------------------------------
# the table front end
# ---------------------------------------------------------------------------------------
def _check_counts(table: pd.DataFrame, cols: Sequence[str]) -> None:
    for c in cols:
        s = table[c]
        if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
            raise InvalidParameterError(
                f"count_columns: column {c!r} must hold non-negative whole numbers; got dtype {s.dtype}."
            )
        v = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
        bad = np.isfinite(v) & ((v < 0) | (np.abs(v - np.round(v)) > 1e-9))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidParameterError(
                f"count_columns: column {c!r} row {i} holds {float(v[i])!r}; counts must be non-negative "
                "whole numbers (pass rates and percentages as dependent_columns instead)."
            )


def _check_derived_cells(table: pd.DataFrame, counts: Sequence[str],
                         derived_cells: Mapping[tuple[int, str], Sequence[tuple[int, str]]] | None
                         ) -> dict[tuple[int, str], list[tuple[int, str]]]:
    """Validate ``derived_cells``: statistic cells outside the count columns, inputs inside."""
    out: dict[tuple[int, str], list[tuple[int, str]]] = {}
    nrow = len(table)
    for cell, srcs in dict(derived_cells or {}).items():
        i, c = int(cell[0]), str(cell[1])
        if c not in table.columns or not 0 <= i < nrow or c in counts:
            raise InvalidParameterError(
                f"derived_cells: ({i}, {c!r}) must be a cell of the table outside count_columns "
                f"({', '.join(map(repr, counts))}); the table has {nrow} rows."
            )
        ins = []
        for r, s in srcs:
            r, s = int(r), str(s)
            if s not in counts or not 0 <= r < nrow:
                raise InvalidParameterError(
                    f"derived_cells[({i}, {c!r})]: input ({r}, {s!r}) must be a cell of a count column "
                    f"({', '.join(map(repr, counts))}) in rows 0..{nrow - 1}."
                )
            ins.append((r, s))
        out[(i, c)] = ins
    return out


def _add_ledger(values: np.ndarray, A: np.ndarray, published: np.ndarray, labels: list[str],
                index: Mapping[tuple[int, str], int], table: pd.DataFrame, counts: Sequence[str], margins: Margins,
                previous: Mapping[tuple[int, str], float] | Sequence[Mapping[tuple[int, str], float]]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Append the earlier releases' values (known constants) and the differences (hidden counts).

    For a cell ``x`` with an earlier published value ``p``: a known cell holding ``p`` and
    a hidden cell ``d = s (x - p)`` with ``s = ±1`` chosen so that ``d >= 0`` at the true
    values (the attacker problem then treats ``d`` like any hidden count: sensitive when
    ``1 <= d < min_cell``; bounded below by 0, i.e. the reader is assumed to know the sign
    of the change, as for cumulative counts: a stronger reader than many, never a weaker
    one). Relation: ``d - s x + s p = 0``.
    """
    releases = [previous] if isinstance(previous, Mapping) else list(previous)
    combos = [(f"{n!r} minus {e!r}", {n: 1.0, e: -1.0}) for n, e in margins.complements]
    combos += [(name, dict(combo)) for name, combo in margins.hidden.items()]
    prev: dict[tuple[int, str], set[float]] = {}
    for release in releases:
        if not isinstance(release, Mapping):
            raise InvalidParameterError(
                "previous must map (row position, count column) to an earlier published value, or be a list of "
                f"such mappings (one per earlier release); got {type(release).__name__}."
            )
        got: dict[tuple[int, str], float] = {}
        for key, v in release.items():
            i, c = key
            if (int(i), str(c)) not in index or str(c) not in counts:
                raise InvalidParameterError(
                    f"previous: cell (row {i}, column {c!r}) is not a count cell of the table; give earlier values "
                    f"of the count columns ({', '.join(map(repr, counts))}) by row position."
                )
            x = float(v)
            if not np.isfinite(x) or x < 0 or abs(x - round(x)) > 1e-9:
                raise InvalidParameterError(
                    f"previous: cell (row {i}, column {c!r}) holds {x!r}; earlier values must be published counts "
                    "(non-negative whole numbers)."
                )
            got[(int(i), str(c))] = float(round(x))
        # hidden per-row counts (n - events, ...): their earlier value follows when every part has one
        for name, combo in combos:
            for i in range(len(table)):
                parts = [got.get((i, c)) for c in combo]
                if all(x is not None for x in parts):
                    val = sum(coef * float(x) for coef, x in zip(combo.values(), parts, strict=True))  # type: ignore[arg-type]
                    if val >= 0:
                        got[(i, name)] = float(val)
        for cell, x in got.items():
            prev.setdefault(cell, set()).add(x)
    vals = list(values)
    pub = list(published)
    labs = list(labels)
    eqs: list[dict[int, float]] = []
    for (i, c), earlier in sorted(prev.items()):
        j = index[(i, c)]
        if not np.isfinite(values[j]):
            continue
        for p in sorted(earlier):
            k = len(vals)
            vals.append(p)
            pub.append(True)
            labs.append(f"{labels[j]} in an earlier release")
            diff = values[j] - p
            sign = 1.0 if diff >= 0 else -1.0
            d = len(vals)
            vals.append(abs(diff))
            pub.append(False)
            labs.append(f"the change of {labels[j]} since an earlier release")
            eqs.append({d: 1.0, j: -sign, k: sign})
    if not eqs:
        return values, A, published, labels
    out = np.zeros((A.shape[0] + len(eqs), len(vals)))
    out[: A.shape[0], : A.shape[1]] = A
    for r, eq in enumerate(eqs, start=A.shape[0]):
        for j, coef in eq.items():
            out[r, j] = coef
    return np.asarray(vals, dtype=float), out, np.asarray(pub, dtype=bool), labs


def build_structure(table: pd.DataFrame, count_columns: Sequence[str], margins: Margins
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], dict[tuple[int, str], int]]:
    """Flatten a table's count cells and its additive structure.

    Returns ``(values, constraints, published, labels, index)`` where ``index`` maps
    ``(row position, column)`` to the cell number. Hidden complement cells
    (``n - events``) are appended after the published cells. Values may be NaN.
    """
    nrow = len(table)
    index: dict[tuple[int, str], int] = {}
    vals: list[float] = []
    labels: list[str] = []
    first_label_col = next((c for c in table.columns if c not in count_columns), None)

    def row_name(i: int) -> str:
        if first_label_col is None:
            return f"row {i}"
        key = " / ".join(str(table.iloc[i][c]) for c in table.columns
                         if c not in count_columns and not pd.api.types.is_float_dtype(table[c]))[:60]
        return f"row {i} ({key})"

    for c in count_columns:
        col = pd.to_numeric(table[c], errors="coerce").astype("float64").to_numpy()
        for i in range(nrow):
            index[(i, c)] = len(vals)
            vals.append(col[i])
            labels.append(f"{row_name(i)}, column {c!r}")
    published = [True] * len(vals)
    rows: list[dict[int, float]] = []

    # total row(s)
    if margins.total_row:
        is_total = np.ones(nrow, dtype=bool)
        for col, lab in margins.total_row.items():
            is_total &= (table[col].astype("string") == str(lab)).fillna(False).to_numpy()
        if margins.by:
            blocks = table.groupby(list(margins.by), sort=False, dropna=False).indices.values()
        else:
            blocks = [np.arange(nrow)]
        for block in blocks:
            block = np.asarray(block)
            tot = block[is_total[block]]
            parts = block[~is_total[block]]
            if tot.size == 0:
                continue
            if tot.size > 1:
                raise InvalidParameterError(
                    f"margins: more than one total row ({margins.total_row}) in a block of the table; "
                    "give the block columns in margins['by']."
                )
            for c in count_columns:
                eq = {index[(int(p), c)]: 1.0 for p in parts}
                eq[index[(int(tot[0]), c)]] = -1.0
                rows.append(eq)
    # hidden per-row counts: n - events, and explicit linear combinations
    hidden_defs: list[tuple[str, dict[str, float]]] = [
        (f"{n!r} minus {e!r}", {n: 1.0, e: -1.0}) for n, e in margins.complements
    ] + [(name, dict(combo)) for name, combo in margins.hidden.items()]
    for name, combo in hidden_defs:
        for i in range(nrow):
            h = len(vals)
            index[(i, name)] = h
            vals.append(float(sum(coef * vals[index[(i, c)]] for c, coef in combo.items())))
            labels.append(f"{row_name(i)}, {name}")
            published.append(False)
            eq = {h: 1.0}
            for c, coef in combo.items():
                j = index[(i, c)]
                eq[j] = eq.get(j, 0.0) - coef
            rows.append(eq)
    # total column(s)
    for tcol, parts in margins.total_columns.items():
        for i in range(nrow):
            eq = {index[(i, p)]: 1.0 for p in parts}
            eq[index[(i, tcol)]] = -1.0
            rows.append(eq)
    ncell = len(vals)
    A = np.zeros((len(rows), ncell))
    for r, eq in enumerate(rows):
        for j, coef in eq.items():
            A[r, j] = coef
    return np.asarray(vals, dtype=float), A, np.asarray(published), labels, index


def suppress(
    table: pd.DataFrame,
    *,
    count_columns: str | Sequence[str],
    min_cell: int = 11,
    zero_ok: bool = True,
    margins: Margins | Mapping[str, Any] | None = None,
    dependent_columns: Mapping[str, str | Sequence[str]] | None = None,
    force: pd.DataFrame | Sequence[tuple[int, str]] | None = None,
    exempt_rows: Sequence[int] | None = None,
    interval_protection: bool = True,
    derived_cells: Mapping[tuple[int, str], Sequence[tuple[int, str]]] | None = None,
    previous: Mapping[tuple[int, str], float] | Sequence[Mapping[tuple[int, str], float]] | None = None,
) -> SuppressionResult:
    """Suppress small counts, their complements and everything computed from them.

    Parameters
    ----------
    table
        A tidy table; one row per cell group (e.g. per group/site), counts in
        ``count_columns``.
    count_columns
        Columns holding counts of people or events.
    min_cell
        Smallest count that may be shown: counts ``1 .. min_cell - 1`` are suppressed
        (default 11, i.e. 1-10 suppressed, the CMS/42 CFR Part 2 practice).
    zero_ok
        Show zeros (default). With ``False`` zeros are suppressed too.
    margins
        The table's additive structure (:class:`Margins` or a mapping with the same keys).
        Without it the cells are treated as unrelated (only primary and dependent
        suppression happen).
    dependent_columns
        ``{derived_column: count column(s) it is computed from}``, e.g.
        ``{"estimate": ["n", "events"], "ci_lower": ["n", "events"]}``. A derived value is
        suppressed when any of its counts in the same row is suppressed. Give *both*
        numerator and denominator: a percentage with a visible numerator reveals a
        suppressed denominator.
    force
        Cells to suppress regardless of their value (``reason="linked"``): a boolean mask
        frame or ``(row position, column)`` pairs. Used when the same number appears in
        another table where it was suppressed.
    exempt_rows
        Row positions whose cells are never chosen as complements (e.g. a grand total
        that is published elsewhere).
    interval_protection
        Also protect every small count against *interval* disclosure (default): the range
        a reader can derive for it from the published cells, the margins and the fact that
        counts are non-negative whole numbers must be at least ``min_cell - 1`` wide and,
        for a published cell, reach ``min_cell``
        (:func:`~recoverystats.privacy.intervals.interval_shortfall`). ``False`` checks
        exact recovery only.
    derived_cells
        ``{(row, column): [(row, column), ...]}``: a statistic in one cell computed from
        count cells anywhere in the table (a percentage of a level over the total row, a
        standardized mean difference over every level count of two groups). The statistic
        is suppressed (``reason="dependent"``) when any of its count cells is; the
        row-wise ``dependent_columns`` cannot express inputs in other rows. See
        :mod:`recoverystats.privacy.derived` for the attacker that checks what a published
        statistic tells about suppressed counts.
    previous
        Values of the same cells in earlier releases (the release ledger):
        ``{(row position, count column): published value}`` for one earlier release, or a
        list of such mappings, one per release. Each earlier value is a published constant, and
        the difference ``this - earlier`` is modelled as one more hidden count: while it is
        between 1 and ``min_cell - 1`` in absolute value it must not be recoverable and
        its range must be at least ``min_cell - 1`` wide (complementary and interval
        suppression as for any hidden count). Hidden counts (``n - events``, ``hidden``)
        are compared too when all their parts have an earlier value.

    Returns
    -------
    SuppressionResult
        ``table`` (suppressed cells ``<NA>``/``NaN``), ``mask`` and ``log``.

    Notes
    -----
    1. *Primary*: every count ``c`` with ``1 <= c < min_cell`` (and ``c == 0`` when
       ``zero_ok`` is false) and every ``force`` cell.
    2. *Complementary*: the margins define linear relations ``A x = 0`` among the cells
       (total row = sum of rows per block and count column; total column = sum of part
       columns per row; hidden ``n - events`` cells). While some suppressed cell ``s``
       is determined exactly by the published cells (``e_s`` in the row space of
       ``A[:, S]``), or the suppressed cells of one line add to a small count, suppress
       the smallest non-zero published cell that shares a line with ``s`` and, if
       possible, makes ``s`` undetermined. In a one-dimensional table with a total row
       this is the classic rule "at least two suppressed cells per line"; in two-way
       tables it also removes the "bridge" patterns that the two-per-line rule misses.
    3. *Interval* (``interval_protection=True``): for every small count ``s`` (primary, or
       a hidden count between 1 and ``min_cell - 1``) solve the attacker's linear programs
       ``min / max x_s`` subject to ``A x = 0``, the published cells fixed and every
       unknown cell ``>= 0`` (``>= 1`` for a suppressed cell when zeros are shown), with
       HiGHS (:func:`~recoverystats.privacy.intervals.attacker_bounds`). While a range is
       narrower than ``min_cell - 1`` or (published cells) stops below ``min_cell``,
       suppress the first cell, smallest non-zero value first, that makes it pass (else
       the one that widens it most), and go back to step 2.
    4. *Dependent*: suppress each derived column where one of its counts is suppressed,
       and each ``derived_cells`` statistic one of whose count cells is suppressed.

    Hand-written (no maintained Python library implements complementary suppression);
    the protection criterion is the exact-linear-recovery criterion of tau-ARGUS /
    R ``sdcTable::protectTable`` (which solve it optimally; this greedy version may
    suppress more cells). The interval rule follows the attacker problem of tau-ARGUS,
    sdcTable (``attack``) and GaussSuppression (``ComputeIntervals``); the required
    width and reach are stricter than their default protection levels (see
    ``docs/privacy.md``).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"site": ["A", "B", "C", "Total"], "n": [200, 5, 300, 505]})
    >>> r = suppress(t, count_columns="n", margins={"total_row": {"site": "Total"}})
    >>> r.table["n"].tolist()
    [<NA>, <NA>, 300, 505]
    """
    check_dataframe(table, "table")
    counts = as_column_list(count_columns)
    if not counts:
        raise InvalidParameterError("count_columns must name at least one column; got an empty list.")
    check_columns(table, counts, "count_columns")
    if isinstance(min_cell, bool) or not isinstance(min_cell, (int, np.integer)) or min_cell < 1:
        raise InvalidParameterError(
            f"min_cell must be a whole number >= 1 (1 turns suppression off); got {min_cell!r}."
        )
    min_cell = int(min_cell)
    for name, flag in (("zero_ok", zero_ok), ("interval_protection", interval_protection)):
        if not isinstance(flag, (bool, np.bool_)):
            raise InvalidParameterError(f"{name} must be True or False; got {flag!r}.")
    m = Margins.coerce(margins)
    for col in list(m.total_row) + list(m.by):
        check_columns(table, [col], "margins")
    for tcol, parts in m.total_columns.items():
        bad = [c for c in [tcol, *parts] if c not in counts and c not in m.hidden]
        if bad:
            raise InvalidParameterError(
                f"margins['total_columns']: {', '.join(map(repr, bad))} must be listed in count_columns "
                f"({', '.join(map(repr, counts))})."
            )
    for ncol, ecol in m.complements:
        bad = [c for c in (ncol, ecol) if c not in counts]
        if bad:
            raise InvalidParameterError(
                f"margins['complements']: {', '.join(map(repr, bad))} must be listed in count_columns "
                f"({', '.join(map(repr, counts))})."
            )
    for hname, combo in m.hidden.items():
        bad = [c for c in combo if c not in counts]
        if bad or hname in table.columns:
            raise InvalidParameterError(
                f"margins['hidden'][{hname!r}]: must combine count_columns ({', '.join(map(repr, counts))}) "
                f"and not reuse a column name; got {dict(combo)}."
            )
    deps = {k: tuple(as_column_list(v)) for k, v in dict(dependent_columns or {}).items()}
    check_columns(table, list(deps), "dependent_columns")
    for k, v in deps.items():
        bad = [c for c in v if c not in counts]
        if bad:
            raise InvalidParameterError(
                f"dependent_columns[{k!r}]: {', '.join(map(repr, bad))} is not one of count_columns "
                f"({', '.join(map(repr, counts))})."
            )
    _check_counts(table, counts)
    table = table.reset_index(drop=True)
    dcells = _check_derived_cells(table, counts, derived_cells)

    values, A, published, labels, index = build_structure(table, counts, m)
    n_table = values.shape[0]
    if previous:
        values, A, published, labels = _add_ledger(values, A, published, labels, index, table, counts, m,
                                                   previous)
    ncell = values.shape[0]
    finite = np.isfinite(values)
    earlier = np.zeros(ncell, dtype=bool)  # the earlier releases' values: constants, not cells of this table
    earlier[n_table:] = published[n_table:]
    change = np.zeros(ncell, dtype=bool)  # the changes since an earlier release: hidden counts
    change[n_table:] = ~published[n_table:]
    primary = published & ~earlier & finite & (values >= 1) & (values < min_cell)
    if not zero_ok:
        primary |= published & ~earlier & finite & (values == 0)
    reasons: dict[int, tuple[str, str]] = {}
    for j in np.flatnonzero(primary):
        reasons[int(j)] = ("primary", f"count between 1 and {min_cell - 1}" if values[j] > 0 else "zero count")
    if change.any():
        # a published cell whose change since an earlier release is small gives that change
        # away by subtraction: suppress it at once (its complements follow in _protect)
        small_change = change & finite & (values >= 1) & (values < min_cell)
        rows_, cols_ = np.nonzero(A[:, small_change] != 0)
        for r in np.unique(rows_):
            for j in np.flatnonzero(A[r, :n_table] != 0):
                if published[j] and not primary[j]:
                    primary[j] = True
                    reasons[int(j)] = ("ledger", "its change since an earlier release is between 1 and "
                                                 f"{min_cell - 1}")

    forced: list[tuple[int, str]] = []
    if force is not None:
        if isinstance(force, pd.DataFrame):
            fm = force.reset_index(drop=True)
            for c in fm.columns:
                for i in np.flatnonzero(fm[c].to_numpy(dtype=bool, na_value=False)):
                    forced.append((int(i), str(c)))
        else:
            forced = [(int(i), str(c)) for i, c in force]
    forced_derived: list[tuple[int, str]] = []
    for i, c in forced:
        if c not in table.columns or not 0 <= i < len(table):
            raise InvalidParameterError(f"force: cell (row {i}, column {c!r}) is not in the table.")
        if (i, c) in index:
            primary[index[(i, c)]] = True
            reasons.setdefault(index[(i, c)], ("linked", "suppressed in a linked table"))
        else:
            forced_derived.append((i, c))

    candidate = published & ~earlier & finite
    for i in exempt_rows or ():
        for c in counts:
            candidate[index[(int(i), c)]] = False
    supp, chosen = _protect(values, A, published, primary, candidate, min_cell, labels,
                            zero_ok=bool(zero_ok), interval=bool(interval_protection) and min_cell > 1,
                            ledger=change)
    for j, reason, why in chosen:
        reasons.setdefault(j, (reason, why))

    mask = pd.DataFrame(False, index=table.index, columns=table.columns)
    for (i, c), j in index.items():
        if supp[j] and published[j]:
            mask.iat[i, table.columns.get_loc(c)] = True
    log_rows = [(i, c, *reasons[j]) for (i, c), j in sorted(index.items(), key=lambda kv: kv[1])
                if supp[j] and published[j]]
    for dcol, srcs in deps.items():
        pos = table.columns.get_loc(dcol)
        for i in range(len(table)):
            hit = [s for s in srcs if mask.iat[i, table.columns.get_loc(s)]]
            if hit and not mask.iat[i, pos]:
                mask.iat[i, pos] = True
                log_rows.append((i, dcol, "dependent", f"computed from suppressed {', '.join(hit)}"))
    for (i, dcol), srcs in dcells.items():
        pos = table.columns.get_loc(dcol)
        hit = [(r, s) for r, s in srcs if mask.iat[r, table.columns.get_loc(s)]]
        if hit and not mask.iat[i, pos]:
            mask.iat[i, pos] = True
            where = ", ".join(f"row {r} column {s!r}" for r, s in hit[:4]) + (" ..." if len(hit) > 4 else "")
            log_rows.append((i, dcol, "dependent", f"computed from suppressed {where}"))
    for i, c in forced_derived:
        if not mask.iat[i, table.columns.get_loc(c)]:
            mask.iat[i, table.columns.get_loc(c)] = True
            log_rows.append((i, c, "linked", "suppressed in a linked table"))
    assert ncell >= len(index)

    out = table.copy()
    for c in mask.columns[mask.any(axis=0)]:
        col = out[c]
        if c in counts:
            col = pd.to_numeric(col, errors="coerce").round().astype("Int64")
        elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            col = col.astype("float64")
        else:
            col = col.astype("object")
        col = col.mask(mask[c].to_numpy())
        out[c] = col
    for c in counts:
        if c not in mask.columns[mask.any(axis=0)] and pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round().astype("Int64")
    log = pd.DataFrame(log_rows, columns=list(LOG_COLUMNS))
    return SuppressionResult(table=out, mask=mask, log=log, min_cell=min_cell,
                             count_columns=tuple(counts), margins=m, dependent_columns=deps,
                             zero_ok=bool(zero_ok), interval_protection=bool(interval_protection))
