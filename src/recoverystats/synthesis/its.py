"""Interrupted time series: segmented regression of a program metric over time."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from recoverystats._checks import check_columns, check_conf_level, check_dataframe, check_option
from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.results.synthesis import InterruptedTimeSeriesResult

__all__ = ["interrupted_time_series", "newey_west_auto_lags"]

Family = Literal["gaussian", "poisson", "quasipoisson"]
Impact = Literal["level_slope", "level", "slope"]
#: Fewer time points than this in a segment earns a note (Wagner et al. 2002 suggest >= 8 per segment).
MIN_POINTS_PER_SEGMENT = 3


def newey_west_auto_lags(n_time: int) -> int:
    """The default Newey-West lag: ``floor(4 (T/100)^(2/9))`` (Newey and West 1994)."""
    return int(math.floor(4 * (n_time / 100.0) ** (2.0 / 9.0)))


def _as_position(values: pd.Series, interruptions: list[Any], column: str) -> tuple[np.ndarray, list[float], str]:
    """Time as numbers: numeric as it is; dates or periods as their position 0, 1, 2, ..."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        t = values.to_numpy(float)
        try:
            cuts = [float(v) for v in interruptions]
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"interruptions must be numbers on the scale of column {column!r}; got {interruptions!r}."
            ) from None
        return t, cuts, "numeric"
    if isinstance(values.dtype, pd.PeriodDtype):
        order = values.sort_values().unique()
        pos = {p: i for i, p in enumerate(order)}
        t = values.map(pos).to_numpy(float)
        cuts = []
        for v in interruptions:
            p = pd.Period(v, freq=values.dtype.freq)
            cuts.append(float(np.searchsorted(np.asarray(order), p)))
        return t, cuts, "period"
    try:
        dt = pd.to_datetime(values)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"time column {column!r} must be numeric, dates or periods; got dtype {values.dtype}."
        ) from None
    order = np.sort(dt.unique())
    t = np.searchsorted(order, dt.to_numpy()).astype(float)
    cuts = [float(np.searchsorted(order, np.datetime64(pd.Timestamp(v)))) for v in interruptions]
    return t, cuts, "date"


def interrupted_time_series(
    df: pd.DataFrame,
    *,
    time: str,
    outcome: str,
    interruptions: Any,
    offset: str | None = None,
    family: Family = "gaussian",
    impact: Impact = "level_slope",
    season: int | tuple[int, float] | None = None,
    period: float | None = None,
    newey_west_lags: int | Literal["auto"] | None = None,
    conf_level: float = 0.95,
) -> InterruptedTimeSeriesResult:
    """Segmented regression of a time series with level and slope changes at interruptions.

    Parameters
    ----------
    df
        One row per time point (e.g. a quarterly or monthly program metric).
    time
        Column with the time: numbers (e.g. 1, 2, ...), dates or periods. Dates and
        periods are replaced by their position 0, 1, 2, ... (equally spaced points
        assumed); slopes are then per time point.
    outcome
        The metric: a count (Poisson families) or a continuous value (gaussian), e.g. a
        rate in %.
    interruptions
        One or several times at which the program (or a change to it) started, on the
        scale of ``time`` (a date or period for date/period columns). The first
        post-interruption point is the first time ``>= interruption``.
    offset
        Count families: column with the population at risk (participants, person-time
        or a standardised population); ``log(offset)`` enters the model, so effects are
        rate ratios.
    family
        ``"gaussian"`` (least squares), ``"poisson"`` or ``"quasipoisson"`` (Poisson
        with the dispersion estimated as Pearson chi^2 / (T - p), as R's
        ``family = quasipoisson``).
    impact
        ``"level_slope"`` (default: a level and a slope change per interruption),
        ``"level"`` (step changes only) or ``"slope"``.
    season
        Number of Fourier (sine/cosine) pairs for seasonality, with ``period`` (e.g. 12
        for monthly data, 4 for quarterly), or a tuple ``(pairs, period)``.
    period
        The seasonal period in time units (with ``season``).
    newey_west_lags
        Newey-West (HAC, Bartlett kernel) standard errors with this many lags; ``"auto"``
        uses ``floor(4 (T/100)^(2/9))`` (Newey and West 1994); 0 switches it off.
        Default (None): ``"auto"`` for gaussian, off for the Poisson families (whose
        dispersion is modelled instead, as in Lopez Bernal et al. 2017).
    conf_level
        Confidence level.

    Returns
    -------
    InterruptedTimeSeriesResult
        ``.table`` coefficients; ``.effects`` the level and slope changes (and the slope
        after each interruption) with CIs; ``.fitted`` the fitted and counterfactual
        series; ``.plot()``.

    Raises
    ------
    InvalidParameterError
        Unknown columns, bad options, an interruption outside the series, an offset
        with ``family="gaussian"``, too few time points for the model.
    DataValidationError
        Repeated time points, negative or non-integer counts for Poisson families, a
        non-positive offset.

    Notes
    -----
    Model (interruptions ``T_1 < T_2 < ...``)::

        g(E[Y_t]) = b0 + b1 t + sum_k [ d_k 1(t >= T_k) + e_k (t - T_k) 1(t >= T_k) ]
                    + sum_j [ s_j sin(2 pi j t / P) + c_j cos(2 pi j t / P) ] (+ log offset_t)

    with ``g`` the identity (gaussian) or log (Poisson). ``d_k`` is the level change at
    the first post-interruption time (the fitted value there against the
    counterfactual that continues the previous segment), ``e_k`` the change in slope;
    with a log link ``exp(d_k)`` is a rate ratio and ``exp(e_k)`` a ratio of trends per
    time unit. (R code that writes the slope term as ``(t - T_k + 1) 1(t >= T_k)``
    reports the level change one step earlier; the fit is the same.) The
    counterfactual in ``.fitted`` and the figure sets every ``d_k`` and ``e_k`` to 0.

    Gaussian: ordinary least squares (statsmodels ``OLS``) with Newey-West standard
    errors (``cov_type="HAC"``, Bartlett kernel, with the small-sample factor
    ``T/(T-p)``, as Stata ``newey``) and t(T - p) intervals. Poisson families:
    ``statsmodels GLM(family=Poisson(), offset=log(offset))``; quasi-Poisson scales the
    covariance by the Pearson dispersion (``fit(scale="X2")``), as R
    ``glm(..., family = quasipoisson)``; normal-quantile CIs as ``Epi::ci.exp`` and R
    ``confint.default`` (R's ``summary`` uses t(T - p) for its p-values). With lags set
    for a Poisson family, a HAC sandwich replaces the model covariance.

    Check on the Sicily smoking-ban data (Lopez Bernal, Cummins and Gasparrini 2017):
    quasi-Poisson, log standardised-population offset, two Fourier pairs with period 12,
    ``impact="level"`` reproduces the published level change RR 0.885 (0.839-0.933)
    (see ``docs/methods-design.md``).

    References
    ----------
    Wagner AK, Soumerai SB, Zhang F, Ross-Degnan D (2002). Segmented regression analysis
    of interrupted time series studies in medication use research. J Clin Pharm Ther
    27:299-309.
    Lopez Bernal J, Cummins S, Gasparrini A (2017). Interrupted time series regression for
    the evaluation of public health interventions: a tutorial. Int J Epidemiol 46:348-355.
    Newey WK, West KD (1994). Automatic lag selection in covariance matrix estimation.
    Rev Econ Stud 61:631-653.
    """
    import statsmodels.api as sm

    df = check_dataframe(df)
    level = check_conf_level(conf_level)
    check_option("family", family, Family)
    check_option("impact", impact, Impact)
    check_columns(df, [time], "time")
    check_columns(df, [outcome], "outcome")
    if offset is not None:
        check_columns(df, [offset], "offset")
        if family == "gaussian":
            raise InvalidParameterError(
                "offset= is for count outcomes (family='poisson' or 'quasipoisson'); for a gaussian outcome "
                "model the rate itself."
            )
    cuts_in = list(interruptions) if isinstance(interruptions, (list, tuple, np.ndarray, pd.Index, pd.Series)) \
        else [interruptions]
    if not cuts_in:
        raise InvalidParameterError("interruptions: give at least one time at which the series is interrupted.")

    # seasonality settings
    if isinstance(season, tuple):
        if period is not None:
            raise InvalidParameterError("season=(pairs, period) already gives the period; leave period= unset.")
        if len(season) != 2:
            raise InvalidParameterError(f"season must be an int or a tuple (pairs, period); got {season!r}.")
        season, period = int(season[0]), float(season[1])
    n_pairs = 0 if season is None else season
    if not isinstance(n_pairs, (int, np.integer)) or n_pairs < 0:
        raise InvalidParameterError(f"season must be a whole number of Fourier pairs (e.g. 2); got {season!r}.")
    if n_pairs:
        if period is None or not float(period) > 1:
            raise InvalidParameterError(
                f"season={n_pairs} needs period= (time units per cycle, e.g. 12 for monthly, 4 for quarterly data); "
                f"got {period!r}."
            )
        if n_pairs > float(period) / 2:
            raise InvalidParameterError(
                f"season={n_pairs} pairs is more than period/2 = {float(period) / 2:g}; use at most "
                f"{int(float(period) // 2)}."
            )

    cols = [time, outcome] + ([offset] if offset else [])
    data = df[cols].copy()
    n_in = len(data)
    data = data.dropna()
    n_excluded = n_in - len(data)
    notes: list[str] = []
    if n_excluded:
        notes.append(f"{n_excluded} time point(s) with a missing value left out.")
    if data[time].duplicated().any():
        dup = data.loc[data[time].duplicated(), time].iloc[:5].tolist()
        raise DataValidationError(
            f"interrupted_time_series(): column {time!r} has repeated time points ({dup}); aggregate to one row "
            "per time point first."
        )
    data = data.sort_values(time).reset_index(drop=True)
    t, cuts, kind = _as_position(data[time], cuts_in, time)
    if kind != "numeric":
        notes.append(f"Time {time!r} ({kind}s) replaced by its position 0, 1, 2, ...; slopes are per time point.")
    cuts = sorted(cuts)
    for c_in, c in zip(cuts_in, cuts, strict=True):
        if not (t.min() < c <= t.max()):
            raise InvalidParameterError(
                f"interruption {c_in!r} is not inside the series (column {time!r} runs from "
                f"{data[time].iloc[0]!r} to {data[time].iloc[-1]!r}); each interruption needs points before and after."
            )
    y = pd.to_numeric(data[outcome], errors="coerce").to_numpy(float)
    if family != "gaussian":
        if (y < 0).any() or (y != np.round(y)).any():
            raise DataValidationError(
                f"interrupted_time_series(): family={family!r} needs whole non-negative counts in {outcome!r}; "
                "model a rate with family='gaussian', or give the count and offset= the population."
            )
    off = None
    if offset:
        o = pd.to_numeric(data[offset], errors="coerce").to_numpy(float)
        if not (np.all(np.isfinite(o)) and np.all(o > 0)):
            raise DataValidationError(f"interrupted_time_series(): offset column {offset!r} must be > 0 everywhere.")
        off = np.log(o)

    # -- design -------------------------------------------------------------------------------------
    X = {"Intercept": np.ones_like(t), "time": t}
    for k, c in enumerate(cuts, start=1):
        post = (t >= c).astype(float)
        if impact in ("level_slope", "level"):
            X[f"level_change[{k}]"] = post
        if impact in ("level_slope", "slope"):
            X[f"slope_change[{k}]"] = (t - c) * post
        seg_n = int(((t >= c) & (t < (cuts[k] if k < len(cuts) else np.inf))).sum())
        if seg_n < MIN_POINTS_PER_SEGMENT:
            notes.append(f"Only {seg_n} time point(s) after interruption {k}: its slope change is poorly determined.")
    if (t < cuts[0]).sum() < MIN_POINTS_PER_SEGMENT:
        notes.append(f"Only {int((t < cuts[0]).sum())} time point(s) before the first interruption.")
    for j in range(1, n_pairs + 1):
        X[f"sin{j}"] = np.sin(2 * np.pi * j * t / float(period))  # type: ignore[arg-type]
        X[f"cos{j}"] = np.cos(2 * np.pi * j * t / float(period))  # type: ignore[arg-type]
    Xdf = pd.DataFrame(X)
    names = list(Xdf.columns)
    n, p = Xdf.shape
    if n <= p:
        raise InvalidParameterError(
            f"interrupted_time_series(): {n} time points for {p} coefficients; use fewer seasonal pairs or "
            "interruptions, or a longer series."
        )
    if np.linalg.matrix_rank(Xdf.to_numpy()) < p:
        raise InvalidParameterError(
            "interrupted_time_series(): the design is collinear (e.g. seasonal terms that repeat at every time "
            "point, or two interruptions at the same time); check season/period and interruptions."
        )

    # -- lags -----------------------------------------------------------------------------------------
    if newey_west_lags is None:
        lags = newey_west_auto_lags(n) if family == "gaussian" else 0
        auto = family == "gaussian"
    elif newey_west_lags == "auto":
        lags, auto = newey_west_auto_lags(n), True
    else:
        if not isinstance(newey_west_lags, (int, np.integer)) or isinstance(newey_west_lags, bool) \
                or newey_west_lags < 0:
            raise InvalidParameterError(
                f"newey_west_lags must be a whole number >= 0, 'auto' or None; got {newey_west_lags!r}."
            )
        lags, auto = int(newey_west_lags), False

    alpha = 1 - level
    Xa = Xdf.to_numpy()
    if family == "gaussian":
        model = sm.OLS(y, Xa)
        if lags > 0:
            fit = model.fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True}, use_t=True)
            how = f"Newey-West standard errors with {lags} lag(s)" + (
                f" (automatic rule floor(4 (T/100)^(2/9)), T = {n})" if auto else "")
        else:
            fit = model.fit()
            how = "ordinary least-squares standard errors (no autocorrelation correction)"
        crit = float(stats.t.ppf(1 - alpha / 2, n - p))
        dist: Any = stats.t(n - p)
        scale_param = float(fit.scale)
        method = f"segmented linear regression, {how}"
    else:
        model = sm.GLM(y, Xa, family=sm.families.Poisson(), offset=off)
        if lags > 0:
            fit = model.fit(cov_type="HAC", cov_kwds={"maxlags": lags})
            how = f"Newey-West (HAC) standard errors with {lags} lag(s)"
            scale_param = 1.0
        elif family == "quasipoisson":
            fit = model.fit(scale="X2")
            scale_param = float(fit.scale)
            how = f"quasi-Poisson (dispersion {scale_param:.3g} = Pearson chi2 / {n - p} df)"
        else:
            fit = model.fit()
            scale_param = 1.0
            how = "Poisson model-based standard errors"
            pearson = float(np.sum((y - fit.mu) ** 2 / fit.mu) / (n - p))
            if pearson > 1.5:
                notes.append(
                    f"Overdispersion: Pearson chi2/df = {pearson:.2f}; family='quasipoisson' gives honest intervals."
                )
        crit = float(stats.norm.ppf(1 - alpha / 2))
        dist = stats.norm()
        method = f"segmented Poisson regression{' with log offset' if offset else ''}, {how}"
    if n_pairs:
        method += f", {n_pairs} Fourier pair(s) with period {float(period):g}"  # type: ignore[arg-type]
    beta = np.asarray(fit.params, float)
    V = np.asarray(fit.cov_params(), float)
    se = np.sqrt(np.diag(V))
    ratio = family != "gaussian"
    tf = np.exp if ratio else (lambda v: v)
    zs = beta / se
    table = pd.DataFrame({
        "term": names, "coef": beta, "std_error": se, "estimate": tf(beta),
        "ci_lower": tf(beta - crit * se), "ci_upper": tf(beta + crit * se), "statistic": zs,
        "p_value": 2 * dist.sf(np.abs(zs)),
    })

    # -- effects per interruption -----------------------------------------------------------------------
    eff_rows = []
    slope_vec = np.zeros(p)
    slope_vec[names.index("time")] = 1.0
    for k, (c_in, _c) in enumerate(zip(cuts_in, cuts, strict=True), start=1):
        combos = []
        if f"level_change[{k}]" in names:
            v = np.zeros(p)
            v[names.index(f"level_change[{k}]")] = 1.0
            combos.append(("level_change", v))
        if f"slope_change[{k}]" in names:
            v = np.zeros(p)
            v[names.index(f"slope_change[{k}]")] = 1.0
            combos.append(("slope_change", v))
            slope_vec = slope_vec + v
            combos.append(("slope_after", slope_vec.copy()))
        for what, v in combos:
            est = float(v @ beta)
            s = math.sqrt(float(v @ V @ v))
            eff_rows.append({"interruption": k, "at": c_in, "kind": what, "estimate": float(tf(est)),
                             "ci_lower": float(tf(est - crit * s)), "ci_upper": float(tf(est + crit * s)),
                             "coef": est, "std_error": s, "p_value": float(2 * dist.sf(abs(est / s)))})
    effects = pd.DataFrame(eff_rows)

    # -- fitted and counterfactual series --------------------------------------------------------------
    eta = Xa @ beta
    Xc = Xa.copy()
    for j, nm in enumerate(names):
        if nm.startswith(("level_change[", "slope_change[")):
            Xc[:, j] = 0.0
    eta_c = Xc @ beta
    if ratio:
        base = off if off is not None else 0.0
        fitted_v, cf_v = np.exp(eta + base), np.exp(eta_c + base)
    else:
        fitted_v, cf_v = eta, eta_c
    segment = np.searchsorted(np.asarray(cuts), t, side="right")
    fitted = pd.DataFrame({"time": data[time].to_numpy(), "position": t, "observed": y, "fitted": fitted_v,
                           "counterfactual": cf_v, "segment": segment})
    if offset:
        fitted["offset"] = np.exp(off)  # type: ignore[arg-type]
        fitted["rate"] = y / fitted["offset"]
    return InterruptedTimeSeriesResult(
        _table=table,
        conf_level=level,
        method=method,
        n_used=n,
        n_excluded=n_excluded,
        notes=tuple(notes),
        time=time,
        outcome=outcome,
        family=family,
        interruptions=tuple(cuts),
        season=int(n_pairs),
        period=float(period) if period is not None else None,
        newey_west_lags=lags if lags > 0 else None,
        scale_parameter=scale_param,
        offset=offset,
        effects=effects,
        fitted=fitted,
        _vcov=pd.DataFrame(V, index=names, columns=names),
    )
