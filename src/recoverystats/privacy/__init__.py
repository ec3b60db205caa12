"""privacy (in progress)."""
