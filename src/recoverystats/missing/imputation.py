"""Multiple imputation by chained equations: :func:`impute` and :class:`ImputedData`.

Hand-written (DESIGN §14, #12). statsmodels' ``MICEData`` imputes every column with a
linear model and predictive mean matching (no logistic or multinomial models for
binary and unordered categorical columns), and scikit-learn's
``IterativeImputer(sample_posterior=True)`` draws from a Gaussian predictive
distribution for every column (a categorical column would be imputed as a number);
neither draws the imputation model's parameters the way mice does. The loop below
follows R mice's methods (``pmm``, ``norm``, ``logreg``, ``polyreg``) and runs every
chain's fits on whole arrays (one BLAS call per Gram matrix), which the 100k x 20,
m = 20 in 2 minutes target needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import linalg
from scipy.special import expit

from recoverystats._checks import as_column_list, check_columns, check_dataframe
from recoverystats.errors import DataValidationError, EstimationError, InvalidParameterError

__all__ = ["impute", "ImputedData", "METHODS"]

ImputeMethod = Literal["pmm", "norm", "logreg", "polyreg"]
#: The imputation methods (as R mice names them).
METHODS: tuple[str, ...] = ("pmm", "norm", "logreg", "polyreg")
#: Ridge added to the diagonal of X'X in ``norm``/``pmm`` (mice ``ridge = 1e-5``).
RIDGE = 1e-5
#: Ridge penalty per observed row on the non-intercept coefficients of ``logreg``/``polyreg``:
#: keeps the fit finite under (quasi-)separation, negligible otherwise.
LOGIT_RIDGE = 1e-4
#: Newton iterations per logistic / multinomial fit (warm-started from the previous sweep).
NEWTON_MAX_ITER = 25
NEWTON_TOL = 1e-7
#: Largest change of a (standardised-scale) coefficient in one Newton step.
MAX_STEP = 5.0
#: Newton steps per fit after the first sweep, warm-started from the chain's previous
#: estimate (a one-step estimator: asymptotically as efficient as the MLE).
WARM_STEPS = 1
#: Chains run in at most this many threads (BLAS single-threaded inside each).
MAX_WORKERS = 4
#: A text column with more distinct values than this is left out of the default model
#: (identifiers, mentor ids); name it in ``columns=`` to include it (up to ``MAX_LEVELS``).
AUTO_MAX_LEVELS = 20
#: A text/categorical column with more distinct values than this cannot be modelled.
MAX_LEVELS = 200


# ---------------------------------------------------------------------------
# variables
# ---------------------------------------------------------------------------
@dataclass
class _Var:
    name: str
    kind: str  # "numeric" | "binary" | "categorical"
    values: np.ndarray  # float; numeric values or level codes; NaN where missing
    levels: tuple[Any, ...] = ()
    center: float = 0.0
    scale: float = 1.0
    method: str = ""

    @property
    def miss(self) -> np.ndarray:
        return np.isnan(self.values)

    @property
    def width(self) -> int:
        return len(self.levels) - 1 if self.kind == "categorical" else 1

    def encode(self, v: np.ndarray) -> np.ndarray:
        """Design columns of the values ``v`` (n,) -> (n, width)."""
        if self.kind == "numeric":
            return ((v - self.center) / self.scale)[:, None]
        if self.kind == "binary":
            return v[:, None]
        return (v[:, None] == np.arange(1, len(self.levels))[None, :]).astype(float)

    def design_names(self) -> list[str]:
        if self.kind == "categorical":
            return [f"{self.name}[{lv}]" for lv in self.levels[1:]]
        return [self.name]


def _classify(s: pd.Series, name: str, max_levels: int = MAX_LEVELS) -> _Var | None:
    """Encode a column, or None when it cannot be in an imputation model (dates, ids)."""
    if pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
        return None
    if pd.api.types.is_bool_dtype(s) or (s.dtype == object and s.dropna().map(type).eq(bool).all() and s.notna().any()):
        v = s.map({True: 1.0, False: 0.0}).astype(float).to_numpy()
        return _Var(name, "binary", v, levels=(False, True))
    if isinstance(s.dtype, pd.CategoricalDtype):
        levels = tuple(s.cat.categories)
        codes = s.cat.codes.to_numpy().astype(float)
        codes[codes < 0] = np.nan
        return _Var(name, "binary" if len(levels) == 2 else "categorical", codes, levels=levels)
    if pd.api.types.is_numeric_dtype(s):
        v = pd.to_numeric(s, errors="coerce").astype(float).to_numpy()
        obs = v[~np.isnan(v)]
        uniq = np.unique(obs)
        if len(uniq) <= 2 and np.isin(uniq, (0.0, 1.0)).all() and len(uniq) == 2:
            return _Var(name, "binary", v, levels=(0, 1))
        sd = float(obs.std()) if len(obs) > 1 else 1.0
        return _Var(name, "numeric", v, center=float(obs.mean()) if len(obs) else 0.0,
                    scale=sd if sd > 0 else 1.0)
    # text: a categorical column unless it looks like an identifier
    obs_s = s.dropna()
    levels_arr = pd.unique(obs_s)
    if len(levels_arr) > max_levels:
        return None
    try:
        levels = tuple(sorted(levels_arr))
    except TypeError:
        levels = tuple(levels_arr)
    lookup = {lv: float(i) for i, lv in enumerate(levels)}
    codes = s.map(lookup).astype(float).to_numpy()
    return _Var(name, "binary" if len(levels) == 2 else "categorical", codes, levels=levels)


# ---------------------------------------------------------------------------
# the imputation models (one chain's fit; arrays throughout)
# ---------------------------------------------------------------------------
def _norm_draw(X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """mice ``.norm.draw``: beta_hat, and a draw (beta*, sigma*) from the posterior."""
    xtx = X.T @ X
    d = np.diag(xtx)
    # mice's ridge, with a floor for a predictor that is constant 0 among the observed rows
    # (a level seen only where the target is missing): its coefficient is then 0
    pen = RIDGE * np.where(d > 0, d, 1.0)
    v = linalg.inv(xtx + np.diag(pen), check_finite=False)
    v = (v + v.T) / 2.0
    beta = v @ (X.T @ y)
    resid = y - X @ beta
    df = max(len(y) - X.shape[1], 1)
    sigma = float(np.sqrt(resid @ resid / rng.chisquare(df)))
    chol = linalg.cholesky(v, lower=True, check_finite=False)
    beta_star = beta + sigma * (chol @ rng.standard_normal(X.shape[1]))
    return beta, beta_star, sigma


def _pmm_match(yhat_obs: np.ndarray, yhat_mis: np.ndarray, donors: int, rng: np.random.Generator) -> np.ndarray:
    """For each missing row, the index of a random one of the ``donors`` observed rows
    with the closest predicted value (mice's type-1 matching)."""
    n_o = len(yhat_obs)
    d = min(donors, n_o)
    order = np.argsort(yhat_obs, kind="stable")
    s = yhat_obs[order]
    width = min(2 * d, n_o)
    pos = np.searchsorted(s, yhat_mis)
    # a window of 2d consecutive sorted values around the insertion point holds the d nearest
    start = np.clip(pos - d, 0, n_o - width)
    win = start[:, None] + np.arange(width)[None, :]
    dist = np.abs(s[win] - yhat_mis[:, None])
    # random tie-breaking: a tiny jitter ranks equal distances in random order
    dist = dist + rng.random(dist.shape) * 1e-12 * (1.0 + np.abs(dist))
    nearest = np.argpartition(dist, d - 1, axis=1)[:, :d] if d < width else np.broadcast_to(
        np.arange(width), (len(yhat_mis), width))
    pick = nearest[np.arange(len(yhat_mis)), rng.integers(0, d, size=len(yhat_mis))]
    return order[win[np.arange(len(yhat_mis)), pick]]


def _capped(step: np.ndarray) -> np.ndarray:
    """A Newton step shortened to at most ``MAX_STEP`` in any coefficient (a trust region
    against overshooting from a poor start; never binding near the optimum)."""
    big = float(np.max(np.abs(step))) if step.size else 0.0
    return step * (MAX_STEP / big) if big > MAX_STEP else step


def _gram(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``X' diag(w) X`` for non-negative ``w`` (one symmetric rank-k BLAS update)."""
    Xw = X * np.sqrt(w)[:, None]
    return Xw.T @ Xw


def _logit_fit(X: np.ndarray, y: np.ndarray, beta: np.ndarray, *, max_iter: int = NEWTON_MAX_ITER
               ) -> tuple[np.ndarray, np.ndarray]:
    """Ridge-penalised logistic MLE by Newton steps from ``beta``; returns (beta_hat, cov).

    ``cov`` is the inverse penalised information at the last point the Hessian was
    evaluated (the step from it is below ``NEWTON_TOL``, or ``max_iter`` steps were
    taken: one step from a warm start is the one-step estimator).
    """
    p = X.shape[1]
    lam = np.full(p, LOGIT_RIDGE * len(y))
    lam[0] = 0.0
    beta = beta.copy()
    for _ in range(max_iter):
        pr = expit(X @ beta)
        H = _gram(X, pr * (1.0 - pr)) + np.diag(lam)
        g = X.T @ (y - pr) - lam * beta
        cf = linalg.cho_factor(H, check_finite=False)
        step = _capped(linalg.cho_solve(cf, g, check_finite=False))
        beta += step
        if np.max(np.abs(step)) < NEWTON_TOL:
            break
    cov = linalg.cho_solve(cf, np.eye(p), check_finite=False)
    return beta, (cov + cov.T) / 2.0


def _softmax_ref(eta: np.ndarray) -> np.ndarray:
    """Class probabilities (n, K) from linear predictors (n, K-1) with class 0 as reference."""
    full = np.concatenate([np.zeros((eta.shape[0], 1)), eta], axis=1)
    full -= full.max(axis=1, keepdims=True)
    e = np.exp(full)
    return e / e.sum(axis=1, keepdims=True)


def _mlogit_fit(X: np.ndarray, codes: np.ndarray, K: int, B: np.ndarray, *, max_iter: int = NEWTON_MAX_ITER
                ) -> tuple[np.ndarray, np.ndarray]:
    """Ridge-penalised multinomial logit MLE (reference class 0) by Newton steps.

    ``B`` is (p, K-1); returns (B_hat, cov of vec(B) in class-major order), ``cov`` as
    in :func:`_logit_fit`."""
    n, p = X.shape
    Y = (codes[:, None] == np.arange(1, K)[None, :]).astype(float)
    lam1 = np.full(p, LOGIT_RIDGE * n)
    lam1[0] = 0.0
    lam = np.tile(lam1, K - 1)
    B = B.copy()

    def hessian(P: np.ndarray) -> np.ndarray:
        H = np.empty(((K - 1) * p, (K - 1) * p))
        for a in range(K - 1):
            H[a * p:(a + 1) * p, a * p:(a + 1) * p] = _gram(X, P[:, a] * (1.0 - P[:, a]))
            for b in range(a + 1, K - 1):
                blk = -((X * (P[:, a] * P[:, b])[:, None]).T @ X)
                H[a * p:(a + 1) * p, b * p:(b + 1) * p] = blk
                H[b * p:(b + 1) * p, a * p:(a + 1) * p] = blk.T
        return H + np.diag(lam)

    for _ in range(max_iter):
        P = _softmax_ref(X @ B)[:, 1:]
        G = (X.T @ (Y - P)).T.reshape(-1) - lam * B.T.reshape(-1)
        cf = linalg.cho_factor(hessian(P), check_finite=False)
        step = _capped(linalg.cho_solve(cf, G, check_finite=False))
        B += step.reshape(K - 1, p).T
        if np.max(np.abs(step)) < NEWTON_TOL:
            break
    cov = linalg.cho_solve(cf, np.eye((K - 1) * p), check_finite=False)
    return B, (cov + cov.T) / 2.0


def _mvn_draw(mean: np.ndarray, cov: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    try:
        chol = linalg.cholesky(cov, lower=True, check_finite=False)
    except linalg.LinAlgError:  # numerically semi-definite: eigen square root
        val, vec = np.linalg.eigh(cov)
        chol = vec * np.sqrt(np.clip(val, 0.0, None))
    return mean + chol @ rng.standard_normal(len(mean))


# ---------------------------------------------------------------------------
# ImputedData
# ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False, repr=False)
class ImputedData:
    """``m`` completed data sets from :func:`impute`.

    Iterate over it (``for d in imp``) or take one with :meth:`complete`; pass it to
    any analysis function in place of the DataFrame to get results pooled by Rubin's
    rules. It holds the original rows (it is data, not a result): do not publish it.

    Attributes
    ----------
    m
        Number of imputed data sets.
    methods
        Column -> imputation method (``"pmm"``, ``"norm"``, ``"logreg"``,
        ``"polyreg"``; ``""`` for a complete column used as a predictor only).
    predictors
        Column -> the columns in its imputation model.
    fraction_missing
        Share of missing values per column of the imputation model (a Series).
    traces
        Convergence traces: one row per ``column, iteration, chain`` with the ``mean``
        and ``sd`` of the imputed values (level codes 0, 1, ... for categorical
        columns, as mice's trace plot).
    settings
        ``m, seed, max_iter, donors, methods, columns, auxiliary`` for the report's
        provenance; the same settings and data give the same data sets.
    """

    m: int
    methods: Mapping[str, str]
    predictors: Mapping[str, tuple[str, ...]]
    fraction_missing: pd.Series
    traces: pd.DataFrame
    settings: Mapping[str, Any]
    _data: pd.DataFrame = field(repr=False)
    _imputed: Mapping[str, np.ndarray] = field(repr=False)  # column -> (m, n_missing) values
    _rows: Mapping[str, np.ndarray] = field(repr=False)  # column -> positions of its missing rows

    # -- access -------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """Columns of the completed data sets (those of the input, in order)."""
        return [str(c) for c in self._data.columns]

    @property
    def n_rows(self) -> int:
        """Rows per completed data set."""
        return len(self._data)

    @property
    def imputed_columns(self) -> list[str]:
        """Columns that had missing values and were imputed."""
        return list(self._imputed)

    def complete(self, i: int) -> pd.DataFrame:
        """The ``i``-th completed data set (``0 <= i < m``), a new DataFrame.

        The input's other columns are carried unchanged; imputed columns keep their
        dtype where the imputed values allow it (``pmm`` values are observed values;
        ``norm`` gives floats).
        """
        if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < self.m:
            raise InvalidParameterError(f"complete(i): i must be an integer from 0 to {self.m - 1}; got {i!r}.")
        out = self._data.copy()
        for col, vals in self._imputed.items():
            s = out[col]
            rows = self._rows[col]
            new = vals[int(i)]
            if isinstance(s.dtype, pd.CategoricalDtype):
                codes = s.cat.codes.to_numpy().copy()
                codes[rows] = s.cat.categories.get_indexer(pd.Index(new))
                out[col] = pd.Categorical.from_codes(codes, dtype=s.dtype)
            elif not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                arr = s.to_numpy(dtype=object).copy()
                arr[rows] = new
                if pd.api.types.is_bool_dtype(s) or all(isinstance(x, (bool, np.bool_)) for x in new[:5]):
                    out[col] = pd.Series(arr, index=s.index).astype(bool)
                else:
                    out[col] = pd.Series(arr, index=s.index, dtype=s.dtype)
            else:
                arr = s.to_numpy(dtype=float).copy()
                arr[rows] = new.astype(float)
                whole = bool(np.all(arr == np.round(arr)))
                if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) and (
                        whole or not pd.api.types.is_integer_dtype(s.dtype)):
                    out[col] = pd.Series(arr, index=s.index).astype(s.dtype)  # Int64, Float64
                elif pd.api.types.is_integer_dtype(s.dtype) and whole:
                    out[col] = pd.Series(arr, index=s.index).astype(s.dtype)
                else:
                    out[col] = arr
        return out

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return (self.complete(i) for i in range(self.m))

    def __len__(self) -> int:
        return self.m

    def __repr__(self) -> str:
        miss = {c: f"{v:.0%}" for c, v in self.fraction_missing.items() if v > 0}
        meth = {c: v for c, v in self.methods.items() if v}
        return (f"ImputedData(m={self.m}, rows={self.n_rows}, max_iter={self.settings.get('max_iter')}, "
                f"seed={self.settings.get('seed')})\n  imputed (fraction missing): {miss}\n  methods: {meth}")

    def _repr_html_(self) -> str:
        from recoverystats.results.render import render_html_table

        title = (f"Multiple imputation: m = {self.m}, {self.n_rows:,} rows, "
                 f"{self.settings.get('max_iter')} iterations, seed {self.settings.get('seed')}")
        return render_html_table(self.summary(), title=title,
                                 notes=("Check convergence with .plot(); analyse with any analysis function "
                                        "(results pooled by Rubin's rules).",))

    def summary(self) -> pd.DataFrame:
        """One row per column of the imputation model: ``column, kind, fraction_missing,
        method, n_predictors``."""
        kinds = self.settings.get("kinds", {})
        return pd.DataFrame({
            "column": list(self.methods),
            "kind": [kinds.get(c, "") for c in self.methods],
            "fraction_missing": [float(self.fraction_missing.get(c, 0.0)) for c in self.methods],
            "method": list(self.methods.values()),
            "n_predictors": [len(self.predictors.get(c, ())) for c in self.methods],
        })

    def plot(self, columns: str | Sequence[str] | None = None, *, ax: Any = None) -> Any:
        """Convergence traces: the mean and SD of the imputed values per iteration, one
        line per chain (as R mice's ``plot(imp)``); well-mixed, trendless lines
        suggest convergence.

        Returns an array of Axes (2 rows: mean, SD; one column per imputed column), or,
        when ``ax`` is given (one column only), that Axes with the means.
        """
        from recoverystats.plotting.imputation import plot_traces

        return plot_traces(self, columns=columns, ax=ax)


# ---------------------------------------------------------------------------
# impute
# ---------------------------------------------------------------------------
def impute(
    df: pd.DataFrame,
    *,
    m: int = 20,
    columns: str | Sequence[str] | None = None,
    method: str | Mapping[str, str] | None = None,
    seed: int | None = None,
    max_iter: int = 10,
    auxiliary: str | Sequence[str] = (),
    donors: int = 5,
) -> ImputedData:
    """Multiple imputation by chained equations (MICE, fully conditional specification).

    Parameters
    ----------
    df
        One row per participant (e.g. a measure's output joined to baseline
        covariates). Columns outside the imputation model are carried unchanged.
    m
        Number of completed data sets (at least 2; 20 is a good default, and more when
        the fraction of missing information is high: m ≈ 100 × fmi, von Hippel 2020).
    columns
        The columns of the imputation model: each is imputed where missing and used to
        predict the others. Default: every column that can be modelled (numeric,
        boolean, categorical, or text with at most 20 distinct values; dates and
        identifier-like text are left out and carried unchanged). Include the outcome and
        every analysis variable (see Notes). Pass only the rows to be analysed (e.g. a
        measure's ``eligible`` rows): a participant whose follow-up window is not over has
        no outcome by design, not a missing one.
    method
        ``None`` (automatic per column: ``"pmm"`` for numeric, ``"logreg"`` for binary,
        ``"polyreg"`` for unordered categorical columns), one method for every
        incomplete column, or a dict column -> method (others automatic).
    seed
        Seed of the random draws; the same seed, data and settings give the same data
        sets. ``None`` draws a seed, recorded in ``.settings["seed"]``.
    max_iter
        Sweeps of the chained equations (mice ``maxit``; 10 is usually enough — check
        ``.plot()``).
    auxiliary
        Extra columns used as predictors (and imputed if incomplete) though not analysed
        — variables that predict missingness or the incomplete values make MAR more
        plausible.
    donors
        Number of closest observed values ``pmm`` draws from (mice ``donors = 5``).

    Returns
    -------
    ImputedData

    Raises
    ------
    InvalidParameterError
        ``m < 2``, an unknown method, a method that does not fit the column's type.
    DataValidationError
        A column entirely missing, a categorical level that is never observed, a
        column that cannot be modelled.

    Notes
    -----
    Every incomplete column is imputed in turn from all other model columns
    (categorical predictors as indicator columns, numeric predictors standardised),
    ``max_iter`` times, in ``m`` independent chains that start from random draws of
    the observed values. Each model's parameters are drawn from their approximate
    posterior before imputing, so that the imputations carry the uncertainty about the
    model (Rubin's "proper" imputation):

    - ``norm`` / ``pmm`` (mice ``.norm.draw``): least squares (ridge ``1e-5`` on the
      diagonal) gives ``beta_hat`` and residual sum of squares ``S``;
      ``sigma* = sqrt(S / chi2(n_obs - p))``, ``beta* = beta_hat + sigma* L z`` with
      ``L L' = (X'X)^-1``. ``norm`` imputes ``x' beta* + N(0, sigma*^2)``; ``pmm``
      (type-1 matching) compares ``x' beta*`` of each missing row with ``x' beta_hat``
      of the observed rows and copies the observed value of a random one of the
      ``donors`` closest, so only observed values are imputed.
    - ``logreg`` / ``polyreg``: (multinomial) logistic MLE with a weak ridge penalty
      (``1e-4`` per row on non-intercept coefficients, against separation), then
      ``beta* ~ N(beta_hat, V)`` with ``V`` the inverse penalised information (mice's
      ``logreg``; mice's ``polyreg`` does not draw the parameters — here it does),
      and each missing value is drawn from its predicted probabilities.

    The outcome and the analysis model's variables are in the imputation model by
    default: imputing a covariate without the outcome imputes it as unrelated to the
    outcome, which biases its association with the outcome toward zero (Moons et al.
    2006; van Buuren 2018 §6.2). The imputations are valid under missing at random
    (MAR) given the model's columns; see ``docs/methods-missing-data.md`` for MNAR.

    Each chain runs its fits on whole arrays (vectorised pmm matching; the logistic and
    multinomial fits iterate Newton steps to convergence in the first sweep, then take
    one Newton step per sweep from the chain's previous estimate — a one-step estimator,
    as efficient as the MLE to first order). The chains are independent random streams
    spawned from ``seed`` (``numpy.random.SeedSequence``) and run on several threads with
    single-threaded BLAS; the result does not depend on the number of threads.

    References
    ----------
    van Buuren S, Groothuis-Oudshoorn K (2011). mice: Multivariate imputation by chained
    equations in R. J Stat Softw 45(3).
    van Buuren S (2018). Flexible Imputation of Missing Data, 2nd ed. CRC. §3.2-3.6.
    Rubin DB (1987). Multiple Imputation for Nonresponse in Surveys. Wiley.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from recoverystats import impute
    >>> d = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0], "y": [0, 0, 1, 1, 1, 0]})
    >>> imp = impute(d, m=3, seed=1)
    >>> imp.methods["x"], imp.m, imp.complete(0)["x"].isna().any()
    ('pmm', 3, np.False_)
    """
    df = check_dataframe(df)
    if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 2:
        raise InvalidParameterError(
            f"impute: m must be an integer of at least 2 (Rubin's rules need 2 or more data sets; 20 is usual); got {m!r}."
        )
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InvalidParameterError(f"impute: max_iter must be a positive integer (e.g. 10); got {max_iter!r}.")
    if not isinstance(donors, (int, np.integer)) or donors < 1:
        raise InvalidParameterError(f"impute: donors must be a positive integer (mice uses 5); got {donors!r}.")
    aux = as_column_list(auxiliary)
    if columns is None:
        chosen = [c for c in df.columns]
        explicit = False
    else:
        chosen = as_column_list(columns)
        check_columns(df, chosen, "columns")
        explicit = True
    check_columns(df, aux, "auxiliary")
    model_cols = list(dict.fromkeys([*chosen, *aux]))
    dup = [c for c in df.columns[df.columns.duplicated()]]
    if dup:
        raise DataValidationError(f"impute: duplicated column names {dup}; give every column a unique name.")

    # -- classify ------------------------------------------------------------------
    variables: list[_Var] = []
    for c in model_cols:
        var = _classify(df[c], str(c), MAX_LEVELS if (explicit or c in aux) else AUTO_MAX_LEVELS)
        if var is None:
            if explicit or c in aux:
                raise DataValidationError(
                    f"impute: column {c!r} ({df[c].dtype}) cannot be in an imputation model (dates, durations "
                    f"and text with more than {MAX_LEVELS} distinct values are not modelled); convert it to a "
                    "number or leave it out of columns=/auxiliary=."
                )
            continue
        var.name = c
        variables.append(var)
    for var in variables:
        miss = var.miss
        if miss.all():
            raise DataValidationError(
                f"impute: column {var.name!r} is entirely missing ({len(miss)} rows); it cannot be imputed. "
                "Drop it or leave it out of columns=."
            )
        if var.kind in ("binary", "categorical") and miss.any():
            # a level never observed cannot be imputed (a complete predictor's unused level
            # is only an indicator column of zeros, which the ridge handles)
            seen = np.unique(var.values[~miss]).astype(int)
            unseen = [var.levels[i] for i in range(len(var.levels)) if i not in set(seen)]
            if unseen:
                raise DataValidationError(
                    f"impute: column {var.name!r} has level(s) {unseen} with no observed row (seen only where the "
                    "column is missing, or declared but unused); an imputation model cannot give them a "
                    f"probability. Remove the level (df[{var.name!r}].cat.remove_unused_categories()) or "
                    "recode it."
                )
        if var.kind in ("binary", "categorical") and len(np.unique(var.values[~miss])) < 2:
            var.kind = "constant"
        elif var.kind == "numeric" and np.unique(var.values[~miss]).size < 2:
            var.kind = "constant"
    # -- methods -------------------------------------------------------------------------
    given: dict[str, str] = {}
    if isinstance(method, str):
        given = {v.name: method for v in variables if v.miss.any()}
    elif isinstance(method, Mapping):
        unknown = [c for c in method if c not in {v.name for v in variables}]
        if unknown:
            raise InvalidParameterError(
                f"impute: method= names columns that are not in the imputation model: {unknown}."
            )
        given = dict(method)
    elif method is not None:
        raise InvalidParameterError(
            f"impute: method must be None, one of {list(METHODS)} or a dict column -> method; got {method!r}."
        )
    for var in variables:
        if not var.miss.any():
            continue
        auto = {"numeric": "pmm", "binary": "logreg", "categorical": "polyreg", "constant": "pmm"}[var.kind]
        meth = given.get(var.name, auto)
        if meth not in METHODS:
            raise InvalidParameterError(
                f"impute: method for column {var.name!r} must be one of {list(METHODS)}; got {meth!r}."
            )
        if meth in ("pmm", "norm") and var.kind in ("binary", "categorical") and not (
                var.kind == "binary" and all(isinstance(lv, (int, float, np.integer, np.floating)) for lv in var.levels)):
            raise InvalidParameterError(
                f"impute: method {meth!r} needs a numeric column; {var.name!r} is {var.kind} with levels "
                f"{list(var.levels)[:8]} (use 'logreg' or 'polyreg')."
            )
        if meth == "logreg" and var.kind != "binary":
            raise InvalidParameterError(
                f"impute: method 'logreg' needs a column with two values; {var.name!r} is {var.kind}"
                + (f" with {len(var.levels)} levels (use 'polyreg')." if var.kind == "categorical" else " (use 'pmm').")
            )
        if meth == "polyreg" and var.kind not in ("binary", "categorical"):
            raise InvalidParameterError(
                f"impute: method 'polyreg' needs a categorical column; {var.name!r} is numeric (use 'pmm' or 'norm')."
            )
        if meth in ("pmm", "norm") and var.kind == "binary":
            # numeric 0/1 imputed as numbers: treat it as numeric
            obs = var.values[~var.miss]
            var.kind, var.levels = "numeric", ()
            var.center, var.scale = float(obs.mean()), float(obs.std()) or 1.0
        var.method = meth
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**32))
    try:
        seq = np.random.SeedSequence(int(seed))
    except (TypeError, ValueError):
        raise InvalidParameterError(f"impute: seed must be a non-negative integer or None; got {seed!r}.") from None

    imputed, traces_rows, predictors = _run_chains(variables, m=int(m), max_iter=int(max_iter),
                                                   donors=int(donors), seq=seq)

    # -- back to the columns' values ---------------------------------------------
    out_imputed: dict[str, np.ndarray] = {}
    rows: dict[str, np.ndarray] = {}
    for var in variables:
        if var.name not in imputed:
            continue
        vals = imputed[var.name]
        rows[var.name] = np.flatnonzero(var.miss)
        if var.kind in ("binary", "categorical"):
            lv = np.empty(len(var.levels), dtype=object)
            lv[:] = list(var.levels)
            out_imputed[var.name] = lv[vals.astype(int)]
        else:
            out_imputed[var.name] = vals
    frac = pd.Series({v.name: float(v.miss.mean()) for v in variables}, name="fraction_missing", dtype=float)
    methods = {v.name: v.method for v in variables}
    traces = pd.DataFrame(traces_rows, columns=["column", "iteration", "chain", "mean", "sd"])
    settings = {
        "m": int(m), "seed": int(seed), "max_iter": int(max_iter), "donors": int(donors),
        "methods": {k: v for k, v in methods.items() if v}, "columns": [v.name for v in variables],
        "auxiliary": list(aux), "kinds": {v.name: v.kind for v in variables},
        "engine": "recoverystats chained equations (mice-style pmm/norm/logreg/polyreg)",
    }
    return ImputedData(
        m=int(m), methods=methods, predictors=predictors, fraction_missing=frac, traces=traces,
        settings=settings, _data=df.copy(), _imputed=out_imputed, _rows=rows,
    )


def _run_chains(
    variables: list[_Var], *, m: int, max_iter: int, donors: int, seq: np.random.SeedSequence
) -> tuple[dict[str, np.ndarray], list[tuple], dict[str, tuple[str, ...]]]:
    """The chained-equation sweeps of ``m`` chains; returns imputed values (m, n_mis) per
    incomplete column (level codes for categorical ones), trace rows and predictors."""
    usable = [v for v in variables if v.kind != "constant"]
    incomplete = [v for v in usable if v.method]
    constant_inc = [v for v in variables if v.kind == "constant" and v.method]
    complete = [v for v in usable if not v.method]
    n = len(variables[0].values) if variables else 0
    rngs = [np.random.default_rng(s) for s in seq.spawn(m)]
    imputed: dict[str, np.ndarray] = {}
    predictors: dict[str, tuple[str, ...]] = {}
    for v in constant_inc:  # a single observed value: impute it
        val = v.values[~v.miss][0]
        imputed[v.name] = np.full((m, int(v.miss.sum())), val)
        predictors[v.name] = ()
    if not incomplete:
        return imputed, [], predictors
    fixed = np.concatenate([np.ones((n, 1)), *[v.encode(v.values) for v in complete]], axis=1)
    for v in incomplete:
        predictors[v.name] = tuple(u.name for u in usable if u is not v)
    miss_rows = {v.name: np.flatnonzero(v.miss) for v in incomplete}
    obs_rows = {v.name: np.flatnonzero(~v.miss) for v in incomplete}
    # the complete columns' part of each model's design, split into observed / missing rows once
    fixed_o = {v.name: fixed[obs_rows[v.name]] for v in incomplete}
    fixed_m = {v.name: fixed[miss_rows[v.name]] for v in incomplete}

    def chain(c: int) -> tuple[dict[str, np.ndarray], list[tuple]]:
        """One chain: its own random stream, so chains can run in any order or in parallel."""
        rng = rngs[c]
        # current values of every incomplete column, initialised from random draws of its
        # observed values (as mice)
        cur = {}
        for v in incomplete:
            vals = v.values.copy()
            vals[miss_rows[v.name]] = rng.choice(v.values[obs_rows[v.name]], size=len(miss_rows[v.name]))
            cur[v.name] = vals
        warm: dict[str, np.ndarray] = {}
        rows: list[tuple] = []
        # design buffers per model: the complete columns copied once, the other incomplete
        # columns' current values written into the tail at each step
        p_fixed = fixed.shape[1]
        bufs = {}
        for v in incomplete:
            width = p_fixed + sum(u.width for u in incomplete if u is not v)
            # column-major: each step overwrites whole columns, contiguous in this layout
            bo = np.empty((len(obs_rows[v.name]), width), order="F")
            bm = np.empty((len(miss_rows[v.name]), width), order="F")
            bo[:, :p_fixed] = fixed_o[v.name]
            bm[:, :p_fixed] = fixed_m[v.name]
            bufs[v.name] = (bo, bm)
        for it in range(1, max_iter + 1):
            for v in incomplete:
                ro, rm = obs_rows[v.name], miss_rows[v.name]
                Xo, Xm = bufs[v.name]
                j = p_fixed
                for u in incomplete:
                    if u is v:
                        continue
                    Xo[:, j:j + u.width] = u.encode(cur[u.name][ro])
                    Xm[:, j:j + u.width] = u.encode(cur[u.name][rm])
                    j += u.width
                new = _impute_one(v, Xo, v.values[ro], Xm, rng, donors, warm)
                cur[v.name][rm] = new
                rows.append((v.name, it, c, float(np.mean(new)), float(np.std(new, ddof=1)) if len(new) > 1 else 0.0))
        return {v.name: cur[v.name][miss_rows[v.name]] for v in incomplete}, rows

    # Each chain is many small BLAS calls: BLAS threads only add overhead there (often
    # several-fold on a busy machine), so BLAS runs single-threaded and the chains are
    # spread over the cores instead. Results do not depend on the number of workers.
    workers = max(1, min(m, os.cpu_count() or 1, MAX_WORKERS))
    with _single_threaded_blas():
        if workers == 1:
            outs = [chain(c) for c in range(m)]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                outs = list(pool.map(chain, range(m)))
    traces = [row for _, rows in outs for row in rows]
    traces.sort(key=lambda r: (r[1], r[2]))  # iteration, chain (columns in visit order)
    for v in incomplete:
        imputed[v.name] = np.stack([o[v.name] for o, _ in outs])
    return imputed, traces, predictors


def _single_threaded_blas() -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _impute_one(v: _Var, Xo: np.ndarray, y: np.ndarray, Xm: np.ndarray, rng: np.random.Generator,
                donors: int, warm: dict[str, np.ndarray]) -> np.ndarray:
    """Draw the imputation model's parameters and impute the missing rows of ``v``."""
    if v.method in ("pmm", "norm"):
        beta, beta_star, sigma = _norm_draw(Xo, y, rng)
        if v.method == "norm":
            return Xm @ beta_star + sigma * rng.standard_normal(Xm.shape[0])
        idx = _pmm_match(Xo @ beta, Xm @ beta_star, donors, rng)
        return y[idx]
    if v.method == "logreg":
        b0 = warm.get(v.name)
        if b0 is None:
            b0 = np.zeros(Xo.shape[1])
            pbar = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
            b0[0] = np.log(pbar / (1 - pbar))
        try:
            beta, cov = _logit_fit(Xo, y, b0, max_iter=NEWTON_MAX_ITER if v.name not in warm else WARM_STEPS)
        except (linalg.LinAlgError, ValueError) as exc:
            raise EstimationError(f"impute: the logistic imputation model of {v.name!r} could not be fitted ({exc}).") from None
        warm[v.name] = beta
        bs = _mvn_draw(beta, cov, rng)
        return (rng.random(Xm.shape[0]) < expit(Xm @ bs)).astype(float)
    # polyreg
    K = len(v.levels)
    B0 = warm.get(v.name)
    if B0 is None:
        B0 = np.zeros((Xo.shape[1], K - 1))
        freq = np.bincount(y.astype(int), minlength=K) / len(y)
        B0[0] = np.log(np.clip(freq[1:], 1e-6, None) / max(freq[0], 1e-6))
    try:
        B, cov = _mlogit_fit(Xo, y, K, B0, max_iter=NEWTON_MAX_ITER if v.name not in warm else WARM_STEPS)
    except (linalg.LinAlgError, ValueError) as exc:
        raise EstimationError(f"impute: the multinomial imputation model of {v.name!r} could not be fitted ({exc}).") from None
    warm[v.name] = B
    bs = _mvn_draw(B.T.reshape(-1), cov, rng).reshape(K - 1, -1).T
    P = _softmax_ref(Xm @ bs)
    u = rng.random(Xm.shape[0])[:, None]
    return (u > np.cumsum(P, axis=1)[:, :-1]).sum(axis=1).astype(float)
