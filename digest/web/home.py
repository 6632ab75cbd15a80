"""The home page's HTML. Its parts are the same for every visitor (the trending papers, the blank
sign-up form, the empty preview), so they are rendered once per process every few seconds, and
the papers in them come from the shared cache: the database sees one query a minute however busy
the page is. The page around them is rendered for each request with the visitor's CSRF token and
CSP nonce in the template context, never substituted into the output, so no paper's text can
stand in for either."""

import threading
import time
from collections.abc import Mapping

from django.core.cache import cache
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from digest.web.preview import preview_html
from digest.web.trending import trending_papers
from subscriptions.forms import blank_sign_up_fields, sign_up_fields_with

TRENDING_CACHE_KEY = "home:trending-html"
TRENDING_CACHE_SECONDS = 60
PAGE_SECONDS = 5

_parts = threading.local()


def trending_html() -> str:
    html = cache.get(TRENDING_CACHE_KEY)
    if html is None:
        html = render_to_string("pages/_trending.html", {"papers": trending_papers()})
        cache.set(TRENDING_CACHE_KEY, html, TRENDING_CACHE_SECONDS)
    return html


def _shared_parts() -> dict[str, SafeString]:
    now = time.monotonic()
    if getattr(_parts, "expires", 0.0) <= now:
        _parts.context = {
            "trending": mark_safe(trending_html()),
            "sign_up_fields": blank_sign_up_fields(),
            "preview": preview_html(""),
        }
        _parts.expires = now + PAGE_SECONDS
    return _parts.context


def home_page_html(csrf_token: str, csp_nonce: str) -> str:
    return render_to_string(
        "pages/home.html",
        {**_shared_parts(), "csrf_token": csrf_token, "csp_nonce": csp_nonce},
    )


def home_page_with_preview_html(
    csrf_token: str, csp_nonce: str, data: Mapping[str, str], *, preview: SafeString | None = None
) -> str:
    """The home page holding what the reader typed, and the digest those topics would bring
    (or `preview`, when given instead)."""
    return render_to_string(
        "pages/home.html",
        {
            "trending": mark_safe(trending_html()),
            "sign_up_fields": sign_up_fields_with(data),
            "preview": preview if preview is not None else preview_html(data.get("topics", "")),
            "csrf_token": csrf_token,
            "csp_nonce": csp_nonce,
        },
    )


def preview_throttled_html() -> SafeString:
    return mark_safe(render_to_string("pages/_preview_throttled.html"))


def forget_home_page() -> None:
    """Drop this thread's rendered parts (tests that change papers between requests)."""
    _parts.expires = 0.0
