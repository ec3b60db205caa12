"""Statistics derived from suppressed counts (issue 11, section 1 item 1; DESIGN 14 #8).

The enumeration attacker (``privacy.derived``) is checked against a brute-force
enumeration of every completion of tiny tables; the report's rule (a statistic is
suppressed with any count it is computed from) is checked on the issue's reproduction (a
simulated 400-person program with a 5-person site) and by a property test over random
Table-1-like tables; ``privacy.scan`` must fail on a report built with the protection off
and pass on the default one.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoverystats.privacy import PublishedStatistic, audit_derived, derived_bounds, scan, suppress
from recoverystats.privacy.suppress import build_structure
from recoverystats.rates.table_one import smd_categorical
from recoverystats.report import quarterly
from recoverystats.report.build import _table_one_derived

MIN_CELL = 11
QUARTER = "2026Q3"
COUNTS = ("n|Overall", "n|a", "n|b")
MARGINS = {"total_row": {"level": "Total"}, "by": ["variable"], "total_columns": {"n|Overall": ["n|a", "n|b"]}}


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def table_one_like(a: list[int], b: list[int]) -> pd.DataFrame:
    """One categorical variable as the report's Table 1 publishes it (levels, Total, %, SMD)."""
    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    smd = smd_categorical(a_ / a_.sum(), b_ / b_.sum())
    rows = [{"variable": "v", "level": f"l{k}", "smd": smd, "n|Overall": a_[k] + b_[k], "n|a": a_[k], "n|b": b_[k]}
            for k in range(len(a))]
    rows.append({"variable": "v", "level": "Total", "smd": np.nan, "n|Overall": a_.sum() + b_.sum(),
                 "n|a": a_.sum(), "n|b": b_.sum()})
    t = pd.DataFrame(rows)
    for g in ("Overall", "a", "b"):
        t[f"pct|{g}"] = t[f"n|{g}"] / t[f"n|{g}"].iloc[-1]
        t.loc[t.index[-1], f"pct|{g}"] = np.nan
    return t


def brute_force_ranges(t: pd.DataFrame, mask: pd.DataFrame, derived: list[dict], lower_pub: int = 1) -> dict:
    """Every completion of the suppressed cells (the attacker's full search), by direct loops.

    The hidden cells of each group column run over every composition of what the column's
    Total leaves for them; the Overall cells follow (a + b); each candidate is checked
    against every relation and every published statistic.
    """
    values, A, published, _, index = build_structure(t, list(COUNTS), _margins())
    unknown = np.zeros(values.size, dtype=bool)
    for (i, c), j in index.items():
        unknown[j] = bool(mask.iat[i, mask.columns.get_loc(c)])
    nrow = len(t) - 1
    per_col = []
    for c in ("n|a", "n|b"):
        hid = [index[(r, c)] for r in range(nrow) if unknown[index[(r, c)]]]
        left = int(values[index[(nrow, c)]] - sum(values[index[(r, c)]] for r in range(nrow) if not unknown[index[(r, c)]]))
        per_col.append([(hid, combo) for combo in itertools.product(range(lower_pub, left + 1), repeat=len(hid))
                        if sum(combo) == left])
    cells = np.flatnonzero(unknown)
    feasible = []
    for (ha, ca), (hb, cb) in itertools.product(*per_col):
        x = values.copy()
        x[ha] = ca
        x[hb] = cb
        for r in range(nrow):
            j = index[(r, "n|Overall")]
            if unknown[j]:
                x[j] = x[index[(r, "n|a")]] + x[index[(r, "n|b")]]
        if np.abs(A @ x).max() > 1e-9 or (x[cells] < lower_pub).any():
            continue
        ok = True
        for d in derived:
            r, c = d["row"], d["column"]
            if bool(mask.iat[r, mask.columns.get_loc(c)]):
                continue  # a suppressed statistic is no constraint
            ins = np.array([x[index[(int(i), col)]] for i, col in d["inputs"]])
            if d["statistic"] == "smd_categorical":
                G, L = d["params"]["groups"], d["params"]["levels"]
                m = ins.reshape(G, L)
                val = smd_categorical(m[0] / m[0].sum(), m[1] / m[1].sum())
            else:
                w = np.asarray(d.get("params", {}).get("denominator_weights") or [1.0] * (ins.size - 1))
                val = ins[0] / (ins[1:] @ w)
            if abs(val - float(t.at[r, c])) > 1e-9 * max(1.0, abs(val)):
                ok = False
                break
        if ok:
            feasible.append(x[cells].copy())
    f = np.array(feasible)
    return {int(j): (f[:, k].min(), f[:, k].max()) for k, j in enumerate(cells)} if len(f) else {}


def _margins():
    from recoverystats.privacy.suppress import Margins

    return Margins.coerce(MARGINS)


def _derived_for(t: pd.DataFrame) -> list[dict]:
    cat = t.rename(columns={})
    return _table_one_derived(cat, ["Overall", "a", "b"], ["a", "b"])


# ---------------------------------------------------------------------------------------
# the enumeration attacker against brute force
# ---------------------------------------------------------------------------------------
@settings(max_examples=12, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=st.lists(st.integers(1, 9), min_size=2, max_size=3), b=st.lists(st.integers(1, 9), min_size=2, max_size=3),
       hide=st.integers(0, 2))
def test_enumeration_matches_brute_force(a, b, hide):
    L = min(len(a), len(b))
    a, b = a[:L], b[:L]
    t = table_one_like(a, b)
    values, A, published, _, index = build_structure(t, list(COUNTS), _margins())
    # suppress two level cells of each group column (and their Overall), as a reader sees it
    rows = sorted({hide % L, (hide + 1) % L})
    mask = pd.DataFrame(False, index=t.index, columns=t.columns)
    for r in rows:
        for c in ("n|a", "n|b"):
            mask.at[r, c] = True
    derived = _derived_for(t)
    for d in derived:  # the published %s of the hidden rows are hidden too
        if d["statistic"] == "ratio" and d["row"] in rows:
            mask.at[d["row"], d["column"]] = True
    for r in rows:
        mask.at[r, "n|Overall"] = bool(hide % 2) or len(rows) > 1 and r == rows[0]
    unknown = np.zeros(values.size, dtype=bool)
    for (i, c), j in index.items():
        unknown[j] = bool(mask.iat[i, mask.columns.get_loc(c)])
    stats = []
    for d in derived:
        r, c = d["row"], d["column"]
        if mask.at[r, c]:
            continue
        stats.append(PublishedStatistic(d["statistic"], tuple(index[(int(i), col)] for i, col in d["inputs"]),
                                        float(t.at[r, c]), params=d.get("params", {})))
    lower = np.where(unknown, 1.0, 0.0)
    res = derived_bounds(A, np.where(unknown, np.nan, values), unknown, statistics=stats, lower=lower)
    brute = brute_force_ranges(t, mask, derived)
    assert res.exhaustive
    cells = np.flatnonzero(unknown)
    assert brute, "the true table is a completion"
    for k, j in enumerate(cells):
        assert (res.lower[k], res.upper[k]) == brute[int(j)], f"cell {j}"
        assert res.lower[k] <= values[j] <= res.upper[k]


def test_rounded_statistic_constrains_less_than_full_precision():
    # SMD published to 3 decimals admits at least the completions of the full-precision SMD
    t = table_one_like([150, 7, 52], [130, 9, 52])
    values, A, published, _, index = build_structure(t, list(COUNTS), _margins())
    cells = [index[(1, "n|a")], index[(2, "n|a")], index[(1, "n|b")], index[(2, "n|b")],
             index[(1, "n|Overall")], index[(2, "n|Overall")]]
    unknown = np.zeros(values.size, dtype=bool)
    unknown[cells] = True
    ins = tuple(index[(r, c)] for c in ("n|a", "n|b") for r in range(3))
    smd = float(t.at[0, "smd"])
    full = derived_bounds(A, np.where(unknown, np.nan, values), unknown, lower=unknown.astype(float),
                          statistics=[PublishedStatistic("smd_categorical", ins, smd, None, {"groups": 2, "levels": 3})])
    coarse = derived_bounds(A, np.where(unknown, np.nan, values), unknown, lower=unknown.astype(float),
                            statistics=[PublishedStatistic("smd_categorical", ins, round(smd, 3), 3,
                                                           {"groups": 2, "levels": 3})])
    lin_width = 58 - 1  # 7 + 52 = 59 shared by two cells each >= 1
    assert full.exhaustive and coarse.exhaustive
    assert full.n_completions <= coarse.n_completions
    assert (full.upper - full.lower).min() < lin_width  # the SMD narrows the range
    assert np.all(coarse.lower <= full.lower) and np.all(coarse.upper >= full.upper)


def test_enumeration_limit_declares_the_statistic_unsafe():
    t = table_one_like([300, 400, 500, 350], [310, 420, 480, 340])
    values, A, published, _, index = build_structure(t, list(COUNTS), _margins())
    unknown = np.zeros(values.size, dtype=bool)
    for r in range(4):
        for c in ("n|a", "n|b", "n|Overall"):
            unknown[index[(r, c)]] = True
    ins = tuple(index[(r, c)] for c in ("n|a", "n|b") for r in range(4))
    res = derived_bounds(A, np.where(unknown, np.nan, values), unknown, limit=1000,
                         statistics=[PublishedStatistic("smd_categorical", ins, float(t.at[0, "smd"]), None,
                                                        {"groups": 2, "levels": 4})])
    assert not res.exhaustive
    assert "limit" in res.reason
    assert np.isinf(res.upper).all()


# ---------------------------------------------------------------------------------------
# the rule, on random tables: no published statistic narrows a small count below the rule
# ---------------------------------------------------------------------------------------
@settings(max_examples=10, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=st.lists(st.integers(0, 40), min_size=2, max_size=4), b=st.lists(st.integers(0, 40), min_size=2, max_size=4))
def test_with_the_rule_no_statistic_narrows_a_small_count(a, b):
    L = min(len(a), len(b))
    a, b = a[:L], b[:L]
    if sum(a) == 0 or sum(b) == 0:
        return
    t = table_one_like(a, b)
    derived = _derived_for(t)
    cells = {(d["row"], d["column"]): [tuple(x) for x in d["inputs"]] for d in derived}
    r = suppress(t, count_columns=list(COUNTS), margins=MARGINS, derived_cells=cells,
                 dependent_columns={f"pct|{g}": [f"n|{g}"] for g in ("Overall", "a", "b")})
    audit = audit_derived(t, r, derived, limit=200_000)
    assert audit["protected"].all(), audit
    # and every published statistic has all its counts published
    for d in derived:
        if not r.mask.at[d["row"], d["column"]]:
            assert not any(r.mask.at[int(i), c] for i, c in d["inputs"])


def test_without_the_rule_the_smd_pins_a_small_count():
    # the example: hidden levels 9 vs 12 (substance), 2 vs 5 (gender): SMD at full
    # precision and the margins leave a range below the rule
    t = table_one_like([150, 2, 57], [130, 5, 56])
    derived = _derived_for(t)
    off = suppress(t, count_columns=list(COUNTS), margins=MARGINS)
    assert off.mask.at[0, "smd"] == False  # noqa: E712 - published without the rule
    audit = audit_derived(t, off, derived)
    assert not audit["protected"].all()
    on = suppress(t, count_columns=list(COUNTS), margins=MARGINS,
                  derived_cells={(d["row"], d["column"]): [tuple(x) for x in d["inputs"]] for d in derived})
    assert on.mask.loc[:2, "smd"].all()
    assert set(on.log.loc[on.log["column"] == "smd", "reason"]) == {"dependent"}
    assert audit_derived(t, on, derived)["protected"].all()


# ---------------------------------------------------------------------------------------
# the report: the reproduction (400 participants, a site of 5)
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prog400(program_with_small_site):
    return program_with_small_site(400, 5)


@pytest.fixture(scope="module")
def reports400(prog400, tmp_path_factory):
    root = tmp_path_factory.mktemp("derived")
    on = quarterly(prog400, quarter=QUARTER)
    on.save(root / "on")
    off = quarterly(prog400, quarter=QUARTER, _protect_derived=False)
    dataclasses.replace(off, prog=None).save(root / "off")  # unscanned copy for the attacker
    return root / "on", root / "off", off


def _rows(out, key):
    return pd.DataFrame(json.loads((out / "results.json").read_text(encoding="utf-8"))["tables"][key]["rows"])


def test_default_report_publishes_no_smd_or_percent_of_a_suppressed_count(reports400):
    on, _, _ = reports400
    t1 = _rows(on, "table_one")
    groups = [c[2:] for c in t1.columns if c.startswith("n|") and c != "n|Overall"]
    for var, block in t1.groupby("variable", sort=False):
        levels = block[~block["level"].isin(["Total", "(missing)", "(with a value)"])]
        hidden = levels[[f"n|{g}" for g in groups]].isna().to_numpy().any()
        if hidden:
            assert block["smd"].isna().all(), f"{var}: SMD published with a suppressed level count"
        tot = block[block["level"] == "Total"].iloc[0]
        for g in ["Overall", *groups]:
            if pd.isna(tot[f"n|{g}"]):
                assert block[f"pct|{g}"].isna().all()
    # a mean of a group whose n is suppressed is suppressed too
    cont = _rows(on, "table_one_continuous")
    for g in ["Overall", *groups]:
        assert not (cont[f"n|{g}"].isna() & cont[f"mean|{g}"].notna()).any()


def test_protection_off_lets_the_enumeration_narrow_hidden_counts(reports400, prog400):
    _, off, _ = reports400
    t1 = _rows(off, "table_one")
    assert t1.loc[(t1["variable"] == "race") & (t1["level"] != "Total"), "smd"].notna().all()  # the old output
    result = scan(off, prog400)
    kinds = result.findings["kind"].value_counts().to_dict()
    assert kinds.get("derived_statistic", 0) > 0
    narrowed = result.findings[result.findings["detail"].str.contains("narrow suppressed")]
    assert len(narrowed) > 0  # the attacker itself, not only the bookkeeping rule
    assert narrowed["detail"].str.contains("table 'table_one'").all()


def test_scan_passes_on_the_default_report(reports400, prog400):
    on, _, _ = reports400
    result = scan(on, prog400)
    assert result.ok, result.findings.to_string()
    doc = json.loads((on / "results.json").read_text(encoding="utf-8"))
    priv = doc["tables"]["table_one"]["privacy"]
    assert priv["derived_protected"] is True
    kinds = {d["statistic"] for d in priv["derived"]}
    assert {"ratio", "smd_categorical"} <= kinds
    assert all(d["digits"] is None for d in priv["derived"])  # full precision is what the JSON holds


def test_quality_counts_are_records_with_suppressed_totals(reports400):
    on, _, _ = reports400
    doc = json.loads((on / "results.json").read_text(encoding="utf-8"))
    v = doc["tables"]["validation"]
    rows = pd.DataFrame(v["rows"])
    assert "records" in v["headers"]["n_records"].lower()
    assert (rows["rule"] == "Total").any()
    n = pd.to_numeric(rows["n_records"], errors="coerce")
    assert not ((n >= 1) & (n < MIN_CELL)).any()
    html = (on / "report.html").read_text(encoding="utf-8")
    seg = html[html.index("Records affected by validation findings (records, not people):"):][:200]
    for sev in ("info",):
        tot = rows[(rows["rule"] == "Total") & (rows["severity"] == sev)]
        if len(tot) and tot["n_records"].isna().all():
            assert "* with notes" in seg


@settings(max_examples=2, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(120, 260), seed=st.integers(1, 50))
def test_random_programs_publish_no_statistic_of_a_suppressed_count(n, seed, tmp_path_factory,
                                                                    program_with_small_site):
    prog = program_with_small_site(n, seed)
    out = tmp_path_factory.mktemp("rand") / "r"
    quarterly(prog, quarter=QUARTER).save(out)  # the save scans; a finding would raise
    result = scan(out, prog)
    assert not (result.findings["kind"] == "derived_statistic").any()


def test_odds_ratios_of_a_covariate_with_a_small_reference_level_are_suppressed(reports400, prog400):
    from recoverystats import measures as M
    from recoverystats.report import load_config

    on, off_dir, _ = reports400
    cfg = load_config(None)
    d = M.relapse(prog400, window_days=cfg.relapse_window, as_of=pd.Timestamp("2026-09-30"))
    d = d[d["eligible"].astype(bool) & d["relapsed"].notna()]
    d = d[d[list(cfg.adjust)].notna().all(axis=1)]
    ref = d[d["risk_level"].astype("string") == "low"]
    n_ref, e_ref = len(ref), int(ref["relapsed"].astype(float).sum())
    assert any(1 <= v < MIN_CELL for v in (n_ref, e_ref, n_ref - e_ref))  # the fixture's small reference
    label = f"relapse within {cfg.relapse_window} days"
    for out, published in ((on, False), (off_dir, True)):
        t = _rows(out, "odds_ratios")
        rows = t[(t["outcome"] == label) & t["term"].str.startswith("risk_level[")]
        assert len(rows) == 3
        assert rows["estimate"].notna().any() == published
        if not published:
            assert rows[["n", "events", "ci_lower", "ci_upper", "p_value"]].isna().all().all()
