"""The survival functions run end to end on data/sample (read_program -> measures -> survival)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import recoverystats as rs
from recoverystats.survival import (
    compare_survival,
    cumulative_incidence,
    hazard_ratios,
    survival_curve,
)


@pytest.fixture(scope="module")
def outcomes(sample_dir):
    if not (sample_dir / "program.toml").exists():  # pragma: no cover - sample data ships with the repo
        pytest.skip("data/sample is missing")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = rs.read_program(sample_dir)
        return rs.relapse(prog), rs.recidivism(prog, level="rearrest")


def test_sample_relapse_and_recidivism(outcomes):
    rel, rec = outcomes
    km = survival_curve(rel, time="time_days", event="event", by="group")
    assert km.n_used == len(rel) and set(km.table["group"]) == {"comparison", "peer_mentoring"}
    assert km.table.groupby("group")["events"].sum().sum() == rel["event"].sum()
    lr = compare_survival(rec, time="time_days", event="event", group="group", strata="site")
    assert 0 < lr.p_value < 1
    cox = hazard_ratios(rel, time="time_days", event="event", exposure="group", adjust=["age", "risk_level"],
                        reference={"group": "comparison", "risk_level": "low"}, strata="site")
    assert cox.table["term"].iloc[0] == "group[peer_mentoring]"
    assert {"risk_level[moderate]", "risk_level[high]", "risk_level[very_high]"} <= set(cox.table["term"])
    assert np.isfinite(cox.table["std_error"]).all() and 0.5 < cox.concordance < 1
    cif = cumulative_incidence(rec, time="time_days", event="event_type", cause=1, by="group")
    assert cif.table.groupby("group")["events"].sum().sum() == (rec["event_type"] == 1).sum()
    assert cif.table.groupby("group")["competing"].sum().sum() == (rec["event_type"] == 2).sum()
    assert cif.gray_test is not None and 0 < cif.gray_test.p_value < 1
