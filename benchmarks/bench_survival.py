"""Benchmark: survival_curve and hazard_ratios against lifelines, measured in the same run.

Targets (docs/performance.md):

- ``survival_curve`` on 1M rows (two groups) <= 1.0 x lifelines ``KaplanMeierFitter``
  fitted once per group (the same estimates, Greenwood variances and log-log CIs);
- ``hazard_ratios`` on 100k rows x 8 covariates, Efron ties <= 1.0 x lifelines
  ``CoxPHFitter().fit`` (same model). Our call also computes the concordance, the LR/Wald/
  score tests and the proportional-hazards tests; lifelines computes its concordance
  lazily, so it is not included on its side.

Times are integer days (so there are many ties, as in program data). Each timing is the
best of ``--repeat`` runs. The ratios printed are ours / lifelines (below 1 = faster).

Usage::

    python benchmarks/bench_survival.py --n 20000              # quick (KM rows; Cox uses n/10)
    python benchmarks/bench_survival.py                         # target: 1M KM rows, 100k Cox rows
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd


def make_data(n: int, p: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    beta = np.linspace(-0.4, 0.4, p)
    t = np.ceil(rng.exponential(365.0 / np.exp(x @ beta)))
    c = rng.uniform(30, 1100, n).round()
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(p)])
    df["time_days"] = np.minimum(t, c)
    df["event"] = (t <= c).astype(int)
    df["group"] = np.where(rng.random(n) < 0.5, "peer_mentoring", "comparison")
    return df


def best_of(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="rows for Kaplan-Meier (default 1M)")
    ap.add_argument("--cox-n", type=int, default=None, help="rows for Cox (default n / 10)")
    ap.add_argument("--p", type=int, default=8, help="Cox covariates (default 8)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    cox_n = args.cox_n or max(args.n // 10, 1000)

    from lifelines import CoxPHFitter, KaplanMeierFitter

    from recoverystats.survival import hazard_ratios, survival_curve

    warnings.simplefilter("ignore")

    # -- Kaplan-Meier -------------------------------------------------------------------
    km_df = make_data(args.n, 1, args.seed)

    def ours_km():
        res = survival_curve(km_df, time="time_days", event="event", by="group")
        return res.table

    def lifelines_km():
        out = []
        for _, sub in km_df.groupby("group"):
            k = KaplanMeierFitter().fit(sub["time_days"], sub["event"])
            out.append((k.survival_function_, k.confidence_interval_))
        return out

    ours_km()  # warm-up (imports, caches)
    lifelines_km()
    t_ours = best_of(ours_km, args.repeat)
    t_ref = best_of(lifelines_km, args.repeat)
    # same answer?
    res = survival_curve(km_df, time="time_days", event="event", by="group")
    sub = km_df[km_df.group == "comparison"]
    k = KaplanMeierFitter().fit(sub["time_days"], sub["event"])
    mine = res.table[res.table.group == "comparison"]
    diff = np.max(np.abs(mine["estimate"].to_numpy() - k.survival_function_.loc[mine["time"], "KM_estimate"].to_numpy()))
    print(f"Kaplan-Meier, {args.n:,} rows, 2 groups: ours {t_ours:.3f} s, lifelines {t_ref:.3f} s, "
          f"ratio {t_ours / t_ref:.2f} (target <= 1.0); max |dS| = {diff:.1e}")

    # -- Cox ------------------------------------------------------------------------------
    cox_df = make_data(cox_n, args.p, args.seed + 1)
    covs = [f"x{i}" for i in range(args.p)]
    lf_df = cox_df[covs + ["time_days", "event"]]

    def ours_cox():
        return hazard_ratios(cox_df, time="time_days", event="event", adjust=covs)

    def lifelines_cox():
        return CoxPHFitter().fit(lf_df, "time_days", "event")

    ours_cox()
    lifelines_cox()
    t_ours = best_of(ours_cox, args.repeat)
    t_ref = best_of(lifelines_cox, args.repeat)
    r = ours_cox()
    c = lifelines_cox()
    rel = np.max(np.abs(r.table["log_hazard"].to_numpy() / c.params_.to_numpy() - 1))
    print(f"Cox (Efron), {cox_n:,} rows x {args.p} covariates: ours {t_ours:.3f} s, lifelines {t_ref:.3f} s, "
          f"ratio {t_ours / t_ref:.2f} (target <= 1.0); max rel. coef difference {rel:.1e}")


if __name__ == "__main__":
    main()
