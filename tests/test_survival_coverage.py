"""Coverage of survival confidence intervals over seeded simulations (slow; run in CI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recoverystats.survival import hazard_ratios, survival_curve

N_SIM = 2000
NOMINAL = 0.95
#: Allowed distance from nominal: 3 Monte Carlo standard errors of a proportion at 0.95.
MC_TOL = 3 * np.sqrt(NOMINAL * (1 - NOMINAL) / N_SIM)


@pytest.mark.slow
@pytest.mark.parametrize("conf_type", ["log-log", "log"])
def test_km_ci_coverage_at_fixed_time(conf_type):
    # Exponential(1) event times, Uniform(0, 3) censoring, n = 100; S(log 2) = 0.5 exactly.
    rng = np.random.default_rng(20260501)
    t0 = np.log(2.0)
    hits = 0
    for _ in range(N_SIM):
        t = rng.exponential(1.0, 100)
        c = rng.uniform(0, 3, 100)
        d = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int)})
        row = survival_curve(d, time="time", event="event", conf_type=conf_type).at(t0).iloc[0]
        hits += row["ci_lower"] <= 0.5 <= row["ci_upper"]
    coverage = hits / N_SIM
    assert abs(coverage - NOMINAL) < MC_TOL, f"{conf_type} coverage {coverage:.4f}"


@pytest.mark.slow
def test_cox_wald_ci_coverage():
    # True log HR 0.5 for a binary exposure, exponential baseline, 30% censoring-ish, n = 200.
    rng = np.random.default_rng(7)
    beta = 0.5
    hits = 0
    for _ in range(N_SIM):
        x = rng.binomial(1, 0.5, 200)
        t = rng.exponential(1.0 / np.exp(beta * x))
        c = rng.exponential(2.5, 200)
        d = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int), "x": x})
        row = hazard_ratios(d, time="time", event="event", exposure="x").table.iloc[0]
        hits += np.log(row["ci_lower"]) <= beta <= np.log(row["ci_upper"])
    coverage = hits / N_SIM
    assert abs(coverage - NOMINAL) < MC_TOL, f"Cox coverage {coverage:.4f}"
