"""Markdown for ``docs/data-model.md`` generated from the spec and the rules registry.

``docs/data-model.md`` holds the output between ``<!-- BEGIN GENERATED: name -->`` and
``<!-- END GENERATED: name -->`` markers; a test checks it is current. Regenerate with::

    python -m recoverystats.schema.docs docs/data-model.md
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from recoverystats.errors import _UNSET, PYTHON_TERMS
from recoverystats.schema.rules import ASSESSMENT_WINDOWS, RULES
from recoverystats.schema.spec import KIND_DTYPES, TABLES


def tables_markdown() -> str:
    """One Markdown table per canonical table: column, kind, required, codes/range, description."""
    out = []
    for t in TABLES.values():
        key = ", ".join(t.key) if t.key else "none (rows may repeat)"
        out.append(f"### `{t.name}`\n")
        out.append(f"{t.description}  \nKey: {key}.")
        if t.references:
            refs = "; ".join(f"`{c}` -> `{pt}.{pc}`" for c, (pt, pc) in t.references.items())
            out.append(f"  \nReferences: {refs}.")
        out.append(
            "\n\n| column | kind | required | allowed values / range | description |\n|---|---|---|---|---|"
        )
        for c in t.columns:
            allowed = (
                ", ".join(f"`{v}`" for v in c.codes)
                if c.codes
                else (f"{c.range[0]:g} to {c.range[1]:g}" if c.range else "")
            )
            desc = c.description + (" *(derived by the loader)*" if c.derived else "")
            out.append(
                f"| `{c.name}` | {c.kind} | {'yes' if c.required else ''} | {allowed} | {desc} |"
            )
        out.append("")
    return "\n".join(out).strip() + "\n"


def kinds_markdown() -> str:
    rows = "\n".join(f"| {k} | `{v}` |" for k, v in KIND_DTYPES.items())
    return "| kind | pandas dtype |\n|---|---|\n" + rows + "\n"


class _DocTerms:
    """Settings named both ways in the docs: `on_error="drop"` (`--on-error drop`)."""

    def name(self, parameter: str, value: Any = _UNSET) -> str:
        from recoverystats.cli import build_parser

        cli = build_parser().parse_args(["validate", "."])._terms
        return f"`{PYTHON_TERMS.name(parameter, value)}` (`{cli.name(parameter, value)}`)"


def rules_markdown() -> str:
    """The validation rules: id, severity, scope, what it means and the fix."""
    lines = ["| rule | severity | scope | meaning | fix |", "|---|---|---|---|---|"]
    terms = _DocTerms()
    for r in RULES.values():
        fix = r.fix_text(terms=terms).replace("|", "/")
        lines.append(f"| `{r.id}` | {r.severity} | {r.scope} | {r.title} | {fix} |")
    windows = ", ".join(
        f"{k}: {lo:+d} to {hi:+d} days" for k, (lo, hi) in ASSESSMENT_WINDOWS.items()
    )
    lines.append("")
    lines.append(
        f"Assessment windows used by `assessment_window` ({windows}; intake and followup_6m are "
        "measured from enrollment_date, discharge from discharge_date)."
    )
    return "\n".join(lines) + "\n"


SECTIONS = {"tables": tables_markdown, "kinds": kinds_markdown, "rules": rules_markdown}


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current content."""
    for name, fn in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED: {name} -->\n).*?(<!-- END GENERATED: {name} -->)", re.S
        )
        text = pattern.sub(lambda m, fn=fn: m.group(1) + fn() + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "docs/data-model.md")
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
