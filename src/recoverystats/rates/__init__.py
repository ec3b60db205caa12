"""Rates: proportions, comparisons, incidence rates, Table 1 and quarterly trends.

Every function takes a DataFrame (typically one row per participant, the output of a
:mod:`recoverystats.measures` function) as its first argument and returns a frozen
result object with a tidy ``.table``.
"""

from recoverystats.rates.compare import compare_proportions
from recoverystats.rates.incidence import incidence_rate, incidence_rate_ratio
from recoverystats.rates.proportion import proportion
from recoverystats.rates.table_one import table_one
from recoverystats.rates.trend import trend

__all__ = [
    "proportion",
    "compare_proportions",
    "incidence_rate",
    "incidence_rate_ratio",
    "table_one",
    "trend",
]
