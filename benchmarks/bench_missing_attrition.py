"""Cost of the attrition tools and of the opt-in report section "Follow-up and missing data".

Usage::

    python benchmarks/bench_missing_attrition.py           # full scale
    python benchmarks/bench_missing_attrition.py --quick   # small scale (development)

Prints one line per measurement:

- ``followup_weights`` (100,000 rows x 4 covariates, by group: two models) against bare
  statsmodels ``Logit(...).fit().predict()`` on the same design matrices (the same math);
- ``tipping_point`` (2,000 rows, m = 20): the default 17 x 17 grid and the report's 9 x 9
  grid, each with the tipping-point bisection and the four deterministic bounds;
- the quarterly report with and without the missing-data section (the section's own cost;
  DESIGN section 14: opt-in sections state their cost).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def timed(fn, repeat: int = 1) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(["comparison", "peer_mentoring"], n)
    risk = rng.choice(["low", "moderate", "high", "very_high"], n)
    site = rng.choice(["site_a", "site_b", "site_c"], n)
    age = rng.normal(35, 9, n)
    eta = 1.2 - 0.5 * (risk == "high") - 0.8 * (risk == "very_high") - 0.4 * (site == "site_c") - 0.01 * (age - 35)
    fu = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-0.6 - 0.5 * (group == "peer_mentoring") + 0.6 * (risk == "very_high"))))
         ).astype(float)
    gender = rng.choice(["male", "female"], n)
    return pd.DataFrame({"group": group, "risk_level": risk, "site": site, "age": age, "gender": gender,
                         "followed_up": fu, "use": np.where(fu == 1, y, np.nan)})


def bench_weights(n: int) -> None:
    import statsmodels.api as sm

    from recoverystats.missing import followup_weights

    d = frame(n)
    adjust = ["age", "risk_level", "site", "gender"]
    ours = timed(lambda: followup_weights(d, followed_up="followed_up", adjust=adjust, by="group"), repeat=3)
    mats = []
    for _, s in d.groupby("group"):
        X = pd.get_dummies(s[adjust], columns=["risk_level", "site", "gender"], drop_first=True, dtype=float)
        X.insert(0, "const", 1.0)
        mats.append((X.to_numpy(), s["followed_up"].to_numpy(float)))

    def bare() -> None:
        for X, y in mats:
            sm.Logit(y, X).fit(disp=0).predict()

    base = timed(bare, repeat=3)
    print(f"followup_weights n={n:,} x {len(adjust)} covariates, by group: {ours:.3f} s; "
          f"bare statsmodels Logit fit+predict (design prebuilt): {base:.3f} s; ratio {ours / base:.2f}")


def bench_tipping(n: int, m: int) -> None:
    from recoverystats.missing import tipping_point

    d = frame(n)
    for label, deltas in (("default 17x17 grid", None), ("report 9x9 grid", [-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2])):
        t = timed(lambda deltas=deltas: tipping_point(d, outcome="use", exposure="group",
                                                     adjust=["age", "risk_level"], m=m, seed=1, deltas=deltas))
        print(f"tipping_point n={n:,}, m={m}, {label}: {t:.2f} s")


def bench_report(n: int, m: int) -> None:
    from recoverystats.datasets import simulate_program
    from recoverystats.report import quarterly

    prog = simulate_program(n, seed=11).program()
    off = timed(lambda: quarterly(prog, quarter="2026Q3"))
    on = timed(lambda: quarterly(prog, quarter="2026Q3", config={"sections": {"missing_data": True},
                                                                  "missing": {"m": m, "seed": 1}}))
    print(f"quarterly report, {n:,} participants: default {off:.1f} s; with missing_data (m={m}) {on:.1f} s; "
          f"section cost {on - off:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        bench_weights(20_000)
        bench_tipping(1_000, 10)
        bench_report(800, 5)
    else:
        bench_weights(100_000)
        bench_tipping(2_000, 20)
        bench_report(3_000, 20)


if __name__ == "__main__":
    main()
