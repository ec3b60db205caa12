"""Small-cell suppression (primary, complementary, dependent) and the output scan."""

from __future__ import annotations

import itertools
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from recoverystats.errors import InvalidParameterError
from recoverystats.privacy import Margins, scan, suppress
from recoverystats.privacy.suppress import build_structure

MIN_CELL = 11
RANK_TOL = 1e-8  # numerical rank tolerance for the independent recovery checker


# ---------------------------------------------------------------------------------------
# an independent checker: every linear recovery a reader can do
# ---------------------------------------------------------------------------------------
def peel_recover(values: np.ndarray, A: np.ndarray, unknown: np.ndarray) -> dict[int, float]:
    """Repeatedly take any line with exactly one unknown and solve it (total minus visible)."""
    known = ~unknown.copy()
    vals = np.where(known, values, np.nan)
    out: dict[int, float] = {}
    changed = True
    while changed:
        changed = False
        for r in range(A.shape[0]):
            nz = np.flatnonzero(A[r])
            unk = [j for j in nz if not known[j]]
            if len(unk) == 1:
                j = unk[0]
                rest = sum(A[r, k] * vals[k] for k in nz if k != j)
                vals[j] = -rest / A[r, j]
                known[j] = True
                out[j] = vals[j]
                changed = True
    return out


def rank_recoverable(A: np.ndarray, unknown: np.ndarray) -> set[int]:
    """Cell s is determined iff dropping its column lowers the rank of A[:, unknown]."""
    idx = list(np.flatnonzero(unknown))
    if not idx:
        return set()
    full = np.linalg.matrix_rank(A[:, idx], tol=RANK_TOL) if A.shape[0] else 0
    out = set()
    for k, s in enumerate(idx):
        rest = idx[:k] + idx[k + 1:]
        r = np.linalg.matrix_rank(A[:, rest], tol=RANK_TOL) if (rest and A.shape[0]) else 0
        if r < full:
            out.add(s)
    return out


def assert_protected(original: pd.DataFrame, result, counts, margins) -> None:
    """No visible small count; no suppressed or hidden small cell recoverable by any linear combination."""
    pub = result.table
    for c in counts:
        v = pd.to_numeric(pub[c], errors="coerce").to_numpy(dtype=float)
        assert not np.any(np.isfinite(v) & (v >= 1) & (v < MIN_CELL)), f"small count visible in {c}"
    vals, A, published, labels, index = build_structure(original.reset_index(drop=True), counts,
                                                        Margins.coerce(margins))
    unknown = ~published.copy()
    for (i, c), j in index.items():
        if c in pub.columns and result.mask.iat[i, list(pub.columns).index(c)]:
            unknown[j] = True
    # every suppressed published cell and every small hidden cell must be undetermined
    sensitive = {j for j in np.flatnonzero(unknown) if published[j] or 1 <= vals[j] < MIN_CELL}
    assert not (rank_recoverable(A, unknown) & sensitive), "a suppressed cell is linearly recoverable"
    assert not (set(peel_recover(vals, A, unknown)) & sensitive), "recoverable by subtraction"


# ---------------------------------------------------------------------------------------
# suppress
# ---------------------------------------------------------------------------------------
def test_one_dimensional_total_row_suppresses_smallest_complement():
    t = pd.DataFrame({"site": ["A", "B", "C", "Total"], "n": [200, 5, 300, 505]})
    r = suppress(t, count_columns="n", margins={"total_row": {"site": "Total"}})
    assert r.table["n"].isna().tolist() == [True, True, False, False]
    assert r.log.set_index("row")["reason"].to_dict() == {0: "complementary", 1: "primary"}
    assert str(r.table["n"].dtype) == "Int64"
    assert_protected(t, r, ["n"], {"total_row": {"site": "Total"}})


def test_without_margins_only_primary():
    t = pd.DataFrame({"g": ["a", "b"], "n": [3, 40]})
    r = suppress(t, count_columns=["n"])
    assert r.table["n"].isna().tolist() == [True, False]
    assert r.n_suppressed == 1


def test_two_way_table_with_margins_site_of_five():
    # site B has 5 participants (3 + 2): its row, its total and complements must go
    t = pd.DataFrame({
        "site": ["A", "B", "C", "Total"],
        "peer": [100, 3, 150, 253], "comparison": [100, 2, 150, 252], "total": [200, 5, 300, 505],
    })
    m = {"total_row": {"site": "Total"}, "total_columns": {"total": ["peer", "comparison"]}}
    r = suppress(t, count_columns=["peer", "comparison", "total"], margins=m)
    assert r.table.loc[1, ["peer", "comparison", "total"]].isna().all()
    assert_protected(t, r, ["peer", "comparison", "total"], m)
    # the chosen complement is the smallest row (A), not the larger C
    assert r.table.loc[2, ["peer", "comparison", "total"]].notna().all()


def test_line_sum_of_suppressed_cells_is_not_a_small_count():
    # 2 and 3 suppressed together would publish "5" as their sum via the total
    t = pd.DataFrame({"site": ["A", "B", "C", "Total"], "n": [2, 3, 500, 505]})
    r = suppress(t, count_columns="n", margins={"total_row": {"site": "Total"}})
    assert r.table["n"].isna().sum() == 3
    assert r.table.loc[3, "n"] == 505


def test_complement_n_minus_events_and_dependent_estimates():
    t = pd.DataFrame({"group": ["a", "b", "Total"], "n": [50, 60, 110], "events": [45, 20, 65],
                      "estimate": [0.9, 1 / 3, 65 / 110], "ci_lower": [0.8, 0.2, 0.5]})
    m = {"total_row": {"group": "Total"}, "complements": {"n": "events"}}
    r = suppress(t, count_columns=["n", "events"], margins=m,
                 dependent_columns={"estimate": ["n", "events"], "ci_lower": ["n", "events"]})
    # 50 - 45 = 5 non-events: events of a (and then of b) suppressed, with their estimates
    assert r.table["events"].isna().tolist() == [True, True, False]
    assert r.table["estimate"].isna().tolist() == [True, True, False]
    assert r.table["ci_lower"].isna().tolist() == [True, True, False]
    assert set(r.log["reason"]) == {"complementary", "dependent"}
    assert_protected(t, r, ["n", "events"], m)


def test_zero_ok_false_suppresses_zeros():
    t = pd.DataFrame({"g": ["a", "b", "c"], "n": [0, 40, 50]})
    assert suppress(t, count_columns="n").table["n"].isna().sum() == 0
    r = suppress(t, count_columns="n", zero_ok=False)
    assert r.table["n"].isna().tolist() == [True, False, False]
    assert r.log.loc[0, "detail"] == "zero count"


def test_force_links_cells_across_tables():
    t = pd.DataFrame({"q": ["Q1", "Q2"], "n": [40, 50], "pct": [0.4, 0.5]})
    r = suppress(t, count_columns="n", force=[(1, "n")], dependent_columns={"pct": "n"})
    assert r.table["n"].isna().tolist() == [False, True]
    assert r.table["pct"].isna().tolist() == [False, True]
    assert r.log.loc[0, "reason"] == "linked"


def test_by_blocks_have_their_own_totals():
    t = pd.DataFrame({"measure": ["m1"] * 3 + ["m2"] * 3, "g": ["a", "b", "Total"] * 2,
                      "n": [4, 100, 104, 50, 60, 110]})
    m = {"total_row": {"g": "Total"}, "by": ["measure"]}
    r = suppress(t, count_columns="n", margins=m)
    assert r.table["n"].isna().tolist() == [True, True, False, False, False, False]
    assert_protected(t, r, ["n"], m)


def test_min_cell_one_turns_primary_off():
    t = pd.DataFrame({"g": ["a", "b", "Total"], "n": [1, 2, 3]})
    r = suppress(t, count_columns="n", min_cell=1, margins={"total_row": {"g": "Total"}})
    assert r.n_suppressed == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"count_columns": "nope"}, r"count_columns: column\(s\) 'nope' not found"),
        ({"count_columns": []}, "count_columns must name at least one column"),
        ({"count_columns": "n", "min_cell": 0}, r"min_cell must be a whole number >= 1 \(1 turns suppression off\); got 0"),
        ({"count_columns": "n", "min_cell": 2.5}, r"min_cell must be a whole number >= 1 .*got 2.5"),
        ({"count_columns": "pct"}, r"column 'pct' row 0 holds 0.4; counts must be non-negative whole numbers"),
        ({"count_columns": "g"}, r"column 'g' must hold non-negative whole numbers; got dtype"),
        ({"count_columns": "n", "margins": {"totals": 1}}, r"margins: unknown key\(s\) 'totals'"),
        ({"count_columns": "n", "margins": 3}, "margins must be None, a Margins object or a mapping"),
        ({"count_columns": "n", "margins": {"total_columns": {"n": ["x"]}}}, r"margins\['total_columns'\]: 'x' must be listed in count_columns"),
        ({"count_columns": "n", "dependent_columns": {"pct": "x"}}, r"dependent_columns\['pct'\]: 'x' is not one of count_columns"),
        ({"count_columns": "n", "force": [(9, "n")]}, r"force: cell \(row 9, column 'n'\) is not in the table"),
        ({"count_columns": "n", "margins": {"total_row": {"zz": "Total"}}}, r"margins: column\(s\) 'zz' not found"),
    ],
)
def test_parameter_errors(kwargs, match):
    t = pd.DataFrame({"g": ["a", "b"], "n": [40, 50], "pct": [0.4, 0.5]})
    with pytest.raises(InvalidParameterError, match=match):
        suppress(t, **kwargs)


def test_negative_count_rejected():
    with pytest.raises(InvalidParameterError, match=r"column 'n' row 1 holds -3.0"):
        suppress(pd.DataFrame({"n": [4, -3]}), count_columns="n")


def test_two_total_rows_in_a_block_rejected():
    t = pd.DataFrame({"g": ["a", "Total", "Total"], "n": [40, 40, 40]})
    with pytest.raises(InvalidParameterError, match="more than one total row"):
        suppress(t, count_columns="n", margins={"total_row": {"g": "Total"}})


def test_not_a_dataframe():
    with pytest.raises(InvalidParameterError, match="table must be a pandas DataFrame; got list"):
        suppress([1, 2], count_columns="n")


def test_bridge_pattern_is_protected():
    # a 4x4 table whose small cells sit so that "two per line" alone could leave a bridge
    body = np.array([[3, 40, 50, 60], [4, 2, 70, 80], [90, 100, 5, 6], [110, 120, 7, 130]])
    t = pd.DataFrame(body, columns=list("wxyz"))
    t.insert(0, "r", ["a", "b", "c", "d"])
    t["tot"] = body.sum(axis=1)
    tot = {"r": "Total", **{c: int(t[c].sum()) for c in ["w", "x", "y", "z", "tot"]}}
    t = pd.concat([t, pd.DataFrame([tot])], ignore_index=True)
    cols = ["w", "x", "y", "z", "tot"]
    m = {"total_row": {"r": "Total"}, "total_columns": {"tot": ["w", "x", "y", "z"]}}
    r = suppress(t, count_columns=cols, margins=m)
    assert_protected(t, r, cols, m)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=2, max_value=5),
    st.integers(min_value=2, max_value=4),
    st.data(),
)
def test_property_no_small_cell_recoverable_two_way(nr, nc, data):
    cell = st.one_of(st.integers(0, 12), st.integers(11, 400))
    body = np.array([[data.draw(cell) for _ in range(nc)] for _ in range(nr)])
    cols = [f"c{j}" for j in range(nc)]
    t = pd.DataFrame(body, columns=cols)
    t.insert(0, "row", [f"r{i}" for i in range(nr)])
    t["total"] = body.sum(axis=1)
    tot = {"row": "Total", **{c: int(t[c].sum()) for c in [*cols, "total"]}}
    t = pd.concat([t, pd.DataFrame([tot])], ignore_index=True)
    m = {"total_row": {"row": "Total"}, "total_columns": {"total": cols}}
    r = suppress(t, count_columns=[*cols, "total"], margins=m)
    assert_protected(t, r, [*cols, "total"], m)
    # visible cells keep their values
    vis = ~r.mask[cols].to_numpy()
    np.testing.assert_array_equal(r.table[cols].to_numpy(dtype=float)[vis], t[cols].to_numpy(dtype=float)[vis])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(11, 300), st.integers(0, 300)), min_size=2, max_size=5))
def test_property_n_events_complements(rows):
    n = [a + b for a, b in rows]
    e = [b for _, b in rows]
    t = pd.DataFrame({"g": [f"g{i}" for i in range(len(rows))], "n": n, "events": e})
    t = pd.concat([t, pd.DataFrame([{"g": "Total", "n": sum(n), "events": sum(e)}])], ignore_index=True)
    m = {"total_row": {"g": "Total"}, "complements": {"n": "events"}}
    r = suppress(t, count_columns=["n", "events"], margins=m)
    assert_protected(t, r, ["n", "events"], m)


# ---------------------------------------------------------------------------------------
# scan
# ---------------------------------------------------------------------------------------
class _Prog:
    """A minimal stand-in with the ProgramData attributes scan reads."""

    def __init__(self, ids=("P0001", "P0002"), mentors=("M-17",), births=("1980-03-04",), names=None):
        p = {"participant_id": list(ids), "birth_date": pd.to_datetime(list(births) * len(ids))[: len(ids)]}
        if names:
            p["last_name"] = list(names)
        self.participants = pd.DataFrame(p)
        self.mentors = pd.DataFrame({"mentor_id": list(mentors)})
        for t in ("matches", "contacts", "events", "assessments"):
            setattr(self, t, pd.DataFrame())


def _clean_folder(tmp_path):
    (tmp_path / "report.html").write_text(
        "<html><body><p>Participants XP00012 and P00011 (not ids); year 2026; n = 1,234; "
        "estimate 0.1980</p></body></html>", encoding="utf-8")
    (tmp_path / "results.json").write_text(json.dumps({"value": 1980, "tables": {}}), encoding="utf-8")
    return tmp_path


def test_scan_clean_folder_has_no_findings(tmp_path):
    res = scan(_clean_folder(tmp_path), _Prog())
    assert res.ok, res.findings
    assert "report.html" in res.files_scanned


@pytest.mark.parametrize("where", ["html", "svg", "json", "docx", "xlsx", "png", "filename"])
def test_scan_finds_identifier_everywhere(tmp_path, where):
    _clean_folder(tmp_path)
    if where == "html":
        (tmp_path / "x.html").write_text("<td>p0001</td>", encoding="utf-8")
    elif where == "svg":
        (tmp_path / "f.svg").write_text("<svg><text>id:P0001;</text></svg>", encoding="utf-8")
    elif where == "json":
        (tmp_path / "results.json").write_text(json.dumps({"rows": [{"id": "P0001"}]}), encoding="utf-8")
    elif where == "docx":
        import docx

        d = docx.Document()
        p = d.add_paragraph("Seen: ")
        p.add_run("P00")  # split across runs: Word does this
        p.add_run("01")
        d.save(tmp_path / "report.docx")
    elif where == "xlsx":
        from openpyxl import Workbook

        wb = Workbook()
        wb.active.append(["who", "P0001"])
        wb.save(tmp_path / "tables.xlsx")
    elif where == "png":
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        fig = Figure()
        fig.add_subplot().plot([0, 1])
        fig.savefig(tmp_path / "f.png", metadata={"Title": "P0001"})
    elif where == "filename":
        (tmp_path / "P0001.txt").write_text("x", encoding="utf-8")
    res = scan(tmp_path, _Prog())
    assert not res.ok
    assert set(res.findings["kind"]) == {"identifier"}
    assert "P0001" not in " ".join(res.findings["detail"])  # details never echo the identifier


def test_scan_finds_mentor_ids_birth_dates_and_names(tmp_path):
    _clean_folder(tmp_path)
    (tmp_path / "a.html").write_text("mentor M-17 born 03/04/1980 Okonkwo", encoding="utf-8")
    res = scan(tmp_path, _Prog(names=["Okonkwo", "Okonkwo"]))
    assert set(res.findings["kind"]) == {"identifier", "birth_date", "name"}


def test_scan_small_counts_and_recoverable_cells_in_results_json(tmp_path):
    rows = [{"site": "A", "n": None}, {"site": "B", "n": None}, {"site": "C", "n": 300}, {"site": "Total", "n": 505}]
    bad_rows = [{"site": "A", "n": 200}, {"site": "B", "n": None}, {"site": "Total", "n": 505}]
    small = [{"g": "a", "n": 7}]
    priv = {"count_columns": ["n"], "margins": {"total_row": {"site": "Total"}}}
    doc = {"tables": {
        "ok": {"rows": rows, "privacy": priv},
        "recoverable": {"rows": bad_rows, "privacy": priv},
        "small": {"rows": small, "privacy": {"count_columns": ["n"], "margins": None}},
        "complement": {"rows": [{"g": "a", "n": 50, "e": 45}],
                       "privacy": {"count_columns": ["n", "e"], "margins": {"complements": {"n": "e"}}}},
    }}
    (tmp_path / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    res = scan(tmp_path, _Prog())
    details = " | ".join(res.findings["detail"])
    assert "table 'recoverable'" in details and "can be recovered" in details
    assert "table 'small' row 0 column 'n'" in details
    assert "table 'complement'" in details and "'n' minus 'e'" in details
    assert "table 'ok'" not in details
    # min_cell=None skips the small-count checks only for an output stamped "not for release"
    assert not scan(tmp_path, _Prog(), min_cell=None).ok
    doc["report"] = {"stamp": "contains small cells — not for release"}
    (tmp_path / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    assert scan(tmp_path, _Prog(), min_cell=None).ok


@pytest.mark.parametrize(("column", "header"), [("n", "N"), ("n_peer", "peer mentoring")])
def test_scan_small_counts_in_xlsx(tmp_path, column, header):
    from openpyxl import Workbook

    doc = {"tables": {"census": {"sheet": "Census", "rows": [{"g": "a", column: 40}],
                                 "headers": {"g": "Group", column: header},
                                 "privacy": {"count_columns": [column], "margins": None}}}}
    (tmp_path / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    wb = Workbook()
    ws = wb.active
    ws.title = "Census"
    ws.append(["Census by group"])
    ws.append(["Group", header])
    ws.append(["a", 4])
    wb.save(tmp_path / "tables.xlsx")
    res = scan(tmp_path, _Prog())
    assert res.findings["file"].tolist() == ["tables.xlsx"]
    assert f"sheet 'Census' row 3 column '{column}'" in res.findings["detail"].iloc[0]


def test_scan_rules_skip_short_numbers_and_note_them(tmp_path):
    _clean_folder(tmp_path)
    res = scan(tmp_path, _Prog(ids=["12", "2026", "0042", "123456"]))
    assert res.ok
    assert "2 identifier value(s)" in res.notes[0]
    (tmp_path / "b.html").write_text("id 0042 and 123456.", encoding="utf-8")
    res = scan(tmp_path, _Prog(ids=["12", "2026", "0042", "123456"]))
    assert len(res.findings) == 2


def test_scan_bad_folder(tmp_path):
    with pytest.raises(InvalidParameterError, match="out_dir: .* is not a folder"):
        scan(tmp_path / "nope", _Prog())


def test_scan_reads_every_zip_member(tmp_path):
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as zf:
        zf.writestr("a/b.txt", "nothing here")
        zf.writestr("c.xml", "<x>P0002</x>")
    res = scan(tmp_path, _Prog())
    assert res.findings["member"].tolist() == ["c.xml"]
    assert "bundle.zip!a/b.txt" in res.files_scanned


def test_peel_and_rank_checkers_agree_on_a_simple_leak():
    # the checker itself must be able to fail: one suppressed cell in a line is recoverable
    t = pd.DataFrame({"g": ["a", "b", "Total"], "n": [5, 100, 105]})
    vals, A, pub, _, _ = build_structure(t, ["n"], Margins.coerce({"total_row": {"g": "Total"}}))
    unknown = np.array([True, False, False])
    assert rank_recoverable(A, unknown) == {0}
    assert peel_recover(vals, A, unknown) == {0: 5.0}
    assert list(itertools.chain(peel_recover(vals, A, np.array([True, True, False])))) == []


def test_hidden_cells_of_a_mcnemar_table_are_protected():
    # intake yes 40, follow-up yes 45, 3 went yes->no, 8 went no->yes, 60 pairs:
    # yes-yes = 37, no-no = 60 - 40 - 8 = 12; the 3 and 8 discordant cells are small
    t = pd.DataFrame({"g": ["a", "b"], "n_pairs": [60, 100], "intake_yes": [40, 50], "followup_yes": [45, 52],
                      "yes_to_no": [3, 20], "no_to_yes": [8, 22], "p_value": [0.2, 0.9]})
    counts = ["n_pairs", "intake_yes", "followup_yes", "yes_to_no", "no_to_yes"]
    m = {"complements": [("n_pairs", "intake_yes"), ("n_pairs", "followup_yes")],
         "hidden": {"yes_yes": {"intake_yes": 1, "yes_to_no": -1},
                    "no_no": {"n_pairs": 1, "intake_yes": -1, "no_to_yes": -1}},
         "total_columns": {"followup_yes": ["yes_yes", "no_to_yes"]}}
    r = suppress(t, count_columns=counts, margins=m, dependent_columns={"p_value": ["yes_to_no", "no_to_yes"]})
    assert r.table.loc[0, ["yes_to_no", "no_to_yes", "p_value"]].isna().all()
    assert r.table.loc[1].notna().all()
    assert_protected(t, r, counts, m)
    # followup_yes - intake_yes = no_to_yes - yes_to_no is a difference, not a count:
    # the two discordant cells stay undetermined with the margins visible
    assert r.table.loc[0, ["n_pairs", "intake_yes", "followup_yes"]].notna().all()


def test_margins_round_trip_to_dict():
    m = Margins.coerce({"total_row": {"g": "Total"}, "complements": {"n": "e"}, "hidden": {"h": {"n": 1}}})
    assert Margins.coerce(m.to_dict()) == m


def test_scan_ignores_schema_urls_but_not_data(tmp_path):
    # 1999/02/22 is in the RDF namespace URL every SVG metadata block carries
    (tmp_path / "f.svg").write_text('<svg xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"></svg>', encoding="utf-8")
    assert scan(tmp_path, _Prog(births=("1999-02-22",))).ok
    (tmp_path / "g.svg").write_text("<svg><text>born 1999/02/22</text></svg>", encoding="utf-8")
    assert scan(tmp_path, _Prog(births=("1999-02-22",))).findings["kind"].tolist() == ["birth_date"]


# ---------------------------------------------------------------------------------------
# interval (bounds) disclosure
# ---------------------------------------------------------------------------------------
BOUND_TOL = 1e-6  # LP bounds are compared after HiGHS's 1e-7 feasibility tolerance


def interval_ok(lower: float, upper: float, *, published: bool) -> bool:
    """The interval rule, written out independently of ``interval_shortfall``."""
    wide = upper - lower >= MIN_CELL - 1  # at least as wide as the band 1..10
    reaches = upper >= MIN_CELL  # a suppressed mark cannot be told to be a small count
    return wide and (reaches or not published)


def two_way(body: np.ndarray) -> tuple[pd.DataFrame, list[str], dict]:
    """A two-way table with a total column and a total row."""
    nr, nc = body.shape
    cols = [f"c{j}" for j in range(nc)]
    t = pd.DataFrame(body, columns=cols)
    t.insert(0, "row", [f"r{i}" for i in range(nr)])
    t["total"] = body.sum(axis=1)
    tot = {"row": "Total", **{c: int(t[c].sum()) for c in [*cols, "total"]}}
    t = pd.concat([t, pd.DataFrame([tot])], ignore_index=True)
    return t, [*cols, "total"], {"total_row": {"row": "Total"}, "total_columns": {"total": cols}}


class TooManyCompletions(Exception):
    """The brute-force enumeration went over its node budget (the test skips the example)."""


def brute_force_two_way(full: np.ndarray, mask: np.ndarray, *, zero_ok: bool = True,
                        budget: int | None = None) -> dict[tuple[int, int], tuple[int, int]]:
    """Range of every suppressed cell over all integer completions of a two-way table.

    ``full`` is the ``(nr + 1, nc + 1)`` table with its margins (last row and column),
    ``mask`` marks the suppressed cells. Every completion of the unknown inner cells is
    enumerated depth first; a published margin fixes the sum of its inner cells, and the
    last unknown cell of such a line is forced. Margins follow from the inner cells. A
    suppressed cell is at least 1 when zeros are shown and its value is not 0 (the
    reader's knowledge that ``suppress`` models); other cells are at least 0. A cell in no
    published line is searched up to ``cap`` and reported as ``cap`` when it reaches it.
    More than ``budget`` search nodes raise ``TooManyCompletions``.
    """
    nr, nc = full.shape[0] - 1, full.shape[1] - 1
    cap = int(full[nr, nc]) + 5
    low = np.where(mask & zero_ok & (full >= 1), 1, 0)
    lines = [([(i, j) for j in range(nc)], (i, nc)) for i in range(nr)]
    lines += [([(i, j) for i in range(nr)], (nr, j)) for j in range(nc)]
    lines += [([(i, j) for i in range(nr) for j in range(nc)], (nr, nc))]
    lines = [(cells, tot) for cells, tot in lines if not mask[tot]]  # published margins only
    unknown = [(i, j) for i in range(nr) for j in range(nc) if mask[i, j]]
    order = {p: k for k, p in enumerate(unknown)}
    residual = [int(full[tot]) - sum(int(full[p]) for p in cells if not mask[p]) for cells, tot in lines]
    last = [max((order[p] for p in cells if mask[p]), default=-1) for cells, _ in lines]
    of_cell = {p: [k for k, (cells, _) in enumerate(lines) if p in cells] for p in unknown}
    x = np.where(mask, 0, full).astype(int)
    found: dict[tuple[int, int], list[int]] = {}
    nodes = [0]

    def leaf() -> None:
        y = x.copy()
        y[:nr, nc] = y[:nr, :nc].sum(axis=1)
        y[nr, :nc] = y[:nr, :nc].sum(axis=0)
        y[nr, nc] = y[:nr, :nc].sum()
        if np.any(mask & (y < low)):
            return
        for p in zip(*np.nonzero(mask), strict=True):
            seen = found.setdefault((int(p[0]), int(p[1])), [int(y[p]), int(y[p])])
            seen[0], seen[1] = min(seen[0], int(y[p])), max(seen[1], int(y[p]))

    def dfs(k: int) -> None:
        nodes[0] += 1
        if budget is not None and nodes[0] > budget:
            raise TooManyCompletions
        if k == len(unknown):
            leaf()
            return
        p = unknown[k]
        mine = of_cell[p]
        forced = {residual[q] for q in mine if last[q] == k}
        if len(forced) > 1:
            return
        if forced:
            choices = [v for v in forced if v >= low[p]]
        else:
            top = min([residual[q] for q in mine], default=cap)
            choices = range(int(low[p]), min(top, cap) + 1)
        for v in choices:
            x[p] = v
            for q in mine:
                residual[q] -= v
            if all(residual[q] >= 0 for q in mine):
                dfs(k + 1)
            for q in mine:
                residual[q] += v

    if all(r == 0 for r, lst in zip(residual, last, strict=True) if lst < 0):
        dfs(0)
    return {p: (lo, min(hi, cap)) for p, (lo, hi) in found.items()}


def audit_two_way(t: pd.DataFrame, r, cols: list[str], *, integer: bool = True) -> dict[tuple[int, int], tuple]:
    from recoverystats.privacy import audit_intervals

    a = audit_intervals(t, r, integer=integer).table
    pos = {c: j for j, c in enumerate(cols)}
    return {(int(row.row), pos[row.column]): (row.lower, row.upper, bool(row.sensitive), bool(row.protected))
            for row in a.itertuples()}


def test_interval_pinned_one_way_cells_are_protected():
    # four exclusions of 3 add up to 12: no line adds to a small count and no cell can be
    # recovered exactly (4 unknowns, 1 relation), but every one is >= 1 (zeros are shown),
    # so each is at most 12 - 3 = 9: a reader knows all four are small counts
    from recoverystats.privacy import audit_intervals

    t = pd.DataFrame({"reason": ["a", "b", "c", "d", "e", "Total"], "n": [3, 3, 3, 3, 500, 512]})
    m = {"total_row": {"reason": "Total"}}
    off = suppress(t, count_columns="n", margins=m, interval_protection=False)
    assert off.table["n"].isna().tolist() == [True, True, True, True, False, False]
    audit = audit_intervals(t, off)
    assert audit.n_pinned == 4
    np.testing.assert_allclose(audit.table[["lower", "upper"]].to_numpy(), [[1, 9]] * 4, atol=BOUND_TOL)
    assert not audit.ok
    on = suppress(t, count_columns="n", margins=m)
    assert on.table["n"].isna().tolist() == [True, True, True, True, True, False]
    assert on.log.set_index("row").loc[4, "reason"] == "interval"
    assert "widens the range" in on.log.set_index("row").loc[4, "detail"]
    after = audit_intervals(t, on)
    assert after.ok and after.n_sensitive == 4
    np.testing.assert_allclose(after.table["upper"].iloc[:4], 512 - 4, atol=BOUND_TOL)  # the 4 others >= 1
    assert_protected(t, on, ["n"], m)


def test_interval_pinned_two_way_cell_matches_brute_force():
    # exact recovery is impossible, yet r0/c1 (10) lies in [7, 11]: r0 gives c1 + c2 = 12,
    # and column c2 adds to 12 with r1/c2 = 19 - r1/c0 >= 6 (r2/c0 = 14 - r1/c0 >= 1), so
    # r0/c2 <= 12 - 6 - 1 = 5 and r0/c1 >= 7; likewise r1/c2 (8) lies in [6, 10]
    body = np.array([[25, 10, 2], [11, 42, 8], [3, 24, 2]])
    t, cols, m = two_way(body)
    off = suppress(t, count_columns=cols, margins=m, interval_protection=False)
    assert_protected(t, off, cols, m)  # no exact recovery
    got = audit_two_way(t, off, cols)
    assert got[(0, 1)][:2] == (7.0, 11.0) and got[(1, 2)][:2] == (6.0, 10.0)
    assert not got[(0, 1)][3] and not got[(1, 2)][3]
    mask = off.mask[cols].to_numpy()
    full = t[cols].to_numpy()
    brute = brute_force_two_way(full, mask)
    assert brute[(0, 1)] == (7, 11) and brute[(1, 2)] == (6, 10)
    assert {p: v[:2] for p, v in got.items()} == {p: (float(a), float(b)) for p, (a, b) in brute.items()}
    # with the protection on, every small cell's brute-force range passes the rule
    on = suppress(t, count_columns=cols, margins=m)
    assert (on.log["reason"] == "interval").sum() >= 1
    assert_protected(t, on, cols, m)
    brute_on = brute_force_two_way(full, on.mask[cols].to_numpy())
    for (i, j), (lo, hi) in brute_on.items():
        if 1 <= full[i, j] < MIN_CELL:
            assert interval_ok(lo, hi, published=True), ((i, j), lo, hi)


BRUTE_FORCE_BUDGET = 60_000  # search nodes (a fraction of a second); bigger examples are skipped


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.integers(min_value=2, max_value=3), st.integers(min_value=2, max_value=3), st.booleans(),
       st.booleans(), st.data())
def test_property_attacker_bounds_match_brute_force_two_way(nr, nc, protect, zero_ok, data):
    cell = st.one_of(st.integers(0, 10), st.integers(11, 20))
    body = np.array([[data.draw(cell) for _ in range(nc)] for _ in range(nr)])
    t, cols, m = two_way(body)
    r = suppress(t, count_columns=cols, margins=m, interval_protection=protect, zero_ok=zero_ok)
    full = t[cols].to_numpy()
    try:
        brute = brute_force_two_way(full, r.mask[cols].to_numpy(), zero_ok=zero_ok, budget=BRUTE_FORCE_BUDGET)
    except TooManyCompletions:
        assume(False)
    cap = int(full[-1, -1]) + 5
    got = audit_two_way(t, r, cols)
    lp = audit_two_way(t, r, cols, integer=False)
    assert set(got) == set(brute)
    for p, (lo, hi) in brute.items():
        a_lo, a_hi, sensitive, protected = got[p]
        assert a_lo == lo, (p, a_lo, lo)
        assert (a_hi == hi) if hi < cap else (a_hi >= cap), (p, a_hi, hi)
        # a two-way table with margins is totally unimodular: the LP optimum is a whole number
        np.testing.assert_allclose(lp[p][0], a_lo, atol=BOUND_TOL)
        if np.isfinite(a_hi):
            np.testing.assert_allclose(lp[p][1], a_hi, atol=BOUND_TOL)
        assert sensitive == bool(1 <= full[p] < MIN_CELL or (full[p] == 0 and not zero_ok))
        assert protected == (not sensitive or interval_ok(lo, hi if hi < cap else np.inf, published=True))
        if protect and sensitive:
            assert protected, (p, lo, hi)


def test_interval_protection_off_leaves_the_pinned_cell():
    # the check can fail: without the protection the pinned cells stay pinned, the
    # exact-recovery checks still pass, and the independent rule flags the ranges
    body = np.array([[25, 10, 2], [11, 42, 8], [3, 24, 2]])
    t, cols, m = two_way(body)
    off = suppress(t, count_columns=cols, margins=m, interval_protection=False)
    brute = brute_force_two_way(t[cols].to_numpy(), off.mask[cols].to_numpy())
    assert not interval_ok(*brute[(0, 1)], published=True)
    assert "interval" not in set(off.log["reason"])
    assert off.interval_protection is False and off.zero_ok is True


def test_attacker_bounds_integer_program_narrows_a_fractional_range():
    # 2x + 3y = 13 over non-negative cells: the LP allows x in [0, 6.5]; whole numbers
    # only (5, 1) and (2, 3), so x in [2, 5] and y in [1, 3]
    from recoverystats.privacy import attacker_bounds

    A = np.array([[2.0, 3.0, -1.0]])
    values = np.array([2.0, 3.0, 13.0])
    unknown = np.array([True, True, False])
    lo, hi = attacker_bounds(A, values, unknown, integer=False)
    np.testing.assert_allclose(lo, [0, 0], atol=BOUND_TOL)
    np.testing.assert_allclose(hi, [6.5, 13 / 3], atol=BOUND_TOL)
    lo, hi = attacker_bounds(A, values, unknown)
    brute = [(x, y) for x in range(14) for y in range(14) if 2 * x + 3 * y == 13]
    assert (lo.tolist(), hi.tolist()) == ([min(x for x, _ in brute), min(y for _, y in brute)],
                                          [max(x for x, _ in brute), max(y for _, y in brute)])


def test_attacker_bounds_unbounded_free_and_errors():
    from recoverystats.privacy import attacker_bounds

    # x + y = z with z suppressed too: nothing bounds x from above; a cell in no relation
    A = np.array([[1.0, 1.0, -1.0, 0.0]])
    values = np.array([3.0, 4.0, 7.0, 5.0])
    lo, hi = attacker_bounds(A, values, np.array([True, True, True, True]), lower=np.array([1, 1, 1, 1]))
    assert lo.tolist() == [1, 1, 2, 1] and np.isinf(hi).all()
    with pytest.raises(InvalidParameterError, match="targets: cell 2 is published"):
        attacker_bounds(A, values, np.array([True, True, False, False]), targets=[2])
    # a total that does not add up is not a relation anybody can use: dropped
    lo, hi = attacker_bounds(A, np.array([3.0, 4.0, 9.0, 5.0]), np.array([True, False, False, False]))
    assert lo.tolist() == [0] and np.isinf(hi).all()
    # published cells that leave no non-negative table
    B = np.array([[1.0, 1.0, -1.0], [1.0, 0.0, -1.0]])
    with pytest.raises(InvalidParameterError, match="admit no table with non-negative counts"):
        attacker_bounds(B, np.array([np.nan, 5.0, 2.0]), np.array([True, False, False]))


def test_interval_hidden_counts_need_width_not_reach():
    # a group of exactly 11 with 5 events: events (suppressed) is in [1, 11], so the hidden
    # non-events (6) are in [0, 10]: as wide as the band, and hidden counts carry no mark
    from recoverystats.privacy import audit_intervals

    t = pd.DataFrame({"g": ["a", "b", "Total"], "n": [11, 40, 51], "events": [5, 30, 35]})
    m = {"total_row": {"g": "Total"}, "complements": {"n": "events"}}
    r = suppress(t, count_columns=["n", "events"], margins=m)
    a = audit_intervals(t, r).table
    hid = a[a["kind"] == "hidden"].set_index("row")
    assert hid.loc[0, "sensitive"] and hid.loc[0, "protected"]
    np.testing.assert_allclose(hid.loc[0, ["lower", "upper"]].astype(float), [0, 10], atol=BOUND_TOL)
    assert r.table["n"].notna().all()  # n = 11 stays published


def test_interval_protection_parameter_errors():
    t = pd.DataFrame({"g": ["a", "b"], "n": [40, 50]})
    with pytest.raises(InvalidParameterError, match="interval_protection must be True or False; got 'yes'"):
        suppress(t, count_columns="n", interval_protection="yes")
    from recoverystats.privacy import audit_intervals

    r = suppress(t, count_columns="n")
    with pytest.raises(InvalidParameterError, match="table has 1 rows but the suppression result has 2"):
        audit_intervals(t.iloc[:1], r)


def test_interval_protection_that_cannot_be_met_raises_and_the_audit_renders():
    # the only cells that could widen the ranges are exempt: say so instead of publishing
    t = pd.DataFrame({"reason": ["a", "b", "c", "d", "e", "Total"], "n": [3, 3, 3, 3, 500, 512]})
    m = {"total_row": {"reason": "Total"}}
    with pytest.raises(InvalidParameterError, match="against interval disclosure: every other cell is already"):
        suppress(t, count_columns="n", margins=m, exempt_rows=[4, 5])
    from recoverystats.privacy import audit_intervals

    audit = audit_intervals(t, suppress(t, count_columns="n", margins=m, interval_protection=False))
    assert "pinned=4" in repr(audit)
    assert "4 of 4 sensitive cells pinned" in audit._repr_html_()
    d = audit.to_dict()
    assert d["n_pinned"] == 4 and d["table"][0]["upper"] == 9.0
    assert audit.to_markdown().splitlines()[0].startswith("| Row | Column | Kind | Sensitive | Lower | Upper")


def test_identifier_index_follows_identifier_tokens():
    """The scan's Arrow index of IDs gives the same matches, substring IDs and skipped count as
    identifier_tokens on every kind of ID column (text, categorical, numbers, odd characters)."""
    from recoverystats.privacy.scan import _IdentifierIndex, identifier_tokens

    text = pd.Series([f"P{i:07d}" for i in range(2_000)] + ["ab", "A1", "12345", "012", "x y 1234", "  Q-77-ab  "])
    cat = pd.Series(["M000123", "zz9", None], dtype="category").cat.add_categories(["UNUSED99"])
    num = pd.Series([123456789, 42, 7_000_001], dtype="Int64")
    index = _IdentifierIndex([text, cat, num], ["Staff Member"])
    used = [*text, "M000123", "zz9", "123456789", "42", "7000001", "Staff Member"]
    tokens, subs, skipped = identifier_tokens(used)
    assert index.skipped == skipped == 4  # "ab", "012", "12345", "42"
    assert sorted(index.subs) == sorted(subs) == ["staff member", "x y 1234"]
    candidates = {"p0000001", "p0001999", "p0002000", "a1", "012", "q-77-ab", "m000123", "zz9", "123456789",
                  "7000001", "42", "unused99", "2026"}
    assert index.matching(candidates) == candidates & tokens
    assert "unused99" not in index.matching(candidates)  # an unused category is not an identifier


def _two_participants_one_match(tmp_path):
    """A program folder: two participants, one matched to mentor MNT0417, no mentors file."""
    src = tmp_path / "prog"
    src.mkdir()
    (src / "participants.csv").write_text(
        "participant_id,enrollment_date,group\nP000001,2025-01-02,peer_mentoring\nP000002,2025-01-03,comparison\n",
        encoding="utf-8")
    (src / "matches.csv").write_text("participant_id,mentor_id,match_date\nP000001,MNT0417,2025-01-05\n",
                                     encoding="utf-8")
    return src


def test_scan_of_an_engine_report_program_knows_the_ids_of_uncollected_tables(tmp_path):
    """On DuckDB the report holds only participants and mentors; mentor IDs that appear only in
    matches (no mentors file) must still be searched (fetched from the engine)."""
    pytest.importorskip("duckdb")
    import recoverystats as rs
    from recoverystats.engines.report import for_report
    from recoverystats.privacy.scan import scan

    src = _two_participants_one_match(tmp_path)
    prog = for_report(rs.read_program(src, engine="duckdb"))
    assert len(prog.matches) == 0  # not collected
    out = tmp_path / "out"
    out.mkdir()
    (out / "note.txt").write_text("mentor MNT0417 met weekly", encoding="utf-8")
    found = scan(out, prog, min_cell=None).findings
    assert list(found["kind"]) == ["identifier"] and "M*****7" in found["detail"].iloc[0]


def test_scan_of_an_engine_report_program_fetches_only_ids_no_collected_table_holds(tmp_path):
    """Columns whose IDs validation ties to a collected table (participant IDs everywhere; mentor
    IDs when there is a mentors file) are not fetched from the engine; mentor IDs without a
    mentors file are. An orphan participant ID is dropped by validation, so nothing is missed."""
    pytest.importorskip("duckdb")
    import recoverystats as rs
    from recoverystats.engines.report import for_report
    from recoverystats.privacy.scan import _held_by_collected

    src = _two_participants_one_match(tmp_path)
    (src / "events.csv").write_text("participant_id,event_date,event_type\nP000009,2025-02-01,arrest\n",
                                    encoding="utf-8")
    eng = rs.read_program(src, engine="duckdb", on_error="drop")  # the default stops on an orphan
    assert "orphan" in set(eng.validation["rule"])  # P000009 is not a participant: dropped
    prog = for_report(eng)
    assert _held_by_collected(prog, "events", "participant_id")
    assert _held_by_collected(prog, "matches", "participant_id")
    assert not _held_by_collected(prog, "matches", "mentor_id")  # no mentors file: fetched
    (src / "mentors.csv").write_text("mentor_id\n", encoding="utf-8")  # header only: references not checked
    prog = for_report(rs.read_program(src, engine="duckdb", on_error="drop"))
    assert not _held_by_collected(prog, "matches", "mentor_id")
    (src / "mentors.csv").write_text("mentor_id\nMNT0417\n", encoding="utf-8")
    prog = for_report(rs.read_program(src, engine="duckdb", on_error="drop"))
    assert _held_by_collected(prog, "matches", "mentor_id")
    assert not _held_by_collected(prog, "matches", "match_date")
