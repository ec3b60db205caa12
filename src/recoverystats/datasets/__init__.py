"""Bundled real datasets and the synthetic program simulator.

- :func:`load_uis` — the UMass AIDS Research Unit IMPACT Study (UIS) of drug treatment
  (Hosmer & Lemeshow), 575 x 18.
- :func:`load_rossi` — the Rossi, Berk & Lenihan (1980) recidivism experiment, 432 x 9;
  :func:`rossi_as_program` lays it out as program tables.
- :func:`simulate_program` — a peer-mentoring program with known true parameters.
"""

from __future__ import annotations

from recoverystats.datasets.real import load_rossi, load_uis, rossi_as_program
from recoverystats.datasets.simulate import (
    SimulatedProgram,
    SimulationParameters,
    SimulationTruth,
    simulate_program,
)

__all__ = [
    "load_uis",
    "load_rossi",
    "rossi_as_program",
    "simulate_program",
    "SimulatedProgram",
    "SimulationParameters",
    "SimulationTruth",
]
