"""Validators generated from schemas/ by `python -m gitml.validators`: do not edit."""
