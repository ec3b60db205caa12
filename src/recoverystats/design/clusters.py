"""Clustered designs (participants grouped in mentor caseloads or sites) and attrition."""

from __future__ import annotations

import math
from typing import Any

from recoverystats.design._common import ceil_count, check_positive, check_probability
from recoverystats.errors import InvalidParameterError

__all__ = ["design_effect", "inflate_for_attrition"]


def design_effect(cluster_size: float, icc: float, *, cv: float = 0.0) -> float:
    """The variance inflation of a clustered design (e.g. participants within mentor caseloads).

    Parameters
    ----------
    cluster_size : float
        The mean number of participants per cluster (``m``), e.g. per mentor.
    icc : float
        The intracluster correlation of the outcome (``rho``), in [0, 1].
    cv : float, default 0.0
        The coefficient of variation of the cluster sizes (SD of the sizes over their
        mean); 0 for equal clusters.

    Returns
    -------
    float
        ``1 + ((cv^2 + 1) m - 1) rho``; with equal clusters ``1 + (m - 1) rho``.
        Multiply an individually randomised sample size by it (``design_effect=`` of
        :func:`power_proportions` and friends).

    Raises
    ------
    InvalidParameterError
        ``cluster_size`` below 1, ``icc`` outside [0, 1], ``cv`` negative.

    Notes
    -----
    Kish's design effect for equal clusters; for unequal cluster sizes the formula of
    Eldridge, Ashby & Kerry (2006), which assumes the sizes vary as a random sample
    (it is conservative when sizes are fixed by design). The epiR ``epi.sscohortc``
    example (Woodward 2014): ``rho = 0.05``, 30 per cluster, design effect 2.45.

    References
    ----------
    Eldridge SM, Ashby D, Kerry S (2006). Sample size for cluster randomized trials:
    effect of coefficient of variation of cluster size and analysis method.
    *International Journal of Epidemiology* 35:1292-1300.
    Donner A, Klar N (2000). *Design and Analysis of Cluster Randomization Trials*.

    Examples
    --------
    >>> from recoverystats.design import design_effect
    >>> round(design_effect(30, 0.05), 10)
    2.45
    """
    m = check_positive("cluster_size", cluster_size, minimum=1.0, inclusive=True)
    try:
        rho = float(icc)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"icc must be a number in [0, 1]; got {icc!r}.") from None
    if not (0.0 <= rho <= 1.0):
        raise InvalidParameterError(f"icc must be in [0, 1] (an intracluster correlation); got {icc!r}.")
    c = check_positive("cv", cv, inclusive=True)
    return 1.0 + ((c * c + 1.0) * m - 1.0) * rho


def inflate_for_attrition(n: Any, attrition: float) -> int:
    """Participants to enrol so that ``n`` remain after losing a share ``attrition``.

    Parameters
    ----------
    n : int or float
        Participants needed at analysis.
    attrition : float
        Expected share lost (0 <= attrition < 1).

    Returns
    -------
    int
        ``ceil(n / (1 - attrition))``.

    Examples
    --------
    >>> from recoverystats.design import inflate_for_attrition
    >>> inflate_for_attrition(121, 0.2)
    152
    """
    v = check_positive("n", n, inclusive=True)
    a = check_probability("attrition", attrition, open_interval=False)
    if not math.isfinite(v):
        raise InvalidParameterError(f"n must be finite; got {n!r}.")
    return ceil_count(v / (1.0 - a))
