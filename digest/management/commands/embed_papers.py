from django.core.management.base import BaseCommand, CommandError, CommandParser

from digest.matching import vectors
from digest.matching.semantic import status

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Embed the papers that have no vector of their current title and abstract by the "
        "configured model (a fresh install, a new model, edited papers); --all embeds every "
        "paper again. Commits each batch, so a run that is killed loses one batch at most and "
        "running it again carries on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", dest="everything")
        parser.add_argument("--batch", type=int, default=vectors.PAPER_BATCH)

    def handle(self, *args, everything: bool, batch: int, **options) -> None:
        progress = self._show_progress if self.stderr.isatty() else None
        counts = vectors.embed_missing_papers(
            batch=max(1, batch), everything=everything, progress=progress
        )
        if not counts.available:
            raise CommandError(f"Nothing embedded: the semantic model is {status()}")
        self.stdout.write(
            f"{counts.embedded:,} papers embedded, {counts.fresh:,} already up to date."
        )

    def _show_progress(self, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        filled = round(BAR_WIDTH * fraction)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stderr.write(
            f"\rembedding [{bar}] {fraction:4.0%} {done:,}/{total:,} papers",
            ending="\n" if done >= total else "",
        )
        self.stderr.flush()
