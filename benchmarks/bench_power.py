"""Benchmark: simulation-based power (DESIGN section 13: 1,000 replicates of a 2,000-participant
program, adjusted logistic model with SEs clustered by mentor, <= 2 minutes on 2 cores).

Usage: python benchmarks/bench_power.py [--reps 1000] [--n 2000] [--n-jobs 2] [--bare-reps 20]

Runs ``recoverystats.design.simulate_power`` (each replicate: ``simulate_program`` lean,
``ProgramData`` validation, the ``relapse`` measure, ``odds_ratios`` adjusted for risk level,
age and gender, CR1 SEs clustered by mentor) and, for scale, the same calls in a plain serial
loop on ``--bare-reps`` replicates, extrapolated to ``--reps``. The machine is shared: the
1-minute load average before and after is printed with the times.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--bare-reps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()

    import recoverystats.measures as M
    from recoverystats.datasets import simulate_program
    from recoverystats.design import simulate_power
    from recoverystats.regression import odds_ratios

    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    r = simulate_power(n=args.n, reps=args.reps, effects={"relapse_mentoring": -0.35}, analysis="adjusted_or",
                       seed=args.seed, n_jobs=args.n_jobs)
    ours = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    row = r.table.iloc[0]

    # the same calls in a plain serial loop (a few replicates, extrapolated)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(args.bare_reps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sim = simulate_program(args.n, seed=i, contacts=False, assessments=False, relapse_mentoring=-0.35)
            f = M.relapse(sim.program(), window_days=365)
            d = f[(f["eligible"].astype(bool) & f["relapsed"].notna()).to_numpy()]
            odds_ratios(d, "relapsed", exposure="group", adjust=["risk_level", "age", "gender"],
                        cluster="mentor_id", reference={"group": "comparison"}, missing="drop")
    per_rep = (time.perf_counter() - t0) / args.bare_reps
    cpu_rep = (time.process_time() - c0) / args.bare_reps
    print(f"simulate_power {args.reps:,} reps x {args.n:,} participants, adjusted clustered logistic, "
          f"n_jobs={args.n_jobs}: {ours:.1f} s; power {row['power']:.3f} (MC SE {row['mc_se']:.3f}); "
          f"failed {int(row['failed'])}")
    print(f"bare serial loop: {per_rep:.4f} s per replicate; x {args.reps:,} = {per_rep * args.reps:.1f} s "
          f"(serial); ratio ours / serial = {ours / (per_rep * args.reps):.2f}")
    print(f"load average (1 min) before {load0:.2f}, after {load1:.2f}; cores {os.cpu_count()}")
    # on a shared machine the wall time depends on the other jobs; the CPU time per replicate
    # does not (much): the time on an idle machine is about reps x CPU / workers
    print(f"CPU per replicate (serial loop) {cpu_rep:.4f} s; idle-machine estimate "
          f"{args.reps * cpu_rep / max(1, args.n_jobs):.1f} s for {args.reps:,} reps on {args.n_jobs} workers "
          "(plus worker start-up)")


if __name__ == "__main__":
    main()
