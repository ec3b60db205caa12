"""Benchmark: proportions with Wilson CIs for 1,000 groups x 8 quarters over 10M rows.

Compares :func:`recoverystats.rates.proportion` with the bare-library equivalent run on
the same data in the same process: a pandas ``groupby(...).agg(["sum", "count"])``
followed by statsmodels ``proportion_confint(method="wilson")``. Prints both timings
(best of ``--repeat``) and the ratio (target <= 1.0), after checking the two agree.

Usage::

    python benchmarks/bench_rates.py              # full scale: 10,000,000 rows
    python benchmarks/bench_rates.py --scale 0.05 # 500,000 rows (development)
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from recoverystats.rates import proportion

FULL_ROWS = 10_000_000
GROUPS = 1_000
QUARTERS = 8


def make_data(n_rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, GROUPS, n_rows)
    quarter_codes = rng.integers(0, QUARTERS, n_rows)
    labels = [f"{2024 + q // 4}Q{q % 4 + 1}" for q in range(QUARTERS)]
    quarter = pd.Categorical.from_codes(quarter_codes, categories=labels)
    p = 0.2 + 0.5 * (group / GROUPS)
    y = (rng.random(n_rows) < p).astype(float)
    y[rng.random(n_rows) < 0.01] = np.nan  # 1% missing outcome
    return pd.DataFrame({"site_id": group, "quarter": quarter, "retained": y})


def baseline(df: pd.DataFrame) -> pd.DataFrame:
    agg = df.groupby(["site_id", "quarter"], observed=True)["retained"].agg(["sum", "count"])
    lo, hi = proportion_confint(agg["sum"].to_numpy(), agg["count"].to_numpy(), method="wilson")
    out = agg.reset_index()
    out["estimate"] = out["sum"] / out["count"]
    out["ci_lower"] = lo
    out["ci_upper"] = hi
    return out


def ours(df: pd.DataFrame) -> pd.DataFrame:
    return proportion(df, "retained", by=["site_id", "quarter"]).table


def best_of(fn, df: pd.DataFrame, repeat: int) -> tuple[float, pd.DataFrame]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(df)
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of 10M rows (default 1.0)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions; the best is kept")
    args = parser.parse_args()
    n_rows = int(FULL_ROWS * args.scale)
    df = make_data(n_rows)
    # warm-up (imports, first-call costs) on a small slice; statsmodels warns about the
    # empty (all-missing) groups a small slice can have
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        baseline(df.head(10_000))
        ours(df.head(10_000))
    t_base, base = best_of(baseline, df, args.repeat)
    t_ours, mine = best_of(ours, df, args.repeat)
    np.testing.assert_array_equal(mine["n"].to_numpy(), base["count"].to_numpy())
    np.testing.assert_allclose(mine["ci_lower"].to_numpy(), base["ci_lower"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(mine["ci_upper"].to_numpy(), base["ci_upper"].to_numpy(), rtol=1e-9)
    print(f"rows: {n_rows:,}; groups: {len(mine):,} ({GROUPS} sites x {QUARTERS} quarters)")
    print(f"pandas groupby + statsmodels proportion_confint: {t_base:.3f} s")
    print(f"recoverystats.proportion:                        {t_ours:.3f} s")
    print(f"ratio (ours / baseline): {t_ours / t_base:.2f}  (target <= 1.0)")


if __name__ == "__main__":
    main()
