"""Command-line front end: ``recoverystats validate | simulate | report``.

No statistics here: every command calls the library and prints what it returns.
Exit codes: 0 success (data loadable), 1 validation errors in the data, 2 usage
errors (bad arguments, a source that does not exist). Data problems are printed as
messages, never as tracebacks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main()`` returns the exit code."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise _UsageExit(EXIT_USAGE)


class _UsageExit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# ---------------------------------------------------------------------------
# validate
# ---------------------------------------------------------------------------
def _summary_text(prog: Any) -> list[str]:
    s = prog.summary()
    out = [f"Program data: {s['source']}"]
    if s["as_of"]:
        out.append(f"Data cut-off (as_of): {s['as_of']}")
    out.append("")
    out.append(f"{'table':<14}{'rows read':>11}{'kept':>11}{'dropped':>11}")
    for row in prog.flow.itertuples(index=False):
        out.append(
            f"{row.table:<14}{int(row.rows_read):>11,}{int(row.rows_kept):>11,}{int(row.rows_dropped):>11,}"
        )
    out.append("")
    out.append(f"Participants: {s['participants']:,}")
    if s["participants"]:
        groups = s.get("by_group", {})
        out.append("  by group: " + ", ".join(f"{k} {v:,}" for k, v in groups.items()))
        if "by_site" in s:
            out.append("  by site:  " + ", ".join(f"{k} {v:,}" for k, v in s["by_site"].items()))
            tab = _site_by_group(prog)
            out.append("  group x site:")
            width = max([len(str(c)) for c in tab.columns] + [8]) + 2
            out.append(
                "    " + f"{'site':<14}" + "".join(f"{str(c):>{width}}" for c in tab.columns)
            )
            for site, row in tab.iterrows():
                out.append(
                    "    " + f"{str(site):<14}" + "".join(f"{int(v):>{width},}" for v in row)
                )
    if s["date_ranges"]:
        out.append("")
        out.append("Date ranges:")
        for k, (a, b) in s["date_ranges"].items():
            out.append(f"  {k:<34}{a} to {b}")
    return out


#: Findings printed per rule by ``validate`` (text output) unless --max-per-rule says otherwise.
MAX_PER_RULE = 20
#: Characters of one printed finding; longer messages (a huge cell value) are cut.
MAX_MESSAGE_CHARS = 500
#: Characters of printed findings in all (DESIGN 14: validate prints at most 1 MB).
MAX_PRINTED_CHARS = 900_000


def _site_by_group(prog: Any) -> Any:
    """Participants by site (rows) and group (columns); counted by the engine on DuckDB/Spark."""
    if hasattr(prog, "participants"):
        p = prog.participants
        return p.groupby(["site", "group"], dropna=False, observed=True).size().unstack(fill_value=0)
    t = prog.table("participants")
    counts = t.group_by(["site", "group"]).aggregate(n=t.count()).to_pandas()
    tab = counts.pivot_table(index="site", columns="group", values="n", fill_value=0, dropna=False)
    return tab.sort_index().astype("int64")


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """``read_program`` keywords of ``--engine``, ``--memory-limit``, ``--database``, ``--spark-master``."""
    out: dict[str, Any] = {}
    if getattr(args, "engine", None):
        out["engine"] = args.engine
    if getattr(args, "memory_limit", None):
        out["memory_limit"] = args.memory_limit
    if getattr(args, "database", None):
        out["database"] = args.database
    if getattr(args, "spark_master", None):
        out["spark"] = args.spark_master
    if out.get("engine") not in (None, "pandas") and sys.stderr.isatty() and not getattr(args, "quiet", False):
        out["progress"] = True
    return out


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """``--engine`` and its settings (also read from program.toml's [engine])."""
    p.add_argument(
        "--engine",
        choices=("pandas", "duckdb", "spark"),
        default=None,
        help="where the data is validated and measured: pandas (in memory; the default unless "
        "program.toml [engine] name says otherwise), duckdb (beyond memory) or spark (a cluster); "
        "see docs/scale.md",
    )
    p.add_argument("--memory-limit", default=None, help="DuckDB memory limit, e.g. 8GB")
    p.add_argument("--database", default=None, help="DuckDB database file for the validated tables")
    p.add_argument("--spark-master", default=None, help="Spark master URL (default local[2])")


def _findings_text(validation: Any, *, max_per_rule: int = MAX_PER_RULE) -> list[str]:
    """The findings summary and the first ``max_per_rule`` findings of each rule (0: all).

    The full list is in ``--format json`` and ``ProgramData.validation``; with a cap the
    text output stays under about 1 MB whatever the number of bad rows (long messages
    are cut at ``MAX_MESSAGE_CHARS``). ``max_per_rule=0`` prints every finding in full.
    """
    if validation is None or not len(validation):
        return ["No findings."]
    counts = validation["severity"].value_counts()
    head = (
        f"Findings: {int(counts.get('error', 0)):,} errors, {int(counts.get('warning', 0)):,} warnings, "
        f"{int(counts.get('info', 0)):,} info"
    )
    lines = [head]
    by_rule = validation.groupby(["severity", "rule"], sort=False).size()
    lines.append(
        "  by rule: "
        + ", ".join(f"{rule} {int(n):,} ({sev})" for (sev, rule), n in by_rule.items())
    )
    if max_per_rule:
        shown = validation.groupby("rule", sort=False).head(max_per_rule)
    else:
        shown = validation
    budget = MAX_PRINTED_CHARS if max_per_rule else float("inf")
    printed = 0
    for sev, msg in zip(shown["severity"], shown["message"], strict=True):
        text = str(msg)
        if max_per_rule and len(text) > MAX_MESSAGE_CHARS:
            text = text[:MAX_MESSAGE_CHARS] + f"... ({len(text) - MAX_MESSAGE_CHARS:,} more characters)"
        line = f"  {str(sev).upper():<8}{text}"
        budget -= len(line) + 1
        if budget < 0:
            break
        lines.append(line)
        printed += 1
    left = len(validation) - printed
    if left:
        lines.append(
            f"  ... {left:,} more findings not printed (the first {max_per_rule} of each rule "
            "shown, up to 1 MB); the full list is in "
            "--format json (or ProgramData.validation); --max-per-rule 0 prints all"
        )
    return lines


@contextlib.contextmanager
def _progress(text: str) -> Iterator[None]:
    """A spinner with the elapsed time on stderr while the data loads (only on a terminal)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        bar.add_task(f"{text} ...", total=None)
        yield


def _print_json(doc: dict[str, Any], findings: Any, *, chunk: int = 20_000) -> None:
    """``doc`` with a last key ``findings`` holding every finding, written in chunks.

    A million findings are never one list of dicts or one string in memory: the
    document is printed up to the list, then the findings ``chunk`` rows at a time.
    """
    head = json.dumps({**doc, "findings": []}, indent=2, default=str)
    assert head.endswith('"findings": []\n}')
    out = sys.stdout
    out.write(head[: -len("[]\n}")] + "[")
    for start in range(0, len(findings), chunk):
        # pandas' C JSON writer: one record per line, nulls for missing values
        part = findings.iloc[start : start + chunk].to_json(
            orient="records", lines=True, force_ascii=False
        )
        out.write(
            ("," if start else "")
            + ",".join("\n    " + r for r in part.splitlines() if r)
        )
    out.write(("\n  " if len(findings) else "") + "]\n}\n")


def _records(df: Any) -> list[dict[str, Any]]:
    from recoverystats.results.base import table_records

    return table_records(df)


def _cmd_validate(args: argparse.Namespace) -> int:
    from recoverystats.errors import DataValidationError, RecoveryStatsError
    from recoverystats.io.read import read_program

    try:
        with _progress(f"Loading and validating {args.source}"):
            prog = read_program(
                args.source,
                as_of=args.as_of,
                on_error=args.on_error,
                mapping=args.mapping,
                **_engine_options(args),
            )
    except DataValidationError as exc:
        validation = getattr(exc, "validation", None)
        if args.format == "json":
            doc = {"status": "error", "source": str(args.source), "message": exc.summary}
            if validation is not None:
                _print_json(doc, validation)
            else:
                doc["findings"] = [{"message": str(p)} for p in exc.problems]
                print(json.dumps(doc, indent=2))
        else:
            if validation is not None:
                print("\n".join(_findings_text(validation, max_per_rule=args.max_per_rule)))
            else:
                # mapping problems (no findings frame): few, all printed
                print("\n".join(f"  ERROR   {p}" for p in exc.problems))
        print(f"recoverystats validate: {exc.summary}", file=sys.stderr)
        return EXIT_DATA
    except RecoveryStatsError as exc:  # InvalidParameterError and friends: usage problems
        print(f"recoverystats validate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        summary = prog.summary()
        summary.pop("findings", None)  # replaced by the list of findings, as before
        doc = {
            "status": "ok",
            **summary,
            "flow": _records(prog.flow),
            "sources": _records(prog.sources),
        }
        _print_json(doc, prog.validation)
    else:
        print("\n".join(_summary_text(prog)))
        print()
        print("\n".join(_findings_text(prog.validation, max_per_rule=args.max_per_rule)))
    return EXIT_OK


# ---------------------------------------------------------------------------
# simulate
# ---------------------------------------------------------------------------
def _cmd_simulate(args: argparse.Namespace) -> int:
    from recoverystats.errors import RecoveryStatsError

    try:
        from recoverystats.datasets import simulate_program

        sim = simulate_program(args.participants, seed=args.seed)
        paths = sim.write(args.out, format=args.format)
    except RecoveryStatsError as exc:
        print(f"recoverystats simulate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(
            f"recoverystats simulate: error: cannot write to {args.out!r}: {exc}", file=sys.stderr
        )
        return EXIT_USAGE
    rows = ", ".join(f"{k} {len(v):,}" for k, v in sim.tables.items())
    print(
        f"Wrote {len(paths)} tables to {args.out} ({rows}); seed {args.seed}; as_of {sim.as_of.date()}"
    )
    print("Also wrote program.toml (the mapping) and truth.json (planted effects, true event probabilities).")
    return EXIT_OK


# ---------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number; got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {v}")
    return v


def _non_negative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number; got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more; got {v}")
    return v


def _date(text: str) -> str:
    import datetime as _dt

    try:
        _dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD; got {text!r}") from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The ``recoverystats`` argument parser (subcommands registered lazily)."""
    from recoverystats import __version__

    parser = _Parser(
        prog="recoverystats",
        description="Outcome evaluation for addiction-recovery and prison-reentry programs.",
    )
    parser.add_argument("--version", action="version", version=f"recoverystats {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    v = sub.add_parser(
        "validate",
        help="load and validate program data; print a summary and the findings",
        description="Load a folder of exports (or a program.toml mapping), validate it, and print "
        "a summary and the findings (the first of each rule; all with --format json). "
        "Exit 0 when loadable, 1 on validation errors, "
        "2 on usage errors.",
    )
    v.add_argument("source", help="folder of table files, or a program.toml mapping")
    v.add_argument("--as-of", type=_date, default=None, help="data cut-off date YYYY-MM-DD")
    v.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    v.add_argument(
        "--on-error",
        choices=("raise", "drop"),
        default="raise",
        help="raise: report errors and exit 1 (default); drop: drop offending rows and report them",
    )
    v.add_argument(
        "--mapping", default=None, help="program.toml to use instead of the one in SOURCE"
    )
    v.add_argument(
        "--max-per-rule",
        type=_non_negative_int,
        default=MAX_PER_RULE,
        help=f"findings printed per rule in text output (default {MAX_PER_RULE}, at most 1 MB in "
        "all; 0 prints every finding); --format json always lists every finding",
    )
    add_engine_arguments(v)
    v.set_defaults(func=_cmd_validate)

    s = sub.add_parser(
        "simulate",
        help="write a simulated program's tables as CSV",
        description="Simulate a peer-mentoring program with known true effects and write its "
        "six canonical tables.",
    )
    s.add_argument("--out", required=True, help="output folder (created if missing)")
    s.add_argument(
        "--participants", type=_positive_int, default=1200, help="participants (default 1200)"
    )
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument(
        "--format", choices=("csv", "parquet"), default="csv", help="file format (default csv)"
    )
    s.set_defaults(func=_cmd_simulate)

    _register_report(sub)
    for command in sub.choices.values():
        command.set_defaults(_terms=cli_terms(command))
    return parser


def cli_terms(command: argparse.ArgumentParser) -> Any:
    """How messages name parameters under one command: its own options.

    The one mapping from library parameters to command-line options: an option's
    ``dest`` is the parameter it sets (``--on-error`` -> ``on_error``), a ``store_true``
    option is a flag (``--overwrite``), and ``--no-X`` sets ``X=False``
    (``--no-suppress``). Parameters the command has no option for are named as their
    ``program.toml``/report-config setting (see :class:`recoverystats.errors.Terms`).
    """
    from recoverystats.errors import Terms

    options: dict[str, str] = {}
    flags: set[str] = set()
    negated: dict[str, str] = {}
    for action in command._actions:  # argparse keeps no public list of a parser's options
        long = [o for o in action.option_strings if o.startswith("--")]
        if not long or action.dest in ("help", "version"):
            continue
        if isinstance(action, argparse._StoreTrueAction):
            if action.dest.startswith("no_"):
                negated[action.dest[3:]] = long[0]
                continue
            flags.add(action.dest)
        options[action.dest] = long[0]
    return Terms(options=options, flags=frozenset(flags), negated=negated, cli=True)


def _register_report(sub: Any) -> None:
    """Let ``recoverystats.report.cli`` add the ``report`` command when it exists."""
    import importlib

    try:
        module = importlib.import_module("recoverystats.report.cli")
    except ModuleNotFoundError as exc:
        if exc.name in ("recoverystats.report.cli", "recoverystats.report"):
            return
        problem: Exception | None = exc
    except Exception as exc:  # a broken report module must not break validate/simulate
        problem = exc
    else:
        register = getattr(module, "register", None)
        if callable(register):
            register(sub)
        return
    r = sub.add_parser("report", help="quarterly report (unavailable: its module failed to import)")
    r.add_argument("args", nargs=argparse.REMAINDER)

    def unavailable(_args: argparse.Namespace) -> int:
        print(
            f"recoverystats report: error: the report module could not be imported: {problem!r}",
            file=sys.stderr,
        )
        return EXIT_USAGE

    r.set_defaults(func=unavailable)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 data errors, 2 usage errors)."""
    try:
        parser = build_parser()
        args = parser.parse_args(list(argv) if argv is not None else None)
    except _UsageExit as exc:
        return exc.code
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from recoverystats.errors import use_terms

    try:
        # messages built while the command runs name its options, not Python keywords
        with use_terms(args._terms):
            return int(args.func(args))
    except _UsageExit as exc:
        return exc.code
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
