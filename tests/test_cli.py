"""The command line: validate / simulate, exit codes, messages instead of tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from recoverystats.cli import EXIT_DATA, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"

GOOD = "participant_id,enrollment_date,group,site\n007,2025-01-10,a,north\n008,2025-02-01,b,south\n"


def test_validate_sample_prints_summary(capsys):
    assert main(["validate", str(SAMPLE)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Participants: 1,200" in out
    assert "by group: comparison" in out and "peer_mentoring" in out
    assert "by site:  site_a" in out
    assert "participants.enrollment_date" in out and "2024-10-01 to 2026-09-30" in out
    assert re.search(r"participants +1,200 +1,200 +0\n", out)
    assert "Findings: 0 errors" in out


def test_validate_as_subprocess_module(tmp_path):
    (tmp_path / "participants.csv").write_text(GOOD)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "recoverystats.cli",
            "validate",
            str(tmp_path),
            "--as-of",
            "2025-12-31",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == EXIT_OK, res.stderr
    assert "Data cut-off (as_of): 2025-12-31" in res.stdout


def test_validate_errors_exit_1_with_messages_not_traceback(tmp_path):
    (tmp_path / "participants.csv").write_text(GOOD.replace("2025-02-01", "2025-02-30"))
    res = subprocess.run(
        [sys.executable, "-m", "recoverystats.cli", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == EXIT_DATA
    assert "Traceback" not in res.stderr + res.stdout
    assert (
        "ERROR   participants.csv line 3, column enrollment_date: '2025-02-30' is not a real calendar date"
        in res.stdout
    )
    assert "1 error(s) found" in res.stderr
    assert "by rule: date_impossible 1 (error)" in res.stdout


def test_validate_drop_mode_exits_0(tmp_path, capsys):
    (tmp_path / "participants.csv").write_text(GOOD.replace("2025-02-01", "2025-02-30"))
    assert main(["validate", str(tmp_path), "--on-error", "drop"]) == EXIT_OK
    out = capsys.readouterr().out
    assert re.search(r"participants +2 +1 +1\n", out)
    assert "[date_impossible]" in out


def test_validate_json(tmp_path, capsys):
    (tmp_path / "participants.csv").write_text(GOOD)
    assert main(["validate", str(tmp_path), "--format", "json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "ok"
    assert doc["by_group"] == {"a": 1, "b": 1}
    assert doc["flow"][0] == {
        "table": "participants",
        "rows_read": 2,
        "rows_kept": 2,
        "rows_dropped": 0,
    }
    assert len(doc["sources"]) == 1 and len(doc["sources"][0]["sha256"]) == 64


def test_validate_json_on_errors(tmp_path, capsys):
    (tmp_path / "participants.csv").write_text(GOOD.replace("south", "south,extra"))
    assert main(["validate", str(tmp_path), "--format", "json"]) == EXIT_DATA
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["status"] == "error"
    assert [(f["rule"], f["line"]) for f in doc["findings"] if f["severity"] == "error"] == [
        ("field_count", 3)
    ]


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing")]) == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
    assert main(["validate", str(SAMPLE), "--as-of", "30/09/2026"]) == EXIT_USAGE
    assert "must be a date YYYY-MM-DD; got '30/09/2026'" in capsys.readouterr().err
    assert main(["validate", str(SAMPLE), "--format", "xml"]) == EXIT_USAGE
    assert "invalid choice: 'xml'" in capsys.readouterr().err
    assert main([]) == EXIT_USAGE
    assert main(["frobnicate"]) == EXIT_USAGE
    assert main(["simulate"]) == EXIT_USAGE
    assert "--out" in capsys.readouterr().err
    assert main(["simulate", "--out", str(tmp_path), "--participants", "0"]) == EXIT_USAGE
    assert "must be at least 1; got 0" in capsys.readouterr().err


def test_simulate_writes_canonical_csvs_that_validate(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", "--out", str(out), "--participants", "60", "--seed", "3"]) == EXIT_OK
    msg = capsys.readouterr().out
    assert "Wrote 6 tables" in msg and "participants 60" in msg and "seed 3" in msg
    assert "truth.json" in msg
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{t}.csv" for t in ("participants", "mentors", "matches", "contacts", "events", "assessments")]
        + ["program.toml", "truth.json"]
    )
    assert main(["validate", str(out)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "Participants: 60" in text
    # the folder is read through its program.toml: the simulation's cut-off, not today's date
    assert "2026-09-30" in text


def test_simulate_truth_json_holds_the_planted_effects(tmp_path):
    """truth.json is the simulator's truth: the planted log-hazard ratios and true risks."""
    from recoverystats.datasets import simulate_program

    out = tmp_path / "sim"
    assert main(["simulate", "--out", str(out), "--participants", "80", "--seed", "4"]) == EXIT_OK
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    ref = simulate_program(80, seed=4).truth
    coef = {(r["outcome"], r["term"]): r["log_hazard"] for r in truth["coefficients"]}
    assert coef[("relapse", "group[peer_mentoring]")] == ref.log_hazard_ratio("relapse")
    assert coef[("rearrest", "group[peer_mentoring]")] == ref.log_hazard_ratio("rearrest")
    assert truth["as_of"] == str(ref.as_of.date()) and truth["settings"]["seed"] == 4
    assert truth["parameters"]["mentor_sd"] == ref.mentor_sd
    marg = ref.marginal
    first = truth["marginal"][0]
    row = marg[(marg["outcome"] == first["outcome"]) & (marg["days"] == first["days"])
               & (marg["group"] == first["group"])].iloc[0]
    assert first["population"] == float(row["population"])


def test_report_subcommand_is_registered_lazily(monkeypatch, capsys):
    calls = []

    def register(sub):
        p = sub.add_parser("report", help="quarterly report")
        p.add_argument("data")
        p.set_defaults(func=lambda args: calls.append(args.data) or 0)

    fake = types.ModuleType("recoverystats.report.cli")
    fake.register = register
    monkeypatch.setitem(sys.modules, "recoverystats.report.cli", fake)
    assert main(["report", "somewhere"]) == EXIT_OK
    assert calls == ["somewhere"]


def test_broken_report_module_does_not_break_validate(monkeypatch, tmp_path, capsys):
    import importlib

    real = importlib.import_module

    def fake(name, *args, **kw):
        if name == "recoverystats.report.cli":
            raise RuntimeError("boom")
        return real(name, *args, **kw)

    monkeypatch.setattr(importlib, "import_module", fake)
    (tmp_path / "participants.csv").write_text(GOOD)
    assert main(["validate", str(tmp_path)]) == EXIT_OK
    capsys.readouterr()
    assert main(["report", "x"]) == EXIT_USAGE
    assert "could not be imported: RuntimeError('boom')" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--version"])
def test_version(flag, capsys):
    with pytest.raises(SystemExit) as info:
        main([flag])
    assert info.value.code == 0
    assert "recoverystats 0." in capsys.readouterr().out
