"""``read_program``: load a program's exports onto the canonical data model."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from recoverystats._checks import check_option
from recoverystats.errors import InvalidParameterError
from recoverystats.io.mapping import ProgramMapping, TableMapping, load_mapping
from recoverystats.io.program import ProgramData
from recoverystats.io.readers import (
    SUFFIXES,
    RawTable,
    ReadFailure,
    read_file,
    read_sql,
    sha256_file,
)
from recoverystats.schema.rules import RULES
from recoverystats.schema.spec import TABLE_NAMES

MAPPING_NAME = "program.toml"


def _failure(exc: ReadFailure, table: str, file: str) -> dict[str, Any]:
    r = RULES[exc.rule]
    return {
        "rule": exc.rule,
        "severity": r.severity,
        "table": table,
        "file": file,
        "line": None,
        "column": exc.column,
        "value": exc.value,
        "message": f"{exc.message}; fix: {r.fix_text(table=table, column=exc.column)} [{exc.rule}]",
        "action": "rejected" if r.severity == "error" else "",
    }


def _mapped_path(given: str, root: Path, table: str, key: str) -> Path:
    """A ``file``/``database`` path of ``[tables.<table>]``, confined to the mapping's folder.

    A relative path is resolved against ``root`` (the folder holding ``program.toml``)
    and must stay inside it after ``..`` and symbolic links are resolved; reading a file
    elsewhere takes an absolute path, written out in the mapping. Hand-written: a few
    lines of :mod:`pathlib`.
    """
    path = Path(given)
    if path.is_absolute():
        return path
    full = root / path
    inside = root.resolve()
    target = full.resolve()
    if target != inside and inside not in target.parents:
        raise ReadFailure(
            "mapping_invalid",
            f"program.toml [tables.{table}] {key} = {given!r} points outside the mapping's "
            f"folder {str(root)!r}; relative paths must stay inside it (write an absolute path "
            "to read a file elsewhere on purpose)",
        )
    return full


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def read_program(
    source: str | Path,
    *,
    as_of: Any = None,
    on_error: Literal["raise", "drop"] = "raise",
    mapping: str | Path | Mapping[str, Any] | None = None,
) -> ProgramData:
    """Load and validate a program's exports.

    Parameters
    ----------
    source
        A folder holding one file per table named by its canonical stem
        (``participants``, ``mentors``, ``matches``, ``contacts``, ``events``,
        ``assessments``) as ``.csv``/``.tsv``, ``.parquet``, ``.xlsx``, ``.sav`` or
        ``.dta``; or a TOML mapping file (``program.toml``). A folder that contains a
        ``program.toml`` is read through it.
    as_of
        The data cut-off (e.g. the quarter's last day). Rows dated after it are
        reported (``after_as_of`` warnings). Defaults to ``[program] as_of`` in the
        mapping, else no cut-off.
    on_error
        ``"raise"`` (default): any error stops the load with
        :class:`~recoverystats.errors.DataValidationError` listing every problem.
        ``"drop"``: rows with errors are dropped (and rows that point at a dropped
        participant or mentor), each recorded in ``.validation`` with its reason and
        counted in ``.flow``. Problems with a whole file or table (a missing required
        column, an unreadable file) always raise.
    mapping
        A ``program.toml`` path or an equivalent dict, overriding any
        ``program.toml`` in the folder. Relative ``file``/``database`` paths in a
        mapping file are resolved against the mapping file's folder (in a dict, against
        the ``source`` folder) and must stay inside it (``..`` or a symbolic link leading
        out is a ``mapping_invalid`` error); an absolute path reads a file anywhere. The
        format is documented in ``docs/data-model.md``.

    Returns
    -------
    ProgramData
        Typed tables (IDs as text, dates as ``datetime64[ns]``, extra columns kept
        after the canonical ones), ``validation`` (every finding), ``flow`` (rows read,
        kept and dropped per table; read = kept + dropped) and ``sources`` (each file
        read with its SHA-256).

    Raises
    ------
    DataValidationError
        Errors in the data or the mapping (all of them, with file, line, column,
        value, rule and fix).
    InvalidParameterError
        ``source`` does not exist, or an argument has a value that is not allowed.

    Notes
    -----
    Hand-written: no maintained library validates this data model. CSV files are read
    with ``pyarrow.csv`` with every column as text (so ``007`` stays ``007``), then
    coerced and checked column-wise (see :mod:`recoverystats.io.build`). The rules are
    listed in :data:`recoverystats.schema.rules.RULES`. Comparable in spirit to R's
    ``readr::read_csv`` + ``pointblank`` validation.

    Examples
    --------
    >>> import recoverystats as rs
    >>> prog = rs.read_program("data/sample")  # doctest: +SKIP
    >>> prog.flow  # doctest: +SKIP
    """
    check_option("on_error", on_error, Literal["raise", "drop"])
    if not isinstance(source, (str, Path)):
        raise InvalidParameterError(
            f"source must be a folder or a program.toml path; got {type(source).__name__}."
        )
    src = Path(source)
    if not src.exists():
        raise InvalidParameterError(
            f"source: {str(src)!r} does not exist; give a folder of exports or a program.toml file."
        )
    if src.is_file() and src.suffix.lower() != ".toml":
        raise InvalidParameterError(
            f"source: {str(src)!r} is a file; give the folder that holds the table files, or a program.toml mapping."
        )
    mapping_path: Path | None = None
    if mapping is not None:
        if isinstance(mapping, (str, Path)):
            mapping_path = Path(mapping)
        elif not isinstance(mapping, Mapping):
            raise InvalidParameterError(
                f"mapping must be a path to program.toml or a dict; got {type(mapping).__name__}."
            )
        prog_map = load_mapping(mapping)
    elif src.is_file():
        mapping_path = src
        prog_map = load_mapping(src)
    elif (src / MAPPING_NAME).is_file():
        mapping_path = src / MAPPING_NAME
        prog_map = load_mapping(mapping_path)
    else:
        prog_map = ProgramMapping(tables={})
    base = src if src.is_dir() else src.parent
    # relative file/database paths in a mapping file are resolved against its own folder
    # (a dict mapping: against the source folder) and may not leave it
    root = mapping_path.parent if mapping_path is not None else base
    if as_of is None and prog_map.as_of is not None:
        as_of = prog_map.as_of

    findings: list[dict[str, Any]] = []
    sources: list[tuple[str, str, str, int]] = []
    if mapping_path is not None:
        digest, size = sha256_file(mapping_path)
        sources.append(("mapping", str(mapping_path), digest, size))

    # canonical-stem files in the folder (used for tables the mapping does not name)
    found: dict[str, list[Path]] = {}
    mapped_files = {(root / t.file).resolve() for t in prog_map.tables.values() if t.file}
    mapped_files |= {(root / t.database).resolve() for t in prog_map.tables.values() if t.database}
    for p in sorted(base.iterdir()):
        if not p.is_file() or p.suffix.lower() not in SUFFIXES or p.name.startswith((".", "~$")):
            continue
        stem = p.stem.lower()
        if stem in TABLE_NAMES:
            found.setdefault(stem, []).append(p)
        elif p.resolve() not in mapped_files:
            findings.append(
                {
                    "rule": "file_ignored",
                    "severity": "info",
                    "table": "",
                    "file": p.name,
                    "line": None,
                    "column": None,
                    "value": None,
                    "action": "",
                    "message": f"{p.name}: not a canonical table name; ignored; fix: {RULES['file_ignored'].fix_text()} "
                    "[file_ignored]",
                }
            )

    raws: dict[str, RawTable] = {}
    for name in TABLE_NAMES:
        opts: TableMapping = prog_map.table(name)
        try:
            display = f"[tables.{name}]"
            if opts.database:
                db = _mapped_path(opts.database, root, name, "database")
                display = _display(db, root)
                if not db.is_file():
                    raise ReadFailure(
                        "file_missing",
                        f"{display}: database named in [tables.{name}] does not exist "
                        f"(looked for {db})",
                    )
                raws[name] = read_sql(db, name, opts, display)
            elif opts.file:
                path = _mapped_path(opts.file, root, name, "file")
                display = _display(path, root)
                if not path.is_file():
                    raise ReadFailure(
                        "file_missing",
                        f"{display}: file named in [tables.{name}] does not exist "
                        f"(looked for {path})",
                    )
                raws[name] = read_file(path, name, opts, display, defer_hash=True)
            elif name in found:
                paths = found[name]
                display = paths[0].name
                if len(paths) > 1:
                    raise ReadFailure(
                        "file_ambiguous",
                        f"{', '.join(p.name for p in paths)}: more than one file "
                        f"holds table {name}",
                    )
                raws[name] = read_file(paths[0], name, opts, display, defer_hash=True)
            else:
                continue
        except ReadFailure as exc:
            findings.append(_failure(exc, name, display))
            continue
        sources.extend(raws[name].sources)
        sources.extend((name, str(p), None, 0) for p in raws[name].unhashed)

    from recoverystats.io.build import validate_tables

    # CSV files are hashed on one thread while the tables are validated (the reader used
    # every core; validation mostly uses one), in the order they appear in ``sources``
    pool = ThreadPoolExecutor(max_workers=1)
    digests = {
        i: pool.submit(sha256_file, Path(s[1])) for i, s in enumerate(sources) if s[2] is None
    }

    def hashed() -> list[tuple[str, str, str, int]]:
        out = list(sources)
        for i, fut in digests.items():
            out[i] = (out[i][0], out[i][1], *fut.result())
        return out

    try:
        prog = validate_tables(
            raws,
            as_of=as_of,
            on_error=on_error,
            source=str(src),
            extra_findings=findings,
            sources=hashed,
        )
        # the mapping's identity, design and labels tables (frozen dataclass: a new instance)
        info = {"program": dict(prog_map.identity), "design": dict(prog_map.design)}
        return dataclasses.replace(prog, info=info, labels=prog_map.labels or {})
    finally:
        pool.shutdown(wait=True)


__all__ = ["read_program"]
