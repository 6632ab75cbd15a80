"""A page per paper: what the paper is, and where to read it."""

from urllib.parse import quote_plus

from digest.ingest.records import safe_http_url
from digest.models import Paper

DAILY_PAPERS_SOURCES = frozenset({"daily-text", "daily-json"})


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
