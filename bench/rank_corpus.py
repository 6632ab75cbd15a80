"""The sample dumps as (title, abstract, upvotes) records, for the ranking benchmarks.

Read with the ingest's own parser and deduplicated by its title key, as `ingest` stores them,
but without a database.
"""

from dataclasses import dataclass
from pathlib import Path

DUMPS = Path(__file__).resolve().parent.parent / "samples" / "dumps"


@dataclass(frozen=True)
class SamplePaper:
    title: str
    abstract: str
    upvotes: int


def read_samples(folder: Path = DUMPS) -> list[SamplePaper]:
    """Every distinct paper of the dumps, in file order (the first copy of each)."""
    from digest.ingest.daily_text import parse_daily_text
    from digest.ingest.records import PaperRecord

    papers: dict[str, SamplePaper] = {}
    for path in sorted(folder.glob("*.txt")):
        for record in parse_daily_text(path.read_text(encoding="utf-8").splitlines()):
            if isinstance(record, PaperRecord):
                papers.setdefault(
                    record.title_key, SamplePaper(record.title, record.abstract, record.upvotes)
                )
    return list(papers.values())


if __name__ == "__main__":
    import os
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    samples = read_samples()
    print(f"{len(samples)} papers")
