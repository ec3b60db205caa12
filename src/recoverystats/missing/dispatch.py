"""The one path from an analysis function called with an :class:`ImputedData` to a pooled result.

Every analysis function starts with a check (``type(df).__name__ == "ImputedData"``,
then ``return pooled_call(f, locals())``): given a DataFrame it runs unchanged; given an
``ImputedData`` it checks the analysis variables, runs the function on each completed
data set and pools the ``m`` results (:func:`pool_results`, behind
:func:`~recoverystats.missing.pool`) into the same result type. Nothing here is specific
to one analysis beyond the scale each result type is pooled on.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["is_imputed", "pooled_call", "pool_results", "PooledFits"]

#: Keyword arguments that name columns of the data (checked against the imputed data).
COLUMN_ARGS = ("outcome", "by", "group", "strata", "exposure", "adjust", "time", "event", "cluster",
               "weights", "entry")


def is_imputed(obj: Any) -> bool:
    """True for an :class:`~recoverystats.missing.ImputedData` (checked without importing it)."""
    return type(obj).__name__ == "ImputedData" and hasattr(obj, "complete") and hasattr(obj, "m")


def pooled_call(func: Callable[..., Any], params: dict[str, Any]) -> Any:
    """``func`` called with ``params`` (its arguments, ``df`` an ImputedData), pooled.

    Each analysis function starts with ``if type(df).__name__ == "ImputedData":`` and
    ``return pooled_call(f, locals())`` after importing this function there (a check
    rather than a decorator, so that warnings still point at the caller's line on the
    DataFrame path, and nothing of ``missing`` is imported until it is used).
    ``params`` may hold other locals; only ``func``'s parameters are passed on.
    """
    import inspect

    names = set(inspect.signature(func).parameters)
    args = {k: v for k, v in params.items() if k in names}
    imp = args.pop("df")
    return run_pooled(func, imp, **args)


def _named_columns(func: Callable[..., Any], args: tuple, kwargs: dict) -> list[tuple[str, str]]:
    """(argument, column) pairs the call names."""
    import inspect

    try:
        bound = inspect.signature(func).bind_partial(None, *args, **kwargs)
    except TypeError:
        return []
    out: list[tuple[str, str]] = []
    for name in COLUMN_ARGS:
        val = bound.arguments.get(name)
        if val is None:
            continue
        if isinstance(val, str):
            out.append((name, val))
        elif isinstance(val, (list, tuple)):
            out += [(name, str(v)) for v in val if isinstance(v, str)]
    formula = bound.arguments.get("formula")
    if isinstance(formula, str):
        import re

        for tok in re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", formula):
            if tok not in {"C", "Treatment", "I", "np", "log", "exp", "center", "standardize", "scale",
                           "bs", "cr", "Sum", "Poly", "Diff", "Helmert", "reference", "levels"}:
                out.append(("formula", tok))
    return out


def run_pooled(func: Callable[..., Any], imp: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``func`` on each completed data set of ``imp`` and pool the results."""
    from recoverystats.errors import InvalidParameterError

    name = func.__name__
    times = kwargs.pop("times", None) if name == "survival_curve" else None
    if name == "survival_curve" and times is None:
        raise InvalidParameterError(
            "survival_curve with an ImputedData needs times= (e.g. times=[90, 180, 365]): survival "
            "probabilities are pooled by Rubin's rules at those times (the curves' event times differ "
            "between imputed data sets)."
        )
    if imp.m < 2:
        raise InvalidParameterError(f"{name}: Rubin's rules need at least 2 imputed data sets; got m = {imp.m}.")
    cols = set(imp.columns)
    imputed = set(imp.imputed_columns)
    in_model = set(imp.methods)
    for arg, col in _named_columns(func, args, kwargs):
        if arg == "formula" and col not in cols:
            continue  # a function name or level in the formula, not a column
        if col not in cols:
            raise InvalidParameterError(
                f"{name}: {arg} column {col!r} is not in the imputed data (its columns: "
                f"{', '.join(sorted(cols)[:30])}). Add it to the data passed to impute()."
            )
        if col not in imputed and bool(imp._data[col].isna().any()):
            where = "was left out of the imputation model" if col not in in_model else "was not imputed"
            raise InvalidParameterError(
                f"{name}: {arg} column {col!r} has {int(imp._data[col].isna().sum())} missing values and {where}; "
                f"include it in impute(columns=[..., {col!r}]) so the analysis uses every row."
            )
    # the same warning from m fits is shown once, pointing at the caller's line
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [func(imp.complete(i), *args, **kwargs) for i in range(imp.m)]
    seen: set[tuple[type, str]] = set()
    for w in caught:
        key = (w.category, str(w.message))
        if key not in seen:
            seen.add(key)
            warnings.warn(w.message, w.category, stacklevel=4)
    pooled = pool_results(results, times=times)
    note = (f"multiple imputation: {imp.m} data sets ({', '.join(f'{c}: {m}' for c, m in imp.methods.items() if m)}; "
            f"seed {imp.settings.get('seed')}), pooled by Rubin's rules with Barnard-Rubin df.")
    return dataclasses.replace(pooled, notes=tuple(dict.fromkeys((note, *pooled.notes))))


# ---------------------------------------------------------------------------
# pooling per result type
# ---------------------------------------------------------------------------
def pool_results(results: Sequence[Any], *, dfcom: float | None = None, times: Any = None) -> Any:
    """Pool results of one type (see :func:`recoverystats.missing.pool`)."""
    from recoverystats.errors import InvalidParameterError

    first = results[0]
    kind = type(first).__name__
    if kind == "OddsRatioResult":
        return _pool_coefficients(results, "log_odds", dfcom=dfcom)
    if kind == "HazardRatioResult":
        return _pool_coefficients(results, "log_hazard", dfcom=dfcom)
    if kind == "RateResult":
        if first.kind != "proportion":
            raise InvalidParameterError("pool: incidence rates are not pooled here; pool their log rates with "
                                        "pool_estimates().")
        return _pool_proportions(results, dfcom=dfcom)
    if kind == "ComparisonResult":
        return _pool_comparisons(results, dfcom=dfcom)
    if kind == "SurvivalResult":
        if times is None:
            raise InvalidParameterError("pool: survival curves are pooled at times=; give times=[...].")
        return _pool_survival(results, times=times, dfcom=dfcom)
    if kind in ("RiskDifferenceResult", "RiskRatioResult"):
        return _pool_standardised(results, dfcom=dfcom)
    coef = next((c for c in ("log_odds", "log_hazard", "log_estimate", "coef", "estimate")
                 if c in first.table.columns), None) if hasattr(first, "table") else None
    if hasattr(first, "vcov") and "term" in first.table.columns and coef is not None:
        # any other result with coefficients and their covariance: pooled on the coefficients'
        # own scale (the log column when there is one), returned as a PooledResult
        from recoverystats.missing.pooling import pool_estimates

        q = np.stack([r.table[coef].to_numpy(float) for r in results])
        v = np.stack([r.vcov.to_numpy(float) for r in results])
        return pool_estimates(q, v, dfcom=dfcom, terms=list(first.table["term"].astype(str)),
                              conf_level=getattr(first, "conf_level", 0.95))
    raise InvalidParameterError(
        f"pool: results of type {kind} cannot be pooled (supported: OddsRatioResult, HazardRatioResult, "
        "RateResult from proportion(), ComparisonResult, SurvivalResult, RiskDifferenceResult, "
        "RiskRatioResult); pool their estimates with pool_estimates()."
    )


def _same_keys(results: Sequence[Any], key_cols: list[str], what: str) -> list[pd.DataFrame]:
    from recoverystats.errors import EstimationError

    tables = [r.table for r in results]
    ref = tables[0][key_cols].astype(str).reset_index(drop=True)
    for i, t in enumerate(tables[1:], start=1):
        other = t[key_cols].astype(str).reset_index(drop=True)
        if not ref.equals(other):
            raise EstimationError(
                f"pool: the {what} differ between imputed data sets 0 and {i} ({ref.to_numpy().ravel().tolist()[:8]} "
                f"vs {other.to_numpy().ravel().tolist()[:8]}): a level of an imputed column is absent from one "
                "data set. Merge rare levels or impute with more data."
            )
    return tables


def _rubin_cols(q: np.ndarray, u: np.ndarray, dfcom: float | np.ndarray, conf_level: float) -> dict[str, np.ndarray]:
    from recoverystats.missing.pooling import _t_crit, _t_p, rubin

    dfc = np.broadcast_to(np.asarray(dfcom, dtype=float), q.shape[1:])
    parts = [rubin(q[:, j:j + 1], u[:, j:j + 1], dfcom=float(dfc[j])) for j in range(q.shape[1])]
    r = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else \
        {k: np.empty(0) for k in ("qbar", "ubar", "b", "t", "df", "riv", "lambda", "fmi")}
    se = np.sqrt(r["t"])
    crit = _t_crit(r["df"], conf_level)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = r["qbar"] / se
    r["se"], r["lo"], r["hi"], r["stat"], r["p"] = se, r["qbar"] - crit * se, r["qbar"] + crit * se, stat, _t_p(stat, r["df"])
    return r


def _mi_table(t: pd.DataFrame, r: dict[str, np.ndarray], m: int) -> pd.DataFrame:
    from recoverystats.missing.pooling import with_mi_columns

    return with_mi_columns(t, r, m)


# -- regression coefficients --------------------------------------------------------------
def _pool_coefficients(results: Sequence[Any], coef_col: str, *, dfcom: float | None) -> Any:
    from recoverystats.errors import InvalidParameterError
    from recoverystats.missing.pooling import d1_test

    first = results[0]
    m = len(results)
    tables = _same_keys(results, ["term"], "model terms")
    terms = list(tables[0]["term"].astype(str))
    vc = []
    for res in results:
        v = res.vcov
        if v.empty:
            raise InvalidParameterError(f"pool: a {type(res).__name__} without a covariance matrix cannot be pooled.")
        vc.append(v.loc[terms, terms].to_numpy(float))
    covs = np.stack(vc)
    q = np.stack([t[coef_col].to_numpy(float) for t in tables])
    u = np.stack([np.diag(c) for c in covs])
    if not np.isfinite(q).all() or not np.isfinite(u).all():
        raise InvalidParameterError(
            "pool: an estimate or its variance is infinite in some imputed data set (separation?); refit "
            "with method='firth' or simplify the model."
        )
    k = len(terms)
    hazard = coef_col == "log_hazard"
    if dfcom is None:
        base = float(np.mean([r.n_events for r in results])) if hazard else float(first.n_used)
        dfc = max(base - k, 1.0)
    else:
        dfc = float(dfcom)
    r = _rubin_cols(q, u, dfc, first.conf_level)
    t = tables[0].copy()
    t[coef_col] = r["qbar"]
    t["std_error"] = r["se"]
    t["estimate"] = np.exp(r["qbar"])
    t["ci_lower"] = np.exp(r["lo"])
    t["ci_upper"] = np.exp(r["hi"])
    t["p_value"] = r["p"]
    if "statistic" in t.columns:
        t["statistic"] = r["stat"]
    if "std_error_model" in t.columns:
        t = t.drop(columns="std_error_model")
    for c in ("n", "events"):
        if c in t.columns:
            vals = np.stack([tt[c].to_numpy(dtype=float, na_value=np.nan) for tt in tables])
            t[c] = pd.array(np.where(np.isnan(vals[0]), pd.NA, np.round(vals.mean(axis=0))), dtype="Int64")
    t = _mi_table(t, r, m)
    bmat = np.atleast_2d(np.cov(q, rowvar=False, ddof=1))
    tmat = covs.mean(axis=0) + (1.0 + 1.0 / m) * bmat
    vcov = pd.DataFrame(tmat, index=terms, columns=terms)
    # D1 for multi-column terms and for the whole model
    term_rows = []
    tp = np.full(k, np.nan)
    variables = t["variable"].astype(str).to_numpy() if "variable" in t.columns else np.array(terms)
    tests0 = getattr(first, "term_tests", pd.DataFrame())
    names = list(tests0["term"]) if len(tests0) else list(dict.fromkeys(v for v in variables))
    for nm in names:
        idx = [j for j in range(k) if variables[j] == str(nm) and ":" not in terms[j]]
        if not idx:
            idx = [j for j in range(k) if terms[j].startswith(f"{nm}[")]
        if len(idx) < 2:
            continue
        d = d1_test(q[:, idx], covs[:, idx][:, :, idx], dfcom=dfc)
        term_rows.append({"term": nm, "df": len(idx), "statistic": d["statistic"], "df_denominator": d["df2"],
                          "p_value": d["p_value"], "riv": d["riv"], "test": d["test"]})
        tp[idx] = d["p_value"]
    if "term_p_value" in t.columns:
        t["term_p_value"] = tp
    term_tests = pd.DataFrame(term_rows, columns=["term", "df", "statistic", "df_denominator", "p_value", "riv", "test"])
    slopes = [j for j in range(k) if terms[j] not in ("Intercept", "(Intercept)")]
    model_tests = pd.DataFrame(columns=["test", "statistic", "df", "df_denominator", "p_value", "robust"])
    if slopes:
        d = d1_test(q[:, slopes], covs[:, slopes][:, :, slopes], dfcom=dfc)
        model_tests = pd.DataFrame([{"test": "wald", "statistic": d["statistic"], "df": d["df1"],
                                     "df_denominator": d["df2"], "p_value": d["p_value"],
                                     "robust": bool(getattr(first, "cluster", None))}])
    scale = "log hazard ratios" if hazard else "log odds ratios"
    note = (f"pooled over {m} imputed data sets by Rubin's rules on the {scale} (complete-data df {dfc:g}); "
            "multi-level terms tested with D1 (F test); the likelihood-based statistics are not pooled.")
    common = dict(
        _table=t, method=f"{first.method}; multiple imputation (m = {m}), Rubin's rules",
        notes=tuple(dict.fromkeys((*first.notes, note))), _vcov=vcov, _tests=model_tests,
        loglik=float("nan"), loglik_null=float("nan"), n_used=int(round(np.mean([r.n_used for r in results]))),
    )
    if hazard:
        return dataclasses.replace(
            first, **common, _vcov_model=pd.DataFrame(), _ph=first._ph.iloc[0:0],
            n_events=int(round(np.mean([r.n_events for r in results]))),
            concordance=float(np.mean([r.concordance for r in results])),
        )
    return dataclasses.replace(
        first, **common, term_tests=term_tests, aic=float("nan"), bic=float("nan"),
        n_events=int(round(np.mean([r.n_events for r in results]))),
        events_per_variable=float(np.mean([r.events_per_variable for r in results])),
        _model=PooledFits(tuple(results), dfcom=dfc),
    )


@dataclasses.dataclass(frozen=True)
class PooledFits:
    """The ``m`` per-imputation odds-ratio fits kept by a pooled result.

    They are kept because :meth:`OddsRatioResult.risk_difference` and ``risk_ratio``
    need each fitted model (g-computation per data set, then Rubin's rules); they hold
    no identifiers and are dropped by ``without_data()``.
    """

    results: tuple[Any, ...]
    dfcom: float
    pooled: bool = True

    def standardised(self, measure: str, *, n_boot: int = 0, seed: int | None = None,
                     conf_level: float | None = None) -> Any:
        each = [r.risk_difference(n_boot=n_boot, seed=seed, conf_level=conf_level) if measure == "rd"
                else r.risk_ratio(n_boot=n_boot, seed=seed, conf_level=conf_level) for r in self.results]
        return _pool_standardised(each, dfcom=self.dfcom)

    def diagnostics(self) -> Any:
        from recoverystats.errors import InvalidParameterError

        raise InvalidParameterError(
            "diagnostics(): model checks are per data set; run odds_ratios(imp.complete(i), ...).diagnostics() "
            "on a completed data set."
        )


def _pool_standardised(results: Sequence[Any], *, dfcom: float | None) -> Any:
    first = results[0]
    m = len(results)
    ratio = type(first).__name__ == "RiskRatioResult"
    tables = _same_keys(results, ["comparison"], "comparisons")
    est = np.stack([t["estimate"].to_numpy(float) for t in tables])
    se = np.stack([t["std_error"].to_numpy(float) for t in tables])
    q = np.log(est) if ratio else est
    dfc = float(dfcom) if dfcom is not None else max(float(first.n_used) - 2.0, 1.0)
    r = _rubin_cols(q, se**2, dfc, first.conf_level)
    t = tables[0].copy()
    back = np.exp if ratio else (lambda x: x)
    t["estimate"], t["ci_lower"], t["ci_upper"] = back(r["qbar"]), back(r["lo"]), back(r["hi"])
    t["p_value"], t["std_error"] = r["p"], r["se"]
    for c in ("risk_exposed", "risk_reference"):
        if c in t.columns:
            t[c] = np.stack([tt[c].to_numpy(float) for tt in tables]).mean(axis=0)
    t = _mi_table(t, r, m)
    scale = "log risk ratio" if ratio else "risk difference"
    note = (f"g-computation in each of the {m} imputed data sets (the {m} fits are kept for this), pooled by "
            f"Rubin's rules on the {scale} scale.")
    return dataclasses.replace(first, _table=t, notes=tuple(dict.fromkeys((*first.notes, note))),
                               method=f"{first.method}; multiple imputation (m = {m})")


# -- proportions and comparisons ----------------------------------------------------------------
def _pool_proportions(results: Sequence[Any], *, dfcom: float | None) -> Any:
    from scipy.special import expit, logit

    first = results[0]
    m = len(results)
    by = list(first.by)
    tables = _same_keys(results, by, "groups") if by else [r.table for r in results]
    n = np.stack([t["n"].to_numpy(float) for t in tables])
    ev = np.stack([t["events"].to_numpy(float) for t in tables])
    p = np.stack([t["estimate"].to_numpy(float) for t in tables])
    se = np.stack([t["std_error"].to_numpy(float) for t in tables])
    notes = []
    edge = (p <= 0) | (p >= 1) | ~np.isfinite(se) | (se <= 0)
    if edge.any():
        # logit undefined at 0 or 1: add half an event and half a non-event (Haldane-Anscombe)
        p_adj = (ev + 0.5) / (n + 1.0)
        se_adj = np.sqrt(p_adj * (1 - p_adj) / (n + 1.0))
        p = np.where(edge, p_adj, p)
        se = np.where(edge, se_adj, se)
        notes.append("a proportion of 0 or 1 in some imputed data set was pooled as (events + 0.5)/(n + 1).")
    q = logit(p)
    u = (se / (p * (1.0 - p))) ** 2
    dfc = np.maximum(n.mean(axis=0) - 1.0, 1.0) if dfcom is None else float(dfcom)
    r = _rubin_cols(q, u, dfc, first.conf_level)
    t = tables[0].copy()
    pe = expit(r["qbar"])
    t["estimate"], t["ci_lower"], t["ci_upper"] = pe, expit(r["lo"]), expit(r["hi"])
    t["std_error"] = pe * (1 - pe) * r["se"]
    t["n"] = n.mean(axis=0)
    t["events"] = ev.mean(axis=0)
    if "n_effective" in t.columns:
        t["n_effective"] = np.stack([tt["n_effective"].to_numpy(float) for tt in tables]).mean(axis=0)
    t = _mi_table(t, r, m)
    notes.append(f"pooled over {m} imputed data sets by Rubin's rules on the logit scale (where a proportion is "
                 "closer to normal), back-transformed; n and events are averages over the data sets; "
                 "std_error is the delta-method SE of the pooled proportion.")
    return dataclasses.replace(first, _table=t, notes=tuple(dict.fromkeys((*first.notes, *notes))),
                               method=f"logit, Rubin's rules (m = {m})",
                               n_used=int(round(np.mean([r.n_used for r in results]))))


def _pool_comparisons(results: Sequence[Any], *, dfcom: float | None) -> Any:
    from recoverystats.errors import InvalidParameterError

    first = results[0]
    m = len(results)
    tables = _same_keys(results, ["comparison"], "comparisons")
    est = np.stack([t["estimate"].to_numpy(float) for t in tables])
    se = np.stack([t["std_error"].to_numpy(float) for t in tables])
    ratio = first.measure != "rd"
    if not np.isfinite(se).all():
        raise InvalidParameterError(
            "compare_proportions with an ImputedData: a standard error is missing in some data set (the exact "
            "odds-ratio interval has none, and a ratio with 0 events is undefined); use ci='woolf' for odds ratios "
            "or measure='rd'."
        )
    q = np.log(est) if ratio else est
    nn = np.stack([(t["n"] + t["n_reference"]).to_numpy(float) for t in tables]) if "n_reference" in tables[0] else None
    dfc = (np.maximum(nn.mean(axis=0) - 2.0, 1.0) if nn is not None else np.inf) if dfcom is None else float(dfcom)
    r = _rubin_cols(q, se**2, dfc, first.conf_level)
    t = tables[0].copy()
    back = np.exp if ratio else (lambda x: x)
    t["estimate"], t["ci_lower"], t["ci_upper"] = back(r["qbar"]), back(r["lo"]), back(r["hi"])
    t["p_value"], t["std_error"] = r["p"], r["se"]
    for c in ("n", "events", "risk", "n_reference", "events_reference", "risk_reference"):
        if c in t.columns:
            t[c] = np.stack([tt[c].to_numpy(float) for tt in tables]).mean(axis=0)
    t["method"] = "Rubin's rules"
    if "test" in t.columns:
        t["test"] = "t (Barnard-Rubin df)"
    t = _mi_table(t, r, m)
    scale = {"rd": "risk-difference", "rr": "log risk-ratio", "or": "log odds-ratio"}.get(first.measure, "log")
    note = (f"pooled over {m} imputed data sets by Rubin's rules on the {scale} scale (Wald SEs of each data set); "
            "counts and risks are averages over the data sets.")
    return dataclasses.replace(first, _table=t, notes=tuple(dict.fromkeys((*first.notes, note))),
                               method=f"Rubin's rules (m = {m})",
                               n_used=int(round(np.mean([r.n_used for r in results]))))


# -- survival probabilities -------------------------------------------------------------------------
def _pool_survival(results: Sequence[Any], *, times: Any, dfcom: float | None) -> Any:
    first = results[0]
    m = len(results)
    by = list(first.by)
    ats = [r.at(times) for r in results]
    keys = by + ["time"]
    ref = ats[0][keys].astype(str).reset_index(drop=True)
    for i, a in enumerate(ats[1:], start=1):
        if not ref.equals(a[keys].astype(str).reset_index(drop=True)):
            from recoverystats.errors import EstimationError

            raise EstimationError(f"pool: the groups of the survival curves differ between imputed data sets 0 and {i}.")
    s = np.stack([a["estimate"].to_numpy(float) for a in ats])
    se = np.stack([a["std_error"].to_numpy(float) for a in ats])
    ok = np.isfinite(s).all(axis=0) & np.isfinite(se).all(axis=0) & (s > 0).all(axis=0) & (s < 1).all(axis=0) \
        & (se > 0).all(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(ok, np.log(-np.log(np.where(ok, s, 0.5))), 0.0)
        u = np.where(ok, (se / (np.where(ok, s, 0.5) * np.log(np.where(ok, s, 0.5)))) ** 2, 1.0)
    groups = first.groups
    if dfcom is None:
        if by:
            gn = ats[0][by].merge(groups[by + ["n"]], on=by, how="left")["n"].to_numpy(float)
        else:
            gn = np.full(len(ats[0]), float(groups["n"].iloc[0]))
        dfc: Any = np.maximum(gn - 1.0, 1.0)
    else:
        dfc = float(dfcom)
    r = _rubin_cols(q, u, dfc, first.conf_level)
    est = np.exp(-np.exp(r["qbar"]))
    lo, hi = np.exp(-np.exp(r["hi"])), np.exp(-np.exp(r["lo"]))
    # rows where S is 0 or 1 (or undefined) in some data set: the mean S, no interval
    mean_s = np.nanmean(s, axis=0) if np.isfinite(s).any() else np.full(s.shape[1], np.nan)
    est = np.where(ok, est, mean_s)
    lo = np.where(ok, lo, np.where(np.all(s >= 1, axis=0), 1.0, np.nan))
    hi = np.where(ok, hi, np.where(np.all(s >= 1, axis=0), 1.0, np.nan))
    with np.errstate(invalid="ignore"):
        se_s = np.where(ok, est * np.abs(np.log(np.where(est > 0, est, 1.0))) * r["se"],
                        np.where(np.all(s >= 1, axis=0), 0.0, np.nan))
    table = ats[0][by].reset_index(drop=True).copy() if by else pd.DataFrame(index=range(len(ats[0])))
    table["time"] = ats[0]["time"].to_numpy(float)
    table["n_at_risk"] = np.nan
    table["events"] = np.nan
    table["censored"] = np.nan
    table["estimate"], table["ci_lower"], table["ci_upper"], table["std_error"] = est, lo, hi, se_s
    for key in ("riv", "lambda", "fmi", "df", "ubar", "b", "t"):
        r[key] = np.where(ok, r[key], np.nan)
    table = _mi_table(table, r, m)
    # the pooled step function at `times`, with the pooled cloglog variance as its
    # "greenwood" (var log S) so that .at()/.plot() show the pooled points
    curve = table[by + ["time", "n_at_risk", "events", "censored", "estimate"]].copy()
    curve["events"] = 0.0
    curve["censored"] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        curve["greenwood"] = np.where(ok, r["t"] * np.log(np.where(est > 0, est, 1.0)) ** 2, 0.0)
    g = groups.copy()
    g["weight"] = np.nan  # no pooled at-risk counts
    g["n"] = np.mean([r_.groups["n"].to_numpy(float) for r_ in results], axis=0)
    g["events"] = np.mean([r_.groups["events"].to_numpy(float) for r_ in results], axis=0)
    g["max_time"] = np.max([r_.groups["max_time"].to_numpy(float) for r_ in results], axis=0)
    note = (f"S(t) pooled at times {list(np.atleast_1d(np.asarray(times, dtype=float)))} over {m} imputed data sets "
            "by Rubin's rules on the complementary log-log scale (log(-log S)); no pooled at-risk counts; .at(), "
            ".median() and .plot() use the pooled values at these times only.")
    return dataclasses.replace(
        first, _table=table, _curve=curve, _groups=g, _entries=None, conf_type="log-log",
        method=f"{first.method}; multiple imputation (m = {m}), Rubin's rules on cloglog S(t)",
        notes=tuple(dict.fromkeys((*first.notes, note))),
        n_used=int(round(np.mean([r_.n_used for r_ in results]))),
    )
