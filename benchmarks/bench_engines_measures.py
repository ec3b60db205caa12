"""Benchmark: each measure in pandas (NumPy) against its Ibis definition on DuckDB.

Usage::

    python benchmarks/bench_engines_measures.py                          # 100k and 1M participants
    python benchmarks/bench_engines_measures.py --participants 20000 --repeat 1   # quick

The program is ``bench_measures.make_program`` with 10 events per participant (1M
participants: 10M events, the issue's size). Both sides start from data already in place:
the pandas measure from the in-memory ``ProgramData``; the engine from the same tables in
an in-memory DuckDB database (as ``read_program(..., engine="duckdb")`` leaves them), timed
from building the expression to the collected pandas frame (Ibis compile + DuckDB query +
transfer to pandas through Arrow, ``engines.measures.collect``). Prints per measure ``pandas``, ``duckdb`` and their ratio, and the
totals; target (issue 17): DuckDB measures ≤ 1.0 × the pandas engine's time at 1M.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ibis  # noqa: E402
import pyarrow as pa  # noqa: E402
from bench_measures import make_program  # noqa: E402

from recoverystats import measures  # noqa: E402
from recoverystats.engines import measures as E  # noqa: E402

CASES = (
    ("retention", {}),
    ("relapse", {"window_days": 90}),
    ("recidivism", {"window_days": 365}),
    ("followup", {}),
    ("engagement", {}),
    ("noms_change", {"by": "group"}),
)


def to_arrow(df):
    t = pa.Table.from_pandas(df, preserve_index=False)
    cols, fields = [], []
    for f, c in zip(t.schema, t.columns, strict=True):
        if pa.types.is_timestamp(f.type):
            c, f = c.cast(pa.date32()), pa.field(f.name, pa.date32())
        cols.append(c)
        fields.append(f)
    return pa.table(cols, schema=pa.schema(fields))


def best_of(f, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def run(n: int, repeat: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    prog = make_program(n, 10 * n)
    con = ibis.duckdb.connect()
    tables = {name: con.create_table(name, to_arrow(df)) for name, df in prog.tables.items()}
    print(f"program: {n:,} participants, {len(prog.events):,} events, {len(prog.contacts):,} contacts "
          f"(built and loaded into DuckDB in {time.perf_counter() - t0:.1f} s)")
    as_of = prog.as_of
    tot_p = tot_d = 0.0
    for name, kw in CASES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tp = best_of(lambda name=name, kw=kw: getattr(measures, name)(prog, as_of=as_of, **kw), repeat)
            if name == "noms_change":
                td = best_of(lambda kw=kw: E.noms_change(tables, as_of=as_of, **kw), repeat)
            else:
                td = best_of(lambda name=name, kw=kw: E.collect(E.MEASURES[name](tables, as_of=as_of, **kw)), repeat)
        tot_p += tp
        tot_d += td
        print(f"{n} {name:<12} pandas {tp:8.3f} s  duckdb {td:8.3f} s  ratio {td / tp:6.2f}")
    print(f"{n} total        pandas {tot_p:8.3f} s  duckdb {tot_d:8.3f} s  ratio {tot_d / tot_p:6.2f}")
    return tot_p, tot_d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    print(f"duckdb {__import__('duckdb').__version__}, ibis {ibis.__version__}")
    for n in args.participants:
        run(n, args.repeat)


if __name__ == "__main__":
    main()
