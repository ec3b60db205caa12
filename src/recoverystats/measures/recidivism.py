"""Recidivism after release: rearrest, reconviction, reincarceration; death as a competing event."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from recoverystats._checks import check_option
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
from recoverystats.schema.spec import RECIDIVISM_LEVELS, TECHNICAL_VIOLATION_TYPES

RecidivismLevel = Literal["rearrest", "reconviction", "reincarceration"]
MissingRelease = Literal["enrollment", "exclude"]

REASON_NO_RELEASE = "no release date"
REASON_FOLLOWUP_ENDED = "follow-up ended before window end"
REASON_RELEASED_AFTER = "released after as_of"


def recidivism(
    prog: ProgramData,
    *,
    window_days: int | None = 365,
    level: RecidivismLevel = "rearrest",
    as_of: Any = None,
    missing_release: MissingRelease = "enrollment",
    collect: bool = True,
) -> pd.DataFrame:
    """Time to first rearrest/reconviction/reincarceration after release, and the W-day rate.

    Parameters
    ----------
    prog
        The program: ``participants`` (``release_date``, ``enrollment_date``,
        ``followup_end_date``) and ``events`` (``arrest``, ``conviction``,
        ``incarceration``, ``parole_violation``, ``probation_violation``, ``death``).
    window_days
        Fixed window W in days for ``recidivated`` (default 365, one year); ``None``
        for time-to-event columns only.
    level
        ``"rearrest"`` (arrest, conviction or incarceration) ⊇ ``"reconviction"``
        (conviction or incarceration) ⊇ ``"reincarceration"`` (incarceration);
        ``schema.spec.RECIDIVISM_LEVELS``.
    as_of
        Data cut-off; default ``prog.as_of``, else the latest date in the data.
    missing_release
        Participants without a ``release_date``: ``"enrollment"`` (default) indexes
        them on ``enrollment_date`` (``index_source == "enrollment_date"``, counted in
        the notes); ``"exclude"`` makes them ineligible with
        ``exclusion_reason == "no release date"``.
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
        ``enrollment_date, index_date, index_source, release_date_missing,
        recidivism_date, recidivism_type, death_date, end_date, event_type`` (0
        censored, 1 recidivism, 2 death first), ``event`` (1 recidivism), ``time_days``
        (from the index date), with a window also ``recidivated`` (1.0/0.0, NaN when
        not eligible), ``died_in_window``, ``technical_violation`` (1.0/0.0 within the
        window, NaN when not eligible), and always ``technical_violation_date``,
        ``technical_violation_type``, ``technical_violation_days``, then ``eligible``
        and ``exclusion_reason``.

    Notes
    -----
    With index day :math:`s_i` (release, else enrollment), end of observation
    :math:`c_i = \\min(\\text{followup\\_end}_i, a)`, death day :math:`D_i` and the
    first qualifying event day :math:`r_i > s_i`:

    .. math::

        t_i = \\min(r_i, D_i, c_i) - s_i, \\quad
        \\text{event\\_type}_i = \\begin{cases} 1 & r_i = t_i + s_i \\\\
        2 & D_i = t_i + s_i < r_i \\\\ 0 & \\text{otherwise} \\end{cases}

    ``recidivated = 1[r_i - s_i \\le W]`` for participants with
    :math:`s_i + W \\le \\min(a, \\text{followup\\_end}_i)` (or who died before day W),
    so its mean is the empirical cumulative incidence at W with death competing —
    the Aalen-Johansen estimate at W when nobody is censored before W (R:
    ``cmprsk::cuminc(time_days, event_type)``; Python: ``lifelines.AalenJohansenFitter``).
    On the Rossi et al. (1980) data laid out as program tables the one-year rearrest
    count is 114 of 432. Hand-written: no library defines recidivism from event logs.
    """
    if is_engine_program(prog):
        from recoverystats.engines.measures import run_measure

        return run_measure(prog, "recidivism", collect=collect, window_days=window_days, level=level, as_of=as_of,
                           missing_release=missing_release)
    check_collect(collect, "recidivism")
    check_program(prog, "recidivism")
    check_option("level", level, RecidivismLevel)
    check_option("missing_release", missing_release, MissingRelease)
    W = None if window_days is None else check_days("window_days", window_days)
    as_of_ts, as_of_source = resolve_as_of(prog, as_of, "recidivism")
    a = day_number(as_of_ts)
    p = prog.participants
    n = len(p)
    df, covariates = base_frame(prog, as_of_ts)

    e = to_days(p["enrollment_date"])
    rel = to_days(p["release_date"])
    no_release = np.isnan(rel)
    s = np.where(no_release, e, rel)
    enrolled_by = e <= a
    warn_as_of_before_enrollment(e, a, as_of_ts, "recidivism")
    indexed = enrolled_by & (s <= a)

    fu = to_days(p["followup_end_date"])
    death = death_day(prog, a)
    death = np.where(death > s, death, np.nan)  # a death on/before the index date is a data error, not follow-up
    c = nan_min(fu, np.full(n, a))
    c = np.where(indexed, c, np.nan)

    ev = usable_events(prog, RECIDIVISM_LEVELS[level], a, honor_history_flag=False)
    r, r_row = first_event(ev, n, s, c, prog.events["event_type"])
    end_obs = nan_min(c, death)
    r = np.where(r <= end_obs, r, np.nan)  # a qualifying event after death cannot count
    recid = ~np.isnan(r) & indexed
    died_first = ~recid & ~np.isnan(death) & (death <= c) & indexed
    t_end = np.where(recid, r, np.where(died_first, death, c))
    time = np.maximum(t_end - s, 0.0)
    time[~indexed] = np.nan
    event_type = np.where(recid, 1, np.where(died_first, 2, 0)).astype("int64")

    tv = usable_events(prog, TECHNICAL_VIOLATION_TYPES, a, honor_history_flag=False)
    v, v_row = first_event(tv, n, s, end_obs, prog.events["event_type"])

    df["index_date"] = to_dates(s).to_numpy()
    index_source = LabelColumn(n, fill="release_date")
    index_source[no_release] = "enrollment_date"
    df["index_source"] = index_source.values(unicode=True)
    df["release_date_missing"] = no_release
    df["recidivism_date"] = to_dates(np.where(recid, r, np.nan)).to_numpy()
    df["recidivism_type"] = text_take(prog.events["event_type"], np.where(recid, r_row, -1))
    df["death_date"] = to_dates(np.where(indexed, death, np.nan)).to_numpy()
    df["end_date"] = to_dates(np.where(indexed, t_end, np.nan)).to_numpy()
    df["event_type"] = event_type
    df["event"] = recid.astype("int64")
    df["time_days"] = time

    why = LabelColumn(n)
    why[enrolled_by & ~indexed] = REASON_RELEASED_AFTER
    why[~enrolled_by] = REASON_ENROLLED_AFTER
    excluded = no_release & enrolled_by if missing_release == "exclude" else np.zeros(n, dtype=bool)
    eligible = indexed & ~excluded
    if W is not None:
        died_in_window = died_first & (death - s <= W)
        window_done = indexed & (s + W <= a)
        early_end = window_done & ~np.isnan(fu) & (fu < s + W) & ~died_in_window
        eligible = window_done & ~early_end & ~excluded
        why[indexed & ~window_done] = REASON_WINDOW
        why[early_end] = REASON_FOLLOWUP_ENDED
        df["recidivated"] = window_outcome(eligible, recid & (r - s <= W))
        df["died_in_window"] = died_in_window
        df["technical_violation"] = window_outcome(eligible, ~np.isnan(v) & (v - s <= W))
    why[excluded] = REASON_NO_RELEASE
    df["technical_violation_date"] = to_dates(np.where(indexed, v, np.nan)).to_numpy()
    df["technical_violation_type"] = text_take(prog.events["event_type"], np.where(indexed & ~np.isnan(v), v_row, -1))
    df["technical_violation_days"] = np.where(indexed, v - s, np.nan)
    df["eligible"] = eligible
    df["exclusion_reason"] = why.values()

    notes = [n for n in (beyond_cutoff_note(prog, as_of_ts),) if n]
    n_missing = int((no_release & enrolled_by).sum())
    if n_missing:
        if missing_release == "enrollment":
            notes.append(f"{n_missing} participant(s) have no release_date and are indexed on enrollment_date "
                         "(index_source == 'enrollment_date'); pass missing_release='exclude' to drop them.")
        else:
            notes.append(f"{n_missing} participant(s) have no release_date and are excluded ('no release date').")
    n_deaths = int(died_first.sum())
    if n_deaths:
        notes.append(f"{n_deaths} death(s) before any recidivism: competing events (event_type == 2).")
    return attach(df, "recidivism", as_of=as_of_ts, as_of_source=as_of_source,
                  parameters={"window_days": W, "level": level, "missing_release": missing_release},
                  covariates=covariates, notes=notes)
