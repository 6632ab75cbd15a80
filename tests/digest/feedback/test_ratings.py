"""Paper pages, the "More like this" / "Less like this" links of a digest, and the ratings part of
the preference page (what the reader rated, undo, "Papers like these")."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.feedback import ratings
from digest.ingest.latex import readable_latex
from digest.ingest.records import title_key
from digest.models import Paper, Rating
from digest.web.home import forget_home_page
from subscriptions import links
from subscriptions.models import Subscriber
from tests.config.test_csp import assert_passes_its_policy

pytestmark = pytest.mark.django_db


def make_paper(title: str, **fields) -> Paper:
    now = timezone.now()
    fields.setdefault("abstract", "We study a thing and report results.")
    return Paper.objects.create(
        title=title,
        title_key=title_key(title),
        first_seen=now - timedelta(hours=1),
        last_seen=now,
        **fields,
    )


def make_reader(email: str = "reader@example.com") -> Subscriber:
    return Subscriber.objects.create(
        email=email, topics="mixture of experts", status=Subscriber.Status.ACTIVE
    )


def rate_path(paper: Paper, direction: str, reader: Subscriber) -> str:
    return ratings.rate_path(paper.pk, direction, ratings.rating_token(reader, paper.pk))


def preferences_path(reader: Subscriber) -> str:
    token = links.make_token(reader, "preferences")
    return reverse("subscriptions:preferences", kwargs={"token": token})


# --- the paper page ------------------------------------------------------------------------------


def test_paper_page_shows_the_paper_and_links_to_arxiv_pdf_and_daily_papers(client):
    paper = make_paper(
        "Sparse experts at scale",
        abstract="We route tokens to experts.",
        authors=["Ada Lovelace", "Alan Turing"],
        upvotes=42,
        arxiv_id="2401.00001",
        sources=["daily-json"],
    )

    page = client.get(f"/papers/{paper.pk}/").content.decode()

    assert "<h1>Sparse experts at scale</h1>" in page
    assert "Ada Lovelace, Alan Turing" in page
    assert "We route tokens to experts." in page
    assert "▲ 42</span> upvotes" in page
    assert f"first seen {timezone.localtime(paper.first_seen):%-d %B %Y}" in page
    assert 'href="https://arxiv.org/abs/2401.00001"' in page
    assert 'href="https://arxiv.org/pdf/2401.00001"' in page
    assert 'href="https://huggingface.co/papers/2401.00001"' in page
    assert "More like this" not in page  # no reader: no rating buttons


def test_paper_page_without_an_arxiv_id_offers_a_search_link(client):
    paper = make_paper("A paper & its <title>")

    page = client.get(f"/papers/{paper.pk}/").content.decode()

    assert "A paper &amp; its &lt;title&gt;" in page
    assert (
        'href="https://arxiv.org/search/?searchtype=title&amp;query=A+paper+%26+its+%3Ctitle%3E"'
        in page
    )


def test_a_hidden_or_unknown_paper_has_no_page(client):
    hidden = make_paper("Hidden by the editors", hidden=True)

    assert client.get(f"/papers/{hidden.pk}/").status_code == 404
    assert client.get("/papers/999999/").status_code == 404


def test_home_page_trending_titles_link_to_paper_pages(client):
    paper = make_paper("Trending today", upvotes=9)
    cache.clear()
    forget_home_page()

    page = client.get("/").content.decode()

    assert f'href="/papers/{paper.pk}/">Trending today</a>' in page
    assert 'href="#"' not in page


def test_reader_arriving_from_the_email_sees_the_rating_buttons(client):
    paper, reader = make_paper("Sparse experts"), make_reader()
    token = ratings.rating_token(reader, paper.pk)

    response = client.get(f"/papers/{paper.pk}/for/{token}/")
    page = response.content.decode()

    assert response["Referrer-Policy"] == "same-origin"
    assert f'action="/papers/{paper.pk}/more/{token}/"' in page
    assert f'action="/papers/{paper.pk}/less/{token}/"' in page


def test_a_tampered_reader_link_opens_the_public_page(client):
    paper = make_paper("Sparse experts")

    response = client.get(f"/papers/{paper.pk}/for/nonsense/")

    assert response.status_code == 302
    assert response["Location"] == f"/papers/{paper.pk}/"


# --- rating from the email -----------------------------------------------------------------------


def test_opening_a_rating_link_records_nothing_and_shows_one_button(client):
    paper, reader = make_paper("Sparse experts"), make_reader()

    page = client.get(rate_path(paper, "more", reader)).content.decode()

    assert "Sparse experts" in page
    assert page.count("<button") == 1
    assert "More like this</button>" in page
    assert not Rating.objects.exists()


def test_pressing_the_button_records_the_rating_and_says_so(client):
    paper, reader = make_paper("Sparse experts"), make_reader()

    page = client.post(rate_path(paper, "more", reader)).content.decode()

    assert "Noted: more like this" in page
    rating = Rating.objects.get()
    assert (rating.subscriber, rating.paper, rating.value) == (reader, paper, 1)
    assert rating.source == Rating.Source.EMAIL


def test_rating_again_changes_the_rating(client):
    paper, reader = make_paper("Sparse experts"), make_reader()
    client.post(rate_path(paper, "more", reader))

    page = client.post(rate_path(paper, "less", reader)).content.decode()

    assert "Noted: less like this" in page
    assert list(Rating.objects.values_list("value", flat=True)) == [-1]


def test_a_rating_link_works_only_for_its_reader_and_paper(client):
    paper, other_paper, reader = make_paper("One"), make_paper("Two"), make_reader()
    token = ratings.rating_token(reader, paper.pk)

    assert client.post(f"/papers/{other_paper.pk}/more/{token}/").status_code == 400
    assert client.post(f"/papers/{paper.pk}/more/{token[:-3]}xyz/").status_code == 400
    assert client.post(f"/papers/{paper.pk}/sideways/{token}/").status_code == 404
    reader.delete()
    assert client.post(f"/papers/{paper.pk}/more/{token}/").status_code == 400
    assert not Rating.objects.exists()


def test_a_rating_link_needs_no_login_but_a_form_post(client):
    paper, reader = make_paper("Sparse experts"), make_reader()
    csrf_client = type(client)(enforce_csrf_checks=True)
    path = rate_path(paper, "more", reader)

    assert csrf_client.post(path).status_code == 403  # a forged cross-site POST
    page = csrf_client.get(path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert csrf_client.post(path, {"csrfmiddlewaretoken": token.group(1)}).status_code == 200
    assert Rating.objects.count() == 1


# --- the preference page -------------------------------------------------------------------------


def test_preference_page_lists_the_ratings_and_undoes_one(client):
    reader = make_reader()
    liked, disliked = make_paper("Liked paper"), make_paper("Disliked paper")
    ratings.rate(reader, liked, Rating.Value.MORE)
    ratings.rate(reader, disliked, Rating.Value.LESS)

    page = client.get(preferences_path(reader)).content.decode()
    assert "Papers you rated" in page
    assert "Liked paper" in page and "Disliked paper" in page
    undo = re.search(rf'action="(/ratings/[^"]+/undo/{disliked.pk}/)"', page).group(1)

    response = client.post(undo)

    assert response.status_code == 302
    assert response["Location"].endswith("#ratings")
    assert list(Rating.objects.values_list("paper__title", flat=True)) == ["Liked paper"]
    assert "Disliked paper" not in client.get(preferences_path(reader)).content.decode()


def test_undo_needs_the_readers_preference_link(client):
    reader, paper = make_reader(), make_paper("Liked paper")
    ratings.rate(reader, paper, Rating.Value.MORE)

    assert client.post(f"/ratings/forged/undo/{paper.pk}/").status_code == 400
    assert Rating.objects.count() == 1


def test_papers_like_these_rates_up_the_papers_named_by_id_link_or_title(client):
    reader = make_reader()
    by_id = make_paper("Found by id", arxiv_id="2401.00001")
    by_link = make_paper("Found by link", arxiv_id="2402.12345")
    by_title = make_paper("Found: by its Title!")
    token = links.make_token(reader, "preferences")
    box = "\n".join(
        [
            "arXiv:2401.00001v2",
            "  https://arxiv.org/pdf/2402.12345v1.pdf ",
            "",
            "found by its title",
            "A paper nobody ingested",
            "9999.99999",
        ]
    )

    response = client.post(f"/ratings/{token}/seed/", {"papers": box})
    page = response.content.decode()

    assert response.status_code == 200
    assert "Added 3 papers" in page
    assert "A paper nobody ingested" in page and "9999.99999" in page
    rated = Rating.objects.filter(subscriber=reader, value=1, source=Rating.Source.SEED)
    assert {r.paper for r in rated} == {by_id, by_link, by_title}


def test_a_box_naming_nothing_we_know_says_so_and_adds_nothing(client):
    reader = make_reader()
    token = links.make_token(reader, "preferences")

    response = client.post(f"/ratings/{token}/seed/", {"papers": "Not a paper here"})

    assert response.status_code == 400
    assert "We know no paper by this line" in response.content.decode()
    assert not Rating.objects.exists()


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_pasted_text_splits_into_bounded_lines(text):
    lines, ignored = ratings.parse_seed_lines(text)

    assert len(lines) <= ratings.MAX_SEED_LINES
    assert ignored >= 0
    for line in lines:
        assert line.text and line.text == line.text.strip()
        assert len(line.text) <= ratings.MAX_SEED_LINE_CHARS
        if line.arxiv_id:
            assert re.fullmatch(r"\d{4}\.\d{4,5}", line.arxiv_id)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=80),
            st.sampled_from(["2401.00001", "Known paper title", "arXiv:2401.00001v3"]),
        ),
        max_size=8,
    )
)
def test_any_box_content_rates_only_known_papers_and_lists_the_rest(lines):
    client = Client()
    Rating.objects.all().delete()
    reader = Subscriber.objects.filter(email="seed@example.com").first() or make_reader(
        "seed@example.com"
    )
    known = Paper.objects.filter(arxiv_id="2401.00001").first() or make_paper(
        "Known paper title", arxiv_id="2401.00001"
    )
    token = links.make_token(reader, "preferences")

    response = client.post(f"/ratings/{token}/seed/", {"papers": "\n".join(lines)})

    assert response.status_code in (200, 400)
    rated = set(Rating.objects.values_list("paper_id", flat=True))
    assert rated <= {known.pk}


def test_the_paper_and_rating_pages_pass_the_content_security_policy(client):
    paper, reader = make_paper("Sparse experts", arxiv_id="2401.00001"), make_reader()
    token = ratings.rating_token(reader, paper.pk)
    preferences = links.make_token(reader, "preferences")
    pages = [
        client.get(f"/papers/{paper.pk}/"),
        client.get(f"/papers/{paper.pk}/for/{token}/"),
        client.get(f"/papers/{paper.pk}/more/{token}/"),
        client.post(f"/papers/{paper.pk}/less/{token}/"),
        client.post(f"/papers/{paper.pk}/less/forged/"),
        client.post(f"/ratings/{preferences}/seed/", {"papers": "2401.00001\nunknown"}),
        client.get(preferences_path(reader)),
    ]

    assert [page.status_code for page in pages] == [200, 200, 200, 200, 400, 200, 200]
    for page in pages:
        assert_passes_its_policy(page)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_as_a_rating_token_opens_nothing(token):
    paper = Paper.objects.first() or make_paper("Sparse experts")

    with pytest.raises(ratings.InvalidRatingLink):
        ratings.read_rating_token(token, paper.pk)


@settings(max_examples=60, deadline=None)
@given(
    # No NUL and no lone surrogate: ingest's clean_text replaces both, and no database stores them.
    st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=300
    ).filter(str.strip),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=500),
)
def test_any_title_and_abstract_show_escaped_on_the_paper_and_rating_pages(title, abstract):
    Paper.objects.all().delete()
    reader = Subscriber.objects.first() or make_reader()
    paper = make_paper(title, abstract=abstract)
    client = Client()
    token = ratings.rating_token(reader, paper.pk)

    for path in (f"/papers/{paper.pk}/", f"/papers/{paper.pk}/more/{token}/"):
        response = client.get(path)
        assert response.status_code == 200
        assert escape(readable_latex(title)) in response.content.decode()  # as pages show it
