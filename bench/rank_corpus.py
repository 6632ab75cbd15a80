"""The sample dumps read into (title, abstract, upvotes) records, for the ranking benchmarks.

A tiny reader of the two layouts in samples/dumps/ (one title line then one abstract line, or the
page dump with blank lines, dates and "N authors"), so the benches need no database.
"""

import re
from dataclasses import dataclass
from pathlib import Path

DUMPS = Path(__file__).resolve().parent.parent / "samples" / "dumps"
BOILERPLATE = re.compile(
    r"^(new|Subscribe|Daily Papers|byAK and the research community|Get trending papers.*|·|"
    r"•.*authors?|[A-Z][a-z]{2} \d{1,2}(, \d{4})?( \d+)?)$"
)
VOTES = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4} (\d+)$")


@dataclass(frozen=True)
class SamplePaper:
    title: str
    abstract: str
    upvotes: int


def read_samples(folder: Path = DUMPS) -> list[SamplePaper]:
    """Every distinct paper of the dumps (by lower-cased title), in file order."""
    papers: dict[str, SamplePaper] = {}
    for path in sorted(folder.glob("*.txt")):
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        lines = [line.removeprefix("Subscribe") for line in lines if line]
        i = 0
        while i < len(lines) - 1:
            title, abstract = lines[i], lines[i + 1]
            if BOILERPLATE.match(title) or BOILERPLATE.match(abstract) or len(abstract) < 80:
                i += 1
                continue
            upvotes, j = 0, i + 2
            while j < len(lines) and BOILERPLATE.match(lines[j]):
                if found := VOTES.match(lines[j]):
                    upvotes = int(found.group(1))
                j += 1
            papers.setdefault(title.lower(), SamplePaper(title, abstract, upvotes))
            i = j
    return list(papers.values())


if __name__ == "__main__":
    samples = read_samples()
    print(f"{len(samples)} papers")
    for paper in samples[:5]:
        print(paper.upvotes, "|", paper.title, "|", paper.abstract[:60])
