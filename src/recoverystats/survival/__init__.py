"""survival (in progress)."""
