"""Today's trending papers for the home page: the newest ingest day's papers, by upvotes."""

from django.db.models import Subquery
from django.db.models.functions import TruncDate

from digest.models import Paper

HOME_PAPERS = 10


def trending_papers(limit: int = HOME_PAPERS) -> list[Paper]:
    """One query: the day of the newest paper is a subquery."""
    newest_day = (
        Paper.objects.filter(hidden=False)
        .order_by("-first_seen")
        .annotate(day=TruncDate("first_seen"))
        .values("day")[:1]
    )
    return list(
        Paper.objects.filter(hidden=False)
        .annotate(day=TruncDate("first_seen"))
        .filter(day=Subquery(newest_day))
        .order_by("-upvotes", "-first_seen")
        .only("title", "url", "arxiv_id", "authors", "abstract", "upvotes", "first_seen")[:limit]
    )
