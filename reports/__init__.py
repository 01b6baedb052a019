"""Artefacts people read: the annual report, monthly deliveries, charts and their tables."""
