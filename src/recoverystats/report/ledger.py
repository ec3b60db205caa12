"""The release ledger: earlier reports of the same program, read back from their ``results.json``.

Two releases of the same program can be subtracted: the cumulative counts of the 2026Q2
and 2026Q3 reports give the quarter's new counts, and a re-run of a quarter on data with
one participant removed moves every cell that person is counted in by exactly 1. The
report therefore reads the ``results.json`` of the earlier releases it is given
(``quarterly(..., previous=[...])``, ``recoverystats report --previous DIR``,
``[privacy] previous = [...]``) and protects every change since them: each count cell
carries a stable id (:func:`~recoverystats.report.model.cell_id`), and a cell whose id
was published earlier gets the earlier value as a constant in its table's suppression
(:func:`recoverystats.privacy.suppress`, ``previous=``), so that the difference is never
a count between 1 and ``min_cell - 1`` that a reader can work out or pin to a narrow range.

What the ledger cannot protect is stated in ``docs/privacy.md`` ("Earlier releases").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recoverystats.errors import InvalidParameterError

__all__ = ["PreviousRelease", "read_previous", "LEDGER_FORMAT"]

#: Version of the ``ledger`` section of ``results.json`` (bumped if cell ids change).
LEDGER_FORMAT = 1


@dataclass(frozen=True, slots=True)
class PreviousRelease:
    """One earlier release of the program, as read from its ``results.json``.

    Attributes
    ----------
    path
        The ``results.json`` read.
    quarter, as_of
        The release's quarter and data cut-off.
    program
        The program name it was made for (``[program]`` / report config ``program``).
    generated_at
        When it was written (``report.generated_at``).
    inputs
        ``(table, sha256)`` of each input file (to tell a re-run on the same data from a
        re-run on changed data).
    cells
        Cell id -> published value (``None``: suppressed or not available).
    """

    path: str
    quarter: str
    as_of: pd.Timestamp
    program: str
    generated_at: str | None
    inputs: tuple[tuple[str, str], ...]
    cells: Mapping[str, float | None] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-safe description recorded in the new report's ``ledger.previous`` (no values)."""
        return {"file": Path(self.path).name, "quarter": self.quarter, "as_of": self.as_of.date().isoformat(),
                "generated_at": self.generated_at, "cells": len(self.cells)}


def _results_path(item: str | Path) -> Path:
    path = Path(item)
    if path.is_dir():
        path = path / "results.json"
        if not path.is_file():
            raise InvalidParameterError(
                f"previous: {str(item)!r} is a folder without results.json; pass the folder of an earlier report "
                "(or its results.json)."
            )
    elif not path.is_file():
        raise InvalidParameterError(
            f"previous: {str(item)!r} does not exist; pass the folder of an earlier report (or its results.json)."
        )
    return path


def read_previous(paths: Sequence[str | Path], *, program: str, group_column: str, quarter: str,
                  as_of: pd.Timestamp) -> list[PreviousRelease]:
    """Read and check the earlier releases given to the ledger.

    Parameters
    ----------
    paths
        Report folders (holding ``results.json``) or ``results.json`` files.
    program, group_column
        Identity of the program being reported: an earlier release made for another
        program name, or comparing another group column, is refused.
    quarter, as_of
        The report being built: an earlier release must not have a later cut-off. A
        release of the same quarter is a re-release (accepted; the caller warns).

    Returns
    -------
    list of PreviousRelease
        In order of ``as_of`` (each file once).

    Raises
    ------
    InvalidParameterError
        A path that is not a report folder or ``results.json``, a file that is not JSON or
        not a recoverystats ``results.json``, one written before cell ids existed (no
        ``ledger`` section), another program, or a later cut-off.
    """
    out: list[PreviousRelease] = []
    seen: set[Path] = set()
    for item in paths:
        path = _results_path(item)
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        where = f"previous: {str(path)!r}"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise InvalidParameterError(f"{where} is not a text file; pass an earlier report's results.json.") from None
        except json.JSONDecodeError as exc:
            raise InvalidParameterError(
                f"{where} is not valid JSON ({exc.msg} at line {exc.lineno}); pass an earlier report's results.json."
            ) from None
        report = doc.get("report") if isinstance(doc, dict) else None
        if not isinstance(report, dict) or not isinstance(doc.get("tables"), dict) or "as_of" not in report:
            raise InvalidParameterError(
                f"{where} is not a recoverystats results.json (no 'report' and 'tables' sections); pass the "
                "results.json of an earlier quarterly report."
            )
        ledger = doc.get("ledger")
        if not isinstance(ledger, dict) or not isinstance(ledger.get("cells"), dict):
            raise InvalidParameterError(
                f"{where} has no cell ids (it was written by a version without the release ledger); build that "
                "quarter's report again with this version from the data it was made from, and pass the new one."
            )
        if ledger.get("format") != LEDGER_FORMAT:
            raise InvalidParameterError(
                f"{where}: ledger format {ledger.get('format')!r} is not the one this version reads "
                f"({LEDGER_FORMAT}); build that quarter's report again with this version."
            )
        prev_program = str(report.get("program") or "")
        if program and prev_program and prev_program != program:
            raise InvalidParameterError(
                f"{where} is a report of program {prev_program!r}, not {program!r}; the ledger holds earlier "
                "releases of the same program only."
            )
        prev_group = str(ledger.get("group_column") or "")
        if prev_group and prev_group != group_column:
            raise InvalidParameterError(
                f"{where} compares groups of column {prev_group!r}, this report {group_column!r}; its cells are not "
                "the cells of this report (use the same [groups] column, or leave that release out)."
            )
        try:
            prev_as_of = pd.Timestamp(report["as_of"])
        except (TypeError, ValueError):
            raise InvalidParameterError(f"{where}: report.as_of {report.get('as_of')!r} is not a date.") from None
        if prev_as_of > as_of:
            raise InvalidParameterError(
                f"{where} is the release of {report.get('quarter')} (data to {prev_as_of.date()}), later than this "
                f"report ({quarter}, data to {as_of.date()}); the ledger holds earlier releases only."
            )
        cells: dict[str, float | None] = {}
        for k, v in ledger["cells"].items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise InvalidParameterError(
                    f"{where}: ledger cell {k!r} holds {v!r}; published counts are non-negative numbers (the file "
                    "was edited or damaged)."
                )
            cells[str(k)] = None if v is None else float(v)
        inputs = tuple(sorted((str(r.get("table")), str(r.get("sha256")))
                              for r in (doc.get("provenance") or {}).get("inputs") or [] if isinstance(r, dict)))
        out.append(PreviousRelease(path=str(path), quarter=str(report.get("quarter") or ""), as_of=prev_as_of,
                                   program=prev_program, generated_at=report.get("generated_at"), inputs=inputs,
                                   cells=cells))
    return sorted(out, key=lambda r: (r.as_of, r.path))


def rerelease_changes(release: PreviousRelease, cells: Mapping[str, float | None],
                      raw: Mapping[str, float | None], inputs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """How a re-release of the same quarter differs from the earlier one (counts of cells, no values).

    ``cells_changed``: cells published in the earlier release whose value (before
    suppression) is different now; ``cells_now_suppressed``: those of them, and any other
    cell published then, that are suppressed now.
    """
    common = [k for k in raw if k in release.cells and release.cells[k] is not None]
    changed = sum(1 for k in common if raw[k] != release.cells[k])
    newly = sum(1 for k in common if cells.get(k) is None)
    return {"quarter": release.quarter, "file": Path(release.path).name, "generated_at": release.generated_at,
            "inputs_changed": tuple(sorted(inputs)) != release.inputs, "cells_changed": changed,
            "cells_now_suppressed": newly}


def paired_cells(later: Mapping[str, Any], earlier: PreviousRelease) -> list[tuple[str, float, float]]:
    """Cells that hold the same quantity in a ``results.json`` and an earlier release.

    The same stable cell id, and last quarter's key numbers (``key_numbers:…:last_*``) with
    the ``this_*`` numbers of the report of that quarter (the key-numbers table repeats
    them). Only cells published (not ``None``) in both are returned, as
    ``(cell id, value now, earlier value)``.
    """
    cells = (later.get("ledger") or {}).get("cells") or {}
    quarter = str((later.get("report") or {}).get("quarter") or "")
    prev_quarter = str((later.get("provenance") or {}).get("previous_quarter") or "")
    out: list[tuple[str, float, float]] = []
    for k, v in cells.items():
        k2 = k
        if k.startswith("key_numbers:") and ":last_" in k:
            if earlier.quarter == quarter or prev_quarter != earlier.quarter:
                continue
            table, row, col = k.split(":", 2)
            k2 = f"{table}:{row.replace(f'@{quarter}', f'@{earlier.quarter}')}:{col.replace('last_', 'this_', 1)}"
        w = earlier.cells.get(k2)
        if v is not None and w is not None:
            out.append((k, float(v), float(w)))
    return out
