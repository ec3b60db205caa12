"""Partially nested designs: only the mentored arm has a mentor (cluster).

Measures carry each participant's first mentor (``mentor_id``, missing when never
matched); ``odds_ratios`` and ``hazard_ratios`` with ``cluster="mentor_id"`` treat a
missing mentor as a cluster of its own. Checked against statsmodels / a direct
computation with explicit singleton ids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import recoverystats as rs

RTOL = 1e-6  # independent implementation (statsmodels), same arithmetic


@pytest.fixture(scope="module")
def program():
    participants = pd.DataFrame(
        {
            "participant_id": ["p1", "p2", "p3", "p4"],
            "enrollment_date": ["2025-01-01"] * 4,
            "group": ["peer_mentoring", "peer_mentoring", "comparison", "peer_mentoring"],
        }
    )
    mentors = pd.DataFrame({"mentor_id": ["m1", "m2", "m3"]})
    matches = pd.DataFrame(
        {
            "participant_id": ["p1", "p1", "p2", "p4"],
            "mentor_id": ["m2", "m1", "m3", "m1"],
            "match_date": ["2025-02-01", "2025-01-10", "2025-01-05", "2025-06-01"],
        }
    )
    return rs.ProgramData.from_tables(
        participants=participants, mentors=mentors, matches=matches, as_of="2025-12-31"
    )


def test_measures_carry_the_first_mentor_matched_by_as_of(program):
    out = rs.retention(program, as_of="2025-03-31")
    got = dict(zip(out["participant_id"], out["mentor_id"], strict=True))
    # p1: first match 2025-01-10 with m1; p2: m3; p3 never matched; p4 matched after as_of
    assert got["p1"] == "m1" and got["p2"] == "m3"
    assert pd.isna(got["p3"]) and pd.isna(got["p4"])
    later = rs.retention(program, as_of="2025-12-31")
    assert dict(zip(later["participant_id"], later["mentor_id"], strict=True))["p4"] == "m1"


def _clustered_data(seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 600
    group = rng.integers(0, 2, n)
    mentor = np.where(group == 1, rng.integers(0, 40, n).astype(str), None)
    x = rng.normal(size=n)
    u = pd.Series(mentor).map({str(i): rng.normal(0, 0.5) for i in range(40)}).fillna(0).to_numpy()
    p = 1 / (1 + np.exp(-(-0.8 - 0.4 * group + 0.5 * x + u)))
    return pd.DataFrame(
        {
            "y": rng.binomial(1, p),
            "group": np.where(group == 1, "peer_mentoring", "comparison"),
            "x": x,
            "mentor_id": pd.array(mentor, dtype="string"),
        }
    )


def test_odds_ratios_missing_cluster_is_own_cluster_matches_statsmodels():
    df = _clustered_data()
    res = rs.odds_ratios(df, "y", exposure="group", adjust=["x"], cluster="mentor_id",
                         reference={"group": "comparison"}, method="mle")
    filled = df["mentor_id"].astype(object).copy()
    miss = filled.isna().to_numpy()
    filled[miss] = [f"own{i}" for i in np.flatnonzero(miss)]
    X = sm.add_constant(np.column_stack([(df["group"] == "peer_mentoring").astype(float), df["x"]]))
    codes = pd.factorize(filled)[0]
    ref = sm.Logit(df["y"].to_numpy(), X).fit(disp=0, cov_type="cluster", cov_kwds={"groups": codes})
    t = res.table.set_index("term")
    np.testing.assert_allclose(t.loc["group[peer_mentoring]", "log_odds"], ref.params[1], rtol=RTOL)
    np.testing.assert_allclose(t.loc["group[peer_mentoring]", "std_error"], ref.bse[1], rtol=RTOL)
    np.testing.assert_allclose(t.loc["x", "std_error"], ref.bse[2], rtol=RTOL)
    assert res.n_clusters == len(np.unique(codes))
    assert any("own cluster" in n for n in res.notes)
    assert res.n_excluded == 0


def test_hazard_ratios_missing_cluster_equals_explicit_singletons():
    df = _clustered_data(5)
    rng = np.random.default_rng(3)
    df["time"] = rng.exponential(100, len(df)).round() + 1
    df["event"] = df["y"]
    explicit = df.copy()
    filled = explicit["mentor_id"].astype(object).copy()
    miss = filled.isna().to_numpy()
    filled[miss] = [f"own{i}" for i in np.flatnonzero(miss)]
    explicit["mentor_id"] = filled
    a = rs.hazard_ratios(df, time="time", event="event", exposure="group", adjust=["x"],
                         cluster="mentor_id", reference={"group": "comparison"})
    b = rs.hazard_ratios(explicit, time="time", event="event", exposure="group", adjust=["x"],
                         cluster="mentor_id", reference={"group": "comparison"})
    np.testing.assert_allclose(a.table["std_error"], b.table["std_error"], rtol=1e-12)
    assert a.n_used == len(df)
    assert any("own cluster" in n for n in a.notes)
