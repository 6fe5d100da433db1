"""Model files: saving, verified loading and input signatures (no web framework)."""
