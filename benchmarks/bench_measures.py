"""Benchmark: every measure on a large program (default 100k participants, 2M events).

Usage::

    python benchmarks/bench_measures.py              # full scale: 100k participants, 2M events
    python benchmarks/bench_measures.py --scale 0.05  # quick check while developing

Prints the wall time of each measure and, for recidivism and relapse, the ratio against a
bare pandas implementation of the same first-event-after-index computation (merge the
events onto the participants, filter to the window, ``groupby().min()``), measured in the
same run. Target (issue 3): each measure in a few seconds at full scale.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from recoverystats.io.program import ProgramData, empty_table
from recoverystats.measures import engagement, followup, noms_change, recidivism, relapse, retention

EVENT_TYPES = np.array(["substance_use", "drug_screen", "relapse", "arrest", "conviction", "incarceration",
                        "parole_violation", "probation_violation", "hospitalization", "ed_visit", "death"])
EVENT_P = np.array([0.2, 0.45, 0.03, 0.08, 0.04, 0.03, 0.04, 0.03, 0.04, 0.0599, 0.0001])


def make_program(n: int, n_events: int, seed: int = 0) -> ProgramData:
    rng = np.random.default_rng(seed)
    base = np.datetime64("2020-01-01")
    pid = pd.array(np.char.add("P", np.arange(n).astype(str)), dtype="string")
    enroll = base + rng.integers(0, 1800, n).astype("timedelta64[D]")
    release = enroll - rng.integers(0, 30, n).astype("timedelta64[D]")
    release = np.where(rng.random(n) < 0.3, np.datetime64("NaT"), release)
    los = rng.exponential(200, n).astype(int)
    discharged = rng.random(n) < 0.7
    discharge = np.where(discharged, enroll + los.astype("timedelta64[D]"), np.datetime64("NaT"))
    reason = np.where(discharged, np.where(rng.random(n) < 0.5, "completed", "withdrew"), None)
    parts = empty_table("participants").reindex(range(n))
    parts["participant_id"] = pid
    parts["enrollment_date"] = enroll.astype("datetime64[ns]")
    parts["group"] = pd.array(np.where(rng.random(n) < 0.5, "peer_mentoring", "comparison"), dtype="string")
    parts["site"] = pd.array(np.char.add("site_", (np.arange(n) % 5).astype(str)), dtype="string")
    parts["release_date"] = pd.to_datetime(release)
    parts["discharge_date"] = pd.to_datetime(discharge)
    parts["discharge_reason"] = pd.array(reason, dtype="string")
    parts["age"] = rng.integers(18, 70, n).astype(float)
    parts["followup_end_date"] = parts["enrollment_date"] + pd.Timedelta(days=730)

    owner = rng.integers(0, n, n_events)
    etype = EVENT_TYPES[rng.choice(len(EVENT_TYPES), n_events, p=EVENT_P / EVENT_P.sum())]
    edate = enroll[owner] + rng.integers(-60, 900, n_events).astype("timedelta64[D]")
    events = empty_table("events").reindex(range(n_events))
    events["participant_id"] = pid[owner]
    events["event_date"] = edate.astype("datetime64[ns]")
    events["event_type"] = pd.array(etype, dtype="string")
    events["result"] = pd.array(np.where(etype == "drug_screen", np.where(rng.random(n_events) < 0.3, "positive",
                                                                             "negative"), None), dtype="string")

    n_con = n_events // 2
    co = rng.integers(0, n, n_con)
    contacts = empty_table("contacts").reindex(range(n_con))
    contacts["participant_id"] = pid[co]
    contacts["contact_date"] = (enroll[co] + rng.integers(0, 400, n_con).astype("timedelta64[D]")).astype("datetime64[ns]")
    contacts["minutes"] = rng.integers(5, 90, n_con).astype(float)
    matched = np.flatnonzero(rng.random(n) < 0.6)
    matches = empty_table("matches").reindex(range(len(matched)))
    matches["participant_id"] = pid[matched]
    matches["mentor_id"] = pd.array(np.char.add("M", (matched % 500).astype(str)), dtype="string")
    matches["match_date"] = (enroll[matched] + rng.integers(0, 60, len(matched)).astype("timedelta64[D]")).astype("datetime64[ns]")
    ai = np.arange(n)
    fu = ai[rng.random(n) < 0.7]
    asm = pd.concat([
        pd.DataFrame({"participant_id": pid[ai], "assessment_date": enroll[ai].astype("datetime64[ns]"),
                      "timepoint": "intake"}),
        pd.DataFrame({"participant_id": pid[fu],
                      "assessment_date": (enroll[fu] + rng.integers(120, 260, len(fu)).astype("timedelta64[D]")).astype("datetime64[ns]"),
                      "timepoint": "followup_6m"}),
    ], ignore_index=True)
    for c in ("any_use_30d", "arrested_30d", "employed_or_school", "stable_housing", "social_support"):
        asm[c] = pd.array(rng.random(len(asm)) < 0.4, dtype="boolean")
    assessments = empty_table("assessments").reindex(range(len(asm)))
    for c in asm.columns:
        assessments[c] = asm[c].astype(assessments[c].dtype) if c != "assessment_date" else asm[c]
    return ProgramData(participants=parts, mentors=empty_table("mentors"), matches=matches, contacts=contacts,
                       events=events, assessments=assessments, as_of=pd.Timestamp("2025-06-30"))


def bare_first_event(prog: ProgramData, types: tuple[str, ...], index_col: str) -> pd.Series:
    """The same first-event-after-index computation in plain pandas (merge + filter + groupby)."""
    p = prog.participants[["participant_id", "enrollment_date", "release_date", "followup_end_date"]].copy()
    p["index"] = p[index_col].fillna(p["enrollment_date"]) if index_col == "release_date" else p["enrollment_date"]
    ev = prog.events.loc[prog.events["event_type"].isin(types), ["participant_id", "event_date"]]
    m = ev.merge(p[["participant_id", "index", "followup_end_date"]], on="participant_id")
    m = m[(m["event_date"] > m["index"]) & (m["event_date"] <= m["followup_end_date"])
          & (m["event_date"] <= prog.as_of)]
    return m.groupby("participant_id")["event_date"].min()


def timed(f, *a, repeat: int = 3, **kw):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f(*a, **kw)
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = 100k participants and 2M events")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = max(100, int(100_000 * args.scale))
    n_events = max(1000, int(2_000_000 * args.scale))
    t0 = time.perf_counter()
    prog = make_program(n, n_events)
    print(f"program: {n:,} participants, {n_events:,} events, {len(prog.contacts):,} contacts "
          f"(built in {time.perf_counter() - t0:.1f} s)")
    rows = []
    for name, f, kw in (
        ("retention", retention, {}),
        ("relapse", relapse, {"window_days": 90}),
        ("recidivism", recidivism, {"window_days": 365}),
        ("followup", followup, {}),
        ("noms_change", noms_change, {"by": "group"}),
        ("engagement", engagement, {}),
    ):
        t, _ = timed(f, prog, repeat=args.repeat, **kw)
        rows.append((name, t))
        print(f"{name:<12} {t:7.3f} s")
    t_rec = dict(rows)["recidivism"]
    t_bare, _ = timed(bare_first_event, prog, ("arrest", "conviction", "incarceration"), "release_date",
                      repeat=args.repeat)
    print(f"bare pandas first-arrest-after-release (merge/filter/groupby): {t_bare:.3f} s; "
          f"recidivism / bare = {t_rec / t_bare:.2f}")
    t_rel = dict(rows)["relapse"]
    t_bare, _ = timed(bare_first_event, prog, ("relapse", "substance_use", "drug_screen"), "enrollment_date",
                      repeat=args.repeat)
    print(f"bare pandas first-relapse-after-enrollment: {t_bare:.3f} s; relapse / bare = {t_rel / t_bare:.2f}")


if __name__ == "__main__":
    main()
