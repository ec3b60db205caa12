"""compare_survival: log-rank family against statsmodels survdiff and lifelines, stratified, bad inputs."""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from recoverystats.errors import DataValidationError, EstimationError, InvalidParameterError
from recoverystats.survival import compare_survival

REF = Path(str(resources.files("recoverystats.datasets").joinpath("data")))
#: Independent implementations (statsmodels, lifelines): the issue's rtol.
RTOL_IMPL = 1e-6

_SM = {"logrank": None, "wilcoxon": "gb", "tarone-ware": "tw", "fleming-harrington": "fh"}


@pytest.fixture(scope="module")
def uis() -> pd.DataFrame:
    return pd.read_csv(REF / "uis.csv")


@pytest.mark.parametrize("weights", list(_SM))
@pytest.mark.parametrize("stratified", [False, True])
def test_matches_statsmodels_survdiff(uis, weights, stratified):
    # statsmodels.duration.survfunc.survdiff(TIME, CENSOR, IV, weight_type=..., strata=SITE, fh_p=1)
    from statsmodels.duration.survfunc import survdiff

    kw = {"fh_p": 1.0} if weights == "fleming-harrington" else {}
    strata = uis.SITE.to_numpy() if stratified else None
    stat, p = survdiff(uis.TIME.to_numpy(), uis.CENSOR.to_numpy(), uis.IV.to_numpy(),
                       weight_type=_SM[weights], strata=strata, **kw)
    res = compare_survival(uis, time="TIME", event="CENSOR", group="IV", weights=weights,
                           strata="SITE" if stratified else None)
    assert_allclose(res.statistic, stat, rtol=RTOL_IMPL)
    assert_allclose(res.p_value, p, rtol=RTOL_IMPL)
    assert res.table["df"].iloc[0] == 2
    assert list(res.table.columns)[:3] == ["statistic", "df", "p_value"]


@pytest.mark.parametrize(("weights", "kw"), [("peto", {}), ("fleming-harrington", {"p": 0.5, "q": 2.0}),
                                             ("wilcoxon", {}), ("tarone-ware", {})])
def test_matches_lifelines_multivariate(uis, weights, kw):
    # lifelines.statistics.multivariate_logrank_test(TIME, IV, CENSOR, weightings=..., p=, q=)
    from lifelines.statistics import multivariate_logrank_test

    lw = {"peto": "peto", "fleming-harrington": "fleming-harrington"}.get(weights, weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = multivariate_logrank_test(uis.TIME, uis.IV, uis.CENSOR, weightings=lw, **kw)
    res = compare_survival(uis, time="TIME", event="CENSOR", group="IV", weights=weights,
                           fh_p=kw.get("p", 1.0), fh_q=kw.get("q", 0.0))
    assert_allclose(res.statistic, ref.test_statistic, rtol=RTOL_IMPL)
    assert_allclose(res.p_value, ref.p_value, rtol=RTOL_IMPL)


def test_two_group_logrank_matches_lifelines_and_observed_expected(uis):
    # lifelines.statistics.logrank_test(T0, T1, E0, E1)
    from lifelines.statistics import logrank_test

    a, b = uis[uis.TREAT == 0], uis[uis.TREAT == 1]
    ref = logrank_test(a.TIME, b.TIME, a.CENSOR, b.CENSOR)
    res = compare_survival(uis, time="TIME", event="CENSOR", group="TREAT")
    assert_allclose(res.statistic, ref.test_statistic, rtol=RTOL_IMPL)
    bg = res.by_group
    assert bg["observed"].tolist() == [a.CENSOR.sum(), b.CENSOR.sum()]
    assert_allclose(bg["expected"].sum(), bg["observed"].sum(), rtol=1e-12)  # O and E totals agree
    assert res.method == "log-rank"


def test_stratified_equals_sum_of_strata_scores(uis):
    # Stratified statistic = (sum_s Z_s)^2 / sum_s V_s; rebuild it from per-site two-group tests.
    per = [compare_survival(uis[uis.SITE == s], time="TIME", event="CENSOR", group="TREAT") for s in (0, 1)]
    z = sum(r.by_group["o_minus_e_weighted"].iloc[0] for r in per)
    v = sum(r.by_group["o_minus_e_weighted"].iloc[0] ** 2 / r.statistic for r in per)
    res = compare_survival(uis, time="TIME", event="CENSOR", group="TREAT", strata="SITE")
    assert_allclose(res.statistic, z**2 / v, rtol=1e-10)
    assert res.method.startswith("stratified")


def test_works_on_recidivism_output():
    import recoverystats as rs
    from recoverystats.datasets import simulate_program

    prog = simulate_program(500, seed=4, contacts=False, assessments=False).program()
    rec = rs.recidivism(prog, level="rearrest")
    res = compare_survival(rec, time="time_days", event="event", group="group", strata="site")
    assert 0 <= res.p_value <= 1 and res.table["df"].iloc[0] == 1
    assert res.n_used == len(rec)


# -- bad inputs ----------------------------------------------------------------------

def test_one_group_is_an_error():
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 0, 1], "g": ["a", "a", "a"]})
    with pytest.raises(InvalidParameterError, match="group: column 'g' has only one level \\('a'\\)"):
        compare_survival(d, time="t", event="e", group="g")


def test_everyone_censored_is_an_error():
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0, 4.0], "e": [0, 0, 0, 0], "g": ["a", "b", "a", "b"]})
    with pytest.raises(EstimationError, match="no events in 'e' \\(everyone is censored\\)"):
        compare_survival(d, time="t", event="e", group="g")


def test_group_with_one_subject_is_noted_and_computed():
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0, 4.0, 5.0], "e": [1, 1, 0, 1, 1], "g": ["a", "a", "a", "a", "b"]})
    res = compare_survival(d, time="t", event="e", group="g")
    assert np.isfinite(res.statistic)
    assert any("group g=b has a single participant" in n for n in res.notes)


def test_every_time_tied_gives_zero_statistic():
    # One event time shared by all: expected events equal observed proportionally -> statistic 0 when balanced.
    d = pd.DataFrame({"t": [3.0] * 6, "e": [1, 0, 1, 1, 0, 1], "g": ["a", "a", "a", "b", "b", "b"]})
    res = compare_survival(d, time="t", event="e", group="g")
    assert_allclose(res.statistic, 0.0, atol=1e-12)


def test_parameter_errors():
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0, 4.0], "e": [1, 0, 1, 1], "g": ["a", "b", "a", "b"]})
    with pytest.raises(InvalidParameterError, match="weights must be one of 'logrank', 'wilcoxon'.*got 'gehan'"):
        compare_survival(d, time="t", event="e", group="g", weights="gehan")
    with pytest.raises(InvalidParameterError, match="fh_q must be a finite number >= 0; got -1"):
        compare_survival(d, time="t", event="e", group="g", weights="fleming-harrington", fh_q=-1)
    with pytest.raises(InvalidParameterError, match="strata: column\\(s\\) 'site' not found"):
        compare_survival(d, time="t", event="e", group="g", strata="site")
    with pytest.raises(DataValidationError, match="event: column 'e' must be 0"):
        compare_survival(d.assign(e=[1, 3, 0, 1]), time="t", event="e", group="g")
    with pytest.raises(InvalidParameterError, match="group must be one column name"):
        compare_survival(d, time="t", event="e", group=["g"])
