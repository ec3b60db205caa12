"""Benchmark: simulate_program at scale (time, rows, peak memory).

Usage: python benchmarks/bench_simulate.py [--scale N] [--lean]

``--scale`` is the number of participants (default 1,000,000, about 10M events);
``--lean`` switches off contacts and assessments (the load-benchmark configuration).
Prints one line per run; there is no "bare library" equivalent to compare against.
"""

from __future__ import annotations

import argparse
import resource
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", "--n", type=int, default=1_000_000, dest="scale")
    ap.add_argument("--lean", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from recoverystats.datasets import simulate_program

    t0 = time.perf_counter()
    sim = simulate_program(
        args.scale, seed=args.seed, contacts=not args.lean, assessments=not args.lean
    )
    elapsed = time.perf_counter() - t0
    rows = {k: len(v) for k, v in sim.tables.items()}
    shallow = sum(v.memory_usage(deep=False).sum() for v in sim.tables.values()) / 1e9
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB on Linux
    print(
        f"simulate_program(n={args.scale:,}, lean={args.lean}): {elapsed:.2f} s; rows {rows}; "
        f"tables (shallow) {shallow:.2f} GB; peak RSS {peak:.2f} GB"
    )


if __name__ == "__main__":
    main()
