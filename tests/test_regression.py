"""odds_ratios: published UIS values, statsmodels agreement, inputs, display, plot."""

from __future__ import annotations

import json
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import recoverystats as rs
from recoverystats.errors import (
    DataValidationError,
    EstimationError,
    InvalidParameterError,
    SmallSampleWarning,
)
from recoverystats.regression import odds_ratios

REF_DIR = Path(str(resources.files("recoverystats.datasets").joinpath("data")))
#: independent implementation (statsmodels) at machine precision (STYLE.md)
RTOL = 1e-6
#: published values printed with 4 decimals: half a unit in the last digit
PUB_4DP = 5e-5


def load_uis() -> pd.DataFrame:
    try:
        from recoverystats.datasets import load_uis as _load

        return _load()
    except (ImportError, AttributeError):
        return pd.read_csv(REF_DIR / "uis.csv")


@pytest.fixture(scope="module")
def uis() -> pd.DataFrame:
    d = load_uis().copy()
    d["DFREE"] = (d["TIME"] >= 365).astype(int)
    return d


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "rossi.csv")


@pytest.fixture(scope="module")
def program() -> pd.DataFrame:
    """A small program-evaluation frame shaped like a measure's output."""
    rng = np.random.default_rng(20261129)
    n = 600
    group = rng.choice(["comparison", "peer_mentoring"], n)
    risk = rng.choice(["low", "moderate", "high"], n, p=[0.3, 0.4, 0.3])
    age = rng.normal(34, 9, n).round()
    mentor = rng.integers(0, 60, n)
    lp = (-0.9 + np.where(group == "peer_mentoring", -0.5, 0.0)
          + pd.Series(risk).map({"low": 0.0, "moderate": 0.5, "high": 1.0}).to_numpy()
          - 0.02 * (age - 34) + rng.normal(0, 0.3, 60)[mentor])
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    return pd.DataFrame({
        "participant_id": [f"P{i:04d}" for i in range(n)], "group": group, "risk_level": risk,
        "age": age, "mentor_id": [f"M{m:02d}" for m in mentor], "rearrest": y,
        "eligible": True,
    })


# ---------------------------------------------------------------------------
# published reference: Hosmer & Lemeshow ALR 2e Table 4.1 (REFERENCE_VALUES.md)
# ---------------------------------------------------------------------------
def test_uis_table_4_1_published(uis):
    res = odds_ratios(uis, "DFREE", adjust=["AGE"])
    t = res.table.set_index("term")
    assert_allclose(t.loc["Intercept", "log_odds"], -1.6602, atol=PUB_4DP)
    assert_allclose(t.loc["Intercept", "std_error"], 0.5111, atol=PUB_4DP)
    assert_allclose(t.loc["AGE", "log_odds"], 0.0182, atol=PUB_4DP)
    assert_allclose(t.loc["AGE", "std_error"], 0.0153, atol=PUB_4DP)
    assert_allclose(t.loc["AGE", "p_value"], 0.2363, atol=PUB_4DP)
    assert_allclose(res.loglik, -326.1654, atol=PUB_4DP)
    assert res.n_used == 575 and res.n_events == 147
    assert res.method.startswith("Maximum-likelihood")


def _compare_to_statsmodels(res, sm_res, names):
    t = res.table.set_index("term").loc[list(names.keys())]
    sm_names = list(names.values())
    ci = sm_res.conf_int()
    assert_allclose(t["log_odds"], sm_res.params[sm_names], rtol=RTOL)
    assert_allclose(t["std_error"], sm_res.bse[sm_names], rtol=RTOL)
    assert_allclose(t["p_value"], sm_res.pvalues[sm_names], rtol=RTOL)
    assert_allclose(np.log(t["ci_lower"]), ci.loc[sm_names, 0], rtol=RTOL)
    assert_allclose(np.log(t["ci_upper"]), ci.loc[sm_names, 1], rtol=RTOL)
    assert_allclose(t["estimate"], np.exp(sm_res.params[sm_names]), rtol=RTOL)


def test_uis_main_effects_matches_statsmodels(uis):
    # statsmodels: smf.logit("DFREE ~ AGE + BECK + C(IV) + NDT + RACE + TREAT + SITE", uis).fit()
    f = "DFREE ~ TREAT + AGE + BECK + C(IV) + NDT + RACE + SITE"
    res = odds_ratios(uis, formula=f, exposure="TREAT")
    ref = smf.logit(f, uis).fit(disp=0)
    names = {"TREAT": "TREAT", "AGE": "AGE", "BECK": "BECK", "IV[2]": "C(IV)[T.2]", "IV[3]": "C(IV)[T.3]",
             "NDT": "NDT", "RACE": "RACE", "SITE": "SITE", "Intercept": "Intercept"}
    _compare_to_statsmodels(res, ref, names)
    assert_allclose(res.loglik, ref.llf, rtol=RTOL)
    assert list(res.table["term"])[0] == "TREAT" and list(res.table["term"])[-1] == "Intercept"
    iv = res.table.set_index("term").loc[["IV[2]", "IV[3]"]]
    assert set(iv["reference"]) == {"1"}
    # global LR test of the 3-level IV term = statsmodels nested-model LR
    ref0 = smf.logit("DFREE ~ TREAT + AGE + BECK + NDT + RACE + SITE", uis).fit(disp=0)
    lr = 2 * (ref.llf - ref0.llf)
    tt = res.term_tests.set_index("term")
    assert_allclose(tt.loc["IV", "statistic"], lr, rtol=RTOL)
    assert tt.loc["IV", "df"] == 2
    assert_allclose(iv["term_p_value"], [tt.loc["IV", "p_value"]] * 2, rtol=RTOL)


def test_rossi_logistic_matches_statsmodels(rossi):
    # statsmodels: sm.Logit(arrest, add_constant(X)).fit() on the Rossi data
    cov = ["age", "race", "wexp", "mar", "paro", "prio"]
    res = odds_ratios(rossi, "arrest", exposure="fin", adjust=cov)
    X = sm.add_constant(rossi[["fin", *cov]].astype(float))
    ref = sm.Logit(rossi["arrest"].astype(float), X).fit(disp=0)
    names = {c: c for c in ["fin", *cov]} | {"Intercept": "const"}
    _compare_to_statsmodels(res, ref, names)
    fin = res.table.iloc[0]
    assert fin["term"] == "fin" and fin["n"] == 216 and fin["events"] == 48


def test_conf_level_changes_interval(rossi):
    r90 = odds_ratios(rossi, "arrest", exposure="fin", adjust=["age"], conf_level=0.90)
    ref = sm.Logit(rossi["arrest"], sm.add_constant(rossi[["fin", "age"]])).fit(disp=0)
    ci = ref.conf_int(alpha=0.10)
    assert_allclose(np.log(r90.table["ci_lower"].iloc[0]), ci.loc["fin", 0], rtol=RTOL)
    assert r90.conf_level == 0.90


# ---------------------------------------------------------------------------
# program-shaped data: reference levels, eligibility, missing, clusters
# ---------------------------------------------------------------------------
def test_reference_levels_and_term_names(program):
    res = odds_ratios(program, "rearrest", exposure="group", adjust=["age", "risk_level"],
                      reference={"group": "comparison", "risk_level": "low"})
    terms = list(res.table["term"])
    # coded data-model columns keep the code order (low, moderate, high)
    assert terms == ["group[peer_mentoring]", "age", "risk_level[moderate]", "risk_level[high]", "Intercept"]
    t = res.table.set_index("term")
    assert t.loc["group[peer_mentoring]", "reference"] == "comparison"
    assert t.loc["group[peer_mentoring]", "n"] == (program["group"] == "peer_mentoring").sum()
    assert t.loc["risk_level[high]", "events"] == program.loc[program.risk_level == "high", "rearrest"].sum()
    flipped = odds_ratios(program, "rearrest", exposure="group", adjust=["age", "risk_level"],
                          reference={"group": "peer_mentoring"})
    assert flipped.table["term"].iloc[0] == "group[comparison]"
    assert_allclose(flipped.table["log_odds"].iloc[0], -t.loc["group[peer_mentoring]", "log_odds"], rtol=RTOL)
    # same model through a formula gives the same numbers
    viaf = odds_ratios(program, formula="rearrest ~ group + age + risk_level", exposure="group",
                       reference={"group": "comparison", "risk_level": "low"})
    assert_allclose(viaf.table.set_index("term").loc[terms, "log_odds"], t.loc[terms, "log_odds"], rtol=RTOL)
    # the whole 3-level term has a global LR test
    assert res.term_tests["term"].tolist() == ["risk_level"]


def test_inverted_exposure(program):
    res = odds_ratios(program, "rearrest", exposure="group", adjust=["age"])
    inv = res.inverted()
    a, b = res.table.iloc[0], inv.table.iloc[0]
    assert b["term"] == "group[comparison]" and b["reference"] == "peer_mentoring"
    assert_allclose(b["estimate"], 1 / a["estimate"], rtol=RTOL)
    assert_allclose([b["ci_lower"], b["ci_upper"]], [1 / a["ci_upper"], 1 / a["ci_lower"]], rtol=RTOL)
    assert_allclose(b["p_value"], a["p_value"], rtol=RTOL)
    assert_allclose(inv.table["estimate"].iloc[1:], res.table["estimate"].iloc[1:], rtol=RTOL)
    # n/events now count the former reference group
    comp = program[program.group == "comparison"]
    assert b["n"] == len(comp) and b["events"] == comp["rearrest"].sum()
    assert any("inverted" in n for n in inv.notes)


def test_eligible_rows_only(program):
    d = program.copy()
    d.loc[:49, "eligible"] = False
    d.loc[:49, "rearrest"] = np.nan  # incomplete windows have no outcome yet
    res = odds_ratios(d, "rearrest", exposure="group", adjust=["age"])
    ref = odds_ratios(program.iloc[50:], "rearrest", exposure="group", adjust=["age"])
    assert res.n_used == len(d) - 50 and res.n_excluded == 50
    assert any("not eligible" in n for n in res.notes)
    assert_allclose(res.table["log_odds"], ref.table["log_odds"], rtol=RTOL)


def test_missing_raise_and_drop(program):
    d = program.copy()
    d.loc[[3, 7, 9], "age"] = np.nan
    with pytest.raises(DataValidationError, match=r"missing values.*missing='drop'") as exc:
        odds_ratios(d, "rearrest", exposure="group", adjust=["age"])
    assert "column 'age': 3 missing" in str(exc.value)
    res = odds_ratios(d, "rearrest", exposure="group", adjust=["age"], missing="drop")
    assert res.n_used == len(d) - 3 and res.n_excluded == 3
    assert any("3 rows with missing values dropped" in n for n in res.notes)
    ref = odds_ratios(d.dropna(subset=["age"]), "rearrest", exposure="group", adjust=["age"])
    assert_allclose(res.table["log_odds"], ref.table["log_odds"], rtol=RTOL)


def test_cluster_cr1_matches_statsmodels(program):
    # statsmodels: Logit(y, X).fit(cov_type="cluster", cov_kwds={"groups": g}) — defaults
    # use_correction=True (factor G/(G-1)*(N-1)/(N-K)) and normal reference
    res = odds_ratios(program, "rearrest", exposure="group", adjust=["age", "risk_level"],
                      cluster="mentor_id", reference={"risk_level": "low"})
    X = pd.DataFrame({
        "const": 1.0, "g": (program.group == "peer_mentoring").astype(float), "age": program.age,
        "high": (program.risk_level == "high").astype(float),
        "moderate": (program.risk_level == "moderate").astype(float),
    })
    groups = pd.factorize(program.mentor_id)[0]
    ref = sm.Logit(program.rearrest.astype(float), X).fit(disp=0, cov_type="cluster", cov_kwds={"groups": groups})
    names = {"group[peer_mentoring]": "g", "age": "age", "risk_level[high]": "high",
             "risk_level[moderate]": "moderate", "Intercept": "const"}
    _compare_to_statsmodels(res, ref, names)
    assert res.n_clusters == 60 and res.cluster_correction == "CR1"
    assert "CR1" in res.method
    # cluster-robust Wald test for the 3-level term (chi-square, 2 df)
    b = ref.params[["high", "moderate"]].to_numpy()
    V = ref.cov_params().loc[["high", "moderate"], ["high", "moderate"]].to_numpy()
    assert_allclose(res.term_tests["statistic"].iloc[0], b @ np.linalg.solve(V, b), rtol=RTOL)


def _cr2_direct(X, y, p, groups):
    """Direct Bell-McCaffrey CR2 for a logistic fit (explicit (I - H_gg)^{-1/2} per cluster)."""
    w = p * (1 - p)
    Xt = X * np.sqrt(w)[:, None]
    e = (y - p) / np.sqrt(w)
    B = np.linalg.inv(Xt.T @ Xt)
    meat = np.zeros((X.shape[1], X.shape[1]))
    for g in np.unique(groups):
        m = groups == g
        H = Xt[m] @ B @ Xt[m].T
        lam, Q = np.linalg.eigh(np.eye(m.sum()) - H)
        A = Q @ np.diag(lam ** -0.5) @ Q.T
        u = Xt[m].T @ A @ e[m]
        meat += np.outer(u, u)
    return B @ meat @ B


def test_cluster_cr2_matches_direct_implementation(program):
    from scipy import stats

    res = odds_ratios(program, "rearrest", exposure="group", adjust=["age"], cluster="mentor_id",
                      cluster_correction="CR2")
    # columns in the table's order: exposure, age, intercept
    X = np.column_stack([(program.group == "peer_mentoring").astype(float), program.age, np.ones(len(program))])
    y = program.rearrest.to_numpy(float)
    fit = sm.Logit(y, X).fit(disp=0)
    V = _cr2_direct(X, y, fit.predict(), program.mentor_id.to_numpy())
    se = np.sqrt(np.diag(V))
    t = res.table.set_index("term").loc[["group[peer_mentoring]", "age", "Intercept"]]
    assert_allclose(t["std_error"], se, rtol=RTOL)
    G = program.mentor_id.nunique()
    q = stats.t.ppf(0.975, G - 1)
    assert_allclose(np.log(t["ci_lower"]), fit.params - q * se, rtol=RTOL)
    assert_allclose(np.log(t["ci_upper"]), fit.params + q * se, rtol=RTOL)
    assert_allclose(t["p_value"], 2 * stats.t.sf(np.abs(fit.params / se), G - 1), rtol=RTOL)
    assert "CR2" in res.method and f"t with {G - 1} df" in res.method


def test_few_clusters_warn(program):
    d = program.assign(site=np.where(program.index % 2 == 0, "A", "B"))
    d["site"] = d["mentor_id"].str[:2]  # 6 clusters M0..M5
    with pytest.warns(SmallSampleWarning, match=r"Only 6 clusters in 'site'.*cluster_correction='CR2'"):
        odds_ratios(d, "rearrest", exposure="group", cluster="site")
    with pytest.warns(SmallSampleWarning, match=r"even CR2"):
        odds_ratios(d, "rearrest", exposure="group", cluster="site", cluster_correction="CR2")


# ---------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------
def test_outcome_not_binary(program):
    d = program.assign(rearrest=program.rearrest * 2)
    with pytest.raises(DataValidationError, match=r"outcome: column 'rearrest' is not binary.*2"):
        odds_ratios(d, "rearrest", exposure="group")
    with pytest.raises(DataValidationError, match=r"not binary.*'yes'"):
        odds_ratios(program.assign(rearrest=np.where(program.rearrest == 1, "yes", "no")), "rearrest",
                    exposure="group")


def test_object_dtype_01_outcome_is_accepted(program):
    a = odds_ratios(program.assign(rearrest=program.rearrest.astype(object)), "rearrest", exposure="group")
    b = odds_ratios(program, "rearrest", exposure="group")
    assert_allclose(a.table["log_odds"], b.table["log_odds"], rtol=RTOL)
    # text '0'/'1': object dtype under pandas 2, the default str dtype under pandas 3
    c = odds_ratios(program.assign(rearrest=program.rearrest.astype(str)), "rearrest", exposure="group")
    assert_allclose(c.table["log_odds"], b.table["log_odds"], rtol=RTOL)


def test_constant_covariate(program):
    with pytest.raises(DataValidationError, match=r"covariate 'const' is constant \(every row has const = 5\)"):
        odds_ratios(program.assign(const=5.0), "rearrest", exposure="group", adjust=["const"])


def test_non_finite_design_values_named(program):
    d = program.assign(dose=np.where(program.index < 5, 0.0, 1.0 + program.age))
    with np.errstate(divide="ignore"), pytest.raises(
        DataValidationError, match=r"design column\(s\) 'np.log\(dose\)' contain infinite"
    ):
        odds_ratios(d, formula="rearrest ~ group + np.log(dose)")


def test_collinear_covariates_named(program):
    d = program.assign(age_months=program.age * 12)
    with pytest.raises(DataValidationError, match=r"perfectly collinear: \{age, age_months\}"):
        odds_ratios(d, "rearrest", exposure="group", adjust=["age", "age_months"])


def test_one_outcome_class(program):
    with pytest.raises(DataValidationError, match=r"column 'rearrest' has only one class.*all 0"):
        odds_ratios(program.assign(rearrest=0), "rearrest", exposure="group")


def test_formula_names_missing_column(program):
    with pytest.raises(InvalidParameterError, match=r"formula: column\(s\) 'agee' not found"):
        odds_ratios(program, formula="rearrest ~ group + agee")
    with pytest.raises(InvalidParameterError, match=r"adjust: column\(s\) 'nope' not found"):
        odds_ratios(program, "rearrest", exposure="group", adjust=["nope"])


def test_exposure_with_one_level(program):
    with pytest.raises(DataValidationError, match=r"exposure: column 'group' has a single value \('comparison'\)"):
        odds_ratios(program[program.group == "comparison"], "rearrest", exposure="group", adjust=["age"])


def test_row_and_cluster_messages_say_what_was_received(program):
    with pytest.raises(DataValidationError, match=r"eligible: column 'eligible' must be boolean.*'yes'.*Convert it"):
        odds_ratios(program.assign(eligible="yes"), "rearrest", exposure="group")
    with pytest.raises(DataValidationError, match=r"no rows left to fit: all 600 rows were excluded \(600 of 600 "
                                                  r"participants excluded as not eligible"):
        odds_ratios(program.assign(eligible=False), "rearrest", exposure="group")
    with pytest.raises(DataValidationError, match=r"cluster: column 'one' has a single cluster \('M'\) among the "
                                                  r"600 rows used.*cluster=None"):
        odds_ratios(program.assign(one="M"), "rearrest", exposure="group", cluster="one")


def test_non_convergence_says_what_to_try(program):
    with pytest.raises(EstimationError, match=r"did not converge after 1 iterations.*method='firth'"):
        odds_ratios(program, "rearrest", exposure="group", adjust=["age"], max_iter=1)


def test_bad_options(program):
    with pytest.raises(InvalidParameterError, match=r"method must be one of 'auto', 'mle', 'firth'; got 'ml'"):
        odds_ratios(program, "rearrest", exposure="group", method="ml")
    with pytest.raises(InvalidParameterError, match=r"cluster_correction must be one of"):
        odds_ratios(program, "rearrest", exposure="group", cluster="mentor_id", cluster_correction="CR3")
    with pytest.raises(InvalidParameterError, match=r"reference: level 'control' of column 'group'"):
        odds_ratios(program, "rearrest", exposure="group", reference={"group": "control"})
    with pytest.raises(InvalidParameterError, match=r"conf_level must be strictly between 0 and 1"):
        odds_ratios(program, "rearrest", exposure="group", conf_level=95)
    with pytest.raises(InvalidParameterError, match=r"needs at least one covariate"):
        odds_ratios(program, "rearrest")


# ---------------------------------------------------------------------------
# display, export, plot
# ---------------------------------------------------------------------------
def test_display_and_export(program):
    res = odds_ratios(program, "rearrest", exposure="group", adjust=["age"])
    html = res._repr_html_()
    assert "<th>Odds ratio</th>" in html and "group[peer_mentoring]" in html
    md = res.to_markdown()
    assert md.splitlines()[0].startswith("| Term | Reference | Odds ratio |")
    d = res.to_dict()
    json.dumps(d)
    assert "_model" not in d and d["result"] == "OddsRatioResult"
    assert [r["term"] for r in d["table"]][0] == "group[peer_mentoring]"
    assert "OddsRatioResult(method=Maximum-likelihood" in repr(res)
    assert list(res.table.columns[:7]) == ["term", "log_odds", "std_error", "estimate", "ci_lower", "ci_upper", "p_value"]
    stripped = res.without_data()
    with pytest.raises(InvalidParameterError, match=r"risk_difference\(\): this result was stripped"):
        stripped.risk_difference()


def test_forest_plot_draws_what_it_says(program):
    import matplotlib

    matplotlib.use("Agg")
    res = odds_ratios(program, "rearrest", exposure="group", adjust=["age", "risk_level"],
                      reference={"risk_level": "low"})
    ax = res.plot()
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 4  # intercept left out
    ticks = ax.get_yticks()
    top = labels[int(np.argmax(ticks))]
    n_pm = int((program.group == "peer_mentoring").sum())
    ev_pm = int(program.loc[program.group == "peer_mentoring", "rearrest"].sum())
    assert top == f"group: peer_mentoring vs comparison (n={n_pm:,}, events={ev_pm:,})"
    # one CI line per term plus the reference line at OR = 1
    ref_lines = [ln for ln in ax.lines if list(ln.get_xdata()) == [1.0, 1.0]]
    assert len(ref_lines) == 1
    ci_lines = [ln for ln in ax.lines if ln not in ref_lines]
    assert len(ci_lines) == 4
    t = res.table.set_index("term")
    top_line = max(ci_lines, key=lambda ln: ln.get_ydata()[0])
    assert_allclose(top_line.get_xdata(), t.loc["group[peer_mentoring]", ["ci_lower", "ci_upper"]].astype(float))
    lo, hi = ax.get_xlim()
    assert lo < t["ci_lower"].drop("Intercept").min() and hi > t["ci_upper"].drop("Intercept").max()
    assert "Odds ratio (95% CI, log scale)" == ax.get_xlabel()
    texts = [tx.get_text() for tx in ax.texts]
    assert any(tx.startswith(f"{t.loc['age', 'estimate']:.2f} (") for tx in texts)
    ax.figure.canvas.draw()
    ticklabels = {tl.get_text() for tl in ax.get_xticklabels() if tl.get_text()}
    assert "1" in ticklabels  # plain numbers on the log axis, not powers of ten
    bare = res.plot(show_counts=False)
    assert bare.get_yticklabels()[0].get_text().endswith("vs comparison")
    assert not any("n=" in tl.get_text() for tl in bare.get_yticklabels())


def test_top_level_lazy_name():
    assert rs.odds_ratios is odds_ratios


def test_odds_ratios_no_warning_on_clean_data(program):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        odds_ratios(program, "rearrest", exposure="group", adjust=["age"])


def test_measure_output_from_data_sample_matches_statsmodels(sample_dir):
    """read_program(data/sample) -> recidivism(365 days) -> odds_ratios, vs statsmodels on
    the same eligible complete cases; risk_level uses the data model's code order (low = reference)."""
    prog = rs.read_program(sample_dir)
    m = rs.recidivism(prog, window_days=365)
    res = odds_ratios(m, "recidivated", exposure="group", adjust=["age", "risk_level"], missing="drop")
    used = m[m["eligible"]].dropna(subset=["recidivated", "age", "risk_level"])
    assert res.n_used == len(used) and res.n_excluded == len(m) - len(used)
    ref = smf.logit(
        "recidivated ~ C(group, Treatment('comparison')) + age + C(risk_level, Treatment('low'))", used
    ).fit(disp=0)
    t = res.table.set_index("term")
    assert t.loc["risk_level[high]", "reference"] == "low"
    assert_allclose(t.loc["group[peer_mentoring]", "log_odds"],
                    ref.params["C(group, Treatment('comparison'))[T.peer_mentoring]"], rtol=RTOL)
    assert_allclose(t.loc["risk_level[high]", "std_error"],
                    ref.bse["C(risk_level, Treatment('low'))[T.high]"], rtol=RTOL)
    assert_allclose(t.loc["age", "p_value"], ref.pvalues["age"], rtol=RTOL)


def test_cr2_with_singleton_clusters_matches_direct(program):
    """Half the participants unmatched (each its own cluster): the vectorised singleton path."""
    d = program.copy()
    d.loc[d.index % 2 == 0, "mentor_id"] = "solo" + d.loc[d.index % 2 == 0, "participant_id"]
    res = odds_ratios(d, "rearrest", exposure="group", adjust=["age"], cluster="mentor_id", cluster_correction="CR2")
    X = np.column_stack([(d.group == "peer_mentoring").astype(float), d.age, np.ones(len(d))])
    y = d.rearrest.to_numpy(float)
    fit = sm.Logit(y, X).fit(disp=0)
    V = _cr2_direct(X, y, fit.predict(), d.mentor_id.to_numpy())
    assert_allclose(res.table["std_error"], np.sqrt(np.diag(V)), rtol=RTOL)
