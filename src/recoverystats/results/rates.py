"""Result objects of :mod:`recoverystats.rates`: rates, comparisons, Table 1 and trends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.results.base import ResultMixin

__all__ = ["RateResult", "ComparisonResult", "TableOneResult", "TrendResult"]


@dataclass(frozen=True, slots=True, repr=False)
class RateResult(ResultMixin):
    """Proportions or incidence rates with confidence intervals, one row per group.

    ``.table`` columns: the ``by`` columns, then ``n, events, estimate, ci_lower,
    ci_upper`` (proportions) or ``events, person_time, estimate, ci_lower, ci_upper``
    (incidence rates), then extra columns.
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    by: tuple[str, ...] = ()
    outcome: str = ""
    kind: str = "proportion"  # "proportion" or "incidence"
    per: float = 1.0

    _title = "Rates"

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Point estimates with CI whiskers, one per group (returns the Axes)."""
        from recoverystats.plotting.rates import plot_rates

        return plot_rates(self, ax=ax, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class ComparisonResult(ResultMixin):
    """Risk differences, risk ratios, odds ratios or rate ratios against a reference group.

    ``.table`` columns: ``comparison, estimate, ci_lower, ci_upper, p_value``, then
    extras (counts per arm, ``std_error``, the interval ``method``, the ``test`` used,
    and for stratified analyses the homogeneity test).
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    measure: str = "rd"
    group: str = ""
    reference: Any = None
    strata: tuple[str, ...] = ()

    _title = "Comparison"

    @property
    def null_value(self) -> float:
        """The value of no difference: 0 for a risk difference, 1 for ratios."""
        return 0.0 if self.measure == "rd" else 1.0

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Estimates with CIs and a line at the null value (returns the Axes)."""
        from recoverystats.plotting.rates import plot_comparison

        return plot_comparison(self, ax=ax, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class TableOneResult(ResultMixin):
    """Baseline characteristics by group (a "Table 1").

    ``.table`` is tidy and numeric: ``variable, level, kind`` and then, for every group
    ``g`` (and ``Overall``), ``g|n``, ``g|pct``, ``g|mean``, ``g|sd``, ``g|median``,
    ``g|q1``, ``g|q3``; then ``smd``, ``p_value`` and ``test``. The formatted display
    ("n (%)", "mean (SD)", "median [IQR]") is built by :meth:`display_table`.
    """

    _table: pd.DataFrame
    conf_level: float | None
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    group: str = ""
    groups: tuple[str, ...] = ()
    nonnormal: tuple[str, ...] = ()
    digits: int = 1

    _title = "Table 1"

    def display_table(self) -> pd.DataFrame:
        """The formatted table: one text column per group, SMD and p-value kept numeric."""
        return self._display_table()

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Love plot: the absolute SMD of each variable with a line at 0.1."""
        from recoverystats.plotting.rates import plot_smd

        return plot_smd(self, ax=ax, **kwargs)

    def _display_table(self) -> pd.DataFrame:
        t = self._table
        cols = ["Overall", *self.groups] if "Overall|n" in t.columns else list(self.groups)
        d = self.digits
        rows: list[dict[str, Any]] = []
        for rec in t.to_dict("records"):
            kind = rec["kind"]
            base = {"variable": rec["variable"]}
            if kind == "count":
                row = {**base, "level": rec["level"] or ""}
                for g in cols:
                    row[g] = f"{_int(rec[f'{g}|n'])}"
                rows.append(_tail(row, rec))
            elif kind in ("categorical", "missing"):
                row = {**base, "level": rec["level"]}
                for g in cols:
                    row[g] = f"{_int(rec[f'{g}|n'])} ({_num(rec[f'{g}|pct'], d)}%)"
                rows.append(_tail(row, rec))
            elif kind == "continuous":
                nonnormal = rec["variable"] in self.nonnormal
                if not nonnormal:
                    row = {**base, "level": "mean (SD)"}
                    for g in cols:
                        row[g] = f"{_num(rec[f'{g}|mean'], d)} ({_num(rec[f'{g}|sd'], d)})"
                    rows.append(_tail(row, rec))
                row = {**base, "level": "median [IQR]"}
                for g in cols:
                    row[g] = (
                        f"{_num(rec[f'{g}|median'], d)} "
                        f"[{_num(rec[f'{g}|q1'], d)}, {_num(rec[f'{g}|q3'], d)}]"
                    )
                rows.append(_tail(row, rec) if nonnormal else _tail(row, rec, blank=True))
        out = pd.DataFrame(rows)
        if out.empty:
            return out
        # print each variable name and its SMD / p-value once
        first = ~out["variable"].duplicated()
        for c in ("smd", "p_value"):
            if c in out.columns:
                out[c] = out[c].where(first, np.nan)
        out["variable"] = out["variable"].where(first, "")
        if "smd" in out.columns and out["smd"].isna().all():
            out = out.drop(columns="smd")
        if "p_value" in out.columns and out["p_value"].isna().all():
            out = out.drop(columns=["p_value"])
        return out.drop(columns=["test"], errors="ignore")


def _tail(row: dict[str, Any], rec: dict[str, Any], blank: bool = False) -> dict[str, Any]:
    for c in ("smd", "p_value"):
        if c in rec:
            row[c] = np.nan if blank else rec[c]
    return row


def _int(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return f"{int(v):,}"


def _num(v: Any, digits: int) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return f"{v:.{digits}f}"


@dataclass(frozen=True, slots=True, repr=False)
class TrendResult(ResultMixin):
    """Per-period proportions with CIs and a p-chart (or Laney p' chart) per series.

    ``.table`` columns: the ``by`` columns, ``period``, ``period_start``, ``n``,
    ``events``, ``estimate``, ``ci_lower``, ``ci_upper``, ``centre``, ``lcl``, ``ucl``,
    ``sigma_z``, ``chart``, ``signal_outside``, ``signal_run``, ``signal``.
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    by: tuple[str, ...] = ()
    outcome: str = ""
    freq: str = "Q"
    run_length: int = 8

    _title = "Trend"

    @property
    def signals(self) -> pd.DataFrame:
        """Only the periods with a special-cause signal."""
        return self._table.loc[self._table["signal"]].copy()

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Control chart: proportions, centre line, 3-sigma limits, signals marked."""
        from recoverystats.plotting.rates import plot_trend

        return plot_trend(self, ax=ax, **kwargs)
