"""Benchmark: the DuckDB and Spark engines (issue 17) -- generator, load + validate, report.

Usage::

    python benchmarks/bench_engines.py generate --participants 10000000 --out /data/p10m
    python benchmarks/bench_engines.py load --participants 1000000      # DuckDB load+validate vs pyarrow
    python benchmarks/bench_engines.py report --data /data/p10m        # report --engine duckdb, end to end
    python benchmarks/bench_engines.py pandas-capped --data /data/p10m --cap-gb 12
    python benchmarks/bench_engines.py spark --participants 100000     # Spark local[2] vs DuckDB
    python benchmarks/bench_engines.py generate --partitioned ...      # events/year=YYYY/bucket=B/data_0.parquet
    python benchmarks/bench_engines.py partitioned --participants 100000  # one file vs partitioned, DuckDB
    python benchmarks/bench_engines.py spark-csv --participants 100000    # Spark CSV read vs the readers
    python benchmarks/bench_engines.py all --quick                     # small scales (run_all.py)

Each step prints ``RESULT work | target | ours | bare | ratio | peak MB | status`` lines
(parsed by ``run_all.py``). Timed steps run in fresh subprocesses; peak memory is the
child's peak RSS (``wait4`` rusage). Results are written up in
``benchmarks/RESULTS-engines.md``.

The generator
-------------
``generate`` writes a program as Parquet with DuckDB alone (no pandas, no Python loop):
every value is a deterministic function of the row number and ``--seed`` (DuckDB's
``hash``), so the output is the same on every run and thread count. Shapes follow
:func:`recoverystats.simulate_program` roughly; the differences are stated here:

- enrollments uniform over 2022-01-01 .. 2025-09-30 (the simulator: a ramp-up);
- exactly ``events_per_participant`` (default 10) events per participant, dated
  uniformly from 90 days before enrollment to 720 days after (the simulator draws
  event counts and times from the planted hazards; here there are no planted effects);
- event types with fixed shares (drug screens 35 %, substance use 15 %, relapse 10 %,
  arrest 12 %, ...), drug screens positive 30 %;
- half of the participants in the program group; 90 % of those matched to one of
  ``participants / 500`` mentors, with 4 contacts each; an intake assessment for everyone
  and a 6-month follow-up for 70 %;
- no data errors (the validation rules all run, and find nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = ROOT / "src"


# ---------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------
def _u(expr: str, salt: int, seed: int) -> str:
    """A uniform [0, 1) number from ``hash(expr, salt, seed)`` (deterministic)."""
    return f"((hash({expr}, {salt}, {seed}) % 1000000007)::DOUBLE / 1000000007)"


def generate(out: Path, participants: int, *, seed: int = 0, events_per: int = 10, fmt: str = "parquet",
             threads: int | None = None, partitioned: bool = False) -> dict[str, float]:
    """Write the six tables of a synthetic program; returns seconds per table.

    ``partitioned``: events as a Hive-partitioned Parquet directory
    (``events/year=2022/bucket=0/data_0.parquet``: by year and 4 buckets of
    participants), which the loader reads as one table (``docs/scale.md``, "Sources");
    the ``year`` and ``bucket`` keys are not events columns and are ignored with a note.
    """
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = true")
    n = int(participants)
    n_mentors = max(20, n // 500)
    enr = f"(DATE '2022-01-01' + CAST(floor({_u('i', 1, seed)} * 1369) AS INTEGER))"
    grp = f"CASE WHEN {_u('i', 2, seed)} < 0.5 THEN 'peer_mentoring' ELSE 'comparison' END"
    pid = "'P' || lpad(CAST(i AS VARCHAR), 9, '0')"
    copy = ("(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)" if fmt == "parquet"
            else "(FORMAT csv, HEADER true)")
    ext = "parquet" if fmt == "parquet" else "csv"
    times: dict[str, float] = {}

    def write(name: str, sql: str) -> None:
        t0 = time.perf_counter()
        if partitioned and name == "events" and fmt == "parquet":
            # DuckDB cannot rotate files within a partition: a second key (4 buckets by
            # participant) gives several files per year
            con.execute(f"COPY (SELECT *, year(event_date) AS year, hash(participant_id) % 4 AS bucket "
                        f"FROM ({sql})) TO '{out / name}' (FORMAT parquet, COMPRESSION zstd, "
                        "ROW_GROUP_SIZE 1000000, PARTITION_BY (year, bucket), OVERWRITE_OR_IGNORE true)")
        else:
            con.execute(f"COPY ({sql}) TO '{out / (name + '.' + ext)}' {copy}")
        times[name] = time.perf_counter() - t0

    write("participants", f"""
        SELECT {pid} AS participant_id, {enr} AS enrollment_date, {grp} AS "group",
          'site_' || CAST(i % 12 AS VARCHAR) AS site,
          CASE WHEN {_u('i', 3, seed)} < 0.8 THEN {enr} - CAST(floor({_u('i', 4, seed)} * 60) AS INTEGER) END
            AS release_date,
          CASE WHEN {_u('i', 5, seed)} < 0.6 THEN {enr} + 30 + CAST(floor({_u('i', 6, seed)} * 300) AS INTEGER) END
            AS discharge_date,
          CASE WHEN {_u('i', 5, seed)} < 0.6 THEN
            CASE WHEN {_u('i', 7, seed)} < 0.5 THEN 'completed' WHEN {_u('i', 7, seed)} < 0.7 THEN 'withdrew'
                 WHEN {_u('i', 7, seed)} < 0.85 THEN 'lost_contact' ELSE 'incarcerated' END END AS discharge_reason,
          {enr} - CAST(floor((18 + {_u('i', 8, seed)} * 50) * 365.25) AS INTEGER) AS birth_date,
          CASE WHEN {_u('i', 9, seed)} < 0.7 THEN 'male' WHEN {_u('i', 9, seed)} < 0.98 THEN 'female'
               ELSE 'nonbinary' END AS gender,
          CASE WHEN {_u('i', 10, seed)} < 0.25 THEN 'low' WHEN {_u('i', 10, seed)} < 0.6 THEN 'moderate'
               WHEN {_u('i', 10, seed)} < 0.9 THEN 'high' ELSE 'very_high' END AS risk_level,
          CAST(floor({_u('i', 11, seed)} * 6) AS BIGINT) AS prior_incarcerations,
          CASE WHEN {_u('i', 12, seed)} < 0.4 THEN 'opioids' WHEN {_u('i', 12, seed)} < 0.7 THEN 'alcohol'
               ELSE 'stimulants' END AS primary_substance,
          {_u('i', 13, seed)} < 0.35 AS dual_diagnosis
        FROM range({n}) t(i)""")
    write("mentors", f"""
        SELECT 'M' || lpad(CAST(i AS VARCHAR), 6, '0') AS mentor_id, 'site_' || CAST(i % 12 AS VARCHAR) AS site,
          {_u('i', 20, seed)} < 0.6 AS lived_incarceration, {_u('i', 21, seed)} < 0.8 AS lived_recovery
        FROM range({n_mentors}) t(i)""")
    matched = f"({grp} = 'peer_mentoring' AND {_u('i', 22, seed)} < 0.9)"
    mentor = f"'M' || lpad(CAST(CAST(floor({_u('i', 23, seed)} * {n_mentors}) AS BIGINT) AS VARCHAR), 6, '0')"
    write("matches", f"""
        SELECT {pid} AS participant_id, {mentor} AS mentor_id, {enr} + 3 AS match_date
        FROM range({n}) t(i) WHERE {matched}""")
    write("contacts", f"""
        SELECT {pid} AS participant_id, {enr} + 3 + CAST(7 * (k + 1) AS INTEGER) AS contact_date, {mentor} AS mentor_id,
          CASE WHEN {_u('i * 4 + k', 24, seed)} < 0.5 THEN 'in_person' ELSE 'phone' END AS modality,
          CAST(15 + floor({_u('i * 4 + k', 25, seed)} * 60) AS DOUBLE) AS minutes
        FROM range({n}) t(i), range(4) s(k) WHERE {matched}
        ORDER BY i, k""")
    j = "j"
    i_of = f"({j} // {events_per})"
    u_type = _u(j, 30, seed)
    etype = (f"CASE WHEN {u_type} < 0.35 THEN 'drug_screen' WHEN {u_type} < 0.50 THEN 'substance_use' "
             f"WHEN {u_type} < 0.60 THEN 'relapse' WHEN {u_type} < 0.72 THEN 'arrest' "
             f"WHEN {u_type} < 0.78 THEN 'conviction' WHEN {u_type} < 0.82 THEN 'incarceration' "
             f"WHEN {u_type} < 0.88 THEN 'parole_violation' WHEN {u_type} < 0.94 THEN 'ed_visit' "
             f"WHEN {u_type} < 0.999 THEN 'hospitalization' ELSE 'overdose' END")
    enr_i = enr.replace("hash(i,", f"hash({i_of},")
    write("events", f"""
        SELECT 'P' || lpad(CAST({i_of} AS VARCHAR), 9, '0') AS participant_id,
          {enr_i} - 90 + CAST(floor({_u(j, 31, seed)} * 810) AS INTEGER) AS event_date,
          {etype} AS event_type,
          CASE WHEN {u_type} < 0.35 THEN CASE WHEN {_u(j, 32, seed)} < 0.3 THEN 'positive' ELSE 'negative' END END
            AS result
        FROM range({n * events_per}) t({j})""")
    write("assessments", f"""
        SELECT {pid} AS participant_id, {enr} + CASE WHEN k = 0 THEN 2 ELSE 180 END AS assessment_date,
          CASE WHEN k = 0 THEN 'intake' ELSE 'followup_6m' END AS timepoint,
          {_u('i * 2 + k', 40, seed)} < CASE WHEN k = 0 THEN 0.6 ELSE 0.4 END AS any_use_30d,
          {_u('i * 2 + k', 41, seed)} < 0.5 AS employed_or_school,
          {_u('i * 2 + k', 42, seed)} < 0.6 AS stable_housing
        FROM range({n}) t(i), range(2) s(k)
        WHERE k = 0 OR {_u('i', 43, seed)} < 0.7
        ORDER BY i, k""")
    (out / "program.toml").write_text(
        '[program]\nname = "Synthetic program (bench_engines.py generate)"\nas_of = "2027-12-31"\n',
        encoding="utf-8")
    return times


# ---------------------------------------------------------------------------
# timed children
# ---------------------------------------------------------------------------
CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
task = json.loads(sys.argv[1])
t0 = time.perf_counter()
out = {}
if task["kind"] == "pyarrow":
    import pyarrow.csv as pcsv
    from pathlib import Path
    for p in sorted(Path(task["data"]).glob("*.csv")):
        pcsv.read_csv(p)
elif task["kind"] == "load":
    import recoverystats as rs
    kw = task.get("kw", {})
    prog = rs.read_program(task["data"], **kw)
    out["flow"] = prog.flow.to_dict("records")
    out["findings"] = int(len(prog.validation))
elif task["kind"] == "report":
    from recoverystats.cli import main
    rc = main(["report", task["data"], "--quarter", task["quarter"], "--out", task["out"], "--overwrite",
               *(["--quiet"] if task.get("quiet", True) else []), *task.get("args", [])])
    out["rc"] = rc
elif task["kind"] == "spark_csv":
    # one events CSV into Spark: read by Spark itself, or by the readers + createDataFrame
    from recoverystats.engines import load, sources
    from recoverystats.io.read import resolve_source
    entry = next(e for e in resolve_source(task["data"]).entries if e.name == "events")
    be = load.connect("spark", database=None, memory_limit=None, spark="local[2]")
    t0 = time.perf_counter()  # without the session start
    raw = (sources.spark_csv if task["how"] == "spark" else load._via_reader)(be, entry)
    t = raw.table
    got = t.aggregate(n=t["_rid"].count(), s=t["_line"].sum()).to_pyarrow().to_pylist()[0]
    out["rows"], out["line_sum"] = int(got["n"]), int(got["s"])
out["seconds"] = time.perf_counter() - t0
print("CHILD " + json.dumps(out, default=str))
"""


def child(task: dict, *, cap_gb: float | None = None, timeout: float = 3 * 3600,
          rss_kill_gb: float | None = None, log: Path | None = None) -> dict:
    """Run one timed step in a fresh interpreter; adds ``peak_mb`` (child's max RSS) and ``rc``.

    ``cap_gb``: the child's address space is limited (``resource.setrlimit``), so it fails
    instead of swapping. ``rss_kill_gb``: the child is killed when its resident memory passes
    this (polled twice a second), so a run that does not fit cannot push other work on the
    machine out of memory; the result says so. ``log``: the child's stderr (progress) goes there.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")

    def limit() -> None:  # pragma: no cover - runs in the child
        if cap_gb is not None:
            b = int(cap_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (b, b))

    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out_f, (open(log, "w") if log else tempfile.TemporaryFile("w+")) as err_f:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(task)], stdout=out_f, stderr=err_f,
                                text=True, env=env, preexec_fn=limit)
        killed = ""
        peak_rss = 0.0
        while proc.poll() is None:
            time.sleep(0.5)
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                rss = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS"))) / 1024
            except (OSError, StopIteration, ValueError):
                continue
            peak_rss = max(peak_rss, rss)
            if rss_kill_gb is not None and rss > rss_kill_gb * 1024:
                proc.kill()
                killed = f"killed at {rss / 1024:.1f} GB resident (limit {rss_kill_gb:g} GB)"
            elif time.perf_counter() - t0 > timeout:
                proc.kill()
                killed = f"stopped after {timeout:.0f} s (time limit)"
        out_f.seek(0)
        stdout = out_f.read()
        err_f.seek(0) if not log else None
        stderr = err_f.read() if not log else Path(log).read_text(errors="replace")
    wall = time.perf_counter() - t0
    res: dict = {"rc": proc.returncode, "wall": wall}
    for line in stdout.splitlines():
        if line.startswith("CHILD "):
            res.update(json.loads(line[6:]))
    if res["rc"] != 0 and proc.returncode == 0:  # the command's own exit code (report: 1 data, 2 usage)
        proc.returncode = res["rc"]
    res["peak_mb"] = max(peak_rss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
                         if rss_kill_gb is None else peak_rss)
    if proc.returncode != 0:
        tail = [ln for ln in stderr.strip().splitlines() if ln.strip()][-3:]
        res["error"] = (killed + "; " if killed else "") + " / ".join(tail)[-400:]
    return res


def result(work: str, target: str, ours: str, bare: str = "", ratio: str = "", peak: str = "",
           status: str = "info") -> None:
    print(f"RESULT {work} | {target} | {ours} | {bare} | {ratio} | {peak} | {status}", flush=True)


# ---------------------------------------------------------------------------
# steps
# ---------------------------------------------------------------------------
def step_generate(args: argparse.Namespace) -> None:
    out = Path(args.out)
    t0 = time.perf_counter()
    times = generate(out, args.participants, seed=args.seed, fmt=args.format, partitioned=args.partitioned)
    total = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    print("generate: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    result(f"generate {args.participants:,} participants / {10 * args.participants:,} events ({args.format})",
           "<= 5 min (10M / 100M)", f"{total:.1f} s", "", "", f"{size:,.0f} MB on disk",
           "met" if total <= 300 or args.participants < 10_000_000 else "missed")


def step_load(args: argparse.Namespace) -> None:
    """DuckDB engine load + validate vs a bare pyarrow CSV read (and the pandas engine), same files."""
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        if getattr(args, "data", None):  # an existing CSV program (bench_engines.py generate --format csv)
            data = Path(args.data)
        else:
            data = Path(d) / "csv"
            generate(data, args.participants, fmt="csv")
        n_ev = 10 * args.participants
        best: dict[str, dict] = {}
        kinds = getattr(args, "engines", None) or ["duckdb", "pandas"]
        for _ in range(args.repeat):
            for kind, task in (("pyarrow", {"kind": "pyarrow", "data": str(data)}),
                               ("duckdb", {"kind": "load", "data": str(data),
                                           "kw": {"engine": "duckdb", "database": str(Path(d) / "db.duckdb")}}),
                               ("pandas", {"kind": "load", "data": str(data)})):
                if kind != "pyarrow" and kind not in kinds:
                    continue
                got = child(task)
                if kind == "duckdb":
                    Path(d, "db.duckdb").unlink(missing_ok=True)
                if got.get("rc") != 0:
                    print(f"{kind}: failed: {got.get('error')}")
                    continue
                if kind not in best or got["seconds"] < best[kind]["seconds"]:
                    best[kind] = got
        bare = best["pyarrow"]["seconds"]
        for kind in ("duckdb", "pandas"):
            if kind not in best:
                continue
            s = best[kind]["seconds"]
            target = "<= 1.0 x pyarrow" if kind == "duckdb" else "<= 1.5 x pyarrow"
            limit = 1.0 if kind == "duckdb" else 1.5
            result(f"{kind} engine load + validate, {args.participants:,} / {n_ev:,} events (CSV)", target,
                   f"{s:.2f} s", f"pyarrow {bare:.2f} s", f"{s / bare:.2f}", f"{best[kind]['peak_mb']:,.0f}",
                   "met" if s / bare <= limit else "missed")


def step_report(args: argparse.Namespace) -> None:
    data = Path(args.data)
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        extra = ["--engine", args.engine]
        if args.engine == "duckdb":
            extra += ["--memory-limit", args.memory_limit, "--database", str(Path(d) / "prog.duckdb")]
        got = child({"kind": "report", "data": str(data), "quarter": args.quarter, "out": str(Path(d) / "out"),
                     "args": extra, "quiet": args.log is None},
                    rss_kill_gb=args.kill_gb, timeout=args.timeout, log=Path(args.log) if args.log else None)
    n = args.label or data.name
    if got.get("rc") != 0:
        result(f"report --engine {args.engine}, {n}", "<= 15 min, <= 12 GB", "failed: " + str(got.get("error")),
               status="failed")
        return
    s, peak = got["seconds"], got["peak_mb"]
    ok = s <= 900 and peak <= 12 * 1024
    result(f"report --engine {args.engine}, {n}", "<= 15 min, <= 12 GB peak", f"{s:.1f} s", "", "",
           f"{peak:,.0f}", "met" if ok else "missed")


def step_pandas_capped(args: argparse.Namespace) -> None:
    got = child({"kind": "load", "data": str(args.data)}, cap_gb=args.cap_gb)
    what = "completed" if got.get("rc") == 0 else f"failed (exit {got.get('rc')}): {got.get('error', '')}"
    result(f"pandas engine load, {args.label or Path(args.data).name}, address space capped at {args.cap_gb:g} GB",
           "record what happens", what, "", "", f"{got.get('peak_mb', 0):,.0f}", "info")


def step_spark(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        data = Path(d) / "pq"
        generate(data, args.participants)
        dd = child({"kind": "load", "data": str(data), "kw": {"engine": "duckdb"}})
        sp = child({"kind": "load", "data": str(data), "kw": {"engine": "spark", "spark": "local[2]"}})
        same = dd.get("flow") == sp.get("flow") and dd.get("findings") == sp.get("findings")
        if sp.get("rc") != 0:
            result(f"Spark local[2] load + validate, {args.participants:,} participants", "complete, same results",
                   "failed: " + str(sp.get("error")), status="failed")
            return
        result(f"Spark local[2] load + validate, {args.participants:,} / {10 * args.participants:,} events (Parquet)",
               "complete, same results", f"{sp['seconds']:.1f} s", f"DuckDB {dd['seconds']:.1f} s",
               f"{sp['seconds'] / dd['seconds']:.1f}", f"{sp['peak_mb']:,.0f} (driver)",
               "met" if same else "missed")


def step_partitioned(args: argparse.Namespace) -> None:
    """DuckDB load + validate of events as one Parquet file vs a Hive-partitioned directory (same rows)."""
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        one, parts = Path(d) / "one", Path(d) / "parts"
        generate(one, args.participants)
        t0 = time.perf_counter()
        generate(parts, args.participants, partitioned=True)
        gen = time.perf_counter() - t0
        n_files = len(list((parts / "events").rglob("*.parquet")))
        a = child({"kind": "load", "data": str(one), "kw": {"engine": "duckdb"}})
        b = child({"kind": "load", "data": str(parts), "kw": {"engine": "duckdb"}})
        if a.get("rc") != 0 or b.get("rc") != 0:
            result(f"DuckDB load, partitioned events, {args.participants:,}", "complete", "failed: "
                   + str(a.get("error") or b.get("error")), status="failed")
            return
        same = a.get("flow") == b.get("flow")
        result(f"DuckDB load + validate, {args.participants:,} / {10 * args.participants:,} events in "
               f"{n_files} Hive-partitioned Parquet files (generated in {gen:.1f} s)", "same flow as one file",
               f"{b['seconds']:.1f} s", f"one file {a['seconds']:.1f} s", f"{b['seconds'] / a['seconds']:.2f}",
               f"{b['peak_mb']:,.0f}", "met" if same else "missed")


def step_spark_csv(args: argparse.Namespace) -> None:
    """Spark: the events CSV read by Spark itself vs through the readers (+ createDataFrame)."""
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        data = Path(d) / "csv"
        generate(data, args.participants, fmt="csv")
        a = child({"kind": "spark_csv", "data": str(data), "how": "spark"})
        b = child({"kind": "spark_csv", "data": str(data), "how": "readers"})
    if a.get("rc") != 0 or b.get("rc") != 0:
        result(f"Spark CSV read, {args.participants:,}", "complete", "failed: " + str(a.get("error") or b.get("error")),
               status="failed")
        return
    same = (a["rows"], a["line_sum"]) == (b["rows"], b["line_sum"])
    result(f"Spark local[2]: events CSV ({10 * args.participants:,} rows) to a DataFrame with line numbers, "
           "spark.read.csv", "same rows and lines as the readers", f"{a['seconds']:.1f} s",
           f"readers + createDataFrame {b['seconds']:.1f} s", f"{a['seconds'] / b['seconds']:.2f}",
           f"{a['peak_mb']:,.0f} vs {b['peak_mb']:,.0f} (driver)", "met" if same else "missed")


def step_scaling(args: argparse.Namespace) -> None:
    """report --engine duckdb at each scale (100k -> 1M -> ...): generate, then time the report."""
    for n in args.scales:
        with tempfile.TemporaryDirectory(dir=args.tmp) as d:
            data = Path(d) / "pq"
            t0 = time.perf_counter()
            generate(data, n)
            gen = time.perf_counter() - t0
            print(f"scale {n:,}: generated in {gen:.1f} s")
            ns = argparse.Namespace(data=str(data), tmp=args.tmp, engine="duckdb", memory_limit=args.memory_limit,
                                    quarter=args.quarter, label=f"{n:,} participants / {10 * n:,} events",
                                    kill_gb=None, timeout=3 * 3600, log=None)
            step_report(ns)


def figure(points: dict[str, list[tuple[float, float]]], path: Path) -> None:
    """Log-log plot of seconds against participants, one line per series (RESULTS-engines.md)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, pts in points.items():
        xs, ys = zip(*sorted(pts), strict=True)
        ax.loglog(xs, ys, marker="o", label=label)
    ax.set_xlabel("participants (events = 10 x participants)")
    ax.set_ylabel("seconds (wall)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--participants", type=int, default=10_000_000)
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    g.add_argument("--partitioned", action="store_true", help="events as a Hive-partitioned directory (by year)")
    ld = sub.add_parser("load")
    ld.add_argument("--participants", type=int, default=1_000_000)
    ld.add_argument("--repeat", type=int, default=1)
    ld.add_argument("--data", default=None, help="an existing CSV program instead of generating one")
    ld.add_argument("--engines", type=lambda s: s.split(","), default=None,
                    help="engines to time against pyarrow (default duckdb,pandas)")
    r = sub.add_parser("report")
    r.add_argument("--data", required=True)
    r.add_argument("--engine", default="duckdb")
    r.add_argument("--label", default="")
    r.add_argument("--kill-gb", type=float, default=None, help="kill the run above this resident memory")
    r.add_argument("--timeout", type=float, default=3 * 3600)
    r.add_argument("--log", default=None, help="write the report's progress (stderr) here")
    pc = sub.add_parser("pandas-capped")
    pc.add_argument("--data", required=True)
    pc.add_argument("--cap-gb", type=float, default=12.0)
    pc.add_argument("--label", default="")
    sp = sub.add_parser("spark")
    sp.add_argument("--participants", type=int, default=100_000)
    pt = sub.add_parser("partitioned")
    pt.add_argument("--participants", type=int, default=100_000)
    sv = sub.add_parser("spark-csv")
    sv.add_argument("--participants", type=int, default=100_000)
    sc = sub.add_parser("scaling")
    sc.add_argument("--scales", type=lambda s: [int(x) for x in s.split(",")], default=[100_000, 1_000_000])
    a = sub.add_parser("all")
    a.add_argument("--quick", action="store_true")
    for p in (g, ld, r, pc, sp, pt, sv, sc, a):
        p.add_argument("--tmp", default=None, help="folder for temporary data (default: the system's)")
        p.add_argument("--memory-limit", default="8GB")
        p.add_argument("--quarter", default="2027Q4")
    args = ap.parse_args(argv)
    if args.step == "all":
        small = 20_000 if args.quick else 1_000_000
        step_load(argparse.Namespace(participants=small // 10 if args.quick else 100_000, repeat=1, tmp=args.tmp))
        if not args.quick:
            step_load(argparse.Namespace(participants=small, repeat=1, tmp=args.tmp))
        step_scaling(argparse.Namespace(scales=[small // 10, small] if not args.quick else [2_000, 20_000],
                                        tmp=args.tmp, memory_limit=args.memory_limit, quarter=args.quarter))
        return 0
    {"generate": step_generate, "load": step_load, "report": step_report, "pandas-capped": step_pandas_capped,
     "spark": step_spark, "partitioned": step_partitioned,
     "spark-csv": step_spark_csv, "scaling": step_scaling}[args.step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
