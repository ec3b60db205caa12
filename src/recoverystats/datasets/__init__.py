"""datasets (in progress)."""
