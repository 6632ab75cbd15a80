"""What an editor does: edit papers (ingest respects it), merge duplicates, retry failed sends."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from digest import sending, tasks
from digest.models import DeliveredPaper, DigestRun, Paper, PaperAlias

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


def richness(paper: Paper) -> tuple:
    """How complete a record is: filled fields first, then the longer abstract, then the older."""
    filled = sum(
        [
            paper.arxiv_id is not None,
            bool(paper.abstract),
            bool(paper.authors),
            bool(paper.url),
            bool(paper.pdf_url),
            paper.published_on is not None,
            bool(paper.categories),
        ]
    )
    return (filled, len(paper.abstract), len(paper.authors), -paper.pk)


@dataclass(frozen=True)
class Merge:
    kept: Paper
    removed: list[Paper]  # unsaved copies of the deleted rows, for the editor's log
    moved_deliveries: int


def _union(*lists: list) -> list:
    seen: dict = {}
    for items in lists:
        for item in items:
            seen.setdefault(item, None)
    return list(seen)


@transaction.atomic
def merge_papers(paper_ids: Iterable[int]) -> Merge:
    """Fold duplicates into the richest of them and delete the others.

    The kept paper takes over the others' deliveries (so nobody is sent the paper again), their
    sightings (sources, first and last seen, the inputs they were seen in), the highest upvotes,
    the editor's flags and edits, and any field it lacks, and their identities: their title keys
    and arXiv ids (and those of duplicates merged into them before) become aliases of the kept
    paper, so ingest files a later record of theirs under it instead of creating them again.
    All or nothing.
    """
    papers = list(Paper.objects.select_for_update().filter(pk__in=list(paper_ids)).order_by("pk"))
    if len(papers) < 2:
        raise ValueError("merging needs at least two papers")
    kept = max(papers, key=richness)
    removed = [paper for paper in papers if paper.pk != kept.pk]
    removed_ids = [paper.pk for paper in removed]

    moved = _move_deliveries(kept, removed_ids)

    for paper in sorted(removed, key=richness, reverse=True):
        for name in ("abstract", "url", "pdf_url"):
            if not getattr(kept, name) and getattr(paper, name):
                setattr(kept, name, getattr(paper, name))
        if not kept.authors and paper.authors:
            kept.authors, kept.author_count = paper.authors, paper.author_count
        if kept.arxiv_id is None and paper.arxiv_id is not None:
            kept.arxiv_id, kept.arxiv_version = paper.arxiv_id, paper.arxiv_version
        if kept.published_on is None:
            kept.published_on = paper.published_on
    kept.categories = _union(kept.categories, *(paper.categories for paper in removed))
    kept.sources = _union(kept.sources, *(paper.sources for paper in removed))
    kept.edited_fields = sorted(set(kept.edited_fields).union(*(p.edited_fields for p in removed)))
    kept.first_seen = min(paper.first_seen for paper in papers)
    kept.last_seen = max(paper.last_seen for paper in papers)
    # A dump both duplicates were seen in counts once; sightings without a fingerprint add up.
    unfingerprinted = sum(max(paper.seen_count - len(paper.seen_in), 0) for paper in papers)
    kept.seen_in = _union(*(paper.seen_in for paper in papers))
    kept.seen_count = len(kept.seen_in) + unfingerprinted
    kept.upvotes = max(paper.upvotes for paper in papers)
    kept.hidden = any(paper.hidden for paper in papers)
    kept.pinned = any(paper.pinned for paper in papers)

    PaperAlias.objects.filter(paper_id__in=removed_ids).update(paper=kept)
    PaperAlias.objects.bulk_create(
        PaperAlias(
            title_key=paper.title_key,
            arxiv_id=paper.arxiv_id if paper.arxiv_id != kept.arxiv_id else None,
            paper=kept,
        )
        for paper in removed
    )
    # Delete first: the kept paper may take over an arXiv id, which is unique.
    Paper.objects.filter(pk__in=removed_ids).delete()
    kept.save()
    return Merge(kept=kept, removed=removed, moved_deliveries=moved)


def _move_deliveries(kept: Paper, removed_ids: list[int]) -> int:
    """Point the duplicates' DeliveredPaper rows at the kept paper, one row per delivery."""
    rows = DeliveredPaper.objects.filter(paper_id__in=[kept.pk, *removed_ids]).values_list(
        "pk", "delivery_id", "paper_id", "position"
    )
    by_delivery: dict[int, list[tuple[int, int, int]]] = {}
    for pk, delivery_id, paper_id, position in rows:
        by_delivery.setdefault(delivery_id, []).append((position, paper_id, pk))
    to_move: list[int] = []
    for items in by_delivery.values():
        if any(paper_id == kept.pk for _, paper_id, _ in items):
            continue  # the kept paper is already in that digest; the duplicates' rows go
        to_move.append(min(items)[2])  # the duplicate listed highest stands for the kept paper
    DeliveredPaper.objects.filter(pk__in=to_move).update(paper=kept)
    return len(to_move)


def retry_deliveries(delivery_ids: list[int]) -> int:
    """Give failed deliveries fresh attempts and queue them; returns how many were failed.

    Exactly-once holds: only failed deliveries are reset, and a send claims its delivery first,
    so a sent one is never sent again. Their runs count as unfinished again, so the counts of
    sent and failed are refreshed as the sends land (here, and on every beat tick)."""
    count = sending.retry_failed(delivery_ids)
    if count:
        DigestRun.objects.filter(deliveries__pk__in=delivery_ids).update(finished_at=None)
        for chunk in sending.chunked(delivery_ids, settings.DIGEST_SEND_CHUNK):
            tasks.send_deliveries.delay(chunk)
        sending.refresh_runs()
    return count
