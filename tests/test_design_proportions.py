"""power_proportions against published values (epiR epi.sscohortc examples, Woodward 2014)
and against statsmodels where the methods overlap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from recoverystats.design import design_effect, power_proportions
from recoverystats.errors import InvalidParameterError

#: independent implementations (statsmodels, scipy root finding) agree to this relative tolerance
RTOL_INDEPENDENT = 1e-6
#: a published number printed to 2 decimals agrees to half a unit in the last digit
HALF_UNIT_2DP = 0.005


def test_woodward_example_8_13_epir_example_1():
    # epiR epi.sscohortc EXAMPLE 1 (Woodward 2014, Example 8.13, p. 314):
    # irexp1 = 1.4 * (5 * 413) / 100000; irexp0 = (5 * 413) / 100000
    # epi.sscohortc(N = NA, irexp1 = irexp1, irexp0 = irexp0, pexp = NA, n = NA, power = 0.90,
    #    r = 1, design = 1, sided.test = 1, finite.correction = FALSE, nfractional = FALSE,
    #    conf.level = 0.95)   ->  n.total 12130 (6065 smokers and 6065 non-smokers)
    p0 = 5 * 413 / 100000
    r = power_proportions(p1=p0, p2=1.4 * p0, power=0.90, alternative="larger")
    row = r.table.iloc[0]
    assert (row["n1"], row["n2"], row["n_total"]) == (6065, 6065, 12130)


def test_epir_example_2_detectable_risk_ratios():
    # epiR EXAMPLE 2: 5000 subjects in all, power 0.90, sided.test = 1 -> "The minimum
    # detectable risk ratio >1 is 1.65. The maximum detectable risk ratio <1 is 0.50."
    # epiR uses the one-sided z (1.645) for both directions: our two-sided alpha = 0.10.
    p0 = 5 * 413 / 100000
    r = power_proportions(p1=p0, n=2500, power=0.90, alpha=0.10)
    t = r.table.set_index("direction")
    assert_allclose(t.loc["increase", "risk_ratio"], 1.65, atol=HALF_UNIT_2DP)
    assert_allclose(t.loc["decrease", "risk_ratio"], 0.50, atol=HALF_UNIT_2DP)
    # the solution has exactly the requested power
    for d in ("increase", "decrease"):
        back = power_proportions(p1=p0, p2=t.loc[d, "p2"], n=2500, alpha=0.10)
        assert_allclose(back.table["power"].iloc[0], 0.90, rtol=RTOL_INDEPENDENT)


def test_epir_example_3_cows_242():
    # epiR EXAMPLE 3: epi.sscohortc(irexp1 = 0.30, irexp0 = 0.15, n = NA, power = 0.80, r = 1,
    #   design = 1, sided.test = 2, conf.level = 0.95) -> 242 (121 + 121)
    r = power_proportions(p1=0.15, p2=0.30, power=0.80)
    row = r.table.iloc[0]
    assert (row["n1"], row["n2"], row["n_total"]) == (121, 121, 242)
    assert_allclose(row["n1_exact"], 120.47193818, rtol=1e-8)  # 240.94388 / 2 printed with nfractional
    assert row["direction"] == "increase"


def test_epir_example_3_with_design_effect_592():
    # design <- 0.05 * (30 - 1) + 1  (2.45); epi.sscohortc(..., design = design) -> 592 (296 + 296).
    # epiR multiplies the unrounded size by the design effect and rounds once: rounding="final".
    deff = design_effect(30, 0.05)
    assert_allclose(deff, 2.45, rtol=1e-12)
    r = power_proportions(p1=0.15, p2=0.30, power=0.80, design_effect=deff, rounding="final")
    row = r.table.iloc[0]
    assert (row["n1"], row["n2"], row["n_total"]) == (296, 296, 592)
    # the package default rounds each group up first (121), then inflates: ceil(121 * 2.45) = 297
    r = power_proportions(p1=0.15, p2=0.30, power=0.80, design_effect=deff)
    row = r.table.iloc[0]
    assert (row["n1_base"], row["n1"], row["n_total"]) == (121, 297, 594)


def test_rounding_per_group_before_attrition():
    r = power_proportions(p1=0.15, p2=0.30, power=0.80, design_effect=2.45, attrition=0.2)
    row = r.table.iloc[0]
    assert row["n1"] == math.ceil(math.ceil(121 * 2.45) / 0.8)  # 297 / 0.8 = 371.25 -> 372
    assert row["n_total"] == 2 * 372
    # floating point noise does not add a participant: 100 * 1.1 is 110.00000000000001
    r = power_proportions(p1=0.15, p2=0.30, power=0.80, design_effect=1.1)
    assert r.table["n1"].iloc[0] == math.ceil(121 * 1.1 - 1e-9)


def test_unequal_allocation_matches_epir_r():
    # epiR's r is exposed / unexposed like our ratio = n2 / n1; its total n for r = 2:
    # n0 = (r+1)/(r (l-1)^2 p^2) [z_a sqrt((r+1) pc qc) + z_b sqrt(l p (1-l p) + r p q)]^2
    from scipy.stats import norm

    p0, p1_, r_ = 0.15, 0.30, 2.0
    za, zb = norm.isf(0.025), norm.ppf(0.8)
    lam = p1_ / p0
    pc = p0 * (r_ * lam + 1) / (r_ + 1)
    total = ((r_ + 1) / (r_ * (lam - 1) ** 2 * p0**2)
             * (za * math.sqrt((r_ + 1) * pc * (1 - pc)) + zb * math.sqrt(lam * p0 * (1 - lam * p0) + r_ * p0 * (1 - p0))) ** 2)
    r = power_proportions(p1=p0, p2=p1_, power=0.8, ratio=r_)
    assert_allclose(r.table["n1_exact"].iloc[0], total / (1 + r_), rtol=RTOL_INDEPENDENT)
    assert_allclose(r.table["n2_exact"].iloc[0], total * r_ / (1 + r_), rtol=RTOL_INDEPENDENT)


def test_arcsine_method_matches_statsmodels():
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    h = proportion_effectsize(0.30, 0.15)
    for ratio in (1.0, 2.0):
        r = power_proportions(p1=0.15, p2=0.30, power=0.8, ratio=ratio, method="arcsine", alternative="larger")
        sm = NormalIndPower().solve_power(effect_size=h, power=0.8, alpha=0.05, ratio=ratio,
                                          alternative="larger")
        assert_allclose(r.table["n1_exact"].iloc[0], sm, rtol=1e-5)
    # one-sided power at a given n is exactly statsmodels' (it has no wrong-direction tail)
    r = power_proportions(p1=0.15, p2=0.30, n=100, method="arcsine", alternative="larger")
    sm = NormalIndPower().power(effect_size=h, nobs1=100, alpha=0.05, alternative="larger")
    assert_allclose(r.table["power"].iloc[0], sm, rtol=RTOL_INDEPENDENT)


def test_power_inverts_sample_size_and_continuity():
    for cc in (False, True):
        r = power_proportions(p1=0.44, p2=0.34, power=0.8, continuity=cc, ratio=1.5)
        n1x = r.table["n1_exact"].iloc[0]
        back = power_proportions(p1=0.44, p2=0.34, n=n1x, continuity=cc, ratio=1.5)
        assert_allclose(back.table["power"].iloc[0], 0.8, rtol=1e-10)
    # Fleiss, Tytun & Ury (1980): n' = n/4 (1 + sqrt(1 + 4 / (n |d|)))^2 for equal groups
    n = power_proportions(p1=0.15, p2=0.30, power=0.8).table["n1_exact"].iloc[0]
    ncc = power_proportions(p1=0.15, p2=0.30, power=0.8, continuity=True).table["n1_exact"].iloc[0]
    assert_allclose(ncc, n / 4 * (1 + math.sqrt(1 + 4 / (n * 0.15))) ** 2, rtol=1e-12)
    assert math.ceil(ncc) == 134  # 133.47 per group for 0.15 vs 0.30


def test_exact_binomial_power_is_close_to_the_approximation():
    # exact power of the (uncorrected) pooled z-test by enumerating both binomials
    from scipy.stats import binom

    n, p1, p2 = 200, 0.30, 0.45
    k = np.arange(n + 1)
    a, b = k[:, None], k[None, :]
    pb = (a + b) / (2 * n)
    se = np.sqrt(pb * (1 - pb) * 2 / n)
    with np.errstate(all="ignore"):
        z = np.where(se > 0, (b - a) / n / se, 0.0)
    exact = float((binom.pmf(k, n, p1)[:, None] * binom.pmf(k, n, p2)[None, :] * (np.abs(z) > 1.959964)).sum())
    approx = power_proportions(p1=p1, p2=p2, n=n).table["power"].iloc[0]
    assert abs(exact - approx) < 0.002


def test_detectable_difference_directions_and_one_sided():
    r = power_proportions(p1=0.44, n=300, power=0.8)
    t = r.table
    assert list(t["direction"]) == ["increase", "decrease"]
    assert t["p2"].iloc[0] > 0.44 > t["p2"].iloc[1]
    assert "smallest difference" in r.summary()
    r = power_proportions(p1=0.44, n=300, power=0.8, alternative="smaller")
    assert list(r.table["direction"]) == ["decrease"]
    # a decrease below 0 is impossible: reported as NaN with words
    r = power_proportions(p1=0.02, n=20, power=0.9)
    t = r.table.set_index("direction")
    assert np.isnan(t.loc["decrease", "p2"])
    assert "impossible" in r.summary()


def test_power_given_n_with_design_effect_uses_effective_size():
    base = power_proportions(p1=0.15, p2=0.30, n=121).table["power"].iloc[0]
    clus = power_proportions(p1=0.15, p2=0.30, n=121 * 2.45, design_effect=2.45).table["power"].iloc[0]
    assert_allclose(base, clus, rtol=1e-12)


def test_result_contract_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    r = power_proportions(p1=0.15, p2=0.30, power=0.8)
    assert isinstance(r.table, pd.DataFrame) and r.table is not r._table
    assert "<table" in r._repr_html_()
    d = r.to_dict()
    assert d["table"][0]["n_total"] == 242
    c = r.curve()
    assert (c["over"] == "n").all() and c["power"].is_monotonic_increasing
    ax = r.plot()
    assert ax.get_ylabel() == "Power" and len(ax.get_lines()) >= 2
    x, y = ax.get_lines()[0].get_data()
    assert_allclose(np.interp(121, x, y), 0.8017, atol=0.002)
    ax = power_proportions(p1=0.44, n=300, power=0.8).plot()
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"increase", "decrease"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p1": 0.1, "p2": 0.2, "n": 10, "power": 0.8}, "exactly one of p2, n, power"),
        ({"p1": 0.1}, "exactly one of p2, n, power"),
        ({"p1": 1.2, "p2": 0.2, "power": 0.8}, "p1 must be strictly between 0 and 1"),
        ({"p1": 0.2, "p2": 0.2, "power": 0.8}, "p2 must differ from p1"),
        ({"p1": 0.2, "p2": 0.1, "power": 0.8, "alternative": "larger"}, "swap the alternative"),
        ({"p1": 0.2, "p2": 0.3, "power": 0.8, "alternative": "bigger"}, "alternative must be one of"),
        ({"p1": 0.2, "p2": 0.3, "power": 0.8, "ratio": 0}, "ratio must be a finite number greater than 0"),
        ({"p1": 0.2, "p2": 0.3, "power": 0.8, "design_effect": 0.5}, "design_effect must be a finite number at least 1"),
        ({"p1": 0.2, "p2": 0.3, "power": 0.8, "attrition": 1.0}, r"attrition must be in \[0, 1\)"),
        ({"p1": 0.2, "p2": 0.3, "power": 0.01}, "power must be greater than alpha"),
        ({"p1": 0.2, "p2": 0.3, "power": 0.8, "continuity": True, "method": "arcsine"}, "continuity=True applies"),
        ({"p1": 0.2, "p2": 0.3, "power": 0.8, "rounding": "up"}, "rounding must be one of"),
        ({"p1": 0.2, "power": 0.8, "n": 0.5}, "n must be a finite number at least 1"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        power_proportions(**kwargs)
