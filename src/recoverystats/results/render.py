"""The one table renderer used by ``_repr_html_``, ``to_markdown`` and the report.

Numbers are stored unrounded in ``.table``; rounding and display labels happen only
here, at render time.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Display labels for the fixed snake_case result columns (applied at render time).
LABELS: dict[str, str] = {
    "n": "N",
    "events": "Events",
    "estimate": "Estimate",
    "ci_lower": "CI lower",
    "ci_upper": "CI upper",
    "std_error": "SE",
    "statistic": "Statistic",
    "p_value": "p",
    "df": "df",
    "term": "Term",
    "log_odds": "log OR",
    "log_hazard": "log HR",
    "comparison": "Comparison",
    "person_time": "Person-time",
    "time": "Time",
    "n_at_risk": "At risk",
    "censored": "Censored",
    "group": "Group",
    "site": "Site",
    "period": "Period",
    "measure": "Measure",
    "variable": "Variable",
    "level": "Level",
    "smd": "SMD",
    "missing": "Missing",
    "table": "Table",
    "rows_read": "Rows read",
    "rows_kept": "Rows kept",
    "rows_dropped": "Rows dropped",
    "rule": "Rule",
    "severity": "Severity",
    "file": "File",
    "line": "Line",
    "column": "Column",
    "value": "Value",
    "message": "Message",
    "term_p_value": "p (all levels)",
    "n_reference": "N (reference)",
    "events_reference": "Events (reference)",
    "risk_reference": "Risk (reference)",
    "competing": "Competing events",
    # pooled over multiple imputations (Rubin's rules)
    "riv": "RIV",
    "lambda": "λ",
    "fmi": "FMI",
    "ubar": "Within-imputation var.",
    "total_variance": "Total var.",
    "dfcom": "Complete-data df",
}

#: Columns shown as integers when a value is whole: counts, and times (a whole number of days
#: or weeks reads "90", not "90.000").
WHOLE_NUMBER_COLUMNS: frozenset[str] = frozenset({
    "n", "events", "n_at_risk", "censored", "competing", "n_reference", "events_reference",
    "rows_read", "rows_kept", "rows_dropped", "df", "line",
    "time", "time_days", "days", "day", "week", "weeks", "month", "months",
})


def label(column: str, labels: Mapping[str, str] | None = None) -> str:
    """Display label for a column name."""
    if labels and column in labels:
        return labels[column]
    return LABELS.get(column, str(column).replace("_", " ").capitalize())


def format_value(value: Any, column: str = "", digits: int = 3) -> str:
    """Format one cell for display: p-values as ``<0.001``, integers without decimals."""
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if column == "p_value":
            return "<0.001" if value < 0.001 else f"{value:.3f}"
        if float(value).is_integer() and column in WHOLE_NUMBER_COLUMNS:
            return f"{int(value):,}"
        a = abs(value)
        if a != 0 and (a < 10 ** -(digits) or a >= 1e6):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return "—"
    return str(value)


def render_html_table(
    table: pd.DataFrame,
    *,
    title: str | None = None,
    notes: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    digits: int = 3,
    max_rows: int = 60,
    css_class: str = "rs-table",
    align_text: bool = True,
    headline: str = "",
) -> str:
    """Render a tidy table as an HTML ``<table>`` (escaped, numbers formatted).

    Numbers are right-aligned. With ``align_text`` (the default) text cells and the headers
    of text columns are left-aligned explicitly, since Jupyter right-aligns every cell; the
    report passes ``align_text=False`` because its stylesheet aligns its (pre-formatted)
    columns itself. ``headline`` (optional) is a sentence shown first, above the table, in
    bold: for a change of method the reader must not miss (e.g. Firth instead of ML).
    """
    cols = list(table.columns)
    left = ' style="text-align:left"'
    text_cols = {c for c in cols if align_text and not _numeric_column(table[c])}
    parts = ['<div class="rs-result">']
    if headline:
        parts.append(f'<p class="rs-headline"><strong>{html.escape(headline)}</strong></p>')
    parts.append(f'<table class="{css_class}">')
    if title:
        parts.append(f"<caption>{html.escape(title)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th{left if c in text_cols else ''}>{html.escape(label(c, labels))}</th>"
                                         for c in cols) + "</tr></thead>")
    parts.append("<tbody>")
    shown = table if len(table) <= max_rows else table.head(max_rows)
    for row in shown.itertuples(index=False, name=None):
        cells = []
        for c, v in zip(cols, row, strict=True):
            text = html.escape(format_value(v, str(c), digits))
            if isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)):
                align = ' style="text-align:right"'
            else:
                align = left if align_text else ""
            cells.append(f"<td{align}>{text}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    if len(table) > max_rows:
        parts.append(f"<p><em>{len(table) - max_rows} more rows not shown (see <code>.table</code>).</em></p>")
    for note in notes:
        parts.append(f'<p class="rs-note">{html.escape(note)}</p>')
    parts.append("</div>")
    return "".join(parts)


def _numeric_column(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def render_markdown_table(
    table: pd.DataFrame,
    *,
    labels: Mapping[str, str] | None = None,
    digits: int = 3,
) -> str:
    """Render a tidy table as a GitHub-flavoured Markdown table."""
    cols = list(table.columns)
    head = "| " + " | ".join(label(c, labels) for c in cols) + " |"
    sep = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]) else "---" for c in cols) + "|"
    lines = [head, sep]
    for row in table.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(format_value(v, str(c), digits).replace("|", "\\|") for c, v in zip(cols, row, strict=True)) + " |")
    return "\n".join(lines)
