"""Small records and admin round trips shared by the desk's tests."""

from datetime import date
from pathlib import Path

from django.urls import reverse
from django.utils import timezone

from digest.models import DeliveredPaper, Delivery, Paper
from subscriptions.models import Subscriber

NOW = timezone.now()
SAMPLE_DUMP = Path(__file__).resolve().parents[3] / "samples" / "dumps" / "000_5d60b27bee63c9e0.txt"
FEED = Path(__file__).resolve().parents[1] / "ingest" / "fixtures" / "arxiv-rss2.xml"


def make_paper(title: str, **fields) -> Paper:
    fields.setdefault("first_seen", NOW)
    fields.setdefault("last_seen", fields["first_seen"])
    return Paper.objects.create(title=title, title_key=title.lower(), **fields)


def make_subscriber(email: str, **fields) -> Subscriber:
    return Subscriber.objects.create(email=email, **fields)


def make_delivery(subscriber: Subscriber, papers: list[Paper], **fields) -> Delivery:
    fields.setdefault("period", date(2026, 11, 20))
    fields.setdefault("status", Delivery.Status.SENT)
    delivery = Delivery.objects.create(subscriber=subscriber, **fields)
    for position, paper in enumerate(papers, start=1):
        DeliveredPaper.objects.create(delivery=delivery, paper=paper, position=position, score=1.0)
    return delivery


def run_action(client, model: str, action: str, objects) -> object:
    return client.post(
        reverse(f"admin:digest_{model}_changelist"),
        {"action": action, "_selected_action": [obj.pk for obj in objects]},
        follow=True,
    )


def merge_through_admin(client, papers) -> object:
    """Choose "Merge duplicates", then press the confirmation page's button (keeping the paper
    it proposes, the richest)."""
    selected = [paper.pk for paper in papers]
    form = {"action": "merge_duplicates", "_selected_action": selected}
    page = client.post(reverse("admin:digest_paper_changelist"), form)
    keep = page.context["preview"].kept.pk
    return client.post(
        reverse("admin:digest_paper_changelist"), {**form, "keep": keep, "post": "yes"}, follow=True
    )


def choice_link(response, filter_title: str, choice: str) -> str:
    """The query string of a filter's choice, as the sidebar links it."""
    [spec] = [spec for spec in response.context["cl"].filter_specs if spec.title == filter_title]
    [link] = [
        c["query_string"] for c in spec.choices(response.context["cl"]) if c["display"] == choice
    ]
    return link


def listed_titles(response) -> set[str]:
    return {paper.title for paper in response.context["cl"].result_list}
