"""Helpers shared by the report sections: table-cell bookkeeping, text and figure drawing."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.report.model import FigureBlock, TableBlock

TOTAL = "Total"

_PCT = {"estimate", "ci_lower", "ci_upper", "rate", "target", "pct_intake", "pct_followup", "centre",
        "lcl", "ucl", "this_estimate", "last_estimate", "change"}


def _severity_totals(block: TableBlock | None) -> dict[str, str]:
    """Published Total of each severity of the validation table ('*' when suppressed)."""
    out = {"error": "0", "warning": "0", "info": "0"}
    if block is None or not len(block.data) or "n_records" not in block.data:
        return out
    d = block.data
    for i in np.flatnonzero((d["rule"].astype("string") == TOTAL).fillna(False).to_numpy()):
        sev = str(d.at[int(i), "severity"])
        if sev in out:
            hidden = bool(block.mask.at[int(i), "n_records"])
            out[sev] = "*" if hidden else f"{int(d.at[int(i), 'n_records']):,}"
    return out


def _derived(row: int, column: str, statistic: str, inputs: list[tuple[int, str]],
             params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One published statistic and the count cells it is computed from (privacy.derived).

    ``digits`` is the precision of the most precise published copy: ``None`` = full
    precision (results.json and tables.xlsx hold the unrounded value).
    """
    out: dict[str, Any] = {"row": int(row), "column": str(column), "statistic": statistic,
                           "inputs": [[int(r), str(c)] for r, c in inputs], "digits": None}
    if params:
        out["params"] = dict(params)
    return out


def _table_one_rows(tab: pd.DataFrame, allg: list[str]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The Table 1 layout of a :func:`recoverystats.table_one` table (with ``smd``), as the
    Table 1 and the missing-data sections publish it.

    Returns the level rows — every level, the implied other level of a binary variable
    (N - yes - missing, published so the structure is explicit), for a continuous variable
    with missing values "(with a value)" and "(missing)" counts (so that N - n is protected
    like any other count), and a Total row per variable — with ``n|g`` and ``pct|g`` (% of
    those with a recorded value) per group, and the continuous rows (mean, SD, n per group).
    """
    cat_rows: list[dict[str, Any]] = []
    cont_rows: list[dict[str, Any]] = []
    nrow = tab[tab["kind"] == "count"].iloc[0]
    for var, block in tab[tab["kind"] != "count"].groupby("variable", sort=False):
        kinds = set(block["kind"])
        if "continuous" in kinds:
            r = block[block["kind"] == "continuous"].iloc[0]
            cont_rows.append({"variable": var, "smd": r["smd"],
                              **{f"mean|{g}": r[f"{g}|mean"] for g in allg},
                              **{f"sd|{g}": r[f"{g}|sd"] for g in allg},
                              **{f"n|{g}": r[f"{g}|n"] for g in allg}})
            miss = block[block["kind"] == "missing"]
            if len(miss):
                m0 = miss.iloc[0]
                for lev, vals in (("(with a value)", {g: r[f"{g}|n"] for g in allg}),
                                  ("(missing)", {g: m0[f"{g}|n"] for g in allg})):
                    cat_rows.append({"variable": var, "level": lev, "smd": np.nan,
                                     **{f"n|{g}": float(vals[g]) for g in allg}})
                cat_rows.append({"variable": var, "level": TOTAL, "smd": np.nan,
                                 **{f"n|{g}": float(nrow[f"{g}|n"]) for g in allg}})
            continue
        smd = block["smd"].iloc[0]
        levels = block.reset_index(drop=True)
        for r in levels.itertuples(index=False):
            rec = dict(zip(levels.columns, r, strict=False))
            cat_rows.append({"variable": var, "level": str(rec["level"]), "smd": smd,
                             **{f"n|{g}": float(rec[f"{g}|n"]) for g in allg}})
        if len(levels[levels["kind"] == "categorical"]) == 1:  # binary: publish the other level
            yes = levels[levels["kind"] == "categorical"].iloc[0]
            miss = levels[levels["kind"] == "missing"]
            other = {g: float(nrow[f"{g}|n"]) - float(yes[f"{g}|n"])
                     - (float(miss.iloc[0][f"{g}|n"]) if len(miss) else 0.0) for g in allg}
            lev = str(yes["level"])
            name = {"True": "False", "true": "false", "1": "0", "yes": "no", "1.0": "0.0"}.get(lev, f"not {lev}")
            cat_rows.append({"variable": var, "level": name, "smd": smd, **{f"n|{g}": other[g] for g in allg}})
        cat_rows.append({"variable": var, "level": TOTAL, "smd": np.nan,
                         **{f"n|{g}": float(nrow[f"{g}|n"]) for g in allg}})
    cat = pd.DataFrame(cat_rows)
    if len(cat):
        for g in allg:
            denom = cat.groupby("variable", sort=False)[f"n|{g}"].transform(
                lambda s: s[cat.loc[s.index, "level"].eq(TOTAL).to_numpy()].iloc[0]
                - s[cat.loc[s.index, "level"].eq("(missing)").to_numpy()].sum())
            cat[f"pct|{g}"] = cat[f"n|{g}"] / denom.where(denom > 0)
            cat.loc[cat["level"].isin([TOTAL, "(missing)"]), f"pct|{g}"] = np.nan
    return cat, cont_rows


def _table_one_derived(cat: pd.DataFrame, allg: list[str], gs: list[str]) -> list[dict[str, Any]]:
    """Statistics of the categorical Table 1 and their count cells.

    ``pct|g`` of a level = n / (Total - missing) of its variable (a ``ratio``); the SMD of
    a variable is a function of every level count of the compared groups
    (``smd_categorical``, Yang & Dalton, inputs group-major: groups x levels).
    """
    out: list[dict[str, Any]] = []
    for _var, block in cat.groupby("variable", sort=False):
        idx = [int(i) for i in block.index]
        levels = [i for i in idx if cat.at[i, "level"] not in (TOTAL, "(missing)")]
        tot = [i for i in idx if cat.at[i, "level"] == TOTAL]
        miss = [i for i in idx if cat.at[i, "level"] == "(missing)"]
        if not tot:
            continue
        for i in levels:
            for g in allg:
                if np.isfinite(float(cat.at[i, f"pct|{g}"])):
                    ins = [(i, f"n|{g}"), (tot[0], f"n|{g}")] + [(m, f"n|{g}") for m in miss]
                    out.append(_derived(i, f"pct|{g}", "ratio", ins,
                                        {"denominator_weights": [1.0] + [-1.0] * len(miss)}))
        smd_levels = [i for i in levels if cat.at[i, "level"] != "(with a value)"]
        if len(gs) >= 2 and smd_levels:
            ins = [(i, f"n|{g}") for g in gs for i in smd_levels]
            for i in idx:
                if np.isfinite(float(cat.at[i, "smd"])):
                    out.append(_derived(i, "smd", "smd_categorical", ins,
                                        {"groups": len(gs), "levels": len(smd_levels)}))
    return out


def _param_text(v: Any) -> str:
    """A parameter value for reading: lists joined by commas, mappings as key = value."""
    if isinstance(v, Mapping):
        return ", ".join(f"{k} = {_param_text(x)}" for k, x in v.items()) or "none"
    if isinstance(v, (list, tuple)):
        return ", ".join(_param_text(x) for x in v) or "none"
    if v is None:
        return "none"
    return str(v)


def _published_total(blocks: Mapping[str, TableBlock]) -> int | None:
    """Participants enrolled to date as published (census Total row), or None when that
    number is suppressed: a figure title must not give back a suppressed count."""
    b = blocks.get("census_site")
    if b is None:
        return None
    rows = b.data.index[b.data["site"] == TOTAL]
    if not len(rows) or bool(b.mask.at[rows[0], "n_total"]):
        return None
    return int(b.data.at[rows[0], "n_total"])


def _legend_covers_data(ax: Any, renderer: Any) -> list[str]:
    """A legend inside the axes that lies over drawn data (sampled along every line)."""
    from matplotlib.collections import LineCollection

    leg = ax.get_legend()
    if leg is None or not leg.get_visible():
        return []
    lb = leg.get_window_extent(renderer).padded(-2)
    ab = ax.bbox
    if lb.x1 <= ab.x0 or lb.x0 >= ab.x1 or lb.y1 <= ab.y0 or lb.y0 >= ab.y1:
        return []  # outside the axes

    def hit(points: np.ndarray) -> bool:
        pts = points[np.isfinite(points).all(axis=1)]
        if len(pts) > 1:  # sample along the segments, not only at the vertices
            t = np.linspace(0, 1, 12)[:, None, None]
            pts = (pts[:-1][None] * (1 - t) + pts[1:][None] * t).reshape(-1, 2)
        return bool(((pts[:, 0] > lb.x0) & (pts[:, 0] < lb.x1) & (pts[:, 1] > lb.y0) & (pts[:, 1] < lb.y1)).any())

    out = []
    for line in ax.lines:
        xy = line.get_xydata()
        if line.get_visible() and len(xy) and hit(line.get_transform().transform(np.asarray(xy, float))):
            out.append(f"legend covers the line {line.get_label()!r}")
    for coll in ax.collections:
        if isinstance(coll, LineCollection) and coll.get_visible():
            tr = coll.get_transform()
            if any(hit(tr.transform(np.asarray(seg, float))) for seg in coll.get_segments() if len(seg)):
                out.append(f"legend covers {coll.get_label() or 'interval lines'!r}")
    for p in ax.patches:
        if p.get_visible():
            bb = p.get_window_extent(renderer)
            if bb.x0 < lb.x1 and lb.x0 < bb.x1 and bb.y0 < lb.y1 and lb.y0 < bb.y1:
                out.append(f"legend covers a {type(p).__name__}")
    for t in ax.texts:
        if t.get_visible() and t.get_text().strip():
            bb = t.get_window_extent(renderer)
            if bb.x0 < lb.x1 and lb.x0 < bb.x1 and bb.y0 < lb.y1 and lb.y0 < bb.y1:
                out.append(f"legend covers the text {t.get_text()[:30]!r}")
    return out


def _no_terms(text: str) -> str:
    """Drop the list of terms from a separation note (it names small groups whose outcome is all 0 or 1)."""
    return re.sub(r"\s*\(involves [^)]*\)", "", text)


def _hide_small_numbers(text: str, min_cell: int) -> str:
    """Replace whole numbers 1..min_cell-1 in free text (model notes) by '*'.

    Thresholds written as ``< 5`` are kept; decimals (``4.1``) are kept whole.
    """
    def repl(m: re.Match[str]) -> str:
        v = int(m.group(0))
        return "*" if 1 <= v < min_cell else m.group(0)

    return re.sub(r"(?<![<≤\d.,])(?<!< )(?<!<= )\b\d+\b(?![.,]\d)", repl, text)


def _measure_meta(meta: Mapping[str, Any], numerator: str, denominator: str) -> dict[str, Any]:
    return {
        "name": meta.get("name"), "title": meta.get("title"), "definition": meta.get("definition"),
        "parameters": meta.get("parameters"), "as_of": meta.get("as_of"),
        "numerator": numerator, "denominator": denominator,
    }


def _figure(key: str, title: str, draw: Callable[[Any], Any], figsize: tuple[float, float] | None = None, *,
            sources: Sequence[str] = (), data: Mapping[str, Any] | None = None, round_coordinates: bool = True,
            ) -> FigureBlock:
    """Draw a figure with the shared style and render it to PNG and SVG (deterministic).

    ``draw`` must draw only published data (suppressed tables, or a curve coarsened by
    :func:`recoverystats.privacy.figures.coarsen_km`); ``sources`` (the published tables it
    is drawn from) and ``data`` (the drawn steps of a step curve) go to results.json, where
    the privacy scan compares them with the SVG. SVG coordinates are rounded to 0.01 pt
    (matplotlib writes six decimals, which carry nothing a reader can see).
    """
    import io

    import matplotlib as mpl

    from recoverystats.plotting.style import FIGSIZE, RC, new_axes

    with mpl.rc_context(RC):
        ax = new_axes(None, figsize=figsize or FIGSIZE, pyplot=False)  # never pyplot: no inline copy in Jupyter
        draw(ax)
        fig = ax.figure
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=150, metadata={"Software": None})
        problems = layout_problems(fig)
        fig.set_layout_engine("none")  # keep the laid-out positions: the SVG needs no second layout pass
        svg = io.StringIO()
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    text = svg.getvalue()
    text = text[text.find("<svg"):]  # drop the XML prolog and doctype for inline use
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF boilerplate, no content
    if round_coordinates:
        from recoverystats.privacy.figures import round_svg_coordinates

        text = round_svg_coordinates(text, decimals=2)
    w, h = fig.get_size_inches()
    info = {"sources": list(sources), **(dict(data) if data else {})}
    return FigureBlock(key=key, title=title, png=png.getvalue(), svg=text, problems=problems, aspect=float(w / h),
                       data=info)


def layout_problems(fig: Any, tol: float = 1.0) -> tuple[str, ...]:
    """What a reader would stumble on in a drawn figure: any text (titles, labels, legend,
    annotations, tick labels) reaching outside the figure, tick labels of one axis
    overlapping each other, shapes (boxes, bars) cut off by the edge of their axes, and a
    legend drawn over the data (lines, points, bars, interval whiskers). ``tol`` is in pixels."""
    from matplotlib.text import Text

    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    W, H = fig.bbox.width, fig.bbox.height
    out: list[str] = []
    tick_labels: set[int] = set()
    for ax in fig.axes:
        ab = ax.bbox
        for p in ax.patches:
            if not (p.get_visible() and p.get_clip_on()):
                continue
            bb = p.get_window_extent(renderer)
            if bb.x0 < ab.x0 - tol or bb.y0 < ab.y0 - tol or bb.x1 > ab.x1 + tol or bb.y1 > ab.y1 + tol:
                out.append(f"{type(p).__name__} cut off at the edge of the axes")
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if not (ax.axison and axis.get_visible()):
                for tick in axis.get_major_ticks():
                    tick_labels.add(id(tick.label1))
                continue
            lo, hi = sorted(axis.get_view_interval())
            span = (hi - lo) or 1.0
            boxes = []
            for tick in axis.get_major_ticks():
                lab = tick.label1
                tick_labels.add(id(lab))
                if not (lab.get_visible() and lab.get_text()):
                    continue
                if not lo - 1e-9 * span <= tick.get_loc() <= hi + 1e-9 * span:
                    continue  # not drawn
                bb = lab.get_window_extent(renderer)
                boxes.append((bb, lab.get_text()))
                if bb.x0 < -tol or bb.y0 < -tol or bb.x1 > W + tol or bb.y1 > H + tol:
                    out.append(f"{name} tick label {lab.get_text()!r} outside the figure")
            key = (lambda b: b[0].x0) if name == "x" else (lambda b: b[0].y0)
            boxes.sort(key=key)
            for (a, ta), (b, tb) in zip(boxes, boxes[1:], strict=False):
                if a.x0 < b.x1 - tol and b.x0 < a.x1 - tol and a.y0 < b.y1 - tol and b.y0 < a.y1 - tol:
                    out.append(f"{name} tick labels {ta!r} and {tb!r} overlap")
    for ax in fig.axes:
        out.extend(_legend_covers_data(ax, renderer))
    for t in fig.findobj(Text):
        if id(t) in tick_labels or not t.get_visible() or not t.get_text().strip():
            continue
        bb = t.get_window_extent(renderer)
        if bb.x0 < -tol or bb.y0 < -tol or bb.x1 > W + tol or bb.y1 > H + tol:
            out.append(f"text {t.get_text()[:40]!r} outside the figure")
    return tuple(out)

