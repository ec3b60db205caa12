"""Power, sample size and the smallest detectable difference for two means
(e.g. a NOMs-style score or days abstinent).

The power of the two-sample t-test comes from the noncentral t distribution (scipy),
as in statsmodels ``TTestIndPower`` and R ``pwr.t2n.test``; the sizes, the rounding rule,
the design effect and attrition are those of :func:`power_proportions`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import pandas as pd

from recoverystats._checks import check_option
from recoverystats.design._common import (
    Alternative,
    Rounding,
    check_common,
    check_positive,
    check_probability,
    effective_n1,
    group_sizes,
    one_missing,
    pct,
)
from recoverystats.design._common import (
    n_total as _n_total,
)
from recoverystats.errors import InvalidParameterError
from recoverystats.results.design import PowerResult

__all__ = ["power_means"]

MeansTest = Literal["t", "z"]


def _power(d: float, n1: float, *, alpha: float, ratio: float, alternative: str, test: str) -> float:
    """Power of the two-sample test for standardised difference ``d`` with ``n1`` and ``ratio * n1``."""
    from scipy.stats import nct, norm, t

    n2 = ratio * n1
    ncp = d * math.sqrt(n1 * n2 / (n1 + n2))
    if test == "z":
        if alternative == "two-sided":
            crit = float(norm.isf(alpha / 2))
            return float(norm.sf(crit - ncp) + norm.cdf(-crit - ncp))
        crit = float(norm.isf(alpha))
        return float(norm.sf(crit - ncp)) if alternative == "larger" else float(norm.cdf(-crit - ncp))
    df = n1 + n2 - 2.0
    if alternative == "two-sided":
        crit = float(t.isf(alpha / 2, df))
        return float(nct.sf(crit, df, ncp) + nct.cdf(-crit, df, ncp))
    crit = float(t.isf(alpha, df))
    return float(nct.sf(crit, df, ncp)) if alternative == "larger" else float(nct.cdf(-crit, df, ncp))


def power_means(
    *,
    delta: float | None = None,
    sd: float,
    n: float | None = None,
    power: float | None = None,
    alpha: float = 0.05,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
    test: MeansTest = "t",
    design_effect: float = 1.0,
    attrition: float = 0.0,
    rounding: Rounding = "stepwise",
) -> PowerResult:
    """Sample size, power or the smallest detectable difference between two means.

    Exactly one of ``delta``, ``n`` and ``power`` is ``None``; it is solved for.

    Parameters
    ----------
    delta : float, optional
        The difference in means, program minus comparison, in the outcome's units.
        ``None``: solve for the smallest detectable difference (returned positive for
        ``"two-sided"`` and ``"larger"``, negative for ``"smaller"``; a two-sided test
        detects the same size in either direction).
    sd : float
        The common within-group standard deviation (``delta / sd`` is Cohen's d).
    n : float, optional
        Participants in group 1 (comparison) as planned; group 2 has ``ratio * n``.
    power : float, optional
        The required power.
    alpha : float, default 0.05
        Significance level.
    ratio : float, default 1.0
        Allocation ratio ``n2 / n1``.
    alternative : {"two-sided", "larger", "smaller"}, default "two-sided"
        Two-sided power counts rejections in both directions (as statsmodels and pwr).
    test : {"t", "z"}, default "t"
        ``"t"``: the two-sample t-test with pooled variance (noncentral t);
        ``"z"``: the normal approximation (known variance).
    design_effect, attrition, rounding
        As in :func:`power_proportions`.

    Returns
    -------
    PowerResult
        ``kind="means"``: columns ``direction, delta, sd, effect_size, alpha, power,
        ratio`` and the group sizes (see :class:`PowerResult`).

    Raises
    ------
    InvalidParameterError
        Not exactly one of ``delta``, ``n``, ``power`` is None; ``sd`` not positive;
        ``delta`` of 0 when solving for ``n``; a size below 2.

    Notes
    -----
    With ``d = delta / sd``, ``n2 = r n1``, ``df = n1 + n2 - 2`` and the noncentrality
    ``lambda = d sqrt(n1 n2 / (n1 + n2))``, the two-sided power is
    ``P(T' > t_crit) + P(T' < -t_crit)`` with ``T' ~ t(df, lambda)`` and
    ``t_crit = t(1 - alpha/2, df)``. ``n1`` and ``delta`` are found by Brent's method
    on that equation. Matches statsmodels ``TTestIndPower().solve_power`` and R
    ``pwr.t.test`` (Cohen's d = 0.5, 80% power, two-sided 0.05: 63.77, so 64 per group).

    References
    ----------
    Cohen J (1988). *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed., ch. 2.

    Examples
    --------
    >>> from recoverystats.design import power_means
    >>> int(power_means(delta=0.5, sd=1.0, power=0.8).table["n1"].iloc[0])
    64
    """
    from scipy.optimize import brentq

    solve = one_missing(delta=delta, n=n, power=power)
    alpha, ratio, alternative, deff, attr, rounding = check_common(
        alpha=alpha, ratio=ratio, alternative=alternative, design_effect=design_effect,
        attrition=attrition, rounding=rounding)
    test = check_option("test", test, MeansTest)
    sd = check_positive("sd", sd)
    if power is not None:
        power = check_probability("power", power)
        if power <= alpha:
            raise InvalidParameterError(f"power must be greater than alpha ({alpha:g}); got {power!r}.")
    if delta is not None:
        try:
            delta = float(delta)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"delta must be a number; got {delta!r}.") from None
        if not math.isfinite(delta):
            raise InvalidParameterError(f"delta must be finite; got {delta!r}.")
    kw = {"alpha": alpha, "ratio": ratio, "alternative": alternative, "test": test}
    notes: list[str] = []
    sign = -1.0 if alternative == "smaller" else 1.0
    if solve == "n":
        assert delta is not None and power is not None
        if delta == 0:
            raise InvalidParameterError("delta must be nonzero to compute a sample size; got 0.")
        if alternative == "larger" and delta < 0 or alternative == "smaller" and delta > 0:
            raise InvalidParameterError(
                f"alternative={alternative!r} does not match the sign of delta ({delta:g}); "
                "swap the alternative or use 'two-sided'.")
        d = delta / sd
        d_eff = abs(d) if alternative == "two-sided" else d
        lo = 3.0 / (1 + ratio)  # one degree of freedom
        f = lambda x: _power(d_eff, x, **kw) - power  # noqa: E731
        hi = 4.0
        while f(hi) < 0:
            hi *= 2
            if hi > 1e12:
                raise InvalidParameterError(f"no sample size below 1e12 reaches power {power:g}.")
        n1x = float(brentq(f, lo, hi, xtol=1e-10, rtol=1e-12)) if not f(lo) >= 0 else lo
        sizes = group_sizes(n1x, ratio, deff, attr, rounding)
        rows = [_row(delta, sd, power, alpha, ratio, deff, attr, sizes)]
        notes.append(
            f"To detect a difference of {delta:g} (standardised {d:.3g} SD) with {pct(power)} power at a "
            f"{'two' if alternative == 'two-sided' else 'one'}-sided {alpha:g} level, the study needs "
            f"{int(sizes['n1']):,} participants in the comparison group and {int(sizes['n2']):,} in the "
            f"program group ({int(sizes['n_total']):,} in total)"
            + (f", allowing for a design effect of {deff:g}" if deff != 1 else "")
            + (f" and {pct(attr)} attrition" if attr else "") + ".")
    else:
        planned, n1e = effective_n1(n, deff, attr)
        if n1e * (1 + ratio) <= 2:
            raise InvalidParameterError(
                f"n gives {n1e * (1 + ratio):.3g} effective participants in all; at least 3 are needed.")
        sizes = {"n1_exact": n1e, "n2_exact": ratio * n1e, "n1_base": n1e, "n2_base": ratio * n1e,
                 "n1": planned, "n2": ratio * planned, "n_total": planned * (1 + ratio)}
        if solve == "power":
            assert delta is not None
            d = delta / sd
            pw = _power(abs(d) if alternative == "two-sided" else d, n1e, **kw)
            rows = [_row(delta, sd, pw, alpha, ratio, deff, attr, sizes)]
            notes.append(f"With {planned:,.0f} participants in the comparison group and "
                         f"{ratio * planned:,.0f} in the program group, the power to detect a difference of "
                         f"{delta:g} is {pct(pw)}.")
        else:
            assert power is not None
            f = lambda x: _power(sign * x, n1e, **kw) - power  # noqa: E731
            hi = 1.0
            while f(hi) < 0:
                hi *= 2
            dd = float(brentq(f, 1e-12, hi, xtol=1e-13, rtol=1e-12))
            rows = [_row(sign * dd * sd, sd, power, alpha, ratio, deff, attr, sizes)]
            notes.append(f"With {planned:,.0f} participants in the comparison group and "
                         f"{ratio * planned:,.0f} in the program group, the smallest difference detectable "
                         f"with {pct(power)} power is {sign * dd * sd:.4g} ({sign * dd:.3g} SD)"
                         + (" in either direction." if alternative == "two-sided" else "."))
    notes.append("Method: two-sample t-test, pooled variance (noncentral t)." if test == "t"
                 else "Method: two-sample z-test (normal approximation).")
    return PowerResult(
        _table=pd.DataFrame(rows), conf_level=None, method=f"{test}-test", n_used=_n_total(rows), notes=tuple(notes),
        kind="means", solve_for=solve, alpha=alpha, alternative=alternative,
        parameters={"delta": delta, "sd": sd, "n": None if n is None else float(n), "power": power,
                    "alpha": alpha, "ratio": ratio, "alternative": alternative, "test": test,
                    "design_effect": deff, "attrition": attr, "rounding": rounding},
    )


def _row(delta: float, sd: float, power: float, alpha: float, ratio: float, deff: float, attr: float,
         sizes: dict[str, float]) -> dict[str, Any]:
    return {"direction": "increase" if delta > 0 else "decrease", "delta": delta, "sd": sd,
            "effect_size": delta / sd, "alpha": alpha, "power": power, "ratio": ratio,
            **{k: sizes[k] for k in ("n1_exact", "n2_exact", "n1_base", "n2_base")},
            "design_effect": deff, "attrition": attr, **{k: sizes[k] for k in ("n1", "n2", "n_total")}}
