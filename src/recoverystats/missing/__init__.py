"""Missing data and attrition: diagnostics, non-response weights, MNAR sensitivity analysis.

- :func:`attrition`: completers vs non-completers (SMDs), follow-up rates against the
  target, a logistic model of being followed up.
- :func:`followup_weights`: inverse-probability-of-follow-up (non-response) weights,
  used with ``weights=..., weight_type="sampling"``.
- :func:`tipping_point`: delta-adjusted multiple imputation of a binary outcome over a
  grid of shifts (how different would non-responders have to be to change the
  conclusion), with deterministic best/worst-case bounds.
"""

from __future__ import annotations

from recoverystats.missing.attrition import attrition
from recoverystats.missing.sensitivity import tipping_point
from recoverystats.missing.weights import followup_weights

__all__ = ["attrition", "followup_weights", "tipping_point"]
