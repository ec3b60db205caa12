"""Coverage of 95% odds-ratio intervals over 2,000 seeded simulations (slow).

Data are simulated from a logistic model mirroring the program simulator's design:
a randomised 50/50 group (peer_mentoring vs comparison, true OR 0.6), a 3-level
criminogenic risk band, age, and (clustered scenario) participants nested within
mentors with a random mentor effect on the logit scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from recoverystats.regression import odds_ratios

N_SIM = 2000
NOMINAL = 0.95
#: accept within 3 Monte Carlo standard errors of nominal (docs/architecture.md, "Checked against references")
MC_SE = np.sqrt(NOMINAL * (1 - NOMINAL) / N_SIM)
TRUE_LOG_OR = np.log(0.6)


def _simulate(rng, n=300):
    g = rng.integers(0, 2, n)
    risk = rng.integers(0, 3, n)
    age = rng.normal(0.0, 1.0, n)
    lp = -0.7 + TRUE_LOG_OR * g + 0.45 * risk - 0.25 * age
    y = (rng.random(n) < expit(lp)).astype(int)
    return pd.DataFrame({"group": np.where(g == 1, "peer_mentoring", "comparison"), "risk_level": risk,
                         "age": age, "y": y})


@pytest.mark.slow
def test_or_ci_coverage_independent_rows():
    rng = np.random.default_rng(20261129)
    hits = 0
    for _ in range(N_SIM):
        d = _simulate(rng)
        t = odds_ratios(d, "y", exposure="group", adjust=["risk_level", "age"], method="mle",
                        reference={"group": "comparison"}).table
        lo, hi = np.log(t["ci_lower"].iloc[0]), np.log(t["ci_upper"].iloc[0])
        hits += lo <= TRUE_LOG_OR <= hi
    cov = hits / N_SIM
    assert abs(cov - NOMINAL) <= 3 * MC_SE, f"coverage {cov:.4f}"


@pytest.mark.slow
def test_or_ci_coverage_clustered_cr2():
    """Clustered data, clustered exposure (whole mentor caseloads in one arm).

    With within-cluster correlation and a cluster-level exposure the model-based SE
    under-covers; CR2 with t(G-1) should be nominal. The target is the population-
    averaged OR of the data-generating model (computed numerically below), which is
    what a marginal logistic regression estimates.
    """
    rng = np.random.default_rng(7)
    G, m, sd = 50, 8, 0.5
    # population-averaged log OR of the exposure (exposure-only marginal model): integrate
    # the mentor effect and the risk band out by Monte Carlo with 400,000 draws
    zz = np.random.default_rng(0).normal(0, sd, 400_000)
    rr = np.random.default_rng(1)
    risk = rr.integers(0, 3, 400_000)
    p1 = expit(-0.7 + TRUE_LOG_OR + 0.45 * risk + zz).mean()
    p0 = expit(-0.7 + 0.45 * risk + zz).mean()
    target = np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0))
    hits = 0
    naive_hits = 0
    for _ in range(N_SIM):
        mentor = np.repeat(np.arange(G), m)
        g_m = rng.permutation(np.r_[np.zeros(G // 2), np.ones(G - G // 2)]).astype(int)
        g = g_m[mentor]
        risk = rng.integers(0, 3, G * m)
        u = rng.normal(0, sd, G)[mentor]
        y = (rng.random(G * m) < expit(-0.7 + TRUE_LOG_OR * g + 0.45 * risk + u)).astype(int)
        d = pd.DataFrame({"g": g, "y": y, "mentor_id": mentor})
        t = odds_ratios(d, "y", exposure="g", cluster="mentor_id", cluster_correction="CR2", method="mle").table
        hits += np.log(t["ci_lower"].iloc[0]) <= target <= np.log(t["ci_upper"].iloc[0])
        tn = odds_ratios(d, "y", exposure="g", method="mle").table
        naive_hits += np.log(tn["ci_lower"].iloc[0]) <= target <= np.log(tn["ci_upper"].iloc[0])
    cov = hits / N_SIM
    assert abs(cov - NOMINAL) <= 3 * MC_SE, f"CR2 coverage {cov:.4f}"
    # and the check has power: ignoring the clustering under-covers clearly
    assert naive_hits / N_SIM < NOMINAL - 3 * MC_SE


@pytest.mark.slow
def test_simulator_population_risk_difference_recovered():
    """On the program simulator (randomised groups, Weibull hazards, mentor effects,
    dropout and censoring), the g-computation RD of 1-year rearrest from a 3,000-person
    program covers the population RD, estimated from 100,000 simulated participants."""
    import recoverystats as rs
    from recoverystats.datasets import simulate_program

    big = simulate_program(100_000, seed=11, contacts=False, assessments=False)
    pop = rs.recidivism(big.program(), as_of=big.truth.as_of, window_days=365)
    pop = pop[pop["eligible"]]
    rates = pop.groupby("group")["recidivated"].agg(["mean", "size"])
    truth = rates.loc["peer_mentoring", "mean"] - rates.loc["comparison", "mean"]
    truth_se = np.sqrt((rates["mean"] * (1 - rates["mean"]) / rates["size"]).sum())

    sim = simulate_program(3000, seed=5, contacts=False, assessments=False)
    prog = sim.program()
    rows = rs.recidivism(prog, as_of=sim.truth.as_of, window_days=365)
    # rows carry the first mentor; unmatched participants are each their own cluster
    assert rows.loc[rows["group"] == "comparison", "mentor_id"].isna().all()
    res = odds_ratios(rows, "recidivated", exposure="group", adjust=["age", "risk_level", "gender"],
                      reference={"group": "comparison"}, cluster="mentor_id", cluster_correction="CR2")
    assert res.table["estimate"].iloc[0] < 1  # mentoring lowers the odds (true log-HR -0.3)
    rd = res.risk_difference().table.iloc[0]
    assert rd["ci_lower"] - 3 * truth_se <= truth <= rd["ci_upper"] + 3 * truth_se
    assert abs(rd["estimate"] - truth) < 3 * np.hypot(rd["std_error"], truth_se)
