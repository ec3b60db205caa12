"""Vectorised interval formulas for proportions, differences and Poisson rates (internal).

Every function takes numpy arrays (or scalars) of counts and returns arrays; ``n = 0``
gives NaN rather than an error. The public functions in this subpackage call these.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import special, stats

RateMethod = Literal["wilson", "exact", "jeffreys", "jeffreys_modified", "agresti_coull", "wald"]

#: Accepted spellings of each proportion CI method (R/statsmodels names included).
METHOD_ALIASES: dict[str, str] = {
    "wilson": "wilson",
    "score": "wilson",
    "exact": "exact",
    "clopper_pearson": "exact",
    "clopper-pearson": "exact",
    "beta": "exact",
    "jeffreys": "jeffreys",
    "jeffreys_modified": "jeffreys_modified",
    "modified_jeffreys": "jeffreys_modified",
    "agresti_coull": "agresti_coull",
    "agresti-coull": "agresti_coull",
    "wald": "wald",
    "normal": "wald",
}

METHOD_LABELS: dict[str, str] = {
    "wilson": "Wilson score",
    "exact": "Clopper-Pearson exact",
    "jeffreys": "Jeffreys (equal-tailed)",
    "jeffreys_modified": "Jeffreys, Brown-Cai-DasGupta modification",
    "agresti_coull": "Agresti-Coull",
    "wald": "Wald",
}


def z_value(conf_level: float) -> float:
    """Two-sided standard normal quantile for ``conf_level``."""
    return float(special.ndtri(1.0 - (1.0 - conf_level) / 2.0))


def binomial_ci(
    events: np.ndarray, n: np.ndarray, *, method: str, conf_level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper confidence limits for ``events / n`` (NaN where ``n == 0``)."""
    x = np.asarray(events, dtype=float)
    nn = np.asarray(n, dtype=float)
    alpha = 1.0 - conf_level
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "wilson":
            z = z_value(conf_level)
            z2 = z * z
            denom = nn + z2
            centre = (x + z2 / 2.0) / denom
            half = z / denom * np.sqrt(x * (nn - x) / nn + z2 / 4.0)
            lo, hi = centre - half, centre + half
            # exact algebraic end points (avoid 1e-17 rounding below 0 / above 1)
            lo = np.where(x == 0, 0.0, lo)
            hi = np.where(x == nn, 1.0, hi)
        elif method == "exact":
            lo = np.where(x > 0, special.betaincinv(x, nn - x + 1.0, alpha / 2.0), 0.0)
            hi = np.where(x < nn, special.betaincinv(x + 1.0, nn - x, 1.0 - alpha / 2.0), 1.0)
        elif method == "jeffreys":
            lo = special.betaincinv(x + 0.5, nn - x + 0.5, alpha / 2.0)
            hi = special.betaincinv(x + 0.5, nn - x + 0.5, 1.0 - alpha / 2.0)
            # the convention of R DescTools::BinomCI: lower = 0 at x = 0 and
            # upper = 1 at x = n; the other end stays the Beta quantile
            lo = np.where(x == 0, 0.0, lo)
            hi = np.where(x == nn, 1.0, hi)
        elif method == "jeffreys_modified":
            # Brown, Cai & DasGupta (2001, section 4.1.2): at x = 0 the upper limit is the
            # Clopper-Pearson one, 1 - (alpha/2)^(1/n), and the lower limit is 0 at x = 0
            # and x = 1 (mirrored at x = n and n - 1), which removes the coverage dips
            # of the plain interval near p = 0 and 1.
            lo = special.betaincinv(x + 0.5, nn - x + 0.5, alpha / 2.0)
            hi = special.betaincinv(x + 0.5, nn - x + 0.5, 1.0 - alpha / 2.0)
            edge = (alpha / 2.0) ** (1.0 / nn)
            # the x = 0 and x = n rules take precedence (they decide n = 1)
            lo = np.where(x == nn, edge, np.where(x <= 1, 0.0, lo))
            hi = np.where(x == 0, 1.0 - edge, np.where(x >= nn - 1, 1.0, hi))
        elif method == "agresti_coull":
            z = z_value(conf_level)
            nt = nn + z * z
            pt = (x + z * z / 2.0) / nt
            half = z * np.sqrt(pt * (1.0 - pt) / nt)
            lo, hi = np.clip(pt - half, 0.0, 1.0), np.clip(pt + half, 0.0, 1.0)
        elif method == "wald":
            z = z_value(conf_level)
            p = x / nn
            half = z * np.sqrt(p * (1.0 - p) / nn)
            lo, hi = np.clip(p - half, 0.0, 1.0), np.clip(p + half, 0.0, 1.0)
        else:  # pragma: no cover - guarded by check_option
            raise ValueError(method)
    empty = nn <= 0
    lo = np.where(empty, np.nan, lo)
    hi = np.where(empty, np.nan, hi)
    return lo, hi


def newcombe_difference(
    x1: float, n1: float, x0: float, n0: float, *, conf_level: float
) -> tuple[float, float, float]:
    """Risk difference ``x1/n1 - x0/n0`` with Newcombe's hybrid score CI (method 10)."""
    if n1 <= 0 or n0 <= 0:
        return float("nan"), float("nan"), float("nan")
    p1, p0 = x1 / n1, x0 / n0
    (l1, l0), (u1, u0) = binomial_ci(
        np.array([x1, x0]), np.array([n1, n0]), method="wilson", conf_level=conf_level
    )
    d = p1 - p0
    lower = d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    upper = d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return float(d), float(lower), float(upper)


def poisson_ci(events: np.ndarray, *, conf_level: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood 1936) limits for a Poisson mean given the observed count."""
    x = np.asarray(events, dtype=float)
    alpha = 1.0 - conf_level
    lo = np.where(x > 0, stats.chi2.ppf(alpha / 2.0, 2.0 * x) / 2.0, 0.0)
    hi = stats.chi2.ppf(1.0 - alpha / 2.0, 2.0 * x + 2.0) / 2.0
    return lo, hi


# -- exact conditional odds ratio (Fisher / Cornfield) -----------------------------------


def _nchg_logpmf_support(a: int, b: int, c: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Support and log central-hypergeometric weights of cell ``a`` given the margins."""
    m = a + c  # column 1 total (events)
    n = b + d  # column 2 total (non-events)
    k = a + b  # row 1 total (exposed)
    lo, hi = max(0, k - n), min(k, m)
    support = np.arange(lo, hi + 1, dtype=float)
    logdc = (
        special.gammaln(m + 1)
        - special.gammaln(support + 1)
        - special.gammaln(m - support + 1)
        + special.gammaln(n + 1)
        - special.gammaln(k - support + 1)
        - special.gammaln(n - k + support + 1)
    )
    return support, logdc


def _nchg_probs(support: np.ndarray, logdc: np.ndarray, log_psi: float) -> np.ndarray:
    w = logdc + log_psi * support
    w = w - w.max()
    p = np.exp(w)
    return p / p.sum()


def exact_odds_ratio(
    a: int, b: int, c: int, d: int, *, conf_level: float
) -> tuple[float, float, float]:
    """Conditional MLE of the odds ratio and its exact (Cornfield) CI.

    Matches R ``fisher.test(matrix(c(a, c, b, d), 2))$estimate`` and ``$conf.int``:
    the table has rows (exposed, unexposed) and columns (event, no event).
    """
    from scipy.optimize import brentq

    support, logdc = _nchg_logpmf_support(a, b, c, d)
    lo, hi = support[0], support[-1]
    alpha = 1.0 - conf_level
    x = float(a)
    if lo == hi:
        return float("nan"), 0.0, float("inf")

    def mean(log_psi: float) -> float:
        return float(np.sum(support * _nchg_probs(support, logdc, log_psi)))

    def upper_tail(log_psi: float) -> float:  # P(X >= x)
        return float(_nchg_probs(support, logdc, log_psi)[support >= x].sum())

    def lower_tail(log_psi: float) -> float:  # P(X <= x)
        return float(_nchg_probs(support, logdc, log_psi)[support <= x].sum())

    bound = 100.0
    if x == lo:
        est = 0.0
    elif x == hi:
        est = float("inf")
    else:
        est = float(np.exp(brentq(lambda t: mean(t) - x, -bound, bound, xtol=1e-12)))
    ci_lo = (
        0.0
        if x == lo
        else float(np.exp(brentq(lambda t: upper_tail(t) - alpha / 2.0, -bound, bound, xtol=1e-12)))
    )
    ci_hi = (
        float("inf")
        if x == hi
        else float(np.exp(brentq(lambda t: lower_tail(t) - alpha / 2.0, -bound, bound, xtol=1e-12)))
    )
    return est, ci_lo, ci_hi
