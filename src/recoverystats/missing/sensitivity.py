"""Sensitivity analysis for outcomes missing not at random: :func:`tipping_point`.

Delta adjustment (pattern-mixture) for a binary outcome: the non-responders' outcomes are
imputed from the responders' logistic model (missing at random, MAR) with their
log-odds shifted by ``delta`` in each arm; the analysis is repeated over a grid of
shifts and pooled by Rubin's rules, and the shifts at which the conclusion changes are
reported (the "tipping point").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import linalg, stats
from scipy.special import expit

from recoverystats._checks import as_column_list, check_columns, check_conf_level, check_option
from recoverystats._design import build_design, model_spec
from recoverystats.errors import DataValidationError, EstimationError, InvalidParameterError
from recoverystats.missing.attrition import followed_up_indicator
from recoverystats.regression import _engine as E
from recoverystats.results.attrition import TippingPointResult

__all__ = ["tipping_point", "DEFAULT_DELTAS"]

Scale = Literal["or", "rd"]
#: Default grid of log-odds shifts (odds multipliers 0.14 to 7.4), used for both arms.
DEFAULT_DELTAS: tuple[float, ...] = tuple(np.round(np.arange(-2.0, 2.0001, 0.25), 2))
#: Precision of the tipping points on the log-odds scale (bisection between grid points).
TIPPING_TOL = 0.01
#: Largest |linear predictor| accepted from a maximum-likelihood fit (beyond: separation).
MAX_ETA = 30.0


@dataclass
class _Arm:
    """The non-responders of one arm in one imputation: linear predictor and uniforms."""

    rows: np.ndarray  # positions of the arm's non-responders
    eta: np.ndarray  # MAR log-odds of the event (posterior draw of the imputation model)
    u: np.ndarray  # Uniform(0, 1) draws: y = 1[u < expit(eta + delta)] (common random numbers)


@dataclass
class _Imputation:
    X: np.ndarray  # analysis design matrix
    X1: np.ndarray | None  # counterfactual designs (risk difference)
    X0: np.ndarray | None
    y: np.ndarray  # observed outcomes (0 at the missing rows, overwritten per scenario)
    arms: tuple[_Arm, _Arm]  # (exposed, reference)


def _rubin(q: np.ndarray, u: np.ndarray, dfcom: float) -> dict[str, float]:
    """Rubin's rules for one scalar (:func:`recoverystats.missing.pooling.rubin`: Barnard-Rubin
    df, fmi as mice); a single data set (``m = 1``) keeps its model variance and a normal reference."""
    from recoverystats.missing.pooling import rubin

    if len(q) == 1:
        return {"estimate": float(q[0]), "variance": float(u[0]), "df": np.inf, "riv": 0.0, "fmi": 0.0}
    r = rubin(np.asarray(q, float)[:, None], np.asarray(u, float)[:, None], dfcom=dfcom)
    return {"estimate": float(r["qbar"][0]), "variance": float(r["t"][0]), "df": float(r["df"][0]),
            "riv": float(r["riv"][0]), "fmi": float(r["fmi"][0])}


def _check_deltas(deltas: Any) -> tuple[np.ndarray, np.ndarray]:
    if deltas is None:
        d = np.array(DEFAULT_DELTAS, float)
        return d, d.copy()

    def one(v: Any, what: str) -> np.ndarray:
        try:
            arr = np.asarray(v, dtype=float).ravel()
        except (TypeError, ValueError):
            arr = np.array([np.nan])
        if arr.size < 2 or not np.isfinite(arr).all():
            raise InvalidParameterError(
                f"deltas{what} must be a sequence of at least two finite log-odds shifts, e.g. "
                f"numpy.arange(-2, 2.01, 0.25); got {v!r}."
            )
        return np.unique(np.append(arr, 0.0))

    if isinstance(deltas, tuple) and len(deltas) == 2 and all(np.ndim(x) == 1 for x in deltas):
        return one(deltas[0], "[0] (exposed)"), one(deltas[1], "[1] (reference)")
    d = one(deltas, "")
    return d, d.copy()


def _fit(X: np.ndarray, y: np.ndarray, beta0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    fit = E.fit_mle(X, y, beta0=beta0)
    if not fit.converged or not np.all(np.isfinite(fit.beta)) or np.max(np.abs(fit.eta)) > MAX_ETA:
        raise EstimationError(
            "tipping_point: the analysis model did not converge for a completed data set (separation: "
            "with extreme shifts every non-responder of a small group gets the same outcome). Use a "
            "narrower deltas range or fewer covariates in adjust."
        )
    return fit.beta, fit.cov


#: Newton steps of the batched fit before falling back to the engine's fit one data set at a time.
BATCH_MAX_ITER = 30


def _information(X: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fitted probabilities (m, n), linear predictors and information ``X'WX`` (m, k, k) of
    the m fits; ``X`` is (m, n, k) or (1, n, k) (one design shared by every data set)."""
    eta = np.einsum("mnk,mk->mn", X, B) if X.shape[0] > 1 else B @ X[0].T
    P = expit(eta)
    XW = X * (P * (1.0 - P))[:, :, None]
    return P, eta, np.matmul(XW.transpose(0, 2, 1), X)


def _fit_batch(X: np.ndarray, Y: np.ndarray, B0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logistic MLE of the m completed data sets at once: ``X`` (m or 1, n, k), ``Y`` (m, n).

    Plain Newton-Raphson from the warm start ``B0`` (m, k) on all data sets together (one
    batched ``X'WX`` and solve per step; the fits share no parameters), converged when the
    largest step is below the engine's tolerance; the covariance is the inverse information
    at the estimate, as :func:`recoverystats.regression._engine.fit_mle`. If the batch does
    not converge (or drifts towards separation) each data set is refitted by ``fit_mle`` with
    its step-halving, which raises ``EstimationError`` when that fails too.
    """
    m = Y.shape[0]
    B = B0.copy()
    ok = False
    for _ in range(BATCH_MAX_ITER):
        P, _eta, H = _information(X, B)
        G = np.einsum("mnk,mn->mk", np.broadcast_to(X, (m, *X.shape[1:])), Y - P)
        try:
            step = np.linalg.solve(H, G[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            break
        B = B + step
        if not np.all(np.isfinite(B)):
            break
        if np.max(np.abs(step)) <= E.STEP_TOL * (1.0 + np.max(np.abs(B))):
            ok = True
            break
    if ok:
        _P, eta, H = _information(X, B)
        if np.max(np.abs(eta)) <= MAX_ETA:
            try:
                return B, np.linalg.inv(H)
            except np.linalg.LinAlgError:
                pass
    fits = [_fit(X[i] if X.shape[0] > 1 else X[0], Y[i], B0[i]) for i in range(m)]
    return np.array([f[0] for f in fits]), np.array([f[1] for f in fits])


def _effects(X1: np.ndarray | None, X0: np.ndarray | None, B: np.ndarray, C: np.ndarray, j: int,
             scale: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-data-set estimate and variance: the log OR of design column ``j``, or the
    g-computation risk difference with its delta-method variance (``X1``/``X0``: the
    counterfactual designs, (m or 1, n, k))."""
    if scale == "or":
        return B[:, j].copy(), C[:, j, j].copy()
    assert X1 is not None and X0 is not None
    m = B.shape[0]
    q, u = np.empty(m), np.empty(m)
    for i in range(m):
        x1 = X1[i] if X1.shape[0] > 1 else X1[0]
        x0 = X0[i] if X0.shape[0] > 1 else X0[0]
        p1, p0 = expit(x1 @ B[i]), expit(x0 @ B[i])
        g = ((p1 * (1 - p1))[:, None] * x1).mean(axis=0) - ((p0 * (1 - p0))[:, None] * x0).mean(axis=0)
        q[i], u[i] = p1.mean() - p0.mean(), g @ C[i] @ g
    return q, u


def _imputation_model(Z: np.ndarray, y: np.ndarray, obs: np.ndarray, rng: np.random.Generator, label: str,
                      notes: list[str]) -> np.ndarray:
    """A posterior draw of the responders' logistic model (mice ``logreg``): beta* ~ N(b, V)."""
    Zo, yo = Z[obs], y[obs]
    keep = np.ones(Z.shape[1], dtype=bool)
    keep[1:] = Zo[:, 1:].std(axis=0) > 0  # column 0 is the intercept
    Zk = Zo[:, keep]
    if yo.sum() in (0, len(yo)):
        raise EstimationError(
            f"tipping_point: every responder in the {label} group has outcome {int(yo[0]) if len(yo) else 0}; "
            "the imputation model cannot be estimated there."
        )
    fit = E.fit_mle(Zk, yo)
    if not fit.converged or np.max(np.abs(fit.eta)) > MAX_ETA or not np.all(np.isfinite(fit.cov)):
        fit = E.fit_firth(Zk, yo)
        msg = f"Imputation model of the {label} group: separation, Firth's penalised likelihood used."
        if msg not in notes:
            notes.append(msg)
    try:
        L = linalg.cholesky(fit.cov, lower=True)
    except linalg.LinAlgError:
        raise EstimationError(
            f"tipping_point: the imputation model of the {label} group is singular (collinear covariates among "
            "its responders); remove one of the collinear covariates from adjust/auxiliary."
        ) from None
    beta = np.zeros(Z.shape[1])
    beta[keep] = fit.beta + L @ rng.standard_normal(int(keep.sum()))
    return beta


def tipping_point(
    data: Any,
    *,
    outcome: str,
    exposure: str,
    deltas: Sequence[float] | tuple[Sequence[float], Sequence[float]] | None = None,
    adjust: str | Iterable[str] = (),
    auxiliary: str | Iterable[str] = (),
    reference: Any = None,
    scale: Scale = "or",
    m: int | None = None,
    seed: int | None = None,
    conf_level: float = 0.95,
    label: str | None = None,
) -> TippingPointResult:
    """Tipping-point (delta-adjusted multiple imputation) analysis of a binary outcome.

    How different would the participants who were not followed up have to be for the
    conclusion to change? The missing outcomes are imputed under MAR from the responders'
    logistic model, then their log-odds are shifted by ``delta_exposed`` in the exposed
    group and ``delta_reference`` in the reference group; each completed data set is
    analysed (logistic model of ``outcome`` on ``exposure`` and ``adjust``) and the
    results are pooled by Rubin's rules, for every pair of shifts in the grid.

    Parameters
    ----------
    data
        One row per participant, with the outcome missing (NaN) for non-responders;
        or an ``ImputedData`` (:func:`recoverystats.missing.impute`) whose completed
        data sets give the covariates (the outcome is re-imputed here from the rows that
        were missing in the original data). A frame with an ``eligible`` column is
        restricted to eligible rows. Missing covariate values in a frame are imputed
        first by :func:`recoverystats.missing.impute` (``m``, ``seed``; outcome, exposure,
        ``adjust`` and ``auxiliary`` in the model; noted).
    outcome
        The 0/1 outcome (e.g. ``"relapsed"``), missing for non-responders.
    exposure
        The two-level group column; no missing values.
    deltas
        Log-odds shifts for both arms (default ``-2, -1.75, ..., 2``: odds multipliers
        0.14 to 7.4), or a pair ``(deltas_exposed, deltas_reference)``. 0 is always
        added (the MAR analysis).
    adjust
        Covariates of the analysis model (and of the imputation model).
    auxiliary
        Further variables for the imputation model only (predictors of the outcome or of
        response that are not in the analysis model).
    reference
        The reference level of ``exposure`` (default: as :func:`recoverystats.odds_ratios`).
    scale
        ``"or"`` (default): the adjusted odds ratio of the exposure; ``"rd"``: the risk
        difference by g-computation (marginal standardisation, delta-method variance).
    m
        Imputations per grid cell (default 20; at least 2). With an ``ImputedData``, its
        ``m`` (leave ``m`` out).
    seed
        Seed of the random draws; the same seed gives the same result. ``None`` draws
        one from the operating system and records it in ``.seed``.
    conf_level
        Confidence level; "significant" means the interval excludes the null value.
    label
        Words for the outcome in ``.text`` (e.g. ``"relapse"``; default the column name).

    Returns
    -------
    TippingPointResult
        ``.table`` (the grid, then the deterministic bounds), ``.tipping`` (the shift of
        each arm alone at which the conclusion changes), ``.mar``,
        ``.complete_case``, ``.text`` (plain words), ``.plot()`` (heat map with the
        tipping boundary).

    Raises
    ------
    InvalidParameterError
        Unknown columns, a bad ``deltas``/``m``/``scale``, an exposure without exactly
        two levels.
    DataValidationError
        Outcome not 0/1, no missing outcomes, missing exposure values, covariates still
        missing in an ``ImputedData`` (not among its imputed columns).
    EstimationError
        A model that cannot be fitted (an arm whose responders all have the same
        outcome; separation in a completed data set).

    Notes
    -----
    Imputation model: in each arm separately (so the covariate effects may differ by
    arm), ``logit P(Y = 1 | z) = z'b`` fitted on the responders, with ``z`` = ``adjust``
    + ``auxiliary``; for each imputation a draw ``b* ~ N(b̂, V̂)`` (the normal
    approximation to the posterior, as R ``mice.impute.logreg``) and, for each
    non-responder, ``Y = 1[U < expit(z'b* + delta_arm)]``. The same ``b*`` and ``U`` are
    used for every grid cell (common random numbers), so the surface is monotone in each
    delta and the tipping points are not blurred by Monte Carlo noise. ``delta`` is the
    log of the ratio of the odds of the outcome of a non-responder to that of a
    responder with the same covariates in the same arm (Carpenter & Kenward 2013,
    ch. 10; SAS ``PROC MI ... MNAR ADJUST(y (event='1') / SHIFT = delta)``).
    Pooling: Rubin's rules on the log odds ratio (or the risk difference) with the
    Barnard-Rubin degrees of freedom (complete-data df ``n - k``).

    Tipping points: along each arm's axis (the other arm at MAR) the smallest shift, in
    either direction, at which the conclusion changes: a significant effect loses
    significance or changes sign, a non-significant one becomes significant; located by
    bisection between grid points to ``TIPPING_TOL`` (0.01) on the log-odds scale.

    Deterministic bounds (single imputation, not pooled over draws; with covariates from
    an ``ImputedData`` pooled over its data sets): every non-responder with the event,
    none with it, and the two mixed cases (event in one arm only): the best and worst
    cases (Horowitz & Manski 2000 bounds on the observed data).

    References
    ----------
    Carpenter JR, Kenward MG (2013). *Multiple Imputation and its Application*. Wiley,
    ch. 10.
    Ratitch B, O'Kelly M, Tosiello R (2013). Missing data in clinical trials: from
    clinical assumptions to statistical analysis using pattern mixture models. Pharm
    Stat 12:337-347.
    Leacy FP, Floyd S, Yates TA, White IR (2017). Analyses of sensitivity to the missing-
    at-random assumption using multiple imputation with delta adjustment: application to
    a tuberculosis/HIV prevalence survey with incomplete HIV-status data. Am J Epidemiol
    185:304-315.
    Barnard J, Rubin DB (1999). Small-sample degrees of freedom with multiple
    imputation. Biometrika 86:948-955.
    """
    level = check_conf_level(conf_level)
    check_option("scale", scale, Scale)
    if m is not None and (isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 2):
        raise InvalidParameterError(f"m must be a whole number of imputations >= 2 (e.g. 20); got {m!r}.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InvalidParameterError(f"seed must be None or a non-negative whole number; got {seed!r}.")
    if not isinstance(outcome, str) or not isinstance(exposure, str):
        raise InvalidParameterError(
            f"outcome and exposure must be column names; got outcome={outcome!r}, exposure={exposure!r}."
        )
    d_exp, d_ref = _check_deltas(deltas)
    adjust_cols = as_column_list(adjust)
    aux_cols = [c for c in as_column_list(auxiliary) if c not in adjust_cols]
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    notes: list[str] = []

    frames, y_obs, n_excl, imputed_notes = _completed_frames(data, outcome, exposure, adjust_cols, aux_cols, m,
                                                             seed)
    notes += imputed_notes
    df0 = frames[0]
    y_raw = y_obs
    obs = ~np.isnan(y_raw)
    n_miss = int((~obs).sum())
    if n_miss == 0:
        raise DataValidationError(
            f"outcome: column {outcome!r} has no missing values; there is nothing to impute (the complete-data "
            "analysis is odds_ratios())."
        )
    if obs.sum() == 0:
        raise DataValidationError(f"outcome: column {outcome!r} is missing for every row.")
    spec = model_spec(df0, func="tipping_point", exposure=exposure, adjust=adjust_cols,
                      reference=None if reference is None else {exposure: reference})
    levels = pd.unique(df0[exposure])
    if len(levels) != 2:
        raise InvalidParameterError(
            f"exposure: column {exposure!r} must have exactly two levels for a tipping-point analysis; found "
            f"{len(levels)} ({', '.join(map(repr, list(levels)[:6]))}). Subset the data to two groups."
        )
    y_fill = np.where(obs, y_raw, 0.0)
    rng = np.random.default_rng(seed)
    imps: list[_Imputation] = []
    exp_levels: tuple[Any, ...] = ()
    j_exp = 0
    k = 0
    for f in frames:
        design = build_design(f, spec)
        exp_levels = design.exposure_levels
        j_exp = design.exposure_terms[0].columns[0]
        k = design.X.shape[1]
        X1 = X0 = None
        if scale == "rd":
            X1, X0 = design.counterfactual(exp_levels[1]), design.counterfactual(exp_levels[0])
        arm_exp = (f[exposure] == exp_levels[1]).to_numpy(dtype=bool)
        zcols = adjust_cols + aux_cols
        Z = (build_design(f, model_spec(f, func="tipping_point", adjust=zcols)).X if zcols
             else np.ones((len(f), 1)))
        arms = []
        for arm_label, in_arm in ((str(exp_levels[1]), arm_exp), (str(exp_levels[0]), ~arm_exp)):
            rows = np.flatnonzero(in_arm & ~obs)
            b = _imputation_model(Z[in_arm], y_fill[in_arm], obs[in_arm], rng, arm_label, notes)
            arms.append(_Arm(rows=rows, eta=Z[rows] @ b, u=rng.random(rows.size)))
        imps.append(_Imputation(X=design.X, X1=X1, X0=X0, y=y_fill.copy(), arms=(arms[0], arms[1])))
    exposed, ref_level = exp_levels[1], exp_levels[0]
    n = len(df0)
    dfcom = float(n - k)
    crit_alpha = 1.0 - level
    shared = all(f is frames[0] for f in frames)  # complete covariates: one design for every data set
    Xs = np.stack([imps[0].X] if shared else [imp.X for imp in imps])
    X1s = X0s = None
    if scale == "rd":
        X1s = np.stack([imps[0].X1] if shared else [imp.X1 for imp in imps])
        X0s = np.stack([imps[0].X0] if shared else [imp.X0 for imp in imps])
    B_mar: list[np.ndarray] = []

    def pooled(de: float, dr: float, mode: str = "delta", which: slice = slice(None)) -> dict[str, float]:
        sel = imps[which]
        Y = np.stack([imp.y for imp in sel])
        for i, imp in enumerate(sel):
            for arm, dl in zip(imp.arms, (de, dr), strict=True):
                if mode == "delta":
                    Y[i, arm.rows] = (arm.u < expit(arm.eta + dl)).astype(float)
                else:  # deterministic: dl is the value given to every non-responder
                    Y[i, arm.rows] = dl
        X = Xs if shared else Xs[which]
        B0 = B_mar[0][which] if B_mar else np.zeros((len(sel), Xs.shape[2]))
        B, C = _fit_batch(X, Y, B0)
        if mode == "delta" and de == 0.0 and dr == 0.0 and not B_mar:
            B_mar.append(B)
        x1 = None if X1s is None else (X1s if shared else X1s[which])
        x0 = None if X0s is None else (X0s if shared else X0s[which])
        qs, us = _effects(x1, x0, B, C, j_exp, scale)
        if mode == "delta" or (len(sel) > 1 and _varies(list(qs))):
            r = _rubin(qs, us, dfcom)
        else:
            r = {"estimate": float(np.mean(qs)), "variance": float(np.mean(us)), "df": np.inf, "riv": 0.0,
                 "fmi": 0.0}
        return _finish(r, level, scale)

    mar = pooled(0.0, 0.0)
    state_mar = _state(mar, crit_alpha, scale)
    rows = []
    for de in d_exp:
        for dr in d_ref:
            r = mar if (de == 0.0 and dr == 0.0) else pooled(float(de), float(dr))
            rows.append({"scenario": "delta", "delta_exposed": float(de), "delta_reference": float(dr), **r})
    bounds = [("all_event", 1.0, 1.0), ("no_event", 0.0, 0.0), ("event_exposed_only", 1.0, 0.0),
              ("event_reference_only", 0.0, 1.0)]
    # the deterministic bounds: with complete covariates every data set is the same, so one fit
    which = slice(0, 1) if shared else slice(None)
    for name, ve, vr in bounds:
        try:
            r = pooled(ve, vr, mode="fixed", which=which)
        except EstimationError as exc:
            notes.append(f"Bound {name!r} not estimated: {exc}")
            r = _finish({"estimate": np.nan, "variance": np.nan, "df": np.inf, "riv": np.nan, "fmi": np.nan},
                        level, scale)
        rows.append({"scenario": name, "delta_exposed": np.nan, "delta_reference": np.nan, **r})
    table = pd.DataFrame(rows)
    table.insert(3, "odds_multiplier_exposed", np.exp(table["delta_exposed"]))
    table.insert(4, "odds_multiplier_reference", np.exp(table["delta_reference"]))
    states = [_state(r, crit_alpha, scale) for r in table.to_dict("records")]
    table["significant"] = table["p_value"] < crit_alpha
    table["changes_conclusion"] = [s != state_mar if np.isfinite(p) else False
                                   for s, p in zip(states, table["p_value"], strict=True)]

    # -- tipping points along each axis: bisection between grid points -----------------------
    tip_rows = []
    for arm, grid in (("exposed", d_exp), ("reference", d_ref)):
        for direction, side in (("higher", grid[grid > 0]), ("lower", grid[grid < 0][::-1])):
            def at(dl: float, arm: str = arm) -> dict[str, float]:
                return pooled(dl, 0.0) if arm == "exposed" else pooled(0.0, dl)

            found = np.nan
            last = 0.0
            for dl in side:
                if _state(at(float(dl)), crit_alpha, scale) != state_mar:
                    lo, hi = last, float(dl)
                    while abs(hi - lo) > TIPPING_TOL:
                        mid = (lo + hi) / 2.0
                        if _state(at(mid), crit_alpha, scale) != state_mar:
                            hi = mid
                        else:
                            lo = mid
                    found = hi
                    break
                last = float(dl)
            tip_rows.append({"arm": arm, "direction": direction, "delta": found,
                             "odds_multiplier": float(np.exp(found)), "found": bool(np.isfinite(found)),
                             "searched_to": float(side[-1]) if len(side) else 0.0})
    tipping = pd.DataFrame(tip_rows)

    # -- complete-case analysis ----------------------------------------------------------------
    cc = _complete_case(df0.assign(**{outcome: y_raw}), outcome, exposure, adjust_cols, reference, level, scale,
                        notes)
    est_name = "odds ratio" if scale == "or" else "risk difference"
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise InvalidParameterError(f"label must be None or non-empty text (words for the outcome); got {label!r}.")
    text = _plain_words(mar, cc, tipping, table, est_name=est_name, outcome=label or outcome, exposed=str(exposed),
                        reference=str(ref_level), level=level, scale=scale, state_mar=state_mar)
    mar_t = pd.DataFrame([{"analysis": "multiple imputation (MAR)", **mar}])
    notes.append(f"{n_miss} of {n} outcomes missing ({int((~obs & (df0[exposure] == exposed).to_numpy()).sum())} "
                 f"in {exposed!s}, {int((~obs & (df0[exposure] == ref_level).to_numpy()).sum())} in {ref_level!s}); "
                 f"m = {len(frames)} imputations per scenario, seed {seed}.")
    return TippingPointResult(
        _table=table,
        conf_level=level,
        method=("delta-adjusted multiple imputation (logistic imputation model per arm, shift of the "
                "non-responders' log-odds), Rubin's rules"),
        n_used=n,
        n_excluded=n_excl,
        notes=tuple(notes),
        outcome=outcome,
        exposure=exposure,
        exposed=str(exposed),
        reference=str(ref_level),
        scale=scale,
        m=len(frames),
        seed=int(seed),
        n_missing_exposed=int((~obs & (df0[exposure] == exposed).to_numpy()).sum()),
        n_missing_reference=int((~obs & (df0[exposure] == ref_level).to_numpy()).sum()),
        text=text,
        _tipping=tipping,
        _mar=mar_t,
        _complete_case=cc,
    )


def _varies(q: list[float]) -> bool:
    return bool(np.ptp(np.asarray(q)) > 0)


def _finish(r: dict[str, float], level: float, scale: str) -> dict[str, float]:
    """Estimate, CI (t on the Barnard-Rubin df), SE, p on the reporting scale."""
    q, v, df = r["estimate"], r["variance"], r["df"]
    se = float(np.sqrt(v)) if np.isfinite(v) and v >= 0 else np.nan
    dist = stats.norm if not np.isfinite(df) else stats.t(df)
    crit = float(dist.ppf(1 - (1 - level) / 2))
    lo, hi = q - crit * se, q + crit * se
    p = float(2 * dist.sf(abs(q / se))) if se and np.isfinite(se) and se > 0 else np.nan
    if scale == "or":
        est, lo, hi = np.exp(q), np.exp(lo), np.exp(hi)
    else:
        est = q
    return {"estimate": float(est), "ci_lower": float(lo), "ci_upper": float(hi), "std_error": se,
            "p_value": p, "df": float(df), "fmi": float(r.get("fmi", np.nan))}


def _state(r: dict[str, Any], alpha: float, scale: str) -> int:
    """+1 / -1: significant above / below the null; 0: not significant."""
    p = r["p_value"]
    if not np.isfinite(p) or p >= alpha:
        return 0
    est = np.log(r["estimate"]) if scale == "or" else r["estimate"]
    return 1 if est > 0 else -1


def _completed_frames(data: Any, outcome: str, exposure: str, adjust: list[str], aux: list[str], m: int | None,
                      seed: int) -> tuple[list[pd.DataFrame], np.ndarray, int, list[str]]:
    """The data sets with complete covariates (m of them), the observed outcome, rows left out.

    A frame with complete covariates gives the same frame m times; one with missing
    covariates is imputed by :func:`recoverystats.missing.impute` (outcome, exposure,
    covariates and auxiliary variables in the model); an ``ImputedData`` gives its
    completed data sets, with the outcome as observed.
    """
    from recoverystats.missing.imputation import ImputedData, impute

    cols = list(dict.fromkeys([outcome, exposure, *adjust, *aux]))
    if outcome in adjust or outcome in aux or exposure in adjust or exposure in aux:
        raise InvalidParameterError(
            "adjust/auxiliary: the outcome and the exposure cannot also be covariates; remove them."
        )
    notes: list[str] = []
    n_excl = 0
    if isinstance(data, ImputedData):
        missing_cols = [c for c in cols if c not in data.columns]
        if missing_cols:
            raise InvalidParameterError(
                f"tipping_point: column(s) {', '.join(map(repr, missing_cols))} not in the imputed data (its columns: "
                f"{', '.join(data.columns[:30])}); impute the data frame that holds them."
            )
        if m is not None and m != data.m:
            raise InvalidParameterError(
                f"m={m} differs from the ImputedData's m={data.m}; leave m out (the data sets are given)."
            )
        original = data._data.reset_index(drop=True)
        frames = [f[cols].reset_index(drop=True) for f in data]
        still = [c for c in cols if c != outcome and frames[0][c].isna().any()]
        if still:
            raise DataValidationError(
                f"tipping_point: column(s) {', '.join(map(repr, still))} still have missing values in the imputed "
                "data (they were not in impute()'s columns); impute them too."
            )
        notes.append(f"Covariates from the {data.m} imputed data sets (impute(), seed "
                     f"{data.settings.get('seed')}); the outcome is re-imputed here with the shifts.")
        y = followed_up_indicator(original, outcome, param="outcome")
        return frames, y, 0, notes
    if not isinstance(data, pd.DataFrame):
        raise InvalidParameterError(
            f"data must be a pandas DataFrame or an ImputedData (recoverystats.missing.impute); got "
            f"{type(data).__name__}."
        )
    check_columns(data, [outcome], "outcome")
    check_columns(data, [exposure], "exposure")
    check_columns(data, adjust, "adjust")
    check_columns(data, aux, "auxiliary")
    d = data
    if "eligible" in d.columns:
        mask = d["eligible"].to_numpy(dtype=bool, na_value=False)
        if (~mask).any():
            n_excl = int((~mask).sum())
            notes.append(f"{n_excl} rows not eligible (column 'eligible') left out.")
            d = d.loc[mask]
    d = d[cols].reset_index(drop=True)
    if d[exposure].isna().any():
        raise DataValidationError(
            f"exposure: column {exposure!r} has {int(d[exposure].isna().sum())} missing value(s); drop those "
            "rows (the tipping-point analysis compares two known groups)."
        )
    y = followed_up_indicator(d, outcome, param="outcome")
    m_ = 20 if m is None else int(m)
    covs = [c for c in cols if c not in (outcome, exposure)]
    na = d[covs].isna().sum() if covs else pd.Series(dtype=int)
    na = na[na > 0]
    if not len(na):
        return [d] * m_, y, n_excl, notes
    imp = impute(d, m=m_, columns=cols, seed=seed)
    notes.append("Missing covariate values ("
                 + "; ".join(f"{c}: {int(k)}" for c, k in na.items())
                 + f") imputed by impute(m={m_}, seed={seed}) with the outcome, the exposure, the covariates and "
                 "the auxiliary variables in the imputation model; the outcome is re-imputed here with the shifts.")
    return [f.reset_index(drop=True) for f in imp], y, n_excl, notes


def _complete_case(d: pd.DataFrame, outcome: str, exposure: str, adjust: list[str], reference: Any, level: float,
                   scale: str, notes: list[str]) -> pd.DataFrame:
    from recoverystats.errors import RecoveryStatsError
    from recoverystats.regression import odds_ratios

    try:
        r = odds_ratios(d, outcome, exposure=exposure, adjust=adjust, method="mle", missing="drop",
                        reference=None if reference is None else {exposure: reference}, conf_level=level)
        if scale == "or":
            t = r.table.iloc[[0]]
            row = {"estimate": float(t["estimate"].iloc[0]), "ci_lower": float(t["ci_lower"].iloc[0]),
                   "ci_upper": float(t["ci_upper"].iloc[0]), "std_error": float(t["std_error"].iloc[0]),
                   "p_value": float(t["p_value"].iloc[0])}
        else:
            t = r.risk_difference().table.iloc[[0]]
            row = {"estimate": float(t["estimate"].iloc[0]), "ci_lower": float(t["ci_lower"].iloc[0]),
                   "ci_upper": float(t["ci_upper"].iloc[0]), "std_error": float(t["std_error"].iloc[0]),
                   "p_value": float(t["p_value"].iloc[0])}
        row["n"] = int(r.n_used)
    except RecoveryStatsError as exc:
        notes.append(f"Complete-case analysis not estimated: {exc}")
        row = {"estimate": np.nan, "ci_lower": np.nan, "ci_upper": np.nan, "std_error": np.nan, "p_value": np.nan,
               "n": 0}
    return pd.DataFrame([{"analysis": "complete case (responders)", **row}])


def _fmt(v: float, scale: str) -> str:
    return f"{v:.2f}" if scale == "or" else f"{v:+.3f}"


def _plain_words(mar: dict[str, float], cc: pd.DataFrame, tipping: pd.DataFrame, table: pd.DataFrame, *,
                 est_name: str, outcome: str, exposed: str, reference: str, level: float, scale: str,
                 state_mar: int) -> str:
    alpha = 1 - level
    sig = state_mar != 0
    parts = [
        f"Assuming that non-responders resemble responders with the same characteristics (missing at random), "
        f"the {est_name} of {outcome} for {exposed} vs {reference} is {_fmt(mar['estimate'], scale)} "
        f"({level:.0%} CI {_fmt(mar['ci_lower'], scale)} to {_fmt(mar['ci_upper'], scale)}), "
        + ("statistically significant" if sig else "not statistically significant") + f" at the {alpha:g} level."
    ]
    change = ("lose its significance" if sig else "become statistically significant")
    for arm, name, other in (("exposed", exposed, reference), ("reference", reference, exposed)):
        t = tipping[(tipping["arm"] == arm) & tipping["found"]]
        if len(t):
            best = t.loc[t["delta"].abs().idxmin()]
            parts.append(
                f"For the result to {change}, non-responders in the {name} group would have to have odds of "
                f"{outcome} {best['odds_multiplier']:.2f} times those of comparable responders "
                f"(with non-responders in the {other} group like its responders)."
            )
        else:
            sub = tipping[tipping["arm"] == arm]
            lo = float(np.exp(sub["searched_to"].min()))
            hi = float(np.exp(sub["searched_to"].max()))
            parts.append(
                f"No shift of the {name} group's non-responders alone, from {lo:.2f} to {hi:.2f} times the odds of "
                f"comparable responders, changes the conclusion."
            )
    b = table[table["scenario"] != "delta"]
    if b["estimate"].notna().any():
        parts.append(
            f"In the extreme cases (every non-responder with {outcome}, or none, in either group) the {est_name} "
            f"ranges from {_fmt(float(b['estimate'].min()), scale)} to {_fmt(float(b['estimate'].max()), scale)}."
        )
    if len(cc) and np.isfinite(cc["estimate"].iloc[0]):
        parts.append(f"Responders only (complete case): {_fmt(float(cc['estimate'].iloc[0]), scale)} "
                     f"({level:.0%} CI {_fmt(float(cc['ci_lower'].iloc[0]), scale)} to "
                     f"{_fmt(float(cc['ci_upper'].iloc[0]), scale)}).")
    return " ".join(parts)
