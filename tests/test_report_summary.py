"""The summary and limitations pages, the program identity and the key numbers by group.

The summary and limitations are generated from the published (suppressed) tables: on
simulated programs with a planted large effect, a planted null and a small program where
everything is suppressed, the sentences must match the published numbers (direction,
"statistically clear" / "no clear difference" / "too few participants to tell"), use the
wording the design allows, and show no number that is not a published cell.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from recoverystats.datasets import simulate_program
from recoverystats.errors import DataValidationError, InvalidParameterError
from recoverystats.report import quarterly
from recoverystats.report.config import load_config
from recoverystats.report.sections.summary import clarity, compare_sentence

QUARTER = "2026Q3"
N_EFFECT = 900  # participants of the large-effect and null programs (enough for a clear planted effect)
N_SMALL = 40  # a program so small that every rate, count and model estimate is suppressed
CAUSAL = ("attributed to the program", "caused", "effect of the program", "because of the program")


def _report(n: int, *, seed: int, design: str | None, **effects: float):
    prog = simulate_program(n, seed=seed, **effects).program()
    cfg: dict = {"program": "Riverside Reentry Peer Mentoring"}
    if design is not None:
        cfg["design"] = {"comparison": design}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quarterly(prog, quarter=QUARTER, config=cfg)


@pytest.fixture(scope="module")
def large_randomised():
    return _report(N_EFFECT, seed=5, design="randomised", relapse_mentoring=-1.0)


@pytest.fixture(scope="module")
def large_matched():
    return _report(N_EFFECT, seed=5, design="matched", relapse_mentoring=-1.0)


@pytest.fixture(scope="module")
def null_waitlist():
    return _report(N_EFFECT, seed=5, design="waitlist", relapse_mentoring=0.0, rearrest_mentoring=0.0)


@pytest.fixture(scope="module")
def small():
    return _report(N_SMALL, seed=3, design="waitlist")


def _paragraphs(report, key: str) -> list[str]:
    sec = next(s for s in report.sections if s.key == key)
    return [p for b in sec.blocks for p in getattr(b, "paragraphs", ())]


def _sentence(report, outcome_start: str) -> str:
    hits = [p for p in _paragraphs(report, "summary") if p.casefold().startswith(outcome_start.casefold())
            and "difference" in p]
    assert len(hits) == 1, hits
    return hits[0]


def _rd_row(report, outcome_start: str) -> pd.Series:
    d = report.tables["risk_differences"].data
    return d[d["outcome"].str.casefold().str.startswith(outcome_start.casefold())].iloc[0]


def _published_numbers(report) -> set[str]:
    """Every published cell as the summary may write it: counts, percentages, points."""
    out: set[str] = set()
    for b in report.tables.values():
        for c in b.data.columns:
            for i in range(len(b.data)):
                if bool(b.mask.iat[i, b.mask.columns.get_loc(c)]):
                    continue
                v = b.data.iat[i, b.data.columns.get_loc(c)]
                if v is None or v is pd.NA:
                    continue
                if isinstance(v, str):
                    out.update(re.findall(r"\d+(?:\.\d+)?", v))  # numbers inside labels ("180 days")
                    continue
                v = float(v)
                if np.isnan(v):
                    continue
                if v == int(v):
                    out.add(f"{int(v):,}")
                out.add(f"{100 * v:.1f}")
    return out


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _numbers_in(text: str) -> list[str]:
    text = re.sub(r"\d{4}-\d{2}-\d{2}|\d{4}Q\d", " ", text)  # the cut-off and quarter of the report
    return [m.lstrip("-") for m in _NUMBER.findall(text)]


def _check_numbers_published(report) -> None:
    allowed = {a.lstrip("-") for a in _published_numbers(report)} | {"95", "6"}  # + the CI level, 6-month
    for key in ("summary", "limitations"):
        for p in _paragraphs(report, key):
            for num in _numbers_in(p):
                assert num.rstrip(".%") in allowed, (num, p)


# -- planted large effect -----------------------------------------------------------------
@pytest.mark.slow
def test_large_effect_is_statistically_clear_and_lower(large_randomised):
    row = _rd_row(large_randomised, "relapse")
    assert row["ci_upper"] < 0  # the planted effect is found by the published interval
    s = _sentence(large_randomised, "relapse")
    assert "statistically clearly lower in peer mentoring than in comparison" in s
    assert "a better result" in s  # lower relapse is better
    assert f"{100 * row['estimate']:.1f} percentage points" in s
    assert f"95% CI {100 * row['ci_lower']:.1f} to {100 * row['ci_upper']:.1f}" in s
    assert "attributed to the program" in s  # a randomised design may speak of the program's effect
    _check_numbers_published(large_randomised)


@pytest.mark.slow
def test_observational_design_never_claims_an_effect(large_matched):
    s = _sentence(large_matched, "relapse")
    assert "statistically clearly lower" in s
    assert "associated" in s and "not proof" in s
    assert "attributed to the program" not in s
    lim = " ".join(_paragraphs(large_matched, "limitations"))
    assert "matched to program participants" in lim
    assert "account only for measured characteristics (age, gender, risk level" in lim
    for p in _paragraphs(large_matched, "summary"):
        if "not proof" not in p:
            assert not any(c in p for c in CAUSAL), p


# -- planted null --------------------------------------------------------------------------
@pytest.mark.slow
def test_null_effect_says_no_clear_difference(null_waitlist):
    for outcome in ("relapse", "rearrest"):
        row = _rd_row(null_waitlist, outcome)
        assert row["ci_lower"] < 0 < row["ci_upper"]
        s = _sentence(null_waitlist, outcome)
        assert "no clear difference between peer mentoring and comparison" in s
        assert f"{100 * row['ci_lower']:.1f} to {100 * row['ci_upper']:.1f}" in s
        assert not any(c in s for c in CAUSAL)
    lim = " ".join(_paragraphs(null_waitlist, "limitations"))
    assert "people waiting to join the program (a waitlist)" in lim
    _check_numbers_published(null_waitlist)


@pytest.mark.slow
def test_sentences_match_the_published_targets_and_groups(null_waitlist):
    kb = null_waitlist.tables["key_numbers"]
    d = kb.data
    summary = _paragraphs(null_waitlist, "summary")
    for key, better in (("relapse", "lower"), ("rearrest", "lower"), ("retention_90", "higher")):
        prog = d[(d["key"] == key) & (d["group"] == "peer_mentoring")].iloc[0]
        comp = d[(d["key"] == key) & (d["group"] == "comparison")].iloc[0]
        label = prog["measure"].split(" (")[0]
        assert prog["measure"].endswith(f"({better} is better)")
        line = next(p for p in summary if p.startswith(f"{label}, peer mentoring:"))
        assert f"{100 * prog['this_estimate']:.1f}%" in line
        assert f"comparison group: {100 * comp['this_estimate']:.1f}%" in line
        meets = prog["this_estimate"] <= prog["target"] if better == "lower" else prog["this_estimate"] >= prog["target"]
        assert ("meets the target" if meets else "does not meet the target") in line


# -- small program: everything suppressed ---------------------------------------------------
@pytest.mark.slow
def test_small_program_says_too_few_and_leaks_nothing(small, tmp_path):
    from recoverystats.privacy import scan

    for outcome in ("relapse", "rearrest"):
        s = _sentence(small, outcome)
        assert "too few participants to tell" in s
        assert not re.search(r"\d", s.split(":")[0].replace("180", "").replace("365", ""))
    for p in _paragraphs(small, "summary") + _paragraphs(small, "limitations"):
        assert not re.search(r"(fewer|less|more) than \d|under \d|at most \d|<\s*\d", p), p
    _check_numbers_published(small)
    out = small.save(tmp_path / "small")
    assert scan(out, small.prog).ok


# -- key numbers by group -----------------------------------------------------------------------
@pytest.mark.slow
def test_key_numbers_by_group_targets_on_program_group_only(null_waitlist):
    d = null_waitlist.tables["key_numbers"].data
    rates = d[d["kind"] == "rate"]
    assert "Total" not in set(rates["group"])  # never a pooled rate
    assert set(rates["group"]) == {"peer_mentoring", "comparison"}
    assert rates[rates["group"] == "comparison"]["target"].isna().all()
    prog = rates[rates["group"] == "peer_mentoring"]
    assert prog["target"].notna().all()
    for _, r in prog.iterrows():
        if np.isnan(r["this_estimate"]):
            continue
        better = "lower" if r["key"] in ("relapse", "rearrest") else "higher"
        want = r["this_estimate"] <= r["target"] if better == "lower" else r["this_estimate"] >= r["target"]
        assert r["meets_target"] == float(want)
    # the program group first, the comparison group beside it
    first = rates.groupby("key", sort=False)["group"].first()
    assert (first == "peer_mentoring").all()
    # ledger ids name the group: the same quantity as the outcomes table's group cells
    ids = null_waitlist.ledger["cells"]
    assert any(k.startswith("key_numbers:relapse/") and "/peer_mentoring:this_n" in k for k in ids)


@pytest.mark.slow
def test_relapse_below_target_meets_it():
    # relapse below its target is good: lower is better
    rep = _report(300, seed=11, design=None)
    d = rep.tables["key_numbers"].data
    row = d[(d["key"] == "relapse") & (d["group"] == "peer_mentoring")].iloc[0]
    assert row["this_estimate"] < row["target"] and row["meets_target"] == 1.0


# -- the design wording on its own -------------------------------------------------------------
def test_compare_sentence_rules():
    kw = dict(outcome="relapse within 180 days", group="peer_mentoring", reference="comparison", better="lower",
              conf=0.95)
    assert clarity(-0.2, -0.05) == "clear" and clarity(-0.1, 0.02) == "unclear" and clarity(None, 0.1) == "unknown"
    s = compare_sentence(est=-0.1, lo=-0.2, hi=-0.05, design="historical", **kw)
    assert "statistically clearly lower" in s and "a better result" in s and "associated" in s
    assert "attributed" not in s
    s = compare_sentence(est=0.1, lo=0.05, hi=0.2, design="randomised", **kw)
    assert "statistically clearly higher" in s and "a worse result" in s and "attributed to the program" in s
    s = compare_sentence(est=-0.01, lo=-0.1, hi=0.08, design="randomised", **kw)
    assert "no clear difference" in s and "attributed" not in s
    s = compare_sentence(est=None, lo=None, hi=None, design="randomised", **kw)
    assert "too few participants to tell" in s and not re.search(r"\d", s.replace("180", ""))


# -- program identity and design config ---------------------------------------------------------
def test_design_and_identity_config_are_checked():
    cfg = load_config({"program": {"name": "P", "funder": "F", "grant_number": "G-1"},
                       "design": {"comparison": "historical", "description": "2023 clients"},
                       "groups": {"program": "peer_mentoring"}})
    assert (cfg.program, cfg.funder, cfg.grant_number, cfg.comparison) == ("P", "F", "G-1", "historical")
    assert cfg.design_description == "2023 clients" and cfg.program_groups == ("peer_mentoring",)
    assert load_config({"program": "Top-level name"}).program == "Top-level name"
    with pytest.raises(InvalidParameterError, match=r"\[design.comparison\] must be one of randomised, waitlist, "
                                                    r"matched, other_agency, historical, other; got 'rct'"):
        load_config({"design": {"comparison": "rct"}})
    with pytest.raises(InvalidParameterError, match=r"unknown key 'grant' in \[program\]"):
        load_config({"program": {"grant": "x"}})


def test_program_toml_design_is_checked(tmp_path):
    from recoverystats.io import load_mapping

    m = load_mapping({"program": {"name": "P", "funder": "F"}, "design": {"comparison": "waitlist"}})
    assert m.identity == {"name": "P", "funder": "F"} and m.design == {"comparison": "waitlist"}
    with pytest.raises(DataValidationError) as err:
        load_mapping({"design": {"comparison": "random"}})
    assert "[design] comparison: got 'random'; allowed: randomised, waitlist" in str(err.value)


@pytest.mark.slow
def test_identity_from_program_toml_everywhere(tmp_path):
    import docx
    from openpyxl import load_workbook

    import recoverystats as rs

    sim = simulate_program(300, seed=11)
    sim.write(tmp_path / "data")
    toml = tmp_path / "data" / "program.toml"
    text = toml.read_text(encoding="utf-8")
    text = re.sub(r'name = "[^"]*"', 'name = "Northside Reentry Mentoring"\nfunder = "State Opioid Response"\n'
                  'grant_number = "SOR-2026-014"\nreporting_period = "July to September 2026"\n'
                  'prepared_by = "Evaluation team"', text, count=1)
    toml.write_text(text + '\n[design]\ncomparison = "waitlist"\n', encoding="utf-8")
    prog = rs.read_program(tmp_path / "data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the report config overrides one field (the preparer); the rest comes from program.toml
        rep = quarterly(prog, quarter=QUARTER, config={"program": {"prepared_by": "R. Analyst"}})
    assert rep.program == "Northside Reentry Mentoring" and rep.config.comparison == "waitlist"
    out = rep.save(tmp_path / "report")
    html = (out / "report.html").read_text(encoding="utf-8")
    for s in ("Northside Reentry Mentoring", "Funder: State Opioid Response", "Grant number: SOR-2026-014",
              "Reporting period: July to September 2026", "Prepared by: R. Analyst"):
        assert s in html
    assert "Evaluation team" not in html
    d = docx.Document(str(out / "report.docx"))
    for sec in d.sections:  # every page header carries the identity
        header = " ".join(p.text for p in sec.header.paragraphs)
        assert "Northside Reentry Mentoring" in header and "Grant number: SOR-2026-014" in header
    about = load_workbook(out / "tables.xlsx")["About"]
    cells = {c.value for row in about.iter_rows() for c in row if c.value}
    assert {"Northside Reentry Mentoring", "Funder: State Opioid Response"} <= cells
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["report"]["program"] == "Northside Reentry Mentoring"
    assert doc["report"]["identity"]["funder"] == "State Opioid Response"
    assert doc["report"]["identity"]["prepared_by"] == "R. Analyst"
    lim = " ".join(_paragraphs(rep, "limitations"))
    assert "(a waitlist)" in lim


def test_compare_sentence_verdict_matches_the_interval_property():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    prop = st.floats(min_value=-0.9, max_value=0.9, allow_nan=False)

    @settings(max_examples=200, derandomize=True, deadline=None)
    @given(a=prop, b=prop, design=st.sampled_from(["randomised", "waitlist", "matched", "other_agency",
                                                      "historical", "other", ""]))
    def check(a: float, b: float, design: str) -> None:
        lo, hi = min(a, b), max(a, b)
        est = (lo + hi) / 2
        s = compare_sentence(outcome="relapse", group="peer_mentoring", reference="comparison", est=est, lo=lo,
                             hi=hi, better="lower", design=design, conf=0.95)
        state = clarity(lo, hi)
        assert ("statistically clearly" in s) == (state == "clear")
        assert ("no clear difference" in s) == (state == "unclear")
        assert ("attributed to the program" in s) == (state == "clear" and design == "randomised")
        if state == "clear":
            assert ("lower" in s) == (est < 0) and ("a better result" in s) == (est < 0)
        # every number in the sentence is the published estimate or a bound, as shown
        shown = {f"{100 * v:.1f}" for v in (est, lo, hi)} | {"95"}
        assert set(re.findall(r"-?\d+(?:\.\d+)?", s)) <= shown

    check()
