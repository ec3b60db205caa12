"""Bad input to the causal functions: clear errors naming the column and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import recoverystats as rs
from recoverystats.errors import DataValidationError, InvalidParameterError


def _df(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    return pd.DataFrame({"t": t, "x": x, "z": rng.integers(0, 2, n), "y": rng.integers(0, 2, n),
                         "site": rng.choice(["a", "b"], n)})


ALL = [
    lambda d, **k: rs.propensity_score(d, exposure="t", adjust=["x", "z"], **k),
    lambda d, **k: rs.balancing_weights(d, exposure="t", adjust=["x", "z"], **k),
    lambda d, **k: rs.treatment_effect(d, outcome="y", exposure="t", adjust=["x", "z"], **k),
]


@pytest.mark.parametrize("call", ALL)
def test_exposure_not_binary(call):
    d = _df()
    d["t"] = np.arange(len(d)) % 3
    with pytest.raises(DataValidationError, match=r"exposure: column 't' must be binary .*3 distinct values.*Code"):
        call(d)


def test_exposure_single_value_and_missing():
    d = _df()
    d["t"] = 1
    with pytest.raises(DataValidationError, match="a single value"):
        rs.balance(d, exposure="t", adjust=["x"])
    d = _df()
    d.loc[5, "t"] = np.nan
    with pytest.raises(DataValidationError, match=r"'t' has 1 missing.*dropna"):
        rs.propensity_score(d, exposure="t", adjust=["x"])


@pytest.mark.parametrize("call", ALL)
def test_covariate_constant_in_one_group(call):
    d = _df()
    d.loc[d["t"] == 1, "z"] = 1
    with pytest.raises(DataValidationError,
                       match=r"covariate 'z' is constant \(1\) among the \d+ rows with t = 1.*Restrict the data to z == 1"):
        call(d)


@pytest.mark.parametrize("call", ALL)
def test_no_overlap(call):
    d = _df()
    d["x"] = np.where(d["t"] == 1, 5 + np.abs(d["x"]), -5 - np.abs(d["x"]))
    with pytest.raises(DataValidationError, match=r"no overlap: the covariates \(x(, z)?\) separate the two groups completely"):
        call(d)


@pytest.mark.parametrize("call", ALL + [lambda d, **k: rs.balance(d, exposure="t", adjust=["x", "z"])])
def test_missing_covariate(call):
    d = _df()
    d.loc[[3, 8], "x"] = np.nan
    with pytest.raises(DataValidationError, match=r"adjust: missing values in 'x' \(2 missing\).*dropna\(subset=\['x'\]\)"):
        call(d)


def test_weights_with_nan_negative_or_misaligned():
    d = _df()
    w = pd.Series(1.0, index=d.index)
    w.iloc[4] = np.nan
    with pytest.raises(DataValidationError, match=r"weights: 'weights' has 1 missing \(NaN\) weight.*first at row 4"):
        rs.balance(d, exposure="t", adjust=["x"], weights=w.rename("weights"))
    d["w"] = 1.0
    d.loc[7, "w"] = -1
    with pytest.raises(DataValidationError, match="non-negative"):
        rs.treatment_effect(d, outcome="y", exposure="t", adjust=["x"], weights="w", weight_type="sampling")
    # weights from a subset: rows outside it are NaN after alignment -> the same clear error
    bw = rs.balancing_weights(d.iloc[:150], exposure="t", adjust=["x"])
    with pytest.raises(DataValidationError, match="recompute the weights on this data"):
        rs.balance(d, exposure="t", adjust=["x"], weights=bw)
    d["w"] = 1.5
    with pytest.raises(InvalidParameterError, match="weight_type='sampling'"):
        rs.treatment_effect(d, outcome="y", exposure="t", adjust=["x"], weights="w")


def test_parameter_errors():
    d = _df()
    with pytest.raises(InvalidParameterError, match="estimand must be one of"):
        rs.balancing_weights(d, exposure="t", adjust=["x"], estimand="ATX")
    with pytest.raises(InvalidParameterError, match="method='ps'"):
        rs.balancing_weights(d, exposure="t", adjust=["x"], estimand="ATO", method="entropy")
    with pytest.raises(InvalidParameterError, match="trim must be None or a quantile"):
        rs.balancing_weights(d, exposure="t", adjust=["x"], trim=2)
    with pytest.raises(InvalidParameterError, match="moments must be 1"):
        rs.balancing_weights(d, exposure="t", adjust=["x"], moments=3, method="entropy")
    with pytest.raises(InvalidParameterError, match=r"adjust: column\(s\) 'nope' not found"):
        rs.propensity_score(d, exposure="t", adjust=["nope"])
    with pytest.raises(InvalidParameterError, match="cannot also be a covariate"):
        rs.propensity_score(d, exposure="t", adjust=["t", "x"])
    with pytest.raises(InvalidParameterError, match="left-hand side 'y' must be the exposure"):
        rs.propensity_score(d, exposure="t", formula="y ~ x")
    with pytest.raises(InvalidParameterError, match="treated=5 is not a value"):
        rs.propensity_score(d, exposure="t", adjust=["x"], treated=5)
    with pytest.raises(InvalidParameterError, match="needs time=, event= and times="):
        rs.treatment_effect(d, exposure="t", adjust=["x"], time="x")
    with pytest.raises(InvalidParameterError, match="method='ipw'"):
        rs.treatment_effect(d, exposure="t", adjust=["x"], time="x", event="y", times=[1], method="aipw")
    with pytest.raises(InvalidParameterError, match="at least 100"):
        rs.treatment_effect(d, outcome="y", exposure="t", adjust=["x"], bootstrap=10)
    with pytest.raises(InvalidParameterError, match="needs rare=True or rare=False"):
        rs.evalue(2.0, measure="or")
    with pytest.raises(InvalidParameterError, match="not inside its interval"):
        rs.evalue(2.0, 2.5, 3.0)
    with pytest.raises(InvalidParameterError, match="give the covariates"):
        rs.balance(d, exposure="t", adjust=[])


def test_outcome_errors():
    d = _df()
    d.loc[2, "y"] = np.nan
    with pytest.raises(DataValidationError, match=r"outcome: column 'y' has 1 missing"):
        rs.treatment_effect(d, outcome="y", exposure="t", adjust=["x"])
    d = _df()
    d["y"] = np.where(d["y"] == 1, "yes", "no")
    with pytest.raises(DataValidationError, match="must be numeric"):
        rs.treatment_effect(d, outcome="y", exposure="t", adjust=["x"])


def test_outcome_model_with_level_absent_in_one_group():
    d = _df(n=300)
    d.loc[d.index[(d["t"] == 0)][:5], "site"] = "c"  # level 'c' only in the comparison group
    with pytest.raises(DataValidationError, match=r"outcome model cannot be fitted in the exposed group: design "
                                                  r"column\(s\) site\[c\] are 0 throughout"):
        rs.treatment_effect(d, outcome="y", exposure="t", adjust=["x", "site"], method="gcomp")
