"""The "You're subscribed" page's list of the papers the reader ticked in the sign-up's preview
(registered with subscriptions.preference_sections by digest.apps)."""

from __future__ import annotations

from django.http import HttpRequest
from django.template.loader import render_to_string

from digest.models import Paper
from subscriptions.models import Subscriber


def ticked_papers_section(request: HttpRequest, subscriber: Subscriber) -> str:
    """The titles of the ticked papers that are still visible, in the order ticked; "" when none."""
    ids = [paper_id for paper_id in subscriber.liked_at_sign_up or [] if isinstance(paper_id, int)]
    if not ids:
        return ""
    titles = dict(Paper.objects.filter(id__in=ids, hidden=False).values_list("id", "title"))
    papers = [{"id": paper_id, "title": titles[paper_id]} for paper_id in ids if paper_id in titles]
    if not papers:
        return ""
    return render_to_string("pages/_ticked_papers.html", {"papers": papers}, request=request)
