from json import dumps

from django.core.management.base import BaseCommand, CommandError, CommandParser

from digest.feedback.ratings import paper_page_path
from digest.matching import Match, search_papers, search_papers_for
from digest.models import Paper
from subscriptions.links import absolute_url
from subscriptions.models import Subscriber


class Command(BaseCommand):
    help = (
        "Rank all papers for one interest exactly as a digest would (topics separated by ';' or "
        "new lines, '-word' excludes), or with --subscriber EMAIL as that reader's next digest "
        "would (their topics, profile, exclusions, and nothing they were sent or rated)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query", nargs="?")
        parser.add_argument("--subscriber", metavar="EMAIL", help="Rank for this reader.")
        parser.add_argument("--limit", type=int, default=None, help="Default: 10, or the reader's.")
        parser.add_argument("--json", action="store_true", help="Print a JSON list, best first.")

    def handle(self, *args, query, subscriber, limit, json: bool, **options) -> None:
        if bool(query) == bool(subscriber):
            raise CommandError("Give either a query or --subscriber EMAIL.")
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        if subscriber:
            reader = Subscriber.objects.with_email(subscriber).first()
            if reader is None:
                raise CommandError(f"No subscriber with the address {subscriber!r}.")
            matches = search_papers_for(reader, limit=limit)
        else:
            matches = search_papers(query, limit=limit or 10)
        rows = rows_of(matches)
        if json:
            self.stdout.write(dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("Nothing relevant.")
        for position, row in enumerate(rows, 1):
            self.stdout.write(
                f"{position:>3}. {row['score']:.3f}  {row['title']}\n      {row['why']}"
            )


def rows_of(matches: list[Match]) -> list[dict]:
    papers = Paper.objects.in_bulk([m.paper_id for m in matches])
    return [
        {
            "id": m.paper_id,
            "title": papers[m.paper_id].title,
            "arxiv_id": papers[m.paper_id].arxiv_id,
            "url": absolute_url(paper_page_path(m.paper_id)),
            "score": m.score,
            "why": m.why,
        }
        for m in matches
    ]
