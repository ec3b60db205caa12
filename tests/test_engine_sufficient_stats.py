"""Sufficient statistics from the engine give the per-participant results exactly.

Beyond what fits in memory the engine computes counts (``engines.measures.
survival_counts``, ``proportion_cells``, ``pattern_counts``) and the statistics stay in
our tested Python code: fed those counts as frequency weights (or expanded by
``expand_counts`` for the functions without case weights), Kaplan-Meier, the log-rank
test, the Aalen-Johansen cumulative incidence, rate comparisons (exact, chi-square and
Mantel-Haenszel) and logistic regression must give the results of the per-participant
rows. Counts are taken on DuckDB (the same expressions run on Spark: see the conformance
suite for the measure itself).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

ibis = pytest.importorskip("ibis")

import recoverystats as rs  # noqa: E402
from recoverystats import measures  # noqa: E402
from recoverystats.engines import measures as E  # noqa: E402
from recoverystats.errors import InvalidParameterError  # noqa: E402
from test_engine_conformance import AS_OF, simulated_program, to_arrow  # noqa: E402

EXACT = 1e-12  # the same arithmetic on aggregated rows: equal to rounding
FIT = 1e-8  # iterative fits (IRLS) from a different starting data layout: to convergence


@pytest.fixture(scope="module")
def prog():
    return simulated_program(3000, 2)


@pytest.fixture(scope="module")
def tables(prog):
    con = ibis.duckdb.connect()
    return {n: con.create_table(n, to_arrow(df)) for n, df in prog.tables.items()}


def _measure(prog, name, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(measures, name)(prog, as_of=AS_OF, **kw)


def test_kaplan_meier_from_counts(prog, tables):
    rel = _measure(prog, "relapse")
    counts = E.survival_counts(E.relapse(tables, as_of=AS_OF), by="group").to_pandas()
    assert len(counts) < len(rel) / 2  # aggregated: far fewer rows than participants
    a = rs.survival_curve(rel, time="time_days", event="event", by="group")
    b = rs.survival_curve(counts, time="time_days", event="event", by="group", weights="n",
                          weight_type="frequency")
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=False, rtol=EXACT)
    # n is the number of people either way (a float when it is a sum of weights)
    qa, qb = a.quantile(0.8), b.quantile(0.8)
    assert qa["estimate"].notna().all()
    pd.testing.assert_frame_equal(qa, qb, check_exact=False, rtol=EXACT, check_dtype=False)


def test_logrank_from_expanded_counts(prog, tables):
    rel = _measure(prog, "relapse")
    counts = E.survival_counts(E.relapse(tables, as_of=AS_OF), by=["group", "site"]).to_pandas()
    rows = E.expand_counts(counts)
    assert len(rows) == rel["time_days"].notna().sum()
    for strata in (None, "site"):
        a = rs.compare_survival(rel, time="time_days", event="event", group="group", strata=strata)
        b = rs.compare_survival(rows, time="time_days", event="event", group="group", strata=strata)
        assert b.statistic == pytest.approx(a.statistic, rel=EXACT)
        assert b.p_value == pytest.approx(a.p_value, rel=EXACT)


def test_cumulative_incidence_from_expanded_counts(prog, tables):
    rec = _measure(prog, "recidivism")
    counts = E.survival_counts(E.recidivism(tables, as_of=AS_OF), event="event_type", by="group").to_pandas()
    assert set(counts["event_type"]) == {0, 1, 2}  # deaths compete
    rows = E.expand_counts(counts)
    a = rs.cumulative_incidence(rec, time="time_days", event="event_type", cause=1, by="group")
    b = rs.cumulative_incidence(rows, time="time_days", event="event_type", cause=1, by="group")
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=False, rtol=EXACT)


@pytest.mark.parametrize("measure", ["rd", "rr", "or"])
def test_rate_comparison_from_cells(prog, tables, measure):
    rec = _measure(prog, "recidivism")
    cells = E.proportion_cells(E.recidivism(tables, as_of=AS_OF), "recidivated", group="group").to_pandas()
    assert len(cells) == 4
    a = rs.compare_proportions(rec, "recidivated", group="group", measure=measure)
    b = rs.compare_proportions(cells, "recidivated", group="group", measure=measure, weights="n",
                               weight_type="frequency")
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=False, rtol=EXACT)


def test_mantel_haenszel_from_stratified_cells(prog, tables):
    rel = _measure(prog, "relapse", window_days=180)
    cells = E.proportion_cells(E.relapse(tables, as_of=AS_OF, window_days=180), "relapsed", group="group",
                               strata="site").to_pandas()
    for measure in ("or", "rr", "rd"):
        a = rs.compare_proportions(rel, "relapsed", group="group", strata="site", measure=measure)
        b = rs.compare_proportions(cells, "relapsed", group="group", strata="site", measure=measure,
                                   weights="n", weight_type="frequency")
        pd.testing.assert_frame_equal(a.table, b.table, check_exact=False, rtol=EXACT)


def test_small_table_exact_test_from_cells(prog, tables):
    """Fisher's exact test and the exact conditional OR interval on a small site."""
    rec = _measure(prog, "recidivism")
    small = rec[rec["site"] == rec["site"].iloc[0]].head(40)
    expr = E.recidivism(tables, as_of=AS_OF)
    expr = expr.filter(expr.participant_id.isin(small["participant_id"].tolist()))
    cells = E.proportion_cells(expr, "recidivated", group="group").to_pandas()
    a = rs.compare_proportions(small, "recidivated", group="group", measure="or", test="fisher")
    b = rs.compare_proportions(cells, "recidivated", group="group", measure="or", test="fisher",
                               weights="n", weight_type="frequency")
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=False, rtol=EXACT)


def test_logistic_regression_from_covariate_patterns(prog, tables):
    rec = _measure(prog, "recidivism")
    adjust = ["risk_level", "gender", "site"]
    patterns = E.pattern_counts(E.recidivism(tables, as_of=AS_OF), "recidivated", exposure="group",
                                adjust=adjust).to_pandas()
    assert len(patterns) < 200 < rec["recidivated"].notna().sum()
    a = rs.odds_ratios(rec, "recidivated", exposure="group", adjust=adjust)
    b = rs.odds_ratios(patterns, "recidivated", exposure="group", adjust=adjust, weights="n",
                       weight_type="frequency")
    cols = ["odds_ratio", "ci_lower", "ci_upper", "std_error", "p_value"]
    cols = [c for c in cols if c in a.table.columns]
    assert len(cols) >= 4
    pd.testing.assert_frame_equal(a.table[cols], b.table[cols], check_exact=False, rtol=FIT)
    pd.testing.assert_frame_equal(a.vcov, b.vcov, check_exact=False, rtol=FIT)


def test_expand_counts_rejects_bad_counts():
    with pytest.raises(InvalidParameterError, match="whole non-negative counts"):
        E.expand_counts(pd.DataFrame({"t": [1.0, 2.0], "n": [1.5, 2.0]}))
    with pytest.raises(InvalidParameterError, match="whole non-negative counts"):
        E.expand_counts(pd.DataFrame({"t": [1.0], "n": [-1]}))
    out = E.expand_counts(pd.DataFrame({"t": [1.0, 2.0, 3.0], "n": [2, 0, 1]}))
    assert out["t"].tolist() == [1.0, 1.0, 3.0] and list(out.columns) == ["t"]
    assert np.issubdtype(out["t"].dtype, np.floating)
