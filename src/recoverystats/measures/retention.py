"""Program retention at 30/60/90/180 days and time to dropout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError
from recoverystats.io.program import ProgramData
from recoverystats.measures._common import (
    REASON_ENROLLED_AFTER,
    REASON_WINDOW,
    LabelColumn,
    as_column,
    attach,
    base_frame,
    beyond_cutoff_note,
    check_collect,
    check_days_list,
    check_program,
    day_number,
    is_engine_program,
    resolve_as_of,
    to_days,
    warn_as_of_before_enrollment,
    window_outcome,
)
from recoverystats.schema.spec import COMPLETION_REASONS


def retention(
    prog: ProgramData,
    *,
    days: Sequence[int] = (30, 60, 90, 180),
    as_of: Any = None,
    completion_counts: bool = True,
    collect: bool = True,
) -> pd.DataFrame:
    """Retention k days after enrollment, one row per participant.

    Parameters
    ----------
    prog
        The program (``participants`` is the only table used: ``enrollment_date``,
        ``discharge_date``, ``discharge_reason``).
    days
        The horizons k, in days (default 30, 60, 90 and 180).
    as_of
        Data cut-off; default ``prog.as_of``, else the latest date in the data
        (``df.attrs["measure"]["as_of_source"]`` says which).
    completion_counts
        Count a completed discharge (``discharge_reason`` in
        ``schema.spec.COMPLETION_REASONS``) before day k as retained.
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
        ``enrollment_date, discharge_date, discharge_reason, completed,
        length_of_stay``, then for each k ``retained_<k>`` (1.0/0.0, ``NaN`` when the
        k-day window is not observed) and ``eligible_<k>``, then ``event`` (1 =
        dropout, i.e. a discharge that is not a completion), ``time_days``,
        ``eligible`` (= ``eligible_<max k>``) and ``exclusion_reason``. The
        definition, parameters and ``as_of`` are in ``df.attrs["measure"]``.

    Notes
    -----
    With enrollment day :math:`e`, discharge day :math:`d` (or none), cut-off
    :math:`a` and length of stay :math:`L = \\min(d, a) - e`:

    .. math::

        \\text{retained}_k = 1[L \\ge k] \\lor (\\text{completion\\_counts} \\land
        \\text{completed} \\land d \\le e + k), \\qquad \\text{eligible}_k = 1[e + k \\le a].

    Time to dropout is ``(d - e, 1)`` for a non-completion discharge, ``(d - e, 0)``
    for a completion and ``(a - e, 0)`` while enrolled; feed it to
    ``survival_curve(df, time="time_days", event="event")`` (the same data in R:
    ``survfit(Surv(time_days, event) ~ group, data = df)``). Hand-written (a few
    vectorised pandas/numpy operations): no library defines program retention.

    Examples
    --------
    >>> import pandas as pd
    >>> from recoverystats import ProgramData
    >>> from recoverystats.measures import retention
    >>> prog = ProgramData.from_tables(participants=pd.DataFrame({
    ...     "participant_id": ["a", "b"], "group": ["pm", "pm"],
    ...     "enrollment_date": ["2025-01-01", "2025-01-01"],
    ...     "discharge_date": ["2025-01-21", None], "discharge_reason": ["withdrew", None]}))
    >>> df = retention(prog, days=(30,), as_of="2025-06-30")
    >>> df[["participant_id", "retained_30", "event", "time_days"]].to_string(index=False)
    'participant_id  retained_30  event  time_days\\n             a          0.0      1       20.0\\n             b          1.0      0      180.0'
    """
    if is_engine_program(prog):
        from recoverystats.engines.measures import run_measure

        return run_measure(prog, "retention", collect=collect, days=days, as_of=as_of, completion_counts=completion_counts)
    check_collect(collect, "retention")
    check_program(prog, "retention")
    horizons = check_days_list("days", days)
    if not isinstance(completion_counts, (bool, np.bool_)):
        raise InvalidParameterError(f"completion_counts must be True or False; got {completion_counts!r}.")
    as_of_ts, as_of_source = resolve_as_of(prog, as_of, "retention")
    a = day_number(as_of_ts)
    p = prog.participants
    df, covariates = base_frame(prog, as_of_ts)

    e = to_days(p["enrollment_date"])
    d = to_days(p["discharge_date"])
    reason = p["discharge_reason"].astype("string")
    d_obs = np.where(d <= a, d, np.nan)  # discharges after the cut-off are not yet known
    discharged = ~np.isnan(d_obs)
    completed = discharged & reason.isin(list(COMPLETION_REASONS)).fillna(False).to_numpy(dtype=bool)
    enrolled_by = e <= a
    warn_as_of_before_enrollment(e, a, as_of_ts, "retention")

    stay_end = np.where(discharged, d_obs, a)
    los = np.maximum(stay_end - e, 0.0)
    los[~enrolled_by] = np.nan

    df["discharge_date"] = p["discharge_date"].to_numpy()
    df["discharge_reason"] = as_column(reason)
    df["completed"] = completed
    df["length_of_stay"] = los
    for k in horizons:
        elig = enrolled_by & (e + k <= a)
        hit = (los >= k) | (completion_counts & completed & (d_obs <= e + k))
        df[f"retained_{k}"] = window_outcome(elig, np.asarray(hit, dtype=bool))
        df[f"eligible_{k}"] = elig

    dropout = discharged & ~completed & enrolled_by
    df["event"] = dropout.astype("int64")
    df["time_days"] = los
    kmax = horizons[-1]
    df["eligible"] = df[f"eligible_{kmax}"].to_numpy()
    why = LabelColumn(len(df))
    why[enrolled_by & ~df["eligible"].to_numpy()] = REASON_WINDOW
    why[~enrolled_by] = REASON_ENROLLED_AFTER
    df["exclusion_reason"] = why.values()

    notes = [n for n in (beyond_cutoff_note(prog, as_of_ts),) if n]
    n_future = int((~np.isnan(d) & (d > a)).sum())
    if n_future:
        notes.append(f"{n_future} discharge date(s) after as_of ignored (still enrolled at as_of).")
    n_nodate = int((reason.notna().to_numpy(dtype=bool) & np.isnan(d)).sum())
    if n_nodate:
        notes.append(f"{n_nodate} participant(s) with a discharge_reason but no discharge_date treated as enrolled.")
    n_noreason = int((discharged & enrolled_by & reason.isna().to_numpy(dtype=bool)).sum())
    if n_noreason:
        notes.append(f"{n_noreason} discharge(s) without a discharge_reason counted as dropout (event = 1), "
                     "not completion; fill in discharge_reason if some were completions.")
    return attach(df, "retention", as_of=as_of_ts, as_of_source=as_of_source,
                  parameters={"days": horizons, "completion_counts": bool(completion_counts)},
                  covariates=covariates, notes=notes)
