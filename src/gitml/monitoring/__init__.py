"""Monitoring: data profiles, drift statistics and reports, live performance."""
