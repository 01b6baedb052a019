"""Kvalitet: registry extracts in, quality indicators and reports out.

Data flows one way: extract files -> validated warehouse tables (``ingest``) ->
indicator results (``engine``) -> artefacts (``reports``).
"""

import os

__version__ = "0.1.0"

# Polars' allocator (jemalloc) hands freed pages back to the kernel after half a second (Polars'
# own setting), and the next batch faults them in again, zeroed: at 10M rows 1.2M page faults
# and a tenth of a run's time. Keeping freed pages for a minute lets batches reuse them, for
# about 0.7 GB more peak memory that does not grow with the rows. Polars adds this to its own
# settings when it loads (the last word wins), so it is set here, before anything of ours
# imports Polars; a value already in the environment wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:60000")
