import re
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.ingest import feeds, ingest
from digest.ingest.feeds import parse_feed, parse_feed_bytes
from digest.ingest.records import (
    TITLE_MAX_CHARS,
    URL_MAX_CHARS,
    PaperRecord,
    Rejection,
    clean_text,
)
from digest.models import FeedState, IngestRun, Paper
from tests.conftest import QuietHandler, http_server
from tests.unicode_text import any_text

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def records_of(name: str) -> list[PaperRecord | Rejection]:
    return list(parse_feed(parse_feed_bytes((FIXTURES / name).read_bytes())))


def test_arxiv_rss2_gives_id_version_plain_abstract_authors_and_categories():
    first, cross, replaced = records_of("arxiv-rss2.xml")
    assert first.title == "Sparse Mixture of Experts Routing at Scale"
    assert (first.arxiv_id, first.arxiv_version) == ("2401.11111", 1)
    assert first.abstract == "We route tokens to experts with a learned gate & show it scales."
    assert first.authors == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert first.categories == ["cs.LG", "cs.AI"]
    assert first.published_on == date(2024, 1, 22)
    assert first.url == "https://arxiv.org/abs/2401.11111"
    assert cross.arxiv_id == "2401.22222"
    assert (replaced.arxiv_id, replaced.arxiv_version) == ("2309.17453", 3)
    assert replaced.authors == ["Guangxuan Xiao", "Song Han"]


def test_rss1_rdf_listing_loses_the_arxiv_suffix_of_its_titles():
    wizard, judging = records_of("arxiv-rss1.rdf")
    assert wizard.title == "WizardCoder: Empowering Code Large Language Models with Evol-Instruct"
    assert (wizard.arxiv_id, wizard.arxiv_version, wizard.categories) == (
        "2306.08568",
        1,
        ["cs.CL"],
    )
    assert wizard.abstract.startswith("Code Large Language Models (Code LLMs)")
    assert "<p>" not in wizard.abstract
    assert wizard.authors == ["Ziyang Luo", "Can Xu"]
    assert (judging.arxiv_id, judging.arxiv_version) == ("2306.05685", 2)


def test_arxiv_api_atom_gives_the_pdf_link_and_old_style_ids():
    moe, old = records_of("arxiv-api.atom")
    assert moe.title == "Sparse Mixture of Experts Routing at Scale"
    assert (moe.arxiv_id, moe.arxiv_version) == ("2401.11111", 2)
    assert moe.pdf_url == "http://arxiv.org/pdf/2401.11111v2"
    assert moe.categories == ["cs.LG", "cs.DC"]
    assert moe.published_on == date(2024, 1, 21)
    assert (old.arxiv_id, old.categories) == ("hep-th/9901001", ["hep-th"])


def test_html_in_a_feed_title_becomes_text():
    feed = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
    <item><title>Bold &lt;b&gt;Claims&lt;/b&gt; &amp;amp; More</title>
    <description>Abstract: Text.</description></item></channel></rss>"""
    [record] = parse_feed(parse_feed_bytes(feed))
    assert (record.title, record.abstract) == ("Bold Claims & More", "Text.")


@pytest.mark.django_db
def test_a_feed_and_the_same_paper_from_another_feed_are_one_row():
    ingest(str(FIXTURES / "arxiv-rss2.xml"))
    run = ingest(str(FIXTURES / "arxiv-api.atom"))
    assert (run.format, run.created, run.updated) == ("feed", 1, 1)
    paper = Paper.objects.get(arxiv_id="2401.11111")
    assert paper.arxiv_version == 2
    assert paper.abstract.endswith("with a full abstract longer than the feed's.")
    assert paper.seen_count == 2


@pytest.mark.django_db
def test_feed_that_is_not_well_formed_fails_with_feedparsers_reason(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<?xml version='1.0'?><rss><channel><title>oops</channel>")
    run = ingest(str(path))
    assert run.status == IngestRun.Status.FAILED
    assert run.error.startswith("not a well-formed feed: ")


@pytest.mark.django_db
def test_entries_feedparser_recovers_from_a_malformed_feed_are_kept_and_the_fault_reported(
    tmp_path,
):
    path = tmp_path / "sloppy.xml"
    path.write_text(
        "<?xml version='1.0'?><rss version='2.0'><channel><title>t &nbsp; x</title>"
        "<item><title>Recovered Paper</title><link>https://arxiv.org/abs/2401.55555</link>"
        "<description>Abstract: Still here.</description></item></channel></rss>"
    )
    run = ingest(str(path))
    assert run.status == IngestRun.Status.SUCCEEDED
    assert Paper.objects.get().arxiv_id == "2401.55555"
    assert run.rejected_count == 1
    assert run.rejected[0]["where"] == "feed"
    assert run.rejected[0]["why"].startswith("not well-formed, entries recovered: ")


class FeedServer:
    """Answers like arXiv: ETag, Last-Modified, 304 (served by the `feed_server` fixture)."""

    etag = '"feed-v1"'
    last_modified = "Mon, 22 Jan 2024 05:00:00 GMT"
    url = ""

    def __init__(self) -> None:
        self.body = (FIXTURES / "arxiv-rss2.xml").read_bytes()
        self.requests: list[dict[str, str]] = []

    def handler(self) -> type[QuietHandler]:
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.requests.append(dict(self.headers))
                if self.path.startswith("/missing"):
                    self.send_error(404)
                    return
                if self.headers.get("If-None-Match") == server.etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", server.etag)
                self.send_header("Last-Modified", server.last_modified)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

        return Handler


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    with http_server(server.handler()) as base:
        server.url = f"{base}/rss/cs.LG"
        yield server


@pytest.mark.django_db
def test_a_feed_url_is_ingested_and_its_etag_remembered(feed_server):
    run = ingest(feed_server.url)
    assert (run.status, run.format, run.created) == (IngestRun.Status.SUCCEEDED, "feed", 3)
    state = FeedState.objects.get(url=feed_server.url)
    assert (state.etag, state.last_modified) == (feed_server.etag, feed_server.last_modified)


@pytest.mark.django_db
def test_an_unchanged_feed_costs_one_conditional_request_answered_304(feed_server):
    ingest(feed_server.url)
    run = ingest(feed_server.url)
    assert len(feed_server.requests) == 2
    assert feed_server.requests[1]["If-None-Match"] == feed_server.etag
    assert feed_server.requests[1]["If-Modified-Since"] == feed_server.last_modified
    assert (run.status, run.records, run.note) == (
        IngestRun.Status.SUCCEEDED,
        0,
        "not modified since the last poll",
    )
    assert Paper.objects.count() == 3


@pytest.mark.django_db
def test_a_changed_feed_is_fetched_again_and_its_new_etag_remembered(feed_server):
    ingest(feed_server.url)
    feed_server.etag = '"feed-v2"'
    feed_server.body = (FIXTURES / "arxiv-api.atom").read_bytes()
    run = ingest(feed_server.url)
    assert (run.created, run.updated) == (1, 1)
    assert FeedState.objects.get(url=feed_server.url).etag == '"feed-v2"'


@pytest.mark.django_db
def test_a_feed_url_answering_an_error_fails_with_the_status(feed_server):
    url = feed_server.url.replace("/rss/", "/missing/")
    run = ingest(url)
    assert (run.status, run.error) == (IngestRun.Status.FAILED, f"{url} answered HTTP 404")
    assert not FeedState.objects.filter(url=url).exists()


@pytest.mark.django_db
def test_an_unreachable_feed_url_fails_with_a_reason():
    run = ingest("http://127.0.0.1:9/rss")
    assert run.status == IngestRun.Status.FAILED
    assert run.error.startswith("cannot fetch http://127.0.0.1:9/rss")


@pytest.mark.django_db
def test_a_feed_server_that_never_answers_fails_the_run_after_the_timeout(settings):
    settings.FETCH_TIMEOUT_SECONDS = 0.5
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections complete, nothing is ever read or answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/rss"
        run = ingest(url)
    assert run.status == IngestRun.Status.FAILED
    assert run.error.startswith(f"cannot fetch {url}: ")
    assert "timed out" in run.error


# Property-based: any unicode in any entry field, and good entries beside bad ones.

SURROGATE = re.compile("[\ud800-\udfff]")


def entry(**fields) -> feedparser.FeedParserDict:
    return feedparser.FeedParserDict(fields)


entries = st.builds(
    lambda title, summary, id, link, author, term, href: entry(
        title=title,
        summary=summary,
        id=id,
        link=link,
        authors=[{"name": author}],
        tags=[{"term": term}],
        links=[{"href": href, "type": "application/pdf"}],
    ),
    *[any_text] * 7,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(entries, max_size=6), st.booleans())
def test_any_unicode_in_any_entry_field_gives_clean_records_or_rejections(items, bozo):
    parsed = feedparser.FeedParserDict(
        entries=items, feed=feedparser.FeedParserDict(), bozo=bozo, bozo_exception="bad"
    )

    read = list(parse_feed(parsed)) if items or not bozo else []

    assert len(read) == len(items) + bozo * bool(items)
    for record in (item for item in read if isinstance(item, PaperRecord)):
        assert record.title and len(record.title) <= TITLE_MAX_CHARS
        texts = (record.title, record.abstract, *record.authors, *record.categories)
        assert all(clean_text(text) == text and not SURROGATE.search(text) for text in texts)
        assert len(record.url) <= URL_MAX_CHARS and len(record.pdf_url) <= URL_MAX_CHARS


xml_character = st.characters(
    exclude_categories=["Cs"],
    exclude_characters="".join(map(chr, [*range(9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF])),
)
good_title = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=40)
bad_item = st.one_of(  # (the item, whether it is well-formed XML)
    st.just(("<item><title></title></item>", True)),
    st.text(xml_character, max_size=60).map(
        lambda text: (
            f"<item><title>{escape(text)}</title><description>{escape(text)}</description></item>",
            True,
        )
    ),
    st.just(("<item><description>no title at all</description></item>", True)),
    any_text.map(lambda text: (f"<item><title>{text[:50]}</title></item>", False)),  # raw
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(good_title, st.lists(bad_item, max_size=2)), min_size=1, max_size=5))
def test_good_entries_of_a_feed_are_kept_beside_bad_ones(groups):
    items = "".join(
        f"<item><title>{title}</title><description>A paper.</description></item>"
        + "".join(item for item, _ in bad)
        for title, bad in groups
    )
    document = f"<?xml version='1.0'?><rss version='2.0'><channel>{items}</channel></rss>"
    well_formed = all(ok for _, bad in groups for _, ok in bad)

    try:
        titles = [
            item.title
            for item in parse_feed(parse_feed_bytes(document.encode("utf-8", "surrogatepass")))
            if isinstance(item, PaperRecord)
        ]
    except feeds.FeedError as error:  # the documented refusal, for a feed nothing is read from
        assert not well_formed and str(error)
        return
    if well_formed:
        remaining = iter(titles)
        assert all(any(title == good for title in remaining) for good, _ in groups)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | any_text.map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_any_bytes_give_records_or_fail_as_not_a_feed(data):
    try:
        items = list(parse_feed(parse_feed_bytes(data)))
    except feeds.FeedError as error:
        assert str(error)
    else:
        assert all(isinstance(item, PaperRecord | Rejection) for item in items)


def test_a_character_reference_to_half_a_surrogate_pair_is_read_as_a_replacement_character():
    document = (
        "<?xml version='1.0'?><rss version='2.0'><channel><item><title>A &#xD800; Paper"
        "</title><category>&#55296;</category></item></channel></rss>"
    )

    [record] = parse_feed(parse_feed_bytes(document.encode()))

    assert (record.title, record.categories) == ("A \ufffd Paper", ["\ufffd"])
