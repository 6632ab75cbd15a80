"""Which papers look like one, and what merging them would keep: the editor's preview."""

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz

from digest.models import Paper


def richness(paper: Paper) -> tuple:
    """How complete a record is: filled fields first, then the longer abstract, then the older."""
    filled = sum(
        [
            paper.arxiv_id is not None,
            bool(paper.abstract),
            bool(paper.authors),
            bool(paper.url),
            bool(paper.pdf_url),
            paper.published_on is not None,
            bool(paper.categories),
        ]
    )
    return (filled, len(paper.abstract), len(paper.authors), -paper.pk)


# Below this title similarity (or with two different arXiv ids) the merge page warns that the
# papers look different: "SpecDec++: …" and "SpecTr: …" score about 50%.
LOOKS_DIFFERENT_BELOW = 0.8
NOT_A_WORD = re.compile(r"[\W_]+")


def comparable_title(title: str) -> str:
    """The title as compared for similarity: NFKC, case-folded, its words only, one space apart
    ("Mixture-of-Experts!" reads as "mixture of experts")."""
    return " ".join(NOT_A_WORD.split(unicodedata.normalize("NFKC", title).casefold())).strip()


def title_similarity(first: str, second: str) -> float:
    """How alike two titles read, from 0 to 1: rapidfuzz's normalized InDel similarity (difflib's
    ratio on these titles, bit-parallel instead of quadratic; the same in either order)."""
    return fuzz.ratio(comparable_title(first), comparable_title(second)) / 100


@dataclass(frozen=True)
class MergeCandidate:
    paper: Paper
    similarity: float  # of its title to the kept paper's


@dataclass(frozen=True)
class MergePreview:
    """What a merge would do, for the editor to confirm: the papers side by side."""

    kept: Paper
    candidates: list[MergeCandidate]  # the kept paper first
    lowest_similarity: float  # over every pair of titles
    arxiv_ids: list[str]  # the distinct arXiv ids among them

    @property
    def looks_different(self) -> bool:
        return self.lowest_similarity < LOOKS_DIFFERENT_BELOW or len(self.arxiv_ids) > 1


def preview_merge(paper_ids: Iterable[int], *, keep: int | None = None) -> MergePreview:
    """The papers a merge would fold together, the one it would keep (the richest unless `keep`
    names another), and how alike they look. Changes nothing."""
    papers = list(Paper.objects.filter(pk__in=list(paper_ids)).order_by("pk"))
    if len(papers) < 2:
        raise ValueError("merging needs at least two papers")
    kept = kept_paper(papers, keep)
    others = [paper for paper in papers if paper.pk != kept.pk]
    similarities = [
        title_similarity(first.title, second.title)
        for n, first in enumerate(papers)
        for second in papers[n + 1 :]
    ]
    return MergePreview(
        kept=kept,
        candidates=[
            MergeCandidate(paper, title_similarity(kept.title, paper.title))
            for paper in [kept, *others]
        ],
        lowest_similarity=min(similarities),
        arxiv_ids=sorted({paper.arxiv_id for paper in papers if paper.arxiv_id}),
    )


def kept_paper(papers: list[Paper], keep: int | None) -> Paper:
    if keep is None:
        return max(papers, key=richness)
    [kept] = [paper for paper in papers if paper.pk == keep] or [None]
    if kept is None:
        raise ValueError(f"paper #{keep} to keep is not among the papers merged")
    return kept
