"""The public pages of the day's papers: /today/ (the newest listing day), /archive/ (the days) and
/archive/YYYY-MM-DD/ (one day), every visible paper of a day by upvotes."""

import re
from dataclasses import dataclass
from datetime import date

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from digest.ingest.records import safe_http_url
from digest.models import Paper

ARCHIVE_DAYS = 90
SHOWN_AUTHORS = 3
# What XML 1.0 cannot carry (and a page should not show): C0 controls but tab and newline, DEL
# and C1 controls, lone surrogates, and the two non-characters U+FFFE and U+FFFF.
_UNSHOWABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def showable(text: object) -> str:
    """Text from a paper row as a page or feed can carry it (old rows predate ingest's cleaning)."""
    return _UNSHOWABLE.sub("", text) if isinstance(text, str) else ""


@dataclass(frozen=True)
class ListedPaper:
    """A paper as the day's pages and the feed show it."""

    pk: int
    title: str
    authors: list[str]
    abstract: str
    upvotes: int
    first_seen: object
    arxiv_id: str
    read_url: str  # where to read it, http(s) only; "" when none is known
    pdf_url: str

    @property
    def authors_short(self) -> str:
        shown = ", ".join(self.authors[:SHOWN_AUTHORS])
        return shown + (" et al." if len(self.authors) > SHOWN_AUTHORS else "")


def listed(paper: Paper) -> ListedPaper:
    arxiv_id = showable(paper.arxiv_id or "")
    arxiv_url = f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else ""
    authors = paper.authors if isinstance(paper.authors, list) else []
    return ListedPaper(
        pk=paper.pk,
        title=showable(paper.title),
        authors=[name for name in map(showable, authors) if name.strip()],
        abstract=showable(paper.abstract),
        upvotes=paper.upvotes,
        first_seen=paper.first_seen,
        arxiv_id=arxiv_id,
        read_url=safe_http_url(paper.url) or arxiv_url,
        pdf_url=safe_http_url(paper.pdf_url),
    )


def visible_papers():
    return Paper.objects.filter(hidden=False).annotate(day=TruncDate("first_seen"))


def papers_of_day(day: date) -> list[ListedPaper]:
    """The visible papers first seen on `day` (the site's time zone), most upvoted first."""
    papers = (
        visible_papers()
        .filter(day=day)
        .order_by("-upvotes", "first_seen", "pk")
        .only("title", "authors", "abstract", "upvotes", "first_seen", "arxiv_id", "url", "pdf_url")
    )
    return [listed(paper) for paper in papers]


def newest_day() -> date | None:
    paper = visible_papers().order_by("-first_seen").values("day").first()
    return paper["day"] if paper else None


def listing_days(limit: int = ARCHIVE_DAYS) -> list[tuple[date, int]]:
    """(day, number of papers) of the newest `limit` days that had papers, newest first."""
    rows = visible_papers().values("day").annotate(papers=Count("pk")).order_by("-day")[:limit]
    return [(row["day"], row["papers"]) for row in rows]


def neighbour_days(day: date) -> tuple[date | None, date | None]:
    """The nearest days before and after `day` that had papers."""
    days = visible_papers()
    before = days.filter(day__lt=day).order_by("-first_seen").values("day").first()
    after = days.filter(day__gt=day).order_by("first_seen").values("day").first()
    return (before["day"] if before else None, after["day"] if after else None)


def _day_page(request: HttpRequest, day: date | None, *, today: bool) -> HttpResponse:
    papers = papers_of_day(day) if day else []
    earlier, later = neighbour_days(day) if day else (None, None)
    context = {
        "day": day,
        "is_today": day == timezone.localdate(),
        "today_page": today,
        "papers": papers,
        "earlier": earlier,
        "later": later,
    }
    status = 200 if papers or today else 404
    return render(request, "pages/day.html", context, status=status)


@require_safe
def today(request: HttpRequest) -> HttpResponse:
    """The newest listing day's papers: today's, once the morning's listing is in."""
    return _day_page(request, newest_day(), today=True)


@require_safe
def archive_day(request: HttpRequest, day: date) -> HttpResponse:
    """One day's papers (404, with the way to the nearest days, when it had none)."""
    return _day_page(request, day, today=False)


@require_safe
def archive(request: HttpRequest) -> HttpResponse:
    """The days that had papers, newest first, each with how many."""
    days = listing_days()
    return render(request, "pages/archive.html", {"days": days, "window": ARCHIVE_DAYS})
