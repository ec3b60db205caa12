"""Shared fixtures: reference data paths, fixed seeds, Agg backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "sample"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


def _program_with_small_site(n: int, seed: int, modify=None):
    """``simulate_program(n, seed)`` with one site of 5 participants (3 peer mentoring,
    2 comparison): the privacy tests' small site. ``modify(tables)`` may change the
    tables further before validation."""
    from recoverystats.datasets import simulate_program
    from recoverystats.io.program import ProgramData

    sim = simulate_program(n, seed=seed)
    tables = {k: v.copy() for k, v in sim.tables.items()}
    p = tables["participants"]
    peer = p.index[p["group"] == "peer_mentoring"][:3]
    comp = p.index[p["group"] == "comparison"][:2]
    p["site"] = p["site"].astype("string")
    p.loc[list(peer) + list(comp), "site"] = "site_tiny"
    if modify is not None:
        modify(tables)
    return ProgramData.from_tables(tables, as_of=sim.as_of)


@pytest.fixture(scope="session")
def program_with_small_site():
    """Factory ``(n, seed, modify=None) -> ProgramData`` with a site of 5 participants."""
    return _program_with_small_site
