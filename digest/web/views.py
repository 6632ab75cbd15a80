import re

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.csp import allow_inline_styles_of
from digest import tasks
from digest.delivery.archive import ArchiveNotFound, read_archive_token
from digest.delivery.messages import delivery_message
from digest.feedback import ratings
from digest.feedback.sign_up_likes import record_sign_up_likes
from digest.models import Paper
from digest.web.home import home_page_html, home_page_with_preview_html, preview_throttled_html
from digest.web.paper_pages import links_out
from digest.web.preview import DEFAULT_LIMIT, preview_html
from subscriptions import links, throttling
from subscriptions.models import Subscriber

PREVIEW_WINDOW_SECONDS = 60
# what the digest template marks as meant for the inbox only, such as its own "View in browser"
EMAIL_ONLY = re.compile(r"<!--email-only-->.*?<!--/email-only-->", re.DOTALL)


def _allow_preview(request: HttpRequest) -> bool:
    ip = throttling.client_ip(request)
    return throttling.allow(
        "preview-ip", ip, limit=settings.PREVIEW_LIMIT_PER_IP, window=PREVIEW_WINDOW_SECONDS
    )


def _allow_rating(request: HttpRequest, reader: Subscriber) -> bool:
    """Ratings are limited per client IP and per reader: each one relearns a profile."""
    ip, reader_key = throttling.client_ip(request), str(reader.pk)
    return throttling.allow("rating-ip", ip, limit=settings.RATING_LIMIT_PER_IP) and (
        throttling.allow("rating-reader", reader_key, limit=settings.RATING_LIMIT_PER_READER)
    )


def _rating_throttled(request: HttpRequest) -> HttpResponse:
    response = render(request, "pages/rating_throttled.html", status=429)
    response["Retry-After"] = str(throttling.HOUR)
    return response


@require_http_methods(["GET", "HEAD", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    """What Paperboy is, today's trending papers, and the sign-up form. Its "Preview" button
    (for browsers without JavaScript) posts the form here: the page comes back with what was
    typed and the digest it would bring."""
    if request.method != "POST":
        return HttpResponse(home_page_html(get_token(request), request.csp_nonce))
    allowed = _allow_preview(request)
    html = home_page_with_preview_html(
        get_token(request),
        request.csp_nonce,
        request.POST,
        preview=None if allowed else preview_throttled_html(),
    )
    return HttpResponse(html, status=200 if allowed else 429)


@require_GET
def preview(request: HttpRequest) -> HttpResponse:
    """The preview fragment the home page's script fetches as the reader types topics."""
    if not _allow_preview(request):
        return HttpResponse(preview_throttled_html(), status=429)
    try:
        limit = int(request.GET.get("limit") or DEFAULT_LIMIT)
    except ValueError:
        limit = DEFAULT_LIMIT
    response = HttpResponse(preview_html(request.GET.get("topics", ""), limit=limit))
    response["X-Robots-Tag"] = "noindex"
    return response


def archived_digest(request: HttpRequest, token: str) -> HttpResponse:
    """The "view in browser" page: the HTML of a sent digest, behind its signed link."""
    try:
        delivery = read_archive_token(token)
    except ArchiveNotFound as error:
        raise Http404("No such digest") from error
    message = delivery_message(delivery)
    html = next(content for content, mimetype in message.alternatives if mimetype == "text/html")
    html = EMAIL_ONLY.sub("", html)
    allow_inline_styles_of(request, html)  # an email's styles are inline, for email clients
    response = HttpResponse(html)
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _visible_paper(paper_id: int) -> Paper:
    return get_object_or_404(Paper, pk=paper_id, hidden=False)


def _paper_page(
    request: HttpRequest, paper: Paper, *, reader: Subscriber | None, token: str | None
) -> HttpResponse:
    context = {
        "paper": paper,
        "links_out": links_out(paper),
        "rating": ratings.rating_of(reader, paper.pk) if reader else None,
        "more_path": ratings.rate_path(paper.pk, "more", token) if token else "",
        "less_path": ratings.rate_path(paper.pk, "less", token) if token else "",
    }
    response = render(request, "pages/paper.html", context)
    if token:  # behind a reader's signed link: not indexed, the URL never sent to other sites
        # (same-origin, not no-referrer: with no-referrer the buttons' POST says Origin: null
        # and fails the CSRF check)
        response["X-Robots-Tag"] = "noindex"
        response["Referrer-Policy"] = "same-origin"
    return response


def paper(request: HttpRequest, paper_id: int) -> HttpResponse:
    """A paper's page: title, authors, abstract, upvotes, when first seen, where to read it."""
    return _paper_page(request, _visible_paper(paper_id), reader=None, token=None)


def paper_for_reader(request: HttpRequest, paper_id: int, token: str) -> HttpResponse:
    """The same page reached from a digest, with the reader's rating buttons."""
    paper = _visible_paper(paper_id)
    try:
        reader = ratings.read_rating_token(token, paper.pk)
    except ratings.InvalidRatingLink:
        return redirect("digest:paper", paper_id=paper.pk)
    return _paper_page(request, paper, reader=reader, token=token)


@require_http_methods(["GET", "POST"])
def rate(request: HttpRequest, paper_id: int, direction: str, token: str) -> HttpResponse:
    """GET: a page naming the paper with one button (mail scanners follow links, so a GET records
    nothing). POST: records the rating, replacing an earlier one, and says so."""
    paper = _visible_paper(paper_id)
    if direction not in ratings.DIRECTIONS:
        raise Http404("No such rating")
    try:
        reader = ratings.read_rating_token(token, paper.pk)
    except ratings.InvalidRatingLink:
        return render(request, "pages/rating_link_invalid.html", {"paper": paper}, status=400)
    value = ratings.DIRECTIONS[direction]
    recorded = request.method == "POST"
    if recorded and not _allow_rating(request, reader):
        return _rating_throttled(request)
    if recorded:
        ratings.rate(reader, paper, value)
        tasks.relearn_after_commit(reader.pk)
    other = "less" if direction == "more" else "more"
    response = render(
        request,
        "pages/rate.html",
        {
            "paper": paper,
            "direction": direction,
            "label": value.label,
            "recorded": recorded,
            "current": ratings.rating_of(reader, paper.pk),
            "paper_path": ratings.paper_page_path(paper.pk, token),
            "other_path": ratings.rate_path(paper.pk, other, token),
            "other_label": ratings.DIRECTIONS[other].label,
            "preferences_url": links.preferences_url(reader),
        },
    )
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "same-origin"
    return response


def ratings_section(request: HttpRequest, subscriber: Subscriber, token: str) -> str:
    """The preference page's part about ratings: what the reader rated (with undo) and the
    "Papers like these" box (see subscriptions.preference_sections)."""
    return render_to_string(
        "pages/_ratings_section.html",
        {"ratings": ratings.ratings_of(subscriber), "token": token},
        request=request,
    )


def reader_confirmed_receiver(sender, subscriber, liked_paper_ids, **kwargs) -> None:
    """subscriptions.signals.reader_confirmed: the papers ticked at sign-up become the reader's
    first ratings, and their profile is learned once the confirmation commits."""
    if record_sign_up_likes(subscriber.pk, liked_paper_ids):
        tasks.relearn_after_commit(subscriber.pk)


def topics_saved(sender, instance: Subscriber, update_fields=None, **kwargs) -> None:
    """post_save of a Subscriber: an active reader's topics are embedded off the request path
    (the day's ranking embeds any line it still finds without a vector)."""
    if instance.status != Subscriber.Status.ACTIVE:
        return
    if update_fields is None or "topics" in update_fields:
        tasks.embed_topics_after_commit(instance.pk)


@require_POST
def undo_rating(request: HttpRequest, token: str, paper_id: int) -> HttpResponse:
    try:
        reader = links.read_token(token, "preferences")
    except links.InvalidLink:
        return render(request, "pages/link_invalid.html", {"reason": "tampered"}, status=400)
    if not _allow_rating(request, reader):
        return _rating_throttled(request)
    if ratings.undo_rating(reader, paper_id):
        tasks.relearn_after_commit(reader.pk)
    return redirect(reverse("subscriptions:preferences", kwargs={"token": token}) + "#ratings")


@require_POST
def seed_ratings(request: HttpRequest, token: str) -> HttpResponse:
    """The "Papers like these" box: rate up every paper it names; say which lines named none."""
    try:
        reader = links.read_token(token, "preferences")
    except links.InvalidLink:
        return render(request, "pages/link_invalid.html", {"reason": "tampered"}, status=400)
    if not _allow_rating(request, reader):
        return _rating_throttled(request)
    seeding = ratings.seed_profile(reader, request.POST.get("papers", ""))
    if seeding.rated:
        tasks.relearn_after_commit(reader.pk)
    return render(
        request,
        "pages/seeded.html",
        {
            "seeding": seeding,
            "preferences_path": reverse("subscriptions:preferences", kwargs={"token": token}),
        },
        status=200 if seeding.rated or not seeding.not_found else 400,
    )
