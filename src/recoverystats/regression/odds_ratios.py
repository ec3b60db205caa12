"""Adjusted odds ratios: :func:`odds_ratios`."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from recoverystats._checks import (
    check_columns,
    check_conf_level,
    check_dataframe,
    check_option,
)
from recoverystats._design import (
    Design,
    build_design,
    check_one_column,
    collinear_sets,
    model_spec,
    plain,
    singleton_clusters,
)
from recoverystats.errors import (
    DataValidationError,
    EstimationError,
    InvalidParameterError,
    SmallSampleWarning,
)
from recoverystats.rates._common import WeightType, case_weights
from recoverystats.regression import _engine as E
from recoverystats.results.regression import OddsRatioResult

Method = Literal["auto", "mle", "firth"]
ClusterCorrection = Literal["CR1", "CR2"]
Missing = Literal["raise", "drop"]

#: ``method="auto"`` switches to Firth when the smaller outcome class has fewer than
#: this many events per non-intercept coefficient ...
FIRTH_EPV = 5.0
#: ... or fewer than this many events in total.
FIRTH_MIN_EVENTS = 20
#: Firth on more than this many cells (rows x coefficients) profiles only the exposure.
FIRTH_PROFILE_ALL_CELLS = 2_000_000
#: Events per variable below which a note (and, in ``diagnostics()``, a warning) is issued.
LOW_EPV = 10.0
#: CR1 with fewer clusters than this warns (Angrist & Pischke's rule of thumb: 42).
CR1_MIN_CLUSTERS = 42
#: CR2 with fewer clusters than this warns (Bell-McCaffrey with t(G-1) holds up to ~20).
CR2_MIN_CLUSTERS = 20


@dataclass
class FittedModel:
    """Everything needed after fitting (internal; kept privately by the result)."""

    design: Design
    y: np.ndarray
    beta: np.ndarray
    cov: np.ndarray  # the covariance used for inference (robust if clustered)
    model_cov: np.ndarray  # inverse information
    p: np.ndarray
    firth: bool
    codes: np.ndarray | None
    n_clusters: int | None
    correction: str | None
    ref_dist: str  # "normal" | "t"
    df_resid: float | None
    exposure_kind: str | None
    exposure_levels: tuple[Any, ...]
    conf_level: float
    n_excluded: int
    loglik: float
    weights: np.ndarray | None = None  # case weights of the rows used (None: unweighted)
    weight_type: str | None = None

    def crit(self, conf_level: float) -> float:
        a = 1.0 - conf_level
        if self.ref_dist == "t":
            return float(stats.t.ppf(1 - a / 2, self.df_resid))
        return float(stats.norm.ppf(1 - a / 2))

    def pvalue(self, z: np.ndarray) -> np.ndarray:
        if self.ref_dist == "t":
            return 2.0 * stats.t.sf(np.abs(z), self.df_resid)
        return 2.0 * stats.norm.sf(np.abs(z))


def _binary_outcome(s: pd.Series, column: str) -> np.ndarray:
    # text 0/1 is object dtype under pandas 2 and the default ``str`` dtype (a StringDtype
    # with NaN as its missing value) under pandas 3: convert both alike
    if s.dtype == object or (isinstance(s.dtype, pd.StringDtype) and s.dtype.na_value is np.nan):
        converted = pd.to_numeric(s, errors="coerce")
        if not converted.isna().any():
            s = converted
    if pd.api.types.is_bool_dtype(s):
        return np.asarray(s, dtype=float)
    if pd.api.types.is_numeric_dtype(s):
        v = np.asarray(s, dtype=float)
        bad = ~np.isin(v, (0.0, 1.0))
        if not bad.any():
            return v
        shown = ", ".join(f"{x:g}" for x in np.unique(v[bad])[:8])
    else:
        shown = ", ".join(repr(x) for x in pd.unique(s)[:8])
    raise DataValidationError(
        f"outcome: column {column!r} is not binary (values other than 0/1 or True/False found: {shown}). "
        f"Code the outcome as 1 = event, 0 = no event (e.g. df[{column!r}] == 'yes')."
    )


def odds_ratios(
    df: pd.DataFrame,
    outcome: str | None = None,
    *,
    exposure: str | None = None,
    adjust: str | Iterable[str] = (),
    formula: str | None = None,
    reference: Mapping[str, Any] | None = None,
    cluster: str | None = None,
    cluster_correction: ClusterCorrection = "CR1",
    method: Method = "auto",
    conf_level: float = 0.95,
    missing: Missing = "raise",
    max_iter: int = 50,
    weights: str | None = None,
    weight_type: WeightType = "frequency",
) -> OddsRatioResult:
    """Adjusted odds ratios from a logistic regression.

    Parameters
    ----------
    df
        One row per participant, e.g. the output of a measure
        (:func:`recoverystats.recidivism`), or any frame with a 0/1 outcome. If it has
        an ``eligible`` column, only eligible rows are used (participants whose
        follow-up window is not yet complete are excluded; counted in ``n_excluded``).
        An :class:`~recoverystats.missing.ImputedData` gives the model fitted to each
        imputed data set and pooled by Rubin's rules (log odds ratios, D1 tests of
        multi-level terms; the fits are kept for ``risk_difference()``).
    outcome
        The 0/1 (or boolean) outcome column; taken from the formula's left-hand side
        when ``formula`` is given.
    exposure
        The column whose effect is of interest (e.g. ``"group"``). Its rows come first
        in the table; risk differences/ratios and ``inverted()`` refer to it.
    adjust
        Covariates to adjust for. Numeric and boolean columns enter linearly; text or
        categorical columns as dummy variables against a reference level.
    formula
        Alternatively a patsy/statsmodels formula, e.g.
        ``"rearrest ~ group + age + C(risk_level) + group:age"``.
    reference
        Reference level per categorical column, e.g. ``{"group": "comparison"}``.
        Default: the first category of a ``Categorical`` column; for a coded column of
        the data model (``risk_level``, ``gender``, ...) the first code of its code list
        (``low``); otherwise the first sorted value. A numeric column named here is coded
        as categorical. The coding is shared with ``hazard_ratios``.
    cluster
        Column identifying clusters (e.g. ``"mentor_id"``) for cluster-robust SEs.
    cluster_correction
        ``"CR1"`` (default; small-sample factor G/(G-1)*(N-1)/(N-K), normal reference,
        as statsmodels ``cov_type="cluster"`` and Stata ``vce(cluster)``) or ``"CR2"``
        (Bell-McCaffrey bias-reduced sandwich with a t reference on G-1 df).
    method
        ``"auto"`` (maximum likelihood, switching to Firth when there is separation or
        few events — see Notes), ``"mle"`` or ``"firth"``.
    conf_level
        Confidence level of the intervals.
    missing
        ``"raise"`` (default) stops when a used column has missing values, naming
        the columns and counts; ``"drop"`` fits complete cases and records how many
        rows were dropped in ``n_excluded`` and ``.notes``. (``hazard_ratios`` takes
        the same argument but drops by default: measure tables leave ``time_days``
        missing for people enrolled after ``as_of``.)
    max_iter
        Maximum Newton iterations.
    weights
        Column of non-negative case weights (see ``weight_type``). Rows of weight 0
        are left out; a missing weight is an error.
    weight_type
        ``"frequency"`` (default): whole-number weights, each row stands for that many
        identical participants (aggregated data, e.g. one row per covariate pattern
        with its count). Estimates, SEs, CIs, p-values, the likelihood-ratio tests,
        AIC/BIC (with ``n`` = the sum of the weights), the ``n``/``events`` columns and
        Firth's method all equal the fit on the expanded data, as R ``glm(...,
        weights = w)`` and statsmodels ``GLM(freq_weights=w)`` (R's ``BIC()`` counts
        the non-zero-weight rows instead). Cluster-robust SEs (CR1) sum the weighted
        scores within clusters; CR2 is not available with weights.
        ``"sampling"``: survey, inverse-probability or balancing weights: the weighted
        (pseudo-)likelihood estimates with the robust sandwich covariance
        ``n/(n-1) B (Σ w_i² r_i² x_i x_i') B``, ``B = (X'WX)^{-1}``, ``r_i = y_i - p_i``,
        as Stata ``logit y x [pw = w]`` and R ``survey::svyglm`` on
        ``svydesign(ids = ~1, weights = ~w)`` (= statsmodels ``GLM(var_weights=w)``
        with ``cov_type="HC0"`` times ``n/(n-1)``); with ``cluster=`` the CR1 formula
        on the weighted scores. Likelihood-ratio tests are not valid for sampling
        weights: term and model tests are robust Wald tests and AIC/BIC are NaN.
        Firth's method (explicit, or automatic for few events) is not used with
        sampling weights; separation raises ``EstimationError``.

    Returns
    -------
    OddsRatioResult
        ``.table`` with ``term, log_odds, std_error, estimate, ci_lower, ci_upper,
        p_value`` (+ ``statistic, variable, reference, n, events, term_p_value``);
        ``.model_tests`` (likelihood-ratio and Wald tests of the whole model),
        ``.term_tests``, ``.loglik``, ``.loglik_null``, ``.aic``, ``.bic``, ``.vcov``;
        ``.risk_difference()``, ``.risk_ratio()``, ``.diagnostics()``, ``.plot()``,
        ``.inverted()``. When ``method="auto"`` switched to Firth, the first line of
        the printed and HTML result says so (``.headline``).

    Raises
    ------
    InvalidParameterError
        Unknown columns (also inside a formula), bad options.
    DataValidationError
        Outcome not binary or with one class only, missing values with
        ``missing="raise"``, a constant covariate, perfectly collinear covariates (named),
        an exposure with a single level.
    EstimationError
        The maximum-likelihood fit did not converge (the message says what to try), or
        ``method="mle"`` on separated data.

    Notes
    -----
    Model: ``logit P(Y=1 | x) = x'b``. Maximum likelihood by Newton-Raphson (IRLS)
    with Cholesky solves; SEs from the inverse information ``(X'WX)^{-1}``, Wald
    CIs ``exp(b +/- z se)``, Wald p-values — identical to R
    ``glm(y ~ ..., family = binomial)`` / statsmodels ``Logit(y, X).fit()`` / Stata
    ``logit y ..., or``.

    Multi-column terms (a categorical covariate with 3+ levels, or an interaction
    with several columns) get a global likelihood-ratio test (penalised LR for Firth;
    a cluster-robust Wald test when clustered or with sampling weights: chi-square for
    CR1, F(q, G-1) for CR2), in ``term_p_value`` and ``.term_tests`` (as R
    ``drop1(fit, test="LRT")``, ``anova(reduced, fit, test="LRT")`` and gtsummary's
    ``add_global_p()``).

    Model tests (``.model_tests``, one row per test, columns ``test, statistic, df,
    p_value, robust``): ``"likelihood ratio"`` ``2(l(b) - l_0)`` against the
    intercept-only model (R ``anova(glm(y ~ 1), fit, test = "LRT")``, statsmodels
    ``llr``; penalised for Firth, as ``logistf``'s likelihood-ratio test; absent with
    sampling weights) and ``"wald"`` ``b' V^{-1} b`` over the non-intercept
    coefficients, with ``robust`` True when ``V`` is the sandwich (clustered or
    sampling weights; CR2: ``F = W/q`` on ``(q, G-1)`` df, ``df_denominator`` set; NaN
    when clustered with ``G - 1 < q``, as the robust covariance then has too low a rank).
    The test names never change; the ``robust`` column says which covariance was
    used. ``.loglik_null`` is the intercept-only log-likelihood (statsmodels
    ``llnull``), ``.aic = -2 l + 2k`` and ``.bic = -2 l + k log(n)`` (R ``AIC``/
    ``BIC``, statsmodels ``aic``/``bic_llf``), NaN for Firth (penalised likelihood)
    and for sampling weights.

    Firth (``method="firth"``): maximises ``l(b) + 0.5 log|X'WX|``; SEs from
    ``(X'WX)^{-1}`` at the estimate, profile penalised-likelihood CIs and penalised
    likelihood-ratio p-values, as R ``logistf(y ~ ..., pl = TRUE)`` (hand-written; no
    maintained Python package does this). ``method="auto"`` fits Firth instead of
    maximum likelihood when the data are completely or quasi-completely separated
    (linear-programming check of Konis 2007, as R ``detectseparation``) or when events
    are few: fewer than ``FIRTH_MIN_EVENTS`` (20) in the smaller outcome class or fewer
    than ``FIRTH_EPV`` (5) per coefficient; ``.notes`` says which. Above
    ``FIRTH_PROFILE_ALL_CELLS`` (2,000,000) rows x coefficients only the exposure is
    profiled; the other rows get Wald intervals from the penalised fit (noted).

    Cluster-robust SEs: CR1 ``V = c B (sum_g U_g U_g') B`` with ``B = (X'WX)^{-1}``,
    ``U_g`` the cluster score sums, ``c = G/(G-1) (N-1)/(N-K)``; CR2 replaces the
    residuals by ``(I - H_gg)^{-1/2}``-adjusted working residuals (as R
    ``clubSandwich::vcovCR(fit, cluster, type = "CR2")``) and uses t(G-1) for CIs and
    p-values. A ``SmallSampleWarning`` is issued with fewer than 42 clusters for CR1
    (recommending CR2) or fewer than 20 for CR2. With Firth and a cluster, Wald CIs
    with the robust covariance replace profile intervals (noted).

    References
    ----------
    Hosmer DW, Lemeshow S, Sturdivant RX (2013). *Applied Logistic Regression*, 3rd ed.
    Firth D (1993). Bias reduction of maximum likelihood estimates. Biometrika 80:27-38.
    Heinze G, Schemper M (2002). A solution to the problem of separation in logistic
    regression. Stat Med 21:2409-2419.
    Konis K (2007). Linear programming algorithms for detecting separated data in binary
    logistic regression models. DPhil thesis, University of Oxford.
    Bell RM, McCaffrey DF (2002). Bias reduction in standard errors for linear regression
    with multi-stage samples. Survey Methodology 28:169-181.
    Cameron AC, Miller DL (2015). A practitioner's guide to cluster-robust inference.
    J Human Resources 50:317-372.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from recoverystats.regression import odds_ratios
    >>> rng = np.random.default_rng(1)
    >>> d = pd.DataFrame({"group": rng.choice(["comparison", "peer_mentoring"], 400),
    ...                   "age": rng.normal(35, 9, 400)})
    >>> d["rearrest"] = (rng.random(400) < np.where(d.group == "peer_mentoring", .25, .4)).astype(int)
    >>> res = odds_ratios(d, "rearrest", exposure="group", adjust=["age"])
    >>> res.table["term"].tolist()
    ['group[peer_mentoring]', 'age', 'Intercept']
    """
    if type(df).__name__ == "ImputedData":  # multiple imputation: each data set, pooled (Rubin's rules)
        from recoverystats.missing.dispatch import pooled_call

        return pooled_call(odds_ratios, locals())
    df = check_dataframe(df)
    check_option("method", method, Method)
    check_option("cluster_correction", cluster_correction, ClusterCorrection)
    check_option("missing", missing, Missing)
    level = check_conf_level(conf_level)
    notes: list[str] = []

    # -- which columns (shared with hazard_ratios: recoverystats._design) ---------------------
    rhs: str | None = None
    if formula is not None:
        if not isinstance(formula, str) or "~" not in formula:
            raise InvalidParameterError(
                f"formula must be a string like 'outcome ~ exposure + covariate'; got {formula!r}."
            )
        lhs, rhs = (part.strip() for part in formula.split("~", 1))
        if outcome is not None and outcome != lhs:
            raise InvalidParameterError(
                f"outcome={outcome!r} differs from the formula's left-hand side {lhs!r}; pass only one."
            )
        outcome = lhs
    elif outcome is None:
        raise InvalidParameterError("outcome: name the 0/1 outcome column (or pass formula='y ~ x + ...').")
    spec = model_spec(df, func="odds_ratios", exposure=exposure, adjust=adjust, formula=formula, rhs=rhs,
                      reference=reference)
    used = spec.used
    if outcome in used:
        raise InvalidParameterError(f"outcome column {outcome!r} also appears among the covariates; remove it.")
    check_columns(df, [outcome], "outcome")
    if cluster is not None:
        check_one_column(df, cluster, "cluster")

    # -- rows --------------------------------------------------------------------------
    n_input = len(df)
    n_excluded = 0
    data = df
    if "eligible" in df.columns:
        elig = df["eligible"]
        if not (pd.api.types.is_bool_dtype(elig) or pd.api.types.is_numeric_dtype(elig)):
            raise DataValidationError(
                f"eligible: column 'eligible' must be boolean (True = follow-up window complete); got dtype "
                f"{elig.dtype} with values such as {pd.unique(elig)[:5].tolist()!r}. Convert it (e.g. "
                "df['eligible'] = df['eligible'] == 'yes') or drop the column to use every row."
            )
        mask = elig.to_numpy(dtype=bool, na_value=False)  # missing = not eligible, any dtype
        n_inel = int((~mask).sum())
        if n_inel:
            data = df.loc[mask]
            n_excluded += n_inel
            notes.append(
                f"{n_inel} of {n_input} participants excluded as not eligible (follow-up window incomplete by the data cut-off)."
            )
    if cluster is not None:
        data, cluster_note = singleton_clusters(data, cluster)
        if cluster_note:
            notes.append(cluster_note)
    needed = [outcome, *used] + ([cluster] if cluster else [])
    na = data[needed].isna()
    if na.to_numpy().any():
        counts = na.sum()
        counts = counts[counts > 0]
        detail = [f"column {c!r}: {int(k)} missing" for c, k in counts.items()]
        if missing == "raise":
            raise DataValidationError(
                "odds_ratios: missing values in model columns (pass missing='drop' to fit complete cases, "
                "or impute first).",
                detail,
            )
        keep = ~na.any(axis=1).to_numpy()
        n_drop = int((~keep).sum())
        data = data.loc[keep]
        n_excluded += n_drop
        notes.append(
            f"{n_drop} rows with missing values dropped (complete-case analysis; "
            + "; ".join(detail) + ")."
        )
    wts = None
    sampling = False
    check_option("weight_type", weight_type, WeightType)
    if weights is not None:
        if weights in used or weights == outcome:
            raise InvalidParameterError(f"weights: column {weights!r} is also a model column; pass a separate weight column.")
        wts = case_weights(data, weights, weight_type, func="odds_ratios")
        sampling = weight_type == "sampling"
        if sampling and method == "firth":
            raise InvalidParameterError(
                "method='firth' takes frequency weights only; with weight_type='sampling' use method='auto' or 'mle'."
            )
        if cluster_correction == "CR2" and cluster is not None:
            raise InvalidParameterError(
                "cluster_correction='CR2' is not available with weights; use cluster_correction='CR1'."
            )
        zero = wts == 0
        if zero.any():
            data = data.loc[~zero]
            if not sampling:
                notes.append(f"{int(zero.sum())} rows of weight 0 left out.")
            else:
                n_excluded += int(zero.sum())
                notes.append(f"{int(zero.sum())} rows of weight 0 left out.")
            wts = wts[~zero]
        if sampling:
            notes.append(
                f"Sampling weights from {weights!r}: weighted estimates with robust (sandwich) standard errors"
                + (f" clustered by {cluster!r}." if cluster is not None else ".")
            )
        else:
            notes.append(f"Frequency weights from {weights!r}: each row counts as that many participants.")
    if len(data) == 0:
        raise DataValidationError(
            f"odds_ratios: no rows left to fit: all {n_input} rows were excluded ({'; '.join(notes)}). "
            "Check the 'eligible' column and the missing values of the model columns."
        )
    y = _binary_outcome(data[outcome], outcome)
    freq = wts is not None and not sampling
    n = len(y)
    n_w = float(wts.sum()) if freq else float(n)  # participants represented
    if freq:
        # participants excluded (ineligible, missing values): the expanded data's count
        total = float(pd.to_numeric(df[weights], errors="coerce").fillna(0.0).clip(lower=0.0).sum())
        n_excluded = int(round(total - n_w))
    n_events = int(round(float(wts @ y))) if freq else int(y.sum())
    if n_events == 0 or n_events == (n_w if freq else n):
        only = "0 (no events)" if n_events == 0 else "1 (every row is an event)"
        raise DataValidationError(
            f"outcome: column {outcome!r} has only one class among the {n} rows used: all {only}. "
            "An odds ratio needs both events and non-events; check the outcome definition or the eligibility filter."
        )

    # -- design ------------------------------------------------------------------------
    design = build_design(data, spec, intercept=True)
    X = design.X
    k = X.shape[1]
    colmin, colmax = X.min(axis=0), X.max(axis=0)
    for t in design.terms:
        if t.kind == "intercept":
            continue
        for c in t.columns:
            if colmin[c] == colmax[c]:
                src = t.variable or t.name
                raise DataValidationError(
                    f"covariate {src!r} is constant (every row has {design.names[c]} = {colmin[c]:g}) among the {n} rows "
                    "used; it carries no information — remove it from the model."
                    if t.kind == "numeric" else
                    f"covariate {src!r}: design column {design.names[c]!r} is constant among the {n} rows used "
                    "(a level that never or always occurs); remove the term or merge rare levels."
                )
    if k >= n_w:
        raise DataValidationError(
            f"odds_ratios: {k} coefficients but only {n} rows; remove covariates."
        )
    XtX = X.T @ X
    sets = collinear_sets(XtX, design.names)
    if sets:
        shown = "; ".join("{" + ", ".join(s) + "}" for s in sets)
        raise DataValidationError(
            f"covariates are perfectly collinear: {shown}. One is a linear combination of the others; "
            "remove one from each set."
        )

    # -- fit -----------------------------------------------------------------------------
    n_min = min(n_events, int(round(n_w)) - n_events)
    epv = n_min / max(k - (1 if design.intercept is not None else 0), 1)
    use_firth = method == "firth"
    sep = None
    fit = None
    headline = ""
    if method in ("auto", "mle"):
        fit = E.fit_mle(X, y, weights=wts, max_iter=max_iter, xtx=XtX)
        # separation makes Newton diverge (coefficients grow without bound, fitted
        # probabilities reach 0/1): confirm with the linear-programming check
        if not fit.converged or np.max(np.abs(fit.eta)) > E.ETA_LIMIT:
            sep = E.detect_separation(X, y)
        if sep is not None and sep.separated:
            what = "complete" if sep.complete else "quasi-complete"
            cols = ", ".join(design.names[j] for j in sep.columns if design.names[j] != "Intercept") or "the design"
            if method == "mle" or sampling:
                raise EstimationError(
                    f"{what} separation: the maximum-likelihood estimates do not exist (involves {cols}); "
                    "use method='firth' (or 'auto') for Firth's penalised likelihood, or merge sparse levels."
                )
            use_firth = True
            notes.append(f"{what.capitalize()} separation detected (involves {cols}): Firth penalised likelihood used.")
            headline = (
                f"Firth ({what} separation: the ML estimates do not exist): method='auto' switched from "
                "maximum likelihood"
            )
        elif not fit.converged:
            raise EstimationError(
                f"the logistic model did not converge after {max_iter} iterations (no separation found). "
                "Try: rescaling covariates with very large values, removing near-duplicate covariates, "
                "a larger max_iter, or method='firth'."
            )
        elif method == "auto" and (n_min < FIRTH_MIN_EVENTS or epv < FIRTH_EPV) and sampling:
            notes.append(
                f"Few events ({n_min} in the smaller outcome class, {epv:.1f} per coefficient), but Firth's "
                "penalised likelihood is not used with sampling weights: maximum-likelihood estimates are shown."
            )
        elif method == "auto" and (n_min < FIRTH_MIN_EVENTS or epv < FIRTH_EPV):
            use_firth = True
            why = (
                f"events per variable {epv:.1f} < {FIRTH_EPV:g}" if epv < FIRTH_EPV
                else f"{n_min} events < {FIRTH_MIN_EVENTS}"
            )
            headline = f"Firth ({why}): set method='mle' for ML"
            notes.append(
                f"Few events ({n_min} in the smaller outcome class, {epv:.1f} per coefficient): Firth penalised "
                f"likelihood used to reduce small-sample bias (rule: < {FIRTH_MIN_EVENTS} events or < {FIRTH_EPV:g} per coefficient)."
            )
    if use_firth:
        # start from the ML estimate when it exists (few events), else from the
        # intercept-only fit (separation); both save many Newton steps on large data
        start = np.zeros(k)
        if fit is not None and fit.converged:
            start = fit.beta
        elif design.intercept is not None:
            start[design.intercept] = np.log((n_events + 0.5) / (n_w - n_events + 0.5))
        fit = E.fit_firth(X, y, weights=wts, max_iter=max(max_iter, 100), beta0=start)
        if not fit.converged:
            raise EstimationError(
                f"Firth's penalised likelihood did not converge after {max(max_iter, 100)} iterations. "
                "Try removing covariates or merging sparse categories."
            )
    assert fit is not None
    if epv < LOW_EPV:
        notes.append(
            f"Events per variable = {epv:.1f} (< {LOW_EPV:g}): estimates may be unstable; consider fewer covariates."
        )

    # -- covariance and inference ------------------------------------------------------------
    codes = None
    G = None
    correction = None
    ref_dist = "normal"
    df_resid = None
    cov = fit.cov
    if cluster is not None:
        codes_, uniq = pd.factorize(data[cluster], sort=True)
        codes = codes_.astype(np.intp)
        G = len(uniq)
        if G < 2:
            raise DataValidationError(
                f"cluster: column {cluster!r} has a single cluster ({plain(uniq[0])!r}) among the {n} rows used; "
                "cluster-robust SEs need several clusters. Pass another cluster column or cluster=None."
            )
        correction = cluster_correction
        cov = E.cluster_cov(X, y, fit.p, fit.cov, codes, G, correction=correction, weights=wts,
                            n_obs=n_w)
        if correction == "CR2":
            ref_dist, df_resid = "t", float(G - 1)
        if correction == "CR1" and G < CR1_MIN_CLUSTERS:
            warnings.warn(
                f"Only {G} clusters in {cluster!r}: CR1 cluster-robust SEs are biased downward with fewer than "
                f"{CR1_MIN_CLUSTERS} clusters; use cluster_correction='CR2'.",
                SmallSampleWarning, stacklevel=2,
            )
        elif correction == "CR2" and G < CR2_MIN_CLUSTERS:
            warnings.warn(
                f"Only {G} clusters in {cluster!r}: even CR2 (Bell-McCaffrey, t with {G - 1} df) may under-cover "
                f"with fewer than {CR2_MIN_CLUSTERS} clusters; interpret intervals cautiously.",
                SmallSampleWarning, stacklevel=2,
            )
    elif sampling:
        cov = E.sandwich_cov(X, y, fit.p, fit.cov, wts)
    robust = cluster is not None or sampling
    model = FittedModel(
        design, y, fit.beta, cov, fit.cov, fit.p, use_firth, codes, G, correction, ref_dist, df_resid,
        design.exposure_kind, design.exposure_levels, level, n_excluded, fit.pen_loglik,
        weights=wts, weight_type=weight_type if wts is not None else None,
    )
    crit = model.crit(level)
    beta = fit.beta
    se = np.sqrt(np.diag(cov))
    z = beta / se
    p = model.pvalue(z)
    lo = beta - crit * se
    hi = beta + crit * se
    stat = z
    if use_firth and cluster is None:
        chi_crit = float(stats.chi2.ppf(level, 1))
        stat = z.copy()
        profile = list(range(k))
        if n * k > FIRTH_PROFILE_ALL_CELLS:
            # each profile limit is a sequence of Firth refits; on large data profile
            # only the exposure (or every non-intercept coefficient if none is designated)
            ecols = [c for t in design.exposure_terms for c in t.columns]
            profile = ecols or [c for c in range(k) if c != design.intercept]
            notes.append(
                "Large data: profile penalised-likelihood CIs and penalised LR p-values for "
                + ("the exposure" if ecols else "the covariates")
                + " only; Wald CIs and p-values (from the penalised fit) for the other rows."
            )
        for j in profile:
            lo[j], hi[j] = E.profile_ci_firth(X, y, fit, j, chi_crit, weights=wts)
            s, _ = E.penalised_lr_test(X, y, fit, [j], weights=wts)
            stat[j] = s
            p[j] = stats.chi2.sf(s, 1)
    elif use_firth:
        notes.append("Firth with clustered data: Wald intervals from the cluster-robust covariance (no profile intervals).")

    # -- term tests ----------------------------------------------------------------------------
    term_rows = []
    term_p = np.full(k, np.nan)
    for t in design.terms:
        if len(t.columns) < 2:
            continue
        cols = t.columns
        q = len(cols)
        if robust:
            b = beta[cols]
            W = float(b @ np.linalg.solve(cov[np.ix_(cols, cols)], b))
            if correction == "CR2":
                statv, pv, test = W / q, float(stats.f.sf(W / q, q, G - 1)), f"Wald F ({q}, {G - 1}), CR2"
            else:
                statv, pv, test = W, float(stats.chi2.sf(W, q)), (
                    "Wald chi-square, CR1" if cluster is not None else "Wald chi-square, robust (sampling weights)"
                )
        elif use_firth:
            statv, _ = E.penalised_lr_test(X, y, fit, cols, weights=wts)
            pv, test = float(stats.chi2.sf(statv, q)), "penalised likelihood ratio"
        else:
            keep = [j for j in range(k) if j not in cols]
            f0 = E.fit_mle(X[:, keep], y, weights=wts, max_iter=max_iter)
            statv = max(2.0 * (fit.loglik - f0.loglik), 0.0)
            pv, test = float(stats.chi2.sf(statv, q)), "likelihood ratio"
        term_rows.append({"term": t.name, "df": q, "statistic": statv, "p_value": pv, "test": test})
        term_p[cols] = pv
    term_tests = pd.DataFrame(term_rows, columns=["term", "df", "statistic", "p_value", "test"])

    # -- table -------------------------------------------------------------------------------
    col_var, col_ref = design.column_info()
    col_n = [pd.NA] * k
    col_ev = [pd.NA] * k
    cand = [c for c in range(k) if c != design.intercept and colmin[c] == 0.0 and colmax[c] == 1.0]
    if cand:
        block = X[:, cand]
        is01 = ((block == 0.0) | (block == 1.0)).all(axis=0)
        ones = block.sum(axis=0) if not freq else wts @ block
        ev = y @ block if not freq else (wts * y) @ block
        for c, ok, n1, e1 in zip(cand, is01, ones, ev, strict=True):
            if ok:
                col_n[c], col_ev[c] = int(round(n1)), int(round(e1))
    order = design.order()
    table = pd.DataFrame(
        {
            "term": [design.names[c] for c in order],
            "log_odds": beta[order],
            "std_error": se[order],
            "estimate": np.exp(beta[order]),
            "ci_lower": np.exp(lo[order]),
            "ci_upper": np.exp(hi[order]),
            "p_value": p[order],
            "statistic": stat[order],
            "variable": pd.Series([col_var[c] for c in order], dtype="object"),
            "reference": pd.Series([None if col_ref[c] is None else str(col_ref[c]) for c in order], dtype="object"),
            "n": pd.array([col_n[c] for c in order], dtype="Int64"),
            "events": pd.array([col_ev[c] for c in order], dtype="Int64"),
            "term_p_value": term_p[order],
        }
    )

    # -- method string -------------------------------------------------------------------------
    if use_firth:
        mstr = "Firth penalised likelihood logistic regression"
        mstr += "; profile penalised-likelihood CIs, penalised LR p-values" if cluster is None else ""
    else:
        mstr = "Maximum-likelihood logistic regression; Wald CIs"
    if cluster is not None:
        mstr += (
            f"; cluster-robust {correction} SEs by {cluster!r} ({G} clusters"
            + (f", t with {G - 1} df)" if correction == "CR2" else ", normal reference)")
        )
    # -- model tests, information criteria -----------------------------------------------------
    tests, ll_null, aic, bic = _model_tests(
        X, y, wts, fit, design, cov, use_firth=use_firth, sampling=sampling, robust=robust,
        correction=correction, G=G, n_obs=n_w, max_iter=max_iter,
    )
    names = design.names
    vcov = pd.DataFrame(cov[np.ix_(order, order)], index=[names[c] for c in order],
                        columns=[names[c] for c in order])
    if sampling:
        mstr += "; sampling weights, robust sandwich SEs" + ("" if cluster is None else " (clustered)")
    elif freq:
        mstr += "; frequency weights"
    lhs_text = outcome
    return OddsRatioResult(
        _table=table,
        conf_level=level,
        method=mstr,
        n_used=int(round(n_w)) if freq else n,
        n_excluded=n_excluded,
        notes=tuple(notes),
        outcome=outcome,
        exposure=exposure,
        n_events=n_events,
        events_per_variable=float(epv),
        term_tests=term_tests,
        cluster=cluster,
        n_clusters=G,
        cluster_correction=correction,
        loglik=float(fit.pen_loglik),
        formula=f"{lhs_text} ~ {design.formula}",
        headline=headline,
        loglik_null=ll_null,
        aic=aic,
        bic=bic,
        weights=weights,
        weight_type=weight_type if weights is not None else None,
        _tests=tests,
        _vcov=vcov,
        _model=model,
    )


def _model_tests(X, y, wts, fit, design, cov, *, use_firth, sampling, robust, correction, G, n_obs, max_iter):
    """Whole-model tests against the intercept-only model, null log-likelihood, AIC, BIC."""
    k = X.shape[1]
    icpt = design.intercept
    slopes = [j for j in range(k) if j != icpt]
    q = len(slopes)
    rows = []
    ll_null = float("nan")
    if not sampling:
        if use_firth:
            statv, _ = E.penalised_lr_test(X, y, fit, slopes, weights=wts) if q else (0.0, 0)
            # the penalised null log-likelihood: the intercept-only Firth fit with the full penalty
            ll_null = float(fit.pen_loglik - statv / 2.0)
        else:
            if icpt is not None:
                f0 = E.fit_mle(X[:, [icpt]], y, weights=wts, max_iter=max_iter)
                ll_null = float(f0.loglik)
            else:
                ll_null = float(np.log(0.5) * (len(y) if wts is None else wts.sum()))
            statv = max(2.0 * (fit.loglik - ll_null), 0.0)
        rows.append({"test": "likelihood ratio", "statistic": float(statv), "df": q,
                     "df_denominator": np.nan, "p_value": float(stats.chi2.sf(statv, q)) if q else np.nan,
                     "robust": False})
    if q:
        b = fit.beta[slopes]
        try:
            W = float(b @ np.linalg.solve(cov[np.ix_(slopes, slopes)], b))
        except np.linalg.LinAlgError:
            W = float("nan")
        if G is not None and q > G - 1:
            # a cluster-robust covariance has rank <= G - 1: the joint test is not
            # defined (Stata likewise omits it)
            W = float("nan")
        if correction == "CR2":
            rows.append({"test": "wald", "statistic": W / q, "df": q, "df_denominator": float(G - 1),
                         "p_value": float(stats.f.sf(W / q, q, G - 1)), "robust": True})
        else:
            rows.append({"test": "wald", "statistic": W, "df": q, "df_denominator": np.nan,
                         "p_value": float(stats.chi2.sf(W, q)), "robust": bool(robust)})
    tests = pd.DataFrame(rows, columns=["test", "statistic", "df", "df_denominator", "p_value", "robust"])
    if use_firth or sampling:
        aic = bic = float("nan")
    else:
        aic = float(-2.0 * fit.loglik + 2.0 * k)
        bic = float(-2.0 * fit.loglik + k * np.log(n_obs))
    return tests, ll_null, aic, bic
