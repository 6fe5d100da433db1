"""Tracking: runs, their params, step metrics, inputs and artifacts."""
