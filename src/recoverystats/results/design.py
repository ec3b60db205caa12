"""Result objects of :mod:`recoverystats.design`: closed-form and simulated power.

``PowerResult`` holds one row per solved design (sample size, power or the smallest
detectable effect; two rows when a detectable effect is solved in both directions);
``SimulatedPowerResult`` one row per simulated scenario (sample size x planted effect).
Both keep the inputs in ``parameters`` so that ``plot()`` can draw power curves around
the solution; neither holds data rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from recoverystats.results.base import ResultMixin

__all__ = ["PowerResult", "SimulatedPowerResult"]


@dataclass(frozen=True, slots=True, repr=False)
class PowerResult(ResultMixin):
    """Sample size, power or minimum detectable effect from a closed-form calculation.

    ``.table`` columns depend on ``kind``:

    * ``"proportions"``: ``direction, p1, p2, difference, risk_ratio, odds_ratio, alpha,
      power, ratio, n1_exact, n2_exact, n1_base, n2_base, design_effect, attrition, n1,
      n2, n_total`` (group 1 is the reference/comparison group with ``p1``, group 2 the
      program group with ``p2``; ``n2 = ratio * n1``);
    * ``"means"``: the same with ``delta, sd, effect_size`` instead of the proportions;
    * ``"events"``: ``hazard_ratio, method, alpha, power, ratio, events_exact, events``;
    * ``"participants"``: the events columns plus ``event_probability_1``,
      ``event_probability_2``, ``event_probability`` and the group-size columns.

    ``*_exact`` are unrounded; ``n1_base``/``n2_base`` are the per-group sizes rounded
    up before any inflation; ``n1``, ``n2``, ``n_total`` are the final counts after the
    design effect and attrition. ``direction`` is ``"increase"`` or ``"decrease"`` (of
    the program group's value relative to the reference) when the effect was solved for.

    Attributes
    ----------
    kind
        ``"proportions"``, ``"means"``, ``"events"`` or ``"participants"``.
    solve_for
        What was solved for: ``"n"``, ``"power"``, ``"p2"``, ``"delta"``, ``"events"``.
    alpha, alternative
        Significance level and ``"two-sided"``/``"larger"``/``"smaller"``.
    parameters
        The inputs (and the solution) used to draw power curves.
    n_used
        The total participants of the first row (``n_total``, rounded up when planned
        sizes are fractional); the events for ``kind="events"``.
    """

    _table: pd.DataFrame
    conf_level: float | None
    method: str
    n_used: int | None = None
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    kind: str = "proportions"
    solve_for: str = "n"
    alpha: float = 0.05
    alternative: str = "two-sided"
    parameters: dict[str, Any] = field(default_factory=dict)

    _title = "Power and sample size"

    def summary(self) -> str:
        """The notes as one paragraph of plain words."""
        return " ".join(self.notes)

    def curve(self, *, over: str | None = None, values: Any = None) -> pd.DataFrame:
        """Power over a range of sample sizes (``over="n"``) or effects (``over="effect"``).

        Parameters
        ----------
        over : {"n", "effect"}, optional
            Default: ``"effect"`` when the effect was solved for, ``"n"`` otherwise.
        values : sequence of float, optional
            The sample sizes (reference group, or events for ``kind="events"``) or
            effects (``p2``, ``delta``, hazard ratio) to evaluate; default a grid around
            the solution.

        Returns
        -------
        pandas.DataFrame
            ``over, value, power`` (and ``direction`` where the effect has two sides).
        """
        from recoverystats.design._curves import power_curve

        return power_curve(self, over=over, values=values)

    def plot(self, ax: Any = None, *, over: str | None = None, values: Any = None, **kwargs: Any) -> Any:
        """Power curve around the solution (returns the Axes); see :meth:`curve`."""
        from recoverystats.plotting.design import plot_power_curve

        return plot_power_curve(self.curve(over=over, values=values), ax=ax, result=self, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class SimulatedPowerResult(ResultMixin):
    """Simulation-based power: one row per scenario (sample size x planted effect).

    ``.table`` columns: ``n`` (the simulator's size), ``scenario`` (the planted effect
    in words) and one column per planted parameter, then ``reps``, ``rejections``,
    ``power`` (``rejections / reps``), ``mc_se`` (``sqrt(power (1 - power) / reps)``),
    ``ci_lower``, ``ci_upper`` (Wilson interval for the power), ``failed`` (replicates
    whose analysis raised; counted as not rejected), ``mean_estimate``,
    ``sd_estimate`` (the empirical SE of the estimate over replicates) and
    ``mean_std_error`` (the average model SE).

    Attributes
    ----------
    analysis, data
        The analysis run on each replicate and the data generator.
    alpha, reps, seed, n_jobs
        Significance level, replicates per scenario, the seed and the worker processes
        used (results do not depend on ``n_jobs``).
    parameters
        The inputs used.
    n_used
        The replicates analysed (``reps`` times the number of rows).
    conf_level
        0.95: the level of the Wilson interval of the simulated power.
    """

    _table: pd.DataFrame
    conf_level: float | None
    method: str
    n_used: int | None = None
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    analysis: str = ""
    data: str = ""
    alpha: float = 0.05
    reps: int = 0
    seed: int = 0
    n_jobs: int = 1
    elapsed_s: float = float("nan")
    parameters: dict[str, Any] = field(default_factory=dict)

    _title = "Simulated power"

    def summary(self) -> str:
        """The notes as one paragraph of plain words."""
        return " ".join(self.notes)

    def plot(self, ax: Any = None, *, over: str | None = None, **kwargs: Any) -> Any:
        """Simulated power with Monte Carlo 95% intervals over ``n`` or over the scenarios."""
        from recoverystats.plotting.design import plot_simulated_power

        return plot_simulated_power(self, ax=ax, over=over, **kwargs)
