"""One design-matrix builder (recoverystats._design) for odds_ratios and hazard_ratios.

The same exposure/adjust/formula/reference call must give the same terms, names,
reference levels and error messages in both models (Cox has no intercept row).
"""

from __future__ import annotations

import re
import warnings
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
from numpy.testing import assert_allclose

import recoverystats as rs
from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.regression import odds_ratios
from recoverystats.survival import hazard_ratios

REF = Path(str(resources.files("recoverystats.datasets").joinpath("data")))
#: independent implementations (lifelines) at machine precision (STYLE.md)
RTOL_IMPL = 1e-6
#: the same model coded two ways in this package: only floating-point error
RTOL_SAME = 1e-10


@pytest.fixture(scope="module")
def recid(sample_dir) -> pd.DataFrame:
    """read_program(data/sample) -> recidivism(365 days): both a 0/1 outcome and time/event."""
    if not (sample_dir / "program.toml").exists():  # pragma: no cover - sample data ships with the repo
        pytest.skip("data/sample is missing")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rs.recidivism(rs.read_program(sample_dir), window_days=365)


@pytest.fixture(scope="module")
def uis() -> pd.DataFrame:
    return pd.read_csv(REF / "uis.csv")


def _coding(res) -> pd.DataFrame:
    t = res.table
    return t.loc[t["term"] != "Intercept", ["term", "variable", "reference"]].reset_index(drop=True)


def _or(df, rhs=None, **kw):
    if rhs is not None:
        kw["formula"] = f"recidivated ~ {rhs}"
    else:
        kw.setdefault("outcome", "recidivated")
    outcome = kw.pop("outcome", None)
    return odds_ratios(df, outcome, missing="drop", **kw)


def _hr(df, rhs=None, **kw):
    if rhs is not None:
        kw["formula"] = rhs
    return hazard_ratios(df, time="time_days", event="event", **kw)


def test_same_terms_and_reference_levels_on_data_sample(recid):
    """Default references: group -> 'comparison' (first sorted), risk_level -> 'low' and
    gender -> 'male' (first code of the data model's code lists), in both models."""
    kw = {"exposure": "group", "adjust": ["age", "risk_level", "gender"]}
    o, h = _or(recid, **kw), _hr(recid, **kw)
    pd.testing.assert_frame_equal(_coding(o), _coding(h))
    assert _coding(h)["term"].tolist() == [
        "group[peer_mentoring]", "age", "risk_level[moderate]", "risk_level[high]", "risk_level[very_high]",
        "gender[female]", "gender[nonbinary]",
    ]
    refs = _coding(h).dropna().set_index("variable")["reference"].to_dict()
    assert refs == {"group": "comparison", "risk_level": "low", "gender": "male"}
    assert o.table["term"].iloc[-1] == "Intercept" and "Intercept" not in set(h.table["term"])


def test_same_terms_through_a_formula_with_interaction(recid):
    rhs = "group + age + C(risk_level) + group:age"
    o, h = _or(recid, rhs, exposure="group"), _hr(recid, rhs, exposure="group")
    pd.testing.assert_frame_equal(_coding(o), _coding(h))
    # the exposure's main effect first, then the terms as written (issue 13: not patsy's grouping);
    # the interaction keeps its place (it is not the exposure's row)
    assert _coding(h)["term"].tolist() == [
        "group[peer_mentoring]", "age", "risk_level[moderate]", "risk_level[high]", "risk_level[very_high]",
        "group[peer_mentoring]:age",
    ]


def test_explicit_reference_and_formula_path_agree(recid):
    ref = {"group": "peer_mentoring", "risk_level": "high"}
    a = _hr(recid, exposure="group", adjust=["risk_level"], reference=ref)
    b = _hr(recid, "risk_level + group", exposure="group", reference=ref)
    o = _or(recid, exposure="group", adjust=["risk_level"], reference=ref)
    pd.testing.assert_frame_equal(_coding(a), _coding(b))
    pd.testing.assert_frame_equal(_coding(a), _coding(o))
    assert _coding(a)["term"].tolist() == ["group[comparison]", "risk_level[low]", "risk_level[moderate]",
                                           "risk_level[very_high]"]
    assert_allclose(a.table["log_hazard"], b.table["log_hazard"], rtol=RTOL_SAME)


def test_cox_coding_matches_lifelines_on_manual_dummies(recid):
    """The default (code-list) coding of risk_level, checked numerically: lifelines
    CoxPHFitter on hand-made 0/1 columns against low (Efron ties)."""
    from lifelines import CoxPHFitter

    d = recid[["time_days", "event", "age"]].copy()
    d["g_pm"] = (recid["group"] == "peer_mentoring").astype(float)
    for lev in ("moderate", "high", "very_high"):
        d[f"r_{lev}"] = (recid["risk_level"] == lev).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = CoxPHFitter().fit(d, "time_days", "event", fit_options={"precision": 1e-12})
    res = _hr(recid, exposure="group", adjust=["age", "risk_level"])
    names = {"group[peer_mentoring]": "g_pm", "age": "age", "risk_level[moderate]": "r_moderate",
             "risk_level[high]": "r_high", "risk_level[very_high]": "r_very_high"}
    t = res.table.set_index("term").loc[list(names)]
    assert_allclose(t["log_hazard"], ref.params_[list(names.values())], rtol=RTOL_IMPL)
    assert_allclose(t["std_error"], ref.standard_errors_[list(names.values())], rtol=RTOL_IMPL)


def _message(fn, *args, **kw) -> tuple[type, str]:
    with pytest.raises((InvalidParameterError, DataValidationError)) as exc:
        fn(*args, **kw)
    return type(exc.value), str(exc.value)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"exposure": "group", "reference": {"group": "control"}},
         r"reference: level 'control' of column 'group' does not occur in the rows used; levels present: "
         r"'comparison', 'peer_mentoring'"),
        ({"exposure": "group", "reference": {"site": "A"}},
         r"reference: column 'site' is not in the model \(model columns: group\)"),
        ({"exposure": "group", "reference": ["group", "comparison"]},
         r"reference must map a column to its reference level.*got \['group', 'comparison'\]"),
        ({"exposure": "groupp"}, r"exposure: column\(s\) 'groupp' not found in the data"),
        ({"exposure": "group", "adjust": ["agee"]}, r"adjust: column\(s\) 'agee' not found in the data"),
        ({"exposure": "group", "adjust": ["age", "age"]}, r"adjust: column\(s\) 'age' listed more than once"),
        ({"rhs": "group + agee"}, r"formula: column\(s\) 'agee' not found in the data"),
        ({"rhs": "group", "adjust": ["age"]}, r"adjust: give either formula= or exposure=/adjust=, not both"),
        ({"rhs": "group + age", "exposure": "site"}, r"exposure='site' does not appear in the formula"),
        ({"exposure": "one", "adjust": ["age"]}, r"exposure: column 'one' has a single value \('x'\)"),
        ({"exposure": "group", "adjust": ["one"]}, r"covariate 'one' has a single level \('x'\)"),
    ],
)
def test_same_error_messages(recid, kw, match):
    d = recid[recid["eligible"]].assign(one="x")  # the same rows for both models
    kw = dict(kw)
    rhs = kw.pop("rhs", None)
    t_o, m_o = _message(_or, d, rhs, **kw)
    t_h, m_h = _message(_hr, d, rhs, **kw)
    assert re.search(match, m_o) and t_o is t_h
    # identical apart from the formula text quoted (with / without the outcome)
    assert m_o.replace("recidivated ~ ", "") == m_h


def test_cluster_must_be_one_column_in_both(recid):
    msg = r"cluster must be one column name \(str\), e.g. 'mentor_id'; got \['site', 'group'\]"
    with pytest.raises(InvalidParameterError, match=msg):
        _or(recid, exposure="group", cluster=["site", "group"])
    with pytest.raises(InvalidParameterError, match=msg):
        _hr(recid, exposure="group", cluster=["site", "group"])


def test_no_covariates_message_names_the_function(recid):
    with pytest.raises(InvalidParameterError, match=r"odds_ratios needs covariates.*at least one covariate"):
        odds_ratios(recid, "recidivated")
    with pytest.raises(InvalidParameterError, match=r"hazard_ratios needs covariates.*at least one covariate"):
        hazard_ratios(recid, time="time_days", event="event")


# -- defects of the former survival-only builder, fixed by sharing --------------------------

def test_cox_numeric_column_named_in_reference_is_categorical(uis):
    """reference={'IV': 3} on a numeric column was checked, then ignored (IV entered linearly)."""
    res = hazard_ratios(uis, time="TIME", event="CENSOR", exposure="IV", adjust=["AGE"], reference={"IV": 3})
    assert res.table["term"].tolist() == ["IV[1]", "IV[2]", "AGE"]
    assert res.table["reference"].tolist()[:2] == ["3", "3"]
    manual = uis.assign(iv1=(uis.IV == 1).astype(float), iv2=(uis.IV == 2).astype(float))
    ref = hazard_ratios(manual, time="TIME", event="CENSOR", adjust=["iv1", "iv2", "AGE"])
    assert_allclose(res.table["log_hazard"], ref.table["log_hazard"], rtol=RTOL_SAME)


def test_cox_formula_with_adjust_is_an_error(uis):
    """formula= with adjust= (and no exposure=) silently ignored adjust."""
    with pytest.raises(InvalidParameterError, match=r"adjust: give either formula= or exposure=/adjust="):
        hazard_ratios(uis, time="TIME", event="CENSOR", formula="AGE", adjust=["BECK"])


def test_cox_single_level_exposure_is_an_error(uis):
    """A text exposure with one level among the rows used was coded as zero columns and vanished."""
    d = uis.assign(arm="mentored")
    with pytest.raises(DataValidationError, match=r"exposure: column 'arm' has a single value \('mentored'\)"):
        hazard_ratios(d, time="TIME", event="CENSOR", exposure="arm", adjust=["AGE"])


def test_cox_collinear_terms_named(uis):
    from recoverystats.errors import EstimationError

    with pytest.raises(EstimationError, match=r"singular.*perfectly collinear: \{AGE, AGE2\}"):
        hazard_ratios(uis.assign(AGE2=uis.AGE * 2), time="TIME", event="CENSOR", adjust=["AGE", "AGE2", "BECK"])


def test_cox_formula_without_intercept_is_a_clear_error(recid):
    """'0 + C(group)' codes every level; in a Cox model that used to surface as 'monotone likelihood'."""
    with pytest.raises(InvalidParameterError, match=r"formula: '0 \+ C\(group\) \+ age' removes the intercept"):
        _hr(recid, "0 + C(group) + age")
    # the logistic model accepts it (no intercept, one coefficient per level)
    res = _or(recid, "0 + C(group) + age")
    assert res.table["term"].tolist()[:2] == ["group[comparison]", "group[peer_mentoring]"]


def test_cox_stratifying_column_as_covariate_is_an_error(recid):
    with pytest.raises(InvalidParameterError, match=r"strata: column\(s\) 'risk_level' also appear as covariate "
                                                    r"terms"):
        _hr(recid, exposure="group", adjust=["risk_level"], strata="risk_level")
