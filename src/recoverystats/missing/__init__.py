"""Missing data: multiple imputation by chained equations and pooling by Rubin's rules.

:func:`impute` returns an :class:`ImputedData` (m completed data sets); every analysis
function accepts it in place of a DataFrame and returns its usual result pooled by
Rubin's rules (:func:`pool`). :func:`pool_estimates` pools estimates fitted elsewhere.
See ``docs/methods-missing-data.md``.
"""

from recoverystats.missing.imputation import ImputedData, impute
from recoverystats.missing.pooling import pool, pool_estimates

__all__ = ["impute", "ImputedData", "pool", "pool_estimates"]
