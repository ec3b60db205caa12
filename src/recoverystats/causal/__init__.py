"""Comparison-group methods for non-randomised evaluations (matching; placeholder until merged with i14-core)."""

from recoverystats.causal.matching import MatchResult, match

__all__ = ["match", "MatchResult"]
