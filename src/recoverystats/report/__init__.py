"""The quarterly report: ``quarterly(prog, quarter=...)`` -> :class:`Report` -> ``.save(dir)``.

The command line equivalent is ``recoverystats report SOURCE --quarter 2026Q3 --out DIR``
(see :mod:`recoverystats.report.cli`). Heavy modules load on first use, so the CLI can
register the command without importing pandas or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "quarterly": "recoverystats.report.build",
    "parse_quarter": "recoverystats.report.build",
    "ReportConfig": "recoverystats.report.config",
    "load_config": "recoverystats.report.config",
    "Report": "recoverystats.report.report",
    "DisclosureError": "recoverystats.report.report",
    "STAMP": "recoverystats.report.report",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recoverystats.report' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from recoverystats.report.build import parse_quarter, quarterly  # noqa: F401
    from recoverystats.report.config import ReportConfig, load_config  # noqa: F401
    from recoverystats.report.report import STAMP, DisclosureError, Report  # noqa: F401
