"""Rating links (digest/feedback/ratings.py): no fingerprint of the address anyone could
recompute, and the links in digests already sent keep working."""

import hashlib
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from digest.feedback import ratings
from digest.ingest.records import title_key
from digest.models import Paper, Rating
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db


def make_paper(title: str = "Sparse experts") -> Paper:
    now = timezone.now()
    return Paper.objects.create(
        title=title, title_key=title_key(title), first_seen=now - timedelta(hours=1), last_seen=now
    )


def make_reader(email: str = "Ada.Lovelace@example.com") -> Subscriber:
    return Subscriber.objects.create(
        email=email, topics="mixture of experts", status=Subscriber.Status.ACTIVE
    )


def legacy_rating_token(reader: Subscriber, paper_id: int) -> str:
    """A rating token as digests sent before the HMAC carried it."""
    fingerprint = hashlib.sha256(reader.email.lower().encode()).hexdigest()[:12]
    return signing.Signer(salt=ratings.SALT).sign_object(
        [reader.pk, paper_id, fingerprint], compress=True
    )


def test_a_new_rating_token_holds_no_sha256_of_the_address():
    reader, paper = make_reader(), make_paper()
    token = ratings.rating_token(reader, paper.pk)

    text = repr(signing.Signer(salt=ratings.SALT).unsign_object(token)) + token
    for spelling in (reader.email, reader.email.lower()):
        digest = hashlib.sha256(spelling.encode()).hexdigest()
        assert not any(digest[i : i + 8] in text for i in range(len(digest) - 7))
    assert ratings.read_rating_token(token, paper.pk) == reader


def test_an_old_format_rating_link_still_opens_and_records(client):
    reader, paper = make_reader(), make_paper()
    token = legacy_rating_token(reader, paper.pk)

    page = client.get(f"/papers/{paper.pk}/for/{token}/")
    rated = client.post(f"/papers/{paper.pk}/more/{token}/")

    assert page.status_code == 200
    assert f'action="/papers/{paper.pk}/more/{token}/"' in page.content.decode()
    assert rated.status_code == 200
    assert Rating.objects.get().value == Rating.Value.MORE


def test_an_old_format_rating_link_of_a_changed_address_opens_nothing(client):
    reader, paper = make_reader(), make_paper()
    token = legacy_rating_token(reader, paper.pk)
    Subscriber.objects.filter(pk=reader.pk).update(email="new.owner@example.com")

    response = client.post(f"/papers/{paper.pk}/more/{token}/")

    assert response.status_code == 400
    assert not Rating.objects.exists()


def test_a_compressed_rating_link_made_before_still_opens_and_records(client):
    """Tokens were zlib-compressed when that made them shorter (a large reader id); they are
    signed uncompressed now, and the links already sent keep working."""
    reader = Subscriber.objects.create(
        pk=111_111_111_111, email="ada@example.com", topics="experts", status="active"
    )
    paper = make_paper()
    payload = [reader.pk, paper.pk, ratings.address_fingerprint(reader.email)]
    old = signing.Signer(salt=ratings.SALT).sign_object(payload, compress=True)
    new = ratings.rating_token(reader, paper.pk)
    assert old.startswith(".") and not new.startswith(".")

    for token in (old, new):
        assert ratings.read_rating_token(token, paper.pk) == reader
    assert client.post(f"/papers/{paper.pk}/more/{old}/").status_code == 200
    assert Rating.objects.get().value == Rating.Value.MORE


def test_a_digests_rating_tokens_are_each_papers_own():
    reader = make_reader()
    papers = [make_paper(f"Paper {n}") for n in range(3)]

    tokens = ratings.rating_tokens(reader, [paper.pk for paper in papers])

    assert tokens == {paper.pk: ratings.rating_token(reader, paper.pk) for paper in papers}
    for paper in papers:
        assert ratings.read_rating_token(tokens[paper.pk], paper.pk) == reader
    with pytest.raises(ratings.InvalidRatingLink, match="another paper"):
        ratings.read_rating_token(tokens[papers[0].pk], papers[1].pk)
