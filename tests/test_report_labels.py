"""Issue 12, "the report for its readers": labels not codes, APA p-values, methods in prose
with an analysis-settings table, and data-quality counts of records."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from recoverystats.errors import DataValidationError, InvalidParameterError

QUARTER = "2026Q3"
MENTORED = {"group": {"peer_mentoring": "Mentored"}}


def test_default_labels_and_terms_with_reference():
    from recoverystats.schema.labels import Labels, column_words

    lab = Labels()
    assert lab.code("peer_mentoring", field="group") == "Peer mentoring"
    assert lab.code("lost_contact", field="discharge_reason") == "Lost contact"
    assert lab.code("american_indian_alaska_native", field="race") == "American Indian or Alaska Native"
    assert lab.code("Relapse within 180 days") == "Relapse within 180 days"  # text is not a code
    assert lab.term("gender[female]", reference="male") == "Gender: Female (vs Male)"
    assert lab.term("group[T.peer_mentoring]", reference="comparison") == "Group: Peer mentoring (vs Comparison)"
    assert Labels(MENTORED).term("group[peer_mentoring]", reference="comparison") == "Group: Mentored (vs Comparison)"
    assert column_words("retained_90") == "Retained at 90 days"


def test_labels_table_is_checked_with_clear_errors(tmp_path):
    from recoverystats.schema.labels import parse_labels

    with pytest.raises(InvalidParameterError, match=r"unknown field 'groups'; allowed fields: group, "):
        parse_labels({"groups": {"a": "A"}})
    with pytest.raises(InvalidParameterError, match=r"\[labels.group\] peer_mentoring: a label must be non-empty"):
        parse_labels({"group": {"peer_mentoring": ""}})
    from recoverystats.report import load_config

    assert load_config({"labels": MENTORED}).labels == MENTORED
    with pytest.raises(InvalidParameterError, match=r"config: \[labels\]: unknown field 'grup'"):
        load_config({"labels": {"grup": {"a": "A"}}})
    from recoverystats.io.mapping import load_mapping

    f = tmp_path / "program.toml"
    f.write_text('[labels.group]\npeer_mentoring = "Mentored"\n', encoding="utf-8")
    assert load_mapping(f).labels == MENTORED
    f.write_text('[labels.colour]\nred = "Red"\n', encoding="utf-8")
    with pytest.raises(DataValidationError) as exc:
        load_mapping(f)
    assert "unknown field 'colour'" in str(exc.value) + repr(exc.value.args)


def test_program_toml_labels_reach_the_program(tmp_path):
    from recoverystats import read_program
    from recoverystats.datasets import simulate_program

    prog = simulate_program(60, seed=3).program()
    for name in ("participants",):
        prog.participants.to_csv(tmp_path / f"{name}.csv", index=False)
    (tmp_path / "program.toml").write_text('[labels.group]\npeer_mentoring = "Mentored"\n', encoding="utf-8")
    assert dict(read_program(tmp_path).labels) == MENTORED


def test_apa_p_values_and_xlsx_format():
    from recoverystats.report.report import XLSX_FORMATS, apa_p

    assert [apa_p(p) for p in (0.0004, 0.0012, 0.034, 0.5, 0.99996)] == ["<.001", ".001", ".034", ".500", ">.999"]
    assert '"<.001"' in XLSX_FORMATS["p_value"] and XLSX_FORMATS["p_value"].endswith(";.000")


def test_finding_records_counts_the_rows_a_finding_names():
    from recoverystats.report.sections.quality import finding_records

    v = pd.DataFrame({"message": ["events row 799, column event_date: 26 row(s) are dated before ...",
                                  "participants row 4, column age: 130 is out of range", pd.NA]})
    assert finding_records(v).tolist() == [26, 1, 1]


@pytest.fixture(scope="module")
def prog300():
    from recoverystats.datasets import simulate_program

    return simulate_program(300, seed=11).program()


@pytest.fixture(scope="module")
def two_reports(prog300):
    from recoverystats.report import quarterly

    plain = quarterly(prog300, quarter=QUARTER)
    try:
        relabelled = quarterly(prog300, quarter=QUARTER, config={"labels": MENTORED})
    except InvalidParameterError:  # before [labels] existed: the same report, to show the other checks fail
        relabelled = quarterly(prog300, quarter=QUARTER)
    return plain, relabelled


def test_report_shows_labels_not_codes(two_reports, tmp_path):
    plain, relabelled = two_reports
    html = plain.to_html()
    for code in ("peer_mentoring", "lost_contact", "gender[female]"):
        assert not re.search(rf">\s*{re.escape(code)}\s*<", html), code  # no table cell shows a code
    assert ">Lost contact<" in html and ">Peer mentoring<" in html
    assert "Gender: Female (vs Male)" in html
    html2 = relabelled.to_html()
    assert ">Mentored<" in html2 and "Group: Mentored (vs Comparison)" in html2
    assert ">Peer mentoring<" not in html2
    # the tables keep the codes (render time only)
    assert "peer_mentoring" in set(relabelled.tables["retention"].data["group"])
    # XLSX and DOCX
    import docx
    import openpyxl

    relabelled.to_xlsx(tmp_path / "t.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "t.xlsx")
    texts = {str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None}
    assert "Mentored" in texts and "peer_mentoring" not in texts
    relabelled.to_docx(tmp_path / "r.docx")
    cells = {c.text for t in docx.Document(tmp_path / "r.docx").tables for r in t.rows for c in r.cells}
    assert "Mentored" in cells and "Lost contact" in cells and "peer_mentoring" not in cells


def test_forest_plot_uses_the_term_labels(two_reports):
    _, relabelled = two_reports
    forest = next(f for f in relabelled.figures if f.key == "forest")
    assert "Group: Mentored (vs Comparison)" in forest.svg or "Mentored" in forest.svg


def test_label_override_leaves_ledger_ids_and_suppression_unchanged(two_reports):
    plain, relabelled = two_reports
    assert relabelled.config.labels == MENTORED
    assert plain.ledger["cells"].keys() == relabelled.ledger["cells"].keys()
    assert plain.ledger["cells"] == relabelled.ledger["cells"]
    for key, b in plain.tables.items():
        if key == "analysis_settings":  # text only; it lists the config (and so the [labels] given)
            continue
        assert b.mask.equals(relabelled.tables[key].mask), key


def test_methods_prose_has_no_parameter_names_and_settings_table_has_them(two_reports):
    from recoverystats.report.model import TableBlock, TextBlock

    plain, _ = two_reports
    sec = next(s for s in plain.sections if s.key == "methods")
    prose = " ".join(p for b in sec.blocks if isinstance(b, TextBlock) for p in (*b.paragraphs, *b.bullets)
                     if b.heading != "Program flow")
    for code in ("completion_counts", "due_rule", "window_closed", "mcnemar(", "rates.proportion", "=True"):
        assert code not in prose, code
    assert "Software: recoverystats" in prose and "adjusted for age, gender, risk level" in prose
    settings = next(b for b in sec.blocks if isinstance(b, TableBlock))
    assert settings.key == "analysis_settings" and settings.title == "Analysis settings"
    assert not settings.privacy.get("count_columns")
    values = " ".join(settings.data["setting"].tolist() + settings.data["value"].tolist())
    assert "completion_counts" in values and "due_rule" in values and "mcnemar" in values


def test_quality_table_counts_records_and_suppresses_small_ones(two_reports):
    plain, _ = two_reports
    b = plain.tables["validation"]
    assert "n_records" in b.data and b.labels["n_records"] == "Records affected"
    # 5 events before enrollment: one finding, five records, suppressed (below min_cell 11)
    row = b.data.index[b.data["rule"] == "before_enrollment"][0]
    assert bool(b.mask.at[row, "n_records"])
    assert plain.ledger["cells"]


def test_rate_plot_axis_labels_are_words_not_column_names():
    import matplotlib

    matplotlib.use("Agg")
    from recoverystats.rates import proportion

    df = pd.DataFrame({"group": ["peer_mentoring"] * 30 + ["comparison"] * 30,
                       "retained_90": [1, 0, 1] * 20})
    ax = proportion(df, "retained_90", by="group").plot()
    assert ax.get_xlabel().startswith("Retained at 90 days (%)")
    assert "retained_90" not in ax.get_title(loc="left")
    assert {t.get_text() for t in ax.get_yticklabels()} == {"Peer mentoring", "Comparison"}


def test_relabelled_report_passes_the_privacy_scan(two_reports, prog300, tmp_path):
    import json

    from recoverystats.privacy import scan

    _, relabelled = two_reports
    out = tmp_path / "q3"
    relabelled.save(out)
    result = scan(out, prog300)
    assert result.ok, result.findings.to_string()
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert "peer_mentoring" in {r["group"] for r in doc["tables"]["retention"]["rows"]}  # data keeps codes
    assert doc["tables"]["validation"]["headers"]["n_records"] == "Records affected"
