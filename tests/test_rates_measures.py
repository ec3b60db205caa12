"""The rate functions on measure output: data/sample and the simulator's known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import recoverystats as rs
from recoverystats.datasets import simulate_program
from recoverystats.rates import compare_proportions, incidence_rate, proportion, table_one, trend


@pytest.fixture(scope="module")
def sample_retention(sample_dir) -> pd.DataFrame:
    return rs.retention(rs.read_program(sample_dir))


@pytest.fixture(scope="module")
def simulated() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    sim = simulate_program(seed=3)
    prog = sim.program()
    return rs.retention(prog), rs.recidivism(prog, window_days=365), sim.truth.realized


def test_proportion_on_sample_retention_counts_only_complete_windows(
    sample_retention: pd.DataFrame,
) -> None:
    r = proportion(sample_retention, "retained_90", by="group")
    eligible = sample_retention[sample_retention["eligible_90"]]
    expected = eligible.groupby("group")["retained_90"].agg(["size", "sum"])
    t = r.table.set_index("group")
    assert t["n"].to_dict() == expected["size"].to_dict()
    assert t["events"].to_dict() == expected["sum"].astype(int).to_dict()
    # the rows whose 90-day window is not complete are excluded and counted
    assert r.n_excluded == int((~sample_retention["eligible_90"]).sum())


def test_table_one_and_trend_on_sample(sample_retention: pd.DataFrame) -> None:
    t1 = table_one(
        sample_retention,
        group="group",
        variables=["age", "gender", "risk_level", "risk_score", "dual_diagnosis"],
        nonnormal=["risk_score"],
        pvalues=True,
    )
    t = t1.table
    assert t.loc[t.variable == "n", "Overall|n"].iloc[0] == len(sample_retention)
    assert t[t.variable == "risk_level"]["level"].tolist()[:4] == [
        "low",
        "moderate",
        "high",
        "very_high",
    ]
    assert t["smd"].dropna().between(0, 1).all()
    tr = trend(sample_retention, "retained_90", date="enrollment_date", by="group")
    tt = tr.table
    assert tt["n"].sum() == tr.n_used == int(sample_retention["eligible_90"].sum())
    assert set(tt["chart"]) <= {"p", "laney"}
    assert (tt["lcl"].dropna() <= tt["centre"].dropna()).all()


def test_simulator_truth_inside_the_intervals(simulated) -> None:
    retention, recid, realized = simulated
    truth = realized.set_index(["outcome", "days", "group"])["share"]
    r = proportion(retention, "retained_90", by="group").table.set_index("group")
    for g in ("peer_mentoring", "comparison"):
        assert r.loc[g, "ci_lower"] <= truth[("retention", 90, g)] <= r.loc[g, "ci_upper"]
    rd = compare_proportions(retention, "retained_90", group="group", reference="comparison").table
    true_rd = truth[("retention", 90, "peer_mentoring")] - truth[("retention", 90, "comparison")]
    assert rd["ci_lower"][0] <= true_rd <= rd["ci_upper"][0]
    re = proportion(recid, "recidivated", by="group").table.set_index("group")
    for g in ("peer_mentoring", "comparison"):
        assert re.loc[g, "ci_lower"] <= truth[("rearrest", 365, g)] <= re.loc[g, "ci_upper"]


def test_incidence_rate_from_recidivism_time_at_risk(simulated) -> None:
    _, recid, _ = simulated
    # event == 1 is a rearrest; a competing death (event == 2) is not counted
    recid = recid.assign(rearrest=recid["event"].eq(1).astype(int))
    r = incidence_rate(recid, events="rearrest", person_time="time_days", by="group", per=365.25)
    t = r.table.set_index("group")
    sums = (
        recid.groupby("group")[["rearrest", "time_days"]]
        .sum()
        .rename(columns={"rearrest": "event"})
    )
    assert np.allclose(t["events"], sums["event"].reindex(t.index))
    assert np.allclose(t["estimate"], (sums["event"] / sums["time_days"] * 365.25).reindex(t.index))
