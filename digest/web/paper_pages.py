"""A page per paper: what the paper is, and where to read it."""

from urllib.parse import quote_plus, urlsplit

from digest.models import Paper

DAILY_PAPERS_SOURCES = frozenset({"daily-text", "daily-json"})
WEB_SCHEMES = frozenset({"http", "https"})


def safe_http_url(value: str) -> str:
    """`value` if it is an http(s) URL with a host, else "": a link from a feed (or a row stored
    before links were checked) may say javascript:, data: or file:, and is never made an href.
    Any whitespace or control character refuses it too: browsers drop some of them from a scheme
    ("java\\tscript:"), so what Python parses need not be what a browser runs."""
    if not value or any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in value):
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:  # an unbalanced "[" in the host
        return ""
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.netloc:
        return ""
    return value


def links_out(paper: Paper) -> list[tuple[str, str]]:
    """(label, URL) of the places to read the paper: its arXiv abstract and PDF when the id is
    known, its daily-papers page when it came from that listing, the link its source gave;
    an arXiv title search when none of those is known. Only http(s) links are given."""
    links: list[tuple[str, str]] = []
    url, pdf_url = safe_http_url(paper.url), safe_http_url(paper.pdf_url)
    if paper.arxiv_id:
        links.append(("arXiv abstract", f"https://arxiv.org/abs/{paper.arxiv_id}"))
        links.append(("PDF", pdf_url or f"https://arxiv.org/pdf/{paper.arxiv_id}"))
        if DAILY_PAPERS_SOURCES.intersection(paper.sources or []):
            links.append(("Daily papers page", f"https://huggingface.co/papers/{paper.arxiv_id}"))
    else:
        if url:
            links.append(("Paper", url))
        if pdf_url:
            links.append(("PDF", pdf_url))
    if not links:
        query = quote_plus(paper.title[:300])
        links.append(
            (
                "Search arXiv for this title",
                f"https://arxiv.org/search/?searchtype=title&query={query}",
            )
        )
    return links
