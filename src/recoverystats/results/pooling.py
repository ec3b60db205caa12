"""Result object of :func:`recoverystats.pool_estimates`: estimates pooled by Rubin's rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.results.base import ResultMixin

__all__ = ["PooledResult"]


@dataclass(frozen=True, slots=True, repr=False)
class PooledResult(ResultMixin):
    """Estimates pooled over ``m`` imputed data sets by Rubin's rules, one row per term.

    ``.table`` columns: ``term, estimate, ci_lower, ci_upper, p_value`` then
    ``std_error, statistic, df, ubar, b, total_variance, riv, lambda, fmi, dfcom, m``.
    ``estimate`` is the mean of the per-imputation estimates (on the scale they were
    given), ``std_error`` the square root of the total variance, ``statistic`` the
    t statistic against 0 with the Barnard-Rubin ``df``; the CI is
    ``estimate ± t(df) * std_error``.

    Attributes
    ----------
    m
        Number of imputed data sets (also in ``n_used``: the units pooled are data sets).
    dfcom
        Complete-data degrees of freedom used (``inf``: large sample).
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    m: int = 0
    dfcom: float = float("inf")
    _estimates: np.ndarray = field(default_factory=lambda: np.empty((0, 0)), compare=False)
    _covariances: np.ndarray | None = field(default=None, compare=False)
    _vcov: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False)

    _title = "Pooled estimates (Rubin's rules)"

    @property
    def vcov(self) -> pd.DataFrame:
        """Total covariance ``T = Ubar + (1 + 1/m) B`` over the terms (diagonal only when
        only variances, not covariance matrices, were given)."""
        return self._vcov.copy()

    def wald_test(self, terms: Sequence[str] | None = None) -> pd.DataFrame:
        """D1 multiparameter Wald test that the given terms are all 0.

        Needs covariance matrices (``variances`` given as ``(m, k, k)``). See
        :func:`recoverystats.missing.pooling.d1_test` for the formula. Returns one row:
        ``statistic, df1, df2, p_value, riv, test``.
        """
        from recoverystats.errors import InvalidParameterError
        from recoverystats.missing.pooling import d1_test

        if self._covariances is None:
            raise InvalidParameterError(
                "wald_test(): the pooled result was built from variances only; pass the m covariance "
                "matrices to pool_estimates(variances=...) as an (m, k, k) array for a multiparameter test."
            )
        names = list(self._table["term"].astype(str))
        chosen = names if terms is None else [str(t) for t in terms]
        unknown = [t for t in chosen if t not in names]
        if unknown:
            raise InvalidParameterError(f"wald_test(): unknown terms {unknown}; the terms are {names}.")
        idx = [names.index(t) for t in chosen]
        dfcom = None if not np.isfinite(self.dfcom) else self.dfcom
        res = d1_test(self._estimates[:, idx], self._covariances[:, idx][:, :, idx], dfcom=dfcom)
        return pd.DataFrame([res])

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Forest plot of the pooled estimates with their intervals; returns the Axes."""
        from recoverystats.plotting.imputation import plot_pooled

        return plot_pooled(self, ax=ax, **kwargs)
