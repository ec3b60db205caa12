"""regression (in progress)."""
