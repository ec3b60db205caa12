"""Matching of comparison-group members to program participants: :func:`match`.

Nearest-neighbour (greedy) and optimal pair matching on the propensity score or the
Mahalanobis distance, with calipers, exact-matching strata, k:1 ratios and matching
with replacement, following the conventions of R ``MatchIt`` (weights, subclasses,
caliper units, matching order).

The greedy matcher on the propensity score is written here (no maintained Python
package does fast greedy matching without replacement): controls are kept in two
sorted orders, and a union-find "next available" pointer array per order finds the
nearest unused control on either side of a score in near-constant time, so 100,000
treated units are matched to 1,000,000 controls in a few seconds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from recoverystats._checks import as_column_list, check_columns, check_dataframe, check_option
from recoverystats.errors import (
    DataValidationError,
    EstimationError,
    InvalidParameterError,
    RecoveryStatsWarning,
)
from recoverystats.results.base import ResultMixin

__all__ = ["match", "MatchResult", "OPTIMAL_MAX_CELLS"]

Distance = Literal["ps", "mahalanobis"]
MatchMethod = Literal["nearest", "optimal"]
MatchEstimand = Literal["ATT", "ATC"]
PsScale = Literal["logit", "probability"]
MatchOrder = Literal["largest", "smallest", "data", "random"]

#: Largest cost matrix (focal units x ratio x controls, within one exact-matching
#: stratum) that ``method="optimal"`` builds: 2.5 million cells (e.g. 1,500 x 1,650) take
#: about 10 s of ``scipy.optimize.linear_sum_assignment`` on a 2-core machine; the
#: algorithm is cubic, so 3,000 x 3,300 takes a minute and larger problems much longer.
OPTIMAL_MAX_CELLS = 2_500_000

#: Reasons a focal (treated) unit is left unmatched, as written in ``.unmatched``.
REASONS = {
    1: "outside_caliper",
    2: "no_exact_match",
    3: "controls_exhausted",
}
_CALIPER, _NO_EXACT, _EXHAUSTED = 1, 2, 3


# ---------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, repr=False)
class MatchResult(ResultMixin):
    """Matched sample: who was matched to whom, the match weights and what was left out.

    ``.table``: one row per group (``role`` "treated"/"control", the exposure ``level``),
    with ``n`` (units in the data), ``matched``, ``unmatched``, ``weight_sum`` and
    ``effective_n`` (Kish's effective sample size of the match weights,
    ``(Σw)²/Σw²``, as MatchIt's "Matched (ESS)").

    ``.unmatched``: unmatched units by role and reason (``outside_caliper``,
    ``no_exact_match``, ``controls_exhausted`` for focal units; ``not_selected`` for
    controls that no focal unit chose).

    ``.weights`` (aligned to the input rows; 0 = not in the matched sample) are
    *sampling* weights: analyse the matched sample with ``weights="weights",
    weight_type="sampling"`` and ``cluster="subclass"`` (pairs) when matching without
    replacement; see :func:`match`.
    """

    _table: pd.DataFrame
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    conf_level: float | None = None
    exposure: str = ""
    treated_level: Any = None
    control_level: Any = None
    estimand: str = "ATT"
    distance: str = "ps"
    ps_scale: str = "logit"
    ratio: int = 1
    replace: bool = False
    caliper: float | None = None
    caliper_width: float | None = None
    order: str = "largest"
    exact: tuple[str, ...] = ()
    adjust: tuple[str, ...] = ()
    _unmatched: pd.DataFrame | None = None
    _weights: pd.Series | None = None
    _subclass: pd.Series | None = None
    _pairs: pd.DataFrame | None = None
    _score: pd.Series | None = None
    _treated: pd.Series | None = None

    _title = "Matched sample"

    # -- accessors ---------------------------------------------------------------------
    @property
    def unmatched(self) -> pd.DataFrame:
        """Unmatched units by ``role`` and ``reason`` (column ``n``)."""
        assert self._unmatched is not None
        return self._unmatched.copy()

    @property
    def weights(self) -> pd.Series:
        """Match weights aligned to the input rows (0 for units not in the matched sample).

        Use with ``weight_type="sampling"`` (robust variances), clustered by ``subclass``
        when matching was without replacement.
        """
        assert self._weights is not None
        return self._weights.copy()

    @property
    def subclass(self) -> pd.Series:
        """Matched-set id (pair id for 1:1) aligned to the input rows; ``<NA>`` when unmatched.

        All ``<NA>`` with ``replace=True`` (a control may belong to several sets; use
        ``.pairs``), as MatchIt.
        """
        assert self._subclass is not None
        return self._subclass.copy()

    @property
    def pairs(self) -> pd.DataFrame:
        """One row per matched (focal, control) pair: ``subclass``, ``treated``,
        ``control`` (input index labels), ``round`` (1 = first match of the focal unit)
        and ``distance`` (absolute score difference or Mahalanobis distance)."""
        assert self._pairs is not None
        return self._pairs.copy()

    @property
    def propensity(self) -> pd.Series | None:
        """Propensity scores (probability scale) aligned to the input rows, when used."""
        return None if self._score is None else self._score.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: as every result, plus ``unmatched`` (counts by reason); no rows."""
        from recoverystats.results.base import table_records

        out = ResultMixin.to_dict(self)
        assert self._unmatched is not None
        out["unmatched"] = table_records(self._unmatched)
        return out

    # -- derived data --------------------------------------------------------------------
    def matched_data(self, df: pd.DataFrame) -> pd.DataFrame:
        """The matched sample: the rows of ``df`` with a non-zero weight, plus ``subclass``
        and ``weights`` columns (R ``MatchIt::match.data``).

        ``df`` must be the data frame given to :func:`match` (same index).
        """
        df = check_dataframe(df)
        assert self._weights is not None and self._subclass is not None
        if not df.index.equals(self._weights.index):
            raise InvalidParameterError(
                "matched_data(df): df must be the data frame that was matched (same rows, same index); "
                f"got {len(df)} rows against {len(self._weights)} matched."
            )
        for col in ("weights", "subclass"):
            if col in df.columns:
                raise InvalidParameterError(
                    f"matched_data(df): df already has a column {col!r}; rename it before adding the match "
                    "columns."
                )
        keep = self._weights.to_numpy() > 0
        out = df.loc[keep].copy()
        out["subclass"] = self._subclass[keep]
        out["weights"] = self._weights[keep]
        return out

    def balance(self, df: pd.DataFrame, *, adjust: str | Iterable[str] | None = None, **kwargs: Any) -> Any:
        """Covariate balance before and after matching (:func:`recoverystats.causal.balance`
        with the match weights; SMD denominator by the estimand: the treated group's SD for
        the ATT, as MatchIt's ``summary``).

        ``df`` is the matched data frame; ``adjust`` defaults to the covariates of the match.
        Other keyword arguments go to :func:`~recoverystats.causal.balance`.
        """
        from recoverystats.causal.balance import balance as _balance

        df = check_dataframe(df)
        cols = as_column_list(adjust) if adjust is not None else list(self.adjust)
        if not cols:
            raise InvalidParameterError(
                "balance: name the covariates to check with adjust=[...] (the match used no covariates)."
            )
        assert self._weights is not None
        if not df.index.equals(self._weights.index):
            raise InvalidParameterError(
                "balance(df): df must be the data frame that was matched (same rows, same index)."
            )
        kwargs.setdefault("estimand", self.estimand)
        return _balance(df, exposure=self.exposure, adjust=cols, weights=self._weights, treated=self.treated_level,
                        **kwargs)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Distribution of the propensity score by group, all units and matched units."""
        from recoverystats.plotting.matching import plot_match

        return plot_match(self, ax=ax, **kwargs)


# ---------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------
def _check_complete(df: pd.DataFrame, columns: list[str]) -> None:
    bad = {c: int(df[c].isna().sum()) for c in columns}
    bad = {c: k for c, k in bad.items() if k}
    if bad:
        shown = ", ".join(f"{c!r} ({k} rows)" for c, k in bad.items())
        raise DataValidationError(
            f"missing values in {shown}; matching needs complete covariates. Drop or impute those rows first "
            "(e.g. df.dropna(subset=[...]))."
        )


def _fit_propensity(df: pd.DataFrame, ex: Any, adjust: list[str]) -> tuple[np.ndarray, list[str]]:
    """Logistic propensity score P(treated | adjust), fitted as :func:`propensity_score` does
    (the package's logistic engine; Firth's penalised likelihood when the smaller group is
    small or under quasi-separation, said in the notes; no overlap is an error).

    Returns the linear predictor (logit of the score) and the model's notes.
    """
    from recoverystats.causal._common import covariate_design
    from recoverystats.causal.propensity import fit_propensity

    design, _ = covariate_design(df, ex=ex, adjust=adjust, func="match")
    fit = fit_propensity(design, ex.t, ex=ex)
    return np.asarray(design.X @ fit.beta, dtype=float), list(fit.notes)


def _user_scores(df: pd.DataFrame, ps: Any) -> np.ndarray:
    if isinstance(ps, str):
        check_columns(df, [ps], "ps")
        values = pd.to_numeric(df[ps], errors="coerce").to_numpy(dtype=float)
        where = f"column {ps!r}"
    else:
        values = np.asarray(ps, dtype=float).ravel()
        where = "ps"
        if len(values) != len(df):
            raise InvalidParameterError(
                f"ps: give a column name or one score per row of df; got {len(values)} scores for {len(df)} rows."
            )
    bad = ~np.isfinite(values) | (values <= 0) | (values >= 1)
    if bad.any():
        raise DataValidationError(
            f"ps: {where} has {int(bad.sum())} value(s) that are missing or outside (0, 1); propensity scores "
            "must be probabilities strictly between 0 and 1 (scores of 0 or 1 mean no overlap)."
        )
    return values


def _whiten(X: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Rows of ``X`` transformed so that Euclidean distance is the Mahalanobis distance
    with the pooled within-group covariance matrix (MatchIt/optmatch, Rubin 1980);
    a generalised inverse when the covariance is singular."""
    Xc = X.astype(float).copy()
    for g in (True, False):
        m = treated == g
        Xc[m] -= Xc[m].mean(axis=0)
    n = len(X)
    S = (Xc.T @ Xc) / max(n - 2, 1)
    lam, V = np.linalg.eigh(S)
    tol = lam.max() * 1e-10 if lam.size and lam.max() > 0 else 0.0
    keep = lam > tol
    if not keep.any():
        raise DataValidationError(
            "adjust: every covariate is constant within the groups; the Mahalanobis distance is undefined. "
            "Give covariates that vary."
        )
    W = V[:, keep] / np.sqrt(lam[keep])
    return np.ascontiguousarray(X @ W)


# ---------------------------------------------------------------------------
# greedy nearest neighbour on a scalar score
# ---------------------------------------------------------------------------
def _find(parent: list[int], i: int) -> int:
    """Root of ``i`` with path halving (iterative union-find)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _greedy_scalar(
    sf: np.ndarray, sp: np.ndarray, order: np.ndarray, ratio: int, width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Greedy nearest-neighbour matching without replacement on a scalar score.

    ``sf``/``sp``: scores of the focal and pool units; ``order``: positions of the
    focal units in matching order; ``width``: caliper (inf for none). Matching goes in
    ``ratio`` rounds (every focal unit gets its first control before any gets a
    second, as MatchIt); a focal unit with no acceptable control in round 1 is
    unmatched. Ties in distance go to the control with the lower position.

    Returns ``(mm, dist, rnd_reason)``: ``mm`` (n_focal x ratio) pool positions (-1 for
    none), ``dist`` the matching distances, and the reason code per focal unit (0 matched).
    """
    nf, npool = len(sf), len(sp)
    mm = np.full((nf, ratio), -1, dtype=np.int64)
    dist = np.full((nf, ratio), np.nan)
    reason = np.zeros(nf, dtype=np.int8)
    pos = np.arange(npool)
    # order A: score ascending, position ascending (searched to the right)
    ord_a = np.lexsort((pos, sp))
    # order B: score ascending, position descending (searched to the left)
    ord_b = np.lexsort((-pos, sp))
    va = sp[ord_a]
    vb = sp[ord_b]
    rank_a = np.empty(npool, dtype=np.int64)
    rank_a[ord_a] = pos
    rank_b = np.empty(npool, dtype=np.int64)
    rank_b[ord_b] = pos
    # right[i]: next available rank >= i in A (npool = none);
    # left[i + 1]: last available rank <= i in B, shifted by one (0 = none)
    right = list(range(npool + 1))
    left = list(range(npool + 1))
    start_a = np.searchsorted(va, sf, side="left").tolist()
    start_b = np.searchsorted(vb, sf, side="left").tolist()  # ranks < start_b have score < x
    va_l = va.tolist()
    vb_l = vb.tolist()
    oa = ord_a.tolist()
    ob = ord_b.tolist()
    sf_l = sf.tolist()
    ra = rank_a.tolist()
    rb = rank_b.tolist()
    eligible = [True] * nf
    remaining = npool
    order_l = order.tolist()
    mm_l = [[-1] * ratio for _ in range(nf)]
    dist_l = [[math.nan] * ratio for _ in range(nf)]
    reason_l = [0] * nf
    inf = math.inf
    for r in range(ratio):
        for f in order_l:
            if not eligible[f]:
                continue
            if remaining == 0:
                if r == 0:
                    reason_l[f] = _EXHAUSTED
                    eligible[f] = False
                continue
            x = sf_l[f]
            ia = _find(right, start_a[f])
            ib = _find(left, start_b[f]) - 1  # rank in B, -1 = none
            dr = va_l[ia] - x if ia < npool else inf
            dl = x - vb_l[ib] if ib >= 0 else inf
            if dr < dl:
                c, d = oa[ia], dr
            elif dl < dr:
                c, d = ob[ib], dl
            else:  # equal distance (both finite): the lower position
                ca, cb = oa[ia], ob[ib]
                c, d = (ca, dr) if ca < cb else (cb, dl)
            if d > width:
                if r == 0:
                    reason_l[f] = _CALIPER
                    eligible[f] = False
                continue
            mm_l[f][r] = c
            dist_l[f][r] = d
            remaining -= 1
            ka = ra[c]
            right[ka] = ka + 1
            kb = rb[c]
            left[kb + 1] = kb
    mm[:] = np.asarray(mm_l, dtype=np.int64).reshape(nf, ratio)
    dist[:] = np.asarray(dist_l, dtype=float).reshape(nf, ratio)
    reason[:] = np.asarray(reason_l, dtype=np.int8)
    return mm, dist, reason


def _knn_scalar(sf: np.ndarray, sp: np.ndarray, ratio: int, width: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``ratio`` nearest controls of each focal unit, with replacement (vectorised).

    Candidates are the ``ratio`` next controls on each side of the focal score in the
    two sorted orders; the union holds the ``ratio`` nearest (ties to the lower position).
    """
    nf, npool = len(sf), len(sp)
    pos = np.arange(npool)
    ord_a = np.lexsort((pos, sp))
    ord_b = np.lexsort((-pos, sp))
    va, vb = sp[ord_a], sp[ord_b]
    k = min(ratio, npool)
    sa = np.searchsorted(va, sf, side="left")
    sb = np.searchsorted(vb, sf, side="left")
    steps = np.arange(k)
    ia = sa[:, None] + steps[None, :]
    ib = sb[:, None] - 1 - steps[None, :]
    oka = ia < npool
    okb = ib >= 0
    ca = np.where(oka, ord_a[np.clip(ia, 0, npool - 1)], -1)
    cb = np.where(okb, ord_b[np.clip(ib, 0, npool - 1)], -1)
    da = np.where(oka, va[np.clip(ia, 0, npool - 1)] - sf[:, None], np.inf)
    db = np.where(okb, sf[:, None] - vb[np.clip(ib, 0, npool - 1)], np.inf)
    cand = np.concatenate([ca, cb], axis=1)
    dd = np.concatenate([da, db], axis=1)
    # sort candidates by (distance, position); missing candidates last
    key_pos = np.where(cand >= 0, cand, npool)
    o = np.lexsort((key_pos, dd), axis=1)
    cand = np.take_along_axis(cand, o, axis=1)[:, :k]
    dd = np.take_along_axis(dd, o, axis=1)[:, :k]
    out_c = np.full((nf, ratio), -1, dtype=np.int64)
    out_d = np.full((nf, ratio), np.nan)
    ok = (cand >= 0) & (dd <= width)
    out_c[:, :k] = np.where(ok, cand, -1)
    out_d[:, :k] = np.where(ok, dd, np.nan)
    reason = np.where(out_c[:, 0] >= 0, 0, _CALIPER).astype(np.int8)
    if npool == 0:
        reason[:] = _EXHAUSTED
    return out_c, out_d, reason


# ---------------------------------------------------------------------------
# greedy nearest neighbour on covariates (Mahalanobis)
# ---------------------------------------------------------------------------
def _greedy_vector(
    zf: np.ndarray, zp: np.ndarray, order: np.ndarray, ratio: int, replace: bool,
    sf: np.ndarray | None, sp: np.ndarray | None, width: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy nearest-neighbour matching on whitened covariates (Euclidean = Mahalanobis).

    The nearest acceptable control (available, not already in the set, inside the
    propensity caliper ``width`` on the scores ``sf``/``sp`` when given) comes from a k-d
    tree (``scipy.spatial.cKDTree``) queried for k neighbours, doubling k until an
    acceptable control strictly closer than the k-th neighbour is found (so the answer,
    ties to the lower position, is exact); when k reaches the number of controls inside
    the caliper window of the sorted scores, that window is scanned instead. Without
    replacement the tree is rebuilt on the remaining controls when half of them are used.
    """
    from scipy.spatial import cKDTree

    nf, npool = len(zf), len(zp)
    mm = np.full((nf, ratio), -1, dtype=np.int64)
    dist = np.full((nf, ratio), np.nan)
    reason = np.zeros(nf, dtype=np.int8)
    available = np.ones(npool, dtype=bool)
    remaining = npool
    eligible = np.ones(nf, dtype=bool)

    def exact_d(f: int, cands: np.ndarray) -> np.ndarray:
        diff = zp[cands] - zf[f]
        return np.sqrt(np.einsum("ij,ij->i", diff, diff))

    caliper = sf is not None and sp is not None and np.isfinite(width)
    if caliper:
        assert sf is not None and sp is not None
        ord_s = np.argsort(sp, kind="stable")
        vs = sp[ord_s]
        lo = np.searchsorted(vs, sf - width, side="left")
        hi = np.searchsorted(vs, sf + width, side="right")
    state: dict[str, Any] = {"ids": np.arange(npool), "tree": cKDTree(zp) if npool else None, "used": 0}

    def feasible(f: int, cands: np.ndarray, taken: set[int]) -> np.ndarray:
        ok = available[cands] if not replace else np.ones(len(cands), dtype=bool)
        if caliper:
            ok &= np.abs(sp[cands] - sf[f]) <= width
        if taken:
            ok &= ~np.isin(cands, list(taken))
        return ok

    def best_of(f: int, cands: np.ndarray) -> tuple[int, float, int]:
        d = exact_d(f, cands)
        j = np.lexsort((cands, d))[0]
        return int(cands[j]), float(d[j]), 0

    def nearest(f: int, taken: set[int]) -> tuple[int, float, int]:
        if state["tree"] is None or (not replace and remaining == 0):
            return -1, math.nan, _EXHAUSTED
        none = _CALIPER if caliper else _EXHAUSTED
        if caliper and hi[f] == lo[f]:
            return -1, math.nan, none
        ids = state["ids"]
        if not replace and state["used"] * 2 > len(ids):
            ids = np.flatnonzero(available)
            state.update(ids=ids, tree=cKDTree(zp[ids]), used=0)
        tree = state["tree"]
        k = min(len(ids), 8 + len(taken))
        while True:
            if caliper and k >= hi[f] - lo[f]:  # the caliper window is small: scan it
                cands = ord_s[lo[f]:hi[f]]
                cands = cands[feasible(f, cands, taken)]
                return best_of(f, cands) if cands.size else (-1, math.nan, none)
            dk, ik = tree.query(zf[f], k=k)
            dk, ik = np.atleast_1d(dk), np.atleast_1d(ik)
            cands = ids[ik]
            ok = feasible(f, cands, taken)
            if ok.any():
                c, d, _ = best_of(f, cands[ok])
                # every unit not returned is at least as far as the k-th: the best is exact
                if d < dk.max() * (1.0 - 1e-12) or k >= len(ids):
                    return c, d, 0
            elif k >= len(ids):
                return -1, math.nan, none
            k = min(len(ids), 2 * k)

    order_l = order.tolist()
    for r in range(ratio):
        for f in order_l:
            if not eligible[f]:
                continue
            taken = set(mm[f, :r].tolist()) if replace and r else set()
            c, d, why = nearest(f, taken)
            if c < 0:
                if r == 0:
                    reason[f] = why
                    eligible[f] = False
                continue
            mm[f, r] = c
            dist[f, r] = d
            if not replace:
                available[c] = False
                remaining -= 1
                state["used"] += 1
    return mm, dist, reason


# ---------------------------------------------------------------------------
# optimal pair matching
# ---------------------------------------------------------------------------
def _optimal(cost: np.ndarray, ratio: int, caliper_ok: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal k:1 matching by ``scipy.optimize.linear_sum_assignment``.

    Each focal unit is repeated ``ratio`` times as a row. Pairs outside the caliper get
    a cost larger than any feasible assignment, so the solution first maximises the
    number of feasible pairs and then minimises the total distance among them; such
    pairs are then dropped (their focal unit is unmatched for the caliper).
    """
    from scipy.optimize import linear_sum_assignment

    nf, npool = cost.shape
    mm = np.full((nf, ratio), -1, dtype=np.int64)
    dist = np.full((nf, ratio), np.nan)
    reason = np.zeros(nf, dtype=np.int8)
    if npool == 0:
        reason[:] = _EXHAUSTED
        return mm, dist, reason
    feasible = np.ones_like(cost, dtype=bool) if caliper_ok is None else caliper_ok
    big = (float(cost[feasible].max()) + 1.0) * (min(nf * ratio, npool) + 1) if feasible.any() else 1.0
    c = np.where(feasible, cost, big)
    rows = np.repeat(c, ratio, axis=0)  # row f*ratio + j = j-th slot of focal f
    ri, ci = linear_sum_assignment(rows)
    fi, slot = np.divmod(ri, ratio)
    good = feasible[fi, ci]
    fill = np.zeros(nf, dtype=np.int64)
    for f, j, ok in zip(fi.tolist(), ci.tolist(), good.tolist(), strict=True):
        if ok:
            mm[f, fill[f]] = j
            dist[f, fill[f]] = cost[f, j]
            fill[f] += 1
    assigned = np.zeros(nf, dtype=bool)
    assigned[fi] = True
    none = fill == 0
    reason[none & assigned] = _CALIPER
    reason[none & ~assigned] = _EXHAUSTED
    return mm, dist, reason


# ---------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------
def _match_weights(mm: np.ndarray, focal_pos: np.ndarray, pool_pos: np.ndarray, n: int) -> np.ndarray:
    """MatchIt's weights: focal units 1 when matched; each control the sum over its
    matched sets of 1/(number of controls in the set), then the control weights are
    scaled to average 1 over the matched controls (MatchIt ``normalize = TRUE``).

    ``mm`` (one row per focal unit in ``focal_pos``) holds input positions of the
    matched controls (-1 for none); ``pool_pos`` are the input positions of all controls.
    """
    w = np.zeros(n)
    k = (mm >= 0).sum(axis=1)
    w[focal_pos[k > 0]] = 1.0
    rows, cols = np.nonzero(mm >= 0)
    np.add.at(w, mm[rows, cols], 1.0 / k[rows])
    cw = w[pool_pos]
    nz = cw > 0
    if nz.any():
        cw[nz] *= nz.sum() / cw[nz].sum()
        w[pool_pos] = cw
    return w


# ---------------------------------------------------------------------------
# public function
# ---------------------------------------------------------------------------
def match(
    df: pd.DataFrame,
    *,
    exposure: str,
    adjust: str | Iterable[str] = (),
    distance: Distance = "ps",
    ratio: int = 1,
    caliper: float | None = None,
    replace: bool = False,
    exact: str | Iterable[str] = (),
    method: MatchMethod = "nearest",
    estimand: MatchEstimand = "ATT",
    ps: str | Any = None,
    ps_scale: PsScale = "logit",
    order: MatchOrder | None = None,
    treated: Any = None,
    seed: int | None = None,
) -> MatchResult:
    """Match comparison-group members to program participants.

    Parameters
    ----------
    df
        One row per unit (participant or comparison-group member).
    exposure
        The two-group column (e.g. ``"group"``): 0/1 or boolean (1/True = program), or
        any two values, of which ``treated`` is the program group (default: the
        non-reference level by the package's reference rule: the first code of a coded
        column such as ``group`` -- ``comparison`` -- or else the first sorted value is
        the comparison group).
    adjust
        Covariates of the propensity-score model (``distance="ps"``: numeric columns
        enter linearly, text/categorical ones as dummies; the model is that of
        :func:`~recoverystats.causal.propensity_score`, Firth's penalised likelihood when
        the smaller group is small) or of the Mahalanobis distance. With ``ps=`` given
        they are only the default covariates of ``.balance()``.
    distance
        ``"ps"`` (default): the propensity score, on the ``ps_scale`` scale.
        ``"mahalanobis"``: the Mahalanobis distance on ``adjust`` with the pooled
        within-group covariance matrix (as MatchIt and optmatch; Rubin 1980).
    ratio
        Controls per focal unit (k:1). Without replacement matching goes in ``ratio``
        rounds: every focal unit gets its first control before any gets its second (as
        MatchIt), so controls are not used up by the first units in the order.
    caliper
        Maximum distance of a pair, in standard deviations of the propensity score on
        the ``ps_scale`` scale (SD over all units, MatchIt's default ``std.caliper =
        TRUE``); 0.2 SD of the logit is the common recommendation (Austin 2011). With
        ``distance="mahalanobis"`` the caliper is on the propensity score too
        (Mahalanobis matching within propensity calipers, Rosenbaum & Rubin 1985), so a
        score is fitted from ``adjust`` (or taken from ``ps``).
    replace
        Match with replacement (a control may serve several focal units). No
        ``subclass`` then (see ``.pairs``), as MatchIt.
    exact
        Columns on which pairs must agree exactly; matching runs within each stratum.
        Focal units in a stratum without controls are unmatched (``no_exact_match``).
    method
        ``"nearest"`` (greedy nearest neighbour) or ``"optimal"`` (minimum total
        distance over all pairs, ``scipy.optimize.linear_sum_assignment``; for moderate
        samples: up to :data:`OPTIMAL_MAX_CELLS` focal x ratio x control cells per stratum,
        without replacement).
    estimand
        ``"ATT"`` (default: controls are found for program participants) or ``"ATC"``
        (program participants are found for comparison units). For the ATE use
        weighting (``balancing_weights``) instead: pair matching keeps one group whole.
    ps
        Propensity scores to use instead of fitting one: a column name or an array
        aligned to ``df`` (probabilities in (0, 1)).
    ps_scale
        ``"logit"`` (default): distances and the caliper on the logit of the propensity
        score (Austin 2011). ``"probability"``: on the score itself (MatchIt's
        ``distance = "glm"`` default).
    order
        Order in which focal units are matched by ``method="nearest"`` without
        replacement: ``"largest"`` score first (the default when a propensity score is
        used, as MatchIt for the ATT), ``"smallest"`` (default for the ATC), ``"data"``
        (row order; default for Mahalanobis matching without a caliper) or ``"random"``
        (with ``seed``).
    treated
        The value of ``exposure`` that marks the program (treated) group.
    seed
        Seed for ``order="random"``.

    Returns
    -------
    MatchResult
        ``.table`` (counts per group), ``.unmatched`` (unmatched units by reason),
        ``.weights`` and ``.subclass`` (aligned to the input rows), ``.pairs``,
        ``.propensity``; ``.matched_data(df)`` for the matched rows with ``subclass``
        and ``weights`` columns, ``.balance(df)``, ``.plot()``.

    Raises
    ------
    InvalidParameterError
        Unknown columns, bad options, ``method="optimal"`` above
        :data:`OPTIMAL_MAX_CELLS` or with ``replace=True``.
    DataValidationError
        An exposure that is not binary, missing values in the exposure, covariates,
        ``exact`` columns or ``ps``, scores outside (0, 1); no overlap (fitted scores of 0
        or 1, or covariates that separate the groups); a covariate constant in one group.
    EstimationError
        The propensity model does not converge; no focal unit could be matched.

    Notes
    -----
    *Greedy nearest neighbour* (``method="nearest"``): focal units are taken in
    ``order``; each gets the nearest available control (smallest distance; among
    equal distances the control that comes first in the data); a focal unit whose
    nearest available control is farther than the caliper stays unmatched
    (``outside_caliper``), as does one for which no control is left
    (``controls_exhausted``). This is MatchIt's ``method = "nearest"``; with
    ``ps_scale="probability"`` and ``order="largest"`` it is its default call.

    *Weights* (MatchIt conventions, ``normalize = TRUE``): a matched focal unit has
    weight 1; a control gets ``Σ 1/k_s`` over the matched sets ``s`` it belongs to
    (``k_s`` controls in set ``s``), and control weights are then scaled to average 1
    over the matched controls. With 1:1 matching without replacement every matched
    unit has weight 1. Use them as **sampling** weights
    (``weight_type="sampling"``) with ``cluster="subclass"`` for matching without
    replacement (Austin 2011; Abadie & Spiess 2022); they estimate the ATT (or ATC)
    in the matched sample.

    *Optimal* (``method="optimal"``): minimises the sum of pair distances
    (optmatch's ``pairmatch``/MatchIt ``method = "optimal"``); with a caliper, the
    number of pairs inside the caliper is maximised first.

    References
    ----------
    Rosenbaum PR, Rubin DB (1985). Constructing a control group using multivariate
    matched sampling methods that incorporate the propensity score. Am Stat 39:33-38.
    Austin PC (2011). Optimal caliper widths for propensity-score matching when
    estimating differences in means and differences in proportions in observational
    studies. Pharm Stat 10:150-161.
    Ho DE, Imai K, King G, Stuart EA (2011). MatchIt: nonparametric preprocessing for
    parametric causal inference. J Stat Softw 42(8).
    Abadie A, Spiess J (2022). Robust post-matching inference. JASA 117:983-995.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from recoverystats.causal.matching import match
    >>> rng = np.random.default_rng(3)
    >>> d = pd.DataFrame({"age": rng.normal(35, 9, 600)})
    >>> d["group"] = np.where(rng.random(600) < 1 / (1 + np.exp(-(d.age - 45) / 5)), "program", "comparison")
    >>> m = match(d, exposure="group", adjust=["age"], caliper=0.2)
    >>> m.table[["role", "n", "matched"]].to_dict("list")["role"]
    ['treated', 'control']
    """
    df = check_dataframe(df)
    check_option("distance", distance, Distance)
    check_option("method", method, MatchMethod)
    check_option("estimand", estimand, MatchEstimand)
    check_option("ps_scale", ps_scale, PsScale)
    if order is not None:
        check_option("order", order, MatchOrder)
    if not isinstance(exposure, str):
        raise InvalidParameterError(f"exposure must be one column name (str), e.g. 'group'; got {exposure!r}.")
    check_columns(df, [exposure], "exposure")
    adjust_cols = as_column_list(adjust)
    exact_cols = as_column_list(exact)
    check_columns(df, adjust_cols, "adjust")
    check_columns(df, exact_cols, "exact")
    if exposure in adjust_cols or exposure in exact_cols:
        raise InvalidParameterError(
            f"adjust/exact: the exposure column {exposure!r} cannot also be a covariate; remove it."
        )
    if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 1:
        raise InvalidParameterError(f"ratio must be a whole number >= 1 (controls per treated unit); got {ratio!r}.")
    ratio = int(ratio)
    if caliper is not None:
        try:
            caliper = float(caliper)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"caliper must be a positive number of standard deviations (e.g. 0.2); got {caliper!r}.") from None
        if not (caliper > 0 and math.isfinite(caliper)):
            raise InvalidParameterError(
                f"caliper must be a positive number of standard deviations (e.g. 0.2); got {caliper!r}.")
    if not isinstance(replace, (bool, np.bool_)):
        raise InvalidParameterError(f"replace must be True or False; got {replace!r}.")
    replace = bool(replace)
    if method == "optimal" and replace:
        raise InvalidParameterError(
            "method='optimal' matches without replacement; with replace=True every unit simply gets its nearest "
            "control, which is method='nearest' (use that)."
        )
    if order == "random" and seed is None:
        raise InvalidParameterError("order='random' needs a seed (e.g. seed=1) so that the matching can be repeated.")
    uses_ps = distance == "ps" or caliper is not None
    if distance == "mahalanobis" and not adjust_cols:
        raise InvalidParameterError(
            "adjust: distance='mahalanobis' needs covariates, e.g. adjust=['age', 'risk_level']."
        )
    if uses_ps and ps is None and not adjust_cols:
        raise InvalidParameterError(
            "adjust: name the covariates of the propensity-score model (e.g. adjust=['age', 'risk_level']), "
            "or pass fitted scores with ps=."
        )

    notes: list[str] = []
    from recoverystats.causal._common import exposure_indicator

    ex = exposure_indicator(df, exposure, treated)
    tflag, t_level, c_level = ex.t.astype(bool), ex.treated, ex.control
    _check_complete(df, adjust_cols + exact_cols)
    n = len(df)
    focal_is = tflag if estimand == "ATT" else ~tflag
    focal_name, pool_name = ("treated", "control") if estimand == "ATT" else ("control", "treated")

    # -- scores and distances --------------------------------------------------------------
    prob: np.ndarray | None = None
    score: np.ndarray | None = None
    if uses_ps:
        if ps is not None:
            prob = _user_scores(df, ps)
            eta = np.log(prob) - np.log1p(-prob)
        else:
            eta, fit_notes = _fit_propensity(df, ex, adjust_cols)
            notes.extend(fit_notes)
            prob = 1.0 / (1.0 + np.exp(-eta))
        score = eta if ps_scale == "logit" else prob
    width = math.inf
    if caliper is not None:
        assert score is not None
        sd = float(np.std(score, ddof=1)) if n > 1 else 0.0
        width = caliper * sd
    Z: np.ndarray | None = None
    if distance == "mahalanobis":
        from recoverystats._design import build_design, model_spec

        spec = model_spec(df, func="match", adjust=adjust_cols)
        X = build_design(df, spec, intercept=False).X
        Z = _whiten(X, tflag)

    if order is None:
        if uses_ps:
            order = "largest" if estimand == "ATT" else "smallest"
        else:
            order = "data"
    rng = np.random.default_rng(seed)

    # -- strata ----------------------------------------------------------------------------
    if exact_cols:
        strata = df.groupby(exact_cols, sort=True, dropna=False, observed=True).ngroup().to_numpy()
    else:
        strata = np.zeros(n, dtype=np.int64)
    focal_all = np.flatnonzero(focal_is)
    pool_all = np.flatnonzero(~focal_is)
    if not replace:
        if len(focal_all) > len(pool_all):
            msg = (f"there are {len(focal_all)} {focal_name} units but only {len(pool_all)} {pool_name} units, so "
                   f"at least {len(focal_all) - len(pool_all)} {focal_name} units will be unmatched "
                   "(controls_exhausted) without replacement; use replace=True to keep them all.")
            warnings.warn(msg, RecoveryStatsWarning, stacklevel=2)
            notes.append(msg[0].upper() + msg[1:])
        elif ratio > 1 and len(focal_all) * ratio > len(pool_all):
            short = len(focal_all) * ratio - len(pool_all)
            msg = (f"{len(focal_all)} {focal_name} units x ratio {ratio} need {len(focal_all) * ratio} {pool_name} "
                   f"units but there are {len(pool_all)}: at least {short} matched sets will have fewer than {ratio} "
                   "controls (every unit gets its first control before any gets a second).")
            warnings.warn(msg, RecoveryStatsWarning, stacklevel=2)
            notes.append(msg[0].upper() + msg[1:])

    mm_all = np.full((n, ratio), -1, dtype=np.int64)  # by focal input position, pool input positions
    dist_all = np.full((n, ratio), np.nan)
    reason_all = np.zeros(n, dtype=np.int8)
    for s in np.unique(strata[focal_all]) if len(focal_all) else []:
        f_pos = focal_all[strata[focal_all] == s]
        p_pos = pool_all[strata[pool_all] == s]
        if len(p_pos) == 0:
            reason_all[f_pos] = _NO_EXACT if exact_cols else _EXHAUSTED
            continue
        # matching order (positions within f_pos)
        if order == "data" or score is None:
            o = np.arange(len(f_pos))
        elif order == "largest":
            o = np.lexsort((np.arange(len(f_pos)), -score[f_pos]))
        elif order == "smallest":
            o = np.lexsort((np.arange(len(f_pos)), score[f_pos]))
        else:
            o = rng.permutation(len(f_pos))
        if order == "random" and score is None:
            o = rng.permutation(len(f_pos))
        if method == "optimal":
            cells = len(f_pos) * ratio * len(p_pos)
            if cells > OPTIMAL_MAX_CELLS:
                raise InvalidParameterError(
                    f"method='optimal': {len(f_pos)} {focal_name} x ratio {ratio} x {len(p_pos)} {pool_name} units = "
                    f"{cells:,} cost-matrix cells{' in one exact-matching stratum' if exact_cols else ''}, above the "
                    f"limit OPTIMAL_MAX_CELLS = {OPTIMAL_MAX_CELLS:,} (optimal matching is cubic in the sample "
                    "size). Use method='nearest' (greedy; fast at any size), or add exact= strata to split the "
                    "problem."
                )
            if distance == "ps":
                assert score is not None
                cost = np.abs(score[f_pos][:, None] - score[p_pos][None, :])
            else:
                from scipy.spatial.distance import cdist

                assert Z is not None
                cost = cdist(Z[f_pos], Z[p_pos])
            ok = None
            if math.isfinite(width):
                assert score is not None
                ok = np.abs(score[f_pos][:, None] - score[p_pos][None, :]) <= width
            mm, dd, rs = _optimal(cost, ratio, ok)
        elif distance == "ps":
            assert score is not None
            if replace:
                mm, dd, rs = _knn_scalar(score[f_pos], score[p_pos], ratio, width)
            else:
                mm, dd, rs = _greedy_scalar(score[f_pos], score[p_pos], o, ratio, width)
        else:
            assert Z is not None
            mm, dd, rs = _greedy_vector(
                Z[f_pos], Z[p_pos], o, ratio, replace,
                None if score is None else score[f_pos], None if score is None else score[p_pos], width)
        mm_all[f_pos] = np.where(mm >= 0, p_pos[np.clip(mm, 0, None)], -1)
        dist_all[f_pos] = dd
        reason_all[f_pos] = rs

    # -- weights, subclasses, pairs ----------------------------------------------------
    mm_f = mm_all[focal_all]
    weights = _match_weights(mm_f, focal_all, pool_all, n)
    has = (mm_f >= 0).any(axis=1)
    if not has.any():
        raise EstimationError(
            f"match: no {focal_name} unit could be matched"
            + (f" within the caliper of {caliper:g} SD" if caliper is not None else "")
            + ("" if not exact_cols else f" within the exact-matching strata of {', '.join(exact_cols)}")
            + ". Widen the caliper, drop exact= columns, or check the overlap of the groups."
        )
    subclass = pd.Series(pd.array([pd.NA] * n, dtype="Int64"), index=df.index, name="subclass")
    matched_f = focal_all[has]
    set_id = np.arange(1, len(matched_f) + 1)
    pair_rows, pair_slot = np.nonzero(mm_f[has] >= 0)
    pairs = pd.DataFrame({
        "subclass": set_id[pair_rows],
        focal_name: df.index[matched_f[pair_rows]],
        pool_name: df.index[mm_f[has][pair_rows, pair_slot]],
        "round": pair_slot + 1,
        "distance": dist_all[matched_f][pair_rows, pair_slot],
    })
    pairs = pairs[["subclass", "treated", "control", "round", "distance"]]
    if not replace:
        sub = np.zeros(n, dtype=np.int64)
        sub[matched_f] = set_id
        sub[mm_f[has][pair_rows, pair_slot]] = set_id[pair_rows]
        arr = pd.array(np.where(sub > 0, sub, 0), dtype="Int64")
        arr[sub == 0] = pd.NA
        subclass = pd.Series(arr, index=df.index, name="subclass")
    else:
        pairs["subclass"] = set_id[pair_rows]
    w_series = pd.Series(weights, index=df.index, name="weights")

    # -- counts -----------------------------------------------------------------------
    rows = []
    for role, flag, level in (("treated", tflag, t_level), ("control", ~tflag, c_level)):
        w = weights[flag]
        nz = w > 0
        rows.append({
            "role": role, "level": level, "n": int(flag.sum()), "matched": int(nz.sum()),
            "unmatched": int((~nz).sum()), "weight_sum": float(w.sum()),
            "effective_n": float(w.sum() ** 2 / (w ** 2).sum()) if nz.any() else 0.0,
        })
    table = pd.DataFrame(rows)
    reasons = []
    rf = reason_all[focal_all]
    for code, label in REASONS.items():
        reasons.append({"role": focal_name, "reason": label, "n": int((rf == code).sum())})
    pool_unused = int((weights[pool_all] == 0).sum())
    reasons.append({"role": pool_name, "reason": "not_selected", "n": pool_unused})
    unmatched = pd.DataFrame(reasons)
    if ratio > 1:
        short = int(((mm_f >= 0).sum(axis=1)[has] < ratio).sum())
        if short:
            notes.append(f"{short} matched {focal_name} units have fewer than {ratio} controls "
                         "(caliper, exact strata or controls used up); their controls carry larger weights.")
    n_unf = int((~has).sum())
    if n_unf:
        parts = [f"{int((rf == c).sum())} {lab.replace('_', ' ')}" for c, lab in REASONS.items() if (rf == c).any()]
        notes.append(f"{n_unf} of {len(focal_all)} {focal_name} units unmatched ({', '.join(parts)}); the effect "
                     f"then refers to the matched {focal_name} units only.")
    if caliper is not None:
        notes.append(f"Caliper {caliper:g} SD of the {'logit of the ' if ps_scale == 'logit' else ''}propensity score "
                     f"= {width:.4g}.")
    method_label = f"{method} {ratio}:1 on " + ("propensity score" if distance == "ps" else "Mahalanobis distance") \
        + (" with replacement" if replace else "")
    return MatchResult(
        _table=table,
        method=method_label,
        n_used=n,
        notes=tuple(notes),
        exposure=exposure,
        treated_level=t_level,
        control_level=c_level,
        estimand=estimand,
        distance=distance,
        ps_scale=ps_scale,
        ratio=ratio,
        replace=replace,
        caliper=caliper,
        caliper_width=None if caliper is None else width,
        order=order if method == "nearest" and not replace else "",
        exact=tuple(exact_cols),
        adjust=tuple(adjust_cols),
        _unmatched=unmatched,
        _weights=w_series,
        _subclass=subclass,
        _pairs=pairs.reset_index(drop=True),
        _score=None if prob is None else pd.Series(prob, index=df.index, name="propensity"),
        _treated=pd.Series(tflag, index=df.index, name="treated"),
    )
