"""The sections of the quarterly report: one module each, listed in one ordered registry.

Each section module has a function ``build(ctx)`` of the shared
:class:`~recoverystats.report.context.ReportContext` (the program, the config, the
computed measures, the table registry). It works in two steps, so that nothing
unsuppressed reaches an output:

1. ``build(ctx)`` computes the section's raw tables and registers them with
   ``ctx.registry`` (all tables of all sections are then suppressed together), and returns
2. a function ``section(blocks) -> Section`` that composes the section (text, tables,
   figures) from the *suppressed* tables only; ``build`` returns ``None`` when the section
   has nothing to show (e.g. no follow-up interviews in the data).

:data:`SECTIONS` lists the sections in report order; the config's ``[sections]`` table
switches them on and off (``default_on`` when not listed). A switched-off section
registers no table. A new section is one new module here and one line in
:data:`SECTIONS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.context import ReportContext
    from recoverystats.report.model import Section, TableBlock

__all__ = ["SectionSpec", "SECTIONS", "SECTION_KEYS", "enabled_sections"]


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """One report section: its config key, its title, whether it is on by default, and
    the module (in this package) whose ``build(ctx)`` computes it (imported on first use)."""

    key: str
    title: str
    default_on: bool = True
    module: str = ""

    def build(self, ctx: ReportContext) -> Callable[[dict[str, TableBlock]], Section] | None:
        """Register the section's raw tables; return its composer (or None: nothing to show)."""
        mod: Any = importlib.import_module(f"{__name__}.{self.module or self.key}")
        return mod.build(ctx)


#: The report's sections in report order.
SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("summary", "Summary"),
    SectionSpec("key_numbers", "Key numbers"),
    SectionSpec("flow", "Program flow"),
    SectionSpec("census", "Census and enrollment"),
    SectionSpec("retention", "Retention"),
    SectionSpec("outcomes", "Relapse and recidivism"),
    SectionSpec("table_one", "Baseline characteristics (Table 1)"),
    SectionSpec("adjusted", "Adjusted comparison of groups"),
    SectionSpec("comparison", "Comparison-group balance and weighted effects", default_on=False),
    SectionSpec("survival", "Time to relapse and to re-arrest"),
    SectionSpec("sites", "Effect by site", default_on=False),
    SectionSpec("subgroups", "Effect by subgroup", default_on=False),
    SectionSpec("followup", "Follow-up and NOMs change"),
    SectionSpec("missing_data", "Follow-up and missing data", default_on=False),
    SectionSpec("power", "What this evaluation could detect", default_on=False),
    SectionSpec("limitations", "Limitations"),
    SectionSpec("quality", "Data quality"),
    SectionSpec("methods", "Methods and definitions"),
)

#: The keys allowed in the config's ``[sections]`` table.
SECTION_KEYS: tuple[str, ...] = tuple(s.key for s in SECTIONS)


def enabled_sections(cfg: Any) -> tuple[SectionSpec, ...]:
    """The sections switched on by ``cfg.sections`` (key -> bool; unlisted: ``default_on``)."""
    switches = getattr(cfg, "sections", None) or {}
    unknown = [k for k in switches if k not in SECTION_KEYS]
    if unknown:
        from recoverystats.errors import InvalidParameterError

        raise InvalidParameterError(
            f"config [sections]: unknown section key(s) {', '.join(map(repr, unknown))}; "
            f"allowed keys: {', '.join(SECTION_KEYS)}."
        )
    return tuple(s for s in SECTIONS if switches.get(s.key, s.default_on))
