"""A paper an editor hides leaves the reader's "Papers you rated" (digest/feedback/ratings.py)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from digest.feedback import ratings
from digest.ingest.records import title_key
from digest.models import Paper, Rating
from subscriptions import links
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db


def make_paper(title: str, **fields) -> Paper:
    now = timezone.now()
    return Paper.objects.create(
        title=title,
        title_key=title_key(title),
        first_seen=now - timedelta(hours=1),
        last_seen=now,
        **fields,
    )


def test_a_hidden_paper_is_not_listed_under_papers_you_rated(client):
    reader = Subscriber.objects.create(
        email="reader@example.com", topics="experts", status=Subscriber.Status.ACTIVE
    )
    kept, hidden = make_paper("Kept by the editors"), make_paper("Hidden later by the editors")
    ratings.rate(reader, kept, Rating.Value.MORE)
    ratings.rate(reader, hidden, Rating.Value.LESS)
    Paper.objects.filter(pk=hidden.pk).update(hidden=True)
    token = links.make_token(reader, "preferences")

    page = client.get(reverse("subscriptions:preferences", kwargs={"token": token}))

    html = page.content.decode()
    assert page.status_code == 200
    assert f'href="/papers/{kept.pk}/">Kept by the editors</a>' in html
    assert "Hidden later by the editors" not in html
    assert f"/papers/{hidden.pk}/" not in html
    assert Rating.objects.filter(paper=hidden).exists()  # the rating itself is kept
