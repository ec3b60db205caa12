"""Comparison-group (non-randomised) evaluation: propensity scores, balancing weights,
covariate balance, marginal treatment effects and E-values.

Every function takes the compared groups as ``exposure=`` (two values) and the
covariates as ``adjust=`` (or a ``formula=``). Weight-producing functions return a
result whose ``.weights`` is a Series aligned to the input, to be used as sampling
weights. See ``docs/methods-comparison.md`` for which estimand and method to use.
"""

from recoverystats.causal.balance import balance
from recoverystats.causal.effects import treatment_effect
from recoverystats.causal.evalue import evalue
from recoverystats.causal.propensity import propensity_score
from recoverystats.causal.weighting import balancing_weights

__all__ = [
    "propensity_score",
    "balancing_weights",
    "balance",
    "treatment_effect",
    "evalue",
]
