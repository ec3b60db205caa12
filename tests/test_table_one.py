"""table_one(): summaries, SMDs (pooled SD, Yang & Dalton), p-values, missing rows, display."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recoverystats import InvalidParameterError
from recoverystats.datasets import load_uis
from recoverystats.rates import table_one
from recoverystats.rates.table_one import smd_categorical, smd_continuous

#: independent implementations (pandas, numpy, scipy, formulas here) at rtol 1e-6
RTOL_INDEPENDENT = 1e-6


def make() -> pd.DataFrame:
    rng = np.random.default_rng(20261129)
    n = 240
    return pd.DataFrame(
        {
            "group": rng.choice(["peer_mentoring", "standard"], n),
            "age": rng.normal(36, 11, n).round(),
            "risk_level": pd.Categorical(
                rng.choice(["low", "moderate", "high", None], n, p=[0.3, 0.3, 0.3, 0.1]),
                categories=["low", "moderate", "high"],
            ),
            "dual_diagnosis": rng.integers(0, 2, n),
            "employed": pd.array(rng.choice([True, False], n), dtype="boolean"),
            "participant_id": [f"P{i:04d}" for i in range(n)],
        }
    )


def test_counts_percentages_and_continuous_summaries() -> None:
    d = make()
    r = table_one(d, group="group", variables=["age", "risk_level", "dual_diagnosis"])
    t = r.table
    assert r.groups == ("peer_mentoring", "standard")
    n_row = t[t.variable == "n"].iloc[0]
    assert n_row["Overall|n"] == len(d)
    assert n_row["standard|n"] == (d.group == "standard").sum()
    age = t[t.variable == "age"].iloc[0]
    sub = d.loc[d.group == "standard", "age"]
    assert age["standard|mean"] == pytest.approx(sub.mean(), rel=RTOL_INDEPENDENT)
    assert age["standard|sd"] == pytest.approx(sub.std(), rel=RTOL_INDEPENDENT)
    assert age["standard|median"] == pytest.approx(sub.median(), rel=RTOL_INDEPENDENT)
    assert age["standard|q1"] == pytest.approx(sub.quantile(0.25), rel=RTOL_INDEPENDENT)
    assert age["standard|q3"] == pytest.approx(sub.quantile(0.75), rel=RTOL_INDEPENDENT)
    # categorical levels in category order; % of the non-missing rows; a (missing) row
    rl = t[t.variable == "risk_level"]
    assert rl["level"].tolist() == ["low", "moderate", "high", "(missing)"]
    peer = d[d.group == "peer_mentoring"]
    expect = peer["risk_level"].value_counts(normalize=True)["high"] * 100
    assert rl.iloc[2]["peer_mentoring|pct"] == pytest.approx(expect, rel=RTOL_INDEPENDENT)
    assert rl.iloc[3]["peer_mentoring|n"] == peer["risk_level"].isna().sum()
    assert rl.iloc[3]["peer_mentoring|pct"] == pytest.approx(100 * peer["risk_level"].isna().mean())
    # 0/1 columns are binary: one row for the level 1
    dd = t[t.variable == "dual_diagnosis"]
    assert dd["level"].tolist() == ["1"]
    assert dd.iloc[0]["Overall|n"] == d["dual_diagnosis"].sum()
    # nothing in the table is a string except the labels
    numeric = [c for c in t.columns if "|" in c] + ["smd"]
    assert all(pd.api.types.is_float_dtype(t[c]) for c in numeric)


def test_smd_continuous_pooled_sd() -> None:
    d = make()
    t = table_one(d, group="group", variables=["age"]).table
    a = d.loc[d.group == "peer_mentoring", "age"]
    b = d.loc[d.group == "standard", "age"]
    expected = abs(a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2)
    assert t[t.variable == "age"]["smd"].iloc[0] == pytest.approx(expected, rel=RTOL_INDEPENDENT)


def test_smd_binary_and_yang_dalton_categorical() -> None:
    p1, p2 = 0.40, 0.25
    binary = abs(p1 - p2) / np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2)
    assert smd_categorical([1 - p1, p1], [1 - p2, p2]) == pytest.approx(
        binary, rel=RTOL_INDEPENDENT
    )
    # Yang & Dalton (2012), written out: T over levels 2..k, S = (S1 + S2)/2
    q1 = np.array([0.5, 0.3, 0.2])
    q2 = np.array([0.3, 0.3, 0.4])
    t_vec = q1[1:] - q2[1:]
    s = np.zeros((2, 2))
    for q in (q1[1:], q2[1:]):
        for i in range(2):
            for j in range(2):
                s[i, j] += (q[i] * (1 - q[i]) if i == j else -q[i] * q[j]) / 2
    expected = float(np.sqrt(t_vec @ np.linalg.inv(s) @ t_vec))
    assert smd_categorical(q1, q2) == pytest.approx(expected, rel=RTOL_INDEPENDENT)
    # the choice of the omitted level does not matter
    assert smd_categorical(q1[::-1], q2[::-1]) == pytest.approx(expected, rel=RTOL_INDEPENDENT)
    d = make()
    t = table_one(d, group="group", variables=["risk_level", "employed"]).table
    obs = d.dropna(subset=["risk_level"])
    shares = [
        obs.loc[obs.group == g, "risk_level"]
        .value_counts(normalize=True)[["low", "moderate", "high"]]
        .to_numpy()
        for g in ("peer_mentoring", "standard")
    ]
    assert t[t.variable == "risk_level"]["smd"].iloc[0] == pytest.approx(
        smd_categorical(*shares), rel=RTOL_INDEPENDENT
    )
    e = [
        d.loc[d.group == g, "employed"].astype(float).mean() for g in ("peer_mentoring", "standard")
    ]
    exp_e = abs(e[0] - e[1]) / np.sqrt((e[0] * (1 - e[0]) + e[1] * (1 - e[1])) / 2)
    assert t[t.variable == "employed"]["smd"].iloc[0] == pytest.approx(exp_e, rel=RTOL_INDEPENDENT)
    assert t[t.variable == "employed"]["level"].tolist() == ["True"]


def test_three_groups_smd_is_mean_of_pairwise() -> None:
    d = make()
    d["site"] = np.resize(["a", "b", "c"], len(d))
    t = table_one(d, group="site", variables=["age"]).table
    xs = [d.loc[d.site == s, "age"].to_numpy() for s in "abc"]
    pair = [smd_continuous(xs[i], xs[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert t[t.variable == "age"]["smd"].iloc[0] == pytest.approx(
        np.mean(pair), rel=RTOL_INDEPENDENT
    )


def test_pvalues_match_scipy() -> None:
    d = make()
    r = table_one(
        d,
        group="group",
        variables=["age", "risk_level", "dual_diagnosis"],
        pvalues=True,
        nonnormal=None,
    )
    t = r.table
    a = d.loc[d.group == "peer_mentoring", "age"]
    b = d.loc[d.group == "standard", "age"]
    age = t[t.variable == "age"].iloc[0]
    assert age["test"] == "Welch t-test"
    assert age["p_value"] == pytest.approx(
        stats.ttest_ind(a, b, equal_var=False).pvalue, rel=RTOL_INDEPENDENT
    )
    ct = pd.crosstab(d.group, d.risk_level)
    rl = t[t.variable == "risk_level"].iloc[0]
    assert rl["test"] == "Pearson chi-square"
    assert rl["p_value"] == pytest.approx(
        stats.chi2_contingency(ct, correction=False).pvalue, rel=RTOL_INDEPENDENT
    )
    r2 = table_one(d, group="group", variables=["age"], pvalues=True, nonnormal=["age"])
    age2 = r2.table[r2.table.variable == "age"].iloc[0]
    assert age2["test"] == "Kruskal-Wallis"
    assert age2["p_value"] == pytest.approx(stats.kruskal(a, b).pvalue, rel=RTOL_INDEPENDENT)


def test_fisher_for_small_two_by_two() -> None:
    d = pd.DataFrame({"g": ["a"] * 6 + ["b"] * 6, "x": [1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0]})
    t = table_one(d, group="g", pvalues=True).table
    row = t[t.variable == "x"].iloc[0]
    assert row["test"] == "Fisher exact"
    assert row["p_value"] == pytest.approx(
        stats.fisher_exact([[1, 5], [5, 1]]).pvalue, rel=RTOL_INDEPENDENT
    )


def test_default_variables_skip_ids_and_dates_with_note() -> None:
    d = make().assign(enrollment_date=pd.Timestamp("2025-01-01"))
    r = table_one(d, group="group")
    assert "participant_id" not in set(r.table.variable)
    assert "enrollment_date" not in set(r.table.variable)
    assert any("participant_id" in n and "enrollment_date" in n for n in r.notes)


def test_display_table_formats_numbers() -> None:
    d = pd.DataFrame(
        {"g": ["a", "a", "b", "b"], "age": [20.0, 30.0, 40.0, 50.0], "sex": ["f", "m", "f", None]}
    )
    r = table_one(d, group="g", nonnormal=None)
    disp = r.display_table()
    assert list(disp.columns) == ["variable", "level", "Overall", "a", "b", "smd"]
    age_rows = disp.iloc[1:3]
    assert age_rows["level"].tolist() == ["mean (SD)", "median [IQR]"]
    assert age_rows.iloc[0]["a"] == "25.0 (7.1)"
    assert age_rows.iloc[1]["b"] == "45.0 [42.5, 47.5]"
    sex = disp[disp.level == "f"].iloc[0]
    assert sex["b"] == "1 (100.0%)" and sex["variable"] == "sex"
    miss = disp[disp.level == "(missing)"].iloc[0]
    assert miss["b"] == "1 (50.0%)"
    assert "25.0 (7.1)" in r.to_markdown()
    html = r._repr_html_()
    assert "median [IQR]" in html and "Table 1" in html


def test_uis_by_treatment_runs_on_real_data() -> None:
    uis = load_uis()
    r = table_one(
        uis,
        group="TREAT",
        variables=["AGE", "BECK", "IV", "RACE"],
        categorical=["IV"],
        pvalues=True,
    )
    t = r.table
    counts = uis["TREAT"].value_counts()
    assert t[t.variable == "n"][["0|n", "1|n", "Overall|n"]].values.tolist() == [
        [counts[0], counts[1], 575]
    ]
    beck = t[t.variable == "BECK"].iloc[0]
    assert beck["1|mean"] == pytest.approx(
        uis.loc[uis.TREAT == 1, "BECK"].mean(), rel=RTOL_INDEPENDENT
    )
    assert t[t.variable == "IV"]["level"].tolist() == ["1", "2", "3"]
    assert t[t.variable == "RACE"]["level"].tolist() == ["1"]


def test_bad_input_errors() -> None:
    d = make()
    with pytest.raises(InvalidParameterError, match=r"group: column\(s\) 'arm' not found"):
        table_one(d, group="arm")
    with pytest.raises(InvalidParameterError, match=r"variables: column\(s\) 'weight' not found"):
        table_one(d, group="group", variables=["weight"])
    with pytest.raises(InvalidParameterError, match=r"nonnormal: 'risk_level' is categorical"):
        table_one(d, group="group", variables=["risk_level"], nonnormal=["risk_level"])
    with pytest.raises(
        InvalidParameterError, match=r"variables: the group column 'group' cannot also be described"
    ):
        table_one(d, group="group", variables=["group"])
    with pytest.raises(
        InvalidParameterError, match=r"group: column 'group' has no non-missing values"
    ):
        table_one(d.assign(group=None), group="group", variables=["age"])


def test_coded_columns_follow_the_data_model_order() -> None:
    d = pd.DataFrame(
        {
            "g": ["a", "b"] * 4,
            "risk_level": [
                "very_high",
                "low",
                "high",
                "moderate",
                "low",
                "high",
                "moderate",
                "low",
            ],
        }
    )
    t = table_one(d, group="g").table
    assert t[t.variable == "risk_level"]["level"].tolist() == [
        "low",
        "moderate",
        "high",
        "very_high",
    ]


def test_love_plot_draws_smds_and_threshold() -> None:
    d = make()
    r = table_one(d, group="group", variables=["age", "risk_level", "dual_diagnosis"])
    ax = r.plot()
    points = ax.lines[0]
    expected = [
        r.table[r.table.variable == v]["smd"].iloc[0]
        for v in ("age", "risk_level", "dual_diagnosis")
    ]
    np.testing.assert_allclose(points.get_xdata(), expected)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["age", "risk_level", "dual_diagnosis"]
    assert [ln.get_label() for ln in ax.lines][1] == "SMD = 0.1"
    with pytest.raises(
        InvalidParameterError, match=r"result: this Table 1 was made with smd=False"
    ):
        table_one(d, group="group", variables=["age"], smd=False).plot()


def test_empty_group_category_is_shown_and_noted() -> None:
    d = pd.DataFrame(
        {
            "g": pd.Categorical(["a", "a", "b", "b"], categories=["a", "b", "z"]),
            "x": [1.0, 2.0, 3.0, 4.0],
        }
    )
    r = table_one(d, group="g")
    t = r.table
    assert t.loc[t.variable == "n", "z|n"].iloc[0] == 0
    # only the a-b pair contributes: |1.5 - 3.5| / sqrt((0.5 + 0.5)/2)
    assert t.loc[t.variable == "x", "smd"].iloc[0] == pytest.approx(
        2 / np.sqrt(0.5), rel=RTOL_INDEPENDENT
    )
    assert any("No rows in group(s) 'z'" in n for n in r.notes)
