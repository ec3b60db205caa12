"""res.diagnostics(): AUC (DeLong), Brier, Hosmer-Lemeshow, calibration, VIF, EPV."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy import stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.outliers_influence import variance_inflation_factor

from recoverystats.errors import SmallSampleWarning
from recoverystats.regression import odds_ratios

REF_DIR = Path(str(resources.files("recoverystats.datasets").joinpath("data")))
#: independent implementations (sklearn, statsmodels, direct code in this file)
RTOL = 1e-6


@pytest.fixture(scope="module")
def uis() -> pd.DataFrame:
    d = pd.read_csv(REF_DIR / "uis.csv")
    d["DFREE"] = (d["TIME"] >= 365).astype(int)
    return d


@pytest.fixture(scope="module")
def res(uis):
    return odds_ratios(uis, formula="DFREE ~ TREAT + AGE + BECK + C(IV) + NDT + RACE + SITE", exposure="TREAT")


def _delong_direct(y, p):
    """O(n^2) DeLong (1988) with explicit placement values."""
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), np.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))


def _hoslem_direct(y, p, g=10):
    """R ResourceSelection::hoslem.test: cut(p, quantile(p, 0:g/g), include.lowest=TRUE)."""
    brk = np.unique(np.quantile(p, np.linspace(0, 1, g + 1)))
    grp = pd.cut(p, brk, include_lowest=True, right=True)
    d = pd.DataFrame({"y": y, "p": p, "g": grp})
    agg = d.groupby("g", observed=True).agg(o1=("y", "sum"), e1=("p", "sum"), n=("y", "size"))
    o0, e0 = agg.n - agg.o1, agg.n - agg.e1
    chisq = (((agg.o1 - agg.e1) ** 2) / agg.e1 + ((o0 - e0) ** 2) / e0).sum()
    return chisq, len(agg) - 2


def test_auc_brier_hl_match_independent(res, uis):
    y = res._model.y
    p = res._model.p
    t = res.diagnostics().table.set_index("measure")
    assert_allclose(t.loc["auc", "estimate"], roc_auc_score(y, p), rtol=RTOL)
    auc, se = _delong_direct(y, p)
    assert_allclose(t.loc["auc", "std_error"], se, rtol=RTOL)
    z = stats.norm.ppf(0.975)
    assert_allclose([t.loc["auc", "ci_lower"], t.loc["auc", "ci_upper"]], [auc - z * se, auc + z * se], rtol=RTOL)
    assert_allclose(t.loc["brier", "estimate"], np.mean((y - p) ** 2), rtol=RTOL)
    chisq, dfree = _hoslem_direct(y, p)
    assert_allclose(t.loc["hosmer_lemeshow", "statistic"], chisq, rtol=RTOL)
    assert t.loc["hosmer_lemeshow", "df"] == dfree == 8
    assert_allclose(t.loc["hosmer_lemeshow", "p_value"], stats.chi2.sf(chisq, dfree), rtol=RTOL)
    # on the fitting data an ML model is calibrated by construction
    assert_allclose(t.loc["calibration_slope", "estimate"], 1.0, atol=1e-8)
    assert_allclose(t.loc["calibration_intercept", "estimate"], 0.0, atol=1e-8)


def test_calibration_on_new_data_matches_statsmodels(res, uis):
    new = uis.sample(300, random_state=1).copy()
    new["AGE"] = new["AGE"] + 5  # a shifted population: miscalibrated
    d = res.diagnostics(data=new).table.set_index("measure")
    X = res._model.design.transform(new)
    lp = X @ res._model.beta
    y = new["DFREE"].to_numpy(float)
    # statsmodels: Logit(y, [1, lp]) and GLM(y, 1, offset=lp)
    slope = sm.Logit(y, sm.add_constant(lp)).fit(disp=0)
    icpt = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit()
    assert_allclose(d.loc["calibration_slope", "estimate"], slope.params[1], rtol=RTOL)
    assert_allclose(d.loc["calibration_slope", "std_error"], slope.bse[1], rtol=RTOL)
    assert_allclose(d.loc["calibration_intercept", "estimate"], icpt.params[0], rtol=RTOL)
    assert_allclose(d.loc["calibration_intercept", "std_error"], icpt.bse[0], rtol=RTOL)
    assert_allclose(d.loc["auc", "estimate"], roc_auc_score(y, 1 / (1 + np.exp(-lp))), rtol=RTOL)


def test_vif_matches_statsmodels(res):
    vif = res.diagnostics().vif.set_index("term")
    X = res._model.design.X
    names = res._model.design.names
    for j, name in enumerate(names):
        if name == "Intercept":
            continue
        assert_allclose(vif.loc[name, "vif"], variance_inflation_factor(X, j), rtol=RTOL)
    # GVIF of the 2-column IV term: det(R11) det(R22) / det(R) (car::vif)
    cols = [c for c in range(X.shape[1]) if names[c] != "Intercept"]
    R = np.corrcoef(X[:, cols], rowvar=False)
    iv = [cols.index(names.index("IV[2]")), cols.index(names.index("IV[3]"))]
    rest = [i for i in range(len(cols)) if i not in iv]
    g = np.linalg.det(R[np.ix_(iv, iv)]) * np.linalg.det(R[np.ix_(rest, rest)]) / np.linalg.det(R)
    assert_allclose(vif.loc["IV[2]", "gvif"], g, rtol=RTOL)
    assert_allclose(vif.loc["IV[2]", "gvif_adjusted"], g ** 0.25, rtol=RTOL)


def test_epv_warning_and_value():
    rng = np.random.default_rng(8)
    n = 120
    df = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(5)})
    df["y"] = (rng.random(n) < 0.3).astype(int)
    r = odds_ratios(df, "y", adjust=[f"x{i}" for i in range(5)], method="mle")
    expected = min(df.y.sum(), n - df.y.sum()) / 5
    assert_allclose(r.events_per_variable, expected, rtol=1e-12)
    with pytest.warns(SmallSampleWarning, match=r"Events per variable is \d+\.\d \(< 10\)") as rec:
        d = r.diagnostics()
    assert rec[0].filename == __file__  # the warning points at the user's line
    assert_allclose(d.table.set_index("measure").loc["events_per_variable", "estimate"], expected, rtol=1e-12)


def test_calibration_plot(res):
    import matplotlib

    matplotlib.use("Agg")
    d = res.diagnostics()
    ax = d.plot()
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_ylim() == (0.0, 1.0)
    line = ax.lines[1]
    assert_allclose(line.get_xdata(), d.calibration["mean_predicted"])
    assert_allclose(line.get_ydata(), d.calibration["observed_rate"])
    assert int(d.calibration["n"].sum()) == res.n_used
