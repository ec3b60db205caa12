"""E-values (VanderWeele & Ding 2017): :func:`evalue`."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd

from recoverystats._checks import check_option
from recoverystats.errors import InvalidParameterError
from recoverystats.results.causal import EValueResult

Measure = Literal["rr", "or", "hr", "smd"]

#: ``RR ≈ exp(0.91 d)`` for a standardised mean difference ``d`` (VanderWeele & Ding 2017, from Hasselblad & Hedges 1995).
SMD_TO_LOG_RR = 0.91


def evalue_rr(rr: float) -> float:
    """E-value of a risk ratio: ``RR* + sqrt(RR* (RR* - 1))`` with ``RR* = max(RR, 1/RR)``."""
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    r = rr if rr >= 1 else 1.0 / rr
    return float(r + math.sqrt(r * (r - 1.0)))


def evalue_ci_rr(rr: float, lower: float, upper: float) -> float:
    """E-value of a CI on the risk-ratio scale: 1 if it includes 1, else that of the bound closer to 1."""
    if not (np.isfinite(lower) or np.isfinite(upper)):
        return float("nan")
    if (np.isnan(lower) or lower <= 1.0) and (np.isnan(upper) or upper >= 1.0):
        if np.isnan(lower) or np.isnan(upper):  # one bound given: is it on the estimate's side of 1?
            if rr > 1 and not np.isnan(lower):
                return 1.0
            if rr < 1 and not np.isnan(upper):
                return 1.0
            return float("nan")
        return 1.0
    return evalue_rr(lower if rr > 1 else upper)


def to_rr(value: float, measure: str, rare: bool | None) -> float:
    """Convert an OR/HR/SMD to the risk-ratio scale (VanderWeele & Ding 2017, Table 2)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return float("nan")
    v = float(value)
    if measure == "smd":
        return math.exp(SMD_TO_LOG_RR * v)
    if v <= 0:
        raise InvalidParameterError(f"a {measure.upper()} must be positive; got {value!r}.")
    if measure == "rr" or rare:
        return v
    if measure == "or":
        return math.sqrt(v)
    # hr, common outcome
    return (1.0 - 0.5 ** math.sqrt(v)) / (1.0 - 0.5 ** math.sqrt(1.0 / v))


def evalue_sentence(point: float, ci: float, *, exposure: str = "the exposure", outcome: str = "the outcome",
                    approx: str = "") -> str:
    """The E-values in plain words."""
    if not np.isfinite(point):
        return "E-value: not available (the estimate is not finite)."
    text = (
        f"E-value: an unmeasured confounder associated with both {exposure} and {outcome} by a risk ratio of "
        f"{point:.2f} each, above and beyond the measured covariates, could explain away the estimate"
    )
    if np.isnan(ci):
        text += "; no E-value for the confidence interval (no interval was computed)."
    elif ci <= 1.0:
        text += "; the confidence interval already includes no effect (E-value for the interval: 1)."
    else:
        text += f"; one associated by {ci:.2f} each could move the confidence interval to include no effect."
    if approx:
        text += f" {approx}"
    return text


def evalue(
    estimate: float,
    ci_lower: float | None = None,
    ci_upper: float | None = None,
    *,
    measure: Measure = "rr",
    rare: bool | None = None,
) -> EValueResult:
    """E-value: how strong unmeasured confounding would have to be to explain away an association.

    The E-value is the minimum strength of association, on the risk-ratio scale, that an
    unmeasured confounder would need with both the exposure and the outcome (each,
    conditional on the measured covariates) to fully explain away the observed risk
    ratio; the E-value of the confidence interval is the strength that would move the
    interval to include 1.

    Parameters
    ----------
    estimate
        The observed risk ratio, odds ratio, hazard ratio (or, with ``measure="smd"``, a
        standardised mean difference ``d``).
    ci_lower, ci_upper
        Its confidence limits (either or both).
    measure
        ``"rr"``, ``"or"``, ``"hr"``, or ``"smd"`` (a mean difference divided by the
        outcome's SD).
    rare
        Required for ``"or"`` and ``"hr"``: whether the outcome is rare (below about 15%
        by the end of follow-up). Then the OR/HR approximates the RR; if not, the
        conversions below are used.

    Returns
    -------
    EValueResult
        ``.point`` and ``.ci`` (the E-values), ``.table`` (the estimate and bounds, their
        risk-ratio equivalents and E-values) and ``.sentence()``.

    Notes
    -----
    For ``RR > 1``: ``E = RR + sqrt(RR (RR - 1))``; for ``RR < 1`` the same with ``1/RR``.
    For the interval: 1 if it includes 1, else the E-value of the limit closer to 1.
    Conversions (VanderWeele & Ding 2017): common-outcome OR -> ``sqrt(OR)``;
    common-outcome HR -> ``(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))``; SMD ->
    ``exp(0.91 d)``. Matches R ``EValue::evalues.RR/OR/HR/MD``.

    References
    ----------
    VanderWeele TJ, Ding P (2017). Sensitivity analysis in observational research:
    introducing the E-value. *Annals of Internal Medicine* 167:268-274.

    Examples
    --------
    >>> from recoverystats.causal import evalue
    >>> e = evalue(3.9, 1.8, 8.7)
    >>> round(e.point, 2), round(e.ci, 2)
    (7.26, 3.0)
    """
    check_option("measure", measure, Measure)
    if measure in ("or", "hr") and rare is None:
        raise InvalidParameterError(
            f"measure={measure!r} needs rare=True or rare=False: is the outcome rare (under about 15% by the end "
            "of follow-up)? If so the ratio approximates a risk ratio; if not it is converted first."
        )
    vals = []
    for name, v in (("estimate", estimate), ("ci_lower", ci_lower), ("ci_upper", ci_upper)):
        if v is None:
            vals.append(float("nan"))
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"{name} must be a number; got {v!r}.") from None
        vals.append(f)
    est, lo, hi = vals
    if np.isnan(est):
        raise InvalidParameterError("estimate must be a number (not NaN).")
    if not np.isnan(lo) and not np.isnan(hi) and lo > hi:
        raise InvalidParameterError(f"ci_lower ({lo:g}) is above ci_upper ({hi:g}).")
    rr, rlo, rhi = (to_rr(v, measure, rare) for v in (est, lo, hi))
    if not np.isnan(lo) and not np.isnan(hi) and not (lo <= est <= hi):
        raise InvalidParameterError(f"the estimate {est:g} is not inside its interval ({lo:g}, {hi:g}).")
    point = evalue_rr(rr)
    ci = evalue_ci_rr(rr, rlo, rhi)
    e_lo = ci if (rr >= 1 and not np.isnan(rlo)) else float("nan")
    e_hi = ci if (rr < 1 and not np.isnan(rhi)) else float("nan")
    table = pd.DataFrame({
        "quantity": ["point", "ci_lower", "ci_upper"],
        "estimate": [est, lo, hi],
        "risk_ratio": [rr, rlo, rhi],
        "evalue": [point, e_lo, e_hi],
    })
    notes = []
    if measure == "or" and not rare:
        notes.append("Common outcome: the odds ratio was converted to a risk ratio as sqrt(OR).")
    elif measure == "hr" and not rare:
        notes.append("Common outcome: the hazard ratio was converted as (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)).")
    elif measure == "smd":
        notes.append("Standardised mean difference converted to a risk ratio as exp(0.91 d) (approximate).")
    notes.append(evalue_sentence(point, ci))
    return EValueResult(
        _table=table,
        method=f"E-value ({measure.upper()}{', rare outcome' if rare else ''})",
        notes=tuple(notes),
        measure=measure,
        rare=rare,
        point=point,
        ci=ci,
    )
