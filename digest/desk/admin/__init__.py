"""The curation desk in the Django admin, one module per model; importing it registers them."""

import config.lookups  # noqa: F401 - registers ascii_icontains for the search fields
from digest.desk.admin import deliveries, ingest_runs, merges, papers, subscribers  # noqa: F401
