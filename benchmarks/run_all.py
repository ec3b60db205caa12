"""Run every performance target of docs/performance.md and write ``benchmarks/RESULTS.md``.

Usage::

    python benchmarks/run_all.py             # full scale (the published table; about two minutes on 2 cores)
    python benchmarks/run_all.py --quick     # small scales, a minute or two (development)
    python benchmarks/run_all.py --only import,survival --quick

Each area's own script (``bench_load.py``, ``bench_regression.py``, ``bench_survival.py``,
``bench_report.py``; ``bench_rates.py`` and ``bench_measures.py`` as extra rows) runs in its own
subprocess, one at a time, and measures ``recoverystats`` against the bare library doing the
same math *in the same run* (pyarrow, statsmodels, lifelines). This script parses the figures
they print, adds the ``import recoverystats`` time (median of several fresh interpreters), the
peak resident memory of each subprocess (``wait4`` rusage), the machine and the library
versions, and writes a Markdown report with one row per target, met or missed.

Full-scale output goes to ``benchmarks/RESULTS.md``; ``--quick`` output goes to
``benchmarks/RESULTS-quick.md`` (quick scales are not the targets' scales, so a quick run
never overwrites the published table). ``--out`` overrides either.

The engines at scale (issue 17: 100k, 1M and 10M participants on DuckDB, Spark at 1M) take
about an hour and ~40 GB of scratch disk, so they are not part of this run: they are made by
``benchmarks/bench_engines.py`` and written up by hand in ``benchmarks/RESULTS-engines.md``,
whose tables and figure this script copies into ``RESULTS.md`` (section "Engines at scale").
``python benchmarks/run_all.py --engines-section`` refreshes only that section of an existing
``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COMMAND_TIMEOUT_S = 3 * 3600  # a full-scale script may legitimately take long on a busy machine


# ---------------------------------------------------------------------------------------
# results
@dataclass
class Row:
    """One line of the results table."""

    work: str
    target: str
    ours: str = ""
    bare: str = ""
    ratio: str = ""
    peak: str = ""
    status: str = "not run"  # "met", "missed", "failed", "not run", "info"
    reason: str = ""


@dataclass
class Run:
    """One benchmark subprocess: the command, its output and resources."""

    name: str
    cmd: list[str]
    returncode: int | None = None
    seconds: float = 0.0
    peak_mb: float = float("nan")
    stdout: str = ""
    stderr: str = ""
    rows: list[Row] = field(default_factory=list)


def run_command(name: str, cmd: list[str], *, timeout: float = COMMAND_TIMEOUT_S) -> Run:
    """Run ``cmd``; record exit code, wall time, output and the child's peak RSS (MB)."""
    run = Run(name=name, cmd=cmd)
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "Agg")
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = time.perf_counter()
    with open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdin=devnull, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += f"\n[run_all] killed after {timeout:.0f} s"
    run.seconds = time.perf_counter() - t0
    run.returncode = proc.returncode
    run.stdout, run.stderr = out, err
    # Popen.wait() has reaped the child; its rusage is in RUSAGE_CHILDREN only as a maximum over
    # all children, so read the peak from a wrapper instead when available (see _peak_from_stderr).
    run.peak_mb = _peak_from_stderr(err)
    return run


PEAK_WRAPPER = (
    "import resource, runpy, sys;"
    "sys.argv = sys.argv[1:];"
    "code = 0\n"
    "try:\n"
    "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "except SystemExit as e:\n"
    "    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)\n"
    "finally:\n"
    "    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    kids_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "    sys.stderr.write(f'\\n[run_all] peak_rss_kb {max(self_kb, kids_kb)}\\n')\n"
    "sys.exit(code)\n"
)


def _peak_from_stderr(err: str) -> float:
    m = re.findall(r"\[run_all\] peak_rss_kb (\d+)", err)
    return int(m[-1]) / 1024 if m else float("nan")


def script_cmd(script: str, args: list[str]) -> list[str]:
    """Run ``benchmarks/<script>`` under the peak-memory wrapper with this interpreter."""
    return [sys.executable, "-c", PEAK_WRAPPER, str(HERE / script), *args]


# ---------------------------------------------------------------------------------------
# parsing helpers (the per-area scripts print human-readable lines)
NUM = r"([0-9][0-9,]*\.?[0-9]*(?:e[-+]?\d+)?)"


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def find(pattern: str, text: str) -> tuple[float, ...] | None:
    """The numbers captured by ``pattern`` (``NUM`` placeholders) in ``text``, or None."""
    m = re.search(pattern.replace("{N}", NUM), text, flags=re.I | re.S)
    if not m:
        return None
    return tuple(_num(g) for g in m.groups())


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "failed"
    return "met" if value <= limit else "missed"


def fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def fmt_mb(x: float) -> str:
    if x != x:  # NaN
        return ""
    return f"{x / 1024:.2f} GB" if x >= 1024 else f"{x:,.0f} MB"


# ---------------------------------------------------------------------------------------
# the targets
def bench_import(quick: bool) -> Run:
    """``import recoverystats`` in fresh interpreters (median), next to ``import pandas``."""
    reps = 5 if quick else 11
    probe = ("import time; t = time.perf_counter(); import {mod}; "
             "print(time.perf_counter() - t)")

    def times(mod: str, reps: int = reps) -> list[float]:
        out = []
        for _ in range(reps):
            r = subprocess.run([sys.executable, "-c", probe.format(mod=mod)], capture_output=True, text=True,
                               cwd=ROOT, check=False)
            if r.returncode != 0:
                raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "import failed")
            out.append(float(r.stdout.strip()))
        return out

    run = Run(name="import", cmd=[sys.executable, "-c", probe.format(mod="recoverystats")])
    t0 = time.perf_counter()
    try:
        ours = times("recoverystats")
        pandas = times("pandas")
        first_use = times("recoverystats; recoverystats.read_program; recoverystats.odds_ratios; "
                          "recoverystats.survival_curve", reps=3)
        run.returncode = 0
        med, med_pd = statistics.median(ours), statistics.median(pandas)
        run.stdout = (f"import recoverystats: median {med:.4f} s over {reps} fresh interpreters "
                      f"(min {min(ours):.4f}, max {max(ours):.4f})\n"
                      f"import pandas: median {med_pd:.4f} s (for scale)\n")
        run.rows.append(Row(
            work="`import recoverystats`", target="≤ 0.3 s",
            ours=fmt_s(med), bare=f"`import pandas` {fmt_s(med_pd)}", ratio=f"{med / med_pd:.2f} × pandas",
            status=verdict(med, 0.3),
            reason="" if med <= 0.3 else "heavy libraries imported at package import time",
        ))
        med_first = statistics.median(first_use)
        run.stdout += (f"import recoverystats + first access to read_program, odds_ratios, survival_curve: "
                       f"median {med_first:.4f} s\n")
        run.rows.append(Row(
            work="first use: `rs.read_program`, `rs.odds_ratios`, `rs.survival_curve` (extra)",
            target="informative (loads pandas, statsmodels, scipy)", ours=fmt_s(med_first),
            bare=f"`import pandas` {fmt_s(med_pd)}", ratio=f"{med_first / med_pd:.2f} × pandas", status="info",
        ))
    except RuntimeError as exc:
        run.returncode = 1
        run.stderr = str(exc)
        run.rows.append(Row(work="`import recoverystats`", target="≤ 0.3 s", status="failed", reason=str(exc)))
    run.seconds = time.perf_counter() - t0
    return run


def parse_load(run: Run, scale: str) -> list[Row]:
    out = run.stdout
    bare = find(r"bare pyarrow\.csv\.read_csv\s+{N} s\s+peak \+{N} MB", out)
    ours = find(r"read_program \(load \+ validate\)\s+{N} s\s+peak \+{N} MB\s+\(pandas tables {N} MB", out)
    ratio = find(r"time ratio read_program / bare pyarrow read:\s*{N}", out)
    mem = find(r"peak memory / in-memory tables:\s*{N}", out)
    rows = []
    r = Row(work=f"load + validate {scale} (CSV)", target="≤ 1.5 × bare pyarrow CSV read")
    if bare and ours and ratio:
        r.ours, r.bare, r.ratio = fmt_s(ours[0]), f"pyarrow.csv.read_csv {fmt_s(bare[0])}", f"{ratio[0]:.2f}"
        r.peak = f"+{fmt_mb(ours[1])} (read_program)"
        r.status = verdict(ratio[0], 1.5)
    else:
        r.status, r.reason = "failed", _failure(run)
    rows.append(r)
    m = Row(work=f"load peak memory {scale}", target="≤ 3 × in-memory tables")
    if ours and mem:
        m.ours = f"+{fmt_mb(ours[1])}"
        m.bare = f"tables {fmt_mb(ours[2])}"
        m.ratio = f"{mem[0]:.2f}"
        m.status = verdict(mem[0], 3.0)
    else:
        m.status, m.reason = "failed", _failure(run)
    rows.append(m)
    return rows


def parse_regression(run: Run, scale: str) -> list[Row]:
    out = run.stdout
    rows = []
    plain = find(r"plain SEs\s*:\s*statsmodels Logit\s+{N} s \| odds_ratios\s+{N} s \| ratio\s+{N}", out)
    clus = find(r"cluster CR1\s*:\s*statsmodels Logit\s+{N} s \| odds_ratios\s+{N} s \| ratio\s+{N}", out)
    boot = find(r"g-computation RD, {N} bootstrap reps at n = {N}:\s+{N} s", out)
    for label, got in ((f"`odds_ratios`, {scale}, with SEs", plain),
                       (f"`odds_ratios`, {scale}, cluster-robust SEs (extra)", clus)):
        r = Row(work=label, target="≤ 1.0 × statsmodels `Logit` (array API)")
        if got:
            r.ours, r.bare, r.ratio = fmt_s(got[1]), f"statsmodels Logit {fmt_s(got[0])}", f"{got[2]:.2f}"
            r.status = verdict(got[2], 1.0)
        else:
            r.status, r.reason = "failed", _failure(run)
        rows.append(r)
    r = Row(work="g-computation risk difference, 2,000 bootstrap reps, n = 500", target="≤ 2 s")
    if boot:
        reps, n, secs = boot
        r.work = f"g-computation risk difference, {reps:,.0f} bootstrap reps, n = {n:,.0f}"
        r.ours = fmt_s(secs)
        r.status = verdict(secs, 2.0)
    else:
        r.status, r.reason = "failed", _failure(run)
    rows.append(r)
    rows[0].peak = fmt_mb(run.peak_mb)
    return rows


def parse_survival(run: Run, scale: str) -> list[Row]:
    out = run.stdout
    km = find(r"Kaplan-Meier, {N} rows, 2 groups: ours {N} s, lifelines {N} s,\s*ratio {N}", out)
    cox = find(r"Cox \(Efron\), {N} rows x {N} covariates: ours {N} s, lifelines {N} s,\s*ratio {N}", out)
    rows = []
    r = Row(work="`survival_curve`", target="≤ 1.0 × lifelines `KaplanMeierFitter`")
    if km:
        r.work = f"`survival_curve`, {km[0]:,.0f} rows"
        r.ours, r.bare, r.ratio = fmt_s(km[1]), f"lifelines KM {fmt_s(km[2])}", f"{km[3]:.2f}"
        r.status = verdict(km[3], 1.0)
        r.peak = fmt_mb(run.peak_mb)
    else:
        r.status, r.reason = "failed", _failure(run)
    rows.append(r)
    c = Row(work="`hazard_ratios`", target="≤ 1.0 × lifelines `CoxPHFitter`")
    if cox:
        c.work = f"`hazard_ratios`, {cox[0]:,.0f} rows × {cox[1]:.0f} covariates"
        c.ours, c.bare, c.ratio = fmt_s(cox[2]), f"lifelines CoxPH {fmt_s(cox[3])}", f"{cox[4]:.2f}"
        c.status = verdict(cox[4], 1.0)
    else:
        c.status, c.reason = "failed", _failure(run)
    rows.append(c)
    return rows


def parse_report(run: Run, scale: str) -> list[Row]:
    """bench_report.py (the report owner's) or the built-in fallback below: total seconds + peak."""
    out = run.stdout
    r = Row(work=f"full quarterly report, {scale}", target="≤ 60 s, peak memory ≤ 4 GB")
    secs = (find(r"total[^\n]*?{N} s", out) or find(r"quarterly report[^\n]*?{N} s", out)
            or find(r"report[^\n]*?{N} s", out))
    peak_gb = find(r"peak[^\n]*?{N} GB", out)
    peak_mb = peak_gb[0] * 1024 if peak_gb else run.peak_mb
    if secs and run.returncode == 0:
        r.ours = fmt_s(secs[0])
        r.peak = fmt_mb(peak_mb)
        ok_mem = peak_mb == peak_mb and peak_mb <= 4 * 1024
        r.status = "met" if secs[0] <= 60 and ok_mem else "missed"
        if r.status == "missed":
            r.reason = ("time" if secs[0] > 60 else "") + (" and " if secs[0] > 60 and not ok_mem else "") + (
                "memory" if not ok_mem else "")
    else:
        r.status, r.reason = "failed", _failure(run)
    return [r]


def parse_rates(run: Run, scale: str) -> list[Row]:
    got = find(r"pandas groupby \+ statsmodels proportion_confint:\s*{N} s.*?recoverystats\.proportion:\s*{N} s"
               r".*?ratio \(ours / baseline\):\s*{N}", run.stdout)
    r = Row(work=f"`proportion` by 1,000 sites × 8 quarters, {scale} (extra, issue 4)",
            target="≤ 1.0 × pandas groupby + statsmodels `proportion_confint`")
    if got:
        r.ours, r.bare, r.ratio = fmt_s(got[1]), f"pandas+statsmodels {fmt_s(got[0])}", f"{got[2]:.2f}"
        r.status, r.peak = verdict(got[2], 1.0), fmt_mb(run.peak_mb)
    else:
        r.status, r.reason = "failed", _failure(run)
    return [r]


def parse_measures(run: Run, scale: str) -> list[Row]:
    out = run.stdout
    rows = []
    for name, pat in (("recidivism", r"bare pandas first-arrest-after-release[^\n]*?:\s*{N} s;[^\n]*?=\s*{N}"),
                      ("relapse", r"bare pandas first-relapse-after-enrollment:\s*{N} s;[^\n]*?=\s*{N}")):
        got = find(pat, out)
        own = find(r"(?m)^" + name + r"\s+{N} s\s*$", out)
        r = Row(work=f"`{name}` measure, {scale} (extra, issue 3)", target="a few seconds (informative ratio)")
        if got:
            r.bare = f"bare pandas {fmt_s(got[0])}"
            r.ratio = f"{got[1]:.2f}"
            r.ours = fmt_s(own[0]) if own else ""
            r.status = "info"
        else:
            r.status, r.reason = "failed", _failure(run)
        rows.append(r)
    if rows:
        rows[0].peak = fmt_mb(run.peak_mb)
    return rows


def parse_engines_io(run: Run, scale: str) -> list[Row]:
    """``RESULT work | target | ours | bare | ratio | peak | status`` lines of bench_engines.py."""
    rows = []
    for line in run.stdout.splitlines():
        if not line.startswith("RESULT "):
            continue
        parts = [p.strip() for p in line[len("RESULT "):].split("|")]
        if len(parts) != 7:
            continue
        work, target, ours, bare, ratio, peak, status = parts
        rows.append(Row(work=f"{work} (issue 17)", target=target, ours=ours, bare=bare, ratio=ratio,
                        peak=peak, status=status))
    if not rows:
        rows.append(Row(work=f"engines, {scale} (issue 17)", target="see RESULTS-engines.md", status="failed",
                        reason=_failure(run)))
    return rows


def parse_engines(run: Run, scale: str) -> list[Row]:
    """``bench_engines_measures.py``: the six measures, pandas vs their Ibis definitions on DuckDB."""
    rows = []
    for n, tp, td, ratio in re.findall(r"(?m)^(\d+) total\s+pandas\s+" + NUM + r" s\s+duckdb\s+" + NUM
                                       + r" s\s+ratio\s+" + NUM, run.stdout):
        r = Row(work=f"six measures on DuckDB (Ibis) vs pandas, {int(n):,} participants / {10 * int(n):,} events "
                     "(issue 17)",
                target="≤ 1.0 × the pandas engine's time (at 1M)" if int(n) >= 1_000_000 else "informative ratio")
        r.ours, r.bare, r.ratio = fmt_s(_num(td)), f"pandas {fmt_s(_num(tp))}", f"{_num(ratio):.2f}"
        r.status = verdict(_num(ratio), 1.0) if int(n) >= 1_000_000 else "info"
        rows.append(r)
    if rows:
        rows[0].peak = fmt_mb(run.peak_mb)
    else:
        rows.append(Row(work=f"six measures on DuckDB (Ibis) vs pandas, {scale} (issue 17)",
                        target="≤ 1.0 × the pandas engine's time (at 1M)", status="failed", reason=_failure(run)))
    return rows


def parse_matching(run: Run, scale: str) -> list[Row]:
    got = find(r"1:1 caliper NN matching: ours {N} s \({N} pairs\) \| sklearn NearestNeighbors \+ greedy de-dup {N} s"
               r" \({N} pairs\) \| ratio {N}", run.stdout)
    r = Row(work=f"1:1 caliper NN matching on the PS, {scale}", target="≤ 10 s")
    if got:
        r.ours = fmt_s(got[0])
        r.bare = f"sklearn NearestNeighbors + de-dup {fmt_s(got[2])} ({got[3]:,.0f} vs our {got[1]:,.0f} pairs)"
        r.ratio = f"{got[4]:.2f}"
        r.status, r.peak = verdict(got[0], 10.0), fmt_mb(run.peak_mb)
    else:
        r.status, r.reason = "failed", _failure(run)
    return [r]


def parse_causal(run: Run, scale: str) -> list[Row]:
    got = find(r"propensity \+ ATT weights \+ balance: statsmodels Logit\s+{N} s \| ours\s+{N} s \| ratio\s+{N}",
               run.stdout)
    r = Row(work=f"propensity model + ATT weights + balance, {scale}", target="≤ 1.5 × statsmodels `Logit` alone")
    if got:
        r.ours, r.bare, r.ratio = fmt_s(got[1]), f"statsmodels Logit {fmt_s(got[0])}", f"{got[2]:.2f}"
        r.status, r.peak = verdict(got[2], 1.5), fmt_mb(run.peak_mb)
    else:
        r.status, r.reason = "failed", _failure(run)
    return [r]


def parse_missing(run: Run, scale: str) -> list[Row]:
    out = run.stdout
    imp = find(r"impute {N} rows x {N} columns, m = {N}:\s*{N} s", out)
    pooled = find(r"pooled odds_ratios over {N} sets {N} s \| {N} single fits {N} s \| ratio {N}", out)
    r = Row(work=f"`impute` {scale}", target="≤ 2 min")
    if imp:
        r.ours = fmt_s(imp[3])
        r.status = verdict(imp[3], 120.0)
        r.peak = fmt_mb(run.peak_mb)
    else:
        r.status, r.reason = "failed", _failure(run)
    p = Row(work="pooled `odds_ratios` over the imputed data sets", target="≤ 1.2 × the single fits")
    if pooled:
        p.work = f"pooled `odds_ratios` over {pooled[0]:.0f} imputed data sets"
        p.ours, p.bare = fmt_s(pooled[1]), f"{pooled[2]:.0f} single fits {fmt_s(pooled[3])}"
        p.ratio = f"{pooled[4]:.2f}"
        p.status = verdict(pooled[4], 1.2)
    else:
        p.status, p.reason = "failed", _failure(run)
    return [r, p]


def parse_power(run: Run, scale: str) -> list[Row]:
    """bench_power.py: simulation power, target <= 2 minutes at full scale (DESIGN section 13)."""
    got = find(r"simulate_power[^\n]*?:\s*{N} s; power", run.stdout)
    bare = find(r"bare serial loop:[^\n]*?= {N} s \(serial\); ratio ours / serial = {N}", run.stdout)
    load = find(r"load average \(1 min\) before {N}, after {N}", run.stdout)
    r = Row(work=f"simulation power, {scale}, clustered adjusted logistic (issue 16)", target="≤ 2 min",
            peak=fmt_mb(run.peak_mb))
    if got:
        r.ours = fmt_s(got[0])
        if bare:
            r.bare = f"serial loop of the same calls {fmt_s(bare[0])}"
            r.ratio = f"{bare[1]:.2f}"
        r.status = verdict(got[0], 120.0) if "1,000 reps" in scale else "info"
        if load:
            r.reason = f"load average {load[0]:.2f} → {load[1]:.2f} (shared machine)"
    else:
        r.status, r.reason = "failed", _failure(run)
    return [r]


def parse_missing_attrition(run: Run, scale: str) -> list[Row]:
    """bench_missing_attrition.py: no target in the issue, so every row is "info"."""
    out = run.stdout
    rows = []
    w = find(r"followup_weights n={N} x {N} covariates, by group: {N} s; bare statsmodels Logit fit\+predict "
             r"\(design prebuilt\): {N} s; ratio {N}", out)
    r = Row(work=f"`followup_weights`, {scale}", target="none (info)")
    if w:
        r.work = f"`followup_weights`, {w[0]:,.0f} rows × {w[1]:.0f} covariates, by group"
        r.ours, r.bare, r.ratio = fmt_s(w[2]), f"statsmodels Logit fit+predict {fmt_s(w[3])}", f"{w[4]:.2f}"
        r.status, r.peak = "info", fmt_mb(run.peak_mb)
    else:
        r.status, r.reason = "failed", _failure(run)
    rows.append(r)
    tips = re.findall(r"tipping_point n=([0-9,]+), m=(\d+), (.+?): " + NUM + " s", out)
    for n, m, label, t in tips:
        rows.append(Row(work=f"`tipping_point`, {n} rows, m = {m}, {label}", target="none (info)",
                        ours=fmt_s(_num(t)), status="info"))
    if not tips:
        rows.append(Row(work=f"`tipping_point`, {scale}", target="none (info)", status="failed",
                        reason=_failure(run)))
    rep = find(r"quarterly report, {N} participants: default {N} s; with missing_data \(m={N}\) {N} s; "
               r"section cost {N} s", out)
    q = Row(work=f"report `missing_data` section cost, {scale}", target="none (info)")
    if rep:
        q.work = f"report `missing_data` section cost, {rep[0]:,.0f} participants, m = {rep[2]:.0f}"
        q.ours, q.bare = fmt_s(rep[4]), f"report without it {fmt_s(rep[1])}"
        q.status = "info"
    else:
        q.status, q.reason = "failed", _failure(run)
    rows.append(q)
    return rows

def _failure(run: Run) -> str:
    if run.returncode is None:
        return "not run"
    if run.returncode != 0:
        tail = [ln.strip() for ln in run.stderr.strip().splitlines() if ln.strip() and not ln.startswith("[run_all]")]
        exc = [ln for ln in tail if re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt|Exit)\b", ln)]
        return f"exit {run.returncode}: {(exc or tail or ['no message'])[-1][:160]}"
    return "output not recognised (see the raw output below)"


REPORT_FALLBACK = r'''
"""Built-in report benchmark (used while benchmarks/bench_report.py does not exist)."""
import sys, tempfile, time, warnings
n = int(sys.argv[1])
from recoverystats.datasets import simulate_program
t0 = time.perf_counter()
sim = simulate_program(n, n_mentors=max(40, n // 30), seed=0)
prog = sim.program()
t_data = time.perf_counter() - t0
print(f"program: {n:,} participants, {len(prog.events):,} events, {len(prog.contacts):,} contacts "
      f"(simulated in {t_data:.1f} s, not timed)")
from recoverystats.report import quarterly
q = str(__import__("pandas").Period(sim.as_of, freq="Q"))
warnings.simplefilter("ignore")
t0 = time.perf_counter()
rep = quarterly(prog, quarter=q)
t_build = time.perf_counter() - t0
with tempfile.TemporaryDirectory() as d:
    t1 = time.perf_counter()
    rep.save(d + "/out")
    t_save = time.perf_counter() - t1
print(f"quarterly(): {t_build:.2f} s; save (html, docx, xlsx, figures, json, privacy scan): {t_save:.2f} s")
print(f"total report time {t_build + t_save:.2f} s")
'''


@dataclass
class Target:
    name: str
    script: str | None
    full: list[str]
    quick: list[str]
    scale_full: str
    scale_quick: str
    parse: Callable[[Run, str], list[Row]]
    extra: bool = False


TARGETS: list[Target] = [
    Target("load", "bench_load.py", ["--participants", "1000000", "--repeat", "3"], ["--participants", "20000"],
           "1M participants + 10M events", "20k participants + 200k events", parse_load),
    Target("regression", "bench_regression.py", ["--n", "1000000"], ["--n", "20000", "--repeat", "1"],
           "1M rows × 15 covariates", "20k rows × 15 covariates", parse_regression),
    Target("survival", "bench_survival.py", [], ["--n", "20000", "--repeat", "1"],
           "1M rows (KM) / 100k rows (Cox)", "20k rows (KM) / 2k rows (Cox)", parse_survival),
    Target("report", "bench_report.py", ["--n", "100000", "--from-csv"], ["--n", "3000", "--from-csv"],
           "100k participants / ~2M events (read CSV + build + save)", "3k participants (read CSV + build + save)",
           parse_report),
    Target("causal", "bench_causal.py", ["--n", "1000000"], ["--n", "20000", "--repeat", "1"],
           "1M rows × 15 covariates", "20k rows × 15 covariates", parse_causal),
    Target("missing", "bench_missing.py", [], ["--n", "20000", "--m", "5", "--repeat", "1"],
           "100k rows × 20 columns (5 incomplete), m = 20", "20k rows × 20 columns (5 incomplete), m = 5",
           parse_missing),
    Target("matching", "bench_matching.py", [], ["--scale", "0.05"],
           "100k treated / 1M controls", "5k treated / 50k controls", parse_matching),
    Target("missing-attrition", "bench_missing_attrition.py", [], ["--quick"],
           "followup_weights 100k rows; tipping_point 2k rows, m = 20; report 3k participants, m = 20",
           "followup_weights 20k rows; tipping_point 1k rows, m = 10; report 800 participants, m = 5",
           parse_missing_attrition, extra=True),
    Target("rates", "bench_rates.py", [], ["--scale", "0.05", "--repeat", "1"],
           "10M rows", "500k rows", parse_rates, extra=True),
    Target("measures", "bench_measures.py", [], ["--scale", "0.02", "--repeat", "1"],
           "100k participants / 2M events", "2k participants / 40k events", parse_measures, extra=True),
    Target("engines", "bench_engines_measures.py", ["--participants", "100000", "1000000", "--repeat", "1"],
           ["--participants", "20000", "--repeat", "1"], "100k and 1M participants (10 events each)",
           "20k participants / 200k events", parse_engines),
    Target("power", "bench_power.py", ["--reps", "1000", "--n", "2000"], ["--reps", "40", "--n", "2000",
           "--bare-reps", "5"], "1,000 reps × 2,000 participants", "40 reps × 2,000 participants", parse_power),
    Target("engines-io", "bench_engines.py", ["all"], ["all", "--quick"],
           "100k and 1M participants (DuckDB engine)", "2k and 20k participants (DuckDB engine)",
           parse_engines_io, extra=True),
]


def run_target(t: Target, quick: bool) -> Run:
    args = t.quick if quick else t.full
    scale = t.scale_quick if quick else t.scale_full
    path = HERE / t.script if t.script else None
    if path is not None and path.is_file():
        args = _adapt_args(path, args)
        run = run_command(t.name, script_cmd(t.script, args))
    elif t.name == "report":
        n = args[args.index("--n") + 1] if "--n" in args else "100000"
        run = run_command(t.name, [sys.executable, "-c", PEAK_WRAPPER_INLINE, REPORT_FALLBACK, n])
        run.stdout = "(benchmarks/bench_report.py not found: built-in fallback)\n" + run.stdout
    else:
        run = Run(name=t.name, cmd=[])
        run.rows = [Row(work=t.name, target="", status="not run", reason=f"benchmarks/{t.script} not found")]
        return run
    run.rows = t.parse(run, scale)
    attach_reasons(run, t.script or t.name)
    return run


def attach_reasons(run: Run, script: str) -> None:
    """A missed target must say why: scripts print ``reason: ...`` (or ``why: ...``) lines."""
    stated = re.findall(r"(?im)^\s*(?:why|reason)\s*:\s*(.+?)\s*$", run.stdout)
    for r in run.rows:
        if r.status == "missed" and not r.reason:
            r.reason = "; ".join(stated) if stated else f"no reason printed by benchmarks/{script}"


def _adapt_args(path: Path, args: list[str]) -> list[str]:
    """Pass the size option under the name the script accepts (``--n``/``--participants``/``--scale``)."""
    if not args or args[0] not in ("--n", "--participants"):
        return args
    try:
        helptext = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True,
                                  cwd=ROOT, timeout=120, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return args
    for option in ("--n", "--participants"):
        if re.search(rf"(?<![\w-]){option}(?![\w-])", helptext):
            return [option, *args[1:]]
    return args[2:]  # the script has no size option: run its default


# the fallback report benchmark is a code string, run under the same peak-memory wrapper
PEAK_WRAPPER_INLINE = PEAK_WRAPPER.replace(
    "runpy.run_path(sys.argv[0], run_name='__main__')",
    "exec(compile(sys.argv[0], '<report-benchmark>', 'exec'), {'__name__': '__main__'})",
)


# ---------------------------------------------------------------------------------------
# the machine
def machine() -> dict[str, str]:
    info = {"cores": str(os.cpu_count() or "?"), "cpu": platform.processor() or platform.machine(),
            "memory": "?", "os": platform.platform(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    info["memory"] = f"{int(line.split()[1]) / 2**20:.1f} GB"
                    break
    except OSError:
        pass
    try:
        info["load"] = "load average {:.2f} {:.2f} {:.2f} (1/5/15 min, at start)".format(*os.getloadavg())
    except OSError:
        pass
    return info


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("recoverystats", "numpy", "pandas", "scipy", "statsmodels", "pyarrow", "lifelines", "matplotlib",
                "python-docx", "openpyxl"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        out["git commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                           text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out["git commit"] = "?"
    return out


# ---------------------------------------------------------------------------------------
def render(runs: list[Run], *, quick: bool, command: str, started: str, elapsed: float,
           mach: dict[str, str], vers: dict[str, str]) -> str:
    lines = ["# Benchmark results", ""]
    if quick:
        lines += ["> **Quick run at small scales** — these are development numbers, not the targets' "
                  "scales. Run `python benchmarks/run_all.py` for the published table.", ""]
    lines += [f"Made by `{command}` on {started} UTC ({elapsed / 60:.1f} min). Each ratio is recoverystats time "
              "÷ the bare library doing the same math, measured in the same run (below 1 = faster). "
              "Peak memory is the benchmark subprocess's peak resident set (or the script's own "
              "measurement when it reports one).", ""]
    lines += ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in mach.items()]
    lines += ["", "## Versions", "", "| package | version |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in vers.items()]
    lines += ["", "## Targets (docs/performance.md)", "",
              "| work | target | recoverystats | bare library, same run | ratio | peak memory | result |",
              "|---|---|---:|---:|---:|---:|---|"]
    extras = []
    for run in runs:
        for r in run.rows:
            status = {"met": "✅ met", "missed": "❌ missed", "failed": "⚠️ failed", "not run": "— not run",
                      "info": "info"}[r.status]
            if r.reason:
                status += f" ({r.reason})"
            line = f"| {r.work} | {r.target} | {r.ours} | {r.bare} | {r.ratio} | {r.peak} | {status} |"
            (extras if "(extra" in r.work else lines).append(line)
    if extras:
        lines += ["", "## Other benchmarks (issue targets)", "",
                  "| work | target | recoverystats | bare library, same run | ratio | peak memory | result |",
                  "|---|---|---:|---:|---:|---:|---|", *extras]
    missed = [r for run in runs for r in run.rows if r.status == "missed"]
    if missed:
        lines += ["", "## Missed targets", ""]
        lines += [f"- **{r.work}** (target {r.target}; measured {r.ratio or r.ours}): {r.reason}" for r in missed]
    lines += ["", *engines_section()]
    lines += ["", "## Raw output", ""]
    for run in runs:
        if not run.cmd:
            cmd = "(not run)"
        elif run.cmd[1:2] == ["-c"] and len(run.cmd) > 3:  # the peak-memory wrapper: show what it ran
            shown = run.cmd[3:]
            cmd = "python " + " ".join(Path(a).name if a.endswith(".py") else a for a in shown) \
                if shown and shown[0].endswith(".py") else "python <built-in report benchmark> " + " ".join(shown[1:])
        else:
            cmd = " ".join(run.cmd)
        lines += [f"<details><summary>{run.name}: exit {run.returncode}, {run.seconds:.1f} s, "
                  f"peak {fmt_mb(run.peak_mb) or 'n/a'}</summary>", "", "```", f"$ {cmd}",
                  run.stdout.rstrip()]
        err = "\n".join(ln for ln in run.stderr.strip().splitlines() if not ln.startswith("[run_all]"))
        if run.returncode not in (0, None) and err:
            lines += ["--- stderr (last 20 lines) ---", *err.splitlines()[-20:]]
        lines += ["```", "", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


ENGINES_HEADING = "## Engines at scale (issue 17)"


def engines_section() -> list[str]:
    """``RESULTS-engines.md`` (made by ``bench_engines.py`` runs) as a section of ``RESULTS.md``."""
    src = HERE / "RESULTS-engines.md"
    if not src.exists():
        return [ENGINES_HEADING, "", "(benchmarks/RESULTS-engines.md not found)"]
    body = src.read_text(encoding="utf-8").splitlines()
    body = [("#" + ln) if ln.startswith("## ") else ln for ln in body if not ln.startswith("# ")]
    return [ENGINES_HEADING, "",
            "Copied from `benchmarks/RESULTS-engines.md` (runs of `benchmarks/bench_engines.py`, about an "
            "hour in all, so not part of `run_all.py`; the dates and machine load of those runs are stated "
            "there).", "", *body]


def refresh_engines_section(path: Path) -> None:
    """Replace the "Engines at scale" section of an existing ``RESULTS.md`` (keep the rest)."""
    text = path.read_text(encoding="utf-8")
    new = "\n".join(engines_section()).rstrip() + "\n\n"
    start = text.find(ENGINES_HEADING)
    raw = text.find("## Raw output")
    if start < 0:
        start = end = raw if raw >= 0 else len(text)
    else:
        end = raw if raw > start else len(text)
    path.write_text(text[:start] + new + text[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="small scales (development); writes RESULTS-quick.md")
    ap.add_argument("--only", default="", help="comma-separated subset: import," + ",".join(t.name for t in TARGETS))
    ap.add_argument("--skip-extra", action="store_true", help="only the targets in docs/performance.md")
    ap.add_argument("--out", default=None, help="output Markdown file")
    ap.add_argument("--engines-section", action="store_true",
                    help="only copy RESULTS-engines.md into the 'Engines at scale' section of RESULTS.md")
    args = ap.parse_args(argv)
    if args.engines_section:
        refresh_engines_section(Path(args.out) if args.out else HERE / "RESULTS.md")
        return 0

    names = ["import", *(t.name for t in TARGETS)]
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        ap.error(f"--only: unknown target(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    out_path = Path(args.out) if args.out else HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md")

    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    mach, vers = machine(), versions()
    t0 = time.perf_counter()
    runs: list[Run] = []
    if "import" in wanted:
        print("[run_all] import recoverystats ...", flush=True)
        runs.append(bench_import(args.quick))
    for t in TARGETS:
        if t.name not in wanted or (args.skip_extra and t.extra):
            continue
        print(f"[run_all] {t.name} ({t.scale_quick if args.quick else t.scale_full}) ...", flush=True)
        runs.append(run_target(t, args.quick))
        last = runs[-1]
        print(f"[run_all]   exit {last.returncode}, {last.seconds:.1f} s, "
              + "; ".join(f"{r.work}: {r.status}" for r in last.rows), flush=True)
    elapsed = time.perf_counter() - t0
    command = "python benchmarks/run_all.py" + (" --quick" if args.quick else "") + (
        f" --only {args.only}" if args.only else "") + (" --skip-extra" if args.skip_extra else "")
    out_path.write_text(render(runs, quick=args.quick, command=command, started=started, elapsed=elapsed,
                               mach=mach, vers=vers), encoding="utf-8")
    print(f"[run_all] wrote {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path}")
    failed = [r for run in runs for r in run.rows if r.status == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
