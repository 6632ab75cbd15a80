from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from digest.archive import ArchiveNotFound, read_archive_token
from digest.sending import delivery_message
from digest.trending import trending_papers
from subscriptions.forms import blank_sign_up_fields

TRENDING_CACHE_KEY = "home:trending-html"
TRENDING_CACHE_SECONDS = 60


def home(request: HttpRequest) -> HttpResponse:
    """What Paperboy is, today's trending papers, and the sign-up form. The papers' HTML is cached
    briefly in the shared cache, so a busy home page costs the database one query a minute."""
    trending = cache.get(TRENDING_CACHE_KEY)
    if trending is None:
        trending = render_to_string("pages/_trending.html", {"papers": trending_papers()})
        cache.set(TRENDING_CACHE_KEY, trending, TRENDING_CACHE_SECONDS)
    return render(
        request,
        "pages/home.html",
        {"trending": mark_safe(trending), "sign_up_fields": blank_sign_up_fields()},
    )


def archived_digest(request: HttpRequest, token: str) -> HttpResponse:
    """The "view in browser" page: the HTML of a sent digest, behind its signed link."""
    try:
        delivery = read_archive_token(token)
    except ArchiveNotFound as error:
        raise Http404("No such digest") from error
    message = delivery_message(delivery)
    html = next(content for content, mimetype in message.alternatives if mimetype == "text/html")
    response = HttpResponse(html)
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response
