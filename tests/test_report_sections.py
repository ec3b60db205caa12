"""The report's sections are modules listed in one ordered registry; the config's
``[sections]`` table switches them on and off (DESIGN section 12)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from recoverystats.datasets import simulate_program
from recoverystats.errors import InvalidParameterError
from recoverystats.report import ReportConfig, load_config, quarterly
from recoverystats.report.sections import SECTION_KEYS, SECTIONS, enabled_sections

QUARTER = "2026Q3"
#: the sections of the default report of simulate_program(300, seed=11), in order (results.json keys)
DEFAULT_ORDER = ["summary", "key_numbers", "flow", "census", "retention", "outcomes", "table1", "adjusted",
                 "survival", "followup", "limitations", "quality", "methods"]
#: sections switched on in the report config only (DESIGN section 14)
OPT_IN = {"comparison", "missing_data", "power", "sites", "subgroups"}  # switched on in the report config (DESIGN section 14)
ADJUSTED_TABLES = {"model_counts", "odds_ratios", "risk_differences"}


def test_registry_lists_every_section_module_once_in_report_order():
    folder = Path(importlib.import_module("recoverystats.report.sections").__file__).parent
    modules = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    assert SECTION_KEYS == ("summary", "key_numbers", "flow", "census", "retention", "outcomes", "table_one",
                            "adjusted", "comparison", "survival", "sites", "subgroups", "followup", "missing_data",
                            "power", "limitations", "quality", "methods")
    assert {s.module or s.key for s in SECTIONS} == modules
    for spec in SECTIONS:
        assert callable(importlib.import_module(f"recoverystats.report.sections.{spec.module or spec.key}").build)
        assert spec.default_on == (spec.key not in OPT_IN)
    assert enabled_sections(ReportConfig()) == tuple(s for s in SECTIONS if s.key not in OPT_IN)


def test_sections_config_is_checked():
    cfg = load_config({"sections": {"adjusted": False, "census": True}})
    assert cfg.sections == {"adjusted": False, "census": True}
    assert [s.key for s in enabled_sections(cfg)] == [k for k in SECTION_KEYS if k != "adjusted" and k not in OPT_IN]
    assert cfg.to_dict()["sections"] == {"adjusted": False, "census": True}
    assert "sections" not in ReportConfig().to_dict()  # results.json unchanged without switches
    with pytest.raises(InvalidParameterError, match=r"unknown section key 'adjustd' in \[sections\]; "
                                                    r"allowed keys: summary, key_numbers, flow, census, .*methods"):
        load_config({"sections": {"adjustd": False}})
    with pytest.raises(InvalidParameterError, match=r"\[sections.adjusted\] must be true .* or false .*; got 'no'"):
        load_config({"sections": {"adjusted": "no"}})
    with pytest.raises(InvalidParameterError, match=r"unknown section key\(s\) 'nope'; allowed keys: summary, key_numbers"):
        enabled_sections(ReportConfig(sections={"nope": False}))


def test_toml_sections_table(tmp_path):
    f = tmp_path / "report.toml"
    f.write_text("[sections]\nmethods = false\nquality = true\n", encoding="utf-8")
    assert load_config(f).sections == {"methods": False, "quality": True}


@pytest.mark.slow
def test_switched_off_section_is_left_out_and_registers_no_table(tmp_path):
    from recoverystats.privacy import scan

    prog = simulate_program(300, seed=11).program()
    report = quarterly(prog, quarter=QUARTER, config={"sections": {"adjusted": False}})
    assert [s.key for s in report.sections] == [k for k in DEFAULT_ORDER if k != "adjusted"]
    assert not ADJUSTED_TABLES & set(report.tables)
    assert {"retention", "outcomes", "table_one", "km_relapse"} <= set(report.tables)
    assert "forest" not in {f.key for f in report.figures}
    out = report.save(tmp_path / "q3")  # scanned first, fails closed
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert not ADJUSTED_TABLES & set(doc["tables"])
    assert doc["ledger"]["cells"] and not any(c.split(":")[0] in ADJUSTED_TABLES for c in doc["ledger"]["cells"])
    assert doc["provenance"]["config"]["sections"] == {"adjusted": False}
    assert "Adjusted comparison" not in (out / "report.html").read_text(encoding="utf-8")
    res = scan(out, prog, min_cell=11)
    assert res.ok, res.findings
