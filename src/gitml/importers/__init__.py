"""Importers: history from other trackers becomes gitml files."""
