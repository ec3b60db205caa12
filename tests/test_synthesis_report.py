"""The opt-in report sections "Effect by site" and "Effect by subgroup": content and privacy."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from recoverystats.datasets import simulate_program
from recoverystats.report import load_config, quarterly
from recoverystats.report.sections import enabled_sections
from recoverystats.synthesis import meta_analysis

QUARTER = "2026Q3"
COUNTS = ["n", "events", "n_exposed", "events_exposed"]
#: the published (unrounded) pooled numbers are recomputed from the published site rows
RTOL = 1e-6
CONFIG = {"sections": {"sites": True, "subgroups": True, "survival": False, "followup": False, "table_one": False},
          "subgroups": {"modifiers": ["risk_level", "gender"]}}


def test_sections_are_opt_in_and_subgroups_config_is_checked():
    default = {s.key for s in enabled_sections(load_config(None))}
    assert "sites" not in default and "subgroups" not in default
    cfg = load_config(CONFIG)
    assert cfg.subgroup_modifiers == ("risk_level", "gender")
    assert cfg.to_dict()["subgroup_modifiers"] == ["risk_level", "gender"]
    assert "subgroup_modifiers" not in load_config(None).to_dict()  # results.json unchanged when not set
    with pytest.raises(Exception, match="unknown key 'modifier' in \\[subgroups\\]"):
        load_config({"subgroups": {"modifier": ["gender"]}})
    with pytest.raises(Exception, match="must be a list of column names"):
        load_config({"subgroups": {"modifiers": "gender"}})


def test_subgroups_on_without_modifiers_is_an_error_and_few_sites_a_warning():
    from recoverystats.errors import InvalidParameterError

    prog = simulate_program(250, n_sites=2, seed=4).program()
    with pytest.raises(InvalidParameterError, match=r"needs the subgroup columns: add \[subgroups\] modifiers"):
        quarterly(prog, quarter=QUARTER, config={"sections": {"subgroups": True}})
    report = quarterly(prog, quarter=QUARTER, config={"sections": {"sites": True, "survival": False,
                                                                   "followup": False, "table_one": False}})
    assert "sites" not in [s.key for s in report.sections] and "site_effects" not in report.tables
    assert any("needs at least 3" in w for w in report.provenance["warnings"])


@pytest.fixture(scope="module")
def report_and_prog():
    # seed 3: two of the four sites have small cells (suppressed), two are shown
    prog = simulate_program(1100, n_sites=4, seed=3).program()
    return quarterly(prog, quarter=QUARTER, config=CONFIG), prog


@pytest.mark.slow
def test_suppressed_sites_are_not_shown_and_not_pooled(report_and_prog):
    report, _ = report_and_prog
    b = report.tables["site_effects"]
    data, mask = b.data, b.mask
    sites = data[(data["part"] == "site") & (data["site"] != "All sites")].reset_index(drop=True)
    hidden = mask.loc[sites.index, COUNTS].any(axis=1).to_numpy()
    assert hidden.any() and (~hidden).sum() >= 2  # the case this test is about
    # a hidden site shows no estimate, CI or weight
    assert sites.loc[hidden, ["estimate", "ci_lower", "ci_upper", "weight"]].isna().all().all()
    # the pool uses exactly the shown sites: recomputed from the published rows alone
    shown = sites.loc[~hidden]
    z = 1.959963984540054
    se = (np.log(shown["ci_upper"]) - np.log(shown["ci_lower"])) / (2 * z)
    ref = meta_analysis(pd.DataFrame({"site": shown["site"], "b": np.log(shown["estimate"]), "se": se}),
                        estimate="b", std_error="se", label="site")
    pooled = data[data["part"] == "pooled"].iloc[0]
    assert_close = np.testing.assert_allclose
    assert_close([pooled["estimate"], pooled["ci_lower"], pooled["ci_upper"], pooled["i2"]],
                 [ref.estimate, ref.ci_lower, ref.ci_upper, ref.i2], rtol=RTOL)
    assert int(pooled["k_pooled"]) == (~hidden).sum()
    assert_close(shown["weight"].sum(), 1.0, rtol=RTOL)
    assert_close(shown["weight"].to_numpy(), ref.table["weight"].iloc[:-1].to_numpy() / 100, rtol=RTOL)
    # its derived-statistic record names only the shown sites' counts
    derived = b.privacy["derived"]
    rows = {r for d in derived for r, _ in d["inputs"]}
    assert rows == set(np.flatnonzero(~hidden).tolist())
    # every shown site's weight is derived from all pooled sites' counts
    weight_rows = {d["row"] for d in derived if d["column"] == "weight"}
    assert weight_rows == set(np.flatnonzero(~hidden).tolist())
    text = " ".join(p for s in report.sections if s.key == "sites" for blk in s.blocks
                    for p in getattr(blk, "paragraphs", ()) + getattr(blk, "bullets", ()))
    assert f"Pooled over {(~hidden).sum()} sites" in text and "not pooled" in text


@pytest.mark.slow
def test_subgroup_table_and_interaction_suppression(report_and_prog):
    report, _ = report_and_prog
    b = report.tables["subgroup_effects"]
    data, mask = b.data, b.mask
    assert set(data["modifier"]) == {"risk_level", "gender"}
    for mod, blk in data.groupby("modifier", sort=False):
        levels = blk[blk["level"] != "Total"]
        any_hidden = mask.loc[levels.index, COUNTS].any(axis=None)
        p = blk.loc[blk["level"] == "Total", "p_interaction"].iloc[0]
        assert math.isnan(p) == bool(any_hidden), mod  # suppressed with any of the modifier's counts
        for i in levels.index:
            if mask.loc[i, COUNTS].any():
                assert data.loc[i, ["estimate", "ci_lower", "ci_upper", "p_value"]].isna().all()
    text = " ".join(p for s in report.sections if s.key == "subgroups" for blk in s.blocks
                    for p in getattr(blk, "paragraphs", ()))
    assert "exploratory" in text and "subgroup estimates in 2 subgroup variable(s)" in text


@pytest.mark.slow
def test_saved_report_passes_the_privacy_scan_with_methods_bullets(report_and_prog, tmp_path):
    from recoverystats.privacy import scan

    report, prog = report_and_prog
    out = report.save(tmp_path / "q3")
    res = scan(out, prog, min_cell=11)
    assert res.ok, res.findings
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Effect by site: the adjusted odds ratio" in html
    assert "Effect by subgroup: odds ratios within" in html
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {"site_effects", "subgroup_effects"} <= set(doc["tables"])
    assert {f.key for f in report.figures} >= {"site_forest", "subgroup_forest"}
    ids = prog.participants["participant_id"].astype(str)
    assert not any(pid in html for pid in ids.iloc[:50])
