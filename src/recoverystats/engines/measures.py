"""The measures as backend-neutral Ibis expressions (DuckDB, Spark, any Ibis backend).

Each function here is the engine definition of the pandas measure of the same name in
:mod:`recoverystats.measures`: it takes a mapping of Ibis tables with the validated data
model's tables and columns (``participants``, ``events``, ``contacts``, ``assessments``,
``matches``; the names and types ``ProgramData.tables`` has in pandas, dates as DATE or
TIMESTAMP) and the measure's arguments, and returns an **unexecuted** Ibis table with the
same per-participant columns, in the same order, as the pandas measure. Executing it
(``expr.to_pandas()``, or :func:`collect`) runs the query on the engine that holds the
tables; nothing is computed in Python until then.

The definitions follow :mod:`recoverystats.measures.definitions` rule for rule (the
comments name the pandas step each expression mirrors). ``tests/test_engine_conformance.py``
runs every measure on pandas, DuckDB and Spark over the same fixtures and requires
identical output, so the two implementations cannot drift apart unnoticed. Why there are
two: the NumPy implementation is faster in memory (see ``benchmarks/RESULTS.md``,
"engines"), the engine one runs out of core and distributed.

Row order is not part of a relation, so (unlike pandas) the output is in no particular
order; :func:`collect` sorts by ``participant_id``. Where pandas would break a tie by row
order, both implementations break it by value (events on the same first day: the
alphabetically first ``event_type``; matches on the same first day: the smallest
``mentor_id``).

Hand-written (Ibis expressions): no library defines these program measures.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from recoverystats._checks import check_option
from recoverystats.engines._expr import (
    as_float,
    date_of,
    day,
    greatest0,
    label,
    nan_min,
    null_unless,
    true,
    window_outcome,
)
from recoverystats.errors import InvalidParameterError
from recoverystats.measures._common import (
    NON_COVARIATES,
    REASON_ENROLLED_AFTER,
    REASON_WINDOW,
    check_days,
    check_days_list,
)
from recoverystats.measures.followup import (
    FOLLOWUP_TIMEPOINT,
    REASON_DIED,
    DueRule,
    _check_target,
    check_window,
)
from recoverystats.measures.noms import NOMS_COLUMNS, NOMS_ITEMS, mcnemar_test
from recoverystats.measures.recidivism import (
    REASON_FOLLOWUP_ENDED,
    REASON_NO_RELEASE,
    REASON_RELEASED_AFTER,
    MissingRelease,
    RecidivismLevel,
)
from recoverystats.measures.relapse import REASON_OBS_ENDED
from recoverystats.schema.spec import (
    COMPLETION_REASONS,
    RECIDIVISM_LEVELS,
    RELAPSE_EVENT_TYPES,
    TECHNICAL_VIOLATION_TYPES,
)

__all__ = [
    "retention",
    "relapse",
    "recidivism",
    "followup",
    "engagement",
    "noms_counts",
    "noms_change",
    "latest_activity_date",
    "run_measure",
    "collect",
    "normalise",
    "survival_counts",
    "proportion_cells",
    "pattern_counts",
    "expand_counts",
]

Tables = Mapping[str, ir.Table]

_PID = "_rs_pid"  # the participant key of per-participant aggregates (avoids join name clashes)


# ---------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------
def _as_of_day(as_of: Any, func: str) -> tuple[int, pd.Timestamp]:
    try:
        ts = pd.Timestamp(as_of)
    except (TypeError, ValueError):
        ts = pd.NaT
    if as_of is None or ts is pd.NaT:
        raise InvalidParameterError(
            f"{func}: as_of must be a date (e.g. '2026-09-30' or a datetime.date); got {as_of!r}. On an "
            "engine the cut-off is not guessed: pass prog.as_of, or latest_activity_date(tables)."
        )
    ts = ts.normalize()
    return int((np.datetime64(ts.date(), "D") - np.datetime64("1970-01-01", "D")).astype(np.int64)), ts


def _participants(tables: Tables, func: str) -> ir.Table:
    if "participants" not in tables:
        raise InvalidParameterError(f"{func}: tables must include 'participants'; got {', '.join(tables) or 'none'}.")
    return tables["participants"]


def _table(tables: Tables, name: str) -> ir.Table | None:
    """``tables[name]``; ``None`` when absent (the pandas ProgramData's empty table)."""
    return tables.get(name)


def _col(t: ir.Table, name: str, dtype: str) -> ir.Value:
    """``t[name]``, or a NULL of ``dtype`` when the table has no such column."""
    return t[name] if name in t.columns else ibis.null(dtype)


def _join(p: ir.Table, agg: ir.Table) -> ir.Table:
    """Left join a per-participant aggregate (keyed ``_rs_pid``) onto the participants."""
    return p.left_join(agg, p.participant_id == agg[_PID]).drop(_PID)


def _on_or_before(col: ir.Value, a: int) -> ir.BooleanValue:
    """``col <= as_of`` compared on the column itself (a DATE column: the engine can push
    the filter into its scan). NULL dates give NULL, and a filter drops NULL like False."""
    if col.type().is_date():
        return col <= ibis.literal(_dt.date(1970, 1, 1) + _dt.timedelta(days=a), "date")
    return day(col) <= a


def _usable_events(tables: Tables, types: Sequence[str], a: int, *, honor_history_flag: bool = True) -> ir.Table | None:
    """Events of ``types`` with a date on or before as_of (``_day``); history rows dropped
    when ``honor_history_flag`` (pandas ``usable_events``). Unknown participants drop out in
    the joins that follow."""
    ev = _table(tables, "events")
    if ev is None:
        return None
    preds = [ev.event_type.isin(list(types)), _on_or_before(ev.event_date, a)]
    if honor_history_flag and "before_enrollment" in ev.columns:
        preds.append(~ev.before_enrollment.fill_null(False))
    return ev.filter(*preds).mutate(_day=day(ev.event_date))


def _death_day(tables: Tables, p: ir.Table, a: int) -> ir.Table:
    """Adds ``_death``: the first death event, else the discharge date when
    ``discharge_reason == 'died'`` (on or before as_of); pandas ``death_day``."""
    ev = _usable_events(tables, ("death",), a)
    if ev is not None:
        agg = ev.group_by(ev.participant_id.name(_PID)).aggregate(_death_ev=ev._day.min())
        p = _join(p, agg)
    else:
        p = p.mutate(_death_ev=ibis.null("int64"))
    if "discharge_reason" in p.columns:
        dis = day(p.discharge_date)
        by_discharge = null_unless((p.discharge_reason == "died") & (dis <= a), dis)
        return p.mutate(_death=ibis.coalesce(p._death_ev, by_discharge)).drop("_death_ev")
    return p.mutate(_death=p._death_ev).drop("_death_ev")


#: Day numbers are shifted by this before packing (keys stay positive for any real date).
_DAY_OFFSET = 1_000_000


def _first_event(ev: ir.Table | None, p: ir.Table, start: str, end: str, prefix: str,
                 types: Sequence[str]) -> ir.Table:
    """Adds ``<prefix>_day`` and ``<prefix>_type``: each participant's first event strictly
    after column ``start`` and on or before column ``end``; on the same first day, the
    alphabetically first ``event_type`` (pandas ``first_event`` with ``types``).

    One aggregate: each event's (day, type rank) is packed into one integer,
    ``(day + offset) * k + rank`` with the ranks of ``types`` in alphabetical order, so
    the minimum is the first day and, on it, the first type.
    """
    dcol, tcol = f"{prefix}_day", f"{prefix}_type"
    if ev is None:
        return p.mutate(**{dcol: ibis.null("int64"), tcol: ibis.null("string")})
    ordered = sorted(types)
    k = len(ordered) + 1
    rank = ibis.cases(*((ev.event_type == t, i) for i, t in enumerate(ordered)), else_=len(ordered))
    ev = ev.mutate(_key=(ev._day + _DAY_OFFSET) * k + rank.cast("int64"))
    bounds = p.select(_b_pid=p.participant_id, _b_s=p[start], _b_c=p[end])
    j = ev.join(bounds, ev.participant_id == bounds._b_pid)
    q = j.filter(j._day > j._b_s, j._day <= j._b_c)
    agg = q.group_by(q._b_pid.name(_PID)).aggregate(_f_key=q._key.min())
    p = _join(p, agg)
    first_rank = p._f_key % k
    p = p.mutate(**{
        dcol: p._f_key // k - _DAY_OFFSET,
        tcol: ibis.cases(*((first_rank == i, t) for i, t in enumerate(ordered)), else_=ibis.null("string")),
    })
    return p.drop("_f_key")


def _first_mentor(tables: Tables, p: ir.Table, a: int) -> ir.Table:
    """Adds ``_mentor``: the mentor of the first match on or before as_of, ties to the
    smallest ``mentor_id`` (pandas ``first_mentor``)."""
    m = _table(tables, "matches")
    if m is None:
        return p.mutate(_mentor=ibis.null("string"))
    m = m.filter(_on_or_before(m.match_date, a)).mutate(_md=day(m.match_date))
    first = m.group_by(m.participant_id.name("_f_pid")).aggregate(_f_day=m._md.min())
    on_first = m.join(first, (m.participant_id == first._f_pid) & (m._md == first._f_day))
    agg = on_first.group_by(on_first.participant_id.name(_PID)).aggregate(
        _mentor=on_first.mentor_id.cast("string").min())
    return _join(p, agg)


def _age(p: ir.Table) -> ir.FloatingValue:
    """``age`` where given, else completed years from birth_date to enrollment_date."""
    given = p.age.cast("float64") if "age" in p.columns else ibis.null("float64")
    if "birth_date" not in p.columns:
        return given
    b = p.birth_date.cast("date") if not p.birth_date.type().is_timestamp() else p.birth_date.date()
    e = p.enrollment_date.date() if p.enrollment_date.type().is_timestamp() else p.enrollment_date.cast("date")
    before_birthday = (e.month() < b.month()) | ((e.month() == b.month()) & (e.day() < b.day()))
    years = (e.year() - b.year()).cast("float64") - before_birthday.cast("float64")
    return ibis.coalesce(given, years)


def _base(tables: Tables, a: int, func: str) -> tuple[ir.Table, list[str], list[str]]:
    """The participants with the measures' shared working columns (``_e``: enrollment day,
    ``_enrolled``, ``_mentor``), the base output columns (``participant_id, group, site,
    mentor_id``, covariates, ``enrollment_date``) and the covariate names (pandas ``base_frame``)."""
    p = _participants(tables, func)
    source_columns = list(p.columns)
    e = day(p.enrollment_date)
    p = p.mutate(_e=e, _enrolled=true(e <= a))
    p = _first_mentor(tables, p, a)
    covariates: list[str] = []
    cov_exprs: dict[str, ir.Value] = {}
    for col in source_columns:
        if col in NON_COVARIATES:
            continue
        t = p[col].type()
        if t.is_date() or t.is_timestamp():
            continue
        covariates.append(col)
        cov_exprs[col] = _age(p) if col == "age" else p[col]
    if "age" not in covariates and "birth_date" in p.columns:
        covariates.append("age")
        cov_exprs["age"] = _age(p)
    base = {
        "participant_id": p.participant_id.cast("string"),
        "group": p.group.cast("string"),
        "site": _col(p, "site", "string").cast("string"),
        "mentor_id": p._mentor,
        **cov_exprs,
        "enrollment_date": p.enrollment_date.cast("date"),
    }
    p = p.mutate(**{f"_out_{k}": v for k, v in base.items()})
    return p, list(base), covariates


def _select(p: ir.Table, base: list[str], outputs: Mapping[str, ir.Value]) -> ir.Table:
    return p.select(**{k: p[f"_out_{k}"] for k in base}, **outputs)


# ---------------------------------------------------------------------------
# the measures
# ---------------------------------------------------------------------------
def retention(tables: Tables, *, as_of: Any, days: Sequence[int] = (30, 60, 90, 180),
              completion_counts: bool = True) -> ir.Table:
    """Retention k days after enrollment, as an Ibis expression (see :func:`recoverystats.retention`).

    Parameters
    ----------
    tables
        Ibis tables by name; ``participants`` is the one used.
    as_of
        Data cut-off (a date; required on an engine).
    days, completion_counts
        As in :func:`recoverystats.measures.retention`.

    Returns
    -------
    ibis.expr.types.Table
        The pandas measure's columns, one row per participant (unexecuted).
    """
    horizons = check_days_list("days", days)
    if not isinstance(completion_counts, (bool, np.bool_)):
        raise InvalidParameterError(f"completion_counts must be True or False; got {completion_counts!r}.")
    a, _ = _as_of_day(as_of, "retention")
    p, base, _cov = _base(tables, a, "retention")
    d = day(p.discharge_date)
    reason = _col(p, "discharge_reason", "string")
    d_obs = null_unless(d <= a, d)  # discharges after the cut-off are not yet known
    discharged = d_obs.notnull()
    completed = discharged & true(reason.isin(list(COMPLETION_REASONS)))
    los = null_unless(p._enrolled, greatest0(ibis.coalesce(d_obs, a) - p._e).cast("float64"))
    p = p.mutate(_d_obs=d_obs, _completed=completed, _los=los)
    out: dict[str, ir.Value] = {
        "discharge_date": p.discharge_date.cast("date"),
        "discharge_reason": reason.cast("string"),
        "completed": p._completed,
        "length_of_stay": p._los,
    }
    for k in horizons:
        elig = p._enrolled & true(p._e + k <= a)
        hit = true(p._los >= k)
        if completion_counts:
            hit = hit | (p._completed & true(p._d_obs <= p._e + k))
        out[f"retained_{k}"] = window_outcome(elig, hit)
        out[f"eligible_{k}"] = elig
    eligible = p._enrolled & true(p._e + horizons[-1] <= a)
    out["event"] = (discharged & ~p._completed & p._enrolled).cast("int64")
    out["time_days"] = p._los
    out["eligible"] = eligible
    out["exclusion_reason"] = label((~p._enrolled, REASON_ENROLLED_AFTER), (~eligible, REASON_WINDOW))
    return _select(p, base, out)


def relapse(tables: Tables, *, as_of: Any, window_days: int | None = None) -> ir.Table:
    """Time to first relapse and the W-day relapse rate, as an Ibis expression
    (see :func:`recoverystats.relapse`).

    Parameters
    ----------
    tables
        Ibis tables by name: ``participants``, ``events``.
    as_of
        Data cut-off (a date; required on an engine).
    window_days
        As in :func:`recoverystats.measures.relapse`.

    Returns
    -------
    ibis.expr.types.Table
        The pandas measure's columns, one row per participant (unexecuted).
    """
    W = None if window_days is None else check_days("window_days", window_days)
    a, _ = _as_of_day(as_of, "relapse")
    p, base, _cov = _base(tables, a, "relapse")
    fu = day(_col(p, "followup_end_date", "date"))
    dis = day(p.discharge_date)
    p = _death_day(tables, p, a)
    planned = ibis.coalesce(fu, dis)
    p = p.mutate(_fu=fu, _dis=dis, _planned=planned, _c=nan_min(planned, p._death, ibis.literal(a, "int64")))
    ev = _usable_events(tables, RELAPSE_EVENT_TYPES, a)
    if ev is not None:
        positive = true(_col(ev, "result", "string") == "positive")
        ev = ev.filter((ev.event_type != "drug_screen") | positive)
    p = _first_event(ev, p, "_e", "_c", "_r", RELAPSE_EVENT_TYPES)
    event = p._r_day.notnull() & p._enrolled
    end = ibis.ifelse(event, p._r_day, p._c)
    p = p.mutate(_event=event, _end=end)
    planned_end = p._planned.notnull() & true(p._planned <= p._c)
    end_reason = ibis.cases(
        (~p._enrolled, ibis.null("string")),
        (p._event, "relapse"),
        (true(p._death <= p._c), "death"),
        (planned_end & p._fu.notnull(), "followup_end"),
        (planned_end & p._dis.notnull(), "discharge"),
        else_="as_of",
    )
    out: dict[str, ir.Value] = {
        "relapse_date": date_of(null_unless(p._event, p._r_day)),
        "relapse_type": null_unless(p._event, p._r_type),
        "end_date": date_of(null_unless(p._enrolled, p._end)),
        "end_reason": end_reason,
        "event": p._event.cast("int64"),
        "time_days": null_unless(p._enrolled, greatest0(p._end - p._e).cast("float64")),
    }
    if W is None:
        eligible = p._enrolled
        why = label((~p._enrolled, REASON_ENROLLED_AFTER))
    else:
        ended_by_death = true((p._death <= p._c) & (p._death < p._e + W))
        window_done = p._enrolled & true(p._e + W <= a)
        early_end = window_done & true(p._c < p._e + W) & ~ended_by_death
        eligible = window_done & ~early_end
        hit = p._event & true(p._r_day - p._e <= W)
        out["relapsed"] = window_outcome(eligible, hit)
        out["died_in_window"] = ended_by_death & ~hit & p._enrolled
        why = label((~p._enrolled, REASON_ENROLLED_AFTER), (early_end, REASON_OBS_ENDED),
                    (~window_done, REASON_WINDOW))
    out["eligible"] = eligible
    out["exclusion_reason"] = why
    return _select(p, base, out)


def recidivism(tables: Tables, *, as_of: Any, window_days: int | None = 365,
               level: RecidivismLevel = "rearrest", missing_release: MissingRelease = "enrollment") -> ir.Table:
    """Time to first rearrest / reconviction / reincarceration after release and the W-day
    rate, death competing, as an Ibis expression (see :func:`recoverystats.recidivism`).

    Parameters
    ----------
    tables
        Ibis tables by name: ``participants``, ``events``.
    as_of
        Data cut-off (a date; required on an engine).
    window_days, level, missing_release
        As in :func:`recoverystats.measures.recidivism`.

    Returns
    -------
    ibis.expr.types.Table
        The pandas measure's columns, one row per participant (unexecuted).
    """
    check_option("level", level, RecidivismLevel)
    check_option("missing_release", missing_release, MissingRelease)
    W = None if window_days is None else check_days("window_days", window_days)
    a, _ = _as_of_day(as_of, "recidivism")
    p, base, _cov = _base(tables, a, "recidivism")
    rel = day(_col(p, "release_date", "date"))
    no_release = rel.isnull()
    s = ibis.coalesce(rel, p._e)
    indexed = p._enrolled & true(s <= a)
    fu = day(_col(p, "followup_end_date", "date"))
    p = _death_day(tables, p, a)
    p = p.mutate(_no_release=no_release, _s=s, _indexed=indexed, _fu=fu)
    # a death on/before the index date is a data error, not follow-up
    p = p.mutate(_death=null_unless(p._death > p._s, p._death),
                 _c=null_unless(p._indexed, nan_min(p._fu, ibis.literal(a, "int64"))))
    p = p.mutate(_end_obs=nan_min(p._c, p._death))
    p = _first_event(_usable_events(tables, RECIDIVISM_LEVELS[level], a, honor_history_flag=False),
                     p, "_s", "_c", "_r", RECIDIVISM_LEVELS[level])
    p = p.mutate(_r_day=null_unless(p._r_day <= p._end_obs, p._r_day))  # an event after death cannot count
    recid = p._r_day.notnull() & p._indexed
    died_first = ~recid & true(p._death <= p._c) & p._indexed
    p = p.mutate(_recid=recid, _died_first=died_first)
    p = p.mutate(_t_end=ibis.cases((p._recid, p._r_day), (p._died_first, p._death), else_=p._c))
    p = _first_event(_usable_events(tables, TECHNICAL_VIOLATION_TYPES, a, honor_history_flag=False),
                     p, "_s", "_end_obs", "_v", TECHNICAL_VIOLATION_TYPES)
    excluded = (p._no_release & p._enrolled) if missing_release == "exclude" else ibis.literal(False)
    out: dict[str, ir.Value] = {
        "index_date": date_of(p._s),
        "index_source": ibis.ifelse(p._no_release, "enrollment_date", "release_date"),
        "release_date_missing": p._no_release,
        "recidivism_date": date_of(null_unless(p._recid, p._r_day)),
        "recidivism_type": null_unless(p._recid, p._r_type),
        "death_date": date_of(null_unless(p._indexed, p._death)),
        "end_date": date_of(null_unless(p._indexed, p._t_end)),
        "event_type": ibis.cases((p._recid, 1), (p._died_first, 2), else_=0).cast("int64"),
        "event": p._recid.cast("int64"),
        "time_days": null_unless(p._indexed, greatest0(p._t_end - p._s).cast("float64")),
    }
    eligible = p._indexed & ~excluded
    rules: list[tuple[ir.BooleanValue, str]] = [(excluded, REASON_NO_RELEASE)]
    if W is not None:
        died_in_window = p._died_first & true(p._death - p._s <= W)
        window_done = p._indexed & true(p._s + W <= a)
        early_end = window_done & true(p._fu < p._s + W) & ~died_in_window
        eligible = window_done & ~early_end & ~excluded
        rules += [(early_end, REASON_FOLLOWUP_ENDED), (p._indexed & ~window_done, REASON_WINDOW)]
        out["recidivated"] = window_outcome(eligible, p._recid & true(p._r_day - p._s <= W))
        out["died_in_window"] = died_in_window
        out["technical_violation"] = window_outcome(eligible, true(p._v_day - p._s <= W))
    rules += [(~p._enrolled, REASON_ENROLLED_AFTER), (~p._indexed, REASON_RELEASED_AFTER)]
    out["technical_violation_date"] = date_of(null_unless(p._indexed, p._v_day))
    out["technical_violation_type"] = null_unless(p._indexed & p._v_day.notnull(), p._v_type)
    out["technical_violation_days"] = null_unless(p._indexed, (p._v_day - p._s).cast("float64"))
    out["eligible"] = eligible
    out["exclusion_reason"] = label(*rules)
    return _select(p, base, out)


def _assessment_days(tables: Tables, timepoint: str, a: int) -> ir.Table | None:
    asm = _table(tables, "assessments")
    if asm is None:
        return None
    d = day(asm.assessment_date)
    return asm.filter(asm.timepoint == timepoint, _on_or_before(asm.assessment_date, a)).mutate(_day=d)


def followup(tables: Tables, *, as_of: Any, window: tuple[int, int] = (150, 240),
             due_rule: DueRule = "window_closed") -> ir.Table:
    """GPRA 6-month follow-up status, as an Ibis expression (see :func:`recoverystats.followup`).

    Parameters
    ----------
    tables
        Ibis tables by name: ``participants``, ``assessments``, ``events`` (deaths).
    as_of
        Data cut-off (a date; required on an engine).
    window, due_rule
        As in :func:`recoverystats.measures.followup` (the rate ``target`` is applied
        to the collected frame by :func:`recoverystats.measures.followup_rate`).

    Returns
    -------
    ibis.expr.types.Table
        The pandas measure's columns, one row per participant (unexecuted).
    """
    lo, hi = check_window(window)
    check_option("due_rule", due_rule, DueRule)
    a, _ = _as_of_day(as_of, "followup")
    p, base, _cov = _base(tables, a, "followup")
    intake = _assessment_days(tables, "intake", a)
    if intake is not None:
        p = _join(p, intake.group_by(intake.participant_id.name(_PID)).aggregate(_intake=intake._day.min()))
    else:
        p = p.mutate(_intake=ibis.null("int64"))
    p = p.mutate(_idx=ibis.coalesce(p._intake, p._e))
    fu = _assessment_days(tables, FOLLOWUP_TIMEPOINT, a)
    if fu is not None:
        b = p.select(_b_pid=p.participant_id, _b_idx=p._idx)
        j = fu.join(b, fu.participant_id == b._b_pid)
        rel = j._day - j._b_idx
        inwin = true((rel >= lo) & (rel <= hi))
        # the first follow-up interview in the window, else the first one
        agg = j.group_by(j._b_pid.name(_PID)).aggregate(
            _fu_in=null_unless(inwin, j._day).min(), _fu_any=j._day.min())
        p = _join(p, agg)
        p = p.mutate(_fu_day=ibis.coalesce(p._fu_in, p._fu_any))
    else:
        p = p.mutate(_fu_day=ibis.null("int64"))
    p = _death_day(tables, p, a)
    rel_fu = p._fu_day - p._idx
    completed = p._fu_day.notnull() & p._enrolled
    in_win = completed & true((rel_fu >= lo) & (rel_fu <= hi))
    p = p.mutate(_rel_fu=rel_fu, _completed=completed, _in_win=in_win)
    died_before = true(p._death < p._idx + hi) & ~p._in_win
    opened = p._enrolled & true(p._idx + lo <= a)
    closed = p._enrolled & true(p._idx + hi <= a)
    due = (closed if due_rule == "window_closed" else opened) & ~died_before
    cens = nan_min(ibis.literal(a, "int64"), p._idx + hi, p._death)
    out: dict[str, ir.Value] = {
        "index_date": date_of(p._idx),
        "index_source": ibis.ifelse(p._intake.isnull(), "enrollment_date", "intake_assessment"),
        "window_open": date_of(p._idx + lo),
        "window_close": date_of(p._idx + hi),
        "followup_date": date_of(null_unless(p._completed, p._fu_day)),
        "days_to_followup": null_unless(p._completed, p._rel_fu.cast("float64")),
        "due": due,
        "completed": p._completed,
        "completed_in_window": null_unless(due, as_float(p._in_win)),
        "completed_outside_window": null_unless(due, as_float(p._completed & ~p._in_win)),
        "event": p._in_win.cast("int64"),
        "time_days": null_unless(p._enrolled, greatest0(ibis.ifelse(p._in_win, p._fu_day, cens) - p._idx)
                                 .cast("float64")),
        "eligible": due,
        "exclusion_reason": label((~p._enrolled, REASON_ENROLLED_AFTER), (died_before, REASON_DIED),
                                  (~due, REASON_WINDOW)),
    }
    return _select(p, base, out)


def engagement(tables: Tables, *, as_of: Any, first_days: int = 90, engaged_min_contacts: int = 3) -> ir.Table:
    """Mentor contacts in the first days and time to first match, as an Ibis expression
    (see :func:`recoverystats.engagement`).

    Parameters
    ----------
    tables
        Ibis tables by name: ``participants``, ``contacts``, ``matches``, ``events`` (deaths).
    as_of
        Data cut-off (a date; required on an engine).
    first_days, engaged_min_contacts
        As in :func:`recoverystats.measures.engagement`.

    Returns
    -------
    ibis.expr.types.Table
        The pandas measure's columns, one row per participant (unexecuted).
    """
    F = check_days("first_days", first_days)
    if not isinstance(engaged_min_contacts, (int, np.integer)) or isinstance(engaged_min_contacts, bool) \
            or engaged_min_contacts < 0:
        raise InvalidParameterError(
            f"engaged_min_contacts must be a non-negative whole number (e.g. 3); got {engaged_min_contacts!r}."
        )
    a, _ = _as_of_day(as_of, "engagement")
    p, base, _cov = _base(tables, a, "engagement")
    eligible = p._enrolled & true(p._e + F - 1 <= a)
    con = _table(tables, "contacts")
    if con is not None:
        d = day(con.contact_date)
        c = con.filter(_on_or_before(con.contact_date, a)).mutate(_day=d, _min=_col(con, "minutes", "float64").cast("float64").fill_null(0.0))
        b = p.select(_b_pid=p.participant_id, _b_e=p._e)
        j = c.join(b, c.participant_id == b._b_pid)
        rel = j._day - j._b_e
        after = true(rel >= 0)
        early = after & true(rel <= F - 1)
        agg = j.group_by(j._b_pid.name(_PID)).aggregate(
            _c_total=after.cast("int64").sum(),
            _m_total=null_unless(after, j._min).sum(),
            _c_first=early.cast("int64").sum(),
            _m_first=null_unless(early, j._min).sum(),
            _first_contact=null_unless(after, j._day).min(),
        )
        p = _join(p, agg)
        p = p.mutate(_c_total=p._c_total.fill_null(0).cast("float64"), _m_total=p._m_total.fill_null(0.0),
                     _c_first=p._c_first.fill_null(0).cast("float64"), _m_first=p._m_first.fill_null(0.0))
    else:
        p = p.mutate(_c_total=ibis.literal(0.0), _m_total=ibis.literal(0.0), _c_first=ibis.literal(0.0),
                     _m_first=ibis.literal(0.0), _first_contact=ibis.null("int64"))
    mt = _table(tables, "matches")
    if mt is not None:
        d = day(mt.match_date)
        m = mt.filter(_on_or_before(mt.match_date, a)).mutate(_day=d)
        p = _join(p, m.group_by(m.participant_id.name(_PID)).aggregate(_match=m._day.min()))
    else:
        p = p.mutate(_match=ibis.null("int64"))
    p = _death_day(tables, p, a)
    dis = day(p.discharge_date)
    matched = p._match.notnull() & p._enrolled
    cens = nan_min(null_unless(dis <= a, dis), p._death, ibis.literal(a, "int64"))
    out: dict[str, ir.Value] = {
        "contacts_first": null_unless(eligible, p._c_first),
        "minutes_first": null_unless(eligible, p._m_first),
        "contacts_per_30d": null_unless(eligible, p._c_first * 30.0 / float(F)),
        "engaged": window_outcome(eligible, p._c_first >= engaged_min_contacts),
        "contacts_total": null_unless(p._enrolled, p._c_total),
        "minutes_total": null_unless(p._enrolled, p._m_total),
        "first_contact_date": date_of(p._first_contact),
        "matched": matched,
        "match_date": date_of(null_unless(matched, p._match)),
        "days_to_match": null_unless(matched, (p._match - p._e).cast("float64")),
        "event": matched.cast("int64"),
        "time_days": null_unless(p._enrolled, greatest0(ibis.ifelse(matched, p._match, cens) - p._e)
                                 .cast("float64")),
        "eligible": eligible,
        "exclusion_reason": label((~p._enrolled, REASON_ENROLLED_AFTER), (~eligible, REASON_WINDOW)),
    }
    return _select(p, base, out)


# ---------------------------------------------------------------------------
# NOMs change: the engine counts the pairs; McNemar's test runs in Python
# ---------------------------------------------------------------------------
_NOMS_COUNTS = ("n_pairs", "intake_yes", "followup_yes", "yes_to_no", "no_to_yes")


def _check_items(items: Any) -> list[str]:
    items = [items] if isinstance(items, str) else list(items)
    bad = [i for i in items if i not in NOMS_ITEMS]
    if bad or not items:
        raise InvalidParameterError(
            f"items: unknown NOMs item(s) {', '.join(map(repr, bad)) or '(none given)'}; "
            f"choose from {', '.join(NOMS_ITEMS)}."
        )
    return items


def noms_counts(tables: Tables, *, as_of: Any, items: Sequence[str] = tuple(NOMS_ITEMS),
                by: Sequence[str] = (), window: tuple[int, int] | None = None) -> ir.Table:
    """Matched-pair counts of the NOMs items by ``by`` level and item, as an Ibis expression.

    One row per (by-level with at least one intake/follow-up pair, item):
    ``by..., item, n_pairs, intake_yes, followup_yes, yes_to_no, no_to_yes`` — the
    sufficient statistics of :func:`recoverystats.noms_change` (percentages and
    McNemar's test follow from them; :func:`noms_change` finishes the table in Python).
    The pairs are each participant's intake and ``followup_6m`` assessments (the key
    ``(participant_id, timepoint)`` is unique in validated data) on or before as_of,
    within ``window`` days of intake when given.
    """
    items = _check_items(items)
    a, _ = _as_of_day(as_of, "noms_change")
    win = None if window is None else check_window(window)
    p = _participants(tables, "noms_change")
    by = list(by)
    missing = [c for c in by if c not in p.columns]
    if missing:
        raise InvalidParameterError(
            f"by: column(s) {', '.join(map(repr, missing))} not found in participants; "
            f"available: {', '.join(p.columns)}."
        )
    asm = _table(tables, "assessments")
    cols = sorted({NOMS_ITEMS[i][0] for i in items})
    intake = _assessment_days(tables, "intake", a)
    fu = _assessment_days(tables, FOLLOWUP_TIMEPOINT, a)
    if asm is None or intake is None or fu is None:
        raise InvalidParameterError("noms_change: tables has no 'assessments'.")
    intake = intake.select(_i_pid=intake.participant_id, _i_day=intake._day, **{f"{c}__0": intake[c] for c in cols})
    fu = fu.select(_f_pid=fu.participant_id, _f_day=fu._day, **{f"{c}__1": fu[c] for c in cols})
    pairs = intake.join(fu, intake._i_pid == fu._f_pid)
    if win is not None:
        rel = pairs._f_day - pairs._i_day
        pairs = pairs.filter(rel >= win[0], rel <= win[1])
    pp = p.select(_p_pid=p.participant_id, **{c: p[c] for c in by})
    pairs = pairs.join(pp, pairs._i_pid == pp._p_pid)
    parts = []
    for item in items:
        col, negate = NOMS_ITEMS[item]
        x0, x1 = pairs[f"{col}__0"], pairs[f"{col}__1"]
        ok = x0.notnull() & x1.notnull()
        y0 = ~x0.fill_null(False) if negate else x0.fill_null(False)
        y1 = ~x1.fill_null(False) if negate else x1.fill_null(False)
        grouped = pairs.group_by([pairs[c] for c in by]) if by else pairs
        agg = grouped.aggregate(
            n_pairs=ok.cast("int64").sum(),
            intake_yes=(ok & y0).cast("int64").sum(),
            followup_yes=(ok & y1).cast("int64").sum(),
            yes_to_no=(ok & y0 & ~y1).cast("int64").sum(),
            no_to_yes=(ok & ~y0 & y1).cast("int64").sum(),
        )
        parts.append(agg.mutate(item=ibis.literal(item, "string")).select(*by, "item", *_NOMS_COUNTS))
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def noms_change(tables: Tables, *, as_of: Any, items: Sequence[str] = tuple(NOMS_ITEMS),
                by: str | Sequence[str] | None = None, window: tuple[int, int] | None = None,
                exact_threshold: int = 25) -> pd.DataFrame:
    """NOMs change from the engine's pair counts: the table of :func:`recoverystats.noms_change`.

    The engine computes :func:`noms_counts` (a few rows per by-level and item) and the
    by-levels of the participants; percentages, change and McNemar's test are computed
    here in Python from those counts, with the pandas measure's own test function.
    Returns a pandas DataFrame (already small), with the same columns and row order.
    """
    from recoverystats._checks import as_column_list

    items = _check_items(items)
    if not isinstance(exact_threshold, (int, np.integer)) or isinstance(exact_threshold, bool) \
            or exact_threshold < 0:
        raise InvalidParameterError(
            f"exact_threshold must be a non-negative whole number (e.g. 25); got {exact_threshold!r}."
        )
    by_cols = as_column_list(by)
    counts = noms_counts(tables, as_of=as_of, items=items, by=by_cols, window=window).to_pandas()
    if by_cols:
        p = _participants(tables, "noms_change")
        levels = p.select(*by_cols).distinct().to_pandas().astype(object)
        levels = levels.where(levels.notna(), None).sort_values(by_cols, na_position="last")
        counts[by_cols] = counts[by_cols].astype(object).where(counts[by_cols].notna(), None)
        frames = []
        for item in items:
            g = levels.merge(counts[counts["item"] == item].drop(columns="item"), on=by_cols, how="left")
            g.insert(len(by_cols), "item", item)
            frames.append(g)
        out = pd.concat(frames, ignore_index=True)
    else:
        out = pd.DataFrame({"item": items}).merge(counts, on="item", how="left")
    out[list(_NOMS_COUNTS)] = out[list(_NOMS_COUNTS)].fillna(0).astype("int64")
    npairs = out["n_pairs"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["pct_intake"] = np.where(npairs > 0, 100.0 * out["intake_yes"] / npairs, np.nan)
        out["pct_followup"] = np.where(npairs > 0, 100.0 * out["followup_yes"] / npairs, np.nan)
    out["change_pp"] = out["pct_followup"] - out["pct_intake"]
    test, stat, pval = mcnemar_test(out["yes_to_no"].to_numpy(), out["no_to_yes"].to_numpy(),
                                    exact_threshold=int(exact_threshold))
    empty = npairs == 0
    out["test"] = np.where(empty, None, test)
    out["statistic"] = np.where(empty, np.nan, stat)
    out["p_value"] = np.where(empty, np.nan, pval)
    return out[[*by_cols, *NOMS_COLUMNS]]


#: The per-participant measures by name.
MEASURES = {
    "retention": retention,
    "relapse": relapse,
    "recidivism": recidivism,
    "followup": followup,
    "engagement": engagement,
}


# ---------------------------------------------------------------------------
# cut-off, collection
# ---------------------------------------------------------------------------
def latest_activity_date(tables: Tables) -> pd.Timestamp | None:
    """The latest enrollment, discharge, event, contact, assessment or match date (the
    pandas measures' default ``as_of`` when neither the argument nor ``prog.as_of`` is set);
    one small query per table."""
    from recoverystats.measures._common import _ACTIVITY_DATES

    latest = None
    for name, col in _ACTIVITY_DATES:
        t = tables.get(name)
        if t is None or col not in t.columns:
            continue
        m = t[col].max().to_pandas()
        if m is not None and pd.notna(m):
            m = pd.Timestamp(m)
            latest = m if latest is None or m > latest else latest
    return None if latest is None else latest.normalize()


def normalise(df: pd.DataFrame, *, sort: bool = True) -> pd.DataFrame:
    """A measure frame with engine-independent dtypes, for comparison and for the analyses.

    Dates -> ``datetime64[ns]``; numbers (int, float, nullable Int/Float) -> ``float64``
    (counts stay exact: they are far below 2**53); flags -> ``bool`` when complete, else
    ``object`` with ``True``/``False``/``None``; text -> ``object`` with ``None`` for missing;
    a column with no value at all -> ``object`` of ``None`` (engines type an all-NULL
    column in their own way). With ``sort``, rows are sorted by ``participant_id`` when
    there is one (a relation has no order). Vectorised per column; a column already in
    its normal form is not copied.
    """
    out = {}
    for c in df.columns:
        s = df[c]
        dt = s.dtype
        missing = s.isna()
        n_missing = int(missing.sum())
        if len(s) and n_missing == len(s):
            out[c] = pd.Series(np.full(len(s), None, dtype=object), index=df.index)
        elif pd.api.types.is_datetime64_any_dtype(dt):
            out[c] = s if dt == "datetime64[ns]" else s.astype("datetime64[ns]")
        elif pd.api.types.is_bool_dtype(dt):
            out[c] = s.astype(bool) if not n_missing else s.astype(object).where(~missing, None)
        elif pd.api.types.is_numeric_dtype(dt):
            out[c] = s if dt == np.float64 else s.astype("float64")
        else:
            first = s[~missing].iloc[0] if n_missing < len(s) else None
            if isinstance(first, (bool, np.bool_)):
                out[c] = s.astype(bool) if not n_missing else s.astype(object).where(~missing, None)
            elif isinstance(first, (pd.Timestamp, np.datetime64, _dt.date)):
                out[c] = pd.to_datetime(s).astype("datetime64[ns]")
            elif pd.api.types.is_object_dtype(dt) and not n_missing:
                out[c] = s
            else:
                out[c] = s.astype(object).where(~missing, None)
    frame = pd.DataFrame(out, columns=list(df.columns))
    if sort and "participant_id" in frame:
        frame = frame.sort_values("participant_id", kind="stable")
    return frame.reset_index(drop=True)


def collect(expr: ir.Table) -> pd.DataFrame:
    """Execute a measure expression and return the frame the pandas measure returns.

    Rows sorted by ``participant_id`` (by the engine: a relation has no order, and a
    fixed order keeps every later sum reproducible); dtypes as the pandas measure's:
    dates ``datetime64[ns]``, flags ``bool``, ``event``/``event_type`` ``int64``, other
    numbers ``float64``, text ``object`` with ``None`` (an engine-typed covariate may
    differ, e.g. a whole-number column with a missing value is ``float64``; compare
    through :func:`normalise`). The transfer goes through Arrow (``expr.to_pyarrow()``
    and pyarrow's ``to_pandas``): Ibis's ``to_pandas`` converts column by column in Python,
    and :func:`normalise` on a million rows costs seconds.
    """
    if "participant_id" in expr.columns:
        expr = expr.order_by("participant_id")
    df = expr.to_pyarrow().to_pandas(date_as_object=False)
    for c in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[c].dtype) and df[c].dtype != "datetime64[ns]":
            df[c] = df[c].astype("datetime64[ns]")
    return df


_execute = collect  # for run_measure, whose ``collect`` argument hides the function


def _covariates(participants: ir.Table) -> list[str]:
    """The covariate columns of the base frame (pandas ``base_frame``'s rule)."""
    cols = []
    for col in participants.columns:
        t = participants[col].type()
        if col in NON_COVARIATES or t.is_date() or t.is_timestamp():
            continue
        cols.append(col)
    if "age" not in cols and "birth_date" in participants.columns:
        cols.append("age")
    return cols


def _notes(name: str, df: pd.DataFrame, tables: Tables, as_of: pd.Timestamp) -> list[str]:
    """The pandas measure's notes, counted on the collected frame (or by a small query)."""
    enrolled = df["exclusion_reason"].astype(object).ne(REASON_ENROLLED_AFTER).to_numpy()
    notes: list[str] = []
    if name == "retention":
        dis = pd.to_datetime(df["discharge_date"])
        reason = df["discharge_reason"]
        n_future = int((dis > as_of).sum())
        if n_future:
            notes.append(f"{n_future} discharge date(s) after as_of ignored (still enrolled at as_of).")
        n_nodate = int((reason.notna() & dis.isna()).sum())
        if n_nodate:
            notes.append(f"{n_nodate} participant(s) with a discharge_reason but no discharge_date treated as enrolled.")
        n_noreason = int(((dis <= as_of) & enrolled & reason.isna()).sum())
        if n_noreason:
            notes.append(f"{n_noreason} discharge(s) without a discharge_reason counted as dropout (event = 1), "
                         "not completion; fill in discharge_reason if some were completions.")
    elif name == "relapse":
        p = tables["participants"]
        if "followup_end_date" in p.columns:
            n_pre = int(p.filter(day(p.followup_end_date) < day(p.enrollment_date)).count().to_pandas())
            if n_pre:
                notes.append(f"{n_pre} participant(s) with followup_end_date before enrollment_date: "
                             "time_days = 0, event = 0.")
    elif name == "recidivism":
        n_missing = int((df["release_date_missing"].astype(bool).to_numpy() & enrolled).sum())
        if n_missing:
            if df.attrs.get("_missing_release", "enrollment") == "enrollment":
                notes.append(f"{n_missing} participant(s) have no release_date and are indexed on enrollment_date "
                             "(index_source == 'enrollment_date'); pass missing_release='exclude' to drop them.")
            else:
                notes.append(f"{n_missing} participant(s) have no release_date and are excluded ('no release date').")
        n_deaths = int((df["event_type"] == 2).sum())
        if n_deaths:
            notes.append(f"{n_deaths} death(s) before any recidivism: competing events (event_type == 2).")
    elif name == "followup":
        n_enr_idx = int(((df["index_source"] == "enrollment_date").to_numpy() & enrolled).sum())
        if n_enr_idx:
            notes.append(f"{n_enr_idx} participant(s) without an intake assessment: window counted from "
                         "enrollment_date.")
    elif name == "engagement":
        n_pre = int((df["matched"].astype(bool) & (pd.to_datetime(df["match_date"])
                                                   < pd.to_datetime(df["enrollment_date"]))).sum())
        if n_pre:
            notes.append(f"{n_pre} participant(s) matched before enrollment (e.g. pre-release): time_days = 0.")
    return notes


def run_measure(prog: Any, name: str, *, collect: bool = True, **kwargs: Any) -> pd.DataFrame | ir.Table:
    """Run measure ``name`` on a program held by an engine (or on a mapping of Ibis tables).

    Parameters
    ----------
    prog
        An engine program (``read_program(..., engine="duckdb"|"spark")``: anything with
        ``.tables``, a mapping of Ibis tables, and ``.as_of``), or the mapping itself.
    name
        ``"retention"``, ``"relapse"``, ``"recidivism"``, ``"followup"``,
        ``"engagement"`` or ``"noms_change"``.
    collect
        ``True`` (default): execute and return the pandas frame the pandas measure returns
        (dtypes as :func:`normalise`, sorted by ``participant_id``, with
        ``attrs["measure"]``: definition, parameters, cut-off, counts, notes). ``False``:
        return the unexecuted Ibis expression, for :func:`survival_counts`,
        :func:`proportion_cells` and :func:`pattern_counts` (the sufficient statistics
        when the per-participant table is too large to collect).
    **kwargs
        The measure's arguments (``as_of``, ``window_days``, ...). ``as_of`` defaults to
        ``prog.as_of``, else the latest activity date in the data.

    Returns
    -------
    pandas.DataFrame or ibis.expr.types.Table
    """
    from recoverystats.measures._common import attach_summary_attrs

    tables, ts, source, note = _resolve(prog, name, kwargs)
    if name == "noms_change":
        if not collect:
            return noms_counts(tables, as_of=ts, **{k: v for k, v in kwargs.items() if k in ("items", "by", "window")})
        out = noms_change(tables, as_of=ts, **kwargs)
        params = {"items": tuple(kwargs.get("items", tuple(NOMS_ITEMS))), "by": tuple(
            [kwargs["by"]] if isinstance(kwargs.get("by"), str) else kwargs.get("by") or ()),
            "window": kwargs.get("window"), "exact_threshold": int(kwargs.get("exact_threshold", 25))}
        return attach_summary_attrs(out, name, as_of=ts, as_of_source=source, parameters=params,
                                    notes=[note] if note else [])
    target = _check_target(kwargs.pop("target", 0.8)) if name == "followup" else None
    expr = MEASURES[name](tables, as_of=ts, **kwargs)
    if not collect:
        return expr
    return describe(name, _execute(expr), tables=tables, as_of=ts, as_of_source=source, note=note,
                    kwargs=kwargs, target=target)


def _resolve(prog: Any, name: str, kwargs: dict[str, Any]) -> tuple[Tables, pd.Timestamp, str, str | None]:
    """The tables, the cut-off, where it came from and the beyond-cut-off note of one measure run.

    Pops ``as_of`` from ``kwargs``; warns (``RecoveryStatsWarning``) when the cut-off is
    after the program's, as the pandas measures do.
    """
    from recoverystats.measures._common import beyond_cutoff_note

    tables = prog if isinstance(prog, Mapping) else prog.tables
    funcs = {**MEASURES, "noms_change": noms_change}
    if name not in funcs:
        raise InvalidParameterError(f"run_measure: unknown measure {name!r}; choose from {', '.join(funcs)}.")
    as_of = kwargs.pop("as_of", None)
    source = "argument"
    if as_of is None:
        as_of, source = getattr(prog, "as_of", None), "program"
    if as_of is None:
        as_of, source = latest_activity_date(tables), "latest date in data"
    if as_of is None:
        raise InvalidParameterError(
            f"{name}: as_of was not given, the program has no as_of, and the data contain no dates "
            "to take it from; pass as_of='YYYY-MM-DD'."
        )
    _, ts = _as_of_day(as_of, name)
    note = beyond_cutoff_note(prog, ts) if source == "argument" and hasattr(prog, "as_of") else None
    if note:
        import warnings

        from recoverystats.errors import RecoveryStatsWarning

        warnings.warn(f"{name}: {note}", RecoveryStatsWarning, stacklevel=3)
    return tables, ts, source, note


def describe(name: str, df: pd.DataFrame, *, tables: Tables, as_of: pd.Timestamp, as_of_source: str,
             note: str | None, kwargs: Mapping[str, Any], target: float | None) -> pd.DataFrame:
    """``df.attrs["measure"]`` of a collected per-participant measure frame (as :func:`run_measure` sets it).

    The definition, parameters, cut-off, counts and notes, counted on ``df`` (the
    measure's full output columns) and, for some notes, by a small query on ``tables``.
    Returns ``df`` with the attrs set.
    """
    from recoverystats.measures._common import attach

    if name == "recidivism":
        df.attrs["_missing_release"] = kwargs.get("missing_release", "enrollment")
    notes = ([note] if note else []) + _notes(name, df, tables, as_of)
    df.attrs.pop("_missing_release", None)
    params = _parameters(name, kwargs, target)
    df = attach(df, name, as_of=as_of, as_of_source=as_of_source, parameters=params,
                covariates=_covariates(tables["participants"]), notes=notes)
    if name == "followup":
        due = df["due"].to_numpy(dtype=bool)
        in_win = df["completed_in_window"].to_numpy() == 1.0
        completed = df["completed"].to_numpy(dtype=bool)
        n_due, n_in = int(due.sum()), int((due & in_win).sum())
        df.attrs["measure"]["summary"] = {
            "due": n_due,
            "completed_in_window": n_in,
            "completed_outside_window": int((due & completed & ~in_win).sum()),
            "not_completed": int((due & ~completed).sum()),
            "rate": n_in / n_due if n_due else float("nan"),
            "target": float(target),
            "meets_target": bool(n_due and n_in / n_due >= float(target)),
        }
    return df


def _parameters(name: str, kw: Mapping[str, Any], target: float | None) -> dict[str, Any]:
    """The parameters recorded in ``attrs["measure"]``, defaults filled in as the pandas measures record them."""
    if name == "retention":
        return {"days": check_days_list("days", kw.get("days", (30, 60, 90, 180))),
                "completion_counts": bool(kw.get("completion_counts", True))}
    if name == "relapse":
        w = kw.get("window_days")
        return {"window_days": None if w is None else check_days("window_days", w)}
    if name == "recidivism":
        w = kw.get("window_days", 365)
        return {"window_days": None if w is None else check_days("window_days", w),
                "level": kw.get("level", "rearrest"), "missing_release": kw.get("missing_release", "enrollment")}
    if name == "followup":
        return {"window": check_window(kw.get("window", (150, 240))), "target": float(target),
                "due_rule": kw.get("due_rule", "window_closed")}
    return {"first_days": check_days("first_days", kw.get("first_days", 90)),
            "engaged_min_contacts": int(kw.get("engaged_min_contacts", 3))}


# ---------------------------------------------------------------------------
# sufficient statistics (the collect=False path)
# ---------------------------------------------------------------------------
def _by_list(by: str | Sequence[str] | None) -> list[str]:
    return [] if by is None else ([by] if isinstance(by, str) else list(by))


def survival_counts(expr: ir.Table, *, time: str = "time_days", event: str = "event",
                    by: str | Sequence[str] | None = None, weight: str = "n") -> ir.Table:
    """Counts by group, time and event status: ``by..., time, event, n``.

    Rows with a missing time are left out (participants not enrolled by as_of), as
    ``survival_curve`` leaves them out. Fed to ``survival_curve(counts, time=, event=,
    by=, weights="n", weight_type="frequency")`` the Kaplan-Meier table, Greenwood
    intervals and medians equal those of the per-participant rows exactly; with
    ``event="event_type"`` (recidivism: 1 recidivism, 2 death) the same counts give the
    Aalen-Johansen cumulative incidence and, via :func:`expand_counts`, the log-rank test.
    """
    by_cols = _by_list(by)
    t = expr.filter(expr[time].notnull())
    return t.group_by([*by_cols, time, event]).aggregate(**{weight: t.count()})


def proportion_cells(expr: ir.Table, outcome: str, *, group: str, strata: str | Sequence[str] | None = None,
                     weight: str = "n") -> ir.Table:
    """The 2x2 (or stratified 2x2xK) cells: ``strata..., group, outcome, n``.

    Rows with a missing outcome (ineligible participants: the fixed-window outcomes are
    NULL for them) are left out, as ``proportion``/``compare_proportions`` leave them
    out. ``compare_proportions(cells, outcome, group=, strata=, weights="n",
    weight_type="frequency")`` then gives the same estimates, intervals, exact and
    Mantel-Haenszel tests as the per-participant rows.
    """
    keys = [*_by_list(strata), group, outcome]
    t = expr.filter(expr[outcome].notnull())
    return t.group_by(keys).aggregate(**{weight: t.count()})


def pattern_counts(expr: ir.Table, outcome: str, *, exposure: str, adjust: Sequence[str] = (),
                   weight: str = "n") -> ir.Table:
    """Covariate-pattern counts for a logistic regression with categorical covariates:
    ``outcome, exposure, adjust..., n``.

    Rows missing the outcome, exposure or a covariate are left out (complete cases, as
    ``odds_ratios`` does). ``odds_ratios(patterns, outcome, exposure=, adjust=,
    weights="n", weight_type="frequency")`` gives the same coefficients, standard
    errors and intervals as the per-participant rows (the binomial likelihood depends
    on the data only through these counts). Continuous covariates would make every row
    its own pattern: bin them first (e.g. age bands) or collect the rows.
    """
    keys = [outcome, exposure, *adjust]
    t = expr
    for k in keys:
        t = t.filter(t[k].notnull())
    return t.group_by(keys).aggregate(**{weight: t.count()})


def expand_counts(counts: pd.DataFrame, weight: str = "n") -> pd.DataFrame:
    """One row per counted unit (``np.repeat`` of each row ``weight`` times), without ``weight``.

    For the functions that take no frequency weights (``compare_survival``,
    ``cumulative_incidence``): the expanded rows hold only the counted columns (group,
    time, status), a few bytes per participant.
    """
    n = pd.to_numeric(counts[weight]).to_numpy()
    if np.any(n < 0) or not np.all(np.equal(np.mod(n, 1), 0)):
        raise InvalidParameterError(f"expand_counts: column {weight!r} must hold whole non-negative counts.")
    rep = np.repeat(np.arange(len(counts)), n.astype(np.int64))
    return counts.drop(columns=[weight]).iloc[rep].reset_index(drop=True)
