"""Time-to-event analysis: Kaplan-Meier, log-rank family tests, Cox regression, cumulative incidence.

Public entry points (each takes the data first and keyword-only column roles):

- :func:`survival_curve` — Kaplan-Meier curves with CIs, medians, at-risk tables, RMST;
- :func:`compare_survival` — log-rank, Gehan-Breslow (Wilcoxon), Tarone-Ware,
  Peto-Peto and Fleming-Harrington tests, optionally stratified;
- :func:`hazard_ratios` — Cox proportional-hazards regression (Efron/Breslow ties,
  strata, cluster-robust SEs, PH test);
- :func:`cumulative_incidence` — Aalen-Johansen cumulative incidence with competing
  events and Gray's test.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "survival_curve": "recoverystats.survival.km",
    "compare_survival": "recoverystats.survival.logrank",
    "hazard_ratios": "recoverystats.survival.cox",
    "cumulative_incidence": "recoverystats.survival.cif",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recoverystats.survival' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
