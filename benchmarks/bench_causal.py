"""Benchmark: propensity model + ATT weights + balance vs statsmodels Logit alone.

Target (docs/performance.md, DESIGN section 13): on 1M rows x 15 covariates, the
comparison-group workflow -- ``balancing_weights(estimand="ATT")`` (propensity model,
weights, overlap summary) followed by ``balance(weights=...)`` (SMD and variance ratio
before and after weighting for every covariate) -- takes <= 1.5 x statsmodels
``Logit(t, X).fit()`` alone on the same matrix.

Usage::

    python benchmarks/bench_causal.py            # full scale (1,000,000 rows)
    python benchmarks/bench_causal.py --n 50000  # quick

Ours is timed from the DataFrame (checks, design, fit, weights, tables); statsmodels from
the ready numpy matrix (fit only). Best of ``--repeat`` runs each, run alternately.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def make_data(n: int, k: int = 15, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {f"x{j}": rng.standard_normal(n) for j in range(k)}
    df = pd.DataFrame(cols)
    beta = rng.normal(0, 0.25, k)
    lp = -1.0 + df.to_numpy() @ beta
    df["treat"] = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(np.int8)
    return df


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="rows (default 1,000,000)")
    ap.add_argument("--k", type=int, default=15, help="covariates (default 15)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing; the best is reported")
    args = ap.parse_args()

    import statsmodels.api as sm

    from recoverystats.causal import balance, balancing_weights

    df = make_data(args.n, args.k)
    covs = [c for c in df.columns if c.startswith("x")]
    X = np.column_stack([np.ones(len(df)), df[covs].to_numpy(float)])
    t = df["treat"].to_numpy(float)

    def sm_logit():
        return sm.Logit(t, X).fit(disp=0).params

    def ours():
        bw = balancing_weights(df, exposure="treat", adjust=covs, estimand="ATT")
        b = balance(df, exposure="treat", adjust=covs, weights=bw, estimand="ATT")
        return bw, b

    bw, b = ours()
    p_ref = sm.Logit(t, X).fit(disp=0).predict()
    dmax = float(np.max(np.abs(bw.scores.to_numpy() - p_ref)))
    print(f"causal benchmark: n = {args.n:,}, k = {args.k} covariates (+ intercept), best of {args.repeat}")
    print(f"  agreement with statsmodels: max abs diff of propensity scores {dmax:.1e}; "
          f"max |SMD| after ATT weighting {b.max_abs_smd['weighted']:.3f}")
    ref, us = [], []
    for _ in range(args.repeat):
        ref.append(best_of(sm_logit, 1))
        us.append(best_of(ours, 1))
    t_sm, t_us = min(ref), min(us)
    print(f"  propensity + ATT weights + balance: statsmodels Logit {t_sm:7.3f} s | ours {t_us:7.3f} s | "
          f"ratio {t_us / t_sm:5.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
