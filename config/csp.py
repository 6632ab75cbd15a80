"""The Content-Security-Policy of every response: scripts and styles come from this site's own files
or carry the request's nonce; nothing inline runs otherwise.

Ours, not django-csp 4: what it would replace is the header's assembly (a few lines); the rest, a
hash of each inline style of the one email a page shows, per response, stays ours either way.

Templates rendered with a request get the nonce as `{{ csp_nonce }}`:
`<script nonce="{{ csp_nonce }}">…</script>`, `<style nonce="{{ csp_nonce }}">…</style>`.
`style="…"` attributes cannot carry a nonce: use a class. The one exception is an email shown in a
page (the web archive, the admin preview), whose inline styles email clients need; the view calls
`allow_inline_styles_of(request, html)` and exactly those styles are allowed, by hash.
"""

import base64
import hashlib
import secrets
from collections.abc import Callable, Iterable
from html.parser import HTMLParser

from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


def sha256_source(text: str) -> str:
    """A CSP hash source for `text` as the browser sees it (entities decoded)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


class _InlineStyles(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: set[str] = set()
        self.elements: set[str] = set()
        self._style_text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "style" and value is not None:
                self.attributes.add(value)
        if tag == "style":
            self._style_text = []

    def handle_data(self, data: str) -> None:
        if self._style_text is not None:
            self._style_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._style_text is not None:
            self.elements.add("".join(self._style_text))
            self._style_text = None


def inline_style_sources(html: str) -> list[str]:
    """The hash sources that allow every `style` attribute and `<style>` element of `html`."""
    parser = _InlineStyles()
    parser.feed(html)
    parser.close()
    return sorted({sha256_source(text) for text in parser.attributes | parser.elements})


def allow_inline_styles_of(request: HttpRequest, html: str) -> None:
    """Let this response's page use the inline styles of `html` (an email shown in the page)."""
    request.csp_style_sources = [
        *getattr(request, "csp_style_sources", []),
        *inline_style_sources(html),
    ]


def content_security_policy(nonce: str, style_sources: Iterable[str] = ()) -> str:
    style_sources = list(style_sources)
    styles = [
        "'self'",
        f"'nonce-{nonce}'",
        *(["'unsafe-hashes'", *style_sources] if style_sources else []),
    ]
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", f"'nonce-{nonce}'"],
        "style-src": styles,
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    """Gives each request a fresh nonce and each response the policy (unless a view set one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.csp_nonce = secrets.token_urlsafe(18)
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = content_security_policy(
                request.csp_nonce, getattr(request, "csp_style_sources", ())
            )
        return response


def csp_nonce(request: HttpRequest) -> dict[str, str]:
    """Context processor: `{{ csp_nonce }}` in every template rendered with a request."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
