"""How one record becomes a new Paper, or is merged into a stored one, in memory: merging
never touches hidden, pinned or any field an editor changed (`edited_fields`); upvotes keep the
highest seen; a newer arXiv version refreshes title, abstract and authors; a dump's truncated
abstract never replaces a longer one. `store` reads the papers and writes the result."""

from datetime import datetime

from digest.ingest.records import PaperRecord
from digest.models import Paper


def new_paper(record: PaperRecord, fingerprint: str, source_format: str, now: datetime) -> Paper:
    return Paper(
        title=record.title,
        title_key=record.title_key,
        abstract=record.abstract,
        authors=record.authors,
        author_count=_author_count(record),
        arxiv_id=record.arxiv_id,
        arxiv_version=record.arxiv_version,
        url=record.url,
        pdf_url=record.pdf_url,
        published_on=record.published_on,
        upvotes=record.upvotes,
        categories=record.categories,
        sources=[source_format],
        seen_in=[fingerprint],
        seen_count=1,
        first_seen=now,
        last_seen=now,
    )


def merge_record(
    paper: Paper,
    record: PaperRecord,
    fingerprint: str,
    source_format: str,
    now: datetime,
    *,
    key_free: bool,
) -> set[str]:
    """Merge the record into the paper in memory; the names of the fields that changed."""
    changed: set[str] = set()
    edited = set(paper.edited_fields or [])

    def put(name: str, value: object) -> None:
        if name not in edited and getattr(paper, name) != value:
            setattr(paper, name, value)
            changed.add(name)

    same_arxiv_paper = record.arxiv_id is not None and paper.arxiv_id in (None, record.arxiv_id)
    newer = same_arxiv_paper and (record.arxiv_version or 0) > (paper.arxiv_version or 0)
    if same_arxiv_paper and paper.arxiv_id is None:
        put("arxiv_id", record.arxiv_id)
    if newer:
        put("arxiv_version", record.arxiv_version)
        # A revised title keeps its row; its new key must not be another paper's.
        if key_free and "title" not in edited and record.title != paper.title:
            put("title", record.title)
            put("title_key", record.title_key)
    longer = len(record.abstract) > paper.abstract_length
    if "abstract" not in edited and record.abstract and (newer or longer):
        paper.abstract = record.abstract  # not put(): reading the deferred field costs a query
        changed.add("abstract")
    if record.authors and (newer or not paper.authors):
        put("authors", record.authors)
    author_count = _author_count(record)
    if author_count and (newer or paper.author_count is None):
        put("author_count", author_count)
    if record.url and not paper.url:
        put("url", record.url)
    if record.pdf_url and not paper.pdf_url:
        put("pdf_url", record.pdf_url)
    if record.published_on and paper.published_on is None:
        put("published_on", record.published_on)
    if record.upvotes > paper.upvotes:
        put("upvotes", record.upvotes)
    new_categories = [name for name in record.categories if name not in paper.categories]
    if new_categories:
        put("categories", [*paper.categories, *new_categories])
    if source_format not in paper.sources:
        put("sources", [*paper.sources, source_format])
    if fingerprint not in paper.seen_in:
        paper.seen_in = [*paper.seen_in, fingerprint]
        paper.seen_count += 1
        paper.last_seen = now
        changed |= {"seen_in", "seen_count", "last_seen"}
    return changed


def _author_count(record: PaperRecord) -> int | None:
    """The names' count, or the count the source gave when it is higher (names beyond
    AUTHORS_MAX are not kept, a "• 8 authors" line names none)."""
    return max(len(record.authors), record.author_count or 0) or None
