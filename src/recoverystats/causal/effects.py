"""Marginal treatment effects: :func:`treatment_effect` (IPW, AIPW, g-computation)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import linalg, stats
from scipy.special import expit

from recoverystats._checks import check_columns, check_conf_level, check_option
from recoverystats.causal._common import (
    Exposure,
    check_frame,
    covariate_design,
    exposure_indicator,
    resolve_weights,
)
from recoverystats.causal.evalue import SMD_TO_LOG_RR, evalue_ci_rr, evalue_rr, evalue_sentence
from recoverystats.causal.propensity import fit_propensity, overlap_notes, overlap_table
from recoverystats.causal.weighting import ps_weights
from recoverystats.errors import DataValidationError, EstimationError, InvalidParameterError
from recoverystats.regression import _engine as E
from recoverystats.results.causal import TreatmentEffectResult

Estimand = Literal["ATE", "ATT", "ATO"]
EffectMethod = Literal["ipw", "aipw", "gcomp"]
WeightType = Literal["frequency", "sampling"]

#: Bootstrap replicates whose models fail (e.g. separation in a resample) are dropped; more
#: than this share failing is an error.
MAX_FAILED_BOOT = 0.05


# ---------------------------------------------------------------------------
# estimating equations
# ---------------------------------------------------------------------------
@dataclass
class _Fit:
    mu1: float
    mu0: float
    V: np.ndarray | None  # 2 x 2 covariance of (mu1, mu0)
    p: np.ndarray | None  # propensity scores
    beta: np.ndarray | None
    gam0: np.ndarray | None
    gam1: np.ndarray | None


def _tilt(estimand: str, method: str, e: np.ndarray | None, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The target population's tilting function h and dh/deta (eta the PS linear predictor)."""
    n = len(t)
    if estimand == "ATE":
        return np.ones(n), np.zeros(n)
    if estimand == "ATT":
        if method == "gcomp":
            return t.copy(), np.zeros(n)
        assert e is not None
        return e, e * (1 - e)
    assert e is not None
    v = e * (1 - e)
    return v, v * (1 - 2 * e)


def _arm_weights(estimand: str, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """a1 = h/e, a0 = h/(1-e) and their derivatives in eta."""
    v = e * (1 - e)
    if estimand == "ATE":
        return 1 / e, 1 / (1 - e), -(1 - e) / e, e / (1 - e)
    if estimand == "ATT":
        one = np.ones_like(e)
        return one, e / (1 - e), np.zeros_like(e), e / (1 - e)
    return 1 - e, e, -v, v


def _fit_outcome(X: np.ndarray, y: np.ndarray, b: np.ndarray, binary: bool, names: list[str], arm: str,
                 start: np.ndarray | None = None, notes: list[str] | None = None) -> np.ndarray:
    """Outcome regression within one arm: weighted OLS, or logistic ML for a 0/1 outcome."""
    keep = b > 0
    Xk, yk, bk = X[keep], y[keep], b[keep]
    XtX = (Xk * bk[:, None]).T @ Xk
    d = np.sqrt(np.diag(XtX))
    R = XtX / np.outer(np.where(d > 0, d, 1), np.where(d > 0, d, 1))
    lam = np.linalg.eigvalsh(R)
    if (d == 0).any() or lam[0] < 1e-10 * max(1.0, lam[-1]):
        const = [names[j] for j in range(len(d)) if d[j] == 0]
        what = f"design column(s) {', '.join(const)} are 0 throughout" if const else "the covariates are collinear"
        raise DataValidationError(
            f"the outcome model cannot be fitted in the {arm} group: {what} there (e.g. a category with no one "
            "in that group). Merge sparse categories, remove the covariate, or use method='ipw'."
        )
    if not binary:
        return linalg.solve(XtX, (Xk * bk[:, None]).T @ yk, assume_a="pos")
    fit = E.fit_mle(Xk, yk, weights=bk, beta0=start)
    if not fit.converged or np.max(np.abs(fit.eta)) > E.ETA_LIMIT:
        sep = E.detect_separation(Xk, yk)
        if sep.separated and notes is not None:
            firth = E.fit_firth(Xk, yk, weights=bk, max_iter=100)
            if firth.converged:
                cols = ", ".join(names[j] for j in sep.columns if names[j] != "Intercept") or "the covariates"
                notes.append(
                    f"The outcome never or always occurs for some covariate pattern in the {arm} group "
                    f"(separation involving {cols}): its outcome model was fitted by Firth's penalised likelihood "
                    "so that predictions stay finite; the standard errors treat it as maximum likelihood."
                )
                return firth.beta
        raise EstimationError(
            f"the logistic outcome model did not converge in the {arm} group (probably separation: an outcome "
            "that never or always occurs for some covariate pattern). Use fewer covariates, merge sparse levels, "
            "or method='ipw'."
        )
    return fit.beta


def _estimate(
    X: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    b: np.ndarray,
    *,
    estimand: str,
    method: str,
    binary: bool,
    names: list[str],
    variance: bool,
    meat_weight: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    start: _Fit | None = None,
    ps_design: Any = None,
    notes: list[str] | None = None,
) -> _Fit:
    """Point estimates of (mu1, mu0) and their sandwich covariance from the stacked estimating equations.

    Parameters (theta): mu1, mu0, the propensity coefficients beta (IPW, AIPW, and
    g-computation for ATO), the outcome coefficients gamma0, gamma1 (AIPW, g-computation).
    """
    n, k = X.shape
    need_ps = method != "gcomp" or estimand == "ATO"
    need_out = method != "ipw"
    e = beta = None
    if need_ps:
        if start is not None and start.beta is not None:
            fit = E.fit_mle(X, t, weights=b, beta0=start.beta)
            if not fit.converged or np.max(np.abs(fit.eta)) > E.ETA_LIMIT:
                raise EstimationError("propensity model failed in a bootstrap replicate")
            e, beta = fit.p, fit.beta
        else:
            psf = fit_propensity(ps_design, t, weights=None if np.all(b == 1) else b)
            e, beta = psf.p, psf.beta
    gam0 = gam1 = m0 = m1 = None
    if need_out:
        s0 = None if start is None else start.gam0
        s1 = None if start is None else start.gam1
        gam0 = _fit_outcome(X, y, b * (1 - t), binary, names, "comparison", s0, notes)
        gam1 = _fit_outcome(X, y, b * t, binary, names, "exposed", s1, notes)
        m0 = X @ gam0
        m1 = X @ gam1
        if binary:
            m0, m1 = expit(m0), expit(m1)
    h, dh = _tilt(estimand, method, e, t)
    if method == "ipw":
        assert e is not None
        a1, a0, da1, da0 = _arm_weights(estimand, e)
        w1, w0 = b * t * a1, b * (1 - t) * a0
        mu1 = float((w1 * y).sum() / w1.sum())
        mu0 = float((w0 * y).sum() / w0.sum())
    elif method == "aipw":
        assert e is not None and m1 is not None and m0 is not None
        a1, a0, da1, da0 = _arm_weights(estimand, e)
        sh = float((b * h).sum())
        mu1 = float((b * (h * m1 + t * a1 * (y - m1))).sum() / sh)
        mu0 = float((b * (h * m0 + (1 - t) * a0 * (y - m0))).sum() / sh)
    else:
        assert m1 is not None and m0 is not None
        sh = float((b * h).sum())
        mu1 = float((b * h * m1).sum() / sh)
        mu0 = float((b * h * m0).sum() / sh)
    if not variance:
        return _Fit(mu1, mu0, None, e, beta, gam0, gam1)

    # -- stacked estimating equations psi (n x d) and their Jacobian A = sum b dpsi/dtheta
    kb = k if need_ps else 0
    ko = k if need_out else 0
    d = 2 + kb + 2 * ko
    ib, i0, i1 = 2, 2 + kb, 2 + kb + ko
    psi = np.zeros((n, d))
    A = np.zeros((d, d))
    gp0 = gp1 = None
    if need_out:
        assert m0 is not None and m1 is not None
        gp0 = m0 * (1 - m0) if binary else np.ones(n)
        gp1 = m1 * (1 - m1) if binary else np.ones(n)
    if method == "ipw":
        psi[:, 0] = t * a1 * (y - mu1)
        psi[:, 1] = (1 - t) * a0 * (y - mu0)
        A[0, 0] = -(b * t * a1).sum()
        A[1, 1] = -(b * (1 - t) * a0).sum()
        A[0, ib:ib + k] = X.T @ (b * t * (y - mu1) * da1)
        A[1, ib:ib + k] = X.T @ (b * (1 - t) * (y - mu0) * da0)
    else:
        assert m0 is not None and m1 is not None and gp0 is not None and gp1 is not None
        if method == "aipw":
            psi[:, 0] = h * m1 + t * a1 * (y - m1) - h * mu1
            psi[:, 1] = h * m0 + (1 - t) * a0 * (y - m0) - h * mu0
            A[0, i1:i1 + k] = X.T @ (b * (h - t * a1) * gp1)
            A[1, i0:i0 + k] = X.T @ (b * (h - (1 - t) * a0) * gp0)
            A[0, ib:ib + k] = X.T @ (b * (dh * (m1 - mu1) + t * (y - m1) * da1))
            A[1, ib:ib + k] = X.T @ (b * (dh * (m0 - mu0) + (1 - t) * (y - m0) * da0))
        else:
            psi[:, 0] = h * (m1 - mu1)
            psi[:, 1] = h * (m0 - mu0)
            A[0, i1:i1 + k] = X.T @ (b * h * gp1)
            A[1, i0:i0 + k] = X.T @ (b * h * gp0)
            if need_ps:
                A[0, ib:ib + k] = X.T @ (b * dh * (m1 - mu1))
                A[1, ib:ib + k] = X.T @ (b * dh * (m0 - mu0))
        A[0, 0] = -(b * h).sum()
        A[1, 1] = -(b * h).sum()
        psi[:, i0:i0 + k] = X * ((1 - t) * (y - m0))[:, None]
        psi[:, i1:i1 + k] = X * (t * (y - m1))[:, None]
        A[i0:i0 + k, i0:i0 + k] = -E.xtwx(X, b * (1 - t) * gp0)
        A[i1:i1 + k, i1:i1 + k] = -E.xtwx(X, b * t * gp1)
    if need_ps:
        assert e is not None
        psi[:, ib:ib + k] = X * (t - e)[:, None]
        A[ib:ib + k, ib:ib + k] = -E.xtwx(X, b * e * (1 - e))
    mw = b if meat_weight is None else meat_weight
    if clusters is None:
        S = psi * np.sqrt(mw)[:, None]
        B = S.T @ S
    else:
        codes, G = clusters
        U = np.zeros((G, d))
        for j in range(d):
            U[:, j] = np.bincount(codes, weights=b * psi[:, j], minlength=G)
        B = G / (G - 1.0) * (U.T @ U)
    Ainv = np.linalg.inv(A)
    V = (Ainv @ B @ Ainv.T)[:2, :2]
    return _Fit(mu1, mu0, V, e, beta, gam0, gam1)


# ---------------------------------------------------------------------------
# survival
# ---------------------------------------------------------------------------
def weighted_km(time: np.ndarray, event: np.ndarray, w: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Weighted Kaplan-Meier S(t) at ``at``: ``prod (1 - d_w(t_j) / n_w(t_j))`` over event times <= t,
    with ``d_w`` the weighted events and ``n_w`` the weighted number at risk (as
    ``survival_curve(weights=..., weight_type="sampling")`` and R ``survfit(weights=)``)."""
    keep = w > 0
    time, event, w = time[keep], event[keep], w[keep]
    ut, inv = np.unique(time, return_inverse=True)
    d = np.bincount(inv, weights=w * event, minlength=len(ut))
    tot = np.bincount(inv, weights=w, minlength=len(ut))
    at_risk = np.cumsum(tot[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(d > 0, 1.0 - d / at_risk, 1.0)
    S = np.cumprod(factor)
    idx = np.searchsorted(ut, at, side="right") - 1
    return np.where(idx >= 0, S[np.clip(idx, 0, None)], 1.0)


def _survival_estimate(X, t, tm, ev, b, times, estimand, ps_design, beta0=None):
    if beta0 is None:
        psf = fit_propensity(ps_design, t, weights=None if np.all(b == 1) else b)
        p, beta = psf.p, psf.beta
    else:
        fit = E.fit_mle(X, t, weights=b, beta0=beta0)
        if not fit.converged or np.max(np.abs(fit.eta)) > E.ETA_LIMIT:
            raise EstimationError("propensity model failed in a bootstrap replicate")
        p, beta = fit.p, fit.beta
    w = b * ps_weights(p, t, estimand, stabilize=False)
    s1 = weighted_km(tm[t == 1], ev[t == 1], w[t == 1], times)
    s0 = weighted_km(tm[t == 0], ev[t == 0], w[t == 0], times)
    return s1, s0, p, beta


# ---------------------------------------------------------------------------
# public function
# ---------------------------------------------------------------------------
def _outcome_kind(s: pd.Series, column: str) -> tuple[np.ndarray, bool]:
    if pd.api.types.is_bool_dtype(s.dtype):
        return np.asarray(s, dtype=float), True
    if not pd.api.types.is_numeric_dtype(s.dtype):
        raise DataValidationError(
            f"outcome: column {column!r} must be numeric (0/1 for a binary outcome, or a measurement); got dtype "
            f"{s.dtype}. Code it first, e.g. df[{column!r}] == 'yes'."
        )
    y = np.asarray(s, dtype=float)
    return y, bool(np.all((y == 0) | (y == 1)))


def _p(z: float) -> float:
    return float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else float("nan")


def treatment_effect(
    df: pd.DataFrame,
    *,
    outcome: str | None = None,
    exposure: str,
    adjust: Any = (),
    formula: str | None = None,
    estimand: Estimand = "ATE",
    method: EffectMethod = "ipw",
    weights: Any = None,
    weight_type: WeightType = "frequency",
    cluster: str | None = None,
    times: Iterable[float] | float | None = None,
    time: str | None = None,
    event: str | None = None,
    conf_level: float = 0.95,
    bootstrap: int = 0,
    seed: int | None = None,
    treated: Any = None,
) -> TreatmentEffectResult:
    """The average effect of the exposure on an outcome in a non-randomised comparison.

    Estimates the mean outcome (or risk) had everyone in the target population been
    exposed (``mean_treated``) and had no one been (``mean_control``), adjusting for the
    measured covariates, and their difference (and ratio for a binary outcome).

    Parameters
    ----------
    df
        One row per person. If it has an ``eligible`` column (a measure table), only
        eligible rows are used for a binary or numeric outcome (the others are counted in
        ``n_excluded``); a survival outcome uses every row (Kaplan-Meier handles the
        incomplete follow-up as censoring).
    outcome
        A 0/1 (or boolean) outcome -> risk difference and risk ratio; any other numeric
        outcome -> mean difference. Leave out for a survival outcome (``time``/``event``).
    exposure
        The two-group column (see :func:`propensity_score`).
    adjust, formula
        The covariates, used by the propensity model and by the outcome models (a
        formula such as ``"~ age + I(age**2) + C(risk_level)"`` gives the right-hand
        side of both).
    estimand
        ``"ATE"`` (everyone), ``"ATT"`` (people like the exposed group) or ``"ATO"``
        (the overlap population; see :func:`balancing_weights`).
    method
        ``"ipw"``: weighted means with propensity-score weights (normalised within each
        group, the Hájek estimator); ``"gcomp"``: g-computation (regression adjustment),
        an outcome model fitted in each group (linear, or logistic for a 0/1 outcome),
        predictions averaged over the target population; ``"aipw"``: augmented IPW, the
        doubly robust combination (consistent if either the propensity model or the
        outcome models are right). Survival outcomes: ``"ipw"`` only.
    weights
        Case weights (a column, a Series aligned to ``df``, or a result with ``.weights``)
        applied in every step: survey weights, or matching weights with
        ``method="gcomp"`` (with ``adjust=()``: the weighted difference in means).
    weight_type
        ``"frequency"`` (whole numbers; results equal the expanded data) or
        ``"sampling"`` (any non-negative weights; robust variance).
    cluster
        Column of clusters (e.g. matched pair or mentor) for cluster-robust standard errors
        (and cluster resampling with ``bootstrap``).
    times, time, event
        Survival outcome: the follow-up time and 0/1 event columns, and the time(s) at
        which to compare the IP-weighted Kaplan-Meier curves.
    conf_level
        Confidence level.
    bootstrap
        0 (default): robust (sandwich) standard errors and Wald intervals. ``B > 0``:
        percentile intervals from ``B`` bootstrap resamples (rows, or clusters), every
        model refitted; the standard error is the replicates' SD. Survival outcomes need
        it for intervals.
    seed
        Seed of the bootstrap.
    treated
        The value of ``exposure`` that marks the exposed group.

    Returns
    -------
    TreatmentEffectResult
        ``.table`` rows ``mean_difference`` (continuous outcome), ``risk_difference`` and
        ``risk_ratio`` (binary), or ``survival_difference`` and ``risk_ratio`` per time
        (survival: ``S_1(t) - S_0(t)`` and ``(1 - S_1(t)) / (1 - S_0(t))``), each with its
        CI, SE, z and p, the two potential-outcome means, and E-values; ``.notes`` starts
        with the E-value in plain words.

    Notes
    -----
    With ``h`` the tilting function of the estimand (ATE: 1; ATT: ``e``, or the
    exposure indicator for g-computation; ATO: ``e(1-e)``), ``e`` the propensity score
    and ``m_a(x)`` the outcome model of group ``a``:

    * IPW: ``mu_1 = Σ T (h/e) Y / Σ T (h/e)``, ``mu_0 = Σ (1-T) (h/(1-e)) Y / Σ (1-T) (h/(1-e))``;
    * g-computation: ``mu_a = Σ h m_a(x) / Σ h``;
    * AIPW: ``mu_1 = Σ [h m_1 + T (h/e)(Y - m_1)] / Σ h`` and likewise ``mu_0``
      (for ATE the estimator of Robins, Rotnitzky & Zhao 1994; for ATT/ATO the
      augmented weighting estimator of Mao, Li & Mukherjee 2019).

    Standard errors come from the stacked estimating equations (propensity model,
    outcome models, the two means): the sandwich ``A⁻¹ B A⁻ᵀ`` (HC0; with ``cluster=``
    the scores are summed within clusters and multiplied by G/(G−1)), so they account
    for estimating the propensity score and the outcome models. Without weights they
    equal statsmodels ``TreatmentEffect(...).ipw()``, ``.aipw()`` and ``.ra()`` (ATE;
    ATT with ``effect_group=1`` for IPW and RA; statsmodels documents these as Stata
    ``teffects``'s standard errors). The risk ratio's
    interval is computed on the log scale by the delta method,
    ``var(log RR) = g' V g`` with ``g = (1/mu_1, -1/mu_0)``.

    The E-value (VanderWeele & Ding 2017; see :func:`evalue`) uses the risk ratio for
    binary and survival outcomes (the risk of the event by each time) and, for a
    continuous outcome, the standardised mean difference ``d`` (the mean difference over
    the pooled within-group SD of the outcome) converted as ``RR ≈ exp(0.91 d)``.

    References
    ----------
    Hernán MA, Robins JM (2020). *Causal Inference: What If*, ch. 12-13. Lunceford JK,
    Davidian M (2004). Stratification and weighting via the propensity score in
    estimation of causal treatment effects. *Stat Med* 23:2937-2960. Mao H, Li L,
    Mukherjee B (2019). On the propensity score weighting analysis with survival
    outcome / doubly robust weighting. *Stat Methods Med Res* 28:2725-2745.

    Examples
    --------
    >>> import recoverystats as rs
    >>> sim = rs.datasets.simulate_program(800, seed=4)
    >>> d = sim.truth.latent.assign(relapsed=lambda x: (x["relapse_time"] <= 180).astype(int))
    >>> te = rs.treatment_effect(d, outcome="relapsed", exposure="group", adjust=["age", "risk_level"])
    >>> list(te.table["measure"])
    ['risk_difference', 'risk_ratio']
    """
    df = check_frame(df)
    check_option("estimand", estimand, Estimand)
    check_option("method", method, EffectMethod)
    check_option("weight_type", weight_type, WeightType)
    level = check_conf_level(conf_level)
    if not isinstance(bootstrap, (int, np.integer)) or isinstance(bootstrap, bool) or bootstrap < 0:
        raise InvalidParameterError(f"bootstrap must be a whole number >= 0 (e.g. 1000); got {bootstrap!r}.")
    bootstrap = int(bootstrap)
    if 0 < bootstrap < 100:
        raise InvalidParameterError(
            f"bootstrap={bootstrap} is too few replicates for percentile intervals; use at least 100 (1000+ advised)."
        )
    survival = time is not None or event is not None
    if survival:
        if time is None or event is None or times is None:
            raise InvalidParameterError(
                "a survival outcome needs time=, event= and times= (the follow-up times at which to compare), "
                "e.g. time='time_days', event='relapsed', times=[90, 180, 365]."
            )
        if outcome is not None:
            raise InvalidParameterError("give either outcome= or time=/event=, not both.")
        if method != "ipw":
            raise InvalidParameterError(
                f"survival outcomes are compared with IP-weighted Kaplan-Meier curves: use method='ipw' (got {method!r})."
            )
        check_columns(df, [time, event], "time/event")
    else:
        if outcome is None:
            raise InvalidParameterError("outcome: give the outcome column (or time=/event= for a survival outcome).")
        if times is not None:
            raise InvalidParameterError("times= applies to survival outcomes (time=/event=); remove it.")
        check_columns(df, [outcome], "outcome")
    n_all = len(df)
    notes: list[str] = []
    if "eligible" in df.columns and not survival:
        elig = df["eligible"].fillna(False).astype(bool)
        if not elig.all():
            notes.append(f"{int((~elig).sum())} rows not eligible (incomplete follow-up) were excluded.")
            df = df[elig.to_numpy()]
    if len(df) == 0:
        raise DataValidationError("no eligible rows to analyse.")
    ex = exposure_indicator(df, exposure, treated)
    design, used = covariate_design(df, ex=ex, adjust=adjust, formula=formula, func="treatment_effect")
    X, t = design.X, ex.t
    n = len(t)
    b = resolve_weights(df, weights)
    if b is not None and weight_type == "frequency":
        frac = np.abs(b - np.round(b)) > 1e-9
        if frac.any():
            raise InvalidParameterError(
                f"frequency weights must be whole numbers (found {b[frac][0]!r}); balancing or matching weights "
                "are sampling weights: pass weight_type='sampling'."
            )
    bw = np.ones(n) if b is None else b
    meat = None if b is None else (bw if weight_type == "frequency" else bw * bw)
    clusters = None
    if cluster is not None:
        check_columns(df, [cluster], "cluster")
        cl = df[cluster]
        if cl.isna().any():
            raise DataValidationError(
                f"cluster: column {cluster!r} has {int(cl.isna().sum())} missing value(s); give every row a cluster "
                "(unmatched people their own)."
            )
        codes, uniq = pd.factorize(cl)
        clusters = (codes.astype(np.intp), len(uniq))
        if len(uniq) < 2:
            raise DataValidationError(f"cluster: column {cluster!r} has a single cluster; robust SEs need several.")

    # overlap diagnostics (the propensity model every PS-based method uses)
    if method != "gcomp" or estimand == "ATO" or survival:
        psf = fit_propensity(design, t, weights=None if b is None else bw, ex=ex)
        notes += psf.notes
        ot, support, share = overlap_table(psf.p, t, ex)
        notes += overlap_notes(ot, support, share)

    z = float(stats.norm.ppf(0.5 + level / 2))
    rng = np.random.default_rng(seed)
    if survival:
        tm = pd.to_numeric(df[time], errors="coerce").to_numpy(dtype=float)
        evv = df[event]
        ev = np.asarray(evv, dtype=float) if (pd.api.types.is_numeric_dtype(evv) or pd.api.types.is_bool_dtype(evv)) \
            else np.full(n, np.nan)
        bad = np.isnan(tm) | np.isnan(ev) | ~np.isin(ev, (0.0, 1.0)) | (tm < 0)
        if bad.any():
            raise DataValidationError(
                f"time/event: {int(bad.sum())} row(s) have a missing or negative {time!r} or an {event!r} that is not "
                f"0/1 (first at row {df.index[int(np.flatnonzero(bad)[0])]!r}); fix or drop them."
            )
        at = np.atleast_1d(np.asarray(times, dtype=float))
        if (at < 0).any() or not np.all(np.isfinite(at)):
            raise InvalidParameterError(f"times must be non-negative numbers; got {times!r}.")
        s1, s0, _, beta = _survival_estimate(X, t, tm, ev, bw, at, estimand, design)
        rows = []
        reps_d = reps_r = None
        if bootstrap:
            D, R, fails = [], [], 0
            for _ in range(bootstrap):
                idx = _resample(rng, n, clusters)
                try:
                    r1, r0, _, _ = _survival_estimate(X[idx], t[idx], tm[idx], ev[idx], bw[idx], at, estimand,
                                                      None, beta0=beta)
                except (EstimationError, DataValidationError, np.linalg.LinAlgError):
                    fails += 1
                    continue
                D.append(r1 - r0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    R.append(np.log((1 - r1) / (1 - r0)))
            _check_fails(fails, bootstrap, notes)
            reps_d, reps_r = np.array(D), np.array(R)
        else:
            notes.append("No confidence intervals: survival comparisons need bootstrap= (e.g. bootstrap=1000).")
        a = (1 - level) / 2
        for j, tt in enumerate(at):
            diff = float(s1[j] - s0[j])
            with np.errstate(divide="ignore", invalid="ignore"):
                rr = float((1 - s1[j]) / (1 - s0[j]))
            lo = hi = se = rlo = rhi = rse = float("nan")
            if reps_d is not None:
                lo, hi = np.quantile(reps_d[:, j], [a, 1 - a])
                se = float(reps_d[:, j].std(ddof=1))
                rj = reps_r[:, j][np.isfinite(reps_r[:, j])]
                if len(rj) > 10:
                    rlo, rhi = np.exp(np.quantile(rj, [a, 1 - a]))
                    rse = float(rj.std(ddof=1))
            e_pt = evalue_rr(rr)
            e_ci = evalue_ci_rr(rr, rlo, rhi)
            rows.append(dict(measure="survival_difference", time=float(tt), estimate=diff, ci_lower=float(lo),
                             ci_upper=float(hi), std_error=se, statistic=diff / se, p_value=_p(diff / se),
                             mean_treated=float(s1[j]), mean_control=float(s0[j]), evalue=e_pt, evalue_ci=e_ci))
            lrr = np.log(rr) if rr > 0 else float("nan")
            rows.append(dict(measure="risk_ratio", time=float(tt), estimate=rr, ci_lower=float(rlo),
                             ci_upper=float(rhi), std_error=rse, statistic=lrr / rse, p_value=_p(lrr / rse),
                             mean_treated=float(1 - s1[j]), mean_control=float(1 - s0[j]), evalue=e_pt,
                             evalue_ci=e_ci))
        table = pd.DataFrame(rows)
        first = table.iloc[1]
        sentence = evalue_sentence(first["evalue"], first["evalue_ci"], exposure=f"{ex.column}",
                                   outcome=f"{event} by time {first['time']:g}")
        return _result(table, level, method, estimand, "bootstrap" if bootstrap else "none", "survival", n,
                       n_all - n, [sentence] + notes, ex, event, bootstrap, pd.DataFrame())

    # -- binary / continuous outcome
    ycol = df[outcome]
    if ycol.isna().any():
        raise DataValidationError(
            f"outcome: column {outcome!r} has {int(ycol.isna().sum())} missing value(s). Drop those rows "
            f"(df.dropna(subset=[{outcome!r}])) — and consider follow-up weights or imputation if many are missing."
        )
    y, binary = _outcome_kind(ycol, outcome)
    kw = dict(estimand=estimand, method=method, binary=binary, names=design.names, ps_design=design)
    fit = _estimate(X, t, y, bw, variance=True, meat_weight=meat, clusters=clusters, notes=notes, **kw)
    mu1, mu0 = fit.mu1, fit.mu0
    V = fit.V
    assert V is not None
    g_rd = np.array([1.0, -1.0])
    se_rd = float(np.sqrt(g_rd @ V @ g_rd))
    rr = mu1 / mu0 if mu0 > 0 else float("nan")
    se_lrr = float("nan")
    if binary and mu1 > 0 and mu0 > 0:
        g = np.array([1 / mu1, -1 / mu0])
        se_lrr = float(np.sqrt(g @ V @ g))
    ci_method = "robust"
    rd = mu1 - mu0
    rd_lo, rd_hi = rd - z * se_rd, rd + z * se_rd
    lrr = float(np.log(rr)) if binary and rr > 0 else float("nan")
    rr_lo, rr_hi = float(np.exp(lrr - z * se_lrr)), float(np.exp(lrr + z * se_lrr))
    if bootstrap:
        ci_method = "bootstrap"
        D, LR, fails = [], [], 0
        for _ in range(bootstrap):
            idx = _resample(rng, n, clusters)
            try:
                # notes=[]: a separated outcome model is fitted by Firth in a replicate as in the estimate
                f = _estimate(X[idx], t[idx], y[idx], bw[idx], variance=False, start=fit, notes=[], **kw)
            except (EstimationError, DataValidationError, np.linalg.LinAlgError):
                fails += 1
                continue
            D.append(f.mu1 - f.mu0)
            if binary and f.mu1 > 0 and f.mu0 > 0:
                LR.append(np.log(f.mu1 / f.mu0))
        _check_fails(fails, bootstrap, notes)
        a = (1 - level) / 2
        Da = np.array(D)
        rd_lo, rd_hi = (float(v) for v in np.quantile(Da, [a, 1 - a]))
        se_rd = float(Da.std(ddof=1))
        if binary and LR:
            La = np.array(LR)
            rr_lo, rr_hi = (float(np.exp(v)) for v in np.quantile(La, [a, 1 - a]))
            se_lrr = float(La.std(ddof=1))
    rows = []
    if binary:
        e_pt = evalue_rr(rr)
        e_ci = evalue_ci_rr(rr, rr_lo, rr_hi)
        rows.append(dict(measure="risk_difference", time=float("nan"), estimate=rd, ci_lower=rd_lo, ci_upper=rd_hi,
                         std_error=se_rd, statistic=rd / se_rd, p_value=_p(rd / se_rd), mean_treated=mu1,
                         mean_control=mu0, evalue=e_pt, evalue_ci=e_ci))
        rows.append(dict(measure="risk_ratio", time=float("nan"), estimate=rr, ci_lower=rr_lo, ci_upper=rr_hi,
                         std_error=se_lrr, statistic=lrr / se_lrr, p_value=_p(lrr / se_lrr), mean_treated=mu1,
                         mean_control=mu0, evalue=e_pt, evalue_ci=e_ci))
        approx = ""
    else:
        sd = _pooled_sd(y, t)
        rr_d = np.exp(SMD_TO_LOG_RR * rd / sd)
        e_pt = evalue_rr(rr_d)
        e_ci = evalue_ci_rr(rr_d, np.exp(SMD_TO_LOG_RR * rd_lo / sd), np.exp(SMD_TO_LOG_RR * rd_hi / sd))
        rows.append(dict(measure="mean_difference", time=float("nan"), estimate=rd, ci_lower=rd_lo, ci_upper=rd_hi,
                         std_error=se_rd, statistic=rd / se_rd, p_value=_p(rd / se_rd), mean_treated=mu1,
                         mean_control=mu0, evalue=e_pt, evalue_ci=e_ci))
        approx = (f"(For a continuous outcome the mean difference is standardised by the outcome's pooled SD, "
                  f"{sd:.3g}, and converted as RR ≈ exp(0.91 d).)")
    table = pd.DataFrame(rows)
    sentence = evalue_sentence(e_pt, e_ci, exposure=f"{ex.column}", outcome=outcome, approx=approx)
    vcov = pd.DataFrame(V, index=["mean_treated", "mean_control"], columns=["mean_treated", "mean_control"])
    if cluster is not None:
        notes.append(f"Standard errors are cluster-robust by {cluster!r} ({clusters[1]} clusters).")
    return _result(table, level, method, estimand, ci_method, "binary" if binary else "continuous", n, n_all - n,
                   [sentence] + notes, ex, outcome, bootstrap, vcov if not bootstrap else pd.DataFrame())


def _pooled_sd(y: np.ndarray, t: np.ndarray) -> float:
    y1, y0 = y[t == 1], y[t == 0]
    ss = ((y1 - y1.mean()) ** 2).sum() + ((y0 - y0.mean()) ** 2).sum()
    return float(np.sqrt(ss / (len(y) - 2)))


def _resample(rng: np.random.Generator, n: int, clusters: tuple[np.ndarray, int] | None) -> np.ndarray:
    if clusters is None:
        return rng.integers(0, n, n)
    codes, G = clusters
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(G + 1))
    pick = rng.integers(0, G, G)
    return np.concatenate([order[bounds[g]:bounds[g + 1]] for g in pick])


def _check_fails(fails: int, B: int, notes: list[str]) -> None:
    if fails > MAX_FAILED_BOOT * B:
        raise EstimationError(
            f"{fails} of {B} bootstrap replicates could not be estimated (models failed to converge in resamples, "
            "usually sparse covariate levels or poor overlap); use robust intervals (bootstrap=0) or fewer covariates."
        )
    if fails:
        notes.append(f"{fails} of {B} bootstrap replicates failed (a model could not be fitted in the resample) and were left out.")


_METHOD_NAMES = {
    "ipw": "inverse probability weighting",
    "aipw": "augmented inverse probability weighting (doubly robust)",
    "gcomp": "g-computation (regression adjustment)",
}


def _result(table, level, method, estimand, ci_method, kind, n, n_exc, notes, ex: Exposure, outcome, B, vcov):
    return TreatmentEffectResult(
        _table=table,
        conf_level=level,
        method=f"{_METHOD_NAMES[method]}, {estimand}",
        n_used=n,
        n_excluded=n_exc,
        notes=tuple(notes),
        outcome=str(outcome),
        exposure=ex.column,
        treated=ex.treated,
        control=ex.control,
        estimand=estimand,
        estimator=method,
        ci_method=ci_method,
        outcome_type=kind,
        n_boot=B,
        evalue_note=notes[0],
        _vcov=vcov,
    )
