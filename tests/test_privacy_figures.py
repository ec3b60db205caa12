"""Figures reveal no small count (issue 11, section 1, item 2).

The attack: a Kaplan-Meier step is ``S_k = S_{k-1} (1 - d_k / n_k)``, so the ratio of two
consecutive step heights read from the SVG is a fraction whose denominator is the number
at risk; ``Fraction.limit_denominator`` finds it. Summing the recovered events up to a day
of the at-risk table gives back a cell the table suppressed. The attacker below is written
independently of ``recoverystats.privacy.figures`` (regular expressions on the SVG text).
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoverystats.privacy import scan
from recoverystats.privacy.figures import (
    coarsen_km,
    round_svg_coordinates,
    svg_matches_data,
    svg_step_curves,
    svg_step_findings,
)
from recoverystats.report import DisclosureError, quarterly
from recoverystats.survival import survival_curve

QUARTER = "2026Q3"
MIN_CELL = 11


# ---------------------------------------------------------------------------------------
# the attacker: SVG text -> step curves in data units -> events and numbers at risk
# ---------------------------------------------------------------------------------------
def _axis(svg: str, which: str) -> tuple[float, float]:
    """(a, b) with value = a + b * pixel, from the tick marks and tick labels of one axis."""
    pix, val = [], []
    for m in re.finditer(rf'<g id="(?:[\w-]+-)?{which}tick_\d+">(.*?)</text>', svg, flags=re.S):
        block = m.group(1)
        pos = re.search(rf'<use [^>]*{"y" if which == "y" else "x"}="([-\d.]+)"', block)
        lab = re.search(r"<text[^>]*>([^<]*)$", block)
        if not (pos and lab):
            continue
        s = lab.group(1).strip().replace("\u2212", "-").replace(",", "")
        v = float(s.rstrip("%")) / (100.0 if s.endswith("%") else 1.0)
        pix.append(float(pos.group(1)))
        val.append(v)
    b, a = np.polyfit(pix, val, 1)
    return float(a), float(b)


def attack_steps(svg: str) -> list[list[tuple[float, float]]]:
    """Every step curve of the figure as (time, height) after each drop (data units)."""
    ay, by = _axis(svg, "y")
    ax, bx = _axis(svg, "x")
    curves = []
    for m in re.finditer(r'<g id="(?:[\w-]+-)?line2d_\d+">\s*<path d="([^"]*)"', svg):
        pts = [(float(x), float(y)) for x, y in re.findall(r"[ML] ([-\d.]+) ([-\d.]+)", m.group(1))]
        if len(pts) < 6:
            continue
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        if any(b < a for a, b in zip(xs, xs[1:], strict=False)) or any(b < a for a, b in zip(ys, ys[1:], strict=False)):
            continue  # not a decreasing step curve (pixel y grows downwards)
        steps, last = [(0.0, ay + by * ys[0])], ys[0]
        for x, y in pts[1:]:
            if y != last:
                steps.append((ax + bx * x, ay + by * y))
                last = y
        if len(steps) > 2:
            curves.append(steps)
    return curves


def recover_counts(steps: list[tuple[float, float]], n_start: int, *, slack: int = 40
                   ) -> list[tuple[float, int, int]]:
    """(time, events, at risk) of every step. The number at risk only falls: at each drop the
    reader tries every n from the last one (less its events) down by ``slack`` censorings,
    takes d = round(r n) and keeps the n whose d / n fits the relative drop r best (ties: the
    largest n, i.e. the fewest censorings)."""
    out, n_prev = [], n_start
    for (_, s0), (t, s1) in zip(steps, steps[1:], strict=False):
        r = 1.0 - s1 / s0
        n = np.arange(max(1, n_prev - slack), n_prev + 1)
        d = np.round(r * n)
        err = np.abs(d / n - r)
        k = len(n) - 1 - int(np.argmin(err[::-1]))
        out.append((round(t), int(d[k]), int(n[k])))
        n_prev = int(n[k] - d[k])
    return out


# ---------------------------------------------------------------------------------------
# the program of test_report.py's tiny_site fixture: 360 people, a site of 5
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_program(program_with_small_site):
    return program_with_small_site(360, 5)


@pytest.fixture(scope="module")
def reports(tiny_program, tmp_path_factory):
    """Default report (saved, so scanned), protection-off report (saved without the scan),
    and the unsuppressed report (the true counts the suppression hides)."""
    base = tmp_path_factory.mktemp("figs")
    default = quarterly(tiny_program, quarter=QUARTER)
    default.save(base / "default")
    off = quarterly(tiny_program, quarter=QUARTER, _protect_figures=False)
    dataclasses.replace(off, prog=None).save(base / "off")  # prog=None: written without the scan
    truth = quarterly(tiny_program, quarter=QUARTER, suppress=False).tables
    return {"default": base / "default", "off": base / "off", "off_report": off, "truth": truth}


def _hidden_event_cells(out) -> tuple[dict, list[tuple[str, str]]]:
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    rows = {r["group"]: r for r in doc["tables"]["km_relapse"]["rows"]}
    hidden = [(g, c) for g, r in rows.items() if g != "Total" for c in r
              if re.fullmatch(r"events_\d+", c) and r[c] is None]
    return rows, hidden


def _attack(out, n_start: dict[str, int]) -> dict[str, list[tuple[float, int, int]]]:
    rows, _ = _hidden_event_cells(out)
    groups = [g for g in rows if g != "Total"]
    svg = (out / "figures" / "km_relapse.svg").read_text(encoding="utf-8")
    curves = attack_steps(svg)
    assert len(curves) == len(groups)
    return {g: recover_counts(steps, n_start[g]) for g, steps in zip(groups, curves, strict=True)}


def _true(truth, g: str, col: str) -> int:
    t = truth["km_relapse"].data
    return int(t.loc[t["group"] == g, col].iloc[0])


def test_old_drawing_gives_back_suppressed_cells(reports):
    """Before the fix (the exact curve, 6 decimals) the SVG rebuilds the suppressed cells."""
    rows, hidden = _hidden_event_cells(reports["off"])
    assert hidden, "the at-risk table of this program suppresses event counts"
    recovered = _attack(reports["off"], {g: int(rows[g]["at_risk_0"]) for g in rows})
    for g, counts in recovered.items():
        # the first drop gives the number at risk at the first relapse: the group size, less
        # those censored before it (for one group here: 1 person)
        assert rows[g]["at_risk_0"] - MIN_CELL < counts[0][2] <= rows[g]["at_risk_0"]
        assert min(d for _, d, _ in counts) < MIN_CELL  # single relapses are visible
    for g, c in hidden:
        day = int(c.split("_")[1])
        got = sum(d for t, d, _ in recovered[g] if t <= day)
        assert got == _true(reports["truth"], g, c), (g, c)  # a suppressed cell, given back exactly


def test_coarsened_drawing_gives_back_no_small_count(reports):
    """After the fix the reader's best source is the figure data of results.json (the SVG
    heights are those numbers, to 0.01 pt): every step is a multiple of min_cell, and each
    suppressed cell is known only to a band of min_cell values that holds the true count."""
    rows, hidden = _hidden_event_cells(reports["default"])
    assert hidden
    doc = json.loads((reports["default"] / "results.json").read_text(encoding="utf-8"))
    fig = next(f for f in doc["figures"] if f["key"] == "km_relapse")
    svg = (reports["default"] / "figures" / "km_relapse.svg").read_text(encoding="utf-8")
    assert svg_matches_data(svg, fig["data"]) == []
    curves = {c["group"]: pd.DataFrame(c["steps"]) for c in fig["data"]["curves"]}
    for g, c in hidden:
        s = curves[g]
        # the heights are exactly the published counts' Kaplan-Meier product: they add nothing
        np.testing.assert_allclose(s["estimate"], np.cumprod(1 - s["events"] / s["n_at_risk"]), rtol=1e-12)
        events = s["events"].iloc[1:]
        events = events[events > 0]
        assert len(events) and ((events >= MIN_CELL) & (events % MIN_CELL == 0)).all()
        day = int(c.split("_")[1])
        got = int(s.loc[s["time"] <= day, "events"].sum())
        true = _true(reports["truth"], g, c)
        assert got <= true <= got + MIN_CELL - 1, (g, c, got, true)


def test_scan_fails_on_the_old_drawing_and_passes_on_the_default(reports, tiny_program):
    off = scan(reports["off"], tiny_program, min_cell=MIN_CELL)
    kinds = set(off.findings["kind"])
    assert {"figure_step", "figure_data"} <= kinds
    files = set(off.findings.loc[off.findings["kind"] == "figure_step", "file"])
    assert {"figures/km_relapse.svg", "figures/km_recid.svg", "report.html"} <= files
    ok = scan(reports["default"], tiny_program, min_cell=MIN_CELL)
    assert ok.ok, ok.findings.to_dict(orient="records")
    # and saving the protection-off report fails closed
    with pytest.raises(DisclosureError, match="figure_step"):
        reports["off_report"].save(reports["off"].parent / "off_again")


def test_figure_data_in_results_json(reports):
    doc = json.loads((reports["default"] / "results.json").read_text(encoding="utf-8"))
    figs = {f["key"]: f for f in doc["figures"]}
    assert figs["pchart_relapse"]["data"]["sources"] == ["pchart_relapse"]
    km = figs["km_relapse"]["data"]
    assert km["sources"] == ["km_relapse"] and len(km["curves"]) == 2
    for curve in km["curves"]:
        st_ = pd.DataFrame(curve["steps"])
        assert (st_["events"] % MIN_CELL == 0).all() and (st_["censored_before"] % MIN_CELL == 0).all()
        assert (st_["n_at_risk"] % MIN_CELL == 0).all()
        # every drawn height is recomputable from the published counts
        s = np.cumprod(1 - st_["events"] / st_["n_at_risk"])
        np.testing.assert_allclose(st_["estimate"], s, rtol=1e-12)
    svg = (reports["default"] / "figures" / "km_relapse.svg").read_text(encoding="utf-8")
    assert svg_matches_data(svg, km) == []
    # coordinates carry at most 2 decimals
    assert not re.search(r'd="[^"]*\d\.\d{3}', svg)


# ---------------------------------------------------------------------------------------
# property tests
# ---------------------------------------------------------------------------------------
def _km_figure(table: pd.DataFrame, *, group_col: str, min_at_risk: int):
    from recoverystats.plotting.report import plot_km
    from recoverystats.report.build import _figure

    return _figure("km", "km", lambda ax: plot_km(table, ax=ax, min_at_risk=min_at_risk, title="t",
                                                  group_col=group_col))


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(n_big=st.integers(40, 300), n_small=st.integers(3, 30), seed=st.integers(0, 10_000),
       min_cell=st.sampled_from([5, 11, 20]))
def test_coarsened_curves_reveal_no_small_step(n_big, n_small, seed, min_cell):
    """Random programs with a small group: no drawn step rests on fewer than min_cell people,
    every plotted height is a published step estimate, and each published count is 0 or a
    multiple of min_cell."""
    rng = np.random.default_rng(seed)
    n = n_big + n_small
    d = pd.DataFrame({
        "g": ["big"] * n_big + ["small"] * n_small,
        "t": np.ceil(rng.exponential(200, n)).clip(1, 720),
        "c": np.ceil(rng.uniform(30, 720, n)),
    })
    d["time"] = np.minimum(d["t"], d["c"])
    d["event"] = (d["t"] <= d["c"]).astype(int)
    km = survival_curve(d, time="time", event="event", by="g")
    steps = coarsen_km(km.table, min_cell=min_cell, group_col="g")
    for _, s in steps.groupby("group"):
        assert (s["events"] % min_cell == 0).all() and (s["events"].iloc[1:-1] >= min_cell).all()
        assert (s["censored_before"] % min_cell == 0).all()
        drops = -np.diff(s["n_at_risk"].to_numpy())
        assert ((drops == 0) | (drops >= min_cell)).all()
        assert (s["estimate"] >= 0).all() and (np.diff(s["estimate"]) <= 0).all()
    fig = _km_figure(steps, group_col="group", min_at_risk=min_cell)
    data = {"curves": [{"group": g, "steps": s.to_dict(orient="records")} for g, s in steps.groupby("group")]}
    assert svg_step_findings(fig.svg, min_cell=min_cell, n_max=n + min_cell - 1) == []
    assert svg_matches_data(fig.svg, data) == []
    # the published counts give back every drawn height
    for _, s in steps.groupby("group"):
        s = s.iloc[:-1] if len(s) > 1 and s["events"].iloc[-1] == 0 else s
        np.testing.assert_allclose(s["estimate"], np.cumprod(1 - s["events"] / s["n_at_risk"]), rtol=1e-12)
    # control: the exact curve of the same data is caught whenever its first step is small
    # at a large number at risk (the reader cannot mistake it for min_cell events)
    big = km.table[(km.table["g"] == "big") & (km.table["events"] > 0)]
    first = big.iloc[0]
    if first["events"] * (n + min_cell - 1) < min_cell * first["n_at_risk"] and first["n_at_risk"] >= min_cell:
        exact = _km_figure(km.table, group_col="g", min_at_risk=min_cell)
        assert svg_step_findings(exact.svg, min_cell=min_cell, n_max=n + min_cell - 1)


def test_round_svg_coordinates_leaves_text_alone():
    svg = '<svg><path d="M 1.234567 2.5 L 3.999 4"/><text x="1.23456">0.123456</text></svg>'
    assert round_svg_coordinates(svg) == '<svg><path d="M 1.23 2.5 L 4 4"/><text x="1.23">0.123456</text></svg>'


def test_coarsen_km_with_min_cell_one_is_the_exact_curve():
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"time": np.ceil(rng.exponential(50, 80)), "event": rng.integers(0, 2, 80)})
    km = survival_curve(d, time="time", event="event")
    steps = coarsen_km(km.table, min_cell=1)
    ev = km.table[km.table["events"] > 0]
    np.testing.assert_allclose(steps["estimate"].iloc[1:len(ev) + 1], ev["estimate"], rtol=1e-12)
    np.testing.assert_allclose(steps["ci_lower"].iloc[1:len(ev) + 1], ev["ci_lower"], rtol=1e-9)


def test_scan_reads_curves_whose_steps_matplotlib_merged():
    """With thousands of steps matplotlib simplifies the path (small steps become slanted
    segments); the single steps left are still read back, and the coarsened curve passes."""
    rng = np.random.default_rng(7)
    n = 6000
    d = pd.DataFrame({"g": rng.choice(["a", "b"], n), "t": np.ceil(rng.exponential(3000, n)),
                      "c": np.ceil(rng.uniform(1, 720, n))})
    d["time"] = np.minimum(d["t"], d["c"])
    d["event"] = (d["t"] <= d["c"]).astype(int)
    km = survival_curve(d, time="time", event="event", by="g")
    from recoverystats.plotting.report import plot_km
    from recoverystats.report.build import _figure

    exact = _figure("km", "km", lambda ax: plot_km(km.table, ax=ax, min_at_risk=MIN_CELL, group_col="g"),
                    round_coordinates=False)
    curves = svg_step_curves(exact.svg)
    assert len(curves) == 2 and all((~c.single).any() for c in curves)  # some steps were merged
    found = svg_step_findings(exact.svg, min_cell=MIN_CELL, n_max=n + MIN_CELL - 1)
    assert len(found) == 2 and all("rest on fewer than 11 people" in f for f in found)
    steps = coarsen_km(km.table, min_cell=MIN_CELL, group_col="g")
    coarse = _figure("km", "km", lambda ax: plot_km(steps, ax=ax, min_at_risk=MIN_CELL, group_col="group"))
    assert svg_step_findings(coarse.svg, min_cell=MIN_CELL, n_max=n + MIN_CELL - 1) == []
