"""Privacy for 42 CFR Part 2 data: small-cell suppression and the output identifier scan.

:func:`suppress` applies primary, complementary and dependent suppression to a table;
:func:`scan` checks a finished output folder (every file, inside ``.docx``/``.xlsx`` zips
too) for participant/mentor identifiers, birth dates and unsuppressed small counts;
:func:`audit_intervals` gives the range a reader can derive for each suppressed count
(the attacker's linear programs) and checks the interval rule that ``suppress`` enforces.
"""

from __future__ import annotations

from recoverystats.privacy.derived import (
    DerivedAttackResult,
    PublishedStatistic,
    audit_derived,
    derived_bounds,
)
from recoverystats.privacy.intervals import IntervalAuditResult, attacker_bounds, audit_intervals
from recoverystats.privacy.scan import ScanResult, scan
from recoverystats.privacy.suppress import (
    POLICY_MIN_CELL,
    SUPPRESSED_MARK,
    Margins,
    SuppressionResult,
    recoverable,
    suppress,
)

__all__ = ["Margins", "SuppressionResult", "suppress", "recoverable", "audit_intervals", "IntervalAuditResult",
           "attacker_bounds", "scan", "ScanResult", "SUPPRESSED_MARK", "derived_bounds", "audit_derived",
           "PublishedStatistic", "DerivedAttackResult", "POLICY_MIN_CELL"]
