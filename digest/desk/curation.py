"""What an editor does to a paper or a delivery: corrections that ingest respects, and giving
failed deliveries another try (the admin queues them)."""

from collections.abc import Iterable

from digest.delivery import planning
from digest.models import DigestRun, Paper

# The fields ingest writes and an editor may correct; a corrected field is left alone by ingest.
INGESTED_FIELDS = (
    "title",
    "abstract",
    "authors",
    "author_count",
    "url",
    "pdf_url",
    "published_on",
    "upvotes",
    "categories",
)


def record_edits(paper: Paper, changed_fields: Iterable[str]) -> None:
    """Add the ingested fields an editor changed to `paper.edited_fields` (not saved here)."""
    edited = set(paper.edited_fields) | {name for name in changed_fields if name in INGESTED_FIELDS}
    paper.edited_fields = sorted(edited)


def retry_deliveries(delivery_ids: list[int]) -> int:
    """Give failed deliveries fresh attempts; returns how many were failed. The caller queues
    them (tasks.queue_sends).

    Exactly-once holds: only failed deliveries are reset, and a send claims its delivery first,
    so a sent one is never sent again. Their runs count as unfinished again, so the counts of
    sent and failed are refreshed as the sends land."""
    count = planning.retry_failed(delivery_ids)
    if count:
        DigestRun.objects.filter(deliveries__pk__in=delivery_ids).update(finished_at=None)
    return count
