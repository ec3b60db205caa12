"""Effect modification: the exposure's effect within each level of a modifier ("for whom does it work?")."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from recoverystats._checks import (
    as_column_list,
    check_columns,
    check_conf_level,
    check_dataframe,
    check_option,
)
from recoverystats._design import category_levels, check_reference, plain
from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.results.synthesis import EffectModificationResult

__all__ = ["effect_modification"]

Scale = Literal["or", "rd", "hr"]
#: A modifier with more levels than this is refused (an effect per level would mean little).
MAX_LEVELS = 20


def _level_text(v: Any) -> str:
    v = plain(v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def effect_modification(
    df: pd.DataFrame,
    *,
    outcome: str | None = None,
    exposure: str,
    modifier: str,
    adjust: str | Iterable[str] = (),
    scale: Scale = "or",
    time: str | None = None,
    event: str | None = None,
    cluster: str | None = None,
    reference: Mapping[str, Any] | None = None,
    weights: str | None = None,
    weight_type: Literal["frequency", "sampling"] = "frequency",
    method: Literal["auto", "mle", "firth"] = "auto",
    conf_level: float = 0.95,
) -> EffectModificationResult:
    """The exposure's effect in each level of a modifier, with the interaction test.

    Parameters
    ----------
    df
        One row per participant (e.g. a measure table; only ``eligible`` rows are used
        when that column exists and the outcome is binary).
    outcome
        The 0/1 outcome (logistic model). Leave unset and give ``time``/``event`` for a
        Cox model (hazard ratios).
    exposure
        A column with exactly two levels (e.g. ``group``); its effect is estimated in
        each level of ``modifier``. The reference level follows ``odds_ratios``
        (``reference={exposure: ...}`` to choose).
    modifier
        A categorical column (at most ``MAX_LEVELS`` = 20 levels; a numeric column is
        treated as categorical). Its first level (or ``reference={modifier: ...}``) is
        the reference for RERI.
    adjust
        Covariates, with effects common to all levels.
    scale
        ``"or"`` (odds ratios per level; the default), ``"rd"`` (standardised risk
        differences per level, the additive scale) or ``"hr"`` (hazard ratios; implied
        by ``time``/``event``).
    time, event
        Follow-up time and 0/1 event columns: Cox model (``hazard_ratios``).
    cluster
        Cluster column (e.g. ``mentor_id``) for cluster-robust variances.
    reference
        Reference levels, e.g. ``{"group": "comparison", "risk_level": "low"}``.
    weights, weight_type
        Case weights as in :func:`recoverystats.odds_ratios`.
    method
        Passed to ``odds_ratios`` (``"auto"`` uses Firth's penalised likelihood when
        events are few or the data separated; the notes say so).
    conf_level
        Confidence level of every interval.

    Returns
    -------
    EffectModificationResult
        ``.table`` one row per modifier level (estimate, CI, n, events, exposed n and
        events); ``.interaction`` the interaction test(s); ``.reri`` RERI, AP and S for
        two binary factors on a ratio scale; ``.plot()`` a subgroup forest plot.

    Raises
    ------
    InvalidParameterError
        Unknown columns, an exposure without exactly two levels, a modifier with one
        level or more than 20, ``scale="rd"`` with ``time``/``event``.
    DataValidationError
        A modifier level without both exposure levels (no effect can be estimated there).

    Notes
    -----
    One model with an exposure-by-modifier interaction, parametrised so that each
    coefficient is the exposure's effect within one level:
    ``g(E[Y]) = a + sum_l b_l [exposed][modifier = l] + modifier main effects + adjust``
    (logistic: ``g = logit``; Cox: the log hazard). This is the same model as
    ``exposure * modifier`` (a reparametrisation: ``b_l`` = main effect + interaction
    for level ``l``), fitted with :func:`recoverystats.odds_ratios` /
    :func:`recoverystats.hazard_ratios`; ``exp(b_l)`` and its Wald CI are the per-level
    odds (hazard) ratios, with the model's ``.vcov`` (cluster-robust when clustered).
    Without adjustment covariates the model is saturated and each ``b_l`` equals the
    log odds ratio of a separate fit within the level.

    Interaction test (multiplicative scale): likelihood ratio ``2(l_full - l_common)``
    against the model with one common exposure effect, on ``L - 1`` df (penalised for
    Firth); with a cluster or sampling weights a Wald test of ``b_1 = ... = b_L`` with
    the robust covariance (``.interaction`` says which).

    Additive scale (``scale="rd"``): within each level, the risk difference standardised
    to that level's participants (g-computation, covariates at their observed values:
    Stata ``margins r.exposure, over(modifier)``), with delta-method variances from the
    model covariance; the additive interaction test is the Wald test that the risk
    differences are equal (``L - 1`` df), with their joint delta-method covariance.

    RERI (two binary factors, ``"or"``/``"hr"``): with ``OR10 = exp(b_0)`` (exposure,
    modifier reference), ``OR01`` (modifier main effect) and ``OR11 = OR01 exp(b_1)``,
    ``RERI = OR11 - OR10 - OR01 + 1``, ``AP = RERI / OR11``, ``S = (OR11 - 1) /
    (OR10 + OR01 - 2)``, delta-method CIs (Hosmer and Lemeshow 1992; S on the log
    scale). Odds ratios approximate risk ratios only when the outcome is rare; the
    measures assume the reference levels are the lower-risk ones (Knol et al. 2011:
    recode a preventive factor so that the reference stratum has the lowest risk).

    Multiplicity: the notes state how many subgroups were estimated. The per-level
    p-values are not adjusted; the interaction test is the test of whether the effect
    differs, and subgroup effects are exploratory unless pre-specified.

    References
    ----------
    Hosmer DW, Lemeshow S (1992). Confidence interval estimation of interaction.
    Epidemiology 3:452-456.
    Knol MJ, VanderWeele TJ, Groenwold RHH, et al. (2011). Estimating measures of
    interaction on an additive scale for preventive exposures. Eur J Epidemiol 26:433-438.
    Knol MJ, VanderWeele TJ (2012). Recommendations for presenting analyses of effect
    modification and interaction. Int J Epidemiol 41:514-520.
    Wang R, Lagakos SW, Ware JH, Hunter DJ, Drazen JM (2007). Statistics in medicine -
    reporting of subgroup analyses in clinical trials. N Engl J Med 357:2189-2194.
    """
    df = check_dataframe(df)
    level = check_conf_level(conf_level)
    check_option("scale", scale, Scale)
    check_option("weight_type", weight_type, ("frequency", "sampling"))
    check_option("method", method, ("auto", "mle", "firth"))
    survival = time is not None or event is not None
    if survival:
        if time is None or event is None:
            raise InvalidParameterError("effect_modification(): time= and event= go together for hazard ratios.")
        if outcome is not None:
            raise InvalidParameterError(
                "effect_modification(): give either outcome= (odds ratios) or time=/event= (hazard ratios), not both."
            )
        if scale == "rd":
            raise InvalidParameterError(
                "scale='rd' is for a binary outcome; with time=/event= the effect is a hazard ratio (scale='hr')."
            )
        scale_ = "hr"
    else:
        if outcome is None:
            raise InvalidParameterError(
                "effect_modification(): name the 0/1 outcome (outcome=...) or give time=/event= for hazard ratios."
            )
        if scale == "hr":
            raise InvalidParameterError("scale='hr' needs time= and event= (a Cox model).")
        scale_ = scale
    adj = as_column_list(adjust)
    if exposure == modifier:
        raise InvalidParameterError(f"exposure and modifier are the same column ({exposure!r}); pass two columns.")
    if exposure in adj or modifier in adj:
        raise InvalidParameterError("effect_modification(): the exposure and the modifier must not be in adjust=.")
    refs = check_reference(reference)
    response = [time, event] if survival else [outcome]
    used = [c for c in [*response, exposure, modifier, *adj, cluster, weights] if c is not None]
    check_columns(df, [exposure], "exposure")
    check_columns(df, [modifier], "modifier")
    check_columns(df, adj, "adjust")
    check_columns(df, [c for c in response if c is not None], "outcome" if not survival else "time/event")
    if cluster is not None:
        check_columns(df, [cluster], "cluster")
    if weights is not None:
        check_columns(df, [weights], "weights")

    # -- rows: eligible (binary outcomes), complete cases, positive weights ------------------
    d = df
    n_in = len(d)
    if not survival and "eligible" in d.columns:
        d = d[d["eligible"].fillna(False).astype(bool)]
    # a missing cluster id is left to the fitter (it makes the row its own cluster)
    keep = d[[c for c in used if c != cluster]].notna().all(axis=1)
    if weights is not None:
        keep &= pd.to_numeric(d[weights], errors="coerce").fillna(0) > 0
    d = d.loc[keep, list(dict.fromkeys(used))].copy()
    n_excluded = n_in - len(d)
    notes: list[str] = []
    if weights is not None:
        notes.append("The n and events columns count rows, not weights; the estimates use the weights.")
    if n_excluded:
        notes.append(f"{n_excluded} row(s) not used (not eligible, missing values or zero weight).")

    ex_levels = category_levels(d[exposure], exposure, refs.get(exposure))
    if len(ex_levels) != 2:
        raise InvalidParameterError(
            f"exposure {exposure!r} must have exactly two levels in the rows used; got {len(ex_levels)} "
            f"({', '.join(map(_level_text, ex_levels[:10]))}). Compare two groups at a time."
        )
    mod_levels = category_levels(d[modifier], modifier, refs.get(modifier))
    if len(mod_levels) < 2:
        raise InvalidParameterError(
            f"modifier {modifier!r} has {len(mod_levels)} level(s) in the rows used; it needs at least two."
        )
    if len(mod_levels) > MAX_LEVELS:
        raise InvalidParameterError(
            f"modifier {modifier!r} has {len(mod_levels)} levels (more than {MAX_LEVELS}); group it into a few "
            "categories (e.g. age bands) first."
        )
    ref_ex, exposed = ex_levels
    x = (d[exposure] == exposed).to_numpy()
    for lv in mod_levels:
        in_lv = (d[modifier] == lv).to_numpy()
        if x[in_lv].all() or not x[in_lv].any():
            raise DataValidationError(
                f"effect_modification(): modifier {modifier!r} level {_level_text(lv)!r} has only "
                f"{_level_text(exposed if x[in_lv].all() else ref_ex)!r} participants of {exposure!r}; the "
                "exposure's effect cannot be estimated there. Combine it with another level or drop it."
            )
    ex_text = f"{exposure}[{_level_text(exposed)}]"
    cols = [f"{ex_text} | {modifier}={_level_text(lv)}" for lv in mod_levels]
    for c, lv in zip(cols, mod_levels, strict=True):
        if c in d.columns:
            raise InvalidParameterError(f"effect_modification(): the data already has a column named {c!r}; rename it.")
        d[c] = (x & (d[modifier] == lv).to_numpy()).astype(float)
    common = f"{ex_text} (common)"
    d[common] = x.astype(float)
    model_ref = {k: v for k, v in refs.items() if k not in (exposure,)}
    model_ref[modifier] = mod_levels[0]

    fit_kw: dict[str, Any] = {"cluster": cluster, "reference": model_ref}
    if weights is not None:
        fit_kw.update(weights=weights, weight_type=weight_type)
    if survival:
        from recoverystats.survival import hazard_ratios

        def fit(terms: list[str], **extra: Any) -> Any:
            return hazard_ratios(d, time=time, event=event, adjust=[*terms, modifier, *adj], **fit_kw)
    else:
        from recoverystats.regression import odds_ratios

        def fit(terms: list[str], **extra: Any) -> Any:
            return odds_ratios(d, outcome, adjust=[*terms, modifier, *adj], method=extra.get("method", method),
                               **fit_kw)
    full = fit(cols)
    coef_col = "log_hazard" if survival else "log_odds"
    t = full.table.set_index("term")
    b = t.loc[cols, coef_col].to_numpy(float)
    V = full.vcov.loc[cols, cols].to_numpy(float)
    L = len(cols)
    firth = str(getattr(full, "method", "")).startswith("Firth")
    notes.extend(n for n in full.notes if n not in notes)
    robust = cluster is not None or (weights is not None and weight_type == "sampling")

    # -- interaction test, multiplicative scale -------------------------------------------------
    C = np.zeros((L - 1, L))
    C[:, 0] = -1.0
    C[np.arange(L - 1), np.arange(1, L)] = 1.0
    if robust:
        cb = C @ b
        w_stat = float(cb @ np.linalg.solve(C @ V @ C.T, cb))
        test_name = "Wald (robust)"
        stat_mult = w_stat
    else:
        reduced = fit([common], method="firth" if firth else method)
        stat_mult = max(0.0, 2.0 * (float(full.loglik) - float(reduced.loglik)))
        test_name = "likelihood ratio" + (" (penalised, Firth)" if firth else "")
    inter_rows = [{"scale": "multiplicative", "test": test_name, "statistic": stat_mult, "df": L - 1,
                   "p_value": float(stats.chi2.sf(stat_mult, L - 1))}]

    # -- per-level table --------------------------------------------------------------------------
    outcome_col = event if survival else outcome
    yv = pd.to_numeric(d[outcome_col], errors="coerce").to_numpy(float)
    if not survival and d[outcome_col].dtype == bool:
        yv = d[outcome_col].to_numpy(float)
    rows = []
    for lv in mod_levels:
        in_lv = (d[modifier] == lv).to_numpy()
        rows.append({"modifier": modifier, "level": plain(lv), "n": int(in_lv.sum()),
                     "events": int(np.nansum(yv[in_lv])), "n_exposed": int((in_lv & x).sum()),
                     "events_exposed": int(np.nansum(yv[in_lv & x]))})
    table = pd.DataFrame(rows)
    vcov_out = pd.DataFrame(V, index=[_level_text(v) for v in mod_levels], columns=[_level_text(v) for v in mod_levels])
    if scale_ in ("or", "hr"):
        table["estimate"] = t.loc[cols, "estimate"].to_numpy(float)
        table["ci_lower"] = t.loc[cols, "ci_lower"].to_numpy(float)
        table["ci_upper"] = t.loc[cols, "ci_upper"].to_numpy(float)
        table["std_error"] = t.loc[cols, "std_error"].to_numpy(float)
        table["statistic"] = b / table["std_error"].to_numpy(float)
        table["p_value"] = t.loc[cols, "p_value"].to_numpy(float)
    else:
        rd, cov_rd, crit, pfun = _standardised_rd(full, d, cols, mod_levels, modifier, level)
        se = np.sqrt(np.diag(cov_rd))
        table["estimate"] = rd
        table["ci_lower"] = rd - crit * se
        table["ci_upper"] = rd + crit * se
        table["std_error"] = se
        table["statistic"] = rd / se
        table["p_value"] = pfun(rd / se)
        vcov_out = pd.DataFrame(cov_rd, index=vcov_out.index, columns=vcov_out.columns)
        crd = C @ rd
        w_add = float(crd @ np.linalg.solve(C @ cov_rd @ C.T, crd))
        inter_rows.append({"scale": "additive", "test": "Wald (delta method)", "statistic": w_add, "df": L - 1,
                           "p_value": float(stats.chi2.sf(w_add, L - 1))})
    table["scale"] = scale_
    table = table[["modifier", "level", "estimate", "ci_lower", "ci_upper", "std_error", "statistic", "p_value",
                   "n", "events", "n_exposed", "events_exposed", "scale"]]

    # -- RERI for two binary factors --------------------------------------------------------------
    reri = pd.DataFrame()
    if L == 2 and scale_ in ("or", "hr"):
        mod_term = t.index[(t["variable"] == modifier)].tolist()
        if len(mod_term) == 1:
            terms3 = [cols[0], cols[1], mod_term[0]]
            b3 = t.loc[terms3, coef_col].to_numpy(float)
            V3 = full.vcov.loc[terms3, terms3].to_numpy(float)
            reri = _reri(b3, V3, level)

    pct = 1 - 0.95**L
    notes.append(
        f"{L} subgroups of {modifier!r} were estimated (one model with an interaction). Per-subgroup p-values are "
        f"not adjusted for multiplicity: with {L} independent tests at the 5% level the chance of at least one "
        f"false positive is up to {pct:.0%}. The interaction test is the evidence that the effect differs; "
        "subgroup effects are exploratory unless pre-specified."
    )
    kind = "Cox model" if survival else "logistic model"
    scale_text = {"or": "odds ratio", "hr": "hazard ratio", "rd": "standardised risk difference"}[scale_]
    method_text = f"{scale_text} per level of {modifier} ({kind} with {exposure} x {modifier} interaction)"
    return EffectModificationResult(
        _table=table,
        conf_level=level,
        method=method_text,
        n_used=int(getattr(full, "n_used", len(d))),
        n_excluded=n_excluded,
        notes=tuple(notes),
        exposure=exposure,
        modifier=modifier,
        exposed_level=plain(exposed),
        reference_level=plain(ref_ex),
        scale=scale_,
        interaction=pd.DataFrame(inter_rows),
        reri=reri,
        n_subgroups=L,
        _vcov=vcov_out,
    )


def _standardised_rd(full: Any, d: pd.DataFrame, cols: list[str], mod_levels: tuple[Any, ...], modifier: str,
                     level: float) -> tuple[np.ndarray, np.ndarray, float, Any]:
    """Per-level g-computation risk differences and their joint delta-method covariance."""
    model = full._need_model("effect_modification(scale='rd')")
    X = model.design.X
    names = list(model.design.names)
    beta = np.asarray(model.beta, float)
    V = np.asarray(model.cov, float)
    w = model.weights if getattr(model, "weights", None) is not None else np.ones(X.shape[0])
    if X.shape[0] != len(d):  # pragma: no cover - rows are filtered before the fit
        raise DataValidationError("effect_modification(): internal row mismatch between the data and the model.")
    G = np.zeros((len(cols), len(beta)))
    rd = np.zeros(len(cols))
    for i, (c, lv) in enumerate(zip(cols, mod_levels, strict=True)):
        j = names.index(c)
        rows = (d[modifier] == lv).to_numpy()
        X1 = X[rows].copy()
        X1[:, j] = 1.0
        X0 = X1.copy()
        X0[:, j] = 0.0
        ww = w[rows] / np.sum(w[rows])
        p1, p0 = expit(X1 @ beta), expit(X0 @ beta)
        rd[i] = float(ww @ p1 - ww @ p0)
        G[i] = (ww * p1 * (1 - p1)) @ X1 - (ww * p0 * (1 - p0)) @ X0
    cov = G @ V @ G.T
    crit = float(model.crit(level))
    return rd, cov, crit, model.pvalue


def _reri(b: np.ndarray, V: np.ndarray, level: float) -> pd.DataFrame:
    """RERI, AP and S with delta-method CIs from (b_exposure|mod=0, b_exposure|mod=1, b_modifier)."""
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    or10 = math.exp(b[0])
    or01 = math.exp(b[2])
    or11 = math.exp(b[2] + b[1])
    d11 = np.array([0.0, or11, or11])
    d10 = np.array([or10, 0.0, 0.0])
    d01 = np.array([0.0, 0.0, or01])
    reri = or11 - or10 - or01 + 1
    g_reri = d11 - d10 - d01
    ap = reri / or11
    g_ap = (g_reri * or11 - reri * d11) / or11**2
    rows = []
    for name, est, g in (("RERI", reri, g_reri), ("AP", ap, g_ap)):
        se = math.sqrt(float(g @ V @ g))
        rows.append({"measure": name, "estimate": est, "ci_lower": est - z * se, "ci_upper": est + z * se,
                     "std_error": se})
    num, den = or11 - 1, or10 + or01 - 2
    if num > 0 and den > 0:
        s = num / den
        g_ln = d11 / num - (d10 + d01) / den
        se = math.sqrt(float(g_ln @ V @ g_ln))
        with np.errstate(over="ignore"):
            lo_s, hi_s = np.exp(math.log(s) + np.array([-z, z]) * se)
        rows.append({"measure": "S", "estimate": s, "ci_lower": float(lo_s), "ci_upper": float(hi_s),
                     "std_error": se})
    else:
        # S is defined only when both single-factor effects and the joint effect are harmful
        # (Knol et al. 2011: recode preventive factors)
        rows.append({"measure": "S", "estimate": float("nan"), "ci_lower": float("nan"),
                     "ci_upper": float("nan"), "std_error": float("nan")})
    return pd.DataFrame(rows)
