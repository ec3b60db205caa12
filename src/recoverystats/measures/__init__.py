"""measures (in progress)."""
