"""Evaluation synthesis: pooling across sites, effect modification, interrupted time series.

- :func:`meta_analysis` — fixed/random-effects pooling (REML, DL, PM, HKSJ) of per-site
  estimates, 2x2 counts or fitted results, with heterogeneity, prediction interval and
  Egger's test;
- :func:`effect_modification` — the exposure's effect in each level of a modifier, the
  interaction test on the multiplicative and additive scales, RERI;
- :func:`interrupted_time_series` — segmented regression with level and slope changes,
  Newey-West or quasi-Poisson inference, seasonality and the counterfactual.
"""

from __future__ import annotations

from recoverystats.synthesis.its import interrupted_time_series
from recoverystats.synthesis.meta import effect_sizes, meta_analysis
from recoverystats.synthesis.modification import effect_modification

__all__ = ["meta_analysis", "effect_sizes", "effect_modification", "interrupted_time_series"]
