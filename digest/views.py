from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.views.decorators.http import require_GET, require_http_methods

from config.csp import allow_inline_styles_of
from digest.archive import ArchiveNotFound, read_archive_token
from digest.home_page import home_page_html, home_page_with_preview_html, preview_throttled_html
from digest.preview import DEFAULT_LIMIT, preview_html
from digest.sending import delivery_message
from subscriptions import throttling

PREVIEW_WINDOW_SECONDS = 60


def _allow_preview(request: HttpRequest) -> bool:
    ip = throttling.client_ip(request)
    return throttling.allow(
        "preview-ip", ip, limit=settings.PREVIEW_LIMIT_PER_IP, window=PREVIEW_WINDOW_SECONDS
    )


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
    allow_inline_styles_of(request, html)  # an email's styles are inline, for email clients
    response = HttpResponse(html)
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response
