"""Exception and warning types.

Every error says what is wrong, where (file, row, column), what was received and how
to fix it. ``DataValidationError`` carries the full list of problems, not just the
first one.

Messages name the settings a user can change (``on_error="drop"``, ``overwrite=True``)
through :func:`param`, which words them for the front end at hand: Python keywords by
default, command-line options (``--on-error drop``, ``--overwrite``) while the
``recoverystats`` command runs a library call under :func:`use_terms`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Terms",
    "PYTHON_TERMS",
    "param",
    "use_terms",
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


# ---------------------------------------------------------------------------
# how messages name parameters
# ---------------------------------------------------------------------------
_UNSET: Any = object()


def _python_value(value: Any) -> str:
    # strings in double quotes, as a user would type them in Python or TOML
    return json.dumps(value) if isinstance(value, str) else repr(value)


@dataclass(frozen=True)
class Terms:
    """How messages name the parameters a user sets, for one front end.

    Parameters
    ----------
    options
        Parameter name -> command-line option (``{"on_error": "--on-error"}``). Empty
        for the Python API.
    flags
        Parameters that are boolean flags (``overwrite`` -> ``--overwrite``).
    negated
        Boolean parameters set to ``False`` by an option (``{"suppress": "--no-suppress"}``).
    cli
        ``True`` for the command line: parameters without an option are named as the
        ``name = value`` setting of ``program.toml``/the report config (the only place a
        command-line user can set them).
    """

    options: Mapping[str, str] = field(default_factory=dict)
    flags: frozenset[str] = frozenset()
    negated: Mapping[str, str] = field(default_factory=dict)
    cli: bool = False

    def name(self, parameter: str, value: Any = _UNSET) -> str:
        """``parameter`` (set to ``value`` when given) in this front end's words."""
        if not self.cli:
            return parameter if value is _UNSET else f"{parameter}={_python_value(value)}"
        if parameter in self.negated and value is False:
            return self.negated[parameter]
        option = self.options.get(parameter)
        if option is None:
            if parameter in self.negated:  # suppress=True: the default, i.e. no option
                return f"without {self.negated[parameter]}"
            return parameter if value is _UNSET else f"{parameter} = {_python_value(value)}"
        if parameter in self.flags:
            return f"without {option}" if value is False else option
        if value is _UNSET or value is None:
            return option
        return f"{option} {value}"


#: The Python API's wording (``on_error="drop"``): the default.
PYTHON_TERMS = Terms()

_TERMS: contextvars.ContextVar[Terms] = contextvars.ContextVar(
    "recoverystats_terms", default=PYTHON_TERMS
)


def param(parameter: str, value: Any = _UNSET) -> str:
    """A parameter (set to ``value``) as a message names it for the current front end.

    ``param("on_error", "drop")`` is ``on_error="drop"`` in the Python API and
    ``--on-error drop`` under the command line's :func:`use_terms`; every message that
    tells the user which setting to change builds that text here.
    """
    return _TERMS.get().name(parameter, value)


@contextlib.contextmanager
def use_terms(terms: Terms) -> Iterator[None]:
    """Word the messages built inside the block with ``terms`` (the CLI's options).

    This is the one piece of context the library reads, and it changes the wording of
    messages only, never a result. It is a :mod:`contextvars` variable, so it is local
    to the thread (and asyncio task) that set it; work handed to a thread pool runs in a
    copy of the caller's context (``contextvars.copy_context().run``) to keep it.
    """
    token = _TERMS.set(terms)
    try:
        yield
    finally:
        _TERMS.reset(token)
