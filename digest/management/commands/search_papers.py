from json import dumps

from django.core.management.base import BaseCommand, CommandParser

from digest.matching import search_papers
from digest.models import Paper


class Command(BaseCommand):
    help = (
        "Rank all papers for one interest exactly as a digest would (topics separated by ';' or "
        "new lines, '-word' excludes)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query")
        parser.add_argument("--limit", type=int, default=10)
        parser.add_argument("--json", action="store_true", help="Print a JSON list, best first.")

    def handle(self, *args, query: str, limit: int, json: bool, **options) -> None:
        matches = search_papers(query, limit=limit)
        titles = dict(
            Paper.objects.filter(id__in=[m.paper_id for m in matches]).values_list("id", "title")
        )
        rows = [{"title": titles[m.paper_id], "score": m.score, "why": m.why} for m in matches]
        if json:
            self.stdout.write(dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("Nothing relevant.")
        for position, row in enumerate(rows, 1):
            self.stdout.write(
                f"{position:>3}. {row['score']:.3f}  {row['title']}\n      {row['why']}"
            )
