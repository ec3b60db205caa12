"""The opt-in power note of the report: the minimum detectable difference from the
published group sizes and comparison rate, withheld when a count it needs is suppressed."""

from __future__ import annotations

import json
import re

import pytest
from numpy.testing import assert_allclose

from recoverystats.datasets import simulate_program
from recoverystats.design import power_proportions
from recoverystats.report import quarterly

QUARTER = "2026Q3"
#: percentages in the sentence are printed to one decimal
HALF_UNIT_1DP_PCT = 0.05


def _text(section) -> str:
    return " ".join(" ".join(b.paragraphs + b.bullets) for b in section.blocks if hasattr(b, "bullets"))


@pytest.fixture(scope="module")
def report_on():
    prog = simulate_program(600, seed=4, contacts=False).program()
    return quarterly(prog, quarter=QUARTER, config={"sections": {"power": True}})


def test_power_note_uses_the_published_counts(report_on):
    sec = {s.key: s for s in report_on.sections}["power"]
    text = _text(sec)
    b = report_on.tables["power_counts"]
    d = b.data
    label = d["measure"].iloc[0]
    ref = d[(d["measure"] == label) & (d["group"] == "comparison")].iloc[0]
    prg = d[(d["measure"] == label) & (d["group"] == "peer_mentoring")].iloc[0]
    p1 = ref["events"] / ref["n"]
    r = power_proportions(p1=p1, n=ref["n"], ratio=prg["n"] / ref["n"], power=0.8).table.set_index("direction")
    m = re.search(re.escape(label) + r", Peer mentoring vs Comparison: with ([\d,]+) participants in the Peer "
                  r"mentoring group and ([\d,]+) in the Comparison group and the Comparison group's observed rate "
                  r"of ([\d.]+)%, the smallest difference this evaluation could detect with 80% power is a fall to "
                  r"([\d.]+)% \(([-+\d.]+) percentage points\) or a rise to ([\d.]+)%", text)
    assert m, text
    assert int(m.group(1).replace(",", "")) == prg["n"] and int(m.group(2).replace(",", "")) == ref["n"]
    assert_allclose(float(m.group(3)), 100 * p1, atol=HALF_UNIT_1DP_PCT)
    assert_allclose(float(m.group(4)), 100 * r.loc["decrease", "p2"], atol=HALF_UNIT_1DP_PCT)
    assert_allclose(float(m.group(6)), 100 * r.loc["increase", "p2"], atol=HALF_UNIT_1DP_PCT)
    # the same counts as the outcomes table (linked cells)
    o = report_on.tables["outcomes"].data
    assert o.loc[(o["measure"] == label) & (o["group"] == "comparison"), "n"].iloc[0] == ref["n"]
    methods = _text({s.key: s for s in report_on.sections}["methods"])
    assert "Power note: the minimum detectable difference" in methods


def test_off_by_default_and_no_methods_bullet():
    prog = simulate_program(300, seed=11, contacts=False).program()
    rep = quarterly(prog, quarter=QUARTER)
    assert "power" not in {s.key for s in rep.sections}
    assert "power_counts" not in rep.tables
    assert "Power note" not in _text({s.key: s for s in rep.sections}["methods"])


def test_note_withheld_when_a_group_is_below_min_cell():
    # about 3% of 300 in the program group: its eligible count is below min_cell and suppressed
    prog = simulate_program(300, seed=2, contacts=False, p_mentoring=0.03).program()
    rep = quarterly(prog, quarter=QUARTER, config={"sections": {"power": True}})
    b = rep.tables["power_counts"]
    i = b.data.index[(b.data["group"] == "peer_mentoring")][0]
    assert bool(b.mask.at[i, "n"])
    text = _text({s.key: s for s in rep.sections}["power"])
    assert "not shown, because a group size or event count it needs is suppressed" in text
    assert "smallest difference this evaluation could detect with 80% power is" not in text


@pytest.mark.slow
def test_saved_report_passes_the_scan(report_on, tmp_path):
    from recoverystats.privacy import scan

    out = report_on.save(tmp_path / "q3")
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert "power_counts" in doc["tables"]
    assert "could detect with 80% power" in (out / "report.html").read_text(encoding="utf-8")
    prog = simulate_program(600, seed=4, contacts=False).program()
    res = scan(out, prog, min_cell=11)
    assert res.ok, res.findings
