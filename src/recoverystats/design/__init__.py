"""Evaluation design: power, sample size and minimum detectable effects.

Closed forms for two proportions (:func:`power_proportions`), two means
(:func:`power_means`) and time-to-event outcomes (:func:`events_for_hazard_ratio`,
:func:`participants_for_hazard_ratio`), the design effect of clustered designs
(:func:`design_effect`) and attrition (:func:`inflate_for_attrition`); and power by
simulation for designs no formula covers (:func:`simulate_power`: plant an effect in
:func:`~recoverystats.datasets.simulate_program`, run the report's own analysis).

Conventions: group 1 is the reference (comparison) group, group 2 the program group,
``ratio = n2 / n1``; ``n`` is per group; sizes are rounded up per group before any
inflation (design effect, then attrition), and the tables show the unrounded, the
per-group and the total sizes. See ``docs/methods-design.md``.
"""

from __future__ import annotations

from recoverystats.design.clusters import design_effect, inflate_for_attrition
from recoverystats.design.means import power_means
from recoverystats.design.proportions import power_proportions
from recoverystats.design.simulation import simulate_power, two_proportions_data
from recoverystats.design.survival import (
    event_probability,
    events_for_hazard_ratio,
    participants_for_hazard_ratio,
)
from recoverystats.results.design import PowerResult, SimulatedPowerResult

__all__ = [
    "power_proportions",
    "power_means",
    "events_for_hazard_ratio",
    "participants_for_hazard_ratio",
    "event_probability",
    "design_effect",
    "inflate_for_attrition",
    "simulate_power",
    "two_proportions_data",
    "PowerResult",
    "SimulatedPowerResult",
]
