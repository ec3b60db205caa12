"""Balancing weights: :func:`balancing_weights` (inverse-probability and entropy balancing)."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import logsumexp

from recoverystats._checks import check_option
from recoverystats.causal._common import Exposure, check_frame, covariate_design, exposure_indicator
from recoverystats.causal.propensity import fit_propensity, overlap_notes, overlap_table
from recoverystats.errors import EstimationError, InvalidParameterError
from recoverystats.results.causal import BalancingWeightsResult

Estimand = Literal["ATE", "ATT", "ATO"]
WeightMethod = Literal["ps", "entropy"]

#: Entropy balancing has converged when every weighted moment is within this many
#: (full-sample) standard deviations of its target.
ENTROPY_TOL = 1e-8
#: A note is issued when a reweighted group's effective sample size is below this share of its n.
LOW_ESS_SHARE = 0.3


def ps_weights(p: np.ndarray, t: np.ndarray, estimand: str, *, stabilize: bool = True,
               base: np.ndarray | None = None) -> np.ndarray:
    """Weights from propensity scores ``p`` for the exposure ``t`` (0/1).

    ATE: ``1/e`` (exposed) and ``1/(1-e)`` (comparison), times the marginal share of the
    person's group (``P(T=1)`` or ``P(T=0)``) when stabilised; ATT: ``1`` and
    ``e/(1-e)``; ATO (overlap weights, Li, Morgan & Zaslavsky 2018): ``1-e`` and ``e``.
    ``base`` (case weights) enters the marginal shares.
    """
    if estimand == "ATE":
        w = np.where(t == 1, 1.0 / p, 1.0 / (1.0 - p))
        if stabilize:
            bw = np.ones_like(t) if base is None else base
            share = float((bw * t).sum() / bw.sum())
            w = w * np.where(t == 1, share, 1.0 - share)
    elif estimand == "ATT":
        w = np.where(t == 1, 1.0, p / (1.0 - p))
    else:
        w = np.where(t == 1, 1.0 - p, p)
    return w


def weight_summary(w: np.ndarray, t: np.ndarray, ex: Exposure) -> pd.DataFrame:
    """Per group and overall: n, sum, mean, SD (n-1), min, max, Kish ESS, top-1% share."""
    rows = []
    for val, mask in ((1, t == 1), (0, t == 0), (None, np.ones(len(t), dtype=bool))):
        wg = w[mask]
        n = len(wg)
        s = float(wg.sum())
        k = max(1, math.ceil(0.01 * n))
        top = float(np.sort(wg)[-k:].sum()) / s if s > 0 else float("nan")
        rows.append({
            "group": "all" if val is None else ex.label(val),
            "exposed": pd.NA if val is None else val,
            "n": n,
            "sum_weights": s,
            "mean": float(wg.mean()),
            "sd": float(wg.std(ddof=1)) if n > 1 else float("nan"),
            "min": float(wg.min()),
            "max": float(wg.max()),
            "ess": s * s / float((wg * wg).sum()) if s > 0 else 0.0,
            "top1_share": top,
        })
    out = pd.DataFrame(rows)
    out["exposed"] = out["exposed"].astype("Int64")
    return out


def entropy_weights(
    C: np.ndarray,
    t: np.ndarray,
    estimand: str,
    names: list[str],
    *,
    tol: float = ENTROPY_TOL,
    max_iter: int = 200,
    base: np.ndarray | None = None,
) -> tuple[np.ndarray, float, list[str]]:
    """Entropy-balancing weights (Hainmueller 2012) by Newton's method on the convex dual.

    For each reweighted group ``g`` with covariate rows ``c_i`` and target moments ``m``,
    the weights minimise the Kullback-Leibler divergence ``sum w_i log(w_i / q_i)`` from
    the base weights ``q`` subject to ``sum w_i c_i = m`` and ``sum w_i = 1``. The dual is
    ``min_l log sum_i q_i exp(l'z_i)`` with ``z_i = (c_i - m) / s`` (``s`` the full-sample
    SDs, so the criterion is scale free), whose gradient is the weighted mean of ``z``;
    the solution is ``w_i ∝ q_i exp(l'z_i)``. Solved with ``scipy.optimize.minimize``
    (``trust-exact``, analytic gradient and Hessian).

    Returns ``(weights normalised to sum 1 per group, max |standardised difference|,
    notes)``. Raises :class:`EstimationError` when a group cannot be balanced (the
    targets lie outside the convex hull of that group's covariates).
    """
    q = np.ones(len(t)) if base is None else base
    sd = C.std(axis=0)
    keep = sd > 0
    C = C[:, keep]
    names = [n for n, k in zip(names, keep, strict=True) if k]
    sd = sd[keep]
    if estimand == "ATT":
        tw = q * t
        target = (tw[:, None] * C).sum(axis=0) / tw.sum()
        groups = [0]
    else:
        target = (q[:, None] * C).sum(axis=0) / q.sum()
        groups = [1, 0]
    w = np.zeros(len(t))
    if estimand == "ATT":
        w[t == 1] = q[t == 1] / q[t == 1].sum()
    worst = 0.0
    for g in groups:
        mask = t == g
        Z = (C[mask] - target) / sd
        lq = np.log(q[mask])

        def fun(lam: np.ndarray, Z: np.ndarray = Z, lq: np.ndarray = lq) -> tuple[float, np.ndarray]:
            eta = Z @ lam + lq
            f = float(logsumexp(eta))
            pw = np.exp(eta - f)
            return f, Z.T @ pw

        def hess(lam: np.ndarray, Z: np.ndarray = Z, lq: np.ndarray = lq) -> np.ndarray:
            eta = Z @ lam + lq
            pw = np.exp(eta - logsumexp(eta))
            zm = Z.T @ pw
            return (Z * pw[:, None]).T @ Z - np.outer(zm, zm)

        res = optimize.minimize(fun, np.zeros(Z.shape[1]), jac=True, hess=hess, method="trust-exact",
                                options={"gtol": tol * 1e-2, "maxiter": max_iter})
        lam = res.x
        for _ in range(20):  # polish with plain Newton steps (least-squares solve: ill-conditioned moments)
            f, grad = fun(lam)
            if np.max(np.abs(grad)) < tol * 1e-3:
                break
            step = np.linalg.lstsq(hess(lam), grad, rcond=None)[0]
            cand = lam - step
            if fun(cand)[0] > f + 1e-12 * (1 + abs(f)):
                break
            lam = cand
        eta = Z @ lam + lq
        pw = np.exp(eta - logsumexp(eta))
        diff = np.abs(Z.T @ pw)
        gworst = float(diff.max()) if diff.size else 0.0
        if not (gworst < tol) or not np.all(np.isfinite(pw)):
            j = int(np.argmax(diff))
            raise EstimationError(
                f"entropy balancing did not converge for the group {'exposed' if g == 1 else 'comparison'}: "
                f"the weighted mean of {names[j]!r} stays {gworst:.3g} SD from its target (convergence means "
                f"every weighted moment within {tol:g} SD of its target). The targets are probably outside the "
                "range this group can reach (poor overlap): remove or coarsen that covariate, use moments=1, or "
                "use method='ps'."
            )
        worst = max(worst, gworst)
        w[mask] = pw
    return w, worst, []


def moment_matrix(design: Any, moments: int) -> tuple[np.ndarray, list[str]]:
    """Covariate columns to balance (no intercept), plus squares of non-binary columns when
    ``moments=2``."""
    X = design.X
    cols = [j for j, n in enumerate(design.names) if n != "Intercept"]
    C = X[:, cols]
    names = [design.names[j] for j in cols]
    if moments == 2:
        extra = []
        extra_names = []
        for j, name in enumerate(names):
            v = C[:, j]
            if not np.all((v == 0) | (v == 1)):
                extra.append(v * v)
                extra_names.append(f"{name}^2")
        if extra:
            C = np.column_stack([C, *extra])
            names = names + extra_names
    return np.ascontiguousarray(C), names


def balancing_weights(
    df: pd.DataFrame,
    *,
    exposure: str,
    adjust: Any = (),
    formula: str | None = None,
    estimand: Estimand = "ATE",
    method: WeightMethod = "ps",
    stabilize: bool = True,
    trim: float | None = None,
    moments: int = 1,
    treated: Any = None,
) -> BalancingWeightsResult:
    """Weights that make the compared groups alike on measured covariates.

    Parameters
    ----------
    df
        One row per person (no missing covariates).
    exposure
        The two-group column (see :func:`propensity_score`).
    adjust, formula
        The covariates (as in :func:`propensity_score`): the propensity model for
        ``method="ps"``; the columns whose means are balanced for ``method="entropy"``
        (categorical columns as one 0/1 column per non-reference level; with a formula,
        its design columns).
    estimand
        Whom the comparison is about. ``"ATE"``: everyone (both groups together);
        ``"ATT"``: people like the exposed group (program participants); ``"ATO"``:
        the overlap population, people who could plausibly be in either group (only
        with ``method="ps"``).
    method
        ``"ps"``: inverse-probability weights from a logistic propensity model (see
        Notes); ``"entropy"``: entropy balancing (Hainmueller 2012), weights closest to
        uniform (in Kullback-Leibler divergence) whose weighted covariate means equal
        the target exactly.
    stabilize
        ATE with ``method="ps"``: multiply by the marginal share of the person's group
        (``P(T=1)/e`` and ``P(T=0)/(1-e)``, Robins, Hernán & Brumback 2000), so the
        weights average about 1; point estimates are unchanged, the weights look less
        extreme. ATT/ATO weights are not changed by it. With ``method="entropy"`` and
        ATE, each group's weights sum to its size when stabilised (to n when not).
    trim
        ``None`` (default) or a quantile ``q`` in (0.5, 1): weights above the ``q``-th
        quantile of their group are set to that quantile (truncation, Cole & Hernán
        2008; e.g. ``0.99``). Truncation trades bias for variance; a note says how many
        weights were changed.
    moments
        Entropy balancing: ``1`` balances means (proportions for 0/1 columns); ``2`` also
        balances the means of the squares of non-binary columns (so means and variances
        match).
    treated
        The value of ``exposure`` that marks the exposed group (see :func:`propensity_score`).

    Returns
    -------
    BalancingWeightsResult
        ``.weights`` (a Series aligned to ``df``) — use it as **sampling** weights
        (``weights=result.weights, weight_type="sampling"`` in ``proportion``,
        ``odds_ratios``, ``survival_curve``..., or ``weights=`` in :func:`balance` and
        :func:`treatment_effect`); ``.table`` summarises them per group and overall
        (n, sum, mean, SD, min, max, Kish's effective sample size
        ``ESS = (Σw)²/Σw²``, the share of the total weight held by the 1% largest
        weights); ``.scores`` the propensity scores (``"ps"``).

    Raises
    ------
    DataValidationError
        As :func:`propensity_score` (exposure not binary, missing or one-group-constant
        covariates, no overlap).
    EstimationError
        Entropy balancing did not converge (the target means are out of reach of a group).

    Notes
    -----
    Propensity-score weights (``e`` the score), exposed / comparison:

    * ATE: ``1/e`` / ``1/(1−e)`` (times ``P(T=1)`` / ``P(T=0)`` when stabilised);
    * ATT: ``1`` / ``e/(1−e)``;
    * ATO: ``1−e`` / ``e``.

    As R ``WeightIt::weightit(method = "glm", estimand = ...)`` (whose ATE weights are
    unstabilised by default). Entropy balancing targets the exposed group's means for
    ATT (comparison weights sum to the number exposed; exposed weights are 1) and the
    full sample's means for ATE (both groups reweighted). *Convergence* means every
    weighted moment equals its target to within ``1e-8`` full-sample standard
    deviations — i.e. the balance is exact to machine precision, as in R
    ``WeightIt::weightit(method = "ebal")``; otherwise an error is raised, because
    approximate entropy weights have no guarantee. A note flags poor overlap (see
    :func:`propensity_score`) and a reweighted group whose ESS is below 30% of its n.

    References
    ----------
    Hainmueller J (2012). Entropy balancing for causal effects. *Political Analysis*
    20:25-46. Li F, Morgan KL, Zaslavsky AM (2018). Balancing covariates via propensity
    score weighting. *JASA* 113:390-400.

    Examples
    --------
    >>> import recoverystats as rs
    >>> sim = rs.datasets.simulate_program(600, seed=2)
    >>> bw = rs.balancing_weights(sim.truth.latent, exposure="group", adjust=["age", "risk_level"],
    ...                           estimand="ATT", method="entropy")
    >>> bw.converged
    True
    """
    df = check_frame(df)
    check_option("estimand", estimand, Estimand)
    check_option("method", method, WeightMethod)
    if moments not in (1, 2):
        raise InvalidParameterError(f"moments must be 1 (means) or 2 (means and variances); got {moments!r}.")
    if trim is not None and not (isinstance(trim, (int, float)) and 0.5 < float(trim) < 1.0):
        raise InvalidParameterError(
            f"trim must be None or a quantile between 0.5 and 1 (e.g. 0.99: weights above their group's 99th "
            f"percentile are set to it); got {trim!r}."
        )
    if method == "entropy" and estimand == "ATO":
        raise InvalidParameterError(
            "estimand='ATO' (overlap weights) is defined through propensity scores: use method='ps', or "
            "estimand='ATT'/'ATE' with method='entropy'."
        )
    ex = exposure_indicator(df, exposure, treated)
    design, used = covariate_design(df, ex=ex, adjust=adjust, formula=formula, func="balancing_weights")
    t = ex.t
    notes: list[str] = []
    scores = None
    worst = float("nan")
    if method == "ps":
        fit = fit_propensity(design, t, ex=ex)
        notes += fit.notes
        ot, support, share = overlap_table(fit.p, t, ex)
        notes += overlap_notes(ot, support, share)
        w = ps_weights(fit.p, t, estimand, stabilize=stabilize)
        scores = pd.Series(fit.p, index=df.index, name="propensity_score")
        label = {"ATE": "inverse probability", "ATT": "odds (ATT)", "ATO": "overlap"}[estimand]
        mname = f"propensity-score {label} weights" + (" (stabilised)" if stabilize and estimand == "ATE" else "")
    else:
        C, names = moment_matrix(design, moments)
        if C.shape[1] == 0:
            raise InvalidParameterError("method='entropy' needs covariates to balance: give adjust= or formula=.")
        w, worst, _ = entropy_weights(C, t, estimand, names)
        n1, n0, n = float(t.sum()), float((1 - t).sum()), float(len(t))
        if estimand == "ATT":
            w = np.where(t == 1, 1.0, w * n1)
        elif stabilize:
            w = np.where(t == 1, w * n1, w * n0)
        else:
            w = w * n
        mname = f"entropy balancing ({'means' if moments == 1 else 'means and variances'})"
    if trim is not None:
        changed = 0
        for g in (1, 0):
            mask = t == g
            cap = float(np.quantile(w[mask], trim))
            over = mask & (w > cap)
            changed += int(over.sum())
            w = np.where(over, cap, w)
        notes.append(
            f"Weights truncated at the {trim:g} quantile of each group: {changed} weight(s) lowered. Truncation "
            "reduces variance at the cost of some bias (balance is no longer exact)."
        )
        mname += f", truncated at q={trim:g}"
    table = weight_summary(w, t, ex)
    reweighted = [1, 0] if estimand != "ATT" else [0]
    if method == "ps" and estimand == "ATO":
        reweighted = [1, 0]
    for g in reweighted:
        row = table[table["exposed"] == g].iloc[0]
        if row["ess"] < LOW_ESS_SHARE * row["n"]:
            notes.append(
                f"The weights of group {row['group']!r} are highly variable: effective sample size "
                f"{row['ess']:.1f} of {int(row['n'])} ({row['ess'] / row['n']:.0%}); a few people carry much of "
                "the weight (poor overlap). Consider estimand='ATO', trimming, or a simpler propensity model."
            )
    return BalancingWeightsResult(
        _table=table,
        method=mname,
        n_used=len(df),
        notes=tuple(notes),
        exposure=ex.column,
        treated=ex.treated,
        control=ex.control,
        adjust=tuple(used),
        estimand=estimand,
        weighting=method,
        stabilize=bool(stabilize),
        trim=None if trim is None else float(trim),
        converged=True,
        max_moment_difference=worst,
        _weights=pd.Series(w, index=df.index, name="weight"),
        _scores=scores,
        _exposed=pd.Series(t.astype(bool), index=df.index, name=ex.column),
    )
