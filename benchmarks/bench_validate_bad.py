"""Benchmark: ``recoverystats validate`` on an events file with many bad rows vs the same file clean.

Target (DESIGN section 14, issue 11): on inputs with many bad rows, ``validate`` prints at
most 1 MB by default, takes at most 3 x the time of a clean load of the same size, and
its memory stays proportional to the input.

The simulator writes a 2,000-participant program; events.csv is replaced by ``--rows``
rows resampled from the simulated events, and in the "bad" copy ``--bad`` of them are
spoiled in three equal parts (an unknown event_type, an unparseable event_date, an
unknown participant_id). Each run is the CLI in a fresh process (``python -m
recoverystats.cli validate FOLDER``), clean and bad interleaved ``--repeat`` times; the
figures are wall time, CPU (user + sys of all threads), peak RSS (``wait4`` rusage) and
the bytes printed on stdout.

Results (2026-12-07, 2-core VM shared with four other sessions, load average 4-9, so
wall times are inflated and noisy; CPU is the steadier figure). "before" is commit
1ab0077 measured the same way by hand (``/usr/bin/time``); the issue measured 212 s,
3 GB and 358 MB printed for 2M / 1.5M before.

======================  ========================  =========================  ==========
rows / bad              clean: wall / CPU / RSS   bad: wall / CPU / RSS      printed
======================  ========================  =========================  ==========
200k / 150k, before     3.3 s / 1.1 s / 243 MB    10.0 s / 3.2 s / 471 MB    40.9 MB
200k / 150k, after      1.5 s / 1.0 s / 251 MB     2.0 s / 1.3 s / 404 MB    17 KB
2M / 1.5M, after        6.4 s / 3.1 s / 796 MB    11.8 s / 6.5 s / 1,954 MB  17 KB
======================  ========================  =========================  ==========

After: bad / clean is 1.3x (200k) and 1.9x wall, 2.1x CPU (2M), inside the 3x target;
the extra memory at 2M (about 1.2 GB for 1.5M findings, ~800 bytes a finding) is the
findings frame: each finding's message (~190 characters) and value as Arrow text,
sorted once by table and line.

Usage::

    python benchmarks/bench_validate_bad.py                      # 200k rows, 150k bad
    python benchmarks/bench_validate_bad.py --rows 2000000 --bad 1500000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def make(folder: Path, rows: int, bad: int, seed: int) -> None:
    """A simulated program whose events.csv has ``rows`` rows, ``bad`` of them spoiled."""
    from recoverystats.datasets import simulate_program

    simulate_program(2000, seed=seed).write(folder, format="csv")
    ev = pd.read_csv(folder / "events.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    ev = ev.iloc[rng.integers(0, len(ev), rows)].reset_index(drop=True)
    spoil = rng.choice(rows, bad, replace=False)
    k = bad // 3
    ev.loc[spoil[:k], "event_type"] = "relapsed"
    ev.loc[spoil[k : 2 * k], "event_date"] = "2026-13-45x"
    ev.loc[spoil[2 * k :], "participant_id"] = "P-NOPE"
    ev.to_csv(folder / "events.csv", index=False)


def run(folder: Path) -> dict[str, float]:
    """One ``validate`` in a fresh process: wall, CPU, peak RSS, bytes printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "recoverystats.cli", "validate", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "printed": len(out),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000, help="events rows (default 200,000)")
    ap.add_argument("--bad", type=int, default=150_000, help="bad rows (default 150,000)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each, best kept")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        clean, bad = Path(tmp) / "clean", Path(tmp) / "bad"
        make(clean, args.rows, 0, args.seed)
        make(bad, args.rows, args.bad, args.seed)
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.repeat):
            for name, folder in (("clean", clean), ("bad", bad)):
                r = run(folder)
                if name not in best or r["wall"] < best[name]["wall"]:
                    best[name] = r
    c, b = best["clean"], best["bad"]
    print(f"rows {args.rows:,}, bad {args.bad:,}")
    for name, r in best.items():
        print(
            f"{name:<6} wall {r['wall']:.2f} s  cpu {r['cpu']:.2f} s  "
            f"peak RSS {r['rss_mb']:.0f} MB  printed {r['printed']:,} bytes"
        )
    print(
        f"ratio bad/clean: wall {b['wall'] / c['wall']:.2f} (target <= 3), "
        f"cpu {b['cpu'] / c['cpu']:.2f}; printed {b['printed']:,} bytes (target <= 1,000,000)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
