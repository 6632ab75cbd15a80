"""Papers in: daily-papers text dumps, arXiv feeds and daily-papers JSON, one module per format,
stored as deduplicated Paper rows by `store`. `ingest` and `ingest_sources` are the entry points."""

from digest.ingest.runs import (
    fail_stale_runs,
    ingest,
    ingest_configured_sources,
    ingest_sources,
)

__all__ = ["fail_stale_runs", "ingest", "ingest_configured_sources", "ingest_sources"]
