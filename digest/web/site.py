"""What the site serves around its pages: /favicon.ico (browsers ask for it whatever the page
says) and the styled 500 page."""

import functools
import logging
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError
from django.template.loader import render_to_string
from django.views.decorators.csrf import requires_csrf_token
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)
FAVICON = "pages/favicon.ico"
FAVICON_MAX_AGE = 7 * 24 * 3600
PLAIN_500 = (
    "<!doctype html><title>Something went wrong · Paperboy</title>"
    "<h1>Something went wrong</h1><p>Please try again in a minute.</p>"
)


@functools.cache
def favicon_bytes() -> bytes | None:
    path = finders.find(FAVICON)
    return Path(path).read_bytes() if path else None


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    icon = favicon_bytes()
    if icon is None:
        raise Http404("No favicon")
    response = HttpResponse(icon, content_type="image/x-icon")
    response["Cache-Control"] = f"public, max-age={FAVICON_MAX_AGE}"
    return response


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500 renders 500.html without the request, so its `<style>` would carry no
    nonce and the CSP would strip the page's look; this one renders it with the request, and
    falls back to plain HTML if even that fails."""
    try:
        html = render_to_string("500.html", request=request)
    except Exception:  # the page that says something failed must not fail itself
        logger.exception("rendering 500.html failed")
        html = PLAIN_500
    return HttpResponseServerError(html)
