"""rates (in progress)."""
