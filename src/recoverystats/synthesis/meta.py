"""Pooling one effect across sites or studies: fixed- and random-effects meta-analysis."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from recoverystats._checks import check_columns, check_conf_level, check_dataframe, check_option
from recoverystats.errors import DataValidationError, EstimationError, InvalidParameterError
from recoverystats.results.synthesis import MetaAnalysisResult

__all__ = ["meta_analysis", "effect_sizes"]

Measure = Literal["or", "rr", "rd", "hr", "generic"]
MetaMethod = Literal["REML", "FE", "DL", "PM"]

#: Measures pooled on the log scale (shown exponentiated).
RATIO_MEASURES = ("or", "rr", "hr")
#: Maximum root-finding iterations for the REML tau^2.
REML_MAX_ITER = 200
_MEASURE_NAMES = {"or": "odds ratio", "rr": "risk ratio", "hr": "hazard ratio", "rd": "risk difference",
                  "generic": "effect"}
_METHOD_NAMES = {"FE": "fixed effect (inverse variance)", "DL": "random effects, DerSimonian-Laird",
                 "REML": "random effects, REML", "PM": "random effects, Paule-Mandel"}


# -- effect sizes from 2x2 counts ---------------------------------------------------------
def effect_sizes(a: Any, n1: Any, c: Any, n2: Any, *, measure: str = "or", cc: float = 0.5) -> pd.DataFrame:
    """Per-study effect sizes and sampling variances from 2x2 counts (metafor ``escalc``).

    Parameters
    ----------
    a, n1
        Events and participants in the exposed group of each study.
    c, n2
        Events and participants in the reference group.
    measure
        ``"or"`` (log odds ratio), ``"rr"`` (log risk ratio) or ``"rd"`` (risk difference).
    cc
        Continuity correction added to all four cells of a study that has a zero cell
        (metafor's default ``add = 1/2, to = "only0"``); 0 switches it off.

    Returns
    -------
    pandas.DataFrame
        ``yi`` (log OR / log RR / RD), ``vi`` (its sampling variance) and ``corrected``
        (True where the correction was added).

    Notes
    -----
    With cells ``a, b = n1 - a, c, d = n2 - c`` (after the correction):
    log OR ``log(ad/bc)``, variance ``1/a + 1/b + 1/c + 1/d``; log RR
    ``log((a/n1)/(c/n2))``, variance ``1/a - 1/n1 + 1/c - 1/n2``; RD
    ``a/n1 - c/n2``, variance ``p1(1-p1)/n1 + p2(1-p2)/n2`` (metafor's default
    ``vtype = "LS"``). As R ``metafor::escalc(measure = "OR"|"RR"|"RD", ai, bi, ci, di)``.
    For the risk difference no correction is needed, but metafor adds it to studies with
    a zero cell all the same (``to = "only0"`` applies to every measure); so do we, so that
    the numbers agree.
    """
    a = np.asarray(a, dtype=float)
    n1 = np.asarray(n1, dtype=float)
    c = np.asarray(c, dtype=float)
    n2 = np.asarray(n2, dtype=float)
    b, d = n1 - a, n2 - c
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    add = np.where(zero, cc, 0.0)
    a, b, c, d = a + add, b + add, c + add, d + add
    m1, m2 = a + b, c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "or":
            yi = np.log(a * d / (b * c))
            vi = 1 / a + 1 / b + 1 / c + 1 / d
        elif measure == "rr":
            yi = np.log((a / m1) / (c / m2))
            vi = 1 / a - 1 / m1 + 1 / c - 1 / m2
        elif measure == "rd":
            p1, p2 = a / m1, c / m2
            yi = p1 - p2
            vi = p1 * (1 - p1) / m1 + p2 * (1 - p2) / m2
        else:
            raise InvalidParameterError(
                f"measure={measure!r}: effect sizes from counts are available for 'or', 'rr' and 'rd'."
            )
    return pd.DataFrame({"yi": yi, "vi": vi, "corrected": zero & (cc > 0)})


# -- tau^2 estimators ---------------------------------------------------------------------
def _tau2_dl(y: np.ndarray, v: np.ndarray) -> float:
    w = 1.0 / v
    mu = np.sum(w * y) / np.sum(w)
    q = float(np.sum(w * (y - mu) ** 2))
    denom = np.sum(w) - np.sum(w**2) / np.sum(w)
    return max(0.0, (q - (len(y) - 1)) / denom)


def _q_gen(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    w = 1.0 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mu) ** 2))


def _tau2_pm(y: np.ndarray, v: np.ndarray) -> float:
    k = len(y)
    if _q_gen(0.0, y, v) <= k - 1:
        return 0.0
    hi = max(1.0, 10 * float(np.var(y, ddof=1)))
    while _q_gen(hi, y, v) > k - 1:
        hi *= 10
    return float(optimize.brentq(lambda t: _q_gen(t, y, v) - (k - 1), 0.0, hi, xtol=1e-12, rtol=1e-14,
                                 maxiter=500))


def _reml_parts(tau2: float, y: np.ndarray, v: np.ndarray) -> tuple[float, float, float]:
    """``y'PPy``, ``tr P`` and ``tr(PP)`` for ``P = W - w w'/sum(w)``, ``w = 1/(v + tau^2)``.

    Closed forms for the intercept-only model (O(k), no k x k matrix): ``Py = w (y - mu)``,
    ``tr P = sum w - sum w^2 / S`` and ``tr(PP) = sum w^2 - 2 sum w^3 / S + (sum w^2)^2 / S^2``
    with ``S = sum w``.
    """
    w = 1.0 / (v + tau2)
    S = float(np.sum(w))
    mu = float(np.sum(w * y)) / S
    s2, s3 = float(np.sum(w**2)), float(np.sum(w**3))
    ypy = float(np.sum((w * (y - mu)) ** 2))
    return ypy, S - s2 / S, s2 - 2 * s3 / S + s2**2 / S**2


def _reml_score(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    """Twice the REML score for tau^2: ``y'PPy - tr P``."""
    ypy, tr_p, _ = _reml_parts(tau2, y, v)
    return ypy - tr_p


def _tau2_reml(y: np.ndarray, v: np.ndarray) -> tuple[float, float, int]:
    """REML tau^2 as the root of the REML score equation, with its standard error.

    The root of ``y'PPy = tr P`` is the fixed point of metafor's Fisher scoring
    ``tau^2 + (y'PPy - tr P)/tr(PP)``; it is found here by bracketing and Brent's method
    (``scipy.optimize.brentq``), because plain Fisher scoring can oscillate for ever
    near small tau^2. tau^2 = 0 when the score at 0 is not positive.
    """
    if _reml_score(0.0, y, v) <= 0:
        tau2, it = 0.0, 0
    else:
        hi = max(1.0, 10 * float(np.var(y, ddof=1)))
        it = 0
        while _reml_score(hi, y, v) > 0:
            hi *= 10
            it += 1
            if it > 50:
                raise EstimationError(
                    "meta_analysis(method='REML'): the REML score stays positive for every tau^2 tried; "
                    "try method='PM' or method='DL'."
                )
        tau2, r = optimize.brentq(_reml_score, 0.0, hi, args=(y, v), xtol=1e-12, rtol=1e-14,
                                  maxiter=REML_MAX_ITER, full_output=True, disp=False)
        if not r.converged:
            raise EstimationError(
                f"meta_analysis(method='REML'): the tau^2 root search did not converge in {REML_MAX_ITER} "
                "iterations; try method='PM' or method='DL'."
            )
        it = r.iterations
    se = math.sqrt(2.0 / _reml_parts(float(tau2), y, v)[2])
    return float(tau2), se, it


# -- inputs ----------------------------------------------------------------------------------
def _from_results(results: Any, label: Any, term: str | None,
                  measure: str | None) -> tuple[pd.DataFrame, str, str]:
    from recoverystats.results.regression import OddsRatioResult
    from recoverystats.results.survival import HazardRatioResult

    if isinstance(results, Mapping):
        labels = [str(k) for k in results]
        items = list(results.values())
    else:
        items = list(results)
        if label is None:
            labels = [f"study {i + 1}" for i in range(len(items))]
        elif isinstance(label, str) or len(label) != len(items):
            raise InvalidParameterError(
                "label: with a list of results, pass one label per result (a list of the same length); "
                f"got {label!r} for {len(items)} results."
            )
        else:
            labels = [str(x) for x in label]
    rows = []
    kinds = set()
    terms: list[str] = []
    for lab, res in zip(labels, items, strict=True):
        if isinstance(res, OddsRatioResult):
            kinds.add("or")
            col = "log_odds"
        elif isinstance(res, HazardRatioResult):
            kinds.add("hr")
            col = "log_hazard"
        else:
            raise InvalidParameterError(
                f"meta_analysis(): result {lab!r} is a {type(res).__name__}; pass OddsRatioResult or "
                "HazardRatioResult objects, or a DataFrame with estimate=/std_error= columns."
            )
        t = res.table
        if term is not None:
            sel = t[t["term"] == term]
            if sel.empty:
                raise InvalidParameterError(
                    f"term={term!r} is not a term of result {lab!r}; its terms: {', '.join(map(str, t['term']))}."
                )
        else:
            exposure = getattr(res, "exposure", None)
            if exposure is None and isinstance(res, HazardRatioResult):
                exposure = t["variable"].iloc[0] if len(t) else None
            if exposure is None:
                raise InvalidParameterError(
                    f"meta_analysis(): result {lab!r} has no designated exposure; fit it with exposure=... "
                    "or pass term='...' naming the coefficient to pool."
                )
            sel = t[(t["variable"] == exposure) & ~t["term"].astype(str).str.contains(":", regex=False)]
            if len(sel) != 1:
                raise InvalidParameterError(
                    f"meta_analysis(): result {lab!r} has {len(sel)} exposure terms "
                    f"({', '.join(map(str, sel['term']))}); pass term='...' naming the one to pool."
                )
        r = sel.iloc[0]
        terms.append(str(r["term"]))
        row: dict[str, Any] = {"label": lab, "yi": float(r[col]), "vi": float(r["std_error"]) ** 2}
        n_used = getattr(res, "n_used", None)
        row["n"] = n_used
        row["events"] = getattr(res, "n_events", None)
        rows.append(row)
    if len(kinds) > 1:
        raise InvalidParameterError("meta_analysis(): the results mix odds ratios and hazard ratios; pool one measure.")
    if len(set(terms)) > 1:
        shown = ", ".join(f"{lab}: {t}" for lab, t in zip(labels, terms, strict=True))
        raise InvalidParameterError(
            f"meta_analysis(): the results do not estimate the same term ({shown}); fit them with the same "
            "exposure and reference, or pass term='...'."
        )
    kind = kinds.pop() if kinds else "or"
    if measure is not None and measure != kind:
        raise InvalidParameterError(
            f"measure={measure!r} but the results are {_MEASURE_NAMES[kind]}s; leave measure unset or pass {kind!r}."
        )
    return pd.DataFrame(rows), kind, terms[0] if terms else ""


def meta_analysis(
    df: pd.DataFrame | Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    estimate: str | None = None,
    std_error: str | None = None,
    counts: Sequence[str] | None = None,
    measure: Measure | None = None,
    method: MetaMethod = "REML",
    hksj: bool = False,
    label: str | Sequence[str] | None = None,
    term: str | None = None,
    conf_level: float = 0.95,
    cc: float = 0.5,
) -> MetaAnalysisResult:
    """Pool one effect across sites or studies (fixed or random effects).

    Parameters
    ----------
    df
        One of: a DataFrame with one row per site/study (give ``estimate`` and
        ``std_error``, or ``counts``); a list of ``OddsRatioResult`` /
        ``HazardRatioResult`` objects (e.g. ``odds_ratios`` fitted by site) with
        ``label=`` a list of names; or a dict ``{site: result}``. From results, the
        exposure's log odds ratio (log hazard ratio) and its standard error are pooled
        (``term=`` picks another coefficient, or one level of a multi-level exposure).
    estimate, std_error
        Columns with each study's estimate **on the pooling scale** (log odds ratio, log
        risk ratio, log hazard ratio; a risk difference as it is) and its standard error.
    counts
        Four columns: events exposed, participants exposed, events reference,
        participants reference. Effect sizes are computed as R ``metafor::escalc``
        (see :func:`effect_sizes`).
    measure
        ``"or"``, ``"rr"``, ``"hr"``, ``"rd"`` or ``"generic"``; decides whether the
        pooled value is shown exponentiated (ratios) and how counts are turned into
        effect sizes. Default: ``"or"`` (``"hr"`` for hazard-ratio results).
    method
        ``"REML"`` (default), ``"DL"`` (DerSimonian-Laird), ``"PM"`` (Paule-Mandel) or
        ``"FE"`` (fixed effect, inverse variance).
    hksj
        Hartung-Knapp-Sidik-Jonkman: scale the variance of the pooled estimate and use
        t(k - 1) for its CI, test and the prediction interval (metafor ``test = "knha"``).
    label
        A column naming each study (DataFrame input), or the list of names (list of
        results). Default: "study 1", "study 2", ...
    term
        With results as input: the term to pool (default: the exposure's single term).
    conf_level
        Confidence level of every interval (CI and prediction interval).
    cc
        Continuity correction for studies with a zero cell (counts input).

    Returns
    -------
    MetaAnalysisResult
        ``.table``: one row per study then one ``pooled`` row; ``.tau2``, ``.tau2_se``,
        ``.i2``, ``.h2``, ``.q``, ``.q_df``, ``.q_p_value``, the prediction interval
        ``.pi_lower``/``.pi_upper``, ``.heterogeneity`` and ``.egger`` tables,
        ``.plot()`` (forest plot with weights).

    Raises
    ------
    InvalidParameterError
        Neither or both of ``estimate``/``std_error`` and ``counts``; unknown columns;
        bad options; fewer than 2 studies.
    DataValidationError
        Missing, non-finite or non-positive standard errors; counts that are not whole
        numbers with ``0 <= events <= n``.
    EstimationError
        REML did not converge.

    Notes
    -----
    Study ``i`` has estimate ``y_i`` with sampling variance ``v_i``. Fixed effect:
    ``mu = sum w_i y_i / sum w_i``, ``w_i = 1/v_i``, ``SE = (sum w_i)^(-1/2)``. Random
    effects: ``w_i = 1/(v_i + tau^2)`` with tau^2 from

    - DerSimonian-Laird: ``max(0, (Q - (k-1)) / (sum w - sum w^2 / sum w))``, fixed
      weights;
    - Paule-Mandel: the root of ``sum (y_i - mu(tau^2))^2 / (v_i + tau^2) = k - 1``
      (0 when Q < k - 1), found with ``scipy.optimize.brentq``;
    - REML: the root of the REML score equation ``y'PPy = tr P``,
      ``P = W - W 1 1'W / 1'W1`` (the fixed point of metafor's Fisher scoring
      ``tau^2 + (y'PPy - tr P)/tr(PP)``; found by Brent's method, as Fisher scoring can
      oscillate near small tau^2), 0 when the score at 0 is not positive; its SE is
      ``sqrt(2 / tr(PP))`` at the estimate (metafor's). Written here (statsmodels has
      no REML for meta-analysis); DL and PM agree with statsmodels
      ``combine_effects(method_re="dl"|"iterated")`` (checked in the tests).

    Heterogeneity: Cochran's ``Q = sum v_i^-1 (y_i - mu_FE)^2`` on ``k - 1`` df;
    ``I^2 = 100 tau^2/(tau^2 + s^2)`` and ``H^2 = (tau^2 + s^2)/s^2`` with the typical
    within-study variance ``s^2 = (k-1) sum w / ((sum w)^2 - sum w^2)`` (fixed weights),
    as metafor; for the fixed-effect model ``I^2 = max(0, (Q - (k-1))/Q)`` and
    ``H^2 = Q/(k-1)``. HKSJ: ``Var(mu) = q / sum w_i``, ``q = sum w_i (y_i -
    mu)^2/(k - 1)`` (not truncated at 1, metafor's default), t(k-1). Prediction
    interval (random effects): ``mu +/- c sqrt(SE^2 + tau^2)``, ``c`` the normal
    quantile, or t(k - 1) with HKSJ — metafor ``predict.rma`` (not t(k-2) as in
    Higgins et al. 2009). Egger's test: weighted least squares of ``y_i`` on ``SE_i``
    with weights ``1/v_i`` and a multiplicative dispersion, t-test of the slope on
    ``k - 2`` df (metafor ``regtest(model = "lm")``; at least 3 studies). It tests
    small-study effects (funnel asymmetry), which are not only publication bias.

    Matches R ``metafor::rma(yi, vi, method = "REML"|"DL"|"PM"|"FE", test =
    "z"|"knha")``: on the BCG vaccine trials (Colditz et al. 1994; log RR, REML)
    estimate -0.7145 (SE 0.1798), tau^2 0.3132 (SE 0.1664), I^2 92.22%, H^2 12.86,
    Q(12) = 152.2330; Egger t = -1.4013 (11 df), p = 0.1887.

    References
    ----------
    DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Control Clin Trials 7:177-188.
    Paule RC, Mandel J (1982). Consensus values and weighting factors. J Res Natl Bur Stand 87:377-385.
    Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the
    random-effects model. J Educ Behav Stat 30:261-293.
    Hartung J, Knapp G (2001). A refined method for the meta-analysis of controlled clinical
    trials with binary outcome. Stat Med 20:3875-3889.
    Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis. Stat Med 21:1539-1558.
    Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis detected by
    a simple, graphical test. BMJ 315:629-634.
    Colditz GA et al. (1994). Efficacy of BCG vaccine in the prevention of tuberculosis.
    JAMA 271:698-702.

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats.synthesis import meta_analysis
    >>> d = pd.DataFrame({"site": ["a", "b", "c"], "log_or": [-0.4, -0.1, -0.6], "se": [0.2, 0.25, 0.3]})
    >>> res = meta_analysis(d, estimate="log_or", std_error="se", label="site", method="DL")
    >>> round(float(res.estimate), 3), round(float(res.tau2), 3)
    (0.704, 0.0)
    """
    check_option("method", method, MetaMethod)
    if measure is not None:
        check_option("measure", measure, Measure)
    level = check_conf_level(conf_level)
    if not isinstance(hksj, bool):
        raise InvalidParameterError(f"hksj must be True or False; got {hksj!r}.")
    if not (isinstance(cc, (int, float)) and cc >= 0):
        raise InvalidParameterError(f"cc must be a number >= 0 (the continuity correction); got {cc!r}.")
    notes: list[str] = []
    n_excluded = 0

    if df is not None and not isinstance(df, pd.DataFrame):
        if estimate is not None or std_error is not None or counts is not None:
            raise InvalidParameterError(
                "meta_analysis(): estimate=/std_error=/counts= name DataFrame columns; with a list or "
                "dict of results leave them unset."
            )
        data, kind, pooled_term = _from_results(df, label, term, measure)
        measure_ = kind
        source = "results"
        notes.append(f"Pooled term: {pooled_term} (its log {'odds' if kind == 'or' else 'hazard'} ratio and "
                     "standard error from each result).")
    else:
        if df is None:
            raise InvalidParameterError(
                "meta_analysis(): pass a DataFrame (with estimate=/std_error= or counts=) or a list/dict of "
                "odds_ratios / hazard_ratios results."
            )
        df = check_dataframe(df)
        if term is not None:
            raise InvalidParameterError("term= applies to a list of results, not to a DataFrame.")
        measure_ = measure or "or"
        have_es = estimate is not None or std_error is not None
        if have_es == (counts is not None):
            raise InvalidParameterError(
                "meta_analysis(): give either estimate= and std_error= (columns) or counts= (four columns: "
                "events exposed, n exposed, events reference, n reference), not "
                + ("both." if have_es else "neither.")
            )
        if label is not None and not isinstance(label, str):
            raise InvalidParameterError(f"label: with a DataFrame, name one column; got {label!r}.")
        labels = (df[label].astype(str).tolist() if label is not None else
                  [f"study {i + 1}" for i in range(len(df))])
        if label is not None:
            check_columns(df, [label], "label")
        if have_es:
            if estimate is None or std_error is None:
                raise InvalidParameterError("meta_analysis(): estimate= and std_error= go together; give both.")
            check_columns(df, [estimate, std_error], "estimate/std_error")
            y = pd.to_numeric(df[estimate], errors="coerce").to_numpy(float)
            se = pd.to_numeric(df[std_error], errors="coerce").to_numpy(float)
            bad = ~np.isfinite(y) | ~np.isfinite(se) | (se <= 0)
            if bad.any():
                rows = [labels[i] for i in np.flatnonzero(bad)[:10]]
                raise DataValidationError(
                    f"meta_analysis(): {int(bad.sum())} row(s) have a missing or non-finite estimate, or a "
                    f"standard error that is missing or <= 0 (columns {estimate!r}, {std_error!r}; rows "
                    f"{', '.join(map(repr, rows))}); drop or correct them."
                )
            data = pd.DataFrame({"label": labels, "yi": y, "vi": se**2, "n": None, "events": None})
            source = "estimates"
        else:
            if isinstance(counts, str) or len(counts) != 4:  # type: ignore[arg-type]
                raise InvalidParameterError(
                    "counts must name four columns (events exposed, n exposed, events reference, n reference); "
                    f"got {counts!r}."
                )
            if measure_ not in ("or", "rr", "rd"):
                raise InvalidParameterError(
                    f"measure={measure_!r}: from counts only 'or', 'rr' or 'rd' can be computed."
                )
            cols = list(counts)  # type: ignore[arg-type]
            check_columns(df, cols, "counts")
            vals = [pd.to_numeric(df[c], errors="coerce").to_numpy(float) for c in cols]
            a, n1, c, n2 = vals
            bad = np.zeros(len(df), dtype=bool)
            for arr in vals:
                bad |= ~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr))
            bad |= (a > n1) | (c > n2) | (n1 == 0) | (n2 == 0)
            if bad.any():
                rows = [labels[i] for i in np.flatnonzero(bad)[:10]]
                raise DataValidationError(
                    f"meta_analysis(): counts in columns {', '.join(map(repr, cols))} must be whole numbers with "
                    f"0 <= events <= n and n > 0; {int(bad.sum())} row(s) are not (rows "
                    f"{', '.join(map(repr, rows))})."
                )
            es = effect_sizes(a, n1, c, n2, measure=measure_, cc=float(cc))
            both_zero = (a == 0) & (c == 0)
            if es["corrected"].any():
                notes.append(
                    f"{int(es['corrected'].sum())} study/studies with a zero cell: {cc:g} added to each of its "
                    "four cells (metafor's add = 1/2, to = 'only0')."
                )
            if both_zero.any():
                notes.append(
                    f"{int(both_zero.sum())} study/studies had no events in either group; kept with the "
                    "continuity correction (as metafor's default drop00 = FALSE)."
                )
            data = pd.DataFrame({"label": labels, "yi": es["yi"].to_numpy(), "vi": es["vi"].to_numpy(),
                                 "n": (n1 + n2).astype(int), "events": (a + c).astype(int)})
            source = "counts"
    k = len(data)
    if k < 2:
        raise InvalidParameterError(f"meta_analysis(): at least 2 studies are needed; got {k}.")
    y = data["yi"].to_numpy(float)
    v = data["vi"].to_numpy(float)
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise DataValidationError(
            "meta_analysis(): some studies have an infinite estimate or a zero variance (e.g. a zero cell with "
            "cc=0); use a continuity correction (cc=0.5) or drop them."
        )

    # -- fixed-effect quantities and heterogeneity ---------------------------------------------
    w_fe = 1.0 / v
    mu_fe = float(np.sum(w_fe * y) / np.sum(w_fe))
    q = float(np.sum(w_fe * (y - mu_fe) ** 2))
    q_df = k - 1
    q_p = float(stats.chi2.sf(q, q_df))
    s2 = (k - 1) * np.sum(w_fe) / (np.sum(w_fe) ** 2 - np.sum(w_fe**2))

    tau2_se = float("nan")
    iterations = 0
    if method == "FE":
        tau2 = 0.0
    elif method == "DL":
        tau2 = _tau2_dl(y, v)
    elif method == "PM":
        tau2 = _tau2_pm(y, v)
    else:
        tau2, tau2_se, iterations = _tau2_reml(y, v)
    if method == "FE":
        i2 = max(0.0, (q - q_df) / q) * 100 if q > 0 else 0.0
        h2 = q / q_df
    else:
        i2 = 100 * tau2 / (tau2 + s2)
        h2 = (tau2 + s2) / s2

    w = 1.0 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    se = math.sqrt(1.0 / np.sum(w))
    alpha = 1 - level
    if hksj:
        qk = float(np.sum(w * (y - mu) ** 2) / (k - 1))
        se = math.sqrt(qk / np.sum(w))
        df_test: float = float(k - 1)
        crit = float(stats.t.ppf(1 - alpha / 2, k - 1))
        stat = mu / se
        p_value = float(2 * stats.t.sf(abs(stat), k - 1))
        notes.append(
            f"Hartung-Knapp-Sidik-Jonkman: variance of the pooled estimate scaled by q = {qk:.4g} "
            f"(not truncated at 1) and t({k - 1}) used for the CI, test and prediction interval."
        )
    else:
        df_test = float("inf")
        crit = float(stats.norm.ppf(1 - alpha / 2))
        stat = mu / se
        p_value = float(2 * stats.norm.sf(abs(stat)))
    lo, hi = mu - crit * se, mu + crit * se
    if method == "FE":
        pi_lo = pi_hi = float("nan")
    else:
        pse = math.sqrt(se**2 + tau2)
        pi_lo, pi_hi = mu - crit * pse, mu + crit * pse

    # -- Egger's regression test (metafor regtest(model="lm")) -------------------------------
    egger = _egger(y, v, level)

    ratio = measure_ in RATIO_MEASURES
    tf = np.exp if ratio else (lambda x: x)
    zcrit = float(stats.norm.ppf(1 - alpha / 2))
    sei = np.sqrt(v)
    study = pd.DataFrame({
        "label": data["label"].astype(str).to_numpy(),
        "kind": "study",
        "estimate": tf(y),
        "ci_lower": tf(y - zcrit * sei),
        "ci_upper": tf(y + zcrit * sei),
        "std_error": sei,
        "statistic": y / sei,
        "p_value": 2 * stats.norm.sf(np.abs(y / sei)),
        "weight": 100 * w / np.sum(w),
        "analysis_estimate": y,
        "n": pd.array(data["n"].tolist(), dtype="Int64"),
        "events": pd.array(data["events"].tolist(), dtype="Int64"),
    })
    pooled_label = f"Pooled ({'FE' if method == 'FE' else method}{', HKSJ' if hksj else ''})"
    pooled = pd.DataFrame({
        "label": [pooled_label], "kind": ["pooled"], "estimate": [float(tf(mu))],
        "ci_lower": [float(tf(lo))], "ci_upper": [float(tf(hi))], "std_error": [se], "statistic": [stat],
        "p_value": [p_value], "weight": [100.0], "analysis_estimate": [mu],
        "n": pd.array([None], dtype="Int64"), "events": pd.array([None], dtype="Int64"),
    })
    if data["n"].notna().all():
        pooled["n"] = pd.array([int(data["n"].sum())], dtype="Int64")
    if data["events"].notna().all():
        pooled["events"] = pd.array([int(data["events"].sum())], dtype="Int64")
    table = pd.concat([study, pooled], ignore_index=True)

    het = pd.DataFrame({
        "statistic": ["tau2", "tau", "i2", "h2", "q"],
        "estimate": [tau2, math.sqrt(tau2), i2, h2, q],
        "std_error": [tau2_se, float("nan"), float("nan"), float("nan"), float("nan")],
        "df": [float("nan")] * 4 + [float(q_df)],
        "p_value": [float("nan")] * 4 + [q_p],
    })
    if k < 5 and method != "FE":
        notes.append(f"Only {k} studies: tau^2 and the prediction interval are very imprecise.")
    if method == "FE" and q_p < 0.10:
        notes.append(
            f"Heterogeneity test Q({q_df}) = {q:.2f}, p = {q_p:.3g}: the fixed-effect model assumes one common "
            "effect; consider method='REML'."
        )
    method_text = _METHOD_NAMES[method] + (" with HKSJ" if hksj else "")
    return MetaAnalysisResult(
        _table=table,
        conf_level=level,
        method=method_text,
        n_used=k,
        n_excluded=n_excluded,
        notes=tuple(notes),
        measure=measure_,
        tau_method=method,
        hksj=hksj,
        k=k,
        estimate=float(tf(mu)),
        ci_lower=float(tf(lo)),
        ci_upper=float(tf(hi)),
        log_estimate=mu,
        std_error=se,
        statistic=stat,
        df=df_test,
        p_value=p_value,
        tau2=tau2,
        tau2_se=tau2_se,
        tau=math.sqrt(tau2),
        i2=i2,
        h2=h2,
        q=q,
        q_df=q_df,
        q_p_value=q_p,
        pi_lower=float(tf(pi_lo)) if np.isfinite(pi_lo) else float("nan"),
        pi_upper=float(tf(pi_hi)) if np.isfinite(pi_hi) else float("nan"),
        heterogeneity=het,
        egger=egger,
        source=source,
        iterations=iterations,
    )


def _egger(y: np.ndarray, v: np.ndarray, level: float) -> pd.DataFrame:
    """Egger's regression test: WLS of y on SE with weights 1/v (t-test of the slope, k - 2 df)."""
    k = len(y)
    cols = ["test", "estimate", "std_error", "statistic", "df", "p_value", "limit_estimate", "limit_ci_lower",
            "limit_ci_upper"]
    if k < 3:
        return pd.DataFrame([["egger", *[float("nan")] * 8]], columns=cols)
    sei = np.sqrt(v)
    x = np.column_stack([np.ones(k), sei])
    wts = 1.0 / v
    xtw = x.T * wts
    xtwx_inv = np.linalg.inv(xtw @ x)
    b = xtwx_inv @ (xtw @ y)
    resid = y - x @ b
    sigma2 = float(np.sum(wts * resid**2) / (k - 2))
    cov = sigma2 * xtwx_inv
    se_b = np.sqrt(np.diag(cov))
    t_slope = b[1] / se_b[1]
    p = float(2 * stats.t.sf(abs(t_slope), k - 2))
    tcrit = float(stats.t.ppf(1 - (1 - level) / 2, k - 2))
    return pd.DataFrame([["egger", float(b[1]), float(se_b[1]), float(t_slope), float(k - 2), p, float(b[0]),
                          float(b[0] - tcrit * se_b[0]), float(b[0] + tcrit * se_b[0])]], columns=cols)
