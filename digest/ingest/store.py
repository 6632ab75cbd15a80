"""Writing parsed records as Paper rows: a light bulk select, then for the records that need it
one full bulk select, one bulk insert and a few bulk updates per batch, in one transaction.

A record is the paper already stored under its arXiv id, else under its title key, else a new
paper, merged into it as `merging` says (never a field an editor changed). `seen_in` holds
the fingerprints of the inputs a paper appeared in: a record whose paper already holds its
input's fingerprint was merged when that input was first stored, so it is unchanged without
reading the paper again, unless the input holds that paper more than once (then every later
record is merged).

An editor's merge leaves the merged-away papers' title keys and arXiv ids behind as aliases
(`PaperAlias`) of the paper kept: one more query per batch finds the aliases among its records,
which are then merged into that paper like its own, so a merged duplicate never comes back. By
arXiv id first (the paper's own, then an alias), then by title key (likewise).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Length

from digest.ingest.bulk_insert import insert_instances
from digest.ingest.merging import merge_record, new_paper
from digest.ingest.records import PaperRecord
from digest.models import Paper, PaperAlias


@dataclass
class StoreCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: "StoreCounts") -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged


def store_papers(
    records: Sequence[PaperRecord],
    *,
    fingerprint: str,
    source_format: str,
    now: datetime,
    stored_from_input: set[int] | None = None,
) -> StoreCounts:
    """Create or merge the records, atomically. `stored_from_input` carries, from one batch of an
    input to the next, hashes of the title keys and arXiv ids already stored from that input.
    Two records for the same paper in one batch are written in successive rounds, exactly as if
    they had come in separate batches."""
    stored_from_input = set() if stored_from_input is None else stored_from_input
    counts = StoreCounts()
    with transaction.atomic():
        aliases = _aliases(records)
        pending, known = _records_to_write(records, fingerprint, stored_from_input, counts, aliases)
        existing = _existing_papers(known, aliases) if known else _Existing({}, {}, {}, aliases)
        while pending:
            this_round, pending = _one_record_per_paper(pending, existing)
            counts.add(
                _store_round(
                    this_round,
                    existing,
                    fingerprint=fingerprint,
                    source_format=source_format,
                    now=now,
                )
            )
            if pending:
                existing = _existing_papers(pending, aliases)
    for record in records:
        stored_from_input.update(_identities(record))
    return counts


def _records_to_write(
    records: Sequence[PaperRecord],
    fingerprint: str,
    stored_from_input: set[int],
    counts: StoreCounts,
    aliases: "_Aliases",
) -> tuple[list[PaperRecord], list[PaperRecord]]:
    """The records to write (and, of those, the ones whose paper exists), after one light query
    counts as unchanged those whose paper already holds this input's fingerprint."""
    rows = Paper.objects.filter(_matching(records, aliases)).values_list(
        "pk", "arxiv_id", "title_key", "seen_in"
    )
    by_arxiv_id = {arxiv_id: fingerprint in seen for _, arxiv_id, _, seen in rows if arxiv_id}
    by_title_key = {title_key: fingerprint in seen for _, _, title_key, seen in rows}
    by_pk = {pk: fingerprint in seen for pk, _, _, seen in rows} if aliases else {}
    repeats = set(stored_from_input)
    to_write, known = [], []
    for record in records:
        identities = _identities(record)
        has_fingerprint = _find(record, by_arxiv_id, by_title_key, by_pk, aliases)
        if has_fingerprint and not identities & repeats:
            counts.unchanged += 1
        else:
            to_write.append(record)
            if has_fingerprint is not None:
                known.append(record)
        repeats |= identities
    return to_write, known


def _identities(record: PaperRecord) -> set[int]:
    identities = {hash(record.title_key)}
    if record.arxiv_id:
        identities.add(hash(f"arxiv:{record.arxiv_id}"))
    return identities


def _matching(records: Sequence[PaperRecord], aliases: "_Aliases | None" = None) -> Q:
    """Papers (or aliases) holding the records' title keys or arXiv ids, and the aliases' papers."""
    condition = Q(title_key__in={record.title_key for record in records})
    arxiv_ids = {record.arxiv_id for record in records if record.arxiv_id}
    if arxiv_ids:
        condition |= Q(arxiv_id__in=arxiv_ids)
    if aliases:
        condition |= Q(pk__in={*aliases.by_title_key.values(), *aliases.by_arxiv_id.values()})
    return condition


@dataclass
class _Aliases:
    """The batch's title keys and arXiv ids that were merged away, and the paper each is now."""

    by_arxiv_id: dict[str, int]
    by_title_key: dict[str, int]

    def __bool__(self) -> bool:
        return bool(self.by_arxiv_id or self.by_title_key)


_IN_LIST = {
    # The batch's keys as one parameter: an ORM `__in` prepares every value, which cost a first
    # ingest a tenth of its time (bench/ingest.py) for a table that is mostly empty.
    "postgresql": "= ANY(%s)",
    "sqlite": "IN (SELECT value FROM json_each(%s))",
}


def _aliases(records: Sequence[PaperRecord]) -> _Aliases:
    title_keys = list({record.title_key for record in records})
    arxiv_ids = list({record.arxiv_id for record in records if record.arxiv_id})
    in_list = _IN_LIST.get(connection.vendor)
    if in_list is None:
        rows = list(
            PaperAlias.objects.filter(_matching(records)).values_list(
                "arxiv_id", "title_key", "paper_id"
            )
        )
    else:
        if connection.vendor == "sqlite":
            title_keys, arxiv_ids = json.dumps(title_keys), json.dumps(arxiv_ids)
        table = connection.ops.quote_name(PaperAlias._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT arxiv_id, title_key, paper_id FROM {table}"
                f" WHERE title_key {in_list} OR arxiv_id {in_list}",
                [title_keys, arxiv_ids],
            )
            rows = cursor.fetchall()
    return _Aliases(
        by_arxiv_id={arxiv_id: paper_id for arxiv_id, _, paper_id in rows if arxiv_id},
        by_title_key={title_key: paper_id for _, title_key, paper_id in rows},
    )


Found = TypeVar("Found")


def _find(
    record: PaperRecord,
    by_arxiv_id: dict[str, Found],
    by_title_key: dict[str, Found],
    by_pk: dict[int, Found],
    aliases: _Aliases,
) -> Found | None:
    """The record's paper: by arXiv id, the paper's own then an alias's; then by title key."""
    if record.arxiv_id:
        if record.arxiv_id in by_arxiv_id:
            return by_arxiv_id[record.arxiv_id]
        if record.arxiv_id in aliases.by_arxiv_id:
            return by_pk.get(aliases.by_arxiv_id[record.arxiv_id])
    if record.title_key in by_title_key:
        return by_title_key[record.title_key]
    paper_id = aliases.by_title_key.get(record.title_key)
    return None if paper_id is None else by_pk.get(paper_id)


_MERGE_READS = [
    "title",
    "title_key",
    "arxiv_id",
    "arxiv_version",
    "authors",
    "author_count",
    "url",
    "pdf_url",
    "published_on",
    "upvotes",
    "categories",
    "sources",
    "seen_in",
    "seen_count",
    "edited_fields",
]


@dataclass
class _Existing:
    by_arxiv_id: dict[str, Paper]
    by_title_key: dict[str, Paper]
    by_pk: dict[int, Paper]
    aliases: _Aliases

    def find(self, record: PaperRecord) -> Paper | None:
        return _find(record, self.by_arxiv_id, self.by_title_key, self.by_pk, self.aliases)

    def title_key_owner(self, title_key: str) -> Paper | None:
        """The paper holding the key, as its own or an alias's."""
        if title_key in self.by_title_key:
            return self.by_title_key[title_key]
        paper_id = self.aliases.by_title_key.get(title_key)
        return None if paper_id is None else self.by_pk.get(paper_id)


def _existing_papers(records: Sequence[PaperRecord], aliases: _Aliases) -> _Existing:
    # Locked for the batch, so an editor's save cannot land between our read and our write.
    # Only what merging reads: abstracts stay in the database, their length is enough.
    papers = list(
        Paper.objects.select_for_update()
        .filter(_matching(records, aliases))
        .only(*_MERGE_READS)
        .annotate(abstract_length=Length("abstract"))
    )
    return _Existing(
        by_arxiv_id={paper.arxiv_id: paper for paper in papers if paper.arxiv_id},
        by_title_key={paper.title_key: paper for paper in papers},
        by_pk={paper.pk: paper for paper in papers} if aliases else {},
        aliases=aliases,
    )


def _one_record_per_paper(
    records: list[PaperRecord], existing: _Existing
) -> tuple[list[tuple[PaperRecord, Paper | None]], list[PaperRecord]]:
    claimed: set[tuple[str, object]] = set()
    this_round: list[tuple[PaperRecord, Paper | None]] = []
    later: list[PaperRecord] = []
    for record in records:
        paper = existing.find(record)
        claims = {("key", record.title_key)}
        if record.arxiv_id:
            claims.add(("arxiv", record.arxiv_id))
        if paper is not None:
            claims.add(("paper", paper.pk))
        if claims & claimed:
            later.append(record)
        else:
            claimed |= claims
            this_round.append((record, paper))
    return this_round, later


def _store_round(
    pairs: list[tuple[PaperRecord, Paper | None]],
    existing: _Existing,
    *,
    fingerprint: str,
    source_format: str,
    now: datetime,
) -> StoreCounts:
    counts = StoreCounts()
    new_papers: list[Paper] = []
    changed_by_fields: dict[frozenset[str], list[Paper]] = {}
    for record, paper in pairs:
        if paper is None:
            new_papers.append(new_paper(record, fingerprint, source_format, now))
            continue
        key_owner = existing.title_key_owner(record.title_key)
        changed = merge_record(
            paper, record, fingerprint, source_format, now, key_free=key_owner in (None, paper)
        )
        if changed:
            changed_by_fields.setdefault(frozenset(changed), []).append(paper)
            counts.updated += 1
        else:
            counts.unchanged += 1
    if new_papers:
        insert_instances(Paper, new_papers)
    counts.created = len(new_papers)
    for fields, papers in changed_by_fields.items():
        Paper.objects.bulk_update(papers, sorted(fields), batch_size=500)
    return counts
