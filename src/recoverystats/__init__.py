"""recoverystats — outcome evaluation for addiction-recovery and prison-reentry programs.

Load a program's exports onto one validated data model (:func:`read_program`), turn
them into per-participant outcomes (:mod:`recoverystats.measures`), and analyse them:
rates with proper intervals, adjusted odds ratios, survival analysis, and a quarterly
report with small cells suppressed.

Heavy libraries (pandas, statsmodels, matplotlib, ...) are imported on first use, so
``import recoverystats`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from recoverystats.errors import (
    DataValidationError,
    EstimationError,
    InvalidParameterError,
    RecoveryStatsError,
    RecoveryStatsWarning,
    SmallSampleWarning,
)

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily on first access)
_LAZY: dict[str, str] = {
    "read_program": "recoverystats.io.read",
    "ProgramData": "recoverystats.io.program",
    "retention": "recoverystats.measures",
    "relapse": "recoverystats.measures",
    "recidivism": "recoverystats.measures",
    "followup": "recoverystats.measures",
    "noms_change": "recoverystats.measures",
    "engagement": "recoverystats.measures",
    "proportion": "recoverystats.rates",
    "compare_proportions": "recoverystats.rates",
    "incidence_rate": "recoverystats.rates",
    "incidence_rate_ratio": "recoverystats.rates",
    "table_one": "recoverystats.rates",
    "trend": "recoverystats.rates",
    "odds_ratios": "recoverystats.regression",
    "survival_curve": "recoverystats.survival",
    "compare_survival": "recoverystats.survival",
    "hazard_ratios": "recoverystats.survival",
    "cumulative_incidence": "recoverystats.survival",
    "Labels": "recoverystats.schema.labels",
    "propensity_score": "recoverystats.causal",
    "balancing_weights": "recoverystats.causal",
    "balance": "recoverystats.causal",
    "treatment_effect": "recoverystats.causal",
    "evalue": "recoverystats.causal",
    "impute": "recoverystats.missing",
    "ImputedData": "recoverystats.missing",
    "pool": "recoverystats.missing",
    "pool_estimates": "recoverystats.missing",
    "attrition": "recoverystats.missing",
    "followup_weights": "recoverystats.missing",
    "tipping_point": "recoverystats.missing",
    "match": "recoverystats.causal",
    "meta_analysis": "recoverystats.synthesis",
    "effect_modification": "recoverystats.synthesis",
    "interrupted_time_series": "recoverystats.synthesis",
}
_SUBMODULES = {"datasets", "measures", "rates", "regression", "survival", "report", "privacy",
               "plotting", "results", "schema", "io", "causal", "missing", "design", "synthesis", "engines"}

__all__ = [
    "__version__",
    "DataValidationError",
    "EstimationError",
    "InvalidParameterError",
    "RecoveryStatsError",
    "RecoveryStatsWarning",
    "SmallSampleWarning",
    *_LAZY,
    *sorted(_SUBMODULES),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"recoverystats.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'recoverystats' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from recoverystats.causal import (
        balance,
        balancing_weights,
        evalue,
        match,
        propensity_score,
        treatment_effect,
    )
    from recoverystats.io.program import ProgramData
    from recoverystats.io.read import read_program
    from recoverystats.measures import (
        engagement,
        followup,
        noms_change,
        recidivism,
        relapse,
        retention,
    )
    from recoverystats.missing import (
        ImputedData,
        attrition,
        followup_weights,
        impute,
        pool,
        pool_estimates,
        tipping_point,
    )
    from recoverystats.rates import (
        compare_proportions,
        incidence_rate,
        incidence_rate_ratio,
        proportion,
        table_one,
        trend,
    )
    from recoverystats.regression import odds_ratios
    from recoverystats.survival import (
        compare_survival,
        cumulative_incidence,
        hazard_ratios,
        survival_curve,
    )
    from recoverystats.synthesis import effect_modification, interrupted_time_series, meta_analysis
