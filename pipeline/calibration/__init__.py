"""Calibrate filter thresholds against reference data."""
