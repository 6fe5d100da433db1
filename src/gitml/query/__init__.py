"""Querying runs across the working tree and git history."""
