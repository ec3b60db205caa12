"""Shared pieces of :mod:`recoverystats.design` (internal): argument checks, critical
values, the rounding rule and the inflation for clustering and attrition."""

from __future__ import annotations

import math
from typing import Any, Literal

from recoverystats._checks import check_option
from recoverystats.errors import InvalidParameterError

Alternative = Literal["two-sided", "larger", "smaller"]
Rounding = Literal["stepwise", "final"]

#: a computed size within this relative distance above an integer is that integer
#: (121 * 1.1 is 133.10000000000002 in floating point, not more than 133.1)
_CEIL_RTOL = 1e-9


def ceil_count(x: float) -> int:
    """Round a computed number of participants or events up to the next integer.

    Floating-point noise just above an integer (``100 * 1.1``) does not add one.
    """
    if not math.isfinite(x):
        raise InvalidParameterError(f"the computed size is not finite ({x!r}); check the inputs.")
    return int(math.ceil(x - _CEIL_RTOL * max(1.0, abs(x))))


def check_probability(name: str, value: Any, *, open_interval: bool = True) -> float:
    """A probability strictly between 0 and 1 (or in [0, 1) with ``open_interval=False``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a number between 0 and 1; got {value!r}.") from None
    ok = 0.0 < v < 1.0 if open_interval else 0.0 <= v < 1.0
    if not ok or math.isnan(v):
        rng = "strictly between 0 and 1" if open_interval else "in [0, 1)"
        raise InvalidParameterError(f"{name} must be {rng}; got {value!r}.")
    return v


def check_positive(name: str, value: Any, *, minimum: float = 0.0, inclusive: bool = False) -> float:
    """A finite number above ``minimum`` (or at least ``minimum`` with ``inclusive=True``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a number; got {value!r}.") from None
    ok = (v >= minimum) if inclusive else (v > minimum)
    if not (ok and math.isfinite(v)):
        word = "at least" if inclusive else "greater than"
        raise InvalidParameterError(f"{name} must be a finite number {word} {minimum:g}; got {value!r}.")
    return v


def check_common(*, alpha: Any, ratio: Any, alternative: Any, design_effect: Any,
                 attrition: Any, rounding: Any) -> tuple[float, float, str, float, float, str]:
    """Checks shared by the sample-size functions; returns the values as floats/strings."""
    a = check_probability("alpha", alpha)
    r = check_positive("ratio", ratio)
    alt = check_option("alternative", alternative, Alternative)
    de = check_positive("design_effect", design_effect, minimum=1.0, inclusive=True)
    att = check_probability("attrition", attrition, open_interval=False)
    rnd = check_option("rounding", rounding, Rounding)
    return a, r, alt, de, att, rnd


def one_missing(**values: Any) -> str:
    """The name of the one argument that is ``None`` (the one solved for)."""
    missing = [k for k, v in values.items() if v is None]
    if len(missing) != 1:
        names = ", ".join(values)
        got = ", ".join(f"{k}={v!r}" for k, v in values.items())
        raise InvalidParameterError(
            f"exactly one of {names} must be None (it is the one solved for); got {got}. "
            "Leave out (or set to None) the one you want computed."
        )
    return missing[0]


def z_alpha(alpha: float, alternative: str) -> float:
    """The standard normal critical value: ``z(1 - alpha/2)`` two-sided, ``z(1 - alpha)`` one-sided."""
    from scipy.stats import norm

    return float(norm.isf(alpha / 2.0 if alternative == "two-sided" else alpha))


def group_sizes(n1_exact: float, ratio: float, design_effect: float, attrition: float,
                rounding: str) -> dict[str, float]:
    """Per-group sizes from the unrounded size of the reference group.

    ``stepwise`` (the default everywhere): each group is rounded up first
    (``n1 = ceil(n1_exact)``, ``n2 = ceil(ratio * n1_exact)``), then multiplied by the
    design effect and rounded up, then divided by ``1 - attrition`` and rounded up.
    ``final``: the unrounded sizes are multiplied and divided and rounded up once at the
    end (the convention of R epiR's ``epi.sscohortc``, which gives at most one
    participant fewer per group at each step).
    """
    n2_exact = ratio * n1_exact
    if rounding == "stepwise":
        b1, b2 = ceil_count(n1_exact), ceil_count(n2_exact)
        c1, c2 = ceil_count(b1 * design_effect), ceil_count(b2 * design_effect)
        f1, f2 = ceil_count(c1 / (1.0 - attrition)), ceil_count(c2 / (1.0 - attrition))
    else:
        b1, b2 = ceil_count(n1_exact), ceil_count(n2_exact)
        f1 = ceil_count(n1_exact * design_effect / (1.0 - attrition))
        f2 = ceil_count(n2_exact * design_effect / (1.0 - attrition))
    return {"n1_exact": n1_exact, "n2_exact": n2_exact, "n1_base": float(b1), "n2_base": float(b2),
            "n1": float(f1), "n2": float(f2), "n_total": float(f1 + f2)}


def effective_n1(n: Any, design_effect: float, attrition: float) -> tuple[float, float]:
    """The planned reference-group size and the effective one it gives
    (``n * (1 - attrition) / design_effect``) for a power or detectable-effect calculation."""
    n1 = check_positive("n", n, minimum=1.0, inclusive=True)
    return n1, n1 * (1.0 - attrition) / design_effect


def pct(x: float) -> str:
    """A probability as a percentage for notes (e.g. 80%, 12.5%)."""
    return f"{100 * x:.3g}%"


def n_total(rows: list[dict[str, Any]]) -> int | None:
    """``n_used`` of a result: the total participants of its first row (rounded up when planned sizes are fractional)."""
    if not rows:
        return None
    v = float(rows[0].get("n_total", float("nan")))
    return ceil_count(v) if math.isfinite(v) else None
