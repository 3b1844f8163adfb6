"""Validation passes over a loader (regressor and reconstruction), their metrics in
physical units, and their output files."""
