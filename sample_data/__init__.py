"""Synthetic registry extracts: the committed demo input and the benchmark generator."""
