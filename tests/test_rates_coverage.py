"""Coverage of the comparison and rate intervals: exact sums and seeded simulations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recoverystats.rates import compare_proportions, incidence_rate_ratio
from recoverystats.rates._intervals import newcombe_difference, poisson_ci
from recoverystats.rates.compare import _Strata, mantel_haenszel

NOMINAL = 0.95
#: mean coverage of Newcombe's method 10 over random (p1, p0): Newcombe (1998) reports
#: 0.956 for his parameter space; we accept nominal +- 0.01
NEWCOMBE_MEAN_TOL = 0.01
#: floating-point slack for intervals that are conservative by construction
CONSERVATIVE_SLACK = 1e-9
#: simulated coverage must lie within 3 Monte Carlo standard errors of nominal
#: (or above it for conservative exact intervals)
MC_SE_MULTIPLIER = 3.0


def _mc_band(reps: int) -> float:
    return MC_SE_MULTIPLIER * np.sqrt(NOMINAL * (1 - NOMINAL) / reps)


@pytest.mark.parametrize(("n1", "n0"), [(20, 20), (30, 50), (10, 40)])
def test_newcombe_exact_coverage_by_double_binomial_sums(n1: int, n0: int) -> None:
    lo = np.empty((n1 + 1, n0 + 1))
    hi = np.empty_like(lo)
    for a in range(n1 + 1):
        for c in range(n0 + 1):
            _, lo[a, c], hi[a, c] = newcombe_difference(a, n1, c, n0, conf_level=NOMINAL)
    rng = np.random.default_rng(1998)
    covs = []
    for p1, p0 in rng.uniform(0, 1, size=(1000, 2)):
        w = np.outer(
            stats.binom.pmf(np.arange(n1 + 1), n1, p1), stats.binom.pmf(np.arange(n0 + 1), n0, p0)
        )
        covs.append((w * ((lo <= p1 - p0) & (p1 - p0 <= hi))).sum())
    assert abs(np.mean(covs) - NOMINAL) < NEWCOMBE_MEAN_TOL


def test_garwood_poisson_interval_never_below_nominal() -> None:
    mus = np.linspace(0.05, 50, 1500)
    x = np.arange(0, 200)
    lo, hi = poisson_ci(x, conf_level=NOMINAL)
    pmf = stats.poisson.pmf(x[:, None], mus[None, :])
    coverage = (pmf * ((lo[:, None] <= mus) & (mus <= hi[:, None]))).sum(axis=0)
    assert coverage.min() >= NOMINAL - CONSERVATIVE_SLACK


@pytest.mark.slow
def test_mantel_haenszel_intervals_cover_the_common_effect() -> None:
    """2,000 seeded stratified studies with a common OR, RR or RD: coverage ~ 95%."""
    rng = np.random.default_rng(20261129)
    reps = 2000
    sizes = np.array([40, 60, 80, 30, 50])
    base = np.array([0.10, 0.20, 0.30, 0.15, 0.25])
    truth = {"or": 1.8, "rr": 1.5, "rd": 0.08}
    for measure, value in truth.items():
        if measure == "or":
            odds = base / (1 - base) * value
            p1 = odds / (1 + odds)
        elif measure == "rr":
            p1 = base * value
        else:
            p1 = base + value
        hits = 0
        for _ in range(reps):
            a = rng.binomial(sizes, p1)
            c = rng.binomial(sizes, base)
            st = _Strata(
                a.astype(float),
                (sizes - a).astype(float),
                c.astype(float),
                (sizes - c).astype(float),
            )
            res = mantel_haenszel(st, measure, NOMINAL)
            hits += res["ci_lower"] <= value <= res["ci_upper"]
        assert abs(hits / reps - NOMINAL) < _mc_band(reps), (measure, hits / reps)


@pytest.mark.slow
def test_woolf_and_katz_intervals_cover_in_simulation() -> None:
    rng = np.random.default_rng(7)
    reps = 2000
    n1, n0, p1, p0 = 150, 150, 0.35, 0.25
    rr_true = p1 / p0
    or_true = (p1 / (1 - p1)) / (p0 / (1 - p0))
    hits = {"rr": 0, "or": 0, "rd": 0}
    for _ in range(reps):
        a, c = rng.binomial(n1, p1), rng.binomial(n0, p0)
        d = pd.DataFrame(
            {
                "g": ["t"] * n1 + ["c"] * n0,
                "y": np.r_[np.arange(n1) < a, np.arange(n0) < c].astype(int),
            }
        )
        for measure, truth in (("rr", rr_true), ("or", or_true), ("rd", p1 - p0)):
            t = compare_proportions(d, "y", group="g", measure=measure, reference="c").table
            hits[measure] += t["ci_lower"][0] <= truth <= t["ci_upper"][0]
    for measure, h in hits.items():
        assert abs(h / reps - NOMINAL) < _mc_band(reps), (measure, h / reps)


@pytest.mark.slow
def test_exact_rate_ratio_interval_is_conservative_in_simulation() -> None:
    rng = np.random.default_rng(11)
    reps = 2000
    t1, t0, rate0, irr = 40.0, 60.0, 0.3, 1.6
    hits = 0
    for _ in range(reps):
        d = pd.DataFrame(
            {
                "g": ["a", "b"],
                "x": [rng.poisson(rate0 * irr * t1), rng.poisson(rate0 * t0)],
                "pt": [t1, t0],
            }
        )
        t = incidence_rate_ratio(d, events="x", person_time="pt", group="g", reference="b").table
        hits += t["ci_lower"][0] <= irr <= t["ci_upper"][0]
    assert hits / reps >= NOMINAL - _mc_band(reps)
