"""After the fit: g-computation risk differences/ratios and model diagnostics (internal).

Called through :meth:`OddsRatioResult.risk_difference`, :meth:`~OddsRatioResult.risk_ratio`
and :meth:`~OddsRatioResult.diagnostics`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from recoverystats._checks import check_conf_level
from recoverystats.errors import DataValidationError, InvalidParameterError, SmallSampleWarning
from recoverystats.regression import _engine as E
from recoverystats.results.regression import (
    DiagnosticsResult,
    RiskDifferenceResult,
    RiskRatioResult,
)

#: Bootstrap replicates are processed in chunks of at most this many (rows x replicates).
BOOT_CHUNK_CELLS = 2_000_000
#: Events per variable below which ``diagnostics()`` warns.
LOW_EPV = 10.0


def _resample_counts(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    """How often each of ``n`` units is drawn in each of ``b`` resamples with replacement (b x n)."""
    idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)


def _fmt_level(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def standardised_effect(model, result, *, measure: str, n_boot: int = 0, seed: int | None = None,
                        conf_level: float | None = None):
    """Marginally standardised risk difference (``measure="rd"``) or ratio (``"rr"``).

    Notes
    -----
    g-computation (Robins 1986; marginal standardisation): with the fitted model,
    predict every participant's risk with the exposure set to level ``a`` and average,
    ``r_a = (1/n) sum_i expit(x_i(a)'b)``. RD = ``r_1 - r_0``; RR = ``r_1 / r_0``.
    Delta method with the model covariance ``V`` (cluster-robust when clustered):
    ``grad r_a = (1/n) sum_i p_i(a)(1 - p_i(a)) x_i(a)``, ``Var(RD) = g'Vg`` with
    ``g = grad r_1 - grad r_0``, and for the log RR ``g = grad r_1/r_1 - grad r_0/r_0``
    (CI on the log scale, then exponentiated). The covariates are held at their sample
    values, as Stata ``margins r.group`` after ``logit`` and R
    ``marginaleffects::avg_comparisons(fit, variables = "group")``.

    Bootstrap (``n_boot > 0``): rows (or whole clusters, when the model has a
    ``cluster``) are resampled with replacement; each replicate refits the model
    (Firth if the original fit was Firth) by warm-started vectorised Newton steps and
    re-standardises over the resampled rows; percentile interval; ``std_error`` is the
    bootstrap SD (of the log RR for ratios) and ``p_value`` the normal Wald p-value
    using it. Replicates whose fit diverges (separated resamples) are dropped and
    counted in ``.notes``.
    """
    if result.exposure is None or model.exposure_kind not in ("categorical", "binary"):
        what = "risk_difference()" if measure == "rd" else "risk_ratio()"
        if result.exposure is None:
            raise InvalidParameterError(
                f"{what} needs a designated exposure; refit with odds_ratios(..., exposure='group')."
            )
        raise InvalidParameterError(
            f"{what}: exposure {result.exposure!r} is continuous; g-computation contrasts need a binary or "
            "categorical exposure (e.g. cut it into groups first)."
        )
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise InvalidParameterError(f"n_boot must be a non-negative integer (e.g. 2000); got {n_boot!r}.")
    level = model.conf_level if conf_level is None else check_conf_level(conf_level)
    design = model.design
    levels = model.exposure_levels
    ref = levels[0]
    beta = model.beta
    X_ref = design.counterfactual(ref)
    X_levels = [design.counterfactual(lv) for lv in levels[1:]]
    n = len(model.y)
    wts = getattr(model, "weights", None)
    if wts is not None and n_boot > 0:
        raise InvalidParameterError(
            "bootstrap intervals are not available for weighted fits (resampling would have to follow the "
            "weights' design); use the delta method (n_boot=0), whose covariance already reflects the weights."
        )
    avg_w = None if wts is None else wts / wts.sum()

    def risk_and_grad(Xa):
        pa = expit(Xa @ beta)
        if avg_w is None:
            return pa.mean(), ((pa * (1 - pa))[:, None] * Xa).mean(axis=0)
        return float(avg_w @ pa), (avg_w * pa * (1 - pa)) @ Xa

    r0, g0 = risk_and_grad(X_ref)
    rows = []
    crit = model.crit(level)
    for lv, Xa in zip(levels[1:], X_levels, strict=False):
        r1, g1 = risk_and_grad(Xa)
        if measure == "rd":
            est = r1 - r0
            g = g1 - g0
        else:
            est = np.log(r1 / r0)
            g = g1 / r1 - g0 / r0
        se = float(np.sqrt(g @ model.cov @ g))
        z = est / se
        pv = float(model.pvalue(np.array([z]))[0])
        lo, hi = est - crit * se, est + crit * se
        if measure == "rr":
            est, lo, hi = np.exp(est), np.exp(lo), np.exp(hi)
        rows.append(dict(level=lv, est=est, lo=lo, hi=hi, se=se, p=pv, r1=r1))

    notes: list[str] = []
    method = "g-computation (marginal standardisation) from the logistic model; "
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        stats_boot = [[] for _ in rows]
        failed = 0
        chunk = max(1, int(BOOT_CHUNK_CELLS // max(n, 1)))
        done = 0
        while done < n_boot:
            b = min(chunk, n_boot - done)
            if model.codes is not None:
                G = model.n_clusters
                cg = _resample_counts(rng, G, b)
                counts = cg[:, model.codes]
            else:
                counts = _resample_counts(rng, n, b)
            betas, ok = E.batched_fit(design.X, model.y, counts, beta, firth=model.firth)
            failed += int((~ok).sum())
            betas, counts = betas[ok], counts[ok]
            Ct = counts.T.astype(float)
            tot = Ct.sum(axis=0)
            R0 = (Ct * expit(X_ref @ betas.T)).sum(axis=0) / tot
            for i, Xa in enumerate(X_levels):
                R1 = (Ct * expit(Xa @ betas.T)).sum(axis=0) / tot
                stats_boot[i].append(R1 - R0 if measure == "rd" else np.log(R1 / R0))
            done += b
        a = 1.0 - level
        for row, sb in zip(rows, stats_boot, strict=False):
            v = np.concatenate(sb) if sb else np.array([])
            if v.size < 10:
                raise InvalidParameterError(
                    f"bootstrap: only {v.size} of {n_boot} replicates could be fitted; use the delta method (n_boot=0)."
                )
            qlo, qhi = np.quantile(v, [a / 2, 1 - a / 2])
            se = float(np.std(v, ddof=1))
            est_scale = row["est"] if measure == "rd" else np.log(row["est"])
            row["se"] = se
            row["p"] = float(2 * stats.norm.sf(abs(est_scale / se)))
            row["lo"], row["hi"] = (qlo, qhi) if measure == "rd" else (np.exp(qlo), np.exp(qhi))
        unit = "clusters" if model.codes is not None else "rows"
        method += f"percentile bootstrap CI ({n_boot} resamples of {unit}, seed={seed})"
        if failed:
            notes.append(f"{failed} of {n_boot} bootstrap replicates did not converge (e.g. separated resamples) and were dropped.")
    else:
        method += "delta-method CI" + (" (t reference, CR2)" if model.ref_dist == "t" else "")
        if model.correction:
            method += f" with the cluster-robust {model.correction} covariance"
    if model.firth:
        notes.append("Predicted risks come from the Firth-penalised model.")
    kind = model.exposure_kind
    exp = result.exposure
    table = pd.DataFrame(
        {
            "comparison": [
                f"{_fmt_level(r['level'])} vs {_fmt_level(ref)}" if kind == "categorical"
                else f"{exp}={_fmt_level(r['level'])} vs {exp}={_fmt_level(ref)}" for r in rows
            ],
            "estimate": [float(r["est"]) for r in rows],
            "ci_lower": [float(r["lo"]) for r in rows],
            "ci_upper": [float(r["hi"]) for r in rows],
            "p_value": [float(r["p"]) for r in rows],
            "std_error": [float(r["se"]) for r in rows],
            "risk_exposed": [float(r["r1"]) for r in rows],
            "risk_reference": [float(r0)] * len(rows),
            "level": [_fmt_level(r["level"]) for r in rows],
            "reference": [_fmt_level(ref)] * len(rows),
        }
    )
    cls = RiskDifferenceResult if measure == "rd" else RiskRatioResult
    return cls(
        _table=table, conf_level=level, method=method, n_used=n, n_excluded=model.n_excluded,
        notes=tuple(notes), exposure=exp, n_boot=int(n_boot), seed=seed,
    )


# ---------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------
def delong_auc(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """AUC and its DeLong standard error (fast midrank algorithm of Sun & Xu 2014).

    ``V10_i`` (cases) and ``V01_j`` (controls) are the placement values;
    ``Var(AUC) = s2(V10)/m + s2(V01)/n``; matches R ``pROC::ci.auc(method="delong")``.
    """
    pos = p[y == 1]
    neg = p[y == 0]
    m, k = len(pos), len(neg)
    tx = stats.rankdata(pos)
    ty = stats.rankdata(neg)
    tz = stats.rankdata(np.concatenate([pos, neg]))
    auc = (tz[:m].sum() - m * (m + 1) / 2.0) / (m * k)
    v10 = (tz[:m] - tx) / k
    v01 = 1.0 - (tz[m:] - ty) / m
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / k
    return float(auc), float(np.sqrt(var))


def hosmer_lemeshow(y: np.ndarray, p: np.ndarray, groups: int = 10):
    """Hosmer-Lemeshow statistic with groups cut at the quantiles of the fitted risk.

    Breaks are ``quantile(p, 0, 1/g, ..., 1)`` (type 7, duplicates removed), intervals
    closed on the right with the lowest included — as R
    ``ResourceSelection::hoslem.test(y, p, g)``. ``C = sum over groups and both
    outcome classes of (O - E)^2 / E``, chi-square on (groups - 2) df.
    """
    breaks = np.unique(np.quantile(p, np.linspace(0, 1, groups + 1)))
    gidx = np.searchsorted(breaks[1:-1], p, side="left")
    ng = len(breaks) - 1
    n_g = np.bincount(gidx, minlength=ng)
    o1 = np.bincount(gidx, weights=y, minlength=ng)
    e1 = np.bincount(gidx, weights=p, minlength=ng)
    o0, e0 = n_g - o1, n_g - e1
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (o1 - e1) ** 2 / e1 + (o0 - e0) ** 2 / e0
    stat = float(np.nansum(terms))
    dfree = ng - 2
    pv = float(stats.chi2.sf(stat, dfree)) if dfree > 0 else float("nan")
    table = pd.DataFrame(
        {
            "group": np.arange(1, ng + 1),
            "n": n_g.astype(int),
            "observed": o1,
            "expected": e1,
            "mean_predicted": e1 / np.maximum(n_g, 1),
            "observed_rate": o1 / np.maximum(n_g, 1),
        }
    )
    return stat, dfree, pv, table


def vif_table(design) -> pd.DataFrame:
    """VIF per non-intercept design column and GVIF per term.

    ``VIF_j = 1 / (1 - R_j^2)`` from the regression of column j on the others with an
    intercept (= diagonal of the inverse correlation matrix), as statsmodels
    ``variance_inflation_factor`` with a constant in ``exog``. For a term with several
    columns, the generalised VIF of Fox & Monette (1992),
    ``GVIF = det(R_11) det(R_22) / det(R)``, and ``GVIF^(1/(2 df))`` (as R ``car::vif``).
    """
    X = design.X
    cols = [c for c in range(X.shape[1]) if c != design.intercept]
    if len(cols) == 0:
        return pd.DataFrame(columns=["term", "vif", "variable", "gvif", "gvif_df", "gvif_adjusted"])
    if len(cols) == 1:
        vifs = np.array([1.0])
        R = np.ones((1, 1))
    else:
        Z = X[:, cols]
        R = np.corrcoef(Z, rowvar=False)
        vifs = np.diag(np.linalg.inv(R))
    pos = {c: i for i, c in enumerate(cols)}
    rows = []
    detR = np.linalg.det(R)
    for t in design.terms:
        if t.kind == "intercept":
            continue
        idx = [pos[c] for c in t.columns]
        rest = [i for i in range(len(cols)) if i not in idx]
        if rest:
            g = np.linalg.det(R[np.ix_(idx, idx)]) * np.linalg.det(R[np.ix_(rest, rest)]) / detR
        else:
            g = 1.0
        for c in t.columns:
            rows.append(
                {
                    "term": design.names[c],
                    "vif": float(vifs[pos[c]]),
                    "variable": t.variable or t.name,
                    "gvif": float(g),
                    "gvif_df": len(idx),
                    "gvif_adjusted": float(g ** (1.0 / (2 * len(idx)))),
                }
            )
    return pd.DataFrame(rows)


def _new_data(model, result, data: pd.DataFrame):
    from recoverystats.regression.odds_ratios import _binary_outcome

    if not isinstance(data, pd.DataFrame):
        raise InvalidParameterError(f"data must be a pandas DataFrame; got {type(data).__name__}.")
    d = data
    notes = []
    if "eligible" in d.columns:
        d = d.loc[d["eligible"].to_numpy(dtype=bool, na_value=False)]
    if result.outcome not in d.columns:
        raise InvalidParameterError(f"data: outcome column {result.outcome!r} not found in the new data.")
    needed = [result.outcome]
    if model.design.design_info is None:
        needed += [c for c, _, _ in model.design.encoders]
    else:
        needed += list(model.design.base_frame.columns)
    missing_cols = [c for c in needed if c not in d.columns]
    if missing_cols:
        raise InvalidParameterError(f"data: column(s) {', '.join(map(repr, missing_cols))} not found in the new data.")
    keep = ~d[needed].isna().any(axis=1)
    if (~keep).any():
        notes.append(f"{int((~keep).sum())} rows of the new data with missing values dropped.")
        d = d.loc[keep.to_numpy()]
    y = _binary_outcome(d[result.outcome], result.outcome)
    X = model.design.transform(d)
    return X, y, notes


def diagnostics(model, result, *, data: pd.DataFrame | None = None, groups: int = 10) -> DiagnosticsResult:
    """AUC (DeLong CI), Brier score, Hosmer-Lemeshow, calibration intercept/slope, VIF, EPV.

    Notes
    -----
    * AUC: Mann-Whitney estimate (= sklearn ``roc_auc_score``) with the DeLong SE and
      a Wald interval clipped to [0, 1] (R ``pROC::ci.auc(roc, method = "delong")``).
    * Brier: ``mean((y - p)^2)``.
    * Hosmer-Lemeshow: see :func:`hosmer_lemeshow` (R ``ResourceSelection::hoslem.test``).
    * Calibration slope: ``b1`` of ``logit P(y) = b0 + b1 * lp``; calibration intercept
      (calibration-in-the-large): ``a`` of ``logit P(y) = a + offset(lp)``
      (R ``rms::val.prob``); ``statistic``/``p_value`` test slope = 1 and intercept = 0.
      On the fitting data a maximum-likelihood model has slope 1 and intercept 0 by
      construction — pass ``data=`` (new rows) for an external check.
    * VIF/GVIF: :func:`vif_table`; computed on the fitting data.
    * Events per variable: ``min(events, non-events) / non-intercept coefficients``;
      a ``SmallSampleWarning`` below 10 (Peduzzi et al. 1996).
    """
    if not isinstance(groups, (int, np.integer)) or groups < 3:
        raise InvalidParameterError(f"groups must be an integer >= 3 (e.g. 10); got {groups!r}.")
    notes: list[str] = []
    if data is None and getattr(model, "weights", None) is not None:
        raise InvalidParameterError(
            "diagnostics(): AUC, Brier, Hosmer-Lemeshow and calibration on the fitting data are not "
            "computed for weighted fits; pass data= (one row per participant) to evaluate the model on rows."
        )
    if data is None:
        X, y = model.design.X, model.y
        p = model.p
        source = "fitting data"
    else:
        X, y, extra = _new_data(model, result, data)
        notes += extra
        p = expit(X @ model.beta)
        source = "new data"
        if y.min() == y.max():
            raise DataValidationError(
                f"data: outcome {result.outcome!r} has only one class in the new data; AUC and calibration need both."
            )
    level = model.conf_level
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    n = len(y)
    lp = np.log(p) - np.log1p(-p)
    auc, auc_se = delong_auc(y, p)
    brier = float(np.mean((y - p) ** 2))
    hl, hl_df, hl_p, cal_table = hosmer_lemeshow(y, p, groups)
    slope_fit = E.fit_mle(np.column_stack([np.ones(n), lp]), y)
    slope, slope_se = slope_fit.beta[1], float(np.sqrt(slope_fit.cov[1, 1]))
    icpt_fit = E.fit_mle(np.ones((n, 1)), y, offset=lp)
    icpt, icpt_se = icpt_fit.beta[0], float(np.sqrt(icpt_fit.cov[0, 0]))
    epv = result.events_per_variable
    table = pd.DataFrame(
        {
            "measure": ["auc", "brier", "hosmer_lemeshow", "calibration_intercept", "calibration_slope",
                        "events_per_variable"],
            "estimate": [auc, brier, hl, icpt, slope, epv],
            "ci_lower": [max(0.0, auc - z * auc_se), np.nan, np.nan, icpt - z * icpt_se, slope - z * slope_se, np.nan],
            "ci_upper": [min(1.0, auc + z * auc_se), np.nan, np.nan, icpt + z * icpt_se, slope + z * slope_se, np.nan],
            "std_error": [auc_se, np.nan, np.nan, icpt_se, slope_se, np.nan],
            "statistic": [np.nan, np.nan, hl, icpt / icpt_se, (slope - 1.0) / slope_se, np.nan],
            "df": [np.nan, np.nan, float(hl_df), np.nan, np.nan, np.nan],
            "p_value": [np.nan, np.nan, hl_p, 2 * stats.norm.sf(abs(icpt / icpt_se)),
                        2 * stats.norm.sf(abs((slope - 1.0) / slope_se)), np.nan],
        }
    )
    if epv < LOW_EPV:
        msg = (f"Events per variable is {epv:.1f} (< {LOW_EPV:g}): the model may be overfitted and its "
               "coefficients unstable; reduce the number of covariates.")
        notes.append(msg)
        warnings.warn(msg, SmallSampleWarning, stacklevel=3)  # the user's res.diagnostics() line
    if hl_df < groups - 2:
        notes.append(f"Hosmer-Lemeshow used {hl_df + 2} groups (tied fitted risks merged quantile groups).")
    if data is None and not model.firth:
        notes.append("Calibration on the fitting data: slope 1 and intercept 0 hold by construction for maximum "
                     "likelihood; pass data= for an external check.")
    return DiagnosticsResult(
        _table=table, conf_level=level,
        method=f"Diagnostics on the {source}: AUC with DeLong CI, Brier, Hosmer-Lemeshow ({groups} groups), "
               "calibration intercept/slope, VIF",
        n_used=n, n_excluded=model.n_excluded if data is None else 0, notes=tuple(notes),
        vif=vif_table(model.design), calibration=cal_table, events_per_variable=float(epv),
    )
