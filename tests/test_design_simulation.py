"""simulate_power: agreement with the closed form, seeding across n_jobs, callables, failures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recoverystats.design import power_proportions, simulate_power, two_proportions_data
from recoverystats.errors import EstimationError, InvalidParameterError

#: simulated power agrees with the closed form within this many Monte Carlo SEs
MC_SES = 2.0


def test_two_proportions_agrees_with_closed_form():
    # n = 200 per group, 0.30 vs 0.45: closed form 0.8754 (exact binomial power of the same
    # test 0.8753, see test_design_proportions); 1,000 replicates: MC SE 0.010
    r = simulate_power(n=200, data="two_proportions", effects={"p1": 0.30, "p2": 0.45}, reps=1000, seed=11)
    row = r.table.iloc[0]
    closed = power_proportions(p1=0.30, p2=0.45, n=200).table["power"].iloc[0]
    assert abs(row["power"] - closed) <= MC_SES * row["mc_se"]
    assert row["reps"] == 1000 and row["failed"] == 0
    assert row["ci_lower"] < row["power"] < row["ci_upper"]
    # the risk difference is estimated without bias, its SE matches the spread
    assert abs(row["mean_estimate"] - 0.15) < 3 * row["sd_estimate"] / np.sqrt(1000)
    assert abs(row["mean_std_error"] / row["sd_estimate"] - 1) < 0.1


def test_identical_results_for_any_n_jobs_and_curve_over_n():
    kw = {"n": [60, 120], "data": "two_proportions", "effects": [{"p1": 0.3, "p2": 0.5}, {"p1": 0.3, "p2": 0.4}],
          "reps": 30, "seed": 5}
    one = simulate_power(n_jobs=1, **kw)
    two = simulate_power(n_jobs=2, **kw)
    pd.testing.assert_frame_equal(one.table, two.table)
    assert two.n_jobs == 2
    assert list(one.table["n"]) == [60, 120, 60, 120]
    assert list(one.table["scenario"]) == ["p1=0.3, p2=0.5"] * 2 + ["p1=0.3, p2=0.4"] * 2
    other = simulate_power(n_jobs=1, **{**kw, "seed": 6})
    assert not other.table["mean_estimate"].equals(one.table["mean_estimate"])


def test_program_adjusted_or_seeded_across_jobs():
    kw = {"n": 500, "effects": {"relapse_mentoring": -0.6}, "reps": 4, "seed": 3,
          "program": {"n_mentors": 12}}
    one = simulate_power(n_jobs=1, **kw)
    two = simulate_power(n_jobs=2, **kw)
    pd.testing.assert_frame_equal(one.table, two.table)
    row = one.table.iloc[0]
    assert row["mean_estimate"] < 0  # the planted protective effect
    assert "clustered by mentor_id" in one.summary()


def test_program_proportions_and_rearrest_cox():
    r = simulate_power(n=400, analysis="proportions", reps=2, seed=1)
    assert r.table["failed"].iloc[0] == 0 and "robust Wald test" in r.summary()
    r = simulate_power(n=400, analysis="proportions", cluster=None, reps=2, seed=1)
    assert r.table["failed"].iloc[0] == 0 and "Pearson chi-square" in r.summary()
    r = simulate_power(n=400, analysis="cox", outcome="rearrest", reps=2, seed=1, progress=True)
    assert r.table["failed"].iloc[0] == 0 and "Cox regression of the time to rearrest" in r.summary()


def test_callables_lambdas_and_progress():
    seen = []

    def data(n, rng, *, shift):
        x = rng.normal(size=n)
        return x + shift

    r = simulate_power(n=50, data=data, analysis=lambda x: {"p_value": 0.01 if x.mean() > 0.3 else 0.5,
                                                           "estimate": float(x.mean())},
                       effects={"shift": 0.5}, reps=20, seed=1, n_jobs=2, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (20, 20)
    row = r.table.iloc[0]
    assert row["power"] > 0.5 and abs(row["mean_estimate"] - 0.5) < 0.1


def test_failed_replicates_count_as_not_rejected_and_bugs_raise():
    def flaky(df):
        if df["outcome"].sum() % 2:
            raise EstimationError("did not converge")
        return 0.0

    r = simulate_power(n=40, data="two_proportions", effects={"p1": 0.3, "p2": 0.5}, analysis=flaky, reps=40)
    row = r.table.iloc[0]
    assert row["failed"] > 0 and row["rejections"] == 40 - row["failed"]
    assert "count as not significant (first: EstimationError: did not converge)" in r.summary()

    def always(df):
        raise EstimationError("singular design")

    # every replicate failing means the analysis does not fit the data: an error, not power 0
    with pytest.raises(InvalidParameterError, match="every replicate of 1 scenario.*singular design"):
        simulate_power(n=40, data="two_proportions", effects={"p1": 0.3, "p2": 0.5}, analysis=always, reps=3)

    def buggy(df):
        raise KeyError("no such column")

    with pytest.raises(KeyError):
        simulate_power(n=40, data="two_proportions", effects={"p1": 0.3, "p2": 0.5}, analysis=buggy, reps=3)


def test_two_proportions_data_shape():
    df = two_proportions_data(10, np.random.default_rng(0), p1=0.2, p2=0.9, ratio=2)
    assert list(df["group"].value_counts().sort_index()) == [10, 20]
    assert set(df["outcome"]) <= {0, 1}


def test_plot():
    import matplotlib

    matplotlib.use("Agg")
    r = simulate_power(n=[40, 80], data="two_proportions", effects={"p1": 0.2, "p2": 0.5}, reps=10)
    ax = r.plot()
    assert ax.get_xlabel() == "Participants simulated (n)"
    assert ax.get_ylabel() == "Power (simulated)"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 100, "effects": {"relapse_mentorship": -0.3}}, "unknown simulator parameter"),
        ({"n": 100, "program": {"n_participants": 5}}, "program= accepts"),
        ({"n": 1}, "n must be an integer >= 2"),
        ({"n": 100, "reps": 0}, "reps must be a positive integer"),
        ({"n": 100, "n_jobs": 0}, "n_jobs must be a positive integer or -1"),
        ({"n": 100, "analysis": "logrank"}, "analysis must be one of"),
        ({"n": 100, "data": "two_proportions"}, "needs effects="),
        ({"n": 100, "data": "two_proportions", "effects": {"p1": 0.2}}, "take p1, p2"),
        ({"n": 100, "data": "two_proportions", "effects": {"p1": 0.2, "p2": 0.3}, "analysis": "cox"}, "needs times"),
        ({"n": 100, "data": lambda n, rng: None, "analysis": "cox"}, "must be a callable too"),
        ({"n": 100, "outcome": "overdose"}, "outcome must be one of"),
        ({"n": 100, "seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        simulate_power(**kwargs)


@pytest.mark.slow
def test_type_one_error_of_the_clustered_adjusted_model():
    # no planted effect (log-HR 0): the mentor-clustered adjusted OR rejects at about alpha
    # (200 replicates: MC SE 0.015 at 0.05; within 3 MC SEs)
    r = simulate_power(n=800, effects={"relapse_mentoring": 0.0}, reps=200, seed=2, n_jobs=2,
                       program={"n_mentors": 20})
    row = r.table.iloc[0]
    assert abs(row["power"] - 0.05) <= 3 * np.sqrt(0.05 * 0.95 / 200)


def test_benchmark_output_is_parsed():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"
    spec = importlib.util.spec_from_file_location("run_all", path)
    run_all = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = run_all
    spec.loader.exec_module(run_all)
    target = next(t for t in run_all.TARGETS if t.name == "power")
    out = ("simulate_power 1,000 reps x 2,000 participants, adjusted clustered logistic, n_jobs=2: 130.5 s; "
           "power 0.820 (MC SE 0.012); failed 0\n"
           "bare serial loop: 0.2000 s per replicate; x 1,000 = 200.0 s (serial); ratio ours / serial = 0.65\n"
           "load average (1 min) before 3.10, after 4.20; cores 2\n")
    rows = target.parse(run_all.Run(name="power", cmd=["x"], returncode=0, stdout=out), target.scale_full)
    assert [r.status for r in rows] == ["missed"] and rows[0].ratio == "0.65"
    assert "3.10" in rows[0].reason
    ok = target.parse(run_all.Run(name="power", cmd=["x"], returncode=0, stdout=out.replace("130.5", "99.0")),
                      target.scale_full)
    assert ok[0].status == "met"
    garbled = target.parse(run_all.Run(name="power", cmd=["x"], returncode=0, stdout="?\n"), target.scale_full)
    assert garbled[0].status == "failed"
