"""GPRA 6-month follow-up: due, completed in window, follow-up rate against target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from recoverystats._checks import as_column_list, check_columns, check_dataframe, check_option
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
)

DueRule = Literal["window_closed", "window_opened"]
REASON_DIED = "died before follow-up window closed"
FOLLOWUP_TIMEPOINT = "followup_6m"


def check_window(window: Any, name: str = "window") -> tuple[int, int]:
    """A ``(start, end)`` pair of whole days with ``0 <= start <= end``."""
    try:
        lo, hi = window
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{name} must be a (start, end) pair of days after intake, e.g. (150, 240); got {window!r}."
        ) from None
    lo = check_days(f"{name}[0]", lo, allow_zero=True)
    hi = check_days(f"{name}[1]", hi, allow_zero=True)
    if lo > hi:
        raise InvalidParameterError(f"{name} must have start <= end, e.g. (150, 240); got {window!r}.")
    return lo, hi


def _check_target(target: Any) -> float:
    try:
        t = float(target)
    except (TypeError, ValueError):
        t = float("nan")
    if not 0.0 <= t <= 1.0:
        raise InvalidParameterError(f"target must be a proportion between 0 and 1 (e.g. 0.8); got {target!r}.")
    return t


def intake_days(prog: ProgramData, as_of_day: float) -> np.ndarray:
    """Day of each participant's (first) intake assessment on or before as_of; NaN when none."""
    n = len(prog.participants)
    out = np.full(n, np.nan)
    a = prog.assessments
    if not len(a):
        return out
    m = (a["timepoint"] == "intake").fillna(False).to_numpy(dtype=bool)
    day = to_days(a.loc[m, "assessment_date"])
    pos = positions(prog, a.loc[m, "participant_id"])
    ok = (pos >= 0) & ~np.isnan(day) & (day <= as_of_day)
    np.fmin.at(out, pos[ok], day[ok])  # per-participant minimum (NaN: none)
    return out


def followup(
    prog: ProgramData,
    *,
    window: tuple[int, int] = (150, 240),
    target: float = 0.8,
    as_of: Any = None,
    due_rule: DueRule = "window_closed",
    collect: bool = True,
) -> pd.DataFrame:
    """GPRA 6-month follow-up status, one row per participant.

    Parameters
    ----------
    prog
        The program: ``participants``, ``assessments`` (``intake`` and
        ``followup_6m`` timepoints), ``events`` (``death``).
    window
        Follow-up window in days after the index date (intake assessment date, else
        enrollment date); default (150, 240), about 5-8 months. Inclusive at both ends.
    target
        Follow-up rate target (default 0.80, the SAMHSA GPRA requirement); stored in
        ``attrs`` and used by :func:`followup_rate`.
    as_of
        Data cut-off; default ``prog.as_of``, else the latest date in the data.
    due_rule
        ``"window_closed"`` (default): due once ``index + window[1] <= as_of``;
        ``"window_opened"``: due once ``index + window[0] <= as_of``.
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
        ``enrollment_date, index_date, index_source, window_open, window_close,
        followup_date, days_to_followup, due, completed, completed_in_window,
        completed_outside_window`` (the last two 1.0/0.0 when due, NaN otherwise),
        ``event`` (follow-up done in window), ``time_days`` (to the follow-up, or
        censored at the earliest of as_of, window close and death), ``eligible`` (= due) and
        ``exclusion_reason``. ``df.attrs["measure"]["summary"]`` holds the overall
        due / completed / rate / target.

    Notes
    -----
    .. math::

        \\text{rate} = \\frac{\\#\\{\\text{due and } w_0 \\le t_{\\text{fu}} - t_0 \\le w_1\\}}
                          {\\#\\{\\text{due}\\}}

    following the SAMHSA CSAT GPRA follow-up rule (interview 5-8 months after intake,
    rate target 80%). Hand-written: no library implements GPRA follow-up accounting.
    """
    if is_engine_program(prog):
        from recoverystats.engines.measures import run_measure

        return run_measure(prog, "followup", collect=collect, window=window, target=target, as_of=as_of,
                           due_rule=due_rule)
    check_collect(collect, "followup")
    check_program(prog, "followup")
    lo, hi = check_window(window)
    t = _check_target(target)
    check_option("due_rule", due_rule, DueRule)
    as_of_ts, as_of_source = resolve_as_of(prog, as_of, "followup")
    a = day_number(as_of_ts)
    p = prog.participants
    n = len(p)
    df, covariates = base_frame(prog, as_of_ts)

    e = to_days(p["enrollment_date"])
    enrolled_by = e <= a
    warn_as_of_before_enrollment(e, a, as_of_ts, "followup")
    intake = intake_days(prog, a)
    idx = np.where(np.isnan(intake), e, intake)
    idx_src = LabelColumn(n, fill="intake_assessment")
    idx_src[np.isnan(intake)] = "enrollment_date"

    # the follow-up interview: the first followup_6m assessment in the window, else the first one
    fu_day = np.full(n, np.nan)
    asm = prog.assessments
    if len(asm):
        m = (asm["timepoint"] == FOLLOWUP_TIMEPOINT).fillna(False).to_numpy(dtype=bool)
        day = to_days(asm.loc[m, "assessment_date"])
        pos = positions(prog, asm.loc[m, "participant_id"])
        ok = (pos >= 0) & ~np.isnan(day) & (day <= a)
        pos, day = pos[ok], day[ok]
        if len(pos):
            rel = day - idx[pos]
            inwin = (rel >= lo) & (rel <= hi)
            sub = pd.DataFrame({"pos": pos, "day": day, "out": ~inwin})
            sub = sub.sort_values(["pos", "out", "day"], kind="stable").drop_duplicates("pos")
            fu_day[sub["pos"].to_numpy()] = sub["day"].to_numpy()

    rel_fu = fu_day - idx
    completed = ~np.isnan(fu_day) & enrolled_by
    in_win = completed & (rel_fu >= lo) & (rel_fu <= hi)
    death = death_day(prog, a)
    died_before = ~np.isnan(death) & (death < idx + hi) & ~in_win
    opened = enrolled_by & (idx + lo <= a)
    closed = enrolled_by & (idx + hi <= a)
    due = (closed if due_rule == "window_closed" else opened) & ~died_before

    df["index_date"] = to_dates(idx).to_numpy()
    df["index_source"] = idx_src.values(unicode=True)
    df["window_open"] = to_dates(idx + lo).to_numpy()
    df["window_close"] = to_dates(idx + hi).to_numpy()
    df["followup_date"] = to_dates(np.where(completed, fu_day, np.nan)).to_numpy()
    df["days_to_followup"] = np.where(completed, rel_fu, np.nan)
    df["due"] = due
    df["completed"] = completed
    df["completed_in_window"] = np.where(due, in_win.astype(float), np.nan)
    df["completed_outside_window"] = np.where(due, (completed & ~in_win).astype(float), np.nan)
    df["event"] = in_win.astype("int64")
    # not at risk of an interview after the window closes, after as_of, or after death
    cens = nan_min(np.full(n, a), idx + hi, death)
    df["time_days"] = np.where(enrolled_by, np.maximum(np.where(in_win, fu_day, cens) - idx, 0.0), np.nan)
    df["eligible"] = due
    why = LabelColumn(n)
    why[enrolled_by & ~due] = REASON_WINDOW
    why[enrolled_by & died_before] = REASON_DIED
    why[~enrolled_by] = REASON_ENROLLED_AFTER
    df["exclusion_reason"] = why.values()

    n_due = int(due.sum())
    n_in = int((due & in_win).sum())
    summary = {
        "due": n_due,
        "completed_in_window": n_in,
        "completed_outside_window": int((due & completed & ~in_win).sum()),
        "not_completed": int((due & ~completed).sum()),
        "rate": n_in / n_due if n_due else float("nan"),
        "target": t,
        "meets_target": bool(n_due and n_in / n_due >= t),
    }
    notes = [n for n in (beyond_cutoff_note(prog, as_of_ts),) if n]
    n_enr_idx = int((enrolled_by & np.isnan(intake)).sum())
    if n_enr_idx:
        notes.append(f"{n_enr_idx} participant(s) without an intake assessment: window counted from enrollment_date.")
    df = attach(df, "followup", as_of=as_of_ts, as_of_source=as_of_source,
                parameters={"window": (lo, hi), "target": t, "due_rule": due_rule},
                covariates=covariates, notes=notes)
    df.attrs["measure"]["summary"] = summary
    return df


def followup_rate(df: pd.DataFrame, *, by: str | Sequence[str] | None = None, target: float | None = None) -> pd.DataFrame:
    """Follow-up rate (completed in window / due) overall or by group, against the target.

    Parameters
    ----------
    df
        The output of :func:`followup`.
    by
        Optional column(s) to tabulate by (e.g. ``"group"`` or ``["site", "group"]``).
    target
        Rate target; default the one used by :func:`followup` (``df.attrs``), else 0.8.

    Returns
    -------
    pandas.DataFrame
        ``by-columns..., due, completed_in_window, completed_outside_window,
        not_completed, rate, target, meets_target``. ``rate`` is NaN when nothing is due.
        For a confidence interval pass the due rows to
        ``recoverystats.proportion(df[df.due], "completed_in_window", by=...)``.
    """
    check_dataframe(df, "df")
    check_columns(df, ["due", "completed", "completed_in_window"], "df (output of followup())")
    cols = as_column_list(by)
    check_columns(df, cols, "by")
    if target is None:
        target = df.attrs.get("measure", {}).get("parameters", {}).get("target", 0.8)
    t = _check_target(target)
    d = df.loc[df["due"].astype(bool)]
    work = pd.DataFrame({
        "due": np.ones(len(d), dtype="int64"),
        "completed_in_window": d["completed_in_window"].to_numpy() == 1.0,
        "completed_outside_window": d["completed"].to_numpy(dtype=bool) & (d["completed_in_window"].to_numpy() != 1.0),
        "not_completed": ~d["completed"].to_numpy(dtype=bool),
    })
    for c in cols:
        work[c] = d[c].to_numpy()
    if cols:
        out = work.groupby(cols, dropna=False, observed=True).sum().reset_index()
    else:
        out = work.sum().to_frame().T
    for c in ("due", "completed_in_window", "completed_outside_window", "not_completed"):
        out[c] = out[c].astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["rate"] = np.where(out["due"] > 0, out["completed_in_window"] / out["due"].where(out["due"] > 0, 1), np.nan)
    out["target"] = t
    out["meets_target"] = (out["rate"] >= t).to_numpy(dtype=bool)
    return out[[*cols, "due", "completed_in_window", "completed_outside_window", "not_completed", "rate",
                "target", "meets_target"]]
