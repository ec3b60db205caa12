"""Simulation-based power: plant an effect, run the analysis the report runs, count rejections.

For designs no formula covers (an adjusted logistic model with standard errors
clustered by mentor, a Cox model with covariates, unequal caseloads, administrative
censoring), power is estimated by simulation: draw many programs from
:func:`~recoverystats.datasets.simulate_program` with a planted effect, run the actual
analysis on each, and report the share of replicates in which the exposure's p-value is
below ``alpha``, with its Monte Carlo standard error.

Parallel over processes with joblib (loky; a dependency of scikit-learn), seeded so
that the results are identical for any ``n_jobs``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from recoverystats._checks import check_option
from recoverystats.design._common import check_probability
from recoverystats.errors import InvalidParameterError, RecoveryStatsError
from recoverystats.results.design import SimulatedPowerResult

__all__ = ["simulate_power", "two_proportions_data"]

DataName = Literal["program", "two_proportions"]
AnalysisName = Literal["adjusted_or", "cox", "proportions"]
Outcome = Literal["relapse", "rearrest"]

#: settings of ``simulate_program`` other than the effects that may be passed in ``program=``
_PROGRAM_SETTINGS = ("n_mentors", "n_sites", "start", "quarters")


@dataclass(frozen=True)
class _Spec:
    """Everything a worker needs to run one replicate (pickled once per chunk)."""

    data: Any  # "program", "two_proportions" or a callable
    analysis: Any  # an AnalysisName or a callable
    outcome: str
    window_days: int
    adjust: tuple[str, ...]
    cluster: str | None
    program: tuple[tuple[str, Any], ...]


def two_proportions_data(n: int, rng: np.random.Generator, *, p1: float, p2: float,
                         ratio: float = 1.0) -> pd.DataFrame:
    """Two independent binomial groups: ``n`` comparison and ``round(ratio * n)`` program participants.

    The simple generator behind ``simulate_power(data="two_proportions")``: columns
    ``group`` (``"comparison"``/``"program"``) and ``outcome`` (0/1, Bernoulli ``p1`` /
    ``p2``). It has a closed-form power (:func:`power_proportions`), so it checks the
    simulation machinery.
    """
    n2 = int(round(ratio * n))
    y = np.concatenate([rng.random(n) < p1, rng.random(n2) < p2]).astype(np.int8)
    g = np.array(["comparison"] * n + ["program"] * n2, dtype=object)
    return pd.DataFrame({"group": g, "outcome": y})


def _one(spec: _Spec, n: int, effects: dict[str, Any], seed: np.random.SeedSequence) -> tuple:
    """One replicate: (estimate, std_error, p_value, failed, warned, message)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = _analyse(spec, n, effects, seed)
        except (RecoveryStatsError, np.linalg.LinAlgError, FloatingPointError) as exc:
            return (np.nan, np.nan, np.nan, True, bool(caught), f"{type(exc).__name__}: {exc}")
    est, se, p = out
    failed = not np.isfinite(p)
    return (est, se, p, failed, bool(caught), "p-value not finite" if failed else "")


def _analyse(spec: _Spec, n: int, effects: dict[str, Any], seed: np.random.SeedSequence) -> tuple[float, float, float]:
    if callable(spec.data):
        obj = spec.data(n, np.random.default_rng(seed), **effects)
        return _unpack(spec.analysis(obj) if callable(spec.analysis) else _named(spec, obj, "callable"))
    if spec.data == "two_proportions":
        df = two_proportions_data(n, np.random.default_rng(seed), **effects)
        if callable(spec.analysis):
            return _unpack(spec.analysis(df))
        return _named(spec, df, "two_proportions")
    from recoverystats.datasets import simulate_program

    sim = simulate_program(n, seed=int(seed.generate_state(1, dtype=np.uint64)[0]), contacts=False,
                           assessments=False, **dict(spec.program), **effects)
    if callable(spec.analysis):
        return _unpack(spec.analysis(sim))
    return _named(spec, sim, "program")


def _named(spec: _Spec, obj: Any, data: str) -> tuple[float, float, float]:
    """The named analyses (the report's own calls)."""
    import recoverystats.measures as M
    from recoverystats.rates import compare_proportions
    from recoverystats.regression import odds_ratios
    from recoverystats.survival import hazard_ratios

    if data == "two_proportions":
        df, col, group, ref = obj, "outcome", "group", "comparison"
        adjust: list[str] = []
        cluster = None
    else:
        prog = obj.program()
        window = None if spec.analysis == "cox" else spec.window_days
        if spec.outcome == "relapse":
            frame, col = M.relapse(prog, window_days=window), "relapsed"
        else:
            frame, col = M.recidivism(prog, window_days=window, level="rearrest"), "recidivated"
        keep = frame["eligible"].astype(bool)
        if spec.analysis != "cox":
            keep &= frame[col].notna()
        df = frame[keep.to_numpy()]
        group, ref = "group", "comparison"
        adjust = [a for a in spec.adjust if a in df.columns and df[a].notna().any()]
        cluster = spec.cluster if spec.cluster and spec.cluster in df.columns and df[spec.cluster].notna().any() else None
        if cluster is not None:
            # participants without a mentor are each their own cluster (as odds_ratios does itself)
            own = pd.Series([f"_own_{i}" for i in range(len(df))], index=df.index, dtype="string")
            df = df.assign(_cluster=df[cluster].astype("string").fillna(own))
            cluster = "_cluster"
    if spec.analysis == "proportions":
        # clustered: the robust Wald test (compare_proportions' default then); else Pearson chi-square
        r = (compare_proportions(df, col, group=group, reference=ref, cluster=cluster) if cluster
             else compare_proportions(df, col, group=group, reference=ref, test="chi2"))
        row = r.table.iloc[0]
        return float(row["estimate"]), float(row["std_error"]), float(row["p_value"])
    if spec.analysis == "cox":
        r = hazard_ratios(df, time="time_days", event="event", exposure=group, adjust=adjust, cluster=cluster,
                          reference={group: ref})
        row = _exposure_row(r.table, group)
        return float(row["log_hazard"]), float(row["std_error"]), float(row["p_value"])
    r = odds_ratios(df, col, exposure=group, adjust=adjust, cluster=cluster, reference={group: ref},
                    missing="drop")
    row = _exposure_row(r.table, group)
    return float(row["log_odds"]), float(row["std_error"]), float(row["p_value"])


def _exposure_row(table: pd.DataFrame, group: str) -> pd.Series:
    """The model row of the (two-level) exposure."""
    rows = table[table["variable"].astype("string") == group]
    if len(rows) != 1:
        raise RuntimeError(f"expected one model row for the exposure {group!r}; got {len(rows)}.")
    return rows.iloc[0]


def _unpack(value: Any) -> tuple[float, float, float]:
    """A callable analysis returns a p-value, or a mapping with ``p_value`` (and optionally
    ``estimate``, ``std_error``)."""
    if isinstance(value, Mapping):
        if "p_value" not in value:
            raise InvalidParameterError(
                f"an analysis callable must return a p-value or a mapping with 'p_value'; got keys {sorted(value)}.")
        return (float(value.get("estimate", np.nan)), float(value.get("std_error", np.nan)),
                float(value["p_value"]))
    try:
        return (np.nan, np.nan, float(value))
    except (TypeError, ValueError):
        raise InvalidParameterError(
            "an analysis callable must return a p-value (float) or a mapping with 'p_value'; "
            f"got {type(value).__name__}.") from None


def _run_chunk(spec: _Spec, jobs: list[tuple[int, int, int, dict[str, Any], np.random.SeedSequence]]) -> list[tuple]:
    """Run a list of (scenario, rep, n, effects, seed) replicates in one worker."""
    return [(s, k, *_one(spec, n, eff, seed)) for s, k, n, eff, seed in jobs]


def simulate_power(
    *,
    n: int | Sequence[int],
    effects: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    data: DataName | Callable[..., Any] = "program",
    analysis: AnalysisName | Callable[[Any], Any] | None = None,
    outcome: Outcome = "relapse",
    window_days: int = 365,
    adjust: Sequence[str] = ("risk_level", "age", "gender"),
    cluster: str | None = "mentor_id",
    program: Mapping[str, Any] | None = None,
    reps: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool | Callable[[int, int], None] = False,
) -> SimulatedPowerResult:
    """Power by simulation: plant an effect in simulated programs and run the real analysis.

    Parameters
    ----------
    n : int or sequence of int
        Sample size(s) passed to the data generator: participants enrolled for
        ``data="program"``; participants in the comparison group for
        ``"two_proportions"`` (the program group has ``ratio * n``). Several values give a
        power curve over ``n``.
    effects : mapping or sequence of mappings, optional
        The planted parameters, one mapping per scenario. For ``"program"`` any field of
        :class:`~recoverystats.datasets.SimulationParameters` (e.g.
        ``{"relapse_mentoring": -0.35}``, log-hazard scale; ``{}`` keeps the defaults);
        for ``"two_proportions"`` ``p1``, ``p2`` and optionally ``ratio``; for a callable
        ``data``, its keyword arguments.
    data : {"program", "two_proportions"} or callable, default "program"
        ``"program"``: :func:`~recoverystats.datasets.simulate_program` (lean: no contacts
        or assessments tables, which the analyses do not use); ``"two_proportions"``:
        :func:`two_proportions_data`; a callable ``data(n, rng, **effects)`` returning
        whatever ``analysis`` takes.
    analysis : {"adjusted_or", "cox", "proportions"} or callable, optional
        ``"adjusted_or"`` (default for ``"program"``): the report's adjusted comparison,
        :func:`~recoverystats.odds_ratios` of the outcome within ``window_days`` among
        eligible participants, ``exposure="group"`` (reference ``comparison``),
        ``adjust``, standard errors clustered by ``cluster`` (CR1);
        ``"cox"``: :func:`~recoverystats.hazard_ratios` of the time to the first
        outcome, same covariates and clusters; ``"proportions"`` (default for
        ``"two_proportions"``): :func:`~recoverystats.compare_proportions`, Pearson
        chi-square. A callable receives the simulated data (the ``SimulatedProgram`` for
        ``"program"``) and returns the p-value, or a mapping with ``p_value`` and
        optionally ``estimate`` and ``std_error``.
    outcome : {"relapse", "rearrest"}, default "relapse"
        The program outcome (``relapse`` or ``recidivism(level="rearrest")``).
    window_days : int, default 365
        The fixed window of the binary outcome.
    adjust : sequence of str, default ("risk_level", "age", "gender")
        Covariates of the adjusted models (as the report's default).
    cluster : str or None, default "mentor_id"
        Cluster column for the standard errors (participants without a mentor are
        their own cluster); ``None`` for model-based SEs.
    program : mapping, optional
        Other settings of ``simulate_program``: ``n_mentors``, ``n_sites``, ``start``,
        ``quarters``.
    reps : int, default 1000
        Replicates per scenario. The Monte Carlo SE of a power near 0.8 is
        ``sqrt(0.8 * 0.2 / reps)``: 0.013 with 1,000.
    alpha : float, default 0.05
        Significance level of the (two-sided) test of the exposure.
    seed : int, default 0
        ``numpy.random.SeedSequence(seed).spawn(reps)`` gives one seed per replicate
        index; every scenario uses the same replicate seeds (common random numbers, so
        the power curve is smooth), and results do not depend on ``n_jobs``.
    n_jobs : int, default 1
        Worker processes (joblib/loky); ``-1`` for all cores. Callables must be
        picklable by cloudpickle (lambdas are).
    progress : bool or callable, default False
        ``True``: a rich progress bar on stderr (removed when done); a callable
        ``progress(done, total)`` is called as replicates finish. Off by default: the
        library does not print.

    Returns
    -------
    SimulatedPowerResult
        One row per (scenario, n); see :class:`SimulatedPowerResult`.

    Raises
    ------
    InvalidParameterError
        Unknown effect or program setting names, bad ``reps``/``alpha``/``n``, an
        analysis that does not fit the data (``"cox"`` on two proportions).

    Notes
    -----
    ``power = R / reps`` with ``R`` the replicates whose exposure p-value is below
    ``alpha``; ``mc_se = sqrt(power (1 - power) / reps)`` and a Wilson 95% interval.
    A replicate whose analysis raises a recoverystats error (e.g. a model that cannot
    be estimated in a tiny sample) counts as *not rejected* (conservative) and is
    counted in ``failed``; any other exception is a bug and is raised.
    """
    data_name = data if callable(data) else check_option("data", data, DataName)
    if analysis is None:
        analysis = "proportions" if data_name == "two_proportions" else "adjusted_or"
    if callable(data) and not callable(analysis):
        raise InvalidParameterError(
            "with a callable data= the analysis must be a callable too (it receives what data returns); "
            f"got analysis={analysis!r}.")
    if not callable(analysis):
        check_option("analysis", analysis, AnalysisName)
        if data_name == "two_proportions" and analysis == "cox":
            raise InvalidParameterError(
                "analysis='cox' needs times to the event; data='two_proportions' has a 0/1 outcome only. "
                "Use analysis='proportions' or 'adjusted_or', or data='program'.")
    check_option("outcome", outcome, Outcome)
    ns = [n] if isinstance(n, (int, np.integer)) else list(n)
    if not ns or any(not isinstance(v, (int, np.integer)) or v < 2 for v in ns):
        raise InvalidParameterError(f"n must be an integer >= 2 or a list of them; got {n!r}.")
    if not isinstance(reps, (int, np.integer)) or reps < 1:
        raise InvalidParameterError(f"reps must be a positive integer; got {reps!r}.")
    alpha = check_probability("alpha", alpha)
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1:
        raise InvalidParameterError(f"n_jobs must be a positive integer or -1 (all cores); got {n_jobs!r}.")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer; got {seed!r}.")
    scenarios = _scenarios(effects, data_name)
    prog_settings = dict(program or {})
    bad = sorted(set(prog_settings) - set(_PROGRAM_SETTINGS))
    if bad:
        raise InvalidParameterError(
            f"program= accepts {', '.join(_PROGRAM_SETTINGS)}; got unknown {', '.join(map(repr, bad))} "
            "(planted effects go in effects=).")
    spec = _Spec(data=data, analysis=analysis, outcome=outcome, window_days=int(window_days),
                 adjust=tuple(adjust), cluster=cluster, program=tuple(sorted(prog_settings.items())))
    seeds = np.random.SeedSequence(int(seed)).spawn(int(reps))
    jobs = [(si * len(ns) + ni, k, int(nv), eff, seeds[k])
            for si, eff in enumerate(scenarios) for ni, nv in enumerate(ns) for k in range(reps)]
    workers = _n_workers(n_jobs)
    size = max(1, min(50, math.ceil(len(jobs) / (workers * 8))))
    chunks = [jobs[i:i + size] for i in range(0, len(jobs), size)]
    out = np.full((len(scenarios) * len(ns), int(reps), 5), np.nan)
    first_failure: dict[int, tuple[int, str]] = {}
    t0 = time.perf_counter()
    with _Progress(progress, len(jobs)) as bar:
        if workers == 1:
            results = (_run_chunk(spec, c) for c in chunks)
        else:
            from joblib import Parallel, delayed

            results = Parallel(n_jobs=workers, return_as="generator_unordered")(
                delayed(_run_chunk)(spec, c) for c in chunks)
        for res in results:
            for s, k, est, se, p, failed, warned, msg in res:
                out[s, k] = (est, se, p, float(failed), float(warned))
                if failed and msg and (s not in first_failure or k < first_failure[s][0]):
                    first_failure[s] = (k, msg)  # the lowest replicate: the same for any n_jobs
            bar.advance(len(res))
    elapsed = time.perf_counter() - t0
    every = [s for s in range(out.shape[0]) if bool((out[s, :, 3] > 0).all())]
    if every:
        raise InvalidParameterError(
            f"simulate_power: every replicate of {len(every)} scenario(s) failed, so the analysis does not fit "
            f"this data; the first error: {first_failure[every[0]][1]}")
    rows = []
    for si, eff in enumerate(scenarios):
        for ni, nv in enumerate(ns):
            a = out[si * len(ns) + ni]
            p = a[:, 2]
            rej = int(np.sum(np.isfinite(p) & (p < alpha)))
            pw = rej / reps
            lo, hi = _wilson(rej, int(reps))
            est = a[:, 0]
            fin = np.isfinite(est)
            rows.append({"n": int(nv), "scenario": _label(eff), **{f"effect_{k}": v for k, v in eff.items()},
                         "reps": int(reps), "rejections": rej, "power": pw,
                         "mc_se": math.sqrt(pw * (1 - pw) / reps), "ci_lower": lo, "ci_upper": hi,
                         "failed": int(np.sum(a[:, 3] > 0)), "warned": int(np.sum(a[:, 4] > 0)),
                         "mean_estimate": float(est[fin].mean()) if fin.any() else np.nan,
                         "sd_estimate": float(est[fin].std(ddof=1)) if fin.sum() > 1 else np.nan,
                         "mean_std_error": float(np.nanmean(a[:, 1])) if np.isfinite(a[:, 1]).any() else np.nan})
    table = pd.DataFrame(rows)
    a_name = analysis if isinstance(analysis, str) else getattr(analysis, "__name__", "callable")
    d_name = data if isinstance(data, str) else getattr(data, "__name__", "callable")
    notes = [_describe(a_name, d_name, outcome, window_days, spec, alpha, int(reps))]
    for i, r in enumerate(rows):
        notes.append(f"n = {r['n']:,}, {r['scenario']}: power {r['power']:.3f} (Monte Carlo SE {r['mc_se']:.3f}; "
                     f"{r['rejections']:,} of {r['reps']:,} replicates significant"
                     + (f"; {r['failed']:,} could not be analysed and count as not significant (first: "
                        f"{first_failure[i][1]})" if r["failed"] else "")
                     + ").")
    return SimulatedPowerResult(
        _table=table, conf_level=0.95, method=f"simulation ({a_name})", n_used=len(jobs), notes=tuple(notes),
        analysis=str(a_name), data=str(d_name), alpha=alpha, reps=int(reps), seed=int(seed), n_jobs=int(workers),
        elapsed_s=elapsed,
        parameters={"n": [int(v) for v in ns], "effects": [dict(e) for e in scenarios], "outcome": outcome,
                    "window_days": int(window_days), "adjust": list(adjust), "cluster": cluster,
                    "program": prog_settings},
    )


def _scenarios(effects: Any, data: Any) -> list[dict[str, Any]]:
    if effects is None:
        if data == "two_proportions":
            raise InvalidParameterError("data='two_proportions' needs effects={'p1': ..., 'p2': ...}.")
        return [{}]
    scen = [dict(effects)] if isinstance(effects, Mapping) else [dict(e) for e in effects]
    if not scen:
        raise InvalidParameterError("effects must be a mapping or a non-empty list of mappings; got an empty list.")
    if data == "program":
        from recoverystats.datasets.simulate import SimulationParameters

        valid = {f.name for f in dataclasses.fields(SimulationParameters)}
        for e in scen:
            bad = sorted(set(e) - valid)
            if bad:
                raise InvalidParameterError(
                    f"effects: unknown simulator parameter(s) {', '.join(map(repr, bad))}; valid names are the "
                    "fields of recoverystats.datasets.SimulationParameters (e.g. 'relapse_mentoring', "
                    "'rearrest_mentoring', 'mentor_sd').")
    elif data == "two_proportions":
        for e in scen:
            bad = sorted(set(e) - {"p1", "p2", "ratio"})
            if bad or "p1" not in e or "p2" not in e:
                raise InvalidParameterError(
                    f"effects for data='two_proportions' take p1, p2 and optionally ratio; got {sorted(e)}.")
            check_probability("p1", e["p1"])
            check_probability("p2", e["p2"])
    return scen


def _label(eff: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in eff.items()) or "defaults"


def _n_workers(n_jobs: int) -> int:
    if n_jobs == -1:
        from joblib import cpu_count

        return max(1, int(cpu_count()))
    return int(n_jobs)


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, c - h), min(1.0, c + h)


def _describe(analysis: str, data: str, outcome: str, window: int, spec: _Spec, alpha: float, reps: int) -> str:
    if data == "program" and analysis in ("adjusted_or", "cox", "proportions"):
        what = {"adjusted_or": f"an adjusted logistic regression of {outcome} within {window} days",
                "cox": f"a Cox regression of the time to {outcome}",
                "proportions": f"a comparison of the share with {outcome} within {window} days "
                               + ("(robust Wald test)" if spec.cluster else "(Pearson chi-square)")}[analysis]
        adj = f", adjusted for {', '.join(spec.adjust)}" if analysis != "proportions" and spec.adjust else ""
        cl = f", standard errors clustered by {spec.cluster}" if spec.cluster else ""
        return (f"Each of {reps:,} simulated programs per scenario was analysed with {what}{adj}{cl}; power is "
                f"the share with the group difference significant at {alpha:g} (two-sided).")
    return (f"Each of {reps:,} simulated data sets per scenario ({data}) was analysed with {analysis}; power is "
            f"the share with p < {alpha:g}.")


class _Progress:
    """A rich progress bar, a callback, or nothing."""

    def __init__(self, progress: Any, total: int) -> None:
        self.total, self.done, self.cb, self.bar, self.task = total, 0, None, None, None
        if callable(progress):
            self.cb = progress
        elif progress:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.__enter__()
            self.task = self.bar.add_task("simulating", total=self.total)
        return self

    def advance(self, k: int) -> None:
        self.done += k
        if self.cb is not None:
            self.cb(self.done, self.total)
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
