"""Relapse: time to first relapse after enrollment and the fixed-window relapse rate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recoverystats.io.program import ProgramData
from recoverystats.measures._common import (
    REASON_ENROLLED_AFTER,
    REASON_WINDOW,
    LabelColumn,
    attach,
    base_frame,
    beyond_cutoff_note,
    check_collect,
    check_days,
    check_program,
    column_is,
    day_number,
    death_day,
    first_event,
    is_engine_program,
    nan_min,
    resolve_as_of,
    text_take,
    to_dates,
    to_days,
    usable_events,
    warn_as_of_before_enrollment,
    window_outcome,
)
from recoverystats.schema.spec import RELAPSE_EVENT_TYPES

REASON_OBS_ENDED = "observation ended before window end"


def relapse(prog: ProgramData, *, window_days: int | None = None, as_of: Any = None,
            collect: bool = True) -> pd.DataFrame:
    """Time to first relapse after enrollment, and the relapse rate within a fixed window.

    Parameters
    ----------
    prog
        The program: ``participants`` (``enrollment_date``, ``discharge_date``,
        ``followup_end_date``) and ``events`` (``relapse``, ``substance_use``,
        ``drug_screen`` with ``result``, ``death``).
    window_days
        Optional fixed window W in days: adds ``relapsed`` (relapse on day 1..W) and
        makes ``eligible`` mean "the whole window was observed".
    as_of
        Data cut-off; default ``prog.as_of``, else the latest date in the data.
    collect
        Programs held by an engine (``read_program(..., engine="duckdb"|"spark")``) only:
        ``True`` (default) runs the measure's engine definition
        (:mod:`recoverystats.engines.measures`) and returns this DataFrame; ``False``
        returns the unexecuted Ibis expression, for the sufficient statistics
        (``engines.measures.survival_counts``, ``proportion_cells``, ``pattern_counts``)
        when the per-participant table is too large to collect.

    Returns
    -------
    pandas.DataFrame
        One row per participant: ``participant_id, group, site``, covariates,
        ``enrollment_date``, ``relapse_date``, ``relapse_type``, ``end_date`` (end of
        observation), ``end_reason`` (``relapse``, ``followup_end``, ``discharge``,
        ``death``, ``as_of``), ``event``, ``time_days``, with ``window_days`` also
        ``relapsed`` (1.0/0.0, NaN when not eligible) and ``died_in_window``, then
        ``eligible`` and ``exclusion_reason``.

    Notes
    -----
    Observation for participant *i* runs from enrollment :math:`e_i` to
    :math:`c_i = \\min(f_i, \\text{death}_i, a)`, where :math:`f_i` is
    ``followup_end_date`` when given, else ``discharge_date`` (the program only sees
    relapse while it follows the participant). With :math:`r_i` the first relapse
    day strictly after :math:`e_i`:

    .. math::

        \\text{event}_i = 1[r_i \\le c_i], \\qquad
        \\text{time}_i = \\min(r_i, c_i) - e_i, \\qquad
        \\text{relapsed}_i = 1[r_i - e_i \\le W] \\text{ if eligible.}

    ``eligible`` with a window requires :math:`e_i + W \\le a` and
    :math:`c_i \\ge e_i + W` unless :math:`c_i` is a death; under independent
    censoring this keeps the fixed-window proportion unbiased for
    :math:`P(T \\le W)` (it equals the Kaplan-Meier :math:`1 - \\hat S(W)` when no
    one is censored before W). In R: ``survfit(Surv(time_days, event) ~ 1)``.
    Hand-written: no library defines relapse from program event logs.
    """
    if is_engine_program(prog):
        from recoverystats.engines.measures import run_measure

        return run_measure(prog, "relapse", collect=collect, window_days=window_days, as_of=as_of)
    check_collect(collect, "relapse")
    check_program(prog, "relapse")
    W = None if window_days is None else check_days("window_days", window_days)
    as_of_ts, as_of_source = resolve_as_of(prog, as_of, "relapse")
    a = day_number(as_of_ts)
    p = prog.participants
    n = len(p)
    df, covariates = base_frame(prog, as_of_ts)

    e = to_days(p["enrollment_date"])
    enrolled_by = e <= a
    warn_as_of_before_enrollment(e, a, as_of_ts, "relapse")
    fu = to_days(p["followup_end_date"])
    dis = to_days(p["discharge_date"])
    obs_end_planned = np.where(~np.isnan(fu), fu, dis)
    death = death_day(prog, a)
    c = nan_min(obs_end_planned, death, np.full(n, a))
    # which date ends observation (ties: death first, then the planned end, then as_of)
    end_reason = LabelColumn(n, fill="as_of")
    planned_end = ~np.isnan(obs_end_planned) & (obs_end_planned <= c)
    end_reason[planned_end & ~np.isnan(dis)] = "discharge"
    end_reason[planned_end & ~np.isnan(fu)] = "followup_end"
    end_reason[~np.isnan(death) & (death <= c)] = "death"

    ev = usable_events(prog, RELAPSE_EVENT_TYPES, a)
    if len(ev):
        is_screen = column_is(prog.events, "event_type", "drug_screen")[ev.row]
        positive = column_is(prog.events, "result", "positive")[ev.row]  # canonical codes are lower case
        ev = ev.subset(~is_screen | positive)
    r, r_row = first_event(ev, n, e, c, prog.events["event_type"])
    event = ~np.isnan(r) & enrolled_by
    time = np.where(event, r, c) - e
    time = np.maximum(time, 0.0)
    time[~enrolled_by] = np.nan
    end_reason[event] = "relapse"
    end_reason[~enrolled_by] = None

    df["relapse_date"] = to_dates(np.where(event, r, np.nan)).to_numpy()
    df["relapse_type"] = text_take(prog.events["event_type"], np.where(event, r_row, -1))
    df["end_date"] = to_dates(np.where(enrolled_by, np.where(event, r, c), np.nan)).to_numpy()
    df["end_reason"] = end_reason.values()
    df["event"] = event.astype("int64")
    df["time_days"] = time

    why = LabelColumn(n)
    why[~enrolled_by] = REASON_ENROLLED_AFTER
    if W is None:
        eligible = enrolled_by.copy()
    else:
        ended_by_death = ~np.isnan(death) & (death <= c) & (death < e + W)
        window_done = enrolled_by & (e + W <= a)
        early_end = window_done & (c < e + W) & ~ended_by_death
        eligible = window_done & ~early_end
        why[enrolled_by & ~window_done] = REASON_WINDOW
        why[early_end] = REASON_OBS_ENDED
        hit = event & (r - e <= W)
        df["relapsed"] = window_outcome(eligible, hit)
        df["died_in_window"] = ended_by_death & ~hit & enrolled_by
    df["eligible"] = eligible
    df["exclusion_reason"] = why.values()

    notes = [n for n in (beyond_cutoff_note(prog, as_of_ts),) if n]
    n_pre = int(np.sum(~np.isnan(fu) & ~np.isnan(e) & (fu < e)))
    if n_pre:
        notes.append(f"{n_pre} participant(s) with followup_end_date before enrollment_date: time_days = 0, event = 0.")
    return attach(df, "relapse", as_of=as_of_ts, as_of_source=as_of_source,
                  parameters={"window_days": W}, covariates=covariates, notes=notes)
