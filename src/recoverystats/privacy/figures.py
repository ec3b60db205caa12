"""Figures that reveal no small count: a coarsened Kaplan-Meier curve, and the attacker's
reading of a published SVG (step curves rebuilt into events and numbers at risk).

A Kaplan-Meier step is ``S(t_k) = S(t_{k-1}) (1 - d_k / n_k)``, so the ratio of two
consecutive plotted heights is ``1 - d_k / n_k``: with coordinates printed to six decimals
that ratio is a fraction with a small denominator that a reader finds by rational
approximation, and every step gives back its events ``d_k`` and number at risk ``n_k``
(hence the censored counts between steps, and any at-risk or event cell the tables
suppressed). :func:`coarsen_km` draws the curve from counts rounded so that no step rests on
fewer than ``min_cell`` people; :func:`svg_step_findings` is the reader's attack, used by
:func:`recoverystats.privacy.scan`.

Hand-written: no maintained Python library coarsens Kaplan-Meier curves for disclosure
control. The rule follows the OpenSAFELY ``kaplan-meier-function`` action
(``analysis/km.R``: cumulative event and censoring counts rounded so that every step holds
at least ``min_count`` of each, the KM estimate and Greenwood CI recomputed from the rounded
counts) and ``osutils::round_km`` (W. Hulme: "delaying event times until at least threshold
events have occurred").
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError

__all__ = ["coarsen_km", "svg_step_curves", "svg_step_findings", "StepCurve", "round_svg_coordinates"]

_SVG_NS = "{http://www.w3.org/2000/svg}"


def coarsen_km(table: pd.DataFrame, *, min_cell: int, group_col: str | None = None,
               conf_level: float = 0.95) -> pd.DataFrame:
    """Kaplan-Meier curve rebuilt from counts rounded to multiples of ``min_cell``.

    Parameters
    ----------
    table
        A ``SurvivalResult.table``: one row per distinct time and group, with ``time``,
        ``n_at_risk``, ``events``, ``censored`` (everyone enters at time 0).
    min_cell
        Smallest count a step may rest on (``1`` gives back the exact Kaplan-Meier curve).
    group_col
        Grouping column of ``table`` (None: one curve).
    conf_level
        Level of the pointwise log-log interval.

    Returns
    -------
    pandas.DataFrame
        One row per drawn step and group: ``group, time, n_at_risk, events,
        censored_before, estimate, ci_lower, ci_upper``; the first row of each group is
        time 0 (``estimate`` 1) and the last is the end of the curve (``events`` 0). Every
        count is a multiple of ``min_cell``.

    Notes
    -----
    Per group with ``N`` participants, cumulative events ``E(t)`` and censorings ``C(t)``:

    - ``E_r(t) = m floor(E(t) / m)`` with ``m = min_cell``: events are delayed until ``m``
      of them have accrued (the reader learns ``E(t)`` to within ``m`` values, and "no step
      yet" means 0 to ``m - 1`` events, as wide as a suppressed cell);
    - ``C_r(t) = m ceil(C(t) / m)``: censorings are anticipated (``C_r = 0`` only when no
      one is censored yet, a zero; otherwise a band of ``m`` values). Rounding censorings
      up offsets part of the upward bias of delayed events and a rounded-up group size;
    - ``N_r = m ceil(N / m)`` (the group size is not shown exactly: it may be a
      complementary-suppressed cell);
    - at a time where ``E_r`` rises, ``d = E_r(t) - E_r(t-)`` events of
      ``n = N_r - E_r(t-) - C_r(t-)`` at risk; ``S_r = prod(1 - d / n)``, Greenwood
      variance ``sum d / (n (n - d))`` and the log-log interval as
      :func:`~recoverystats.survival_curve`.

    So every drawn step has ``d >= m`` events, the number at risk changes by a multiple of
    ``m`` between steps, and a count read off the figure is known only to within a band of
    ``m`` values. The curve ends at the last time with at least ``m`` participants actually
    at risk (as before), or before a step where the rounding leaves fewer at risk than
    events (``n < d``). Events are shown late, so the drawn curve lies above the exact one; on a
    360-participant simulated program with ``m = 11`` by at most 0.10 (0.02-0.035 on
    average), most in the tail.
    """
    if isinstance(min_cell, bool) or not isinstance(min_cell, (int, np.integer)) or min_cell < 1:
        raise InvalidParameterError(f"min_cell must be a whole number >= 1; got {min_cell!r}.")
    need = {"time", "n_at_risk", "events", "censored"}
    missing = need - set(table.columns)
    if missing:
        raise InvalidParameterError(
            f"table: columns {sorted(missing)} are missing; pass SurvivalResult.table (it has {sorted(need)}).")
    m = int(min_cell)
    z = NormalDist().inv_cdf(0.5 + conf_level / 2)
    groups = list(dict.fromkeys(table[group_col])) if group_col is not None else [None]
    out = []
    for g in groups:
        s = table if g is None else table[table[group_col] == g]
        s = s.sort_values("time")
        if not len(s):
            continue
        t = s["time"].to_numpy(float)
        n_true = s["n_at_risk"].to_numpy(float)
        ev = s["events"].to_numpy(float)
        ce = s["censored"].to_numpy(float)
        big = n_true >= m
        if not big.any():
            continue
        last = int(np.flatnonzero(big)[-1])  # the curve ends at the last time with >= m at risk
        N = float(n_true[0])
        e_r = m * np.floor(np.cumsum(ev) / m)
        c_r = m * np.ceil(np.cumsum(ce) / m)
        n_r = m * math.ceil(N / m)
        e_before = np.r_[0.0, e_r[:-1]]
        c_before = np.r_[0.0, c_r[:-1]]
        rows = [{"group": g, "time": 0.0, "n_at_risk": float(n_r), "events": 0.0, "censored_before": 0.0,
                 "estimate": 1.0, "ci_lower": 1.0, "ci_upper": 1.0}]
        surv, gw, c_prev = 1.0, 0.0, 0.0
        for i in range(last + 1):
            d = e_r[i] - e_before[i]
            if d <= 0:
                continue
            n = n_r - e_before[i] - c_before[i]
            if n < d:  # rounding left fewer at risk than events: the curve ends before this step
                last = i - 1
                break
            surv *= 1.0 - d / n
            gw = gw + d / (n * (n - d)) if n > d else float("inf")
            lo, hi = _loglog(surv, gw, z)
            rows.append({"group": g, "time": float(t[i]), "n_at_risk": float(n), "events": float(d),
                         "censored_before": float(c_before[i] - c_prev), "estimate": surv, "ci_lower": lo,
                         "ci_upper": hi})
            c_prev = c_before[i]
        end = rows[-1].copy()
        n_end = n_r - e_r[last] - c_before[last] if last >= 0 else n_r
        if last >= 0 and t[last] > end["time"] and n_end > 0:
            end.update(time=float(t[last]), n_at_risk=float(n_end), events=0.0,
                       censored_before=float(c_before[last] - c_prev))
            rows.append(end)
        out.extend(rows)
    cols = ["group", "time", "n_at_risk", "events", "censored_before", "estimate", "ci_lower", "ci_upper"]
    return pd.DataFrame(out, columns=cols)


def _loglog(surv: float, gw: float, z: float) -> tuple[float, float]:
    if surv >= 1.0:
        return 1.0, 1.0
    if surv <= 0.0 or not np.isfinite(gw):
        return float("nan"), float("nan")
    ll = math.log(-math.log(surv))
    half = z * math.sqrt(gw) / math.log(surv)
    return math.exp(-math.exp(ll - half)), math.exp(-math.exp(ll + half))


# ------------------------------------------------------------------------------------------
# SVG coordinates
# ------------------------------------------------------------------------------------------
_GEOM_ATTR = re.compile(r'(\s(?:d|x|y|x1|x2|y1|y2|width|height|points|transform)=")([^"]*)(")')
_NUMBER = re.compile(r"-?\d+\.\d+")


def round_svg_coordinates(svg: str, *, decimals: int = 2) -> str:
    """Round every decimal number in the geometry attributes of an SVG (``d``, ``x``, ``y``,
    ``width``, ``height``, ``points``, ``transform``) to ``decimals`` places.

    matplotlib writes coordinates with six decimals; 0.01 pt is 1/7200 inch, far below what
    a screen or printer shows. Text content and styles are left alone.
    """
    def num(m: re.Match[str]) -> str:
        v = round(float(m.group(0)), decimals)
        s = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
        return "0" if s in ("-0", "") else s

    return _GEOM_ATTR.sub(lambda m: m.group(1) + _NUMBER.sub(num, m.group(2)) + m.group(3), svg)


@dataclass(frozen=True, slots=True)
class StepCurve:
    """A monotone step curve read from an SVG, in data units of its y axis.

    ``x`` and ``y`` are the heights of the horizontal runs (``y[k]`` from ``x[k]``);
    ``tol`` is how far each ``y`` may be from the drawn value (the printed precision of the
    coordinates, through the axis scale); ``label`` is the id of the path's group.
    """

    label: str
    x: np.ndarray
    y: np.ndarray
    tol: float
    #: ``single[k]``: the drop from ``y[k-1]`` to ``y[k]`` is one vertical segment (one step);
    #: False where matplotlib's path simplification merged several steps into a slanted line
    single: np.ndarray | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _id_ends(el: ET.Element, stem: str) -> bool:
    i = el.get("id") or ""
    return re.search(rf"(^|-){stem}_\d+$", i) is not None


def _tick_value(text: str) -> float | None:
    s = text.strip().replace("\u2212", "-").replace(",", "")
    pct = s.endswith("%")
    s = s.rstrip("%")
    try:
        v = float(s)
    except ValueError:
        return None
    return v / 100.0 if pct else v


def _decimals(s: str) -> int:
    found = [len(m.group(0).split(".")[1]) for m in _NUMBER.finditer(s)]
    return max(found, default=0)


def _path_points(d: str) -> np.ndarray | None:
    """Points of a path made only of M/L commands (matplotlib's lines), else None."""
    toks = re.findall(r"[A-Za-z]|-?\d+(?:\.\d+)?(?:e-?\d+)?", d)
    pts, i = [], 0
    while i < len(toks):
        c = toks[i]
        if c in ("M", "L"):
            try:
                pts.append((float(toks[i + 1]), float(toks[i + 2])))
            except (IndexError, ValueError):
                return None
            i += 3
        elif c in ("z", "Z"):
            i += 1
        else:
            return None
    return np.asarray(pts, float) if pts else None


def _y_axis(axes: ET.Element) -> tuple[float, float, float] | None:
    """(a, b, decimals) with value = a + b * y_pixel, from the y tick marks and labels."""
    ys, vals, dec = [], [], 0
    for g in axes.iter():
        if _local(g.tag) != "g" or not _id_ends(g, "ytick"):
            continue
        use = next((u for u in g.iter() if _local(u.tag) == "use" and u.get("y") is not None), None)
        txt = next((t for t in g.iter() if _local(t.tag) == "text"), None)
        if use is None or txt is None:
            continue
        v = _tick_value("".join(txt.itertext()))
        if v is None:
            continue
        ys.append(float(use.get("y")))
        vals.append(v)
        dec = max(dec, _decimals(use.get("y")))
    if len(set(ys)) < 2:
        return None
    A = np.c_[np.ones(len(ys)), ys]
    coef, *_ = np.linalg.lstsq(A, np.asarray(vals), rcond=None)
    a, b = float(coef[0]), float(coef[1])
    resid = np.abs(A @ coef - vals).max()
    if resid > 1e-3 * (max(vals) - min(vals) or 1.0):  # not a linear axis (log scale): skip
        return None
    return a, b, dec


def svg_step_curves(svg: str) -> list[StepCurve]:
    """Every monotone decreasing step curve (a Kaplan-Meier-type path) of an SVG document.

    A path qualifies when it is made only of horizontal and vertical segments, its heights
    never rise, and it has at least two drops. Heights are converted to data units with the
    axes' y tick marks and labels (``0%``, ``20%``, ... or plain numbers).
    """
    try:
        root = ET.fromstring(svg)
    except ET.ParseError:
        return []
    out: list[StepCurve] = []
    for axes in root.iter():
        if _local(axes.tag) != "g" or not _id_ends(axes, "axes"):
            continue
        cal = _y_axis(axes)
        if cal is None:
            continue
        a, b, tick_dec = cal
        for g in axes.iter():
            if _local(g.tag) != "g" or not _id_ends(g, "line2d"):
                continue
            for p in g:
                if _local(p.tag) != "path" or not p.get("d"):
                    continue
                pts = _path_points(p.get("d"))
                if pts is None or len(pts) < 4:
                    continue
                keep = np.r_[True, np.any(np.diff(pts, axis=0) != 0, axis=1)]
                pts = pts[keep]
                seg = np.diff(pts, axis=0)
                if np.any(seg[:, 0] < 0) or np.any(seg[:, 1] < 0):  # x goes right, pixel y only down
                    continue
                horiz = seg[:, 1] == 0
                vert = seg[:, 0] == 0
                if (horiz | vert).mean() < 0.8 or int(vert.sum()) < 2:
                    continue  # not a step curve (a slanted line, or too few steps)
                # the heights of the horizontal runs; a drop is one step when a single vertical
                # segment joins two horizontal runs (path simplification can merge steps into
                # slanted segments: those drops are left out)
                ys, xs, single = [pts[0, 1]], [pts[0, 0]], [True]
                between: list[bool] = []
                for i in range(len(seg)):
                    if horiz[i]:
                        if pts[i, 1] != ys[-1]:
                            ys.append(pts[i, 1])
                            xs.append(pts[i, 0])
                            single.append(between == [True])
                        between = []
                    else:
                        between.append(bool(vert[i]))
                if between and pts[-1, 1] != ys[-1]:
                    ys.append(pts[-1, 1])
                    xs.append(pts[-1, 0])
                    single.append(between == [True])
                dec = max(_decimals(p.get("d")), tick_dec)
                half = 0.5 * 10.0 ** (-dec) if dec else 0.5
                yv = a + b * np.asarray(ys)
                tol = abs(b) * half * 3 + 1e-12  # the point, and the two tick marks fixing the scale
                out.append(StepCurve(label=g.get("id") or "", x=np.asarray(xs), y=yv, tol=tol,
                                     single=np.asarray(single, bool)))
    return out


def _some_large_fraction(r_lo: float, r_hi: float, *, min_cell: int, n_max: int) -> bool:
    """Is there a fraction d / n in [r_lo, r_hi] with min_cell <= d <= n <= n_max?"""
    r_lo = max(r_lo, 1e-15)
    d_hi = math.floor(r_hi * n_max)
    if d_hi < min_cell:
        return False
    d = np.arange(min_cell, d_hi + 1, dtype=float)
    n_lo = np.maximum(np.ceil(d / r_hi - 1e-9), d)
    n_hi = np.minimum(np.floor(d / r_lo + 1e-9), n_max)
    return bool((n_lo <= n_hi).any())


def _small_fraction(r_lo: float, r_hi: float, *, min_cell: int, n_max: int) -> tuple[int, int] | None:
    """The fraction d / n in [r_lo, r_hi] with 1 <= d < min_cell, n <= n_max, smallest d first."""
    for d in range(1, min_cell):
        n_lo = max(math.ceil(d / r_hi - 1e-9), d) if r_hi > 0 else n_max + 1
        n_hi = min(math.floor(d / max(r_lo, 1e-15) + 1e-9), n_max)
        if n_lo <= n_hi:
            return d, n_lo
    return None


def svg_step_findings(svg: str, *, min_cell: int, n_max: int) -> list[str]:
    """The reader's attack on the step curves of one SVG: steps that rest on fewer than
    ``min_cell`` people.

    For each drop of each step curve (:func:`svg_step_curves`) the relative drop
    ``r = 1 - y_k / y_{k-1}`` is known to within the printed precision. A Kaplan-Meier drop is
    ``d / n`` (``d`` events of ``n`` at risk, ``n <= n_max``). When every fraction in the
    range has ``d < min_cell`` and at least one does, the step reveals a small number of
    events (and, read together, its number at risk): a finding. The number at risk of step
    ``k`` is at most ``n_max S(t_{k-1})`` (it falls by at least the events of each step), so
    later steps are matched with smaller denominators.

    Parameters
    ----------
    svg
        One SVG document (text).
    min_cell
        Smallest count that may be shown.
    n_max
        Largest possible number at risk (e.g. participants in the program plus
        ``min_cell - 1``, the most a rounded group size can exceed the true one).

    Returns
    -------
    list of str
        One message per curve with such steps (the number of small steps and the first one).
    """
    out = []
    for c in svg_step_curves(svg):
        small, first = 0, None
        for k in range(1, len(c.y)):
            prev, cur = c.y[k - 1], c.y[k]
            if prev <= c.tol or (c.single is not None and not c.single[k]):
                continue
            r = 1.0 - cur / prev
            # r's uncertainty: both heights are known to within tol
            dr = (c.tol + c.tol * cur / prev) / (prev - c.tol)
            lo, hi = r - dr, r + dr
            if hi <= 0:
                continue
            # at risk only falls: n_k <= n_{k-1} - d_{k-1} = n_{k-1} (1 - d_{k-1}/n_{k-1}), so by
            # induction n_k <= N S(t_{k-1}) <= n_max S(t_{k-1})
            n_k = max(1, min(n_max, math.floor(n_max * (prev + c.tol) + 1e-9)))
            if _some_large_fraction(lo, hi, min_cell=min_cell, n_max=n_k):
                continue
            frac = _small_fraction(lo, hi, min_cell=min_cell, n_max=n_k)
            if frac is None:
                continue  # not a Kaplan-Meier drop over at most n_max people
            small += 1
            if first is None:
                first = (k, frac)
        if small:
            k, (d, n) = first  # type: ignore[misc]
            out.append(f"step curve {c.label}: {small} of {len(c.y) - 1} steps rest on fewer than {min_cell} "
                       f"people (step {k}: a drop of {d} in about {n})")
    return out


def figure_data_findings(data: dict[str, Any], *, min_cell: int) -> list[str]:
    """Check the published data of one figure (``results.json`` ``figures[].data``): every
    count of a drawn step curve is 0 or at least ``min_cell``."""
    out = []
    for curve in data.get("curves", []) or []:
        for step in curve.get("steps", []) or []:
            for col in ("events", "censored_before"):
                v = step.get(col)
                if v is not None and 0 < float(v) < min_cell:
                    out.append(f"curve {curve.get('group')!r} at time {step.get('time')}: {col} = a count "
                               f"between 1 and {min_cell - 1}")
        n = [s.get("n_at_risk") for s in curve.get("steps", []) if s.get("n_at_risk") is not None]
        for a, b in zip(n[:-1], n[1:], strict=False):
            if 0 < float(a) - float(b) < min_cell:
                out.append(f"curve {curve.get('group')!r}: the number at risk changes by fewer than "
                           f"{min_cell} between two steps")
                break
    return out


def svg_matches_data(svg: str, data: dict[str, Any]) -> list[str]:
    """Every drawn step height of the figure's step curves is a published estimate of its
    ``data`` (within the printed precision); messages for those that are not (a step curve
    of a figure that publishes no step data is one)."""
    published = np.asarray(sorted({float(s["estimate"]) for c in data.get("curves", []) or []
                                   for s in c.get("steps", []) if s.get("estimate") is not None}), float)
    out = []
    for c in svg_step_curves(svg):
        if not len(published):
            out.append(f"step curve {c.label}: drawn, but the figure publishes no step data")
            continue
        idx = np.clip(np.searchsorted(published, c.y), 1, len(published) - 1) if len(published) > 1 else \
            np.zeros(len(c.y), int)
        near = np.minimum(np.abs(published[idx] - c.y), np.abs(published[np.maximum(idx - 1, 0)] - c.y))
        bad = int((near > 2 * c.tol + 1e-9).sum())
        if bad:
            out.append(f"step curve {c.label}: {bad} of {len(c.y)} drawn heights are not published step "
                       "estimates of this figure")
    return out
