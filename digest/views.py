from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token

from config.csp import allow_inline_styles_of
from digest.archive import ArchiveNotFound, read_archive_token
from digest.home_page import home_page_html
from digest.sending import delivery_message


def home(request: HttpRequest) -> HttpResponse:
    """What Paperboy is, today's trending papers, and the sign-up form."""
    return HttpResponse(home_page_html(get_token(request), request.csp_nonce))


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
