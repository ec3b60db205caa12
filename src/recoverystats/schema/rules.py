"""Validation rules: one registry of rule ids, severities, scopes and fixes.

Every finding the loader produces names one of these rules. The registry is the single
place where a rule's severity is decided, and it is what ``docs/data-model.md`` lists.

Severity
    ``error``   the row (or, for table/file-scope rules, the table) cannot be used as it
                is. ``on_error="raise"`` stops the load with
                :class:`~recoverystats.errors.DataValidationError` listing every error;
                ``on_error="drop"`` drops the offending rows (table/file-scope errors
                always stop the load: there is no row to drop).
    ``warning`` suspicious but usable; the row is kept (except exact duplicate rows,
                whose extra copies are dropped) and the finding is reported.
    ``info``    how something was interpreted (encoding fallback, renamed header, rows
                flagged as history); nothing is dropped.
Scope
    ``file``/``table`` the finding concerns the whole input (no line number);
    ``row`` it concerns one source line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
Scope = Literal["file", "table", "row"]

SEVERITIES: tuple[str, ...] = ("error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Rule:
    """One validation rule."""

    id: str
    severity: Severity
    scope: Scope
    title: str
    fix: str

    def fix_text(
        self, *, table: str | None = None, column: str | None = None, terms: Any = None
    ) -> str:
        """The fix as a message prints it.

        ``<t>`` becomes ``table`` (when given) and ``<column>`` the column; a setting
        written ``<param:on_error=drop>`` is named by :func:`recoverystats.errors.param`
        (``on_error="drop"`` in Python, ``--on-error drop`` on the command line), or by
        ``terms`` (a :class:`~recoverystats.errors.Terms`) when given.
        """
        from recoverystats.errors import _UNSET, param

        text = self.fix
        if table is not None:
            text = text.replace("<t>", table).replace("<column>", column or "<column>")

        def setting(m: re.Match[str]) -> str:
            raw = m.group(2)
            value: Any = _UNSET if raw is None else _PARAM_VALUES.get(raw, raw)
            return terms.name(m.group(1), value) if terms is not None else param(m.group(1), value)

        return _PARAM.sub(setting, text) if "<param:" in text else text


#: A setting named in a rule's fix: ``<param:name>`` or ``<param:name=value>``.
_PARAM = re.compile(r"<param:(\w+)(?:=([\w-]+))?>")
_PARAM_VALUES: dict[str, Any] = {"True": True, "False": False}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem (or interpretation) found while loading, as carried by ``DataValidationError``.

    ``line`` is the 1-based line of the source file as a user sees it (the header is
    line 1 of a CSV; the sheet row number in Excel); for sources without lines
    (Parquet, SPSS, Stata, SQL, in-memory frames) it is the 1-based record number.
    """

    rule: str
    severity: str
    table: str
    file: str
    line: int | None
    column: str | None
    value: str | None
    message: str

    def __str__(self) -> str:
        return self.message


_R = Rule

#: Every rule by id.
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        # -- files and mapping -------------------------------------------------
        _R(
            "file_missing",
            "error",
            "file",
            "input file not found",
            "check the path in program.toml (relative paths are resolved against the folder holding program.toml)",
        ),
        _R(
            "file_unreadable",
            "error",
            "file",
            "file cannot be parsed in its format",
            "re-export the file, or set delimiter/encoding/sheet/header_row in program.toml",
        ),
        _R(
            "file_ambiguous",
            "error",
            "file",
            "two files hold the same table",
            "keep one file per table, or name the one to use in program.toml",
        ),
        _R(
            "file_empty",
            "error",
            "file",
            "0-byte file",
            "re-export the table with at least its header line, or remove the file",
        ),
        _R(
            "file_ignored",
            "info",
            "file",
            "file in the folder is not a canonical table",
            "name it after a table (participants, events, ...) or map it in program.toml",
        ),
        _R(
            "table_missing",
            "error",
            "table",
            "the participants table is missing",
            "add participants.csv (or map the participants table in program.toml)",
        ),
        _R(
            "no_rows",
            "info",
            "table",
            "the table has a header but no rows",
            "check the export if rows were expected",
        ),
        _R(
            "delimiter",
            "error",
            "table",
            "the file is not split by the expected delimiter",
            'set delimiter in program.toml (e.g. delimiter = ";")',
        ),
        _R(
            "encoding",
            "info",
            "file",
            "file is not UTF-8; read as latin-1",
            "set encoding in program.toml to silence this, or re-export as UTF-8",
        ),
        _R(
            "mapping_invalid",
            "error",
            "file",
            "program.toml has an unknown key, table or value",
            "correct program.toml (see docs/data-model.md for the format)",
        ),
        _R(
            "mapping_column",
            "error",
            "table",
            "program.toml names a column the file does not have",
            "correct the source column name in program.toml",
        ),
        _R(
            "sql_error",
            "error",
            "table",
            "the SQL query failed",
            "correct the query or database path in program.toml",
        ),
        _R(
            "field_count",
            "error",
            "row",
            "a line does not have the header's number of fields",
            "quote values that contain the delimiter, or correct the line",
        ),
        _R(
            "header_row",
            "info",
            "table",
            "title rows above the header were skipped",
            "set header_row in program.toml to make this explicit",
        ),
        _R(
            "header_looks_like_data",
            "error",
            "file",
            "the header line/row looks like data or a title, and another line looks like the header",
            "set header_row in program.toml [tables.<t>] to the line (Excel: row) that "
            "looks like the header (1-based; title and blank lines count)",
        ),
        # -- columns -----------------------------------------------------------
        _R(
            "required_column",
            "error",
            "table",
            "a required column is missing",
            "add the column to the export or rename the source column in program.toml [tables.<t>.rename]",
        ),
        _R(
            "duplicate_column",
            "error",
            "table",
            "two source columns map to the same name",
            "rename or drop one of them in program.toml",
        ),
        _R(
            "column_renamed",
            "info",
            "table",
            "a header was matched to a canonical column by spelling",
            "rename the column in the export or in program.toml to make this explicit",
        ),
        _R(
            "extra_column",
            "info",
            "table",
            "a non-canonical column is kept as an extra column",
            "nothing to do if intended; map it in program.toml if it is a canonical column",
        ),
        _R(
            "partition_ignored",
            "info",
            "table",
            "a partition key of a Parquet directory is not a column of the table (or is also a column in the files)",
            "nothing to do if intended; rename the key in program.toml ([tables.<t>.rename]) if it is a canonical column",
        ),
        _R(
            "id_numeric",
            "info",
            "table",
            "IDs were stored as numbers; leading zeros may have been lost",
            "export ID columns as text so IDs like 007 keep their zeros",
        ),
        # -- cells ---------------------------------------------------------------
        _R(
            "missing_value",
            "error",
            "row",
            "a required value is empty",
            "fill in the value, or drop the row with <param:on_error=drop>",
        ),
        _R(
            "date_parse",
            "error",
            "row",
            "value is not a date",
            "write dates as YYYY-MM-DD or set date_format in program.toml",
        ),
        _R(
            "date_impossible",
            "error",
            "row",
            "the date does not exist in the calendar",
            "correct the date (e.g. day 30 in February)",
        ),
        _R(
            "date_sentinel",
            "warning",
            "row",
            "a placeholder date (9999-12-31, 1900-01-01, 1753-01-01, ...) is read as missing",
            "leave the date empty in the export when it is unknown; a required date must be the real one",
        ),
        _R(
            "date_out_of_range",
            "error",
            "row",
            "the date is outside the plausible window 1900-01-01 to 2099-12-31",
            "correct the date (a typo in the year?) or leave it empty when unknown",
        ),
        _R(
            "date_format_mixed",
            "error",
            "row",
            "the column mixes date formats and this value reads differently under them",
            "export the column in one format (ISO YYYY-MM-DD), or give the one date_format it uses",
        ),
        _R(
            "formula_no_value",
            "error",
            "row",
            "an Excel formula cell has no saved value",
            "open the workbook in Excel and save it (so formula results are stored), or paste values",
        ),
        _R(
            "code_unlabelled",
            "warning",
            "row",
            "an SPSS/Stata value has no value label although the column has labels; kept as the code",
            "add the value label in the source file, or map the code in [tables.<t>.values.<column>]",
        ),
        _R(
            "control_character",
            "error",
            "row",
            "the value holds a NUL byte or another control character",
            "remove the control characters from the export (they are not text)",
        ),
        _R(
            "cell_too_long",
            "error",
            "row",
            "the value is longer than the input cell limit (32,767 characters)",
            "check the export: a value this long is not data of this model",
        ),
        _R(
            "file_too_large",
            "error",
            "file",
            "a compressed input (.xlsx) inflates beyond the size limits (a zip bomb?)",
            "export the table as CSV or Parquet, or check the file's origin",
        ),
        _R(
            "type_number",
            "error",
            "row",
            "value is not a number",
            "correct the value or leave it empty",
        ),
        _R(
            "number_decimal_comma",
            "error",
            "table",
            "numbers written with a decimal comma (12,5) in a file read with decimal point",
            'set decimal = "," for this file in program.toml ([tables.<t>], or [defaults] '
            'for every file), with thousands = "." or " " if digits are grouped (1.234,5)',
        ),
        _R(
            "type_integer",
            "error",
            "row",
            "value is not a whole number",
            "correct the value or leave it empty",
        ),
        _R(
            "type_bool",
            "error",
            "row",
            "value is not yes/no",
            "use true/false, yes/no, y/n or 1/0, or map the codes in program.toml [tables.<t>.values.<column>]",
        ),
        _R(
            "code_unknown",
            "error",
            "row",
            "value is not an allowed code",
            "use one of the allowed codes or map the site's code in program.toml [tables.<t>.values.<column>]",
        ),
        _R("range", "error", "row", "value outside the plausible range", "correct the value"),
        # -- rows ----------------------------------------------------------------
        _R(
            "duplicate_key",
            "error",
            "row",
            "two rows have the same key",
            "keep one row per key (correct or remove the others)",
        ),
        _R(
            "duplicate_row",
            "warning",
            "row",
            "exact copy of an earlier row in a keyed table; the copy is dropped",
            "remove the repeated row from the export",
        ),
        _R(
            "repeated_row",
            "info",
            "table",
            "rows of an unkeyed table (contacts, events) repeat exactly; kept",
            "remove the repeats from the export if they are export duplicates",
        ),
        _R(
            "orphan",
            "error",
            "row",
            "the row points at an ID that is not in the referenced table",
            "add the missing participant/mentor, or correct the ID",
        ),
        _R(
            "parent_dropped",
            "warning",
            "row",
            "dropped because the participant/mentor it points at was dropped",
            "fix the referenced row's problem",
        ),
        # -- dates ---------------------------------------------------------------
        _R(
            "discharge_before_enrollment",
            "error",
            "row",
            "discharge_date is before enrollment_date",
            "correct one of the two dates",
        ),
        _R(
            "end_before_start",
            "error",
            "row",
            "a period ends before it starts",
            "correct one of the two dates",
        ),
        _R(
            "after_as_of",
            "warning",
            "row",
            "dated after the data cut-off (as_of)",
            "check the date, or use a later <param:as_of>",
        ),
        _R(
            "before_enrollment",
            "info",
            "table",
            "rows dated before enrollment are kept as history",
            "nothing to do; measures use events.before_enrollment to ignore them",
        ),
        _R(
            "before_birth",
            "error",
            "row",
            "dated before the participant's birth",
            "correct the date",
        ),
        _R(
            "assessment_window",
            "warning",
            "row",
            "assessment far outside its timepoint's window",
            "check the assessment date and timepoint",
        ),
    )
}

#: How far (days) an assessment may sit from its target before ``assessment_window`` warns.
#: intake: within 30 days of enrollment; followup_6m: 90-365 days after enrollment
#: (the measured window is 5-8 months; this flags only dates far outside it);
#: discharge: within 30 days of discharge_date.
ASSESSMENT_WINDOWS: dict[str, tuple[int, int]] = {
    "intake": (-30, 30),
    "followup_6m": (90, 365),
    "discharge": (-30, 30),
}


def rule(rule_id: str) -> Rule:
    """The rule with id ``rule_id``."""
    return RULES[rule_id]


def rules_table():  # -> pd.DataFrame (pandas imported lazily)
    """All rules as a DataFrame (id, severity, scope, title, fix), for docs and reports.

    Settings in ``fix`` are named as the current front end names them
    (:func:`recoverystats.errors.param`).
    """
    import pandas as pd

    return pd.DataFrame(
        [(r.id, r.severity, r.scope, r.title, r.fix_text()) for r in RULES.values()],
        columns=["rule", "severity", "scope", "title", "fix"],
    )
