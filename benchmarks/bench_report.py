"""Benchmark: the full quarterly report at scale (time per stage, total, peak memory).

Usage::

    python benchmarks/bench_report.py                 # 100,000 participants, ~2M events (the target)
    python benchmarks/bench_report.py --n 3000        # quick
    python benchmarks/bench_report.py --n 100000 --from-csv   # also time read_program on written CSVs

The program is simulated first (not timed; ``screen_rate`` is raised so that events are
about 20 per participant, i.e. ~2M events at 100k participants, as docs/performance.md
asks). Then ``recoverystats.report.quarterly(...)`` and ``Report.save(...)`` (HTML, DOCX,
XLSX, figures, results.json and the privacy scan) are timed stage by stage. Target:
total <= 60 s and peak memory <= 4 GB on a 2-core machine. There is no bare-library
equivalent of a whole report, so the figures are absolute. Peak memory is the process's
peak resident set size (``ru_maxrss``), which includes the simulated tables.

Output lines (parsed by ``run_all.py``): ``total report time X s`` and
``peak memory X GB``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import warnings
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", "--scale", type=int, default=100_000, dest="n", help="participants (default 100,000)")
    ap.add_argument("--screen-rate", type=float, default=2.6,
                    help="drug screens per 30 days in the simulation (2.6 gives ~20 events per participant)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--from-csv", action="store_true",
                    help="write the program as CSV and time read_program too (the CLI path)")
    args = ap.parse_args()

    import pandas as pd

    from recoverystats.datasets import simulate_program
    from recoverystats.report import quarterly

    t0 = time.perf_counter()
    sim = simulate_program(args.n, n_mentors=max(40, args.n // 30), seed=args.seed, screen_rate=args.screen_rate)
    t_sim = time.perf_counter() - t0
    quarter = str(pd.Period(sim.as_of, freq="Q"))
    with tempfile.TemporaryDirectory() as tmp:
        t_load = None
        if args.from_csv:
            import recoverystats as rs

            sim.write(Path(tmp) / "data")
            t0 = time.perf_counter()
            prog = rs.read_program(Path(tmp) / "data", as_of=sim.as_of)
            t_load = time.perf_counter() - t0
        else:
            prog = sim.program()
        del sim
        print(f"program: {len(prog.participants):,} participants, {len(prog.events):,} events, "
              f"{len(prog.contacts):,} contacts, {len(prog.assessments):,} assessments "
              f"(simulated in {t_sim:.1f} s, not timed); quarter {quarter}")
        stages: list[tuple[str, float]] = []
        last = [time.perf_counter(), ""]

        def progress(stage: str) -> None:
            now = time.perf_counter()
            if last[1]:
                stages.append((str(last[1]), now - float(last[0])))
            last[0], last[1] = now, stage

        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        report = quarterly(prog, quarter=quarter, progress=progress)
        progress("save")
        t_build = time.perf_counter() - t0
        t1 = time.perf_counter()
        report.save(Path(tmp) / "out", progress=progress)
        progress("")
        t_save = time.perf_counter() - t1
    for name, secs in stages:
        print(f"  stage {name:<24s} {secs:7.2f} s")
    if t_load is not None:
        print(f"read_program (load + validate CSV): {t_load:.2f} s")
    total = t_build + t_save + (t_load or 0.0)
    print(f"quarterly(): {t_build:.2f} s; save (html, docx, xlsx, figures, json, privacy scan): {t_save:.2f} s")
    print(f"total report time {total:.2f} s (target <= 60 s)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB on Linux
    print(f"peak memory {peak:.2f} GB (process peak RSS, target <= 4 GB)")


if __name__ == "__main__":
    main()
