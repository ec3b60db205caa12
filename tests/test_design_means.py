"""power_means against Cohen (1988) / R pwr.t.test and statsmodels TTestIndPower / NormalIndPower."""

from __future__ import annotations

import pytest
from numpy.testing import assert_allclose

from recoverystats.design import power_means
from recoverystats.errors import InvalidParameterError

#: statsmodels' power functions (same noncentral t): agree to this relative tolerance
RTOL_POWER = 1e-8
#: statsmodels' solve_power stops its own root search earlier than ours
RTOL_SOLVE = 1e-5


def test_cohen_d_half_64_per_group():
    # R: pwr::pwr.t.test(d = 0.5, power = 0.8, sig.level = 0.05) -> n = 63.76561 (64 per group)
    r = power_means(delta=0.5, sd=1.0, power=0.8)
    row = r.table.iloc[0]
    assert_allclose(row["n1_exact"], 63.76561, atol=5e-6)
    assert (row["n1"], row["n2"], row["n_total"]) == (64, 64, 128)
    # the same in outcome units: a 5-point difference on a scale with SD 10
    assert power_means(delta=5, sd=10, power=0.8).table["n1"].iloc[0] == 64


@pytest.mark.parametrize("ratio", [1.0, 2.0, 0.5])
@pytest.mark.parametrize("alternative", ["two-sided", "larger"])
def test_against_statsmodels_ttest(ratio, alternative):
    from statsmodels.stats.power import TTestIndPower

    tt = TTestIndPower()
    r = power_means(delta=0.4, sd=1, n=80, ratio=ratio, alternative=alternative)
    assert_allclose(r.table["power"].iloc[0],
                    tt.power(effect_size=0.4, nobs1=80, alpha=0.05, ratio=ratio, alternative=alternative),
                    rtol=RTOL_POWER)
    r = power_means(delta=0.4, sd=1, power=0.9, ratio=ratio, alternative=alternative)
    assert_allclose(r.table["n1_exact"].iloc[0],
                    tt.solve_power(effect_size=0.4, power=0.9, alpha=0.05, ratio=ratio, alternative=alternative),
                    rtol=RTOL_SOLVE)
    r = power_means(sd=2, n=80, power=0.9, ratio=ratio, alternative=alternative)
    assert_allclose(r.table["effect_size"].iloc[0],
                    tt.solve_power(nobs1=80, power=0.9, alpha=0.05, ratio=ratio, alternative=alternative),
                    rtol=RTOL_SOLVE)
    assert_allclose(r.table["delta"].iloc[0], 2 * r.table["effect_size"].iloc[0])


def test_z_test_against_statsmodels_normal():
    from statsmodels.stats.power import NormalIndPower

    r = power_means(delta=-0.3, sd=1, n=150, test="z", alternative="smaller")
    assert_allclose(r.table["power"].iloc[0],
                    NormalIndPower().power(effect_size=-0.3, nobs1=150, alpha=0.05, alternative="smaller"),
                    rtol=RTOL_POWER)
    r = power_means(sd=1, n=150, power=0.8, test="z", alternative="smaller")
    assert r.table["delta"].iloc[0] < 0
    assert r.table["direction"].iloc[0] == "decrease"


def test_design_effect_attrition_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    r = power_means(delta=0.5, sd=1, power=0.8, design_effect=1.5, attrition=0.1)
    row = r.table.iloc[0]
    assert row["n1_base"] == 64 and row["n1"] == 107  # ceil(64 * 1.5) = 96; ceil(96 / 0.9) = 107
    ax = r.plot(over="effect")
    assert ax.get_xlabel() == "Difference in means (delta)"
    y = ax.get_lines()[0].get_ydata()
    assert y[0] < 0.1 and y[-1] > 0.99


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delta": 0.5, "sd": 1, "n": 10, "power": 0.8}, "exactly one of delta, n, power"),
        ({"delta": 0.5, "sd": 0, "power": 0.8}, "sd must be a finite number greater than 0"),
        ({"delta": 0, "sd": 1, "power": 0.8}, "delta must be nonzero"),
        ({"delta": -0.5, "sd": 1, "power": 0.8, "alternative": "larger"}, "does not match the sign"),
        ({"delta": 0.5, "sd": 1, "power": 0.8, "test": "wilcoxon"}, "test must be one of"),
        ({"delta": 0.5, "sd": 1, "n": 1}, "at least 3 are needed"),
        ({"delta": "big", "sd": 1, "power": 0.8}, "delta must be a number"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        power_means(**kwargs)
