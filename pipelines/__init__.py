"""Kvalitet: registry extracts in, quality indicators and reports out.

Data flows one way: extract files -> validated warehouse tables (``ingest``) ->
indicator results (``engine``) -> artefacts (``reports``).
"""

__version__ = "0.1.0"
