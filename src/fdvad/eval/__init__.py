"""Evaluation: metrics and comparisons."""
