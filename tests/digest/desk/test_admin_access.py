"""The digest preview on the desk, and nobody but staff at the desk."""

import pytest
from django.core import signing
from django.urls import reverse
from django.utils.html import escape

from digest.delivery import composing
from digest.models import Delivery, IngestRun, Paper
from subscriptions.models import Subscriber
from tests.digest.desk.admin_records import (
    SAMPLE_DUMP,
    make_delivery,
    make_paper,
    make_subscriber,
    run_action,
)

pytestmark = pytest.mark.django_db


# The digest preview


def test_preview_shows_the_digest_exactly_as_the_email_would_be(admin_client, monkeypatch):
    # Both renders sign their links in the same second, as one render would.
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: "1xa3e3")
    make_paper(
        "Sparse Mixture of Experts for Language Models",
        abstract="We route tokens to a sparse mixture of experts & beat dense models.",
        arxiv_id="2401.04088",
        upvotes=40,
    )
    reader = make_subscriber(
        "ada@example.com", status=Subscriber.Status.ACTIVE, topics="mixture of experts"
    )

    response = admin_client.get(reverse("admin:subscriptions_subscriber_preview", args=[reader.pk]))

    email = response.context["email"]
    expected = composing.preview_digest(reader)
    assert email.subject == expected.subject
    assert email.text == expected.body
    assert email.html == expected.alternatives[0][0]
    page = response.content.decode()
    assert f'<strong class="preview-subject">{escape(expected.subject)}</strong>' in page
    assert f'sandbox srcdoc="{escape(email.html)}"' in page
    assert "Sparse Mixture of Experts for Language Models" in email.html
    assert not Delivery.objects.exists()  # a preview records nothing


def test_preview_says_so_when_nothing_is_relevant(admin_client):
    make_paper("Protein Folding", abstract="Proteins fold.")
    reader = make_subscriber("ada@example.com", status=Subscriber.Status.ACTIVE, topics="compilers")

    response = admin_client.get(reverse("admin:subscriptions_subscriber_preview", args=[reader.pk]))

    assert "Nothing relevant for ada@example.com right now" in response.content.decode()


def test_subscriber_pages_link_to_the_preview(admin_client):
    reader = make_subscriber("ada@example.com")
    preview = reverse("admin:subscriptions_subscriber_preview", args=[reader.pk]).encode()

    listing = admin_client.get(reverse("admin:subscriptions_subscriber_changelist"))
    detail = admin_client.get(reverse("admin:subscriptions_subscriber_change", args=[reader.pk]))

    assert preview in listing.content
    assert preview in detail.content


# Nobody but staff


@pytest.fixture
def reader_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="x"))
    return client


def test_non_staff_users_get_nothing(reader_client, settings):
    settings.DIGEST_SOURCES = [str(SAMPLE_DUMP)]
    paper = make_paper("Paper")
    subscriber = make_subscriber("ada@example.com", status=Subscriber.Status.ACTIVE)
    delivery = make_delivery(subscriber, [paper], status=Delivery.Status.FAILED)
    gets = [
        reverse("admin:index"),
        reverse("admin:digest_paper_changelist"),
        reverse("admin:digest_paper_change", args=[paper.pk]),
        reverse("admin:digest_ingestrun_changelist"),
        reverse("admin:digest_digestrun_changelist"),
        reverse("admin:digest_delivery_changelist"),
        reverse("admin:subscriptions_subscriber_preview", args=[subscriber.pk]),
        reverse("admin:django_celery_beat_periodictask_changelist"),
    ]
    responses = [reader_client.get(url) for url in gets] + [
        reader_client.post(reverse("admin:digest_ingestrun_run")),
        run_action(reader_client, "paper", "hide", [paper]),
        run_action(reader_client, "paper", "merge_duplicates", [paper, make_paper("Twin")]),
        run_action(reader_client, "delivery", "retry_failed", [delivery]),
    ]

    for response in responses:
        assert (
            response.redirect_chain[-1][0].startswith(reverse("admin:login"))
            if hasattr(response, "redirect_chain")
            else response["Location"].startswith(reverse("admin:login"))
        )
    assert Paper.objects.filter(hidden=True).count() == 0
    assert Paper.objects.count() == 2
    assert not IngestRun.objects.exists()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED


def test_staff_without_permissions_cannot_preview_or_act(client, django_user_model):
    staff = django_user_model.objects.create_user("intern", password="x", is_staff=True)
    client.force_login(staff)
    paper = make_paper("Paper")
    subscriber = make_subscriber("ada@example.com")

    preview = client.get(reverse("admin:subscriptions_subscriber_preview", args=[subscriber.pk]))
    run_now = client.post(reverse("admin:digest_ingestrun_run"))
    hide = run_action(client, "paper", "hide", [paper])

    assert preview.status_code == 403
    assert run_now.status_code == 403
    assert hide.status_code == 403
    assert not IngestRun.objects.exists()
    assert not Paper.objects.filter(hidden=True).exists()


def test_admin_is_titled_paperboy_desk(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()

    assert "<title>Dashboard | Paperboy desk</title>" in page
    assert '<a href="/admin/">Paperboy desk</a>' in page
    assert "Django administration" not in page
