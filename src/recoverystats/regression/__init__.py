"""Adjusted odds ratios: logistic regression with a Firth fallback, cluster-robust
standard errors, g-computation risk differences/ratios and model diagnostics.

The public entry point is :func:`odds_ratios`; it returns an
:class:`~recoverystats.results.regression.OddsRatioResult` whose methods give
``risk_difference()``, ``risk_ratio()``, ``diagnostics()``, ``inverted()`` and ``plot()``.
"""

from recoverystats.regression.odds_ratios import odds_ratios

__all__ = ["odds_ratios"]
