from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

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
