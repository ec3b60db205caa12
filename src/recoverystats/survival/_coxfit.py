"""Cox partial-likelihood engine in numpy (internal).

Hand-written on purpose: statsmodels ``PHReg`` loops over risk sets in Python and is
slow at 100k rows, and neither it nor any other well-kept Python library offers Efron
ties together with strata and a cluster-robust (R ``coxph(cluster=)``-style) sandwich
built from Efron score residuals in one place; lifelines is a test-only dependency
(its robust variance ignores tied times). Everything here is vectorised: within each
stratum the rows are sorted by time once, risk-set sums are reverse cumulative sums,
and the Efron correction is applied to all tied events at once by expanding each tie
group into its d "pseudo-events".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CoxData", "CoxFit", "cox_prepare", "cox_newton", "cox_loglik", "cox_score_residuals",
           "cox_schoenfeld", "concordance"]


@dataclass(frozen=True, slots=True)
class _Stratum:
    rows: np.ndarray  # original row indices, sorted by time ascending
    x: np.ndarray  # covariates of those rows (centred)
    t: np.ndarray
    ev: np.ndarray  # positions (within the stratum) of event rows, time ascending
    block: np.ndarray  # event -> index of its distinct event time
    block_start: np.ndarray  # first event (position in ev) of each block
    first: np.ndarray  # first row position at risk at each distinct event time
    row_block: np.ndarray  # for every row: last block with event time <= the row's time (-1: none)
    n_blocks: int
    # case weights (1 without weights) and the "pseudo-events" of the partial likelihood: one per
    # event row (Breslow; Efron as R with sampling weights, multiplied by the tie group's mean
    # weight), or, with frequency weights and Efron, w_i per event row as in the expanded data
    w: np.ndarray
    pblock: np.ndarray
    pfrac: np.ndarray
    pmult: np.ndarray
    # delayed entry (left truncation): rows sorted by entry, where the rows with entry >= t_g
    # start in that order, and the last block each row has not yet entered for (-1: none)
    entry_order: np.ndarray | None = None
    entry_first: np.ndarray | None = None
    row_entry_block: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class CoxData:
    strata: tuple[_Stratum, ...]
    n: int
    p: int
    n_events: int


@dataclass(frozen=True, slots=True)
class CoxFit:
    beta: np.ndarray
    loglik: float
    loglik_null: float
    score_null: np.ndarray
    info_null: np.ndarray
    info: np.ndarray
    iterations: int
    converged: bool


def cox_prepare(x: np.ndarray, time: np.ndarray, event: np.ndarray, strata: np.ndarray,
                ties: str, entry: np.ndarray | None = None, weights: np.ndarray | None = None,
                weight_type: str = "frequency") -> CoxData:
    """Sort each stratum by time and precompute the tie structure (done once per fit).

    With ``entry`` a row is at risk at t when entry < t <= time (R ``Surv(entry, time, event)``).
    With ``weights`` every sum over people is weighted. Efron's correction for a tie group
    of event rows with weights w_i: ``"frequency"`` uses D = sum w_i pseudo-events with
    fractions l / D (whole-number weights), exactly the expanded data; ``"sampling"`` uses
    R ``coxph``'s form, d = number of rows with fractions l / d, each term multiplied by
    the group's mean weight. Breslow's form is the same for both.
    """
    out = []
    n_events = 0
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        order = np.argsort(time[rows], kind="stable")
        rows = rows[order]
        t = time[rows]
        e = event[rows] > 0
        ev = np.flatnonzero(e)
        n_events += len(ev)
        ut, block, d = np.unique(t[ev], return_inverse=True, return_counts=True)
        block_start = np.concatenate(([0], np.cumsum(d)[:-1])).astype(np.intp)
        first = np.searchsorted(t, ut, side="left")
        w = np.ones(len(rows)) if weights is None else weights[rows].astype(float)
        wev = w[ev]
        nb = len(ut)
        if ties != "efron" or not len(ev):  # Breslow: one term per event row, weight w_i
            pblock, pfrac, pmult = block, np.zeros(len(ev)), wev
        elif weights is None or weight_type == "sampling":
            rank = np.arange(len(ev)) - block_start[block]
            pblock, pfrac = block, rank / d[block]
            pmult = np.bincount(block, weights=wev, minlength=nb)[block] / d[block]
        else:  # frequency weights: the tie group of the expanded data
            big_d = np.rint(np.bincount(block, weights=wev, minlength=nb)).astype(np.int64)
            keep = big_d > 0
            pblock = np.repeat(np.arange(nb)[keep], big_d[keep])
            starts = np.concatenate(([0], np.cumsum(big_d[keep])[:-1]))
            rank = np.arange(len(pblock)) - np.repeat(starts, big_d[keep])
            pfrac = rank / big_d[pblock]
            pmult = np.ones(len(pblock))
        row_block = np.searchsorted(ut, t, side="right") - 1
        e_order = e_first = e_block = None
        if entry is not None:
            ent = entry[rows]
            e_order = np.argsort(ent, kind="stable")
            e_first = np.searchsorted(ent[e_order], ut, side="left")
            e_block = np.searchsorted(ut, ent, side="right") - 1
        out.append(_Stratum(rows=rows, x=x[rows], t=t, ev=ev, block=block, block_start=block_start,
                            first=first, row_block=row_block, n_blocks=len(ut), w=w, pblock=pblock,
                            pfrac=pfrac, pmult=pmult,
                            entry_order=e_order, entry_first=e_first, row_entry_block=e_block))
    return CoxData(strata=tuple(out), n=len(time), p=x.shape[1], n_events=n_events)


def _stratum_terms(st: _Stratum, beta: np.ndarray):
    """Risk-set sums of one stratum at ``beta`` (scaled by exp(-max eta))."""
    eta = st.x @ beta
    c = eta.max() if len(eta) else 0.0
    r = np.exp(eta - c)
    rx = (st.w * r)[:, None] * st.x
    # rows from first[g] to first[g+1] join the risk set at t_g: sum those blocks, then a
    # reverse cumulative sum over the (few) distinct event times
    rw = st.w * r
    s0 = np.cumsum(np.add.reduceat(rw, st.first)[::-1])[::-1]
    s1 = np.cumsum(np.add.reduceat(rx, st.first, axis=0)[::-1], axis=0)[::-1]
    if st.entry_order is not None:  # remove those who have not entered yet (entry >= t_g)
        r_e = rw[st.entry_order]
        rx_e = rx[st.entry_order]
        late0 = np.append(np.cumsum(r_e[::-1])[::-1], 0.0)
        late1 = np.vstack((np.cumsum(rx_e[::-1], axis=0)[::-1], np.zeros((1, rx.shape[1]))))
        s0 = s0 - late0[st.entry_first]
        s1 = s1 - late1[st.entry_first]
    re = rw[st.ev]
    d0 = np.add.reduceat(re, st.block_start) if len(st.ev) else np.zeros(0)
    d1 = np.add.reduceat(rx[st.ev], st.block_start, axis=0) if len(st.ev) else np.zeros((0, len(beta)))
    b = st.pblock
    denom = s0[b] - st.pfrac * d0[b]
    means = (s1[b] - st.pfrac[:, None] * d1[b]) / denom[:, None]
    return eta, c, r, denom, means  # r: exp(eta - c) per unit weight; denom, means: per pseudo-event


def _loglik_grad_info(data: CoxData, beta: np.ndarray, want_info: bool = True):
    p = data.p
    ll = 0.0
    grad = np.zeros(p)
    info = np.zeros((p, p))
    for st in data.strata:
        if len(st.ev) == 0:
            continue
        eta, c, r, denom, means = _stratum_terms(st, beta)
        wev = st.w[st.ev]
        m = st.pmult
        ll += wev @ eta[st.ev] - m @ np.log(denom) - m.sum() * c
        grad += wev @ st.x[st.ev] - m @ means
        if want_info:
            a = np.bincount(st.pblock, weights=m / denom, minlength=st.n_blocks)
            bb = np.bincount(st.pblock, weights=m * st.pfrac / denom, minlength=st.n_blocks)
            cum_a = np.concatenate((np.cumsum(a), [0.0]))  # index -1 -> 0
            rw = st.w * r
            w = rw * cum_a[st.row_block]
            if st.row_entry_block is not None:
                w -= rw * cum_a[st.row_entry_block]
            w[st.ev] -= rw[st.ev] * bb[st.block]
            info += (st.x.T * w) @ st.x - (means.T * m) @ means
    return ll, grad, info


def cox_newton(data: CoxData, *, max_iter: int = 50, tol: float = 1e-10, start: np.ndarray | None = None,
               free: np.ndarray | None = None) -> CoxFit:
    """Newton-Raphson with step halving, started at beta = 0 (or ``start``).

    With ``free`` (a boolean mask) only those coefficients move and the others stay at
    their ``start`` values: the profile likelihood of the fixed ones. ``loglik_null``,
    ``score_null`` and ``info_null`` are those at beta = 0 whatever the start.
    """
    p = data.p
    zero = np.zeros(p)
    ll0, grad0, info0 = _loglik_grad_info(data, zero)
    beta = zero.copy() if start is None else np.asarray(start, dtype=float).copy()
    idx = np.arange(p) if free is None else np.flatnonzero(free)
    if start is None:
        ll, grad, info = ll0, grad0.copy(), info0.copy()
    else:
        ll, grad, info = _loglik_grad_info(data, beta)
    converged = False
    it = 0
    if len(idx) == 0:
        return CoxFit(beta=beta, loglik=float(ll), loglik_null=float(ll0), score_null=grad0, info_null=info0,
                      info=info, iterations=0, converged=True)
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported after the loop
        sub = info[np.ix_(idx, idx)]
        try:
            step_free = np.linalg.solve(sub, grad[idx])
        except np.linalg.LinAlgError:
            step_free = np.linalg.lstsq(sub, grad[idx], rcond=None)[0]
        step = np.zeros(p)
        step[idx] = step_free
        new_beta = beta + step
        new_ll, new_grad, new_info = _loglik_grad_info(data, new_beta)
        halvings = 0
        while (not np.isfinite(new_ll) or new_ll < ll - 1e-12 * abs(ll)) and halvings < 30:
            step = step / 2.0
            new_beta = beta + step
            new_ll, new_grad, new_info = _loglik_grad_info(data, new_beta)
            halvings += 1
        beta, ll_old, ll, grad, info = new_beta, ll, new_ll, new_grad, new_info
        if np.max(np.abs(step)) < tol * (1.0 + np.max(np.abs(beta[idx]))) or abs(ll - ll_old) < 1e-14 * (1 + abs(ll)):
            converged = True
            break
    return CoxFit(beta=beta, loglik=float(ll), loglik_null=float(ll0), score_null=grad0, info_null=info0,
                  info=info, iterations=it, converged=converged)


def cox_loglik(data: CoxData, beta: np.ndarray) -> float:
    """The partial log-likelihood at ``beta`` (no derivatives)."""
    return float(_loglik_grad_info(data, np.asarray(beta, dtype=float), want_info=False)[0])


def cox_score_residuals(data: CoxData, beta: np.ndarray) -> np.ndarray:
    """Score residuals per row (original order), Efron- or Breslow-consistent as R ``coxph``.

    Weighted (w_i U_i) when the data carry case weights, as R's ``weighted=TRUE``.

    U_i = dN-part - r_i sum_g sum_l c_igl (x_i - xbar_gl) / D_gl, where c = 1 for
    people at risk who do not have the event at t_g and (1 - l/d) for those who do;
    the dN-part is x_i - (1/d) sum_l xbar_gl for an event at t_g.
    """
    out = np.zeros((data.n, data.p))
    for st in data.strata:
        if len(st.ev) == 0:
            continue
        eta, c, r, denom, means = _stratum_terms(st, beta)
        nb = st.n_blocks
        pb, m = st.pblock, st.pmult
        inv = m / denom
        a = np.bincount(pb, weights=inv, minlength=nb)
        bb = np.bincount(pb, weights=st.pfrac * inv, minlength=nb)
        ma = np.stack([np.bincount(pb, weights=means[:, k] * inv, minlength=nb) for k in range(data.p)], 1)
        mb = np.stack([np.bincount(pb, weights=means[:, k] * st.pfrac * inv, minlength=nb)
                       for k in range(data.p)], 1)
        mavg = _block_mean(st, means, nb, data.p)
        cum_a = np.concatenate((np.cumsum(a), [0.0]))
        cum_m = np.concatenate((np.cumsum(ma, axis=0), np.zeros((1, data.p))), axis=0)
        rb = st.row_block
        ca, cm = cum_a[rb], cum_m[rb]
        if st.row_entry_block is not None:
            ca = ca - cum_a[st.row_entry_block]
            cm = cm - cum_m[st.row_entry_block]
        u = -r[:, None] * (st.x * ca[:, None] - cm)
        ev, blk = st.ev, st.block
        u[ev] += st.x[ev] - mavg[blk] + r[ev][:, None] * (st.x[ev] * bb[blk][:, None] - mb[blk])
        out[st.rows] = u * st.w[:, None]
    return out


def _block_mean(st: _Stratum, means: np.ndarray, nb: int, p: int) -> np.ndarray:
    """Per tie group: the pseudo-event means averaged with their multipliers."""
    tot = np.bincount(st.pblock, weights=st.pmult, minlength=nb)
    mavg = np.stack([np.bincount(st.pblock, weights=means[:, k] * st.pmult, minlength=nb) for k in range(p)], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return mavg / tot[:, None]


def cox_schoenfeld(data: CoxData, beta: np.ndarray,
                   time: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Schoenfeld residuals (one row per event row; Efron-averaged means), event times and row weights."""
    res, times, wts = [], [], []
    for st in data.strata:
        if len(st.ev) == 0:
            continue
        _, _, _, _, means = _stratum_terms(st, beta)
        mavg = _block_mean(st, means, st.n_blocks, data.p)
        res.append(st.x[st.ev] - mavg[st.block])
        times.append(st.t[st.ev])
        wts.append(st.w[st.ev])
    if not res:
        return np.zeros((0, data.p)), np.zeros(0), np.zeros(0)
    return np.concatenate(res), np.concatenate(times), np.concatenate(wts)


def _count_before(v: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each position i: the weight of {j < i: v_j < v_i} and of {j < i: v_j == v_i} (v: ints >= 0).

    Counts when ``w`` is None. Bottom-up merge counting, vectorised per level: the array
    is kept sorted within blocks of size s, so the left halves form one globally sorted
    key array (block * big + v) to binary-search the right halves in (their weights'
    prefix sums give the weighted counts), and the merge to blocks of 2s is a stable
    sort of two sorted runs. O(n log n) overall.
    """
    n = len(v)
    less = np.zeros(n, dtype=float if w is not None else np.int64)
    eq = np.zeros(n, dtype=less.dtype)
    if n < 2:
        return less, eq
    big = np.int64(v.max()) + 1
    vals = v.astype(np.int64)
    wts = None if w is None else np.asarray(w, dtype=float)
    pos = np.arange(n)
    slot = np.arange(n, dtype=np.int64)
    s = 1
    while s < n:
        blk = slot // (2 * s)
        right = (slot // s) % 2 == 1
        left = ~right
        keys_left = blk[left] * big + vals[left]
        q_blk = blk[right] * big
        q = q_blk + vals[right]
        base = np.searchsorted(keys_left, q_blk, side="left")
        lo = np.searchsorted(keys_left, q, side="left")
        hi = np.searchsorted(keys_left, q, side="right")
        pr = pos[right]
        if wts is None:
            less[pr] += lo - base
            eq[pr] += hi - lo
        else:
            cw = np.concatenate(([0.0], np.cumsum(wts[left])))
            less[pr] += cw[lo] - cw[base]
            eq[pr] += cw[hi] - cw[lo]
        order = np.argsort(blk * big + vals, kind="stable")
        vals = vals[order]
        pos = pos[order]
        if wts is not None:
            wts = wts[order]
        s *= 2
    return less, eq


def concordance(time: np.ndarray, event: np.ndarray, risk: np.ndarray, strata: np.ndarray,
                weights: np.ndarray | None = None) -> tuple[float, float]:
    """Harrell's C for a risk score (higher = earlier event) and the number of comparable pairs.

    A pair is comparable when the shorter time ends in an event; a censored time tied
    with an event time counts as longer; two events at the same time are not
    comparable; tied risk scores count 1/2 (R ``concordance()``, lifelines
    ``concordance_index`` with the negated risk). Pairs are formed within strata. With
    ``weights`` a pair counts w_i w_j (frequency weights: the expanded data's count).
    """
    conc = 0.0
    disc = 0.0
    tied = 0.0
    for s in np.unique(strata):
        m = strata == s
        t, e, r = time[m], event[m] > 0, risk[m]
        wt = None if weights is None else weights[m]
        n = len(t)
        if n < 2 or not e.any():
            continue
        scale = float(np.max(np.abs(r))) or 1.0
        # risk scores equal up to rounding error (e.g. the same covariates) are ties
        v = np.unique(np.round(r / scale, 11), return_inverse=True)[1].astype(np.int64)
        # time descending, censored before events at a tied time, then risk descending: within a
        # block of tied event times nobody earlier has a lower risk, so only equal risks need undoing
        order = np.lexsort((-v, e.astype(int), -t))
        t, e, v = t[order], e[order], v[order]
        if wt is not None:
            wt = wt[order]
        change = np.ones(n, dtype=bool)
        change[1:] = (t[1:] != t[:-1]) | (e[1:] != e[:-1])
        seg = np.cumsum(change) - 1
        seg_start = np.flatnonzero(change)[seg]
        run = change.copy()
        run[1:] |= v[1:] != v[:-1]
        run_start = np.flatnonzero(run)[np.cumsum(run) - 1]
        if wt is None:
            within_eq = np.arange(n) - run_start
            less_all, eq_all = _count_before(v)
            less = less_all[e]
            eq = (eq_all - within_eq)[e]
            comparable = seg_start[e]
            conc += less.sum()
            tied += eq.sum()
            disc += (comparable - less - eq).sum()
        else:
            before = np.concatenate(([0.0], np.cumsum(wt)))[:-1]  # weight of rows earlier in the order
            within_eq = before - before[run_start]
            less_all, eq_all = _count_before(v, wt)
            we = wt[e]
            less = less_all[e]
            eq = (eq_all - within_eq)[e]
            comparable = before[seg_start][e]
            conc += we @ less
            tied += we @ eq
            disc += we @ (comparable - less - eq)
    total = conc + disc + tied
    if total == 0:
        return float("nan"), 0
    return float((conc + 0.5 * tied) / total), (int(total) if weights is None else float(total))
