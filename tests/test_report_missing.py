"""The opt-in report section "Follow-up and missing data": contents, privacy, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recoverystats.datasets import simulate_program
from recoverystats.errors import InvalidParameterError
from recoverystats.io.program import ProgramData
from recoverystats.report import ReportConfig, load_config, quarterly

QUARTER = "2026Q3"
CONFIG = {"sections": {"missing_data": True}, "missing": {"m": 3, "seed": 7}}
MISSING_TABLES = {"missing_followup", "missing_attrition", "missing_attrition_continuous", "missing_cc_mi",
                  "missing_tipping", "missing_tipping_grid"}


def program(n: int = 900, seed: int = 11) -> ProgramData:
    """Simulated program with 15% of prior_incarcerations missing (an adjusted covariate)."""
    sim = simulate_program(n, seed=seed)
    tables = {k: v.copy() for k, v in sim.tables.items()}
    p = tables["participants"]
    rng = np.random.default_rng(seed)
    p.loc[rng.random(len(p)) < 0.15, "prior_incarcerations"] = np.nan
    return ProgramData.from_tables(tables, as_of=sim.as_of)


@pytest.fixture(scope="module")
def report():
    return quarterly(program(), quarter=QUARTER, config=CONFIG)


def test_config_missing_settings():
    cfg = load_config(CONFIG)
    assert cfg.missing_settings() == {"m": 3, "seed": 7, "outcome": "any_use_30d"}
    assert ReportConfig(seed=5).missing_settings()["seed"] == 5  # default: the report's seed
    assert "missing" not in ReportConfig().to_dict()  # results.json unchanged without [missing]
    assert load_config(CONFIG).to_dict()["missing"] == {"m": 3, "seed": 7}
    with pytest.raises(InvalidParameterError, match=r"\[missing.m\] must be a whole number of imputations >= 2"):
        load_config({"missing": {"m": 1}})
    with pytest.raises(InvalidParameterError, match=r"\[missing.seed\] must be a whole number >= 0"):
        load_config({"missing": {"seed": "x"}})
    with pytest.raises(InvalidParameterError, match=r"unknown key 'mm' in \[missing\]"):
        load_config({"missing": {"mm": 3}})


def test_section_contents(report):
    sec = [s for s in report.sections if s.key == "missing_data"]
    assert len(sec) == 1
    keys = [s.key for s in report.sections]
    assert keys.index("missing_data") == keys.index("followup") + 1
    assert MISSING_TABLES <= set(report.tables)
    cc = report.tables["missing_cc_mi"].data
    assert list(cc["analysis"]) == ["complete case", "multiple imputation (m = 3)"] * 2 + [
        "complete case (responders)", "multiple imputation (MAR)"]
    mi = cc[cc["analysis"].str.startswith("multiple")]
    assert (mi["fmi"] > 0).all() and (mi["fmi"] < 1).all()
    # the complete-case rows are the adjusted section's odds ratios of the group
    ors = report.tables["odds_ratios"].data
    first = ors[ors["term"].str.startswith("group")].iloc[0]
    np.testing.assert_allclose(cc["estimate"].iloc[0], first["estimate"], rtol=1e-10)
    text = " ".join(p for b in sec[0].blocks for p in getattr(b, "paragraphs", ()))
    assert "would have to have odds of any substance use in the past 30 days" in text
    fu = report.tables["missing_followup"].data
    assert (fu["target"] == 0.8).all()
    figs = {f.key for f in report.figures}
    assert {"missing_followup", "missing_tipping"} <= figs


def test_counts_are_shared_with_the_followup_section(report):
    a = report.tables["missing_followup"].data.set_index("group")
    b = report.tables["followup"].data.set_index("group")
    np.testing.assert_array_equal(a[["n", "events"]].to_numpy(dtype=float), b[["n", "events"]].to_numpy(dtype=float))
    att = report.tables["missing_attrition"].data
    g = att[(att["variable"] == "group") & (att["level"] != "Total")].set_index("level")
    for lv in g.index:
        assert float(g.loc[lv, "n|Overall"]) == float(b.loc[lv, "n"])
        assert float(g.loc[lv, "n|completers"]) == float(b.loc[lv, "events"])


@pytest.mark.slow
def test_privacy_scan_clean_and_same_seed_same_results(tmp_path, report):
    from recoverystats.privacy import scan

    prog = program()
    out = report.save(tmp_path / "a")  # scanned first, fails closed
    res = scan(out, prog, min_cell=11)
    assert res.ok, res.findings
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    prov = doc["provenance"]
    assert prov["missing_data"]["m"] == 3 and prov["missing_data"]["seed"] == 7
    assert prov["config"]["missing"] == {"m": 3, "seed": 7}
    assert MISSING_TABLES <= set(doc["tables"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Follow-up and missing data" in html and "multiply imputed by chained equations" in html
    again = quarterly(prog, quarter=QUARTER, config=CONFIG).save(tmp_path / "b")
    d2 = json.loads((again / "results.json").read_text(encoding="utf-8"))
    for d in (doc, d2):
        d["report"].pop("generated_at")
    assert json.dumps(doc, sort_keys=True) == json.dumps(d2, sort_keys=True)


@pytest.mark.slow
def test_small_groups_hide_the_estimates():
    """min_cell above the group sizes: the odds ratios and the tipping point are withheld."""
    prog = program(300, seed=5)
    rep = quarterly(prog, quarter=QUARTER, config={**CONFIG, "privacy": {"min_cell": 200}})
    cc = rep.tables["missing_cc_mi"].data
    assert cc["estimate"].isna().all()
    assert "missing_tipping" not in rep.tables
    sec = [s for s in rep.sections if s.key == "missing_data"][0]
    bullets = " ".join(b for blk in sec.blocks for b in getattr(blk, "bullets", ()))
    assert "not shown" in bullets


@pytest.mark.slow
def test_off_by_default_and_methods_bullet_only_when_on(report):
    prog = simulate_program(300, seed=11).program()
    rep = quarterly(prog, quarter=QUARTER)
    assert "missing_data" not in [s.key for s in rep.sections]
    assert not MISSING_TABLES & set(rep.tables)

    def methods_text(r):
        sec = [s for s in r.sections if s.key == "methods"][0]
        return " ".join(b for blk in sec.blocks for b in getattr(blk, "bullets", ()))

    assert "multiply imputed" not in methods_text(rep)
    assert "multiply imputed by chained equations (m = 3 data sets, seed 7" in methods_text(report)
