"""``recoverystats report``: the quarterly report from the command line.

Registered by the main CLI (``recoverystats.cli``) through :func:`register`; no
statistics here. Exit codes: 0 written, 1 the data could not be loaded (validation
errors), 2 usage errors (bad arguments, config, quarter, output folder), 3 the privacy
scan of the finished output failed (nothing was written), 4 an internal error (a bug:
the message names it; nothing was written).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_DISCLOSURE, EXIT_INTERNAL = 0, 1, 2, 3, 4


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "report",
        help="write the quarterly report (HTML, Word, Excel, figures, results.json)",
        description="Write the quarterly report of a program: report.html, report.docx, tables.xlsx, "
                    "figures/ and results.json, with counts below --min-cell suppressed. The output is "
                    "scanned for identifiers and small cells before it is moved into place.",
    )
    p.add_argument("source", help="the program's exports: a folder (with program.toml) or a mapping file")
    p.add_argument("--quarter", required=True, help="reporting quarter, e.g. 2026Q3 (its last day is the cut-off)")
    p.add_argument("--out", required=True, help="output folder (must be new or empty unless --overwrite)")
    p.add_argument("--config", default=None, help="report.toml with targets, adjustment set, windows")
    p.add_argument("--min-cell", type=int, default=None,
                   help="smallest count shown (default 11: counts 1-10 suppressed)")
    p.add_argument("--previous", action="append", default=[], metavar="DIR",
                   help="an earlier release of the program (its report folder or results.json); repeat for each. "
                        "No change since an earlier release is published as a small count (the release ledger)")
    p.add_argument("--no-suppress", action="store_true",
                   help="publish small cells; every page is stamped 'contains small cells — not for release'")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier report in --out (only a folder this command wrote, holding "
                        "nothing else; never the data's folder)")
    p.add_argument("--mapping", default=None, help="mapping TOML (default: SOURCE/program.toml when present)")
    p.add_argument("--on-error", choices=("raise", "drop"), default="raise",
                   help="raise: stop on validation errors (default); drop: drop offending rows and report them")
    from recoverystats.cli import add_engine_arguments

    add_engine_arguments(p)
    p.set_defaults(func=run)
    return p


class _Stages:
    """Progress on stderr: one line per finished stage with its time (rich)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.current: str | None = None
        self.t0 = time.perf_counter()
        self.start = self.t0
        self.console = None
        self.status = None
        if not quiet:
            from rich.console import Console

            self.console = Console(stderr=True, highlight=False)
            self.status = self.console.status("starting")
            self.status.start()

    def __call__(self, stage: str) -> None:
        if self.quiet:
            return
        self._finish()
        self.current = stage
        self.t0 = time.perf_counter()
        assert self.status is not None
        self.status.update(f"{stage} ...")

    def _finish(self) -> None:
        if self.current is not None and self.console is not None:
            self.console.print(f"[green]✓[/green] {self.current} [dim]({time.perf_counter() - self.t0:.1f} s)[/dim]")
        self.current = None

    def close(self, ok: bool) -> None:
        if self.quiet:
            return
        if ok:
            self._finish()
        if self.status is not None:
            self.status.stop()


def run(args: argparse.Namespace) -> int:
    """Run ``recoverystats report``; returns the exit code."""
    from recoverystats.errors import DataValidationError, RecoveryStatsError

    stages = _Stages(args.quiet)
    ok = False
    try:
        from recoverystats.io.read import read_program
        from recoverystats.report.build import parse_quarter, quarterly
        from recoverystats.report.report import DisclosureError, SaveInterrupted, check_out_dir

        parse_quarter(args.quarter)  # a bad quarter is a usage error before any loading
        # so is an output folder that may not be written (the data's folder, a non-report
        # folder, a non-empty one without --overwrite): checked again, with every input
        # file, when the report is saved
        check_out_dir(args.out, overwrite=args.overwrite,
                      sources=[s for s in (args.source, args.mapping) if s is not None])
        from recoverystats.report.ledger import _results_path

        for item in args.previous:  # a missing earlier release too (read and checked in full later)
            _results_path(item)
        stages("load and validate")
        from recoverystats.cli import _engine_options

        prog = read_program(args.source, on_error=args.on_error, mapping=args.mapping, **_engine_options(args))
        report = quarterly(prog, quarter=args.quarter, config=args.config, min_cell=args.min_cell,
                           suppress=not args.no_suppress, progress=stages, previous=args.previous)
        out = report.save(args.out, overwrite=args.overwrite, progress=stages)
        ok = True
    except DataValidationError as exc:
        stages.close(False)
        print(f"recoverystats report: error: the data could not be loaded: {exc}", file=sys.stderr)
        return EXIT_DATA
    except SaveInterrupted as exc:
        stages.close(False)
        print("recoverystats report: terminated (SIGTERM) while saving; the partial output was removed and "
              "no report was written.", file=sys.stderr)
        return int(exc.code) if isinstance(exc.code, int) else 143
    except DisclosureError as exc:
        stages.close(False)
        print(f"recoverystats report: error: {exc}", file=sys.stderr)
        return EXIT_DISCLOSURE
    except RecoveryStatsError as exc:
        stages.close(False)
        print(f"recoverystats report: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        stages.close(False)
        print(f"recoverystats report: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a bug: say so plainly, no traceback, nothing written
        stages.close(False)
        print(f"recoverystats report: internal error ({type(exc).__name__}: {exc}); no report was written. "
              "Please report this with the command you ran.", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if ok:
            stages.close(True)
    if not args.quiet:
        print(f"report written to {out}" + (f"  (NOT FOR RELEASE: {report.stamp_reason})" if report.stamp else ""),
              file=sys.stderr)
    print(str(out))
    return EXIT_OK
