"""Issue 11 (section 1 items 3-4): the release ledger, the policy threshold and the ``Total`` label.

An attacker holds every release of a program: the 2026Q2 and 2026Q3 reports (cumulative
counts subtract to the quarter's small counts) and a re-run of a quarter on data with one
participant removed (every cell of that person moves by exactly 1). The ledger must make
every such difference 0 or at least ``min_cell`` (or hide one side), and keep the
interval rule for it. A ``min_cell`` below the policy threshold 11 must stamp every page
and sheet "not for release", and the scan must not be passed by lowering ``min_cell``.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoverystats.datasets import simulate_program
from recoverystats.errors import InvalidParameterError, RecoveryStatsWarning
from recoverystats.privacy import POLICY_MIN_CELL, attacker_bounds, scan, suppress
from recoverystats.privacy.intervals import cell_lower_bounds, interval_shortfall
from recoverystats.privacy.suppress import Margins, _add_ledger, build_structure
from recoverystats.report import STAMP, quarterly
from recoverystats.report.model import cell_id, row_key_columns, row_keys

MIN_CELL = 11


# ---------------------------------------------------------------------------------------
# helpers: what an attacker holding two releases computes
# ---------------------------------------------------------------------------------------
def _results(report) -> dict:
    return json.loads(json.dumps(report.to_json_dict(generated_at="2026-10-01T00:00:00+00:00")))


def _write_results(report, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps(report.to_json_dict(generated_at="2026-10-01T00:00:00+00:00")),
                                       encoding="utf-8")
    return path


def _pairs(later: dict, earlier: dict) -> list[tuple[str, float | None, float | None]]:
    """Cells holding the same quantity in two releases: the same cell id, and last quarter's
    key numbers (``last_*``) with the ``this_*`` numbers of last quarter's report."""
    a, b = later["ledger"]["cells"], earlier["ledger"]["cells"]
    same_quarter = later["report"]["quarter"] == earlier["report"]["quarter"]
    out = []
    for k, v in a.items():
        if ":last_" in k and k.startswith("key_numbers:") and not same_quarter:
            if later["provenance"]["previous_quarter"] == earlier["report"]["quarter"]:
                table, row, col = k.split(":")
                row = row.replace(f"@{later['report']['quarter']}", f"@{earlier['report']['quarter']}")
                k2 = f"{table}:{row}:{col.replace('last_', 'this_')}"
                if k2 in b:
                    out.append((k, v, b[k2]))
            continue
        if k in b:
            out.append((k, v, b[k]))
    return out


def _small_differences(later: dict, earlier: dict, min_cell: int = MIN_CELL) -> list[str]:
    return [k for k, x, y in _pairs(later, earlier)
            if x is not None and y is not None and 1 <= abs(x - y) < min_cell]


def _pinned_differences(later_report, earlier: dict, min_cell: int = MIN_CELL) -> list[str]:
    """Small changes since the earlier release whose range a reader can pin (interval rule).

    For every table of the later report: the published cells, the margins, the earlier
    published values as constants and each change as an unknown; the attacker's linear
    programs bound every change whose true value is between 1 and ``min_cell - 1``.
    """
    cells = earlier["ledger"]["cells"]
    pinned = []
    for key, b in later_report.tables.items():
        counts = list(b.privacy.get("count_columns", ()))
        if not counts:
            continue
        keys = list(b.row_keys)
        prev = {}
        for i, k in enumerate(keys):
            for c in counts:
                v = cells.get(cell_id(key, k, c))
                if v is not None and ":last_" not in f":{c}":
                    prev[(i, c)] = v
        if not prev:
            continue
        # true values (the analyst's side): the raw table before suppression, kept by the test
        raw = _RAW[id(later_report)][key]
        m = Margins.coerce(b.privacy.get("margins"))
        vals, A, pub, labels, index = build_structure(raw, counts, m)
        n_table = vals.shape[0]
        vals, A, pub, labels = _add_ledger(vals, A, pub, labels, index, raw, counts, m, [prev])
        unknown = ~pub.copy()
        for (i, c), j in index.items():
            if j < n_table and pub[j] and bool(b.mask.iat[i, b.mask.columns.get_loc(c)]):
                unknown[j] = True
        unknown |= ~np.isfinite(vals)
        change = np.zeros(vals.shape[0], dtype=bool)
        change[n_table:] = ~pub[n_table:]
        targets = np.flatnonzero(change & (vals >= 1) & (vals < min_cell))
        if targets.size == 0:
            continue
        lower = cell_lower_bounds(vals, pub, True)
        lo, hi = attacker_bounds(A, vals, unknown, targets=targets, lower=lower)
        short = interval_shortfall(lo, hi, min_cell, reach=False)
        pinned += [f"{key}: {labels[t]}" for t, s in zip(targets, short, strict=True) if s > 1e-6]
    return pinned


#: raw (unsuppressed) tables of the reports built in this module, for the interval check
_RAW: dict[int, dict[str, pd.DataFrame]] = {}


def _quarterly_keeping_raw(prog, **kw):
    """``quarterly`` that also keeps the raw tables (the analyst's side, never published)."""
    from recoverystats.report import model

    kept: dict[str, pd.DataFrame] = {}
    original = model.TableRegistry.suppress_all

    def keep(self, *a, **k):
        kept.update({key: t.raw.copy() for key, t in self.pending.items()})
        return original(self, *a, **k)

    model.TableRegistry.suppress_all = keep
    try:
        report = quarterly(prog, **kw)
    finally:
        model.TableRegistry.suppress_all = original
    _RAW[id(report)] = kept
    return report


@pytest.fixture(scope="module")
def program():
    return simulate_program(300, seed=11).program()


@pytest.fixture(scope="module")
def releases(program, tmp_path_factory):
    """2026Q2, then 2026Q3 without and with the ledger."""
    root = tmp_path_factory.mktemp("ledger")
    q2 = quarterly(program, quarter="2026Q2")
    q2_dir = _write_results(q2, root / "q2")
    q3_plain = quarterly(program, quarter="2026Q3")
    q3 = _quarterly_keeping_raw(program, quarter="2026Q3", previous=[q2_dir])
    q3_dir = _write_results(q3, root / "q3")
    return {"q2": q2, "q2_dir": q2_dir, "q3_plain": q3_plain, "q3": q3, "q3_dir": q3_dir}


# ---------------------------------------------------------------------------------------
# differencing between quarters
# ---------------------------------------------------------------------------------------
def test_quarter_to_quarter_differences_are_protected_with_previous(releases):
    q2, q3_plain, q3 = _results(releases["q2"]), _results(releases["q3_plain"]), _results(releases["q3"])
    # without the ledger, cumulative cells of Q3 minus Q2 give small counts (the attack works)
    leaks = _small_differences(q3_plain, q2)
    assert len(leaks) >= 10, leaks
    assert any(k.startswith("census_site:") for k in leaks)
    # with the ledger none does, and no cell that was published in both is off by 1-10
    assert _small_differences(q3, q2) == []
    # the ledger is recorded: the earlier release and the cells by stable id
    led = q3["ledger"]
    assert led["previous"][0]["quarter"] == "2026Q2" and led["rereleases"] == []
    assert set(led["cells"]) == set(q3_plain["ledger"]["cells"]) and "census_site:Total:n_total" in led["cells"]
    assert q3_plain["ledger"]["cells"]["census_site:Total:n_total"] == 300.0


def test_scan_finds_differences_with_an_earlier_release(program, releases, tmp_path):
    """privacy.scan(previous=...) fails on Q3 built without the ledger and passes on Q3 built with it."""
    plain_dir = tmp_path / "q3_plain"
    releases["q3_plain"].save(plain_dir)  # its own scan knows no earlier release
    found = scan(plain_dir, program, previous=[releases["q2_dir"]])
    diffs = found.findings[found.findings["kind"] == "release_difference"]
    assert len(diffs) >= 10
    assert diffs["detail"].str.contains("census_site:").any()
    assert not diffs["detail"].str.contains(r"\b\d+ vs \d+\b").any()  # names cells, not values
    with_ledger = tmp_path / "q3"
    releases["q3"].save(with_ledger)  # saved: its own scan checked it against Q2
    assert scan(with_ledger, program, previous=[releases["q2_dir"]]).ok


def test_quarter_to_quarter_changes_keep_the_interval_rule(releases):
    assert _pinned_differences(releases["q3"], _results(releases["q2"])) == []


def test_removing_one_participant_and_rerunning_the_quarter(program, releases, tmp_path):
    p = program.participants
    minus = dataclasses.replace(program, participants=p[p["participant_id"] != p["participant_id"].iloc[5]])
    q3 = _results(releases["q3"])
    plain = _results(quarterly(minus, quarter="2026Q3"))
    moved = [k for k, x, y in _pairs(plain, q3) if x is not None and y is not None and abs(x - y) == 1]
    assert len(moved) >= 10  # the attack: the person's cells move by exactly 1
    with pytest.warns(RecoveryStatsWarning, match="re-release of 2026Q3 on changed data"):
        rerun = quarterly(minus, quarter="2026Q3", previous=[releases["q3_dir"], releases["q2_dir"]])
    again = _results(rerun)
    assert _small_differences(again, q3) == []
    assert _small_differences(again, _results(releases["q2"])) == []
    rr = again["ledger"]["rereleases"]
    assert len(rr) == 1 and rr[0]["quarter"] == "2026Q3" and rr[0]["cells_changed"] >= len(moved)
    assert any("re-release of 2026Q3" in w for w in again["provenance"]["warnings"])


def test_rerun_on_the_same_data_is_not_a_rerelease(program, releases):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RecoveryStatsWarning)
        again = quarterly(program, quarter="2026Q3", previous=[releases["q3_dir"], releases["q2_dir"]])
    assert again.ledger["rereleases"] == []
    # the same data gives the same published cells (nothing is off by 1-10 from itself)
    assert again.ledger["cells"] == _results(releases["q3"])["ledger"]["cells"]


# ---------------------------------------------------------------------------------------
# the suppression engine: earlier values as constants, changes as hidden counts
# ---------------------------------------------------------------------------------------
def test_suppress_previous_protects_a_small_change_with_complements():
    t = pd.DataFrame({"site": ["A", "B", "C", "Total"], "n": [40, 55, 70, 165]})
    margins = {"total_row": {"site": "Total"}}
    assert suppress(t, count_columns="n", margins=margins).n_suppressed == 0
    r = suppress(t, count_columns="n", margins=margins,
                 previous={(0, "n"): 30, (1, "n"): 44, (2, "n"): 60, (3, "n"): 134})
    # A and C changed by 10: both hidden; their sum (110) is published through the total, but
    # each change ranges over 0..20 (A >= 30, C >= 60), so B (changed by 11) stays
    assert r.table["n"].isna().tolist() == [True, False, True, False]
    assert set(r.log["reason"]) == {"ledger"}
    # and with B's change small too, the total's change (31) is not: three cells hidden
    r = suppress(t, count_columns="n", margins=margins,
                 previous={(0, "n"): 30, (1, "n"): 50, (2, "n"): 60, (3, "n"): 134})
    assert r.table["n"].isna().tolist() == [True, True, True, False]
    # a hidden count's change (n - events) is protected as well
    t2 = pd.DataFrame({"g": ["a", "b", "Total"], "n": [100, 200, 300], "e": [40, 50, 90]})
    prev = {(0, "n"): 95, (0, "e"): 40, (1, "n"): 200, (1, "e"): 50, (2, "n"): 295, (2, "e"): 90}
    r2 = suppress(t2, count_columns=["n", "e"], margins={"total_row": {"g": "Total"}, "complements": [("n", "e")]},
                  previous=prev)
    assert r2.mask.loc[0, "n"] and r2.mask.loc[2, "n"]  # 5 more people, all non-events


def test_suppress_previous_rejects_bad_input():
    t = pd.DataFrame({"site": ["A", "Total"], "n": [40, 40]})
    with pytest.raises(InvalidParameterError, match=r"previous: cell \(row 5, column 'n'\) is not a count cell"):
        suppress(t, count_columns="n", previous={(5, "n"): 3})
    with pytest.raises(InvalidParameterError, match="earlier values must be published counts"):
        suppress(t, count_columns="n", previous={(0, "n"): 2.5})


@st.composite
def _two_releases(draw):
    """A site x group table with margins, an earlier and a later (cumulative) version."""
    n_sites = draw(st.integers(2, 4))
    n_groups = draw(st.integers(2, 3))
    base = np.array(draw(st.lists(st.integers(0, 40), min_size=n_sites * n_groups, max_size=n_sites * n_groups)),
                    dtype=float).reshape(n_sites, n_groups)
    grow = np.array(draw(st.lists(st.sampled_from([0, 0, 1, 2, 5, 9, 10, 11, 15, 30]),
                                  min_size=n_sites * n_groups, max_size=n_sites * n_groups)),
                    dtype=float).reshape(n_sites, n_groups)
    return base, base + grow


def _site_table(x: np.ndarray) -> pd.DataFrame:
    sites = [f"s{i}" for i in range(x.shape[0])] + ["Total"]
    full = np.vstack([x, x.sum(axis=0)])
    t = pd.DataFrame(full, columns=[f"g{j}" for j in range(x.shape[1])])
    t["total"] = t.sum(axis=1)
    t.insert(0, "site", sites)
    return t


@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_two_releases())
def test_property_no_small_change_between_releases(tables):
    earlier_x, later_x = tables
    earlier, later = _site_table(earlier_x), _site_table(later_x)
    counts = [c for c in later.columns if c != "site"]
    margins = {"total_row": {"site": "Total"}, "total_columns": {"total": [c for c in counts if c != "total"]}}
    first = suppress(earlier, count_columns=counts, margins=margins)
    published = {(i, c): float(first.table.loc[i, c]) for i in range(len(earlier)) for c in counts
                 if not first.mask.loc[i, c]}
    second = suppress(later, count_columns=counts, margins=margins, previous=published)
    for (i, c), v in published.items():
        if not second.mask.loc[i, c]:
            d = abs(float(second.table.loc[i, c]) - v)
            assert d == 0 or d >= MIN_CELL, (i, c, d)
    # the interval rule for every small change: the attacker's range is at least min_cell - 1 wide
    m = Margins.coerce(margins)
    vals, A, pub, labels, index = build_structure(later, counts, m)
    n_table = vals.shape[0]
    vals, A, pub, labels = _add_ledger(vals, A, pub, labels, index, later, counts, m, [published])
    unknown = ~pub
    for (i, c), j in index.items():
        if j < n_table and second.mask.loc[i, c]:
            unknown[j] = True
    targets = np.flatnonzero(unknown & (np.arange(vals.size) >= n_table) & (vals >= 1) & (vals < MIN_CELL))
    if targets.size:
        lower = np.zeros(vals.size)
        lower[pub & (vals >= 1)] = 1.0
        lo, hi = attacker_bounds(A, vals, unknown, targets=targets, lower=lower)
        assert (interval_shortfall(lo, hi, MIN_CELL, reach=False) <= 1e-6).all(), [labels[t] for t in targets]


@settings(max_examples=2, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(80, 160), sites=st.integers(3, 6), seed=st.integers(0, 50))
def test_property_random_programs_two_quarters(n, sites, seed, tmp_path_factory):
    prog = simulate_program(n, n_sites=sites, n_mentors=8, seed=seed, assessments=False).program()
    q2 = quarterly(prog, quarter="2026Q2")
    d = _write_results(q2, tmp_path_factory.mktemp("prop"))
    q3 = quarterly(prog, quarter="2026Q3", previous=[d])
    assert _small_differences(_results(q3), _results(q2)) == []


# ---------------------------------------------------------------------------------------
# stable cell ids
# ---------------------------------------------------------------------------------------
def test_cell_ids_come_from_row_labels_not_positions():
    a = pd.DataFrame({"site": ["A", "C", "Total"], "days": [90, 90, 90], "n": [20.0, 30.0, 50.0],
                      "estimate": [0.1, 0.2, 0.3]})
    b = pd.DataFrame({"site": ["A", "B:x/y", "C", "Total"], "days": [90, 90, 90, 90], "n": [25.0, 12.0, 31.0, 68.0],
                      "estimate": [0.1, 0.2, 0.3, 0.4]})
    cols = row_key_columns(a, ["n"], ["estimate"])
    assert cols == ["site", "days"]
    ka, kb = row_keys(a, cols), row_keys(b, cols)
    assert cell_id("census", ka[1], "n") == cell_id("census", kb[2], "n") == "census:C/90:n"
    assert kb[1] == "B%3Ax%2Fy/90"  # separators inside labels are escaped
    assert row_keys(pd.DataFrame({"g": ["a", "a"]}), ["g"]) == ["a", "a#2"]


def test_results_json_has_a_cell_id_for_every_count_cell(releases):
    doc = _results(releases["q3"])
    cells = doc["ledger"]["cells"]
    n = 0
    for key, t in doc["tables"].items():
        counts = t["privacy"].get("count_columns", []) if t["privacy"] else []
        assert len(t["row_keys"]) == len(t["rows"])
        for i, row in enumerate(t["rows"]):
            for c in counts:
                cid = cell_id(key, t["row_keys"][i], c)
                assert cells[cid] == row[c]
                n += 1
    assert n == len(cells)


# ---------------------------------------------------------------------------------------
# validating the earlier releases
# ---------------------------------------------------------------------------------------
def test_previous_files_are_checked(program, releases, tmp_path):
    not_json = tmp_path / "a"
    not_json.mkdir()
    (not_json / "results.json").write_text("hello", encoding="utf-8")
    with pytest.raises(InvalidParameterError, match="is not valid JSON"):
        quarterly(program, quarter="2026Q3", previous=[not_json])
    other = tmp_path / "b"
    other.mkdir()
    (other / "results.json").write_text(json.dumps({"result": "RateResult"}), encoding="utf-8")
    with pytest.raises(InvalidParameterError, match="is not a recoverystats results.json"):
        quarterly(program, quarter="2026Q3", previous=[other])
    with pytest.raises(InvalidParameterError, match="folder without results.json"):
        quarterly(program, quarter="2026Q3", previous=[tmp_path])
    with pytest.raises(InvalidParameterError, match="does not exist"):
        quarterly(program, quarter="2026Q3", previous=[tmp_path / "nowhere"])
    doc = json.loads((releases["q2_dir"] / "results.json").read_text(encoding="utf-8"))
    old = dict(doc)
    old.pop("ledger")
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    with pytest.raises(InvalidParameterError, match="has no cell ids"):
        quarterly(program, quarter="2026Q3", previous=[tmp_path / "old.json"])
    doc["report"]["program"] = "Another program"
    (tmp_path / "other_program.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InvalidParameterError, match="is a report of program 'Another program', not 'Riverside'"):
        quarterly(program, quarter="2026Q3", config={"program": "Riverside"}, previous=[tmp_path / "other_program.json"])
    # a later release cannot be an earlier one
    with pytest.raises(InvalidParameterError, match="later than this report"):
        quarterly(program, quarter="2026Q2", previous=[releases["q3_dir"]])


def test_config_previous_is_relative_to_the_config_file(tmp_path, releases):
    from recoverystats.report import load_config

    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    (cfg_dir / "report.toml").write_text('[privacy]\nprevious = ["../q2"]\n', encoding="utf-8")
    assert load_config(cfg_dir / "report.toml").previous == (str(cfg_dir / "../q2"),)
    with pytest.raises(InvalidParameterError, match=r"\[privacy.previous\] must be a list of earlier report folders"):
        load_config({"privacy": {"previous": [3]}})


def test_cli_previous_missing_is_a_usage_error_before_loading(tmp_path, capsys):
    from recoverystats.cli import main

    code = main(["report", str(tmp_path / "no_data"), "--quarter", "2026Q3", "--out", str(tmp_path / "out"),
                 "--previous", str(tmp_path / "nowhere"), "--quiet"])
    assert code == 2
    assert "previous:" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# the policy threshold
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def low_threshold(program, tmp_path_factory):
    out = tmp_path_factory.mktemp("low") / "out"
    report = quarterly(program, quarter="2026Q3", min_cell=5)
    report.save(out)
    return report, out


def test_min_cell_below_policy_stamps_every_page_and_sheet(low_threshold):
    from openpyxl import load_workbook

    report, out = low_threshold
    assert POLICY_MIN_CELL == 11
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["report"]["stamp"] == STAMP
    assert doc["report"]["policy_min_cell"] == 11 and doc["report"]["min_cell"] == 5
    assert "below the policy threshold 11" in doc["report"]["stamp_reason"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f'<div class="stamp" role="alert">{STAMP}</div>' in html
    with zipfile.ZipFile(out / "report.docx") as z:
        headers = [z.read(n).decode() for n in z.namelist() if n.startswith("word/header")]
    assert any(STAMP.upper() in h for h in headers)
    wb = load_workbook(out / "tables.xlsx")
    assert len(wb.worksheets) > 5
    for ws in wb.worksheets:
        assert ws["A1"].value == STAMP.upper(), ws.title
        assert ws.oddHeader.center.text == STAMP, ws.title


def test_min_cell_above_policy_is_not_stamped(program):
    report = quarterly(program, quarter="2026Q3", min_cell=12)
    assert report.stamp == "" and report.stamp_reason is None
    assert _results(report)["report"]["stamp"] is None


def test_scan_checks_an_unstamped_report_at_the_policy_threshold(program, low_threshold, tmp_path):
    import shutil

    _, out = low_threshold
    assert scan(out, program, min_cell=5).ok  # stamped: small counts are declared
    # the same output without the stamp (as the old code wrote it) must fail, whatever min_cell says
    old = tmp_path / "old"
    shutil.copytree(out, old)
    doc = json.loads((old / "results.json").read_text(encoding="utf-8"))
    doc["report"]["stamp"] = None
    (old / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    for mc in (5, 2, None):
        res = scan(old, program, min_cell=mc)
        assert not res.ok
        assert "between 1 and 10" in " ".join(res.findings["detail"])
        assert (res.findings["kind"] == "small_count").sum() > 5


def test_scan_finds_a_promised_stamp_missing_on_a_sheet(program, low_threshold, tmp_path):
    import shutil

    from openpyxl import load_workbook

    _, out = low_threshold
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    wb = load_workbook(bad / "tables.xlsx")
    wb.worksheets[2]["A1"].value = None
    wb.save(bad / "tables.xlsx")
    res = scan(bad, program, min_cell=5)
    assert list(res.findings["kind"]) == ["stamp_missing"]
    assert wb.worksheets[2].title in res.findings["member"].iloc[0]


# ---------------------------------------------------------------------------------------
# a level named Total
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("column, old, new", [("site", "site_a", "Total"), ("group", "comparison", "TOTAL"),
                                              ("gender", "female", "Total"), ("gender", "male", " total ")])
def test_a_level_named_total_does_not_collide_with_the_margin_row(column, old, new):
    prog = simulate_program(150, seed=2).program()
    p = prog.participants.copy()
    p[column] = p[column].astype(object).replace({old: new})
    report = quarterly(dataclasses.replace(prog, participants=p), quarter="2026Q2")
    shown = f"{' '.join(new.split())} ({column})"
    label_col = {"site": "site", "group": "group", "gender": "level"}[column]
    key = {"site": "census_site", "group": "retention", "gender": "table_one"}[column]
    t = report.tables[key].data
    assert (t[label_col] == shown).any()
    # one total row per block, and it is the sum of the other rows
    blocks = t.groupby([c for c in ("days", "variable") if c in t], sort=False) if key != "census_site" else [(0, t)]
    for _, blk in blocks:
        assert (blk[label_col] == "Total").sum() == 1
    if column == "site":
        assert set(t["site"]) == {"Total (site)", "site_b", "site_c", "Total"}
    assert any(f"is shown as {shown!r}" in w for w in report.provenance["warnings"])
