"""Result objects of the survival analyses (Kaplan-Meier, tests, Cox, cumulative incidence).

All are frozen dataclasses holding aggregated tables only (one row per distinct time,
per group or per term), never participant rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from recoverystats._checks import check_option
from recoverystats.errors import InvalidParameterError
from recoverystats.results.base import ResultMixin, json_safe
from recoverystats.survival._km import km_ci, rmst_from_curve, step_quantile

__all__ = [
    "SurvivalResult",
    "RMSTResult",
    "TestResult",
    "HazardRatioResult",
    "PHTestResult",
    "CumulativeIncidenceResult",
]


def _z(conf_level: float) -> float:
    return float(stats.norm.ppf(0.5 + conf_level / 2.0))


def _as_times(times: float | Iterable[float], name: str = "times") -> np.ndarray:
    arr = np.atleast_1d(np.asarray(times, dtype=float))
    if arr.ndim != 1 or not np.isfinite(arr).all() or (arr < 0).any():
        raise InvalidParameterError(
            f"{name} must be one or more finite, non-negative times; got {times!r}."
        )
    return arr


def _iter_groups(frame: pd.DataFrame, by: tuple[str, ...]) -> Iterator[tuple[tuple, pd.DataFrame]]:
    if not by:
        yield (), frame
        return
    keys = list(by) if len(by) > 1 else by[0]
    for key, sub in frame.groupby(keys, sort=False, observed=True, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), sub


def _label(key: tuple) -> str:
    return ", ".join(str(k) for k in key) if key else "all"


@dataclass(frozen=True, slots=True, repr=False)
class SurvivalResult(ResultMixin):
    """Kaplan-Meier survival curves, one block of rows per group.

    ``.table`` columns: by-columns..., ``time, n_at_risk, events, censored, estimate,
    ci_lower, ci_upper, std_error`` with one row per distinct observed time (event or
    censoring) in each group. ``estimate`` is S(t) just after ``time``; ``std_error``
    is its Greenwood standard error.
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    by: tuple[str, ...] = ()
    conf_type: str = "log-log"
    time_column: str = "time"
    _curve: pd.DataFrame = field(default_factory=pd.DataFrame)
    _groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    _entries: pd.DataFrame | None = None
    weight_type: str | None = None

    _title = "Kaplan-Meier survival"

    def _meta_line(self) -> str:
        # the CI type leads the first line of repr/HTML: the default (log-log) is not R's (log)
        if self.conf_type == "log":
            ci = "CI: log (as R survfit's default)"
        else:
            ci = (f"CI: {self.conf_type} (R survfit's default is log: set conf_type='log' to reproduce R; "
                  "Stata sts list uses log-log)")
        return f"{ci}; {ResultMixin._meta_line(self)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: metadata, notes, the curve table, group sizes and medians with CIs."""
        out = ResultMixin.to_dict(self)
        out["groups"] = json_safe(self._groups)
        out["median"] = json_safe(self.median())
        return out

    # -- helpers ---------------------------------------------------------------
    def _group_items(self) -> Iterator[tuple[tuple, pd.DataFrame, pd.Series]]:
        groups = self._groups
        curves = dict(_iter_groups(self._curve, self.by))
        for i in range(len(groups)):
            row = groups.iloc[i]
            key = tuple(groups[c].iloc[i] for c in self.by)
            yield key, curves.get(key, self._curve.iloc[0:0]), row

    def _key_frame(self, key: tuple, n: int) -> dict[str, Any]:
        return {c: [k] * n for c, k in zip(self.by, key, strict=False)}

    @property
    def groups(self) -> pd.DataFrame:
        """One row per group: by-columns..., ``n`` (rows), ``events``, ``max_time``."""
        return self._groups.copy()

    # -- estimates at times ----------------------------------------------------
    def at(self, times: float | Iterable[float]) -> pd.DataFrame:
        """S(t) with its CI at the given times, for each group.

        Columns: by-columns..., ``time, n_at_risk, estimate, ci_lower, ci_upper,
        std_error``. S(t) is right-continuous (events at ``t`` are included). Times
        beyond a group's last follow-up give NaN (the curve is not defined there)
        unless the curve already reached 0.
        """
        ts = _as_times(times)
        z = _z(self.conf_level)
        parts = []
        for key, cur, g in self._group_items():
            tt = cur["time"].to_numpy()
            idx = np.searchsorted(tt, ts, side="right") - 1
            s = np.where(idx >= 0, cur["estimate"].to_numpy()[np.maximum(idx, 0)], 1.0)
            gw = np.where(idx >= 0, cur["greenwood"].to_numpy()[np.maximum(idx, 0)], 0.0)
            se, lo, hi = km_ci(s, gw, z, self.conf_type)  # type: ignore[arg-type]
            beyond = (ts > g["max_time"]) & (s > 0)
            s = np.where(beyond, np.nan, s)
            se, lo, hi = (np.where(beyond, np.nan, a) for a in (se, lo, hi))
            n = self._n_at_risk(key, cur, g, ts)
            parts.append(pd.DataFrame({**self._key_frame(key, len(ts)), "time": ts, "n_at_risk": n,
                                       "estimate": s, "ci_lower": lo, "ci_upper": hi, "std_error": se}))
        return pd.concat(parts, ignore_index=True)

    def _n_at_risk(self, key: tuple, cur: pd.DataFrame, g: pd.Series, ts: np.ndarray) -> np.ndarray:
        """Number under observation at t: entered at or before t and still followed at t."""
        tt = cur["time"].to_numpy()
        removed = (cur["events"] + cur["censored"]).to_numpy()
        cum_removed = np.concatenate(([0.0], np.cumsum(removed)))
        exited_before = cum_removed[np.searchsorted(tt, ts, side="left")]
        if self._entries is None:
            entered = np.full(len(ts), float(g["weight"]))
        else:
            ent = self._entries
            if self.by:
                mask = np.ones(len(ent), dtype=bool)
                for c, k in zip(self.by, key, strict=False):
                    mask &= (ent[c] == k).to_numpy()
                ent = ent.loc[mask]
            et = ent["entry"].to_numpy()
            cw = np.concatenate(([0.0], np.cumsum(ent["n"].to_numpy())))
            entered = cw[np.searchsorted(et, ts, side="right")]
        return entered - exited_before

    def risk_table(self, times: float | Iterable[float]) -> pd.DataFrame:
        """The at-risk table as data: by-columns..., ``time, n_at_risk, events, censored``.

        ``n_at_risk`` is the number under observation at ``t`` (entered at or before
        ``t``, followed to ``t`` or later); ``events`` and ``censored`` are cumulative
        counts up to and including ``t``. Weighted counts when weights were given.
        """
        ts = _as_times(times)
        parts = []
        for key, cur, g in self._group_items():
            tt = cur["time"].to_numpy()
            k = np.searchsorted(tt, ts, side="right")
            ce = np.concatenate(([0.0], np.cumsum(cur["events"].to_numpy())))[k]
            cc = np.concatenate(([0.0], np.cumsum(cur["censored"].to_numpy())))[k]
            parts.append(pd.DataFrame({**self._key_frame(key, len(ts)), "time": ts,
                                       "n_at_risk": self._n_at_risk(key, cur, g, ts),
                                       "events": ce, "censored": cc}))
        return pd.concat(parts, ignore_index=True)

    def median(self) -> pd.DataFrame:
        """Median survival time and its Brookmeyer-Crowley CI, per group.

        Columns: by-columns..., ``n, events, estimate, ci_lower, ci_upper`` (``n`` and
        ``events`` are weighted with frequency weights, as in the expanded data). The CI
        is the set of times whose pointwise CI for S(t) (of ``conf_type``) contains
        0.5, as R ``survfit`` prints it; NaN where the curve (or a bound) never falls
        to 0.5.
        """
        return self.quantile(0.5)

    def quantile(self, p: float = 0.5) -> pd.DataFrame:
        """First time S(t) falls to ``p`` or below, with its Brookmeyer-Crowley CI, per group.

        ``p = 0.5`` is the median; ``p = 0.75`` the time by which 25% had the event.
        """
        if not 0.0 < float(p) < 1.0:
            raise InvalidParameterError(f"p must be strictly between 0 and 1 (e.g. 0.5); got {p!r}.")
        rows = []
        for key, cur, g in self._group_items():
            tt = cur["time"].to_numpy()
            s = cur["estimate"].to_numpy()
            _, lo, hi = km_ci(s, cur["greenwood"].to_numpy(), _z(self.conf_level), self.conf_type)  # type: ignore[arg-type]
            # frequency weights: n is the number of people the rows stand for (as the expanded data)
            n_g = float(g["weight"]) if self.weight_type == "frequency" else int(g["n"])
            rows.append({**{c: k for c, k in zip(self.by, key, strict=False)}, "n": n_g, "events": float(g["events"]),
                         "estimate": step_quantile(tt, s, p), "ci_lower": step_quantile(tt, lo, p),
                         "ci_upper": step_quantile(tt, hi, p)})
        return pd.DataFrame(rows)

    def rmst(self, horizon: float) -> RMSTResult:
        """Restricted mean survival time to ``horizon`` per group and the differences.

        RMST(tau) = integral_0^tau S(u) du with variance
        sum_{t_j <= tau} A_j^2 d_j / (n_j (n_j - d_j)), A_j = integral_{t_j}^tau S(u) du
        (Klein & Moeschberger 4.5; matches R ``survRM2::rmst1``/``rmst2``). Differences
        are each group minus the first group with SE sqrt(var_1 + var_2), a Wald CI and
        a z-test. ``horizon`` must not exceed any group's last follow-up time (unless
        that group's curve reached 0), as in survRM2.
        """
        try:
            tau = float(horizon)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"horizon must be a positive number of time units; got {horizon!r}.") from None
        if not np.isfinite(tau) or tau <= 0:
            raise InvalidParameterError(f"horizon must be a positive number of time units; got {horizon!r}.")
        z = _z(self.conf_level)
        rows = []
        for key, cur, g in self._group_items():
            s = cur["estimate"].to_numpy()
            if tau > g["max_time"] and s[-1] > 0:
                raise InvalidParameterError(
                    f"horizon={tau:g} is beyond the last follow-up time {g['max_time']:g} of group "
                    f"{_label(key)!r}, where S(t) is unknown; choose horizon <= "
                    f"{self._groups['max_time'].min():g} (the smallest last follow-up time of any group)."
                )
            est, var = rmst_from_curve(cur["time"].to_numpy(), s, cur["n_at_risk"].to_numpy(),
                                       cur["events"].to_numpy(), tau)
            se = float(np.sqrt(var))
            rows.append({**{c: k for c, k in zip(self.by, key, strict=False)}, "horizon": tau, "estimate": est,
                         "ci_lower": est - z * se, "ci_upper": est + z * se, "std_error": se})
        table = pd.DataFrame(rows)
        diffs = []
        if len(rows) > 1:
            ref = rows[0]
            ref_key = tuple(ref[c] for c in self.by)
            for r in rows[1:]:
                key = tuple(r[c] for c in self.by)
                est = r["estimate"] - ref["estimate"]
                se = float(np.hypot(r["std_error"], ref["std_error"]))
                zstat = est / se if se > 0 else np.nan
                diffs.append({"comparison": f"{_label(key)} vs {_label(ref_key)}", "estimate": est,
                              "ci_lower": est - z * se, "ci_upper": est + z * se, "std_error": se,
                              "statistic": zstat, "p_value": float(2 * stats.norm.sf(abs(zstat)))})
        diff_table = pd.DataFrame(diffs, columns=["comparison", "estimate", "ci_lower", "ci_upper",
                                                  "std_error", "statistic", "p_value"])
        return RMSTResult(_table=table, conf_level=self.conf_level, method="rmst (survRM2)",
                          n_used=self.n_used, n_excluded=self.n_excluded, notes=self.notes,
                          horizon=tau, _differences=diff_table)

    def difference_at(self, time: float) -> pd.DataFrame:
        """Difference in S(t) at a fixed time, each group minus the first, with a CI and a test.

        Columns: ``comparison, estimate, ci_lower, ci_upper, std_error, statistic,
        p_value``. ``estimate`` is S_g(t) - S_ref(t) with Greenwood SEs combined as
        sqrt(se_g^2 + se_ref^2) and a Wald CI; the test is Klein et al. (2007)'s
        log(-log) chi-square, (cloglog S_g - cloglog S_ref)^2 /
        (sigma_g^2 / log(S_g)^2 + sigma_ref^2 / log(S_ref)^2) on 1 df, as lifelines
        ``survival_difference_at_fixed_point_in_time_test``.
        """
        ts = _as_times(time, "time")
        if len(ts) != 1:
            raise InvalidParameterError(f"time must be a single time; got {time!r}.")
        if len(self._groups) < 2:
            raise InvalidParameterError("difference_at needs a result with two or more groups (use by=).")
        z = _z(self.conf_level)
        at = self.at(ts)
        rows = []
        gw = []
        for _key, cur, _g in self._group_items():
            tt = cur["time"].to_numpy()
            idx = np.searchsorted(tt, ts[0], side="right") - 1
            gw.append(float(cur["greenwood"].to_numpy()[idx]) if idx >= 0 else 0.0)
        keys = [tuple(at[c].iloc[i] for c in self.by) for i in range(len(at))]
        s = at["estimate"].to_numpy()
        se = at["std_error"].to_numpy()
        for i in range(1, len(at)):
            est = s[i] - s[0]
            sd = float(np.hypot(se[i], se[0]))
            with np.errstate(divide="ignore", invalid="ignore"):
                num = (np.log(-np.log(s[i])) - np.log(-np.log(s[0]))) ** 2
                stat = float(num / (gw[i] / np.log(s[i]) ** 2 + gw[0] / np.log(s[0]) ** 2))
            rows.append({"comparison": f"{_label(keys[i])} vs {_label(keys[0])}", "estimate": est,
                         "ci_lower": est - z * sd, "ci_upper": est + z * sd, "std_error": sd,
                         "statistic": stat, "p_value": float(stats.chi2.sf(stat, 1)) if np.isfinite(stat) else np.nan})
        return pd.DataFrame(rows)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Kaplan-Meier curves with CI bands, censor marks and an optional at-risk table.

        See :func:`recoverystats.plotting.survival.plot_survival` for the options
        (``risk_table``, ``suppress_below``, ``ci``, ``censor_marks``, ``times``).
        """
        from recoverystats.plotting.survival import plot_survival

        return plot_survival(self, ax=ax, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class RMSTResult(ResultMixin):
    """Restricted mean survival time to a horizon, per group, and group differences."""

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    horizon: float = float("nan")
    _differences: pd.DataFrame = field(default_factory=pd.DataFrame)

    _title = "Restricted mean survival time"

    def to_dict(self) -> dict[str, Any]:
        out = ResultMixin.to_dict(self)
        out["differences"] = json_safe(self._differences)
        return out

    @property
    def differences(self) -> pd.DataFrame:
        """Each group minus the first: comparison, estimate, ci_lower, ci_upper, std_error, statistic, p_value."""
        return self._differences.copy()


@dataclass(frozen=True, slots=True, repr=False)
class TestResult(ResultMixin):
    """A hypothesis test: ``.table`` has ``statistic, df, p_value`` then ``test``.

    ``by_group`` gives, for k-sample survival tests, the observed and expected
    (weighted) events per group.
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    _by_group: pd.DataFrame = field(default_factory=pd.DataFrame)

    _title = "Test"
    __test__ = False  # not a pytest test class despite the name

    def to_dict(self) -> dict[str, Any]:
        out = ResultMixin.to_dict(self)
        if len(self._by_group):
            out["by_group"] = json_safe(self._by_group)
        return out

    @property
    def statistic(self) -> float:
        return float(self._table["statistic"].iloc[0])

    @property
    def p_value(self) -> float:
        return float(self._table["p_value"].iloc[0])

    @property
    def by_group(self) -> pd.DataFrame:
        """Per group: n, observed, expected (and the weighted O - E) events."""
        return self._by_group.copy()


@dataclass(frozen=True, slots=True, repr=False)
class PHTestResult(ResultMixin):
    """Proportional-hazards test from scaled Schoenfeld residuals (R ``cox.zph``, survival < 3)."""

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    transform: str = "km"

    _title = "Proportional-hazards test"


PHTransform = ("km", "identity", "rank", "log")


@dataclass(frozen=True, slots=True, repr=False)
class HazardRatioResult(ResultMixin):
    """Cox proportional-hazards model: one row per term, the exposure's rows first.

    ``.table`` columns: ``term, log_hazard, std_error, estimate, ci_lower, ci_upper,
    p_value, statistic, variable, reference`` (+ ``std_error_model`` when clustered).
    ``estimate`` is the hazard ratio, Wald CI on the log scale; ``std_error`` is the
    cluster-robust one when ``cluster`` was given; ``variable`` is the data column of
    the term and ``reference`` the level a categorical term is compared with (the same
    coding as :class:`~recoverystats.results.regression.OddsRatioResult`).
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    ties: str = "efron"
    n_events: int = 0
    loglik: float = float("nan")
    loglik_null: float = float("nan")
    concordance: float = float("nan")
    strata: tuple[str, ...] = ()
    cluster: str | None = None
    n_clusters: int | None = None
    iterations: int = 0
    _tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    _vcov: pd.DataFrame = field(default_factory=pd.DataFrame)
    _vcov_model: pd.DataFrame = field(default_factory=pd.DataFrame)
    _ph: pd.DataFrame = field(default_factory=pd.DataFrame)

    _title = "Cox proportional-hazards model"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict including the model tests and the proportional-hazards tests (km transform)."""
        out = ResultMixin.to_dict(self)
        out["model_tests"] = json_safe(self._tests)
        ph = self._ph
        if len(ph):
            out["proportional_hazards"] = json_safe(ph.loc[ph["transform"] == "km"].drop(columns="transform"))
        return out

    @property
    def model_tests(self) -> pd.DataFrame:
        """Likelihood-ratio, Wald and score tests that all coefficients are 0."""
        return self._tests.copy()

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the log hazard ratios (robust when clustered)."""
        return self._vcov.copy()

    @property
    def vcov_model(self) -> pd.DataFrame:
        """Model-based (inverse information) covariance matrix."""
        return self._vcov_model.copy()

    def check_proportional_hazards(self, *, transform: str = "km") -> PHTestResult:
        """Test proportional hazards per covariate and globally (scaled Schoenfeld residuals).

        Parameters
        ----------
        transform : {"km", "identity", "rank", "log"}
            Function of time the residuals are correlated with; "km" (R's default) is
            1 - the left-continuous pooled Kaplan-Meier estimate at each event time.

        Notes
        -----
        Per covariate k, T_k = (sum_i g_i r*_ik)^2 / (d V_kk sum_i g_i^2) with g the
        centred transformed event times, r* = d r V the scaled Schoenfeld residuals
        (r the Schoenfeld residuals with the Efron/Breslow weighted means, V the
        model-based covariance, d the number of events), chi-square on 1 df; global
        T = (sum_i g_i r_i)' V (sum_i g_i r_i) d / sum_i g_i^2 on p df. This is the
        Grambsch-Therneau approximation printed by R ``cox.zph`` in survival < 3.0
        and by lifelines ``proportional_hazard_test`` (per covariate); R >= 3.0 uses
        an exact score test, which differs slightly. Matches lifelines for
        ``identity`` and ``log``; lifelines' "km" uses the right-continuous KM and
        its "rank" breaks ties by order, so those two follow R instead.
        """
        check_option("transform", transform, PHTransform)
        tab = self._ph.loc[self._ph["transform"] == transform].drop(columns="transform").reset_index(drop=True)
        return PHTestResult(_table=tab, conf_level=self.conf_level,
                            method=f"scaled Schoenfeld residuals, transform={transform}",
                            n_used=self.n_used, n_excluded=self.n_excluded, notes=(), transform=transform)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Forest plot of the hazard ratios with their CIs (log scale)."""
        from recoverystats.plotting.survival import plot_hazard_ratios

        return plot_hazard_ratios(self, ax=ax, **kwargs)


@dataclass(frozen=True, slots=True, repr=False)
class CumulativeIncidenceResult(ResultMixin):
    """Aalen-Johansen cumulative incidence of one cause in the presence of competing events.

    ``.table`` columns: by-columns..., ``time, n_at_risk, events, competing,
    censored, estimate, ci_lower, ci_upper, std_error`` with ``events`` the events of
    the cause of interest at ``time`` and ``estimate`` the cumulative incidence F(t).
    """

    _table: pd.DataFrame
    conf_level: float
    method: str
    n_used: int
    n_excluded: int = 0
    notes: tuple[str, ...] = ()
    by: tuple[str, ...] = ()
    cause: Any = 1
    time_column: str = "time"
    _groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    _gray: pd.DataFrame | None = None

    _title = "Cumulative incidence (Aalen-Johansen)"

    def to_dict(self) -> dict[str, Any]:
        out = ResultMixin.to_dict(self)
        out["groups"] = json_safe(self._groups)
        if self._gray is not None:
            out["gray_test"] = json_safe(self._gray)
        return out

    @property
    def groups(self) -> pd.DataFrame:
        return self._groups.copy()

    @property
    def gray_test(self) -> TestResult | None:
        """Gray's test that the cause's cumulative incidence is equal across groups (None without ``by``)."""
        if self._gray is None:
            return None
        return TestResult(_table=self._gray.copy(), conf_level=self.conf_level,
                          method="Gray's test (rho=0)", n_used=self.n_used, n_excluded=self.n_excluded,
                          notes=())

    def at(self, times: float | Iterable[float]) -> pd.DataFrame:
        """F(t) with its CI at given times per group (NaN beyond a group's follow-up)."""
        ts = _as_times(times)
        parts = []
        table = self._table
        for i in range(len(self._groups)):
            g = self._groups.iloc[i]
            key = tuple(self._groups[c].iloc[i] for c in self.by)
            cur = table
            for c, k in zip(self.by, key, strict=False):
                cur = cur.loc[cur[c] == k]
            tt = cur["time"].to_numpy()
            idx = np.searchsorted(tt, ts, side="right") - 1
            safe = np.maximum(idx, 0)
            est, lo, hi, se = (np.where(idx >= 0, cur[col].to_numpy()[safe], 0.0)
                               for col in ("estimate", "ci_lower", "ci_upper", "std_error"))
            beyond = ts > g["max_time"]
            est, lo, hi, se = (np.where(beyond, np.nan, a) for a in (est, lo, hi, se))
            parts.append(pd.DataFrame({**{c: [k] * len(ts) for c, k in zip(self.by, key, strict=False)}, "time": ts,
                                       "estimate": est, "ci_lower": lo, "ci_upper": hi, "std_error": se}))
        return pd.concat(parts, ignore_index=True)

    def risk_table(self, times: float | Iterable[float]) -> pd.DataFrame:
        """At-risk table as data: by-columns..., ``time, n_at_risk, events, competing, censored``.

        ``n_at_risk`` is the number still followed at ``t`` (time >= t); the other
        columns are cumulative counts up to and including ``t``.
        """
        ts = _as_times(times)
        parts = []
        for i in range(len(self._groups)):
            key = tuple(self._groups[c].iloc[i] for c in self.by)
            cur = self._table
            for c, k in zip(self.by, key, strict=False):
                cur = cur.loc[cur[c] == k]
            tt = cur["time"].to_numpy()
            removed = (cur["events"] + cur["competing"] + cur["censored"]).to_numpy()
            before = np.concatenate(([0.0], np.cumsum(removed)))[np.searchsorted(tt, ts, side="left")]
            upto = np.searchsorted(tt, ts, side="right")
            cums = {col: np.concatenate(([0.0], np.cumsum(cur[col].to_numpy())))[upto]
                    for col in ("events", "competing", "censored")}
            parts.append(pd.DataFrame({**{c: [k] * len(ts) for c, k in zip(self.by, key, strict=False)}, "time": ts,
                                       "n_at_risk": float(self._groups["n"].iloc[i]) - before,
                                       **cums}))
        return pd.concat(parts, ignore_index=True)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Cumulative-incidence curves with CI bands and an optional at-risk table."""
        from recoverystats.plotting.survival import plot_cumulative_incidence

        return plot_cumulative_incidence(self, ax=ax, **kwargs)
