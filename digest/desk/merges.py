"""Merging duplicate papers into one, and undoing it: every row that pointed at a removed paper
(deliveries, ratings, aliases) moves to the kept one, and a snapshot lets an editor undo it."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from digest.desk.merge_preview import kept_paper, richness, title_similarity
from digest.models import (
    DeliveredPaper,
    Delivery,
    Paper,
    PaperAlias,
    PaperMerge,
    Rating,
)
from subscriptions.models import Subscriber


@dataclass(frozen=True)
class Merge:
    kept: Paper
    removed: list[Paper]  # unsaved copies of the deleted rows, for the editor's log
    moved_deliveries: int
    record: PaperMerge  # what undoes it


def _union(*lists: list) -> list:
    seen: dict = {}
    for items in lists:
        for item in items:
            seen.setdefault(item, None)
    return list(seen)


class _ExactEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder rounds times to milliseconds; a restored paper keeps them whole."""

    def default(self, o):
        if isinstance(o, datetime | date | time):
            return o.isoformat()
        return super().default(o)


def _snapshot(rows: Iterable) -> list[dict]:
    """Rows as JSON-ready dicts (model, pk, fields) that `_restore` saves back as they were."""
    return json.loads(json.dumps(serializers.serialize("python", rows), cls=_ExactEncoder))


def _restore(snapshot: list[dict]) -> None:
    for row in serializers.deserialize("python", snapshot):
        row.save()


class MergeConflict(ValueError):
    """Some of the papers to merge are gone: another editor merged them away (or deleted them)
    since they were chosen. Nothing was merged; the message says where they went."""


def gone_papers(paper_ids: Iterable[int]) -> str:
    """What became of those of these papers that no longer exist ('' when they all do)."""
    wanted = set(paper_ids)
    gone = wanted - set(Paper.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    if not gone:
        return ""
    merged_into: dict[int, PaperMerge] = {}
    # Merges are rare and the recent ones are the likely culprits: look there, newest first.
    for merge in PaperMerge.objects.filter(undone_at=None).order_by("-pk")[:200]:
        for entry in merge.snapshot.get("removed", []):
            if entry["paper"]["pk"] in gone:
                merged_into.setdefault(entry["paper"]["pk"], merge)
    return "; ".join(
        f"paper #{pk} was merged into paper #{merge.kept_id} (merge #{merge.pk})"
        if (merge := merged_into.get(pk))
        else f"paper #{pk} was deleted"
        for pk in sorted(gone)
    )


@transaction.atomic
def merge_papers(paper_ids: Iterable[int], *, keep: int | None = None, merged_by=None) -> Merge:
    """Fold duplicates into the richest of them (or the one `keep` names) and delete the others.

    The kept paper takes over the others' deliveries (so nobody is sent the paper again), their
    readers' ratings (one per reader), their sightings (sources, first and last seen, the inputs
    they were seen in), the highest upvotes, the editor's flags and edits, and any field it
    lacks, and their identities: their title keys
    and arXiv ids (and those of duplicates merged into them before) become aliases of the kept
    paper, so ingest files a later record of theirs under it instead of creating them again.
    A PaperMerge records all of it, so `unmerge` can undo it. All or nothing: MergeConflict
    when one of the papers was merged away (or deleted) since it was chosen.
    """
    paper_ids = list(paper_ids)
    papers = list(Paper.objects.select_for_update().filter(pk__in=paper_ids).order_by("pk"))
    if len(papers) < len(set(paper_ids)):  # another merge got there first, and committed
        raise MergeConflict(
            f"{gone_papers(paper_ids)} since it was chosen. Choose the papers again"
        )
    if len(papers) < 2:
        raise ValueError("merging needs at least two papers")
    kept = kept_paper(papers, keep)
    removed = [paper for paper in papers if paper.pk != kept.pk]
    removed_ids = [paper.pk for paper in removed]
    [kept_before] = _snapshot([kept])
    removed_snapshots = {
        paper.pk: {
            "paper": _snapshot([paper])[0],
            "delivered": _snapshot(DeliveredPaper.objects.filter(paper=paper).order_by("pk")),
            "alias_ids": list(paper.aliases.order_by("pk").values_list("pk", flat=True)),
            "ratings": _snapshot(Rating.objects.filter(paper=paper).order_by("pk")),
        }
        for paper in removed
    }

    moved = _move_deliveries(kept, removed_ids)
    moved_ratings = _move_ratings(kept, removed_ids)
    for snapshot in removed_snapshots.values():
        delivered_ids = {row["pk"] for row in snapshot["delivered"]}
        snapshot["moved_delivered_ids"] = sorted(delivered_ids & set(moved))
        rating_ids = {row["pk"] for row in snapshot["ratings"]}
        snapshot["moved_rating_ids"] = sorted(rating_ids & set(moved_ratings))

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
    created_aliases = PaperAlias.objects.bulk_create(
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
    created_alias_ids = list(
        PaperAlias.objects.filter(
            title_key__in=[alias.title_key for alias in created_aliases]
        ).values_list("pk", flat=True)
    )  # bulk_create leaves the primary keys unset on some databases
    record = PaperMerge.objects.create(
        kept=kept,
        merged_by=merged_by,
        merged_titles=[paper.title for paper in removed],
        similarity=min(
            title_similarity(first.title, second.title)
            for n, first in enumerate(papers)
            for second in papers[n + 1 :]
        ),
        snapshot={
            "kept_before": kept_before,
            "kept_after": _snapshot([kept])[0],
            "removed": list(removed_snapshots.values()),
            "created_alias_ids": sorted(created_alias_ids),
        },
    )
    return Merge(kept=kept, removed=removed, moved_deliveries=len(moved), record=record)


def _move_deliveries(kept: Paper, removed_ids: list[int]) -> list[int]:
    """Point the duplicates' DeliveredPaper rows at the kept paper, one row per delivery; the
    ids of the rows moved."""
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
    return to_move


def _move_ratings(kept: Paper, removed_ids: list[int]) -> list[int]:
    """Point the duplicates' ratings at the kept paper, one per reader (their own rating of the
    kept paper first, else their latest of the duplicates); the ids of the ratings moved."""
    rows = Rating.objects.filter(paper_id__in=[kept.pk, *removed_ids]).values_list(
        "pk", "subscriber_id", "paper_id", "rated_at"
    )
    by_reader: dict[int, list[tuple]] = {}
    for pk, subscriber_id, paper_id, rated_at in rows:
        by_reader.setdefault(subscriber_id, []).append((paper_id == kept.pk, rated_at, pk))
    to_move = [max(items)[2] for items in by_reader.values() if not max(items)[0]]
    Rating.objects.filter(pk__in=to_move).update(paper=kept)
    return to_move


class CannotUnmerge(Exception):
    pass


@dataclass(frozen=True)
class Unmerge:
    kept: Paper
    restored: list[Paper]
    restored_deliveries: int
    restored_ratings: int


@transaction.atomic
def unmerge(merge_id: int, *, undone_by=None) -> Unmerge:
    """Undo a merge: the merged-away papers come back as they were (same ids), with their digest
    rows and their aliases; the aliases the merge created go, so ingest files their records under
    them again; the kept paper gets back the fields the merge changed, unless something changed
    them since (a later ingest or edit wins). CannotUnmerge says why when it cannot."""
    record = PaperMerge.objects.select_for_update().filter(pk=merge_id).first()
    if record is None:
        raise CannotUnmerge(f"merge #{merge_id} does not exist")
    if record.undone_at is not None:
        raise CannotUnmerge(f"merge #{merge_id} was already undone")
    kept = Paper.objects.select_for_update().filter(pk=record.kept_id).first()
    if kept is None:
        raise CannotUnmerge(
            f"paper #{record.kept_id}, which merge #{merge_id} kept, was merged into another "
            "paper since: undo that merge first"
        )
    snapshot = record.snapshot
    removed = snapshot["removed"]
    taken = _identities_taken(removed, kept)
    if taken:
        raise CannotUnmerge(f"merge #{merge_id} cannot be undone: {taken}")

    _restore_kept_fields(kept, snapshot["kept_before"], snapshot["kept_after"])
    kept.save()  # first: it may give back an arXiv id a restored paper holds
    PaperAlias.objects.filter(pk__in=snapshot["created_alias_ids"]).delete()
    _restore([entry["paper"] for entry in removed])
    restored_deliveries = restored_ratings = 0
    for entry in removed:
        paper_id = entry["paper"]["pk"]
        PaperAlias.objects.filter(pk__in=entry["alias_ids"], paper=kept).update(paper_id=paper_id)
        restored_deliveries += _give_back(
            DeliveredPaper,
            entry["delivered"],
            moved_ids=entry["moved_delivered_ids"],
            kept=kept,
            paper_id=paper_id,
            parent=("delivery", Delivery),
        )
        restored_ratings += _give_back(
            Rating,
            entry.get("ratings", []),
            moved_ids=entry.get("moved_rating_ids", []),
            kept=kept,
            paper_id=paper_id,
            parent=("subscriber", Subscriber),
        )
    record.undone_at = timezone.now()
    record.undone_by = undone_by
    record.save(update_fields=["undone_at", "undone_by"])
    restored = list(Paper.objects.filter(pk__in=[entry["paper"]["pk"] for entry in removed]))
    return Unmerge(
        kept=kept,
        restored=restored,
        restored_deliveries=restored_deliveries,
        restored_ratings=restored_ratings,
    )


def _give_back(model, snapshot: list[dict], *, moved_ids, kept, paper_id, parent) -> int:
    """Rows of a merged-away paper back to it: the ones the merge moved to the kept paper (if
    they are still there), and the ones it deleted (if what they belong to, a delivery or a
    reader, still exists). How many came back."""
    count = model.objects.filter(pk__in=moved_ids, paper=kept).update(paper_id=paper_id)
    field, parent_model = parent
    existing = set(
        model.objects.filter(pk__in=[row["pk"] for row in snapshot]).values_list("pk", flat=True)
    )
    live_parents = set(
        parent_model.objects.filter(pk__in=[row["fields"][field] for row in snapshot]).values_list(
            "pk", flat=True
        )
    )
    missing = [
        row
        for row in snapshot
        if row["pk"] not in existing and row["fields"][field] in live_parents
    ]
    _restore(missing)
    return count + len(missing)


def _identities_taken(removed: list[dict], kept: Paper) -> str:
    """Why the merged-away papers cannot come back with their ids, title keys and arXiv ids
    ('' when they can)."""
    problems = []
    for entry in removed:
        pk, fields = entry["paper"]["pk"], entry["paper"]["fields"]
        if Paper.objects.filter(pk=pk).exists():
            problems.append(f"paper #{pk} exists again")
        if Paper.objects.filter(title_key=fields["title_key"]).exclude(pk=pk).exists():
            problems.append(f"another paper has the title key {fields['title_key']!r}")
        arxiv_id = fields["arxiv_id"]
        holder = Paper.objects.filter(arxiv_id=arxiv_id).first() if arxiv_id else None
        if holder is not None and holder.pk != kept.pk:
            problems.append(f"paper #{holder.pk} has the arXiv id {arxiv_id}")
    return "; ".join(problems)


def _restore_kept_fields(kept: Paper, before: dict, after: dict) -> None:
    """Three-way: a field the merge changed goes back to its value before the merge, unless it
    changed again since; lists lose what the merge added and keep what came later."""
    [current] = _snapshot([kept])
    before, after, current = before["fields"], after["fields"], current["fields"]
    restored = {}
    for name, merged in after.items():
        old, now = before[name], current[name]
        if merged == old:
            continue
        if isinstance(merged, list) and isinstance(now, list) and isinstance(old, list):
            restored[name] = [item for item in old if item in now] + [
                item for item in now if item not in merged and item not in old
            ]
        elif name == "seen_count":
            restored[name] = max(old + now - merged, 1)
        elif now == merged:
            restored[name] = old
    if "arxiv_id" in restored and "arxiv_version" not in restored:
        restored["arxiv_version"] = before["arxiv_version"]
    for name, value in restored.items():
        field = Paper._meta.get_field(name)
        setattr(kept, field.attname, field.to_python(value))
