"""The opt-in "comparison" report section: balance, overlap and weighted effects for a
non-randomised comparison, under the same suppression rules as every table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recoverystats.datasets import simulate_program
from recoverystats.report import ReportConfig, quarterly
from recoverystats.report.sections import enabled_sections

QUARTER = "2026Q3"
TABLES = {"comparison_balance", "comparison_balance_continuous", "comparison_overlap", "comparison_effects"}
MIN_CELL = 11
#: the published numbers are the computed ones (no rounding in .data)
RTOL = 1e-9


def _config(design: str | None, on: bool = True) -> dict:
    cfg: dict = {"sections": {"comparison": on}}
    if design:
        cfg["design"] = {"comparison": design}
    return cfg


@pytest.fixture(scope="module")
def waitlist_report():
    prog = simulate_program(400, seed=5).program()
    return prog, quarterly(prog, quarter=QUARTER, config=_config("waitlist"))


def test_section_is_opt_in():
    assert "comparison" not in {s.key for s in enabled_sections(ReportConfig())}
    on = [s.key for s in enabled_sections(ReportConfig(sections={"comparison": True}))]
    assert on.index("comparison") == on.index("adjusted") + 1


def test_randomised_design_has_no_comparison_section():
    prog = simulate_program(120, seed=2).program()
    rep = quarterly(prog, quarter=QUARTER, config=_config("randomised"))
    assert "comparison" not in [s.key for s in rep.sections]
    assert not TABLES & set(rep.tables)
    methods = [s for s in rep.sections if s.key == "methods"][0]
    text = " ".join(" ".join(getattr(b, "bullets", ()) or ()) for b in methods.blocks)
    assert "propensity score" not in text


@pytest.mark.slow
def test_section_content_and_numbers(waitlist_report):
    prog, rep = waitlist_report
    keys = [s.key for s in rep.sections]
    assert keys.index("comparison") == keys.index("adjusted") + 1
    assert TABLES <= set(rep.tables)
    assert {"love", "overlap"} <= {f.key for f in rep.figures}
    # weighted effect (ATT): the program group's risk is its raw proportion (weight 1)
    eff = rep.tables["comparison_effects"]
    outc = rep.tables["outcomes"].data
    for i, r in eff.data.iterrows():
        assert not eff.mask.iloc[i].any()
        np.testing.assert_allclose(r["risk_T"], r["events|peer_mentoring"] / r["n|peer_mentoring"], rtol=RTOL)
        assert r["rd_lower"] < r["rd"] < r["rd_upper"]
        np.testing.assert_allclose(r["rd"], r["risk_T"] - r["risk_C"], rtol=RTOL)
        # the same eligible sample as the outcomes table
        label = r["outcome"].split(" within")[0].lower()
        o = outc[outc["measure"].str.lower().str.startswith(label)]
        o = o.set_index("group")
        assert int(o.loc["peer_mentoring", "n"]) == int(r["n|peer_mentoring"])
        assert int(o.loc["comparison", "events"]) == int(r["events|comparison"])
    # the adjusted odds ratio is the one of the adjusted section
    ors = rep.tables["odds_ratios"].data
    grp = ors[ors["term"].str.startswith("group[")]
    np.testing.assert_allclose(sorted(eff.data["or_"]), sorted(grp["estimate"]), rtol=RTOL)
    # SMD before weighting of a level, from the published counts (ATT: program group's SD)
    bal = rep.tables["comparison_balance"]
    d = bal.data
    for i in range(len(d)):
        if d.at[i, "level"] == "Total" or bal.mask.iloc[i].any():
            continue
        tot = d[(d["variable"] == d.at[i, "variable"]) & (d["level"] == "Total")].iloc[0]
        p1 = d.at[i, "n|peer_mentoring"] / tot["n|peer_mentoring"]
        p0 = d.at[i, "n|comparison"] / tot["n|comparison"]
        if 0 < p1 < 1:
            np.testing.assert_allclose(d.at[i, "smd_before"], (p1 - p0) / np.sqrt(p1 * (1 - p1)), rtol=1e-9)
            np.testing.assert_allclose(d.at[i, "pct|peer_mentoring"], p1, rtol=RTOL)
    # weighting improves balance: largest |SMD| after < 0.1 and < before
    both = pd.concat([d[["smd_before", "smd_after"]], rep.tables["comparison_balance_continuous"].data[
        ["smd_before", "smd_after"]]]).astype(float).abs()
    assert both["smd_after"].max() < 0.1
    assert both["smd_after"].max() < both["smd_before"].max()
    # E-value in words; methods mention the weighting only now
    sec = [s for s in rep.sections if s.key == "comparison"][0]
    words = " ".join(p for b in sec.blocks for p in (getattr(b, "paragraphs", ()) or ()))
    assert "E-value" in words and "percentage points" in words and "odds ratio" in words
    methods = [s for s in rep.sections if s.key == "methods"][0]
    assert "ATT weights" in " ".join(" ".join(getattr(b, "bullets", ()) or ()) for b in methods.blocks)


@pytest.mark.slow
def test_balance_counts_linked_with_table_one(waitlist_report):
    _, rep = waitlist_report
    t1, bal = rep.tables["table_one"], rep.tables["comparison_balance"]
    seen = 0
    for i, (var, lev) in enumerate(zip(bal.data["variable"], bal.data["level"], strict=True)):
        j = np.flatnonzero(((t1.data["variable"] == var) & (t1.data["level"] == lev)).to_numpy())
        if not len(j):
            continue
        for g in ("peer_mentoring", "comparison"):
            m1 = bool(t1.mask.iat[j[0], t1.mask.columns.get_loc(f"n|{g}")])
            m2 = bool(bal.mask.iat[i, bal.mask.columns.get_loc(f"n|{g}")])
            assert m1 == m2, (var, lev, g)
            if not m1:
                assert float(t1.data.iat[j[0], t1.data.columns.get_loc(f"n|{g}")]) == float(
                    bal.data.iat[i, bal.data.columns.get_loc(f"n|{g}")])
                seen += 1
    assert seen > 10


@pytest.mark.slow
def test_saved_report_passes_the_privacy_scan(waitlist_report, tmp_path):
    from recoverystats.privacy import scan

    prog, rep = waitlist_report
    out = rep.save(tmp_path / "q3")
    res = scan(out, prog, min_cell=MIN_CELL)
    assert res.ok, res.findings
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert TABLES <= set(doc["tables"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Comparison-group balance and weighted effects" in html


def _no_small_published_counts(block) -> int:
    """Number of suppressed count cells; fails if a published count is 1..MIN_CELL-1."""
    cols = block.privacy["count_columns"]
    for c in cols:
        v = pd.to_numeric(block.data[c], errors="coerce").to_numpy(dtype=float)
        shown = ~block.mask[c].to_numpy() & np.isfinite(v)
        assert not ((v[shown] >= 1) & (v[shown] < MIN_CELL)).any(), (block.key, c)
    return int(block.mask[list(cols)].to_numpy().sum())


@pytest.mark.slow
def test_small_site_cells_suppressed_with_their_statistics(tmp_path):
    from recoverystats.privacy import scan

    prog = simulate_program(90, seed=3).program()
    rep = quarterly(prog, quarter=QUARTER, config=_config(None))  # design not stated: shown, and said so
    assert "comparison" in [s.key for s in rep.sections]
    suppressed = sum(_no_small_published_counts(rep.tables[k]) for k in TABLES if k in rep.tables)
    assert suppressed > 0
    bal = rep.tables["comparison_balance"]
    for i in range(len(bal.data)):
        if bal.mask.iloc[i][["n|peer_mentoring", "n|comparison"]].any():
            for c in ("smd_before", "smd_after", "wpct|peer_mentoring", "wpct|comparison"):
                assert pd.isna(bal.data.at[i, c])
    ov = rep.tables["comparison_overlap"]
    for i in range(len(ov.data)):
        if bool(ov.mask.iat[i, ov.mask.columns.get_loc("n|comparison")]):
            assert pd.isna(ov.data.at[i, "n|comparison"])
    sec = [s for s in rep.sections if s.key == "comparison"][0]
    assert "does not state the design" in " ".join(p for b in sec.blocks for p in (getattr(b, "paragraphs", ()) or ()))
    out = rep.save(tmp_path / "small")
    assert scan(out, prog, min_cell=MIN_CELL).ok


@pytest.mark.slow
def test_missing_covariate_values(tmp_path, program_with_small_site):
    """Missing values: "(missing)" is a level of a categorical covariate (linked with Table 1's
    row), a numeric covariate is filled (noted), and the saved report passes the scan."""
    from recoverystats.privacy import scan

    def missing_values(tables):
        p = tables["participants"]
        p["prior_incarcerations"] = p["prior_incarcerations"].astype("Float64")
        p.loc[p.index[10:40], "prior_incarcerations"] = pd.NA
        p.loc[p.index[20:60], "dual_diagnosis"] = pd.NA

    prog = program_with_small_site(360, 5, missing_values)
    cfg = {**_config("historical"), "analysis": {"adjust": ["age", "gender", "risk_level", "prior_incarcerations",
                                                            "dual_diagnosis"]}}
    rep = quarterly(prog, quarter=QUARTER, config=cfg)
    bal = rep.tables["comparison_balance"]
    dd = bal.data[bal.data["variable"] == "dual_diagnosis"]
    assert set(dd["level"]) == {"True", "False", "(missing)", "Total"}
    t1 = rep.tables["table_one"].data
    miss_t1 = t1[(t1["variable"] == "dual_diagnosis") & (t1["level"] == "(missing)")]
    i = dd.index[dd["level"] == "(missing)"][0]
    for g in ("peer_mentoring", "comparison"):
        if not bool(bal.mask.at[i, f"n|{g}"]):
            assert float(bal.data.at[i, f"n|{g}"]) == float(miss_t1[f"n|{g}"].iloc[0])
    sec = [s for s in rep.sections if s.key == "comparison"][0]
    bullets = " ".join(b for blk in sec.blocks for b in (getattr(blk, "bullets", ()) or ()))
    assert "prior_incarcerations were filled with the mean" in bullets
    cont = rep.tables["comparison_balance_continuous"].data.set_index("variable")
    assert np.isfinite(float(cont.loc["prior_incarcerations", "smd_after"]))
    out = rep.save(tmp_path / "miss")
    assert scan(out, prog, min_cell=MIN_CELL).ok
