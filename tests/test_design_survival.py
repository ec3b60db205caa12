"""Events and participants for a hazard ratio (Schoenfeld 1983, Freedman 1982), the design
effect (Eldridge et al. 2006) and attrition."""

from __future__ import annotations

import math

import pytest
from numpy.testing import assert_allclose

from recoverystats.design import (
    design_effect,
    event_probability,
    events_for_hazard_ratio,
    inflate_for_attrition,
    participants_for_hazard_ratio,
)
from recoverystats.errors import InvalidParameterError

#: a number printed to 2 decimals agrees to half a unit in the last digit
HALF_UNIT_2DP = 0.005
#: Simpson's rule against the exact exponential integral (2.0e-4 for a 44% one-year risk, 2 years accrual)
SIMPSON_ATOL = 5e-4


def test_schoenfeld_hr_07_247_events():
    # Schoenfeld (1983): d = (z_a + z_b)^2 (1 + r)^2 / (r log(hr)^2); HR 0.7, 80%, two-sided 0.05:
    # 246.79 -> 247 events (as R gsDesign::nEvents(hr = 0.7, beta = 0.2) = 246.79)
    r = events_for_hazard_ratio(0.7)
    assert r.table["events"].iloc[0] == 247
    assert_allclose(r.table["events_exact"].iloc[0], 246.79, atol=HALF_UNIT_2DP)


def test_freedman_hr_07_252_04_events():
    # Freedman (1982): d = (z_a + z_b)^2 ((1 + hr) / (1 - hr))^2 -> 252.04 events
    r = events_for_hazard_ratio(0.7, method="freedman")
    assert_allclose(r.table["events_exact"].iloc[0], 252.04, atol=HALF_UNIT_2DP)
    assert r.table["events"].iloc[0] == 253


def test_freedman_participants_match_lifelines():
    # lifelines.statistics.sample_size_necessary_under_cph (Freedman's formula with the
    # probability of an event in each arm): 421 per arm for HR 0.7, p = 0.3 in both arms
    from lifelines.statistics import sample_size_necessary_under_cph

    for ratio, p_exp, p_con in ((1.0, 0.3, 0.3), (2.0, 0.25, 0.35)):
        n_exp, n_con = sample_size_necessary_under_cph(0.8, ratio, p_exp, p_con, 0.7)
        p_all = (p_con + ratio * p_exp) / (1 + ratio)
        r = participants_for_hazard_ratio(0.7, method="freedman", ratio=ratio, event_probability=p_all)
        assert (r.table["n1"].iloc[0], r.table["n2"].iloc[0]) == (n_con, n_exp)


def test_participants_from_exponential_survival_and_accrual():
    lam = -math.log(1 - 0.44) / 365  # 44% relapse by one year in the comparison group
    a, f = 730.0, 365.0
    exact = {hr: 1 - (math.exp(-lam * hr * f) - math.exp(-lam * hr * (a + f))) / (lam * hr * a) for hr in (1, 0.7)}
    for hr in (1, 0.7):
        assert_allclose(event_probability(risk=(365, 0.44), hr=hr, accrual=a, followup=f), exact[hr], atol=SIMPSON_ATOL)
    # no accrual: exactly 1 - S(f); the three ways to give the baseline agree
    assert_allclose(event_probability(rate=lam, followup=365), 0.44, rtol=1e-12)
    assert_allclose(event_probability(median=math.log(2) / lam, followup=365), 0.44, rtol=1e-12)
    r = participants_for_hazard_ratio(0.7, control_risk=(365, 0.44), accrual=a, followup=f)
    row = r.table.iloc[0]
    p1 = event_probability(risk=(365, 0.44), accrual=a, followup=f)
    p2 = event_probability(risk=(365, 0.44), hr=0.7, accrual=a, followup=f)
    assert_allclose(row["event_probability"], (p1 + p2) / 2, rtol=1e-12)
    assert_allclose(row["n1_exact"], row["events_exact"] / row["event_probability"] / 2, rtol=1e-12)
    assert row["n1"] == math.ceil(row["n1_exact"]) and row["n_total"] == row["n1"] + row["n2"]
    assert "Simpson" in r.summary()


def test_power_curve_over_events():
    r = events_for_hazard_ratio(0.7)
    c = r.curve(over="n", values=[247, 400])
    assert_allclose(c["power"].iloc[0], 0.8, atol=0.001)
    assert c["power"].iloc[1] > 0.9


def test_design_effect_equal_and_unequal_clusters():
    # epiR epi.sscohortc example 3: design <- 0.05 * (30 - 1) + 1  -> 2.45
    assert_allclose(design_effect(30, 0.05), 2.45, rtol=1e-12)
    # Eldridge, Ashby & Kerry (2006): 1 + ((cv^2 + 1) m - 1) rho
    assert_allclose(design_effect(25, 0.05, cv=0.6), 1 + ((0.36 + 1) * 25 - 1) * 0.05, rtol=1e-12)
    assert design_effect(25, 0.05, cv=0.6) > design_effect(25, 0.05)
    assert design_effect(1, 0.3) == 1.0
    assert inflate_for_attrition(121, 0.2) == 152
    assert inflate_for_attrition(120, 0.2) == 150  # exactly 150, not 151


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: events_for_hazard_ratio(1.0), "hr must differ from 1"),
        (lambda: events_for_hazard_ratio(-0.5), "hr must be a finite number greater than 0"),
        (lambda: events_for_hazard_ratio(0.7, method="lakatos"), "method must be one of"),
        (lambda: events_for_hazard_ratio(0.7, alternative="larger"), "swap the alternative"),
        (lambda: participants_for_hazard_ratio(0.7), "neither"),
        (lambda: participants_for_hazard_ratio(0.7, event_probability=0.3, control_rate=0.01), "both"),
        (lambda: participants_for_hazard_ratio(0.7, control_rate=0.01), "followup="),
        (lambda: event_probability(rate=0.1, median=3, followup=1), "exactly one of rate="),
        (lambda: event_probability(risk=(365, 1.5), followup=1), "risk probability"),
        (lambda: event_probability(rate=0.1, followup=0), "accrual \\+ followup must be positive"),
        (lambda: design_effect(0.5, 0.05), "cluster_size must be a finite number at least 1"),
        (lambda: design_effect(30, 1.5), r"icc must be in \[0, 1\]"),
        (lambda: design_effect(30, 0.05, cv=-1), "cv must be"),
        (lambda: inflate_for_attrition(100, 1.0), "attrition must be in"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(InvalidParameterError, match=match):
        call()
