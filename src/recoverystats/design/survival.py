"""Events and participants needed to detect a hazard ratio (time-to-event outcomes such
as time to relapse or to re-arrest).

Hand-written closed forms (Schoenfeld 1983; Freedman 1982; the event probability under
uniform accrual by Simpson's rule, Schoenfeld 1983 / Collett 2015): statsmodels has no
survival power; lifelines' ``sample_size_necessary_under_cph`` covers Freedman's formula
only, without accrual.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import pandas as pd

from recoverystats._checks import check_option
from recoverystats.design._common import (
    Alternative,
    Rounding,
    ceil_count,
    check_common,
    check_positive,
    check_probability,
    group_sizes,
    pct,
    z_alpha,
)
from recoverystats.errors import InvalidParameterError
from recoverystats.results.design import PowerResult

__all__ = ["events_for_hazard_ratio", "participants_for_hazard_ratio", "event_probability"]

EventsMethod = Literal["schoenfeld", "freedman"]


def _check_hr(hr: Any) -> float:
    h = check_positive("hr", hr)
    if h == 1.0:
        raise InvalidParameterError("hr must differ from 1 (no effect to detect); got 1.")
    return h


def _events_exact(hr: float, power: float, *, alpha: float, ratio: float, alternative: str, method: str) -> float:
    from scipy.stats import norm

    z = z_alpha(alpha, alternative) + float(norm.ppf(power))
    if method == "schoenfeld":
        return z**2 * (1.0 + ratio) ** 2 / (ratio * math.log(hr) ** 2)
    return z**2 * (1.0 + ratio * hr) ** 2 / (ratio * (1.0 - hr) ** 2)


def _power_events(hr: float, events: float, *, alpha: float, ratio: float, alternative: str, method: str) -> float:
    """Power with ``events`` events (the inverse of the events formulas)."""
    from scipy.stats import norm

    if method == "schoenfeld":
        signal = math.sqrt(events * ratio) / (1.0 + ratio) * abs(math.log(hr))
    else:
        signal = math.sqrt(events * ratio) * abs(1.0 - hr) / (1.0 + ratio * hr)
    return float(norm.cdf(signal - z_alpha(alpha, alternative)))


def _check_direction(hr: float, alternative: str) -> None:
    # the exposure lowers the hazard when hr < 1: "smaller" (H1: hr < 1) must agree
    if alternative == "larger" and hr < 1 or alternative == "smaller" and hr > 1:
        raise InvalidParameterError(
            f"alternative={alternative!r} tests hr {'>' if alternative == 'larger' else '<'} 1, but hr = {hr:g}; "
            "swap the alternative or use 'two-sided'.")


def events_for_hazard_ratio(
    hr: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    ratio: float = 1.0,
    method: EventsMethod = "schoenfeld",
    alternative: Alternative = "two-sided",
) -> PowerResult:
    """The number of events needed to detect a hazard ratio with the log-rank test / Cox model.

    Parameters
    ----------
    hr : float
        The hazard ratio to detect, program over comparison (e.g. 0.7).
    power : float, default 0.8
        The required power.
    alpha : float, default 0.05
        Significance level.
    ratio : float, default 1.0
        Allocation ratio (program over comparison participants).
    method : {"schoenfeld", "freedman"}, default "schoenfeld"
        Schoenfeld (1983): the log-rank / Cox score test on the log hazard ratio;
        Freedman (1982): the log-rank test with the ratio of expected events.
    alternative : {"two-sided", "larger", "smaller"}, default "two-sided"
        ``"smaller"``: H1 is ``hr < 1``.

    Returns
    -------
    PowerResult
        ``kind="events"``, one row: ``hazard_ratio, method, alpha, power, ratio,
        events_exact`` (unrounded) and ``events`` (rounded up).

    Raises
    ------
    InvalidParameterError
        ``hr`` not positive or equal to 1; ``power``/``alpha`` outside (0, 1).

    Notes
    -----
    With ``z = z_a + z_b`` (``z_a = z(1 - alpha/2)`` two-sided) and ``r`` the ratio::

        Schoenfeld: d = z^2 (1 + r)^2 / (r log(hr)^2)
        Freedman:   d = z^2 (1 + r hr)^2 / (r (1 - hr)^2)

    HR 0.7, 80% power, two-sided 0.05, 1:1: Schoenfeld 246.9 (247 events), Freedman
    252.04 (253). Matches R ``gsDesign::nEvents(hr = 0.7)`` (Schoenfeld) and lifelines'
    ``sample_size_necessary_under_cph`` (Freedman).

    References
    ----------
    Schoenfeld DA (1983). Sample-size formula for the proportional-hazards regression
    model. *Biometrics* 39:499-503.
    Freedman LS (1982). Tables of the number of patients required in clinical trials
    using the logrank test. *Statistics in Medicine* 1:121-129.

    Examples
    --------
    >>> from recoverystats.design import events_for_hazard_ratio
    >>> int(events_for_hazard_ratio(0.7).table["events"].iloc[0])
    247
    """
    hr = _check_hr(hr)
    alpha, ratio, alternative, _, _, _ = check_common(alpha=alpha, ratio=ratio, alternative=alternative,
                                                      design_effect=1.0, attrition=0.0, rounding="stepwise")
    power = check_probability("power", power)
    method = check_option("method", method, EventsMethod)
    _check_direction(hr, alternative)
    d = _events_exact(hr, power, alpha=alpha, ratio=ratio, alternative=alternative, method=method)
    table = pd.DataFrame([{"hazard_ratio": hr, "method": method, "alpha": alpha, "power": power,
                           "ratio": ratio, "events_exact": d, "events": ceil_count(d)}])
    note = (f"To detect a hazard ratio of {hr:g} with {pct(power)} power at a "
            f"{'two' if alternative == 'two-sided' else 'one'}-sided {alpha:g} level, the analysis needs "
            f"{ceil_count(d):,} events (participants with the outcome) in the two groups together "
            f"({d:.2f} before rounding up; {method.capitalize()}'s formula).")
    return PowerResult(
        _table=table, conf_level=None, method=method, n_used=ceil_count(d), notes=(note,), kind="events",
        solve_for="events",
        alpha=alpha, alternative=alternative,
        parameters={"hr": hr, "power": power, "alpha": alpha, "ratio": ratio, "method": method,
                    "alternative": alternative, "events": d},
    )


def event_probability(
    *,
    rate: float | None = None,
    median: float | None = None,
    risk: tuple[float, float] | None = None,
    hr: float = 1.0,
    accrual: float = 0.0,
    followup: float,
) -> float:
    """The probability that a participant has the event during the study, exponential survival.

    Give the comparison group's survival by one of ``rate`` (events per unit time),
    ``median`` (median time to the event) or ``risk`` (``(time, probability of the event
    by that time)``, e.g. ``(365, 0.44)`` for a 44% one-year relapse risk); ``hr``
    multiplies the hazard (the program group).

    Parameters
    ----------
    rate, median, risk
        Exactly one: the comparison group's hazard, median or ``(t, P(T <= t))``.
    hr : float, default 1.0
        Hazard ratio applied to that hazard.
    accrual : float, default 0.0
        Length of the (uniform) enrolment period, in the same time unit.
    followup : float
        Follow-up after the last participant enrols (the minimum follow-up).

    Returns
    -------
    float
        ``1 - [S(f) + 4 S(f + a/2) + S(f + a)] / 6`` (Simpson's rule over the uniform
        accrual period; ``1 - S(f)`` when ``accrual = 0``).

    Notes
    -----
    A participant enrolled at time ``u`` in ``[0, a]`` is followed for ``a + f - u``;
    averaging ``1 - S`` over ``u`` and approximating the integral by Simpson's rule gives
    the formula above (Schoenfeld 1983; Collett 2015, section 10.2). Under exponential
    survival the exact average is ``1 - (exp(-l f) - exp(-l (a + f))) / (l a)``; the two
    agree to a few 1e-4 for usual designs (2e-4 for a 44% one-year risk and two years of
    accrual).
    """
    lam = _hazard(rate=rate, median=median, risk=risk)
    hr = check_positive("hr", hr)
    a = check_positive("accrual", accrual, inclusive=True)
    f = check_positive("followup", followup, inclusive=True)
    if a + f <= 0:
        raise InvalidParameterError("accrual + followup must be positive (nobody is followed otherwise); got 0.")
    lam = lam * hr
    s = lambda t: math.exp(-lam * t)  # noqa: E731
    return 1.0 - (s(f) + 4.0 * s(f + a / 2.0) + s(f + a)) / 6.0


def _hazard(*, rate: float | None, median: float | None, risk: tuple[float, float] | None) -> float:
    given = [k for k, v in (("rate", rate), ("median", median), ("risk", risk)) if v is not None]
    if len(given) != 1:
        raise InvalidParameterError(
            "give exactly one of rate= (hazard per unit time), median= (median time to the event) or "
            f"risk=(time, probability) for the comparison group; got {', '.join(given) or 'none'}.")
    if rate is not None:
        return check_positive("rate", rate)
    if median is not None:
        return math.log(2.0) / check_positive("median", median)
    try:
        t, p = risk  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InvalidParameterError(f"risk must be a pair (time, probability); got {risk!r}.") from None
    t = check_positive("risk time", t)
    p = check_probability("risk probability", p)
    return -math.log1p(-p) / t


def participants_for_hazard_ratio(
    hr: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    ratio: float = 1.0,
    method: EventsMethod = "schoenfeld",
    alternative: Alternative = "two-sided",
    event_probability: float | None = None,
    control_rate: float | None = None,
    control_median: float | None = None,
    control_risk: tuple[float, float] | None = None,
    accrual: float = 0.0,
    followup: float | None = None,
    design_effect: float = 1.0,
    attrition: float = 0.0,
    rounding: Rounding = "stepwise",
) -> PowerResult:
    """Participants needed to detect a hazard ratio: the events divided by the probability of an event.

    Give either ``event_probability`` (the overall share of participants expected to
    have the event during the study) or the comparison group's survival (one of
    ``control_rate``, ``control_median``, ``control_risk``) with ``followup`` (and
    ``accrual``), from which the event probability of each group is computed
    (exponential survival, hazard ratio ``hr`` in the program group, uniform accrual;
    see :func:`event_probability`).

    Parameters
    ----------
    hr, power, alpha, ratio, method, alternative
        As in :func:`events_for_hazard_ratio`.
    event_probability : float, optional
        Overall probability of the event during the study.
    control_rate, control_median, control_risk
        The comparison group's hazard per unit time, median time to the event, or
        ``(t, P(T <= t))``.
    accrual : float, default 0.0
        Uniform enrolment period (same time unit).
    followup : float, optional
        Follow-up after the last enrolment (required with the survival inputs).
    design_effect, attrition, rounding
        As in :func:`power_proportions` (attrition here is loss before any follow-up;
        censoring during follow-up is in the event probability).

    Returns
    -------
    PowerResult
        ``kind="participants"``: ``hazard_ratio, method, alpha, power, ratio,
        events_exact, events, event_probability_1`` (comparison),
        ``event_probability_2`` (program), ``event_probability`` (overall) and the
        group sizes ``n1_exact ... n_total``.

    Raises
    ------
    InvalidParameterError
        Both or neither of ``event_probability`` and the survival inputs; ``followup``
        missing with the survival inputs.

    Notes
    -----
    ``P = (P1 + r P2) / (1 + r)``; ``n_total = d / P`` with ``d`` the unrounded events;
    ``n1 = n_total / (1 + r)`` then rounded per group (Schoenfeld 1983; Collett 2015,
    ch. 10).

    References
    ----------
    Collett D (2015). *Modelling Survival Data in Medical Research*, 3rd ed., ch. 10.
    """
    hr = _check_hr(hr)
    alpha, ratio, alternative, deff, attr, rounding = check_common(
        alpha=alpha, ratio=ratio, alternative=alternative, design_effect=design_effect,
        attrition=attrition, rounding=rounding)
    power = check_probability("power", power)
    method = check_option("method", method, EventsMethod)
    _check_direction(hr, alternative)
    survival_given = any(v is not None for v in (control_rate, control_median, control_risk))
    if (event_probability is None) == (not survival_given):
        raise InvalidParameterError(
            "give either event_probability= or the comparison group's survival (control_rate=, "
            "control_median= or control_risk=) with followup=; got "
            + ("both." if event_probability is not None else "neither."))
    if event_probability is not None:
        p_all = check_probability("event_probability", event_probability)
        p1 = p2 = float("nan")
        how = f"an overall event probability of {pct(p_all)} (given)"
    else:
        if followup is None:
            raise InvalidParameterError(
                "followup= (follow-up after the last enrolment, in the time unit of the survival "
                "inputs) is needed with control_rate/control_median/control_risk.")
        surv = {"rate": control_rate, "median": control_median, "risk": control_risk}
        p1 = _event_probability(**surv, hr=1.0, accrual=accrual, followup=followup)
        p2 = _event_probability(**surv, hr=hr, accrual=accrual, followup=followup)
        p_all = (p1 + ratio * p2) / (1.0 + ratio)
        how = (f"event probabilities of {pct(p1)} (comparison) and {pct(p2)} (program) over "
               f"{accrual:g} accrual + {followup:g} follow-up (exponential survival, Simpson's rule)")
    d = _events_exact(hr, power, alpha=alpha, ratio=ratio, alternative=alternative, method=method)
    n1x = d / p_all / (1.0 + ratio)
    sizes = group_sizes(n1x, ratio, deff, attr, rounding)
    row: dict[str, Any] = {"hazard_ratio": hr, "method": method, "alpha": alpha, "power": power,
                           "ratio": ratio, "events_exact": d, "events": ceil_count(d),
                           "event_probability_1": p1, "event_probability_2": p2,
                           "event_probability": p_all, **sizes, "design_effect": deff, "attrition": attr}
    note = (f"To detect a hazard ratio of {hr:g} with {pct(power)} power the analysis needs "
            f"{ceil_count(d):,} events; with {how}, that is {int(sizes['n1']):,} participants in the "
            f"comparison group and {int(sizes['n2']):,} in the program group ({int(sizes['n_total']):,} in total)"
            + (f", allowing for a design effect of {deff:g}" if deff != 1 else "")
            + (f" and {pct(attr)} attrition" if attr else "") + ".")
    return PowerResult(
        _table=pd.DataFrame([row]), conf_level=None, method=method, n_used=int(sizes["n_total"]), notes=(note,),
        kind="participants",
        solve_for="n", alpha=alpha, alternative=alternative,
        parameters={"hr": hr, "power": power, "alpha": alpha, "ratio": ratio, "method": method,
                    "alternative": alternative, "event_probability": p_all, "events": d,
                    "design_effect": deff, "attrition": attr, "rounding": rounding},
    )


_event_probability = event_probability  # the argument of the same name shadows it above
