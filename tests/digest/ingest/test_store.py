from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from digest.ingest.records import PaperRecord
from digest.ingest.store import store_papers
from digest.models import Paper, PaperAlias

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 1, 22, 6, 0, tzinfo=UTC)


def store(records, *, fingerprint="dump-1", source_format="daily-text", now=NOW):
    return store_papers(records, fingerprint=fingerprint, source_format=source_format, now=now)


def record(title="Sparse Experts Route Tokens", abstract="We route tokens.", **fields):
    return PaperRecord(title=title, abstract=abstract, where="line 1", **fields)


def test_new_records_become_papers_with_first_and_last_seen():
    counts = store([record(), record("Another Paper")])
    assert (counts.created, counts.updated, counts.unchanged) == (2, 0, 0)
    paper = Paper.objects.get(title="Sparse Experts Route Tokens")
    assert paper.title_key == "sparse experts route tokens"
    assert (paper.first_seen, paper.last_seen, paper.seen_count) == (NOW, NOW, 1)
    assert paper.sources == ["daily-text"]


def test_same_input_twice_creates_nothing_and_reports_everything_unchanged():
    store([record(), record("Another Paper")])
    counts = store([record(), record("Another Paper")], now=NOW + timedelta(hours=1))
    assert (counts.created, counts.updated, counts.unchanged) == (0, 0, 2)
    assert Paper.objects.count() == 2
    assert set(Paper.objects.values_list("seen_count", "last_seen")) == {(1, NOW)}


def test_a_paper_repeated_within_one_input_counts_once():
    counts = store([record(), record(upvotes=3), record()])
    assert (counts.created, counts.updated, counts.unchanged) == (1, 1, 1)
    paper = Paper.objects.get()
    assert (paper.seen_count, paper.upvotes) == (1, 3)


def test_a_later_dump_counts_another_sighting_and_moves_last_seen():
    store([record()])
    later = NOW + timedelta(days=1)
    counts = store([record()], fingerprint="dump-2", now=later)
    assert counts.updated == 1
    paper = Paper.objects.get()
    assert (paper.first_seen, paper.last_seen, paper.seen_count) == (NOW, later, 2)


def test_titles_differing_in_case_punctuation_and_accents_are_one_paper():
    store([record("Deep Résumé Parsing: A Study")])
    store([record("deep resume parsing - a study")], fingerprint="dump-2")
    assert Paper.objects.count() == 1
    assert Paper.objects.get().title == "Deep Résumé Parsing: A Study"


def test_feed_and_dump_of_the_same_paper_become_one_row_with_the_feeds_details():
    store([record("Sparse Experts Route Tokens", "We route tok", upvotes=12)])
    store(
        [
            record(
                "Sparse Experts Route Tokens",
                "We route tokens to experts, the full abstract.",
                arxiv_id="2401.11111",
                arxiv_version=1,
                authors=["Ada Lovelace", "Alan Turing"],
                categories=["cs.LG"],
                url="https://arxiv.org/abs/2401.11111",
            )
        ],
        fingerprint="feed-1",
        source_format="feed",
    )
    paper = Paper.objects.get()
    assert paper.arxiv_id == "2401.11111"
    assert paper.abstract == "We route tokens to experts, the full abstract."
    assert (paper.authors, paper.author_count) == (["Ada Lovelace", "Alan Turing"], 2)
    assert (paper.upvotes, paper.categories) == (12, ["cs.LG"])
    assert paper.sources == ["daily-text", "feed"]
    assert paper.seen_count == 2


def test_arxiv_id_wins_over_a_changed_title():
    store([record("Old Title", arxiv_id="2401.11111", arxiv_version=1)], source_format="feed")
    store(
        [record("Entirely New Title", arxiv_id="2401.11111", arxiv_version=2)],
        fingerprint="feed-2",
        source_format="feed",
    )
    paper = Paper.objects.get()
    assert (paper.title, paper.title_key, paper.arxiv_version) == (
        "Entirely New Title",
        "entirely new title",
        2,
    )


def test_upvotes_keep_the_highest_seen():
    store([record(upvotes=10)])
    store([record(upvotes=4)], fingerprint="dump-2")
    assert Paper.objects.get().upvotes == 10
    store([record(upvotes=25)], fingerprint="dump-3")
    assert Paper.objects.get().upvotes == 25


def test_a_truncated_dump_abstract_never_replaces_a_longer_one():
    store([record(abstract="The complete abstract, long and whole.")])
    store([record(abstract="The complete abs")], fingerprint="dump-2")
    assert Paper.objects.get().abstract == "The complete abstract, long and whole."


def test_hidden_pinned_and_edited_fields_survive_a_later_ingest():
    store([record("A Title", "Short.", arxiv_id="2401.11111", arxiv_version=1)])
    Paper.objects.update(
        hidden=True, pinned=True, title="An Editor's Title", edited_fields=["title", "abstract"]
    )
    store(
        [
            record(
                "A Revised Title",
                "A much longer revised abstract.",
                arxiv_id="2401.11111",
                arxiv_version=2,
                upvotes=5,
            )
        ],
        fingerprint="feed-2",
    )
    paper = Paper.objects.get()
    assert (paper.hidden, paper.pinned) == (True, True)
    assert (paper.title, paper.abstract) == ("An Editor's Title", "Short.")
    assert (paper.upvotes, paper.arxiv_version) == (5, 2)


def test_records_without_metadata_do_not_erase_what_is_known():
    store([record(authors=["Ada Lovelace"], published_on=date(2024, 1, 2), categories=["cs.LG"])])
    store([record()], fingerprint="dump-2")
    paper = Paper.objects.get()
    assert (paper.authors, paper.published_on, paper.categories) == (
        ["Ada Lovelace"],
        date(2024, 1, 2),
        ["cs.LG"],
    )


def test_a_batch_is_a_few_bulk_queries_not_one_per_paper():
    def queries(count, fingerprint):
        records = [record(f"Paper number {fingerprint} {n}") for n in range(count)]
        with CaptureQueriesContext(connection) as context:
            store(records, fingerprint=fingerprint)
        return len(context.captured_queries)

    assert queries(400, "first") <= 15  # SQLite inserts at most 999 parameters at a time
    assert queries(400, "first") <= 4  # unchanged: one select in a transaction


def test_a_large_batch_stores_every_field_as_given():
    records = [
        record(
            f"Paper {n} with “quotes”, a tab\tand a backslash \\",
            f"Abstract {n}: ünïcödé, 'single' and \"double\" quotes.",
            arxiv_id=f"2401.{n:05d}" if n % 2 else None,
            arxiv_version=n % 3 or None,
            authors=["Ada Lovelace", f"Author {n}"] if n % 4 else [],
            author_count=None if n % 4 else 7,
            url=f"https://arxiv.org/abs/2401.{n:05d}",
            published_on=date(2024, 1, 1 + n % 28) if n % 5 else None,
            upvotes=n,
            categories=["cs.LG", "cs.CL"][: n % 3],
        )
        for n in range(120)
    ]
    store(records)
    stored = {paper.title: paper for paper in Paper.objects.all()}
    assert len(stored) == 120
    for given in records:
        paper = stored[given.title]
        assert (paper.title_key, paper.abstract, paper.arxiv_id, paper.arxiv_version) == (
            given.title_key,
            given.abstract,
            given.arxiv_id,
            given.arxiv_version,
        )
        assert (paper.authors, paper.author_count) == (
            given.authors,
            len(given.authors) or given.author_count,
        )
        assert (paper.url, paper.published_on, paper.upvotes, paper.categories) == (
            given.url,
            given.published_on,
            given.upvotes,
            given.categories,
        )
        assert (paper.sources, paper.seen_in, paper.first_seen, paper.hidden) == (
            ["daily-text"],
            ["dump-1"],
            NOW,
            False,
        )


def test_a_paper_repeated_in_a_later_batch_of_the_same_input_is_still_merged():
    stored_from_input: set[int] = set()

    def batch(*records):
        return store_papers(
            list(records),
            fingerprint="dump-1",
            source_format="feed",
            now=NOW,
            stored_from_input=stored_from_input,
        )

    batch(record(upvotes=1, arxiv_id="2401.11111", arxiv_version=1))
    counts = batch(
        record(upvotes=9),
        record("The Revised Title", arxiv_id="2401.11111", arxiv_version=2),
    )
    assert (counts.created, counts.updated, counts.unchanged) == (0, 2, 0)
    paper = Paper.objects.get()
    assert (paper.upvotes, paper.title, paper.seen_count) == (9, "The Revised Title", 1)


def test_reingesting_an_input_reads_each_batch_once_and_writes_nothing():
    records = [record(f"Paper {n}", upvotes=n) for n in range(300)]
    store(records)
    with CaptureQueriesContext(connection) as context:
        counts = store(records)
    assert counts.unchanged == 300
    statements = [query["sql"].split()[0].upper() for query in context.captured_queries]
    assert statements.count("SELECT") == 2  # the papers, and aliases of merged-away duplicates
    assert not {"INSERT", "UPDATE", "DELETE"} & set(statements)


def test_a_paper_deleted_since_is_created_again_by_a_reingest():
    store([record("Kept"), record("Deleted by an editor")])
    Paper.objects.filter(title="Deleted by an editor").delete()
    counts = store([record("Kept"), record("Deleted by an editor")])
    assert (counts.created, counts.unchanged) == (1, 1)


def test_a_record_under_a_merged_away_identity_updates_the_kept_paper():
    store([record("Kept Title", upvotes=3, arxiv_id="2401.00001")], fingerprint="feed-1")
    kept = Paper.objects.get()
    Paper.objects.filter(pk=kept.pk).update(title="An Editor's Title", edited_fields=["title"])
    PaperAlias.objects.create(title_key="merged away title", arxiv_id="2401.00009", paper=kept)

    counts = store(
        [
            record("Merged Away Title", upvotes=8),
            record("Another Title Entirely", arxiv_id="2401.00009", arxiv_version=2),
        ],
        fingerprint="dump-2",
        source_format="feed",
    )

    assert (counts.created, counts.updated, counts.unchanged) == (0, 1, 1)  # one paper, twice
    paper = Paper.objects.get()
    assert (paper.title, paper.arxiv_id, paper.upvotes) == ("An Editor's Title", "2401.00001", 8)
    assert (paper.seen_count, paper.sources) == (2, ["daily-text", "feed"])


def test_resolving_aliases_costs_one_query_per_batch_not_one_per_record():
    store([record(f"Kept {n}") for n in range(50)], fingerprint="first")
    PaperAlias.objects.bulk_create(
        PaperAlias(title_key=f"merged {n}", paper=paper)
        for n, paper in enumerate(Paper.objects.all())
    )
    with CaptureQueriesContext(connection) as context:
        counts = store([record(f"Merged {n}") for n in range(50)], fingerprint="second")
    assert (counts.created, counts.updated) == (0, 50)
    assert len(context.captured_queries) <= 8
