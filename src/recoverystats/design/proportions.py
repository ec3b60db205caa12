"""Power, sample size and the smallest detectable difference for two proportions.

Hand-written: statsmodels' ``NormalIndPower`` with ``proportion_effectsize`` works on
Cohen's arcsine scale and solves only for an effect size, not for the second
proportion; the pooled-variance formula with Fleiss' continuity correction used by
epiR (``epi.sscohortc``), Stata (``power twoproportions``) and most trial protocols has
no maintained Python implementation.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd

from recoverystats._checks import check_option
from recoverystats.design._common import (
    Alternative,
    Rounding,
    check_common,
    check_probability,
    effective_n1,
    group_sizes,
    one_missing,
    pct,
    z_alpha,
)
from recoverystats.design._common import (
    n_total as _n_total,
)
from recoverystats.errors import InvalidParameterError
from recoverystats.results.design import PowerResult

__all__ = ["power_proportions"]

ProportionMethod = Literal["pooled", "arcsine"]


def _power(p1: float, p2: float, n1: float, *, alpha: float, ratio: float, alternative: str,
           continuity: bool, method: str) -> float:
    """Power of the two-proportion test with ``n1`` (effective) in group 1 and ``ratio * n1`` in group 2."""
    from scipy.stats import norm

    za = z_alpha(alpha, alternative)
    diff = p2 - p1
    signed = abs(diff) if alternative == "two-sided" else (diff if alternative == "larger" else -diff)
    if method == "arcsine":
        h = 2.0 * math.asin(math.sqrt(p2)) - 2.0 * math.asin(math.sqrt(p1))
        h = abs(h) if alternative == "two-sided" else (h if alternative == "larger" else -h)
        return float(norm.cdf(h * math.sqrt(n1 / (1.0 + 1.0 / ratio)) - za))
    pbar = (p1 + ratio * p2) / (1.0 + ratio)
    sd0 = math.sqrt(pbar * (1.0 - pbar) * (1.0 + 1.0 / ratio))
    sd1 = math.sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2) / ratio)
    if continuity:
        signed = signed - (1.0 + ratio) / (2.0 * ratio * n1)
    return float(norm.cdf((signed * math.sqrt(n1) - za * sd0) / sd1))


def _n1(p1: float, p2: float, power: float, *, alpha: float, ratio: float, alternative: str,
        continuity: bool, method: str) -> float:
    """Unrounded size of group 1 (closed form)."""
    from scipy.stats import norm

    za, zb = z_alpha(alpha, alternative), float(norm.ppf(power))
    if method == "arcsine":
        h = 2.0 * math.asin(math.sqrt(p2)) - 2.0 * math.asin(math.sqrt(p1))
        return ((za + zb) / h) ** 2 * (1.0 + 1.0 / ratio)
    diff = abs(p2 - p1)
    pbar = (p1 + ratio * p2) / (1.0 + ratio)
    sd0 = math.sqrt(pbar * (1.0 - pbar) * (1.0 + 1.0 / ratio))
    sd1 = math.sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2) / ratio)
    n = ((za * sd0 + zb * sd1) / diff) ** 2
    if continuity:
        n = n / 4.0 * (1.0 + math.sqrt(1.0 + 2.0 * (1.0 + ratio) / (ratio * n * diff))) ** 2
    return n


def _detectable_p2(p1: float, n1: float, power: float, *, direction: str, **kw: Any) -> float:
    """The p2 on one side of p1 at which the power is ``power`` (NaN if none in (0, 1))."""
    from scipy.optimize import brentq

    eps = 1e-10
    lo, hi = (p1 + eps, 1.0 - eps) if direction == "increase" else (eps, p1 - eps)
    f = lambda p2: _power(p1, p2, n1, **kw) - power  # noqa: E731
    far = hi if direction == "increase" else lo
    if lo >= hi or f(far) < 0:
        return float("nan")
    near = lo if direction == "increase" else hi
    if f(near) >= 0:  # already powered at an infinitesimal difference (huge n)
        return near
    return float(brentq(f, min(near, far), max(near, far), xtol=1e-13, rtol=1e-12, maxiter=500))


def power_proportions(
    *,
    p1: float,
    p2: float | None = None,
    n: float | None = None,
    power: float | None = None,
    alpha: float = 0.05,
    ratio: float = 1.0,
    continuity: bool = False,
    alternative: Alternative = "two-sided",
    design_effect: float = 1.0,
    attrition: float = 0.0,
    method: ProportionMethod = "pooled",
    rounding: Rounding = "stepwise",
) -> PowerResult:
    """Sample size, power or the smallest detectable second proportion for two groups.

    Exactly one of ``p2``, ``n`` and ``power`` is ``None``; it is solved for.

    Parameters
    ----------
    p1 : float
        The outcome proportion in group 1, the reference (comparison) group, e.g. the
        comparison group's 12-month relapse rate.
    p2 : float, optional
        The proportion in group 2 (the program group). ``None``: solve for the smallest
        detectable ``p2`` on each side of ``p1`` (two rows, ``direction`` ``"increase"``
        and ``"decrease"``; one row for a one-sided ``alternative``).
    n : float, optional
        Participants in group 1 (group 2 has ``ratio * n``) as planned, i.e. *before*
        attrition and counting each participant once (the design effect and attrition
        are taken out to give the effective size). ``None``: solve for it.
    power : float, optional
        The required power (e.g. 0.8). ``None``: solve for it.
    alpha : float, default 0.05
        Significance level (two-sided unless ``alternative`` says otherwise).
    ratio : float, default 1.0
        Allocation ratio ``n2 / n1`` (program over comparison participants).
    continuity : bool, default False
        Fleiss, Tytun & Ury's (1980) continuity correction (the sample size for the
        continuity-corrected chi-square / Yates test).
    alternative : {"two-sided", "larger", "smaller"}, default "two-sided"
        ``"larger"``: H1 is ``p2 > p1``; ``"smaller"``: ``p2 < p1``. For two-sided tests
        the probability of rejecting in the wrong direction is ignored, as in the
        textbook formulas (it is below ``alpha / 2``).
    design_effect : float, default 1.0
        Variance inflation for clustering (e.g. by mentor caseload), see
        :func:`design_effect`; sizes are multiplied by it.
    attrition : float, default 0.0
        Expected share lost to follow-up; sizes are divided by ``1 - attrition``.
    method : {"pooled", "arcsine"}, default "pooled"
        ``"pooled"``: the normal-approximation test with the pooled variance under H0
        (Fleiss; Woodward 2014, ch. 8; epiR ``epi.sscohortc``; Stata ``power
        twoproportions``). ``"arcsine"``: Cohen's ``h = 2 asin(sqrt(p2)) - 2
        asin(sqrt(p1))`` (R ``pwr.2p2n.test``; statsmodels ``NormalIndPower`` with
        ``proportion_effectsize``); no continuity correction.
    rounding : {"stepwise", "final"}, default "stepwise"
        ``"stepwise"``: each group's size is rounded up before the design effect, then
        again after it and after attrition. ``"final"``: rounded up once at the end
        (epiR's convention).

    Returns
    -------
    PowerResult
        One row per solution (``kind="proportions"``); see :class:`PowerResult`.

    Raises
    ------
    InvalidParameterError
        Not exactly one of ``p2``, ``n``, ``power`` is None; a proportion outside (0, 1);
        ``p2 == p1`` when solving for ``n``; a one-sided ``alternative`` pointing away
        from ``p2``; ``continuity=True`` with ``method="arcsine"``.

    Notes
    -----
    With ``d = p2 - p1``, ``pbar = (p1 + r p2) / (1 + r)``, ``q = 1 - p`` and ``z_a`` the
    normal critical value (``z(1 - alpha/2)`` two-sided)::

        n1 = [z_a sqrt(pbar qbar (1 + 1/r)) + z_b sqrt(p1 q1 + p2 q2 / r)]^2 / d^2
        n1_cc = n1 / 4 * [1 + sqrt(1 + 2 (1 + r) / (r n1 |d|))]^2        (continuity)
        power = Phi( (sqrt(n1) (|d| - cc) - z_a sqrt(pbar qbar (1 + 1/r)))
                     / sqrt(p1 q1 + p2 q2 / r) ),   cc = (1 + r) / (2 r n1) or 0

    The continuity-corrected power is the exact inverse of Fleiss' formula. The smallest
    detectable ``p2`` solves ``power(p2) = power`` on each side of ``p1`` (Brent's
    method), with ``n1`` the effective size ``n (1 - attrition) / design_effect``.
    Matches R epiR ``epi.sscohortc(irexp1 = p2, irexp0 = p1, r = ratio, sided.test,
    design)`` (its ``r`` is also exposed over unexposed) with ``rounding="final"``.

    References
    ----------
    Fleiss JL, Tytun A, Ury HK (1980). A simple approximation for calculating sample
    sizes for comparing independent proportions. *Biometrics* 36:343-346.
    Woodward M (2014). *Epidemiology: Study Design and Data Analysis*, 3rd ed., ch. 8.
    Cohen J (1988). *Statistical Power Analysis for the Behavioral Sciences*, ch. 6.

    Examples
    --------
    >>> from recoverystats.design import power_proportions
    >>> r = power_proportions(p1=0.15, p2=0.30, power=0.8)
    >>> r.table[["n1", "n2", "n_total"]].iloc[0].tolist()
    [121.0, 121.0, 242.0]
    """
    solve = one_missing(p2=p2, n=n, power=power)
    alpha, ratio, alternative, deff, attr, rounding = check_common(
        alpha=alpha, ratio=ratio, alternative=alternative, design_effect=design_effect,
        attrition=attrition, rounding=rounding)
    method = check_option("method", method, ProportionMethod)
    if continuity and method == "arcsine":
        raise InvalidParameterError(
            "continuity=True applies to method='pooled' only (the arcsine method has no "
            "continuity correction); got method='arcsine'. Use method='pooled' or continuity=False.")
    p1 = check_probability("p1", p1)
    if p2 is not None:
        p2 = check_probability("p2", p2)
    if power is not None:
        power = check_probability("power", power)
        if power <= alpha:
            raise InvalidParameterError(
                f"power must be greater than alpha ({alpha:g}); got {power!r}.")
    kw = {"alpha": alpha, "ratio": ratio, "alternative": alternative, "continuity": bool(continuity),
          "method": method}
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    if solve == "n":
        assert p2 is not None and power is not None
        if p2 == p1:
            raise InvalidParameterError(
                f"p2 must differ from p1 to compute a sample size; got p1 = p2 = {p1:g}.")
        if alternative == "larger" and p2 < p1 or alternative == "smaller" and p2 > p1:
            raise InvalidParameterError(
                f"alternative={alternative!r} tests p2 {'>' if alternative == 'larger' else '<'} p1, "
                f"but p2 = {p2:g} and p1 = {p1:g}; swap the alternative or use 'two-sided'.")
        n1x = _n1(p1, p2, power, **kw)
        sizes = group_sizes(n1x, ratio, deff, attr, rounding)
        achieved = _power(p1, p2, sizes["n1_base"], **kw)
        rows.append(_row(p1, p2, power, alpha, ratio, deff, attr, sizes, "increase" if p2 > p1 else "decrease"))
        notes.append(
            f"To detect {pct(p2)} against {pct(p1)} (a difference of {100 * (p2 - p1):+.3g} percentage points) "
            f"with {pct(power)} power at {_alpha_words(alpha, alternative)}, the study needs "
            f"{int(sizes['n1']):,} participants in the comparison group and {int(sizes['n2']):,} in the "
            f"program group ({int(sizes['n_total']):,} in total)"
            + (f", allowing for a design effect of {deff:g}" if deff != 1 else "")
            + (f" and {pct(attr)} attrition" if attr else "")
            + f". Before any inflation: {int(sizes['n1_base']):,} and {int(sizes['n2_base']):,} "
            f"(power {achieved:.3f} at those sizes).")
    else:
        planned, n1e = effective_n1(n, deff, attr)
        sizes = {"n1_exact": n1e, "n2_exact": ratio * n1e, "n1_base": n1e, "n2_base": ratio * n1e,
                 "n1": planned, "n2": ratio * planned, "n_total": planned * (1 + ratio)}
        if solve == "power":
            assert p2 is not None
            pw = _power(p1, p2, n1e, **kw)
            rows.append(_row(p1, p2, pw, alpha, ratio, deff, attr, sizes, "increase" if p2 > p1 else "decrease"))
            notes.append(
                f"With {planned:,.0f} participants in the comparison group and {ratio * planned:,.0f} in the "
                f"program group" + (f" (effective {n1e:,.1f} and {ratio * n1e:,.1f} after the design effect"
                                    " and attrition)" if (deff != 1 or attr) else "")
                + f", the power to detect {pct(p2)} against {pct(p1)} at {_alpha_words(alpha, alternative)} "
                f"is {pct(pw)}.")
        else:
            assert power is not None
            dirs = {"two-sided": ("increase", "decrease"), "larger": ("increase",), "smaller": ("decrease",)}
            found = []
            for d in dirs[alternative]:
                p2d = _detectable_p2(p1, n1e, power, direction=d, **kw)
                rows.append(_row(p1, p2d, power, alpha, ratio, deff, attr, sizes, d))
                found.append((d, p2d))
            words = [f"{'an increase' if d == 'increase' else 'a decrease'} to {pct(v)} "
                     f"({100 * (v - p1):+.3g} percentage points)" if np.isfinite(v) else
                     f"no {'increase' if d == 'increase' else 'decrease'} (impossible with this n)"
                     for d, v in found]
            notes.append(
                f"With {planned:,.0f} participants in the comparison group and {ratio * planned:,.0f} in the "
                f"program group and a comparison-group rate of {pct(p1)}, the smallest difference "
                f"detectable with {pct(power)} power at {_alpha_words(alpha, alternative)} is "
                + " or ".join(words) + ". Each row of the table is one direction (column 'direction').")
    if continuity:
        notes.append("Continuity correction: Fleiss, Tytun & Ury (1980).")
    notes.append(_method_note(method))
    table = pd.DataFrame(rows)
    return PowerResult(
        _table=table, conf_level=None, method=method, n_used=_n_total(rows), notes=tuple(notes), kind="proportions",
        solve_for=solve, alpha=alpha, alternative=alternative,
        parameters={"p1": p1, "p2": p2, "n": None if n is None else float(n), "power": power,
                    "alpha": alpha, "ratio": ratio, "continuity": bool(continuity),
                    "alternative": alternative, "design_effect": deff, "attrition": attr,
                    "method": method, "rounding": rounding},
    )


def _row(p1: float, p2: float, power: float, alpha: float, ratio: float, deff: float, attr: float,
         sizes: dict[str, float], direction: str) -> dict[str, Any]:
    ok = np.isfinite(p2)
    return {"direction": direction, "p1": p1, "p2": p2, "difference": p2 - p1 if ok else np.nan,
            "risk_ratio": p2 / p1 if ok else np.nan,
            "odds_ratio": (p2 / (1 - p2)) / (p1 / (1 - p1)) if ok else np.nan,
            "alpha": alpha, "power": power, "ratio": ratio, **{k: sizes[k] for k in ("n1_exact", "n2_exact",
                                                                                   "n1_base", "n2_base")},
            "design_effect": deff, "attrition": attr,
            **{k: sizes[k] for k in ("n1", "n2", "n_total")}}


def _alpha_words(alpha: float, alternative: str) -> str:
    return (f"a two-sided {alpha:g} level" if alternative == "two-sided"
            else f"a one-sided {alpha:g} level")


def _method_note(method: str) -> str:
    if method == "arcsine":
        return "Method: arcsine (Cohen's h) normal approximation."
    return ("Method: normal approximation with the pooled variance under the null "
            "(Fleiss; Woodward 2014, as R epiR epi.sscohortc).")
