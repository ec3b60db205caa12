"""Mentor engagement: contacts per 30 days in the first 90 days, time to first match."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError
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
    is_engine_program,
    nan_min,
    positions,
    resolve_as_of,
    to_dates,
    to_days,
    warn_as_of_before_enrollment,
    window_outcome,
)


def engagement(
    prog: ProgramData,
    *,
    first_days: int = 90,
    as_of: Any = None,
    engaged_min_contacts: int = 3,
    collect: bool = True,
) -> pd.DataFrame:
    """Mentor contacts in the first days after enrollment and time to first mentor match.

    Parameters
    ----------
    prog
        The program: ``participants``, ``contacts`` (``contact_date``, ``minutes``),
        ``matches`` (``match_date``).
    first_days
        Length of the early-engagement period in days (default 90: days 0-89).
    as_of
        Data cut-off; default ``prog.as_of``, else the latest date in the data.
    engaged_min_contacts
        ``engaged = 1`` when contacts in the first period are at least this (default 3,
        about one a month over 90 days; set it to the program's own definition).
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
        ``enrollment_date, contacts_first, minutes_first, contacts_per_30d, engaged``
        (the last three NaN when the period is not fully observed), ``contacts_total,
        minutes_total, first_contact_date, matched, match_date, days_to_match``,
        ``event`` (= matched), ``time_days`` (to first match or censoring),
        ``eligible`` (period observed) and ``exclusion_reason``.

    Notes
    -----
    .. math::

        \\text{contacts\\_per\\_30d}_i = \\frac{30}{F}\\,
        \\#\\{\\text{contacts } j: 0 \\le t_{ij} - e_i \\le F - 1\\}

    for participants with :math:`e_i + F - 1 \\le a`. Time to first match is right-
    censored at the earliest of discharge, death and ``as_of`` for never-matched participants
    (R: ``survfit(Surv(time_days, event) ~ group)``). Minutes missing on a contact count
    as 0 in the minute totals. Hand-written with numpy per-participant sums and minima: no library
    defines mentor engagement.
    """
    if is_engine_program(prog):
        from recoverystats.engines.measures import run_measure

        return run_measure(prog, "engagement", collect=collect, first_days=first_days, as_of=as_of,
                           engaged_min_contacts=engaged_min_contacts)
    check_collect(collect, "engagement")
    check_program(prog, "engagement")
    F = check_days("first_days", first_days)
    if not isinstance(engaged_min_contacts, (int, np.integer)) or isinstance(engaged_min_contacts, bool) \
            or engaged_min_contacts < 0:
        raise InvalidParameterError(
            f"engaged_min_contacts must be a non-negative whole number (e.g. 3); got {engaged_min_contacts!r}."
        )
    as_of_ts, as_of_source = resolve_as_of(prog, as_of, "engagement")
    a = day_number(as_of_ts)
    p = prog.participants
    n = len(p)
    df, covariates = base_frame(prog, as_of_ts)
    e = to_days(p["enrollment_date"])
    enrolled_by = e <= a
    warn_as_of_before_enrollment(e, a, as_of_ts, "engagement")
    eligible = enrolled_by & (e + F - 1 <= a)

    c_first = np.zeros(n)
    m_first = np.zeros(n)
    c_total = np.zeros(n)
    m_total = np.zeros(n)
    first_contact = np.full(n, np.nan)
    con = prog.contacts
    if len(con):
        day = to_days(con["contact_date"])
        pos = positions(prog, con["participant_id"])
        mins = pd.to_numeric(con["minutes"], errors="coerce").to_numpy(dtype="float64") if "minutes" in con \
            else np.zeros(len(con))
        ok = (pos >= 0) & ~np.isnan(day) & (day <= a)
        pos, day, mins = pos[ok], day[ok], np.nan_to_num(mins[ok])
        rel = day - e[pos]
        after = rel >= 0
        early = after & (rel <= F - 1)
        c_total = np.bincount(pos[after], minlength=n).astype("float64")
        m_total = np.bincount(pos[after], weights=mins[after], minlength=n)
        c_first = np.bincount(pos[early], minlength=n).astype("float64")
        m_first = np.bincount(pos[early], weights=mins[early], minlength=n)
        np.fmin.at(first_contact, pos[after], day[after])  # per-participant minimum (NaN: none)

    match_day = np.full(n, np.nan)
    mt = prog.matches
    if len(mt):
        day = to_days(mt["match_date"])
        pos = positions(prog, mt["participant_id"])
        ok = (pos >= 0) & ~np.isnan(day) & (day <= a)
        np.fmin.at(match_day, pos[ok], day[ok])
    matched = ~np.isnan(match_day) & enrolled_by
    dis = to_days(p["discharge_date"])
    cens = nan_min(np.where(dis <= a, dis, np.nan), death_day(prog, a), np.full(n, a))
    time = np.maximum(np.where(matched, match_day, cens) - e, 0.0)
    time[~enrolled_by] = np.nan

    df["contacts_first"] = np.where(eligible, c_first, np.nan)
    df["minutes_first"] = np.where(eligible, m_first, np.nan)
    df["contacts_per_30d"] = np.where(eligible, c_first * 30.0 / F, np.nan)
    df["engaged"] = window_outcome(eligible, c_first >= engaged_min_contacts)
    df["contacts_total"] = np.where(enrolled_by, c_total, np.nan)
    df["minutes_total"] = np.where(enrolled_by, m_total, np.nan)
    df["first_contact_date"] = to_dates(first_contact).to_numpy()
    df["matched"] = matched
    df["match_date"] = to_dates(np.where(matched, match_day, np.nan)).to_numpy()
    df["days_to_match"] = np.where(matched, match_day - e, np.nan)
    df["event"] = matched.astype("int64")
    df["time_days"] = time
    df["eligible"] = eligible
    why = LabelColumn(n)
    why[enrolled_by & ~eligible] = REASON_WINDOW
    why[~enrolled_by] = REASON_ENROLLED_AFTER
    df["exclusion_reason"] = why.values()

    notes = [n for n in (beyond_cutoff_note(prog, as_of_ts),) if n]
    n_pre = int((matched & (match_day < e)).sum())
    if n_pre:
        notes.append(f"{n_pre} participant(s) matched before enrollment (e.g. pre-release): time_days = 0.")
    return attach(df, "engagement", as_of=as_of_ts, as_of_source=as_of_source,
                  parameters={"first_days": F, "engaged_min_contacts": int(engaged_min_contacts)},
                  covariates=covariates, notes=notes)
