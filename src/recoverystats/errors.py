"""Exception and warning types.

Every error says what is wrong, where (file, row, column), what was received and how
to fix it. ``DataValidationError`` carries the full list of problems, not just the
first one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "RecoveryStatsError",
    "DataValidationError",
    "InvalidParameterError",
    "EstimationError",
    "RecoveryStatsWarning",
    "SmallSampleWarning",
]


class RecoveryStatsError(Exception):
    """Base class of every error raised by recoverystats."""


class DataValidationError(RecoveryStatsError, ValueError):
    """Input data could not be loaded as it is.

    Parameters
    ----------
    message
        A one-line summary.
    problems
        Every problem found (``Finding`` objects or plain strings); all of them, not
        only the first.
    """

    def __init__(self, message: str, problems: Sequence[Any] = ()) -> None:
        # a lazy sequence (the loader's findings, which may be millions) is kept as it
        # is; lists, tuples and iterables become a list as before
        lazy = isinstance(problems, Sequence) and not isinstance(problems, (list, tuple, str))
        self.problems = problems if lazy else list(problems)
        self.summary = message
        lines = [message]
        shown = self.problems[:50]
        lines += [f"  - {p}" for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more problems")
        super().__init__("\n".join(lines))


class InvalidParameterError(RecoveryStatsError, ValueError):
    """A function argument has a value that is not allowed."""


class EstimationError(RecoveryStatsError, RuntimeError):
    """A model could not be estimated (non-convergence, singular design, ...)."""


class RecoveryStatsWarning(UserWarning):
    """Base class of every warning issued by recoverystats."""


class SmallSampleWarning(RecoveryStatsWarning):
    """Too few observations, events or clusters for the method's usual guarantees."""
