"""Scan a finished output folder for identifiers, birth dates and unsuppressed small counts.

The quarterly report runs :func:`scan` on its output before publishing it and fails
closed: any finding of severity ``"error"`` means the folder is never moved into place.
"""

from __future__ import annotations

import html
import json
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recoverystats.errors import InvalidParameterError
from recoverystats.privacy.suppress import POLICY_MIN_CELL

__all__ = ["ScanResult", "scan", "FINDING_COLUMNS", "identifier_tokens"]

FINDING_COLUMNS: tuple[str, ...] = ("kind", "file", "member", "detail")

#: Extra participant/mentor columns whose values are treated as identifiers when present.
_NAME_COLUMN = re.compile(
    r"(^|_)(name|first_?name|last_?name|surname|full_?name|ssn|social_security|phone|email|"
    r"address|street|medicaid_id|mrn|doc_number|inmate_id|booking_id)($|_)", re.I
)
#: Characters an identifier token may contain internally; anything else is a boundary.
_RUN = re.compile(r"[A-Za-z0-9]+(?:[-_./:#][A-Za-z0-9]+)*")
_SEP = re.compile(r"([-_./:#])")
_ZIP_SUFFIXES = {".docx", ".xlsx", ".pptx", ".zip", ".odt", ".ods"}


@dataclass(frozen=True, slots=True, repr=False)
class ScanResult:
    """What :func:`scan` found.

    Attributes
    ----------
    findings
        One row per problem: ``kind`` (``identifier``, ``birth_date``, ``name``,
        ``small_count``, ``recoverable_count``, ``derived_statistic``, ``figure_step``,
        ``figure_data``), ``file`` (relative path), ``member``
        (zip member for .docx/.xlsx, else empty), ``detail`` (what was found, with the
        identifier itself masked).
    files_scanned
        Every file looked at (relative paths; zip members as ``file!member``).
    notes
        What could not be checked (e.g. identifiers too short to search safely).
    """

    findings: pd.DataFrame
    files_scanned: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """``True`` when nothing was found."""
        return len(self.findings) == 0

    def __bool__(self) -> bool:  # pragma: no cover - convenience
        return self.ok

    def __repr__(self) -> str:
        head = f"ScanResult(ok={self.ok}, files={len(self.files_scanned)}, findings={len(self.findings)})"
        if len(self.findings):
            head += "\n" + self.findings.head(20).to_string(index=False)
        return head

    # -- rich display (same renderer as every result and the report) ---------------------
    def _repr_html_(self) -> str:
        from recoverystats.results.render import render_html_table

        title = (f"Output scan: {'clean' if self.ok else f'{len(self.findings)} findings'} "
                 f"({len(self.files_scanned)} files scanned)")
        return render_html_table(self.findings, title=title, notes=tuple(self.notes))

    def to_markdown(self, digits: int = 3) -> str:
        """The findings as Markdown, followed by notes."""
        from recoverystats.results.render import render_markdown_table

        text = render_markdown_table(self.findings, digits=digits)
        if self.notes:
            text += "\n\n" + "\n".join(f"*Note:* {n}" for n in self.notes)
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``ok``, the findings as records, the files scanned and notes."""
        from recoverystats.results.base import json_safe

        return {"result": type(self).__name__, "ok": self.ok, "findings": json_safe(self.findings),
                "files_scanned": list(self.files_scanned), "notes": list(self.notes)}


def _mask(token: str) -> str:
    """Never echo an identifier in full (the finding itself may be logged)."""
    if len(token) <= 2:
        return "*" * len(token)
    return token[0] + "*" * (len(token) - 2) + token[-1]


def identifier_tokens(values: Iterable[Any]) -> tuple[set[str], set[str], int]:
    """Split identifier values into searchable tokens.

    Returns ``(token_ids, substring_ids, skipped)``: IDs matched as exact tokens
    (case-insensitive), IDs with unusual characters matched as plain substrings, and
    the number of IDs too short to search without false alarms.

    Notes
    -----
    An ID is searched when it has at least 4 characters, or contains both letters and
    digits (``P7``, ``A12``). Pure numbers must have 6+ digits or a leading zero
    (``0042``): ``2026`` or ``1234`` is a year or a count in ordinary report text. Short
    pure numbers and short words would raise false alarms and are skipped (counted in
    ``skipped``); the report never writes ID columns, so those are protected by
    construction.
    """
    tokens: set[str] = set()
    subs: set[str] = set()
    skipped = 0
    for v in values:
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            continue
        s = str(v).strip()
        if not s:
            continue
        has_alpha = any(ch.isalpha() for ch in s)
        has_digit = any(ch.isdigit() for ch in s)
        if len(s) < 4 and not (has_alpha and has_digit):
            skipped += 1
            continue
        if s.isdigit() and len(s) < 6 and not s.startswith("0"):
            # 4-5 digit numbers are years and counts in ordinary report text
            skipped += 1
            continue
        if _RUN.fullmatch(s):
            tokens.add(s.lower())
        else:
            subs.add(s.lower())
    return tokens, subs, skipped


def _date_strings(dates: Iterable[Any]) -> set[str]:
    out: set[str] = set()
    for d in dates:
        if d is None or d is pd.NaT or d is pd.NA:
            continue
        try:
            t = pd.Timestamp(d)
        except (TypeError, ValueError):
            continue
        if t is pd.NaT:
            continue
        out.update({
            t.strftime("%Y-%m-%d"), t.strftime("%m/%d/%Y"), t.strftime("%d/%m/%Y"),
            t.strftime("%Y%m%d"), t.strftime("%d.%m.%Y"), t.strftime("%Y/%m/%d"),
            f"{t.month}/{t.day}/{t.year}",
        })
    return {s.lower() for s in out}


def _runs(text: str) -> Iterator[str]:
    """Every candidate token: each maximal run and each contiguous sub-run of its parts.

    A decimal number (``0.123456``) is one word, so its digits after the point never
    match a numeric identifier.
    """
    for m in _RUN.finditer(text):
        run = m.group(0)
        parts = _SEP.split(run)  # word, sep, word, sep, ...
        words, seps = [parts[0]], []
        for k in range(1, len(parts), 2):
            sep, word = parts[k], parts[k + 1]
            if sep == "." and words[-1].isdigit() and word.isdigit():
                words[-1] = words[-1] + "." + word
            else:
                seps.append(sep)
                words.append(word)
        if len(words) == 1:
            yield words[0]
            continue
        if len(words) > 12:  # long runs: words and neighbouring pairs only
            for i in range(len(words)):
                yield words[i]
                if i + 1 < len(words):
                    yield words[i] + seps[i] + words[i + 1]
            continue
        for i in range(len(words)):
            acc = words[i]
            yield acc
            for j in range(i + 1, len(words)):
                acc = acc + seps[j - 1] + words[j]
                yield acc


def _xml_text(xml: str) -> str:
    """Text of Office XML with cell/paragraph boundaries kept as spaces and runs joined."""
    xml = re.sub(r"</w:p>|</w:tc>|<w:tab/>|<w:br/>|</c>|</si>|</row>|</a:p>|</t>", " ", xml)
    return html.unescape(re.sub(r"<[^>]+>", "", xml))


def _json_strings(obj: Any, out: list[str]) -> None:
    """Every key and string value of a JSON document (numbers cannot carry identifiers)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append(str(k))
            _json_strings(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _json_strings(v, out)
    elif isinstance(obj, str):
        out.append(obj)


def _png_text(data: bytes) -> str:
    """The text chunks (tEXt/iTXt/zTXt) of a PNG: the only place a PNG carries text."""
    import struct
    import zlib

    out = []
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if ctype in (b"tEXt", b"iTXt"):
            out.append(body.replace(b"\x00", b" ").decode("latin-1"))
        elif ctype == b"zTXt":
            key, _, rest = body.partition(b"\x00")
            try:
                out.append(key.decode("latin-1") + " " + zlib.decompress(rest[1:]).decode("latin-1"))
            except zlib.error:  # pragma: no cover - corrupt chunk
                out.append(key.decode("latin-1"))
        pos += 12 + length
    return "\n".join(out)


def _printable(data: bytes) -> str:
    """Printable ASCII runs of 6+ characters of an unknown binary file (like ``strings``)."""
    return "\n".join(m.decode("ascii") for m in re.findall(rb"[\x20-\x7e]{6,}", data))


#: XML namespace and schema URLs (W3C, Dublin Core, Office Open XML, ...) carry dates and
#: numbers of their own (``http://www.w3.org/1999/02/22-rdf-syntax-ns#``) that are not data.
_SCHEMA_URL = re.compile(
    r"https?://(?:www\.)?(?:w3\.org|purl\.org|schemas\.openxmlformats\.org|schemas\.microsoft\.com|"
    r"creativecommons\.org|matplotlib\.org|ns\.adobe\.com)[^\s\"'<>]*"
)


def _text_of(name: str, data: bytes) -> list[str]:
    """The texts to search in one file (or zip member) given its name and bytes."""
    low = name.lower()
    if low.endswith(".png"):
        return [_png_text(data)]
    if low.endswith(".json"):
        try:
            strings: list[str] = []
            _json_strings(json.loads(data.decode("utf-8")), strings)
            return ["\n".join(strings)]
        except (UnicodeDecodeError, json.JSONDecodeError):
            return [data.decode("utf-8", errors="replace")]
    if not _looks_text(data):
        return [_printable(data)]
    text = _SCHEMA_URL.sub(" ", data.decode("utf-8", errors="replace"))
    texts = []
    if re.search(r"(^|/)xl/worksheets/[^/]+\.xml$", low):
        # numeric cell values are numbers, not identifiers; strings live in sharedStrings
        def _drop_number(m: re.Match[str]) -> str:
            attrs = m.group(1)
            return m.group(0) if re.search(r't="(s|str|inlineStr)"', attrs) else f"<c{attrs}>"

        text = re.sub(r"<c(\s[^>]*)?>\s*<v>[^<]*</v>", _drop_number, text)
    if "base64," in text:
        import base64

        for m in re.finditer(r"data:([a-z]+/[a-z0-9.+-]+);base64,([A-Za-z0-9+/=]+)", text):
            try:
                payload = base64.b64decode(m.group(2))
            except ValueError:  # pragma: no cover - malformed base64
                continue
            texts += _text_of("embedded." + m.group(1).split("/")[-1].split("+")[0], payload)
        text = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", text)
    texts.append(text)
    if low.endswith((".xml", ".html", ".htm", ".svg", ".rels")):
        texts.append(_xml_text(text))
    return texts


def _texts(path: Path, root: Path) -> Iterator[tuple[str, str, str]]:
    """``(file, member, text)`` for every searchable text in ``path`` (zip members too)."""
    rel = path.relative_to(root).as_posix()
    yield rel, "", rel  # file names can leak too
    data = path.read_bytes()
    if path.suffix.lower() in _ZIP_SUFFIXES and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                yield rel, info.filename, info.filename
                for text in _text_of(info.filename, zf.read(info)):
                    yield rel, info.filename, text
        return
    for text in _text_of(rel, data):
        yield rel, "", text


def _looks_text(data: bytes) -> bool:
    return b"\x00" not in data[:4096]


def _identifier_values(prog: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """ID columns (one array per table column), name values, distinct birth dates."""
    ids: list[Any] = []
    names: list[Any] = []
    births: list[Any] = []
    for tname, cols in (("participants", ("participant_id",)), ("mentors", ("mentor_id",)),
                        ("matches", ("participant_id", "mentor_id")),
                        ("contacts", ("participant_id", "mentor_id")),
                        ("events", ("participant_id",)), ("assessments", ("participant_id",))):
        df = getattr(prog, tname, None)
        engine = getattr(prog, "engine_program", None)
        if engine is not None and tname not in ("participants", "mentors"):
            if not prog.rows(tname):  # no such table, or no rows kept
                continue
            # a report program on DuckDB/Spark holds only the participants and mentors; the IDs
            # of the other tables (e.g. mentor IDs that appear only in matches or contacts when
            # there is no mentors file) are fetched from the engine as distinct values. A column
            # that references a collected table holds only IDs of it: validation drops every
            # row whose ID is not there ("orphan", "parent_dropped"; mentors only when the
            # mentors file has rows), so those are not fetched (at 10M participants, the
            # distinct participant IDs of 100M events took over a minute)
            t = engine.table(tname)
            for c in cols:
                if c in t.columns and not _held_by_collected(prog, tname, c):
                    ids.append(t.select(c).distinct().to_pyarrow().column(0))
            continue
        if df is None or not len(df):
            continue
        for c in cols:
            if c in df:
                ids.append(df[c])
        if tname in ("participants", "mentors"):
            for c in df.columns:
                if _NAME_COLUMN.search(str(c)) and c not in ("participant_id", "mentor_id"):
                    names.extend(pd.unique(df[c].dropna().astype(str)))
            if "birth_date" in df:
                # distinct dates only: a date is formatted seven ways below, and 10M participants
                # share a few tens of thousands of birth dates (issue 17: 430 s -> 1 s at 10M)
                births.extend(pd.unique(df["birth_date"].dropna()).tolist())
    return ids, names, births


def _held_by_collected(prog: Any, table: str, column: str) -> bool:
    """Whether every value of ``table.column`` is an ID of a table the report program holds
    (its reference is checked by validation against a collected table)."""
    from recoverystats.schema.spec import TABLES

    ref = TABLES[table].references.get(column)
    if ref is None:
        return False
    parent = ref[0]
    if parent == "participants":
        return True
    if parent == "mentors":  # checked only when the mentors file has rows (io.build, engines.validate)
        flow = prog.flow
        hit = flow[flow["table"] == "mentors"] if "table" in flow else flow.iloc[0:0]
        return bool(len(hit)) and int(pd.to_numeric(hit["rows_read"]).iloc[0]) > 0
    return False


class _IdentifierIndex:
    """The searchable identifiers of a program, kept as one Arrow array (internal).

    :func:`identifier_tokens`'s rules, applied without a Python set of every ID: a program of
    10M participants would need ~1.5 GB for the strings and the set, and ~20 s to build them.
    IDs of 6+ characters are never skipped (both skip rules are about shorter IDs), so only
    the short ones and those that are not a plain token need the per-value Python rules; the
    long plain-token IDs stay a lower-cased Arrow array, and the tokens of the output are
    looked up in it in one :func:`pyarrow.compute.is_in` call.
    """

    def __init__(self, columns: Sequence[Any], extra: Iterable[Any] = ()) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        texts: list[Any] = []
        other: list[Any] = list(extra)
        for col in columns:
            try:
                arr = pa.array(pd.unique(col.dropna()) if isinstance(col, pd.Series) else col, from_pandas=True)
            except (pa.ArrowTypeError, pa.ArrowInvalid):  # mixed objects: the Python rules on str(v)
                other.extend(pd.unique(col.dropna()).tolist())
                continue
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if pa.types.is_dictionary(arr.type):  # the categories in use, not every category
                arr = arr.dictionary.take(pc.unique(arr.indices.drop_null()))
            if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
                texts.append(pc.utf8_trim_whitespace(arr.cast(pa.large_string())))
            else:  # numbers, mixed objects: the Python rules on str(v), as identifier_tokens
                other.extend(arr.to_pylist())
        long_tokens = pa.array([], type=pa.large_string())
        if texts:
            allv = pc.unique(pa.chunked_array(texts, type=pa.large_string()).combine_chunks())
            allv = allv.filter(pc.greater(pc.utf8_length(allv), 0))
            is_long = pc.greater_equal(pc.utf8_length(allv), 6)
            plain = pc.match_substring_regex(allv, "^" + _RUN.pattern + "$")
            fast = pc.and_(is_long, plain)
            long_tokens = pc.unique(pc.utf8_lower(allv.filter(fast)))
            other.extend(allv.filter(pc.invert(fast)).to_pylist())
        self.tokens, self.subs, self.skipped = identifier_tokens(other)
        self._long = long_tokens

    def matching(self, candidates: Iterable[str]) -> set[str]:
        """The lower-cased candidate tokens that are identifiers."""
        import pyarrow as pa
        import pyarrow.compute as pc

        cand = set(candidates)
        hit = {t for t in cand if t in self.tokens}
        if cand and len(self._long):
            arr = pa.array(sorted(cand), type=pa.large_string())
            hit.update(arr.filter(pc.is_in(arr, value_set=self._long)).to_pylist())
        return hit


def _read_results(root: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``results.json`` of an output folder, parsed once for every check of :func:`scan`.

    Returns ``(document, None)``, ``(None, None)`` when there is no results.json, or
    ``(None, reason)`` when it cannot be read.
    """
    rj = root / "results.json"
    if not rj.exists():
        return None, None
    try:
        doc = json.loads(rj.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return None, str(exc)
    return (doc, None) if isinstance(doc, dict) else (None, "not a JSON object")


def _check_tables(root: Path, min_cell: int, results: dict[str, Any] | None,
                  error: str | None) -> list[tuple[str, str, str, str]]:
    """Small counts and exact recoveries in ``results.json`` and ``tables.xlsx``."""
    from recoverystats.privacy.suppress import Margins, build_structure, recoverable

    found: list[tuple[str, str, str, str]] = []
    if error is not None:
        return [("unreadable", "results.json", "", f"results.json cannot be read: {error}")]
    if results is None:
        return found
    tables = results.get("tables", {})
    meta_by_sheet = {}
    for key, entry in tables.items():
        priv = entry.get("privacy") or {}
        counts = [c for c in priv.get("count_columns", []) if c]
        if not counts:
            continue
        df = pd.DataFrame(entry.get("rows", []))
        if not len(df):
            continue
        headers = entry.get("headers") or {}
        meta_by_sheet[entry.get("sheet", key)] = (key, counts, headers)
        for c in counts:
            if c not in df:
                continue
            v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
            bad = np.isfinite(v) & (v >= 1) & (v < min_cell)
            for i in np.flatnonzero(bad):
                found.append(("small_count", "results.json", "",
                              f"table {key!r} row {int(i)} column {c!r}: a count between 1 and {min_cell - 1} is shown"))
        # exact linear recovery from the published pattern
        margins = Margins.coerce(priv.get("margins"))
        try:
            filled = df.copy()
            for c in counts:
                filled[c] = pd.to_numeric(filled[c], errors="coerce").astype("float64")
            vals, A, published, labels, index = build_structure(filled, counts, margins)
        except Exception as exc:  # noqa: BLE001 - report as a finding, never crash the scan
            found.append(("unreadable", "results.json", "", f"table {key!r}: structure not checkable ({exc})"))
            continue
        unknown = ~np.isfinite(vals) | ~published
        rec = recoverable(A, unknown)
        for j in np.flatnonzero(rec & published):
            found.append(("recoverable_count", "results.json", "",
                          f"table {key!r}: suppressed {labels[j]} can be recovered from the published cells"))
        # hidden complements (n - events) that are computable and small
        hidden_vals = _solve_hidden(A, vals, published, rec)
        for j, val in hidden_vals.items():
            if 1 <= val < min_cell:
                found.append(("small_count", "results.json", "",
                              f"table {key!r}: {labels[j]} = a count between 1 and {min_cell - 1} can be computed"))
    xl = root / "tables.xlsx"
    if xl.exists() and meta_by_sheet:
        from openpyxl import load_workbook

        from recoverystats.results.render import label as col_label

        wb = load_workbook(xl, read_only=True, data_only=True)
        try:
            for ws in wb.worksheets:
                if ws.title not in meta_by_sheet:
                    continue
                key, counts, headers = meta_by_sheet[ws.title]
                wanted = {col_label(c): c for c in counts} | {c: c for c in counts}
                wanted |= {str(headers[c]): c for c in counts if c in headers}
                header_row = None
                cols: dict[int, str] = {}
                for r_i, row in enumerate(ws.iter_rows(values_only=True)):
                    if header_row is None:
                        hits = {j: wanted[str(v)] for j, v in enumerate(row) if v is not None and str(v) in wanted}
                        if hits:
                            header_row, cols = r_i, hits
                        continue
                    for j, c in cols.items():
                        v = row[j] if j < len(row) else None
                        if isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v < min_cell:
                            found.append(("small_count", "tables.xlsx", ws.title,
                                          f"sheet {ws.title!r} row {r_i + 1} column {c!r}: a count between 1 and {min_cell - 1} is shown"))
        finally:
            wb.close()
    return found


def _check_derived(results: dict[str, Any] | None, min_cell: int) -> list[tuple[str, str, str, str]]:
    """Statistics of ``results.json`` computed from suppressed counts (finding ``derived_statistic``).

    Two checks per table with a ``privacy`` entry:

    1. every published statistic one of whose input counts is suppressed: a derived column
       (``dependent_columns``, same row) or a ``derived`` entry (any cells);
    2. for the statistics the attacker models (:data:`~recoverystats.privacy.derived.MODELLED_STATISTICS`:
       percentages/ratios, categorical SMDs), the enumeration attacker
       (:func:`~recoverystats.privacy.derived.derived_bounds`): a suppressed or hidden count
       whose range the statistics narrow to one that fails the interval rule while it can
       hold a small count (lower end below ``min_cell``), or a group of cells too large to
       enumerate.
    """
    from recoverystats.privacy.derived import MODELLED_STATISTICS, derived_bounds, table_statistics
    from recoverystats.privacy.intervals import INTEGRAL_TOL, attacker_bounds, interval_shortfall
    from recoverystats.privacy.suppress import Margins, build_structure

    found: list[tuple[str, str, str, str]] = []
    if results is None:
        return found  # no results.json, or unreadable: reported by _check_tables
    for key, entry in (results.get("tables") or {}).items():
        priv = entry.get("privacy") or {}
        counts = [c for c in priv.get("count_columns", []) if c]
        df = pd.DataFrame(entry.get("rows", []))
        if not counts or not len(df):
            continue
        supp = {(int(i), str(c)) for i, c in entry.get("suppressed_cells", [])}

        def shown(i: int, c: str, df: pd.DataFrame = df) -> bool:
            if c not in df or not 0 <= i < len(df):
                return False
            v = df.iat[i, df.columns.get_loc(c)]
            return v is not None and not (isinstance(v, float) and np.isnan(v))

        for dcol, srcs in (priv.get("dependent_columns") or {}).items():
            for i in range(len(df)):
                hit = [s for s in srcs if (i, s) in supp]
                if hit and shown(i, dcol):
                    found.append(("derived_statistic", "results.json", "",
                                  f"table {key!r} row {i} column {dcol!r}: published, but computed from the "
                                  f"suppressed count(s) {', '.join(map(repr, hit))} of its row"))
        derived = list(priv.get("derived") or [])
        risky = []
        for d in derived:
            r, c = int(d["row"]), str(d["column"])
            hit = [(int(a), str(b)) for a, b in d.get("inputs", []) if (int(a), str(b)) in supp]
            if hit and shown(r, c):
                found.append(("derived_statistic", "results.json", "",
                              f"table {key!r} row {r} column {c!r}: {d.get('statistic')} is published, but computed "
                              f"from {len(hit)} suppressed count(s) (first: row {hit[0][0]} column {hit[0][1]!r})"))
                if d.get("statistic") in MODELLED_STATISTICS:
                    risky.append(d)
        if not risky:
            continue
        # the enumeration attacker: does a published statistic narrow a suppressed count?
        try:
            filled = df.copy()
            for c in counts:
                filled[c] = pd.to_numeric(filled[c], errors="coerce").astype("float64") if c in filled else np.nan
            vals, A, published, labels, index = build_structure(filled, counts, Margins.coerce(priv.get("margins")))
            unknown = ~np.isfinite(vals) | ~published
            for (i, c), j in index.items():
                if (i, c) in supp:
                    unknown[j] = True
            stats = table_statistics(risky, df, index)
            is_target = ~published.copy()
            is_target[[index[cell] for cell in supp if cell in index]] = True
            targets = np.flatnonzero(unknown & is_target)
            for zero_shown in (True, False):
                lower = np.zeros(vals.size)
                if zero_shown:
                    lower[published & unknown] = 1.0  # zeros are printed: a suppressed count is >= 1
                lo_lin, hi_lin = attacker_bounds(A, np.where(unknown, np.nan, vals), unknown, targets=targets,
                                                 lower=lower)
                res = derived_bounds(A, np.where(unknown, np.nan, vals), unknown, statistics=stats,
                                     targets=targets, lower=lower)
                if res.n_completions or not res.exhaustive:
                    break
        except Exception as exc:  # noqa: BLE001 - report as a finding, never crash the scan
            found.append(("derived_statistic", "results.json", "",
                          f"table {key!r}: statistics computed from suppressed counts could not be checked ({exc})"))
            continue
        if not res.exhaustive:
            found.append(("derived_statistic", "results.json", "",
                          f"table {key!r}: statistics computed from suppressed counts cannot be verified by "
                          f"enumeration ({res.reason})"))
            continue
        short = interval_shortfall(res.lower, res.upper, min_cell, published[targets])
        for k, j in enumerate(targets):
            narrowed = res.lower[k] > lo_lin[k] + INTEGRAL_TOL or res.upper[k] < hi_lin[k] - INTEGRAL_TOL
            if narrowed and res.lower[k] < min_cell and short[k] > INTEGRAL_TOL:
                found.append(("derived_statistic", "results.json", "",
                              f"table {key!r}: the published statistics narrow suppressed {labels[j]} to a range "
                              f"narrower than the interval rule (width {min_cell - 1}, reaching {min_cell})"))
    return found


def _threshold_stamp(root: Path, doc: dict[str, Any] | None) -> tuple[bool, list[tuple[str, str, str, str]]]:
    """Whether the output is stamped "not for release", and where a promised stamp is missing.

    The output counts as stamped when ``results.json`` says so (``report.stamp``); then the
    stamp must also be on ``report.html``, in the page header of ``report.docx`` and in the
    first row and print header of every sheet of ``tables.xlsx`` (each file that exists).
    """
    from recoverystats.report.report import STAMP

    if doc is None:
        return False, []
    report = doc.get("report")
    stamp = report.get("stamp") if isinstance(report, dict) else None
    if not stamp:
        return False, []
    missing: list[tuple[str, str, str, str]] = []

    def miss(file: str, member: str, where: str) -> None:
        missing.append(("stamp_missing", file, member,
                        f"results.json says the output is stamped {STAMP!r} but {where} is not"))

    html_path = root / "report.html"
    if html_path.exists() and STAMP not in html.unescape(html_path.read_text(encoding="utf-8", errors="replace")):
        miss("report.html", "", "the HTML page")
    docx_path = root / "report.docx"
    if docx_path.exists():
        try:
            with zipfile.ZipFile(docx_path) as z:
                headers = [n for n in z.namelist() if re.fullmatch(r"word/header\d*\.xml", n)]
                if not any(STAMP.upper() in _xml_text(z.read(n).decode("utf-8", "replace")) for n in headers):
                    miss("report.docx", "word/header*.xml", "the page header of the Word document")
        except zipfile.BadZipFile:
            miss("report.docx", "", "the Word document (unreadable)")
    xl = root / "tables.xlsx"
    if xl.exists():
        from openpyxl import load_workbook

        wb = load_workbook(xl)
        try:
            for ws in wb.worksheets:
                if str(ws["A1"].value or "") != STAMP.upper() or STAMP not in str(ws.oddHeader.center.text or ""):
                    miss("tables.xlsx", ws.title, f"sheet {ws.title!r} (first row and print header)")
        finally:
            wb.close()
    return True, missing


def _check_releases(doc: dict[str, Any] | None, previous: Sequence[Any],
                    min_cell: int) -> list[tuple[str, str, str, str]]:
    """Cells that differ from an earlier release by a small count (finding ``release_difference``).

    The direct attack on two releases: the same cell published in both, its change between
    1 and ``min_cell - 1``. (Combinations of several changes with the margins are what
    :func:`suppress` with ``previous=`` protects against by linear programming; the scan
    checks the direct differences independently of it.)
    """
    if not previous:
        return []
    from recoverystats.report.ledger import PreviousRelease, paired_cells, read_previous

    try:
        report = doc["report"]  # type: ignore[index]
        cells = doc["ledger"]["cells"]  # type: ignore[index]
    except (KeyError, TypeError):
        return [("release_difference", "results.json", "",
                 "earlier releases were given but the output has no results.json with a release ledger; "
                 "differences with them cannot be checked")]
    if not isinstance(cells, dict):
        return [("release_difference", "results.json", "", "the release ledger of the output holds no cells")]
    releases = [r for r in previous if isinstance(r, PreviousRelease)]
    paths = [r for r in previous if not isinstance(r, PreviousRelease)]
    if paths:
        releases += read_previous(paths, program=str(report.get("program") or ""),
                                  group_column=str(doc["ledger"].get("group_column") or ""),
                                  quarter=str(report.get("quarter") or ""),
                                  as_of=pd.Timestamp(report.get("as_of")))
    found: list[tuple[str, str, str, str]] = []
    for release in releases:
        for cid, now, then in paired_cells(doc, release):
            if 1 <= abs(now - then) < min_cell:
                found.append(("release_difference", "results.json", "",
                              f"cell {cid}: its change since the release of {release.quarter} "
                              f"({Path(release.path).name}) is a count between 1 and {min_cell - 1}"))
    return found


def _solve_hidden(A: np.ndarray, vals: np.ndarray, published: np.ndarray, rec: np.ndarray) -> dict[int, float]:
    """Values of hidden cells that a reader can compute (least squares on the known cells)."""
    hidden_rec = np.flatnonzero(rec & ~published)
    if hidden_rec.size == 0:
        return {}
    known = np.isfinite(vals) & published
    unknown = ~known
    rhs = -A[:, known] @ vals[known]
    sol, *_ = np.linalg.lstsq(A[:, unknown], rhs, rcond=None)
    pos = {int(j): k for k, j in enumerate(np.flatnonzero(unknown))}
    return {int(j): float(np.round(sol[pos[int(j)]], 6)) for j in hidden_rec}


def scan(out_dir: str | Path, prog: Any, *, min_cell: int | None = 11,
         extra_identifiers: Sequence[str] = (), previous: Sequence[Any] = ()) -> ScanResult:
    """Check a finished output folder for identifiers, birth dates and small counts.

    Parameters
    ----------
    out_dir
        The output folder (every file below it is read; ``.docx``/``.xlsx``/``.zip``
        members are unpacked and read too, SVG/HTML/JSON as text, images as bytes).
    prog
        The :class:`~recoverystats.ProgramData` the output was made from: its
        participant and mentor IDs (from every table), name-like extra columns
        (``name``, ``first_name``, ``phone``, ``email``, ``address``, ...) and birth
        dates are searched for.
    min_cell
        Counts ``1 .. min_cell - 1`` must not appear in the count columns of the tables in
        ``results.json``/``tables.xlsx``, nor be recoverable from them. ``None`` skips the
        small-count checks of a stamped output. An output that is not stamped "contains
        small cells — not for release" (``report.stamp`` in ``results.json``) is checked at
        the policy threshold :data:`~recoverystats.privacy.POLICY_MIN_CELL` (11) at least,
        whatever ``min_cell`` says; a stamped output must carry the stamp on the HTML page,
        the Word page header and every sheet (else a ``stamp_missing`` finding).
    extra_identifiers
        Further strings that must not appear (e.g. staff names).
    previous
        Earlier releases of the same program (report folders, their ``results.json``, or
        :class:`~recoverystats.report.ledger.PreviousRelease`): every count cell published in
        both (same stable cell id in ``results.json`` ``ledger.cells``; last quarter's key
        numbers with that quarter's own) must be equal or differ by at least ``min_cell``
        (finding ``release_difference``, naming the cell and the earlier quarter, never
        the values). :meth:`Report.save` passes the releases the report was built against.

    Returns
    -------
    ScanResult
        ``findings`` (empty when clean), ``files_scanned``, ``notes``.

    Notes
    -----
    Identifier rules (chosen so that ordinary text does not raise false alarms): IDs are
    matched case-insensitively as exact tokens, where a token is a maximal run of
    letters/digits, optionally joined by ``- _ . / : #``, or any contiguous part of such a
    run (so ``P0001`` is found in ``P0001``, ``id=P0001;`` and ``P0001-2026`` but not in
    ``XP00012``). IDs shorter than 4 characters are searched only when they mix letters
    and digits; others are skipped and counted in ``notes``. Birth dates are searched in
    the formats ``YYYY-MM-DD``, ``MM/DD/YYYY``, ``DD/MM/YYYY``, ``YYYYMMDD``,
    ``DD.MM.YYYY``, ``YYYY/MM/DD`` and ``M/D/YYYY``. Names from name-like columns are
    matched case-sensitively as exact tokens (4+ characters). Excel date serial numbers
    are not searched (the report writes no dates of birth and no date columns of people).
    Small counts are checked in the tables of ``results.json`` whose ``privacy`` entry
    names count columns, using the same exact-linear-recovery test as :func:`suppress`,
    and in the matching sheets of ``tables.xlsx``. Statistics computed from counts
    (``dependent_columns`` and the ``derived`` entries of a table's ``privacy``) are checked
    too (finding ``derived_statistic``): none may be published with a suppressed input, and
    ratios and categorical SMDs are put through the enumeration attacker of
    :func:`recoverystats.privacy.derived_bounds`. Figures (every ``*.svg`` and every inline
    ``<svg>`` of an HTML file): each monotone step curve is read back into data units with its
    y tick labels and each drop ``1 - y_k / y_{k-1}`` is matched to fractions ``d / n``
    (``n`` at most the participants plus ``min_cell - 1``) within the printed precision; a
    drop that only a ``d < min_cell`` fits is a ``figure_step`` finding. The figure data in
    ``results.json`` must hold no count ``1 .. min_cell - 1``, and every drawn step height
    must be one of the figure's published step estimates (``figure_data``). PNG files carry
    no coordinates to read; they are drawn from the same published data. Hand-written: no
    library does this.
    """
    root = Path(out_dir)
    if not root.is_dir():
        raise InvalidParameterError(f"out_dir: {str(root)!r} is not a folder; pass the report's output folder.")
    ids, names, births = _identifier_values(prog)
    index = _IdentifierIndex(ids, extra_identifiers)
    subs, skipped = index.subs, index.skipped
    name_tokens = {str(n).strip() for n in names if len(str(n).strip()) >= 4}
    name_phrases = {n for n in name_tokens if not _RUN.fullmatch(n)}
    name_tokens -= name_phrases
    dates = _date_strings(births)
    findings: list[tuple[str, str, str, str]] = []
    files: list[str] = []
    seen: set[tuple[str, str, str, str]] = set()

    def add(row: tuple[str, str, str, str]) -> None:
        if row not in seen:
            seen.add(row)
            findings.append(row)

    # first every output text and its tokens, then one lookup of all tokens among the IDs,
    # then the findings in file and text order
    docs: list[tuple[str, str, str, list[str]]] = []
    candidates: set[str] = set()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        files.append(rel)
        for fname, member, text in _texts(path, root):
            if member and f"{fname}!{member}" not in files:
                files.append(f"{fname}!{member}")
            toks = list(_runs(text))
            candidates.update(t.lower() for t in toks)
            docs.append((fname, member, text, toks))
    id_hits = index.matching(candidates)
    for fname, member, text, toks in docs:
        low = text.lower()
        for tok in toks:
            t = tok.lower()
            if t in id_hits:
                add(("identifier", fname, member, f"identifier {_mask(tok)} appears"))
            if t in dates:
                add(("birth_date", fname, member, f"a participant's date of birth ({_mask(tok)}) appears"))
            if tok in name_tokens:
                add(("name", fname, member, f"a name ({_mask(tok)}) appears"))
        for s in subs:
            if s in low:
                add(("identifier", fname, member, f"identifier {_mask(s)} appears"))
        for s in name_phrases:
            if s in text:
                add(("name", fname, member, f"a name ({_mask(s)}) appears"))
    del docs
    results, results_error = _read_results(root)
    stamped, stamp_rows = _threshold_stamp(root, results)
    for row in stamp_rows:
        add(row)
    if not stamped:
        # an output that may be released is checked at the policy threshold, whatever
        # min_cell it was built (or is scanned) with: lowering min_cell cannot pass the scan
        min_cell = max(int(min_cell or 0), POLICY_MIN_CELL)
    if min_cell is not None:
        for row in _check_tables(root, int(min_cell), results, results_error):
            add(row)
        for row in _check_derived(results, int(min_cell)):
            add(row)
        for row in _check_figures(root, int(min_cell), n_max=len(prog.participants) + int(min_cell) - 1):
            add(row)
        for row in _check_releases(results, previous, int(min_cell)):
            add(row)
    notes = []
    if skipped:
        notes.append(f"{skipped} identifier value(s) shorter than 4 characters and not mixing letters "
                     "and digits were not searched (they would match ordinary text).")
    if min_cell is None:
        notes.append("small-count checks skipped (unsuppressed output, stamped 'not for release').")
    return ScanResult(findings=pd.DataFrame(findings, columns=list(FINDING_COLUMNS)),
                      files_scanned=tuple(files), notes=tuple(notes))


# ------------------------------------------------------------------------------------------
# figures (issue 11): what an SVG's coordinates give back
# ------------------------------------------------------------------------------------------
def _svg_documents(root: Path) -> Iterator[tuple[str, str, str]]:
    """(file, figure key, svg text) of every SVG below ``root``: ``*.svg`` files and the
    inline ``<svg>`` elements of HTML files (their ids are prefixed with the figure key)."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        if suffix == ".svg":
            text = path.read_text(encoding="utf-8", errors="replace")
            yield rel, path.stem, text[text.find("<svg"):]
        elif suffix in (".html", ".htm"):
            text = path.read_text(encoding="utf-8", errors="replace")
            for m in re.finditer(r"<svg\b.*?</svg>", text, flags=re.S):
                svg = m.group(0)
                key = re.search(r'id="([^"]+?)-(?:figure_1|axes_1|patch_1)"', svg)
                yield rel, key.group(1) if key else "", svg


def _check_figures(root: Path, min_cell: int, *, n_max: int) -> list[tuple[str, str, str, str]]:
    """Figure checks: no step curve of any SVG rests on fewer than ``min_cell`` people (the
    reader's rational reconstruction of each drop, :func:`privacy.figures.svg_step_findings`);
    the figure data published in ``results.json`` holds no count 1..min_cell-1; and every
    drawn step height is one of the figure's published step estimates."""
    from recoverystats.privacy.figures import (
        figure_data_findings,
        svg_matches_data,
        svg_step_findings,
    )

    found: list[tuple[str, str, str, str]] = []
    published: dict[str, dict[str, Any]] = {}
    res = root / "results.json"
    if res.is_file():
        try:
            doc = json.loads(res.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            doc = {}
        for f in doc.get("figures", []) if isinstance(doc, dict) else []:
            if not isinstance(f, dict):
                continue
            # a figure listed without data publishes no step data: any step curve in it is unpublished
            published[str(f.get("key"))] = f["data"] if isinstance(f.get("data"), dict) else {}
            if isinstance(f.get("data"), dict):
                for msg in figure_data_findings(f["data"], min_cell=min_cell):
                    found.append(("figure_data", "results.json", "", f"figure {f.get('key')}: {msg}"))
    for fname, key, svg in _svg_documents(root):
        for msg in svg_step_findings(svg, min_cell=min_cell, n_max=n_max):
            found.append(("figure_step", fname, "", f"figure {key}: {msg}"))
        if key in published:
            for msg in svg_matches_data(svg, published[key]):
                found.append(("figure_data", fname, "", f"figure {key}: {msg}"))
    return found
