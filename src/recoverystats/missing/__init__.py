"""Missing data and attrition.

- :func:`impute` returns an :class:`ImputedData` (m completed data sets by chained
  equations); every analysis function accepts it in place of a DataFrame and returns its
  usual result pooled by Rubin's rules (:func:`pool`); :func:`pool_estimates` pools
  estimates fitted elsewhere.
- :func:`attrition`: completers vs non-completers (SMDs), follow-up rates against the
  target, a logistic model of being followed up.
- :func:`followup_weights`: inverse-probability-of-follow-up (non-response) weights,
  used with ``weights=..., weight_type="sampling"``.
- :func:`tipping_point`: delta-adjusted multiple imputation of a binary outcome over a
  grid of shifts (how different would non-responders have to be to change the
  conclusion), with deterministic best/worst-case bounds.

See ``docs/methods-missing-data.md``.
"""

from recoverystats.missing.attrition import attrition
from recoverystats.missing.imputation import ImputedData, impute
from recoverystats.missing.pooling import pool, pool_estimates
from recoverystats.missing.sensitivity import tipping_point
from recoverystats.missing.weights import followup_weights

__all__ = ["impute", "ImputedData", "pool", "pool_estimates", "attrition", "followup_weights", "tipping_point"]
