"""Merged results to constants, verdicts, figures and the report."""
