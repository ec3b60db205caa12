"""Rich display of every public result and of ``ProgramData``.

Every result class (every subclass of :class:`recoverystats.results.ResultMixin`, found by
walking the package, plus the privacy results and ``ProgramData``) must have

- ``_repr_html_`` rendered by :mod:`recoverystats.results.render` — the renderer the
  quarterly report uses — so a table looks the same in Jupyter and in the report;
- ``to_dict()`` that ``json.dumps`` accepts (strictly: no NaN/Infinity tokens);
- ``to_markdown()`` with the render module's display labels in its header.

Each class has one example built through the public API on bundled data; a result class
added without an example here fails ``test_every_result_class_has_an_example``.
"""

from __future__ import annotations

import html
import importlib
import json
import pkgutil
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recoverystats as rs
from recoverystats.results import ResultMixin
from recoverystats.results.render import label, render_html_table, render_markdown_table

ROOT = Path(__file__).resolve().parents[1]


def _import_all() -> None:
    """Import every module of the package so that every ResultMixin subclass is defined."""
    import recoverystats

    for info in pkgutil.walk_packages(recoverystats.__path__, "recoverystats."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out.add(sub)
        out |= _subclasses(sub)
    return out


def public_result_classes() -> list[type]:
    _import_all()
    # dataclass(slots=True) replaces the class it decorates, so the pre-slots original may
    # still be listed by __subclasses__(): keep one class per qualified name.
    unique = {f"{c.__module__}.{c.__qualname__}": c for c in _subclasses(ResultMixin)}
    return sorted((c for c in unique.values() if not c.__name__.startswith("_")), key=lambda c: c.__name__)


# ---------------------------------------------------------------------------------------
# data
@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    from recoverystats.datasets import load_rossi

    return load_rossi()


@pytest.fixture(scope="module")
def prog():
    return rs.read_program(ROOT / "data" / "sample" / "program.toml")


@pytest.fixture(scope="module")
def examples(rossi, prog) -> dict[str, Callable[[], object]]:
    """One builder per public result class name (and ProgramData / privacy results)."""
    from recoverystats.privacy import scan, suppress

    cov = ["age", "prio"]
    rossi = rossi.copy()
    rossi["period"] = np.where(rossi["week"] % 2 == 0, "2024Q1", "2024Q2")
    rossi["date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rossi["week"] * 7, unit="D")

    def odds():
        return rs.odds_ratios(rossi, "arrest", exposure="fin", adjust=cov)

    def cox():
        return rs.hazard_ratios(rossi, time="week", event="arrest", exposure="fin", adjust=cov)

    def km():
        return rs.survival_curve(rossi, time="week", event="arrest", by="fin")

    def competing():
        d = rossi.assign(status=np.where(rossi["arrest"] == 1, np.where(rossi["prio"] > 5, 2, 1), 0))
        return rs.cumulative_incidence(d, time="week", event="status", cause=1, by="fin")

    def scanned():
        import tempfile

        out = Path(tempfile.mkdtemp(prefix="rs-display-"))
        (out / "table.csv").write_text("group,n\npeer_mentoring,25\ncomparison,31\n")
        return scan(out, prog)

    def suppressed():
        t = pd.DataFrame({"site": ["a", "b", "c"], "n": [25, 4, 30], "events": [12, 2, 15]})
        return suppress(t, count_columns=["n", "events"], min_cell=11)

    return {
        "RateResult": lambda: rs.proportion(rossi, "arrest", by="fin"),
        "ComparisonResult": lambda: rs.compare_proportions(rossi, "arrest", group="fin", reference=0),
        "TableOneResult": lambda: rs.table_one(rossi, group="fin", variables=["age", "race", "prio"]),
        "TrendResult": lambda: rs.trend(rossi, "arrest", date="date", freq="Q"),
        "OddsRatioResult": odds,
        "RiskDifferenceResult": lambda: odds().risk_difference(),
        "RiskRatioResult": lambda: odds().risk_ratio(),
        "DiagnosticsResult": lambda: odds().diagnostics(),
        "SurvivalResult": km,
        "RMSTResult": lambda: km().rmst(40),
        "TestResult": lambda: rs.compare_survival(rossi, time="week", event="arrest", group="fin"),
        "HazardRatioResult": cox,
        "PHTestResult": lambda: cox().check_proportional_hazards(),
        "CumulativeIncidenceResult": competing,
        "PooledResult": lambda: rs.pool_estimates([[0.1, 0.2], [0.15, 0.25], [0.12, 0.18]],
                                                  [[0.01, 0.02]] * 3, dfcom=50, terms=["a", "b"]),
        # not ResultMixin subclasses, but public objects a researcher displays
        "ProgramData": lambda: prog,
        "SuppressionResult": suppressed,
        "ScanResult": scanned,
    }


@pytest.fixture(scope="module")
def built(examples) -> dict[str, object]:
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, make in examples.items():
            out[name] = make()
    return out


NON_MIXIN = ["ProgramData", "SuppressionResult", "ScanResult"]
ALL_NAMES = [c.__name__ for c in public_result_classes()] + NON_MIXIN


# ---------------------------------------------------------------------------------------
def test_every_result_class_has_an_example(examples):
    missing = sorted(set(ALL_NAMES) - set(examples))
    assert missing == [], f"add an example for {missing} to tests/test_display.py"
    # and every example builds the class it is named after
    assert len(ALL_NAMES) >= 14


@pytest.mark.parametrize("name", ALL_NAMES)
def test_example_is_of_its_class(built, name):
    assert type(built[name]).__name__ == name


def _plain(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_repr_html_uses_the_shared_renderer(built, name):
    obj = built[name]
    out = obj._repr_html_()
    assert isinstance(out, str)
    # the shared renderer's markup: <div class="rs-result"><table class="rs-table">
    assert '<table class="rs-table">' in out and "<thead>" in out and "<tbody>" in out
    assert "<script" not in out.lower()


@pytest.mark.parametrize("name", [n for n in ALL_NAMES if n not in NON_MIXIN])
def test_result_html_is_exactly_the_renderers_output(built, name):
    """ResultMixin results: ``_repr_html_`` == ``render_html_table`` of the displayed table."""
    obj = built[name]
    shown = obj._display_table()
    expected_start = render_html_table(shown)[: len('<div class="rs-result"><table class="rs-table">')]
    out = obj._repr_html_()
    assert out.startswith(expected_start)
    # the header row is the renderer's labels for the displayed columns, in order
    head = re.search(r"<thead><tr>(.*?)</tr></thead>", out).group(1)
    headers = [html.unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", head)]
    assert headers == [label(c) for c in shown.columns]
    # the body is the renderer's body for the same table (caption/notes aside)
    body = re.search(r"<tbody>.*?</tbody>", out, re.S).group(0)
    assert body == re.search(r"<tbody>.*?</tbody>", render_html_table(shown), re.S).group(0)
    # the caption names the method, the confidence level and n_used
    caption = _plain(re.search(r"<caption>(.*?)</caption>", out).group(1))
    assert f"n_used={obj.n_used}" in caption
    for note in obj.notes:
        assert html.escape(note) in out


@pytest.mark.parametrize("name", ALL_NAMES)
def test_to_dict_is_strict_json(built, name):
    d = built[name].to_dict()
    text = json.dumps(d, allow_nan=False)  # NaN/inf must have become null
    back = json.loads(text)
    assert back["result"] == name


@pytest.mark.parametrize("name", [n for n in ALL_NAMES if n not in NON_MIXIN])
def test_result_to_dict_holds_table_and_metadata(built, name):
    obj = built[name]
    d = obj.to_dict()
    for key in ("table", "conf_level", "method", "n_used", "n_excluded", "notes"):
        assert key in d, key
    assert len(d["table"]) == len(obj.table)
    assert len(obj.table) > 0
    assert list(d["table"][0]) == [str(c) for c in obj.table.columns]
    assert d["n_used"] == obj.n_used and d["conf_level"] == obj.conf_level


@pytest.mark.parametrize("name", ALL_NAMES)
def test_to_markdown(built, name):
    obj = built[name]
    md = obj.to_markdown()
    lines = md.splitlines()
    assert lines[0].startswith("| ") and set(lines[1]) <= set("|-:")
    if name not in NON_MIXIN:
        shown = obj._display_table()
        assert md.split("\n\n")[0] == render_markdown_table(shown)
        assert lines[0] == "| " + " | ".join(label(c) for c in shown.columns) + " |"
        assert len(md.split("\n\n")[0].splitlines()) == len(shown) + 2


def test_program_data_display(prog):
    out = prog._repr_html_()
    # the flow table rendered with the shared labels
    assert "Rows read" in out and "Rows kept" in out and "Rows dropped" in out
    for table in ("participants", "events", "assessments"):
        assert f'<td style="text-align:left">{table}</td>' in out
    d = prog.to_dict()
    assert d["participants"] == len(prog.participants)
    assert [r["table"] for r in d["flow"]] == list(prog.flow["table"])
    md = prog.to_markdown()
    assert md.splitlines()[0] == "| Table | Rows read | Rows kept | Rows dropped |"
    assert "Validation: 0 errors" in md


def test_suppression_display_shows_the_mark_not_the_value(built):
    res = built["SuppressionResult"]
    assert res.n_suppressed >= 2  # the 4 and its complement
    out = res._repr_html_()
    body = re.search(r"<tbody>.*?</tbody>", out, re.S).group(0)
    assert re.search(r"<td[^>]*>\*</td>", body)
    # suppressed values never reach the display or the dict
    assert not re.search(r"<td[^>]*>4</td>", body)
    d = res.to_dict()
    for row, mask_row in zip(d["table"], d["mask"], strict=True):
        for col, masked in mask_row.items():
            if masked:
                assert row[col] is None


def test_display_numbers_are_rounded_only_at_render_time(built):
    res = built["OddsRatioResult"]
    t = res.table
    assert pd.api.types.is_float_dtype(t["estimate"])  # .table stays numeric
    first = t.iloc[0]
    assert f"{first['estimate']:.3f}" in res._repr_html_()


@pytest.mark.slow  # builds a quarterly report (~10 s)
def test_report_tables_use_the_same_renderer():
    """The report's tables come from the same render_html_table/label as every result."""
    from recoverystats.datasets import simulate_program
    from recoverystats.report import quarterly
    from recoverystats.report.report import display_frame

    prog = simulate_program(800, seed=3, contacts=True, assessments=True).program()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = quarterly(prog, quarter="2026Q3")
    doc = report.to_html()
    # (the report moves each caption above its scrolling box and names the table by it)
    tables = re.findall(r'<div class="rs-result"><table class="rs-table[^"]*"[^>]*>.*?</table>', doc, re.S)
    shown = [b for b in report.tables.values() if b.show_in_document]
    assert len(tables) == len(shown) > 5
    for block in shown:
        disp = display_frame(block)
        expected = render_html_table(disp, title=block.title, notes=block.notes,
                                     labels={c: label(c, block.labels) for c in disp.columns}, max_rows=500,
                                     align_text=False)  # the report's stylesheet aligns its columns
        body = re.search(r"<tbody>.*?</tbody>", expected, re.S).group(0)
        assert body in doc, block.key
