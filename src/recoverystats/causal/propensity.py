"""Propensity scores: :func:`propensity_score`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from recoverystats._checks import check_option
from recoverystats._design import collinear_sets
from recoverystats.causal._common import Exposure, check_frame, covariate_design, exposure_indicator
from recoverystats.errors import DataValidationError, EstimationError
from recoverystats.regression import _engine as E
from recoverystats.results.causal import PropensityScoreResult

PSMethod = Literal["logit", "firth"]

#: ``method="logit"`` switches to Firth's penalised likelihood when the smaller group
#: has fewer than this many people per non-intercept coefficient ...
FIRTH_EPV = 5.0
#: ... or fewer than this many people in total (the rule of ``odds_ratios(method="auto")``).
FIRTH_MIN_EVENTS = 20
#: Scores this close to 0 or 1 mean the groups do not overlap (weights beyond 1e8).
NO_OVERLAP_EPS = 1e-8
#: Overlap is called poor when more than this share of people lie outside the common support.
POOR_OVERLAP_SHARE = 0.05
#: Quantiles shown in the overlap summary.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass
class PSFit:
    """A fitted propensity model (internal)."""

    design: Any
    beta: np.ndarray
    cov: np.ndarray
    p: np.ndarray
    firth: bool
    notes: list[str]
    columns: list[str]


def fit_propensity(
    design: Any,
    t: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    method: str = "logit",
    ex: Exposure | None = None,
) -> PSFit:
    """Fit the logistic propensity model on a built design (internal; shared by every causal function)."""
    X = design.X
    n, k = X.shape
    notes: list[str] = []
    n1 = float(t.sum() if weights is None else (weights * t).sum())
    n0 = float(len(t) - t.sum() if weights is None else (weights * (1 - t)).sum())
    n_min = min(n1, n0)
    XtX = X.T @ X
    if k > 1:
        sets = collinear_sets(XtX, design.names)
        if sets:
            shown = "; ".join("{" + ", ".join(s) + "}" for s in sets)
            raise DataValidationError(
                f"adjust: covariates are perfectly collinear: {shown}. One is a linear combination of the "
                "others; remove one from each set."
            )
    epv = n_min / max(k - 1, 1)
    sampling = weights is not None
    use_firth = method == "firth" and not sampling
    fit = None
    if not use_firth:
        fit = E.fit_mle(X, t, weights=weights, xtx=XtX)
        if not fit.converged or np.max(np.abs(fit.eta)) > E.ETA_LIMIT:
            sep = E.detect_separation(X, t)
            if sep.separated:
                cols = [design.names[j] for j in sep.columns if design.names[j] != "Intercept"]
                shown = ", ".join(cols) or "the covariates"
                if sep.complete or sampling:
                    raise DataValidationError(
                        f"no overlap: the covariates ({shown}) separate the two groups "
                        f"{'completely' if sep.complete else 'for some people'}, so propensity scores are "
                        "0 or 1 and the groups cannot be compared on them. Restrict the data to people who "
                        "could be in either group (e.g. drop levels seen in one group only), or remove "
                        f"{shown} from adjust."
                    )
                use_firth = True
                notes.append(
                    f"Quasi-complete separation (involves {shown}): some people have no comparators in the "
                    "other group; Firth's penalised likelihood was used so the scores are finite. Check the "
                    "overlap summary and consider restricting the data."
                )
            elif not fit.converged:
                raise EstimationError(
                    "the propensity model did not converge after 50 iterations (no separation found). Try "
                    "rescaling covariates with very large values or removing near-duplicate covariates."
                )
        elif method == "logit" and (n_min < FIRTH_MIN_EVENTS or epv < FIRTH_EPV) and not sampling:
            use_firth = True
            notes.append(
                f"Few people in the smaller group ({n_min:g}, {epv:.1f} per coefficient): Firth's penalised "
                f"likelihood used (rule: < {FIRTH_MIN_EVENTS} or < {FIRTH_EPV:g} per coefficient)."
            )
    elif sampling:  # pragma: no cover - method='firth' with weights is refused by the callers
        raise EstimationError("Firth's method is not available with sampling weights.")
    if use_firth:
        start = np.zeros(k)
        if fit is not None and fit.converged:
            start = fit.beta
        else:
            start[0] = np.log((n1 + 0.5) / (n0 + 0.5))
        fit = E.fit_firth(X, t, max_iter=100, beta0=start)
        if not fit.converged:
            raise EstimationError(
                "Firth's penalised likelihood did not converge for the propensity model after 100 iterations; "
                "remove covariates or merge sparse categories."
            )
    assert fit is not None
    p = fit.p
    extreme = (p < NO_OVERLAP_EPS) | (p > 1 - NO_OVERLAP_EPS)
    if extreme.any():
        raise DataValidationError(
            f"no overlap: {int(extreme.sum())} propensity score(s) are 0 or 1 to within {NO_OVERLAP_EPS:g}, so "
            "those people have no comparators in the other group. Restrict the data to people who could be in "
            "either group, or remove the covariates that separate the groups."
        )
    cov = fit.cov
    if sampling:
        cov = E.sandwich_cov(X, t, p, fit.cov, weights)
    return PSFit(design, fit.beta, cov, p, use_firth, notes, [])


def overlap_table(p: np.ndarray, t: np.ndarray, ex: Exposure) -> tuple[pd.DataFrame, tuple[float, float], float]:
    """Per group: n, min, quantiles, max of the scores and the count/share outside the common support.

    The common support is ``[max(min_1, min_0), min(max_1, max_0)]`` (the range of scores
    seen in both groups).
    """
    tb = t.astype(bool)
    p1, p0 = p[tb], p[~tb]
    lo = float(max(p1.min(), p0.min()))
    hi = float(min(p1.max(), p0.max()))
    rows = []
    for val, ps in ((1, p1), (0, p0)):
        q = np.quantile(ps, QUANTILES)
        outside = int(((ps < lo) | (ps > hi)).sum())
        row = {"group": ex.label(val), "exposed": val, "n": int(len(ps)), "mean": float(ps.mean()),
               "min": float(ps.min())}
        row.update({f"p{int(round(qq * 100)):02d}": float(v) for qq, v in zip(QUANTILES, q, strict=True)})
        row.update({"max": float(ps.max()), "outside_support": outside, "share_outside": outside / len(ps)})
        rows.append(row)
    table = pd.DataFrame(rows)
    share = float(table["outside_support"].sum() / len(p))
    return table, (lo, hi), share


def overlap_notes(table: pd.DataFrame, support: tuple[float, float], share: float) -> list[str]:
    notes = []
    if share > POOR_OVERLAP_SHARE:
        notes.append(
            f"Poor overlap: {share:.1%} of people have propensity scores outside the common support "
            f"[{support[0]:.3f}, {support[1]:.3f}] (the range seen in both groups); estimates for them rest on "
            "extrapolation. Consider restricting to the common support, overlap weights (estimand='ATO') or "
            "matching with a caliper."
        )
    pmin, pmax = float(table["min"].min()), float(table["max"].max())
    if pmin < 0.01 or pmax > 0.99:
        notes.append(
            f"Some propensity scores are extreme (range {pmin:.4f} to {pmax:.4f}): inverse-probability weights "
            "of up to 1/0.01 = 100 or more can dominate the estimate; check the weight summary."
        )
    return notes


def propensity_score(
    df: pd.DataFrame,
    *,
    exposure: str,
    adjust: Any = (),
    formula: str | None = None,
    method: PSMethod = "logit",
    treated: Any = None,
) -> PropensityScoreResult:
    """Propensity scores: each person's estimated probability of being in the exposed group.

    A logistic regression of the exposure on the covariates, fitted with the package's
    logistic engine (the one behind :func:`recoverystats.odds_ratios`: Newton-Raphson,
    equal to statsmodels ``Logit``; Firth's penalised likelihood as R ``logistf`` when
    the smaller group is small or there is quasi-complete separation).

    Parameters
    ----------
    df
        One row per person. Rows are not dropped: missing covariates are an error.
    exposure
        The column with the two compared groups: booleans, 0/1, or any two values (e.g.
        ``group`` with ``peer_mentoring``/``comparison``).
    adjust
        Covariates of the propensity model. Numeric and boolean columns enter linearly,
        text and categorical columns as dummy variables.
    formula
        Alternatively a patsy formula for non-linear terms and interactions, e.g.
        ``"~ age + I(age**2) + C(risk_level)"`` (the left-hand side may name the exposure).
    method
        ``"logit"`` (default): maximum likelihood, switching to Firth's penalised likelihood
        (with a note) when the smaller group has fewer than 20 people or fewer than 5 per
        coefficient, or under quasi-complete separation. ``"firth"``: always Firth.
    treated
        The value of ``exposure`` that marks the exposed group. Default: ``True``/``1``, or
        the non-reference level (for ``group``: ``peer_mentoring``).

    Returns
    -------
    PropensityScoreResult
        ``.scores`` (a Series aligned to ``df``), ``.table`` (the overlap summary per group:
        n, mean, min, quantiles, max, the number and share of people outside the common
        support), ``.model`` (coefficients on the log-odds scale with SEs), ``.vcov`` and
        ``.plot()`` (mirrored histograms of the scores by group).

    Raises
    ------
    DataValidationError
        The exposure is not binary or has missing values; a covariate has missing values
        or is constant in one group; the covariates separate the groups completely (no
        overlap: scores of 0 or 1).

    Notes
    -----
    The common support is the range of scores seen in both groups,
    ``[max(min_1, min_0), min(max_1, max_0)]``; a note flags poor overlap when more
    than 5% of people fall outside it, and extreme scores (below 0.01 or above 0.99).
    Equivalent in R: ``glm(exposure ~ ..., family = binomial)`` then ``fitted()``
    (``WeightIt::weightit(method = "glm")`` uses the same model).

    Examples
    --------
    >>> import recoverystats as rs
    >>> sim = rs.datasets.simulate_program(400, seed=1)
    >>> ps = rs.propensity_score(sim.truth.latent, exposure="group", adjust=["age", "risk_level"])
    >>> round(float(ps.scores.between(0, 1).mean()), 1)
    1.0
    """
    df = check_frame(df)
    check_option("method", method, PSMethod)
    ex = exposure_indicator(df, exposure, treated)
    design, used = covariate_design(df, ex=ex, adjust=adjust, formula=formula, func="propensity_score")
    fit = fit_propensity(design, ex.t, method=method, ex=ex)
    return make_result(df, ex, fit, used)


def make_result(df: pd.DataFrame, ex: Exposure, fit: PSFit, used: list[str]) -> PropensityScoreResult:
    table, support, share = overlap_table(fit.p, ex.t, ex)
    notes = list(fit.notes) + overlap_notes(table, support, share)
    names = list(fit.design.names)
    se = np.sqrt(np.clip(np.diag(fit.cov), 0, None))
    model = pd.DataFrame({"term": names, "log_odds": fit.beta, "std_error": se})
    vcov = pd.DataFrame(fit.cov, index=names, columns=names)
    method = "Firth penalised logistic regression" if fit.firth else "logistic regression (maximum likelihood)"
    return PropensityScoreResult(
        _table=table,
        method=method,
        n_used=len(df),
        n_excluded=0,
        notes=tuple(notes),
        exposure=ex.column,
        treated=ex.treated,
        control=ex.control,
        adjust=tuple(used),
        common_support=support,
        share_outside=share,
        _scores=pd.Series(fit.p, index=df.index, name="propensity_score"),
        _exposed=pd.Series(ex.t.astype(bool), index=df.index, name=ex.column),
        _model=model,
        _vcov=vcov,
    )
