"""Benchmark: the cost of the opt-in synthesis report sections (issue 16) at scale.

Usage::

    python benchmarks/bench_synthesis.py               # 100,000 participants, 5 sites
    python benchmarks/bench_synthesis.py --n 5000      # quick

The sections "Effect by site" and "Effect by subgroup" are switched off by default; DESIGN
section 14 asks opt-in sections to state their own cost. This script times the work they
add to a report, on a simulated program (simulation and the recidivism measure are not
timed): the per-site adjusted logistic models and their REML pool (``sites``), and one
interaction model per modifier with mentor clustering plus the common-effect model
(``subgroups``, two modifiers), and, for comparison, the same fits with bare statsmodels
``Logit`` (no clustering, no pooling, no tests). It also times
``interrupted_time_series`` on a 40-quarter series and ``meta_analysis`` over 1,000
studies (REML), which are cheap. The suppression and rendering of the two small tables
they add are negligible next to the default report.

Output lines: ``sites section: X s``, ``subgroups section: X s``, ``bare statsmodels
fits: X s``.
"""

from __future__ import annotations

import argparse
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="participants (default 100,000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import pandas as pd
    import statsmodels.api as sm

    import recoverystats as rs

    sim = rs.datasets.simulate_program(args.n, n_sites=5, n_mentors=max(40, args.n // 30), seed=args.seed,
                                       contacts=False, assessments=False)
    rows = rs.recidivism(sim.program())
    d = rows[rows["eligible"] & rows["recidivated"].notna()].copy()
    adjust = ["age", "gender", "risk_level", "prior_incarcerations", "primary_substance"]
    print(f"{args.n:,} participants, {len(d):,} eligible for the headline outcome, 5 sites")

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    fits = {s: rs.odds_ratios(g, "recidivated", exposure="group", adjust=adjust, reference={"group": "comparison"},
                              missing="drop") for s, g in d.groupby("site")}
    pooled = rs.meta_analysis(fits)
    t_sites = time.perf_counter() - t0
    print(f"sites section: {t_sites:.2f} s (5 adjusted site models + REML pool; pooled OR {pooled.estimate:.3f})")

    t0 = time.perf_counter()
    for mod in ("gender", "risk_level"):
        rs.effect_modification(d, outcome="recidivated", exposure="group", modifier=mod,
                               adjust=[a for a in adjust if a != mod], reference={"group": "comparison"},
                               cluster="mentor_id")
    t_sub = time.perf_counter() - t0
    print(f"subgroups section: {t_sub:.2f} s (2 modifiers, interaction models clustered by mentor)")

    t0 = time.perf_counter()
    for _, g in d.groupby("site"):
        X = pd.get_dummies(g[adjust], drop_first=True, dtype=float)
        X.insert(0, "group", (g["group"] == "peer_mentoring").astype(float))
        sm.Logit(g["recidivated"].astype(float), sm.add_constant(X)).fit(disp=0)
    t_bare = time.perf_counter() - t0
    print(f"bare statsmodels fits: {t_bare:.2f} s (the 5 site models only, model-based SEs)")

    rng = np.random.default_rng(1)
    series = pd.DataFrame({"t": np.arange(40), "y": rng.poisson(200, 40), "pop": 1000.0})
    t0 = time.perf_counter()
    rs.interrupted_time_series(series, time="t", outcome="y", offset="pop", interruptions=[20, 30],
                               family="quasipoisson", season=(1, 4))
    print(f"interrupted_time_series, 40 quarters: {time.perf_counter() - t0:.3f} s")
    k = 1000
    studies = pd.DataFrame({"y": rng.normal(-0.3, 0.4, k), "se": rng.uniform(0.1, 0.5, k)})
    t0 = time.perf_counter()
    rs.meta_analysis(studies, estimate="y", std_error="se", measure="generic")
    print(f"meta_analysis REML, {k} studies: {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
