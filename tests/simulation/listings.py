"""The month's daily listings: daily-papers JSON built from the sample dumps (each sample paper
arrives once, on one day, under a new arXiv id), plus papers nobody matches, papers re-listed
from earlier days, one duplicate for the editor to merge, a record without a title, and
abstracts written the way real ones are: `(%)`, `($)`, LaTeX, accents, CJK, right-to-left
scripts, emoji, acronym definitions and now and then a very long one."""

import functools
import json
import random
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from digest.ingest.daily_text import parse_daily_text
from digest.ingest.records import PaperRecord

PROJECT_DIR = Path(__file__).resolve().parents[2]
NEW_SAMPLES_PER_DAY = 15
UNMATCHED_PER_DAY = 3
RELISTED_PER_DAY = 3

# Inserted into sample abstracts, one each, in turn.
REAL_WORLD_FRAGMENTS = [
    "Accuracy improves by 12.5 (%) over the strongest baseline (+) at no extra cost ($).",
    "We bound the regret by $\\mathcal{O}(\\sqrt{T})$ for any $\\alpha \\in (0, 1]$ and "
    "$\\beta_{t} = 1/t$ ( ).",
    "Schrödinger-style naïve résumés — ≥ 95 % of cases, ≤ 1 ‰ error, ∑ᵢ αᵢ = 1 (…).",
    "We release a multilingual corpus (多言語コーパス, 中文数据, العربية, עברית) with 1.2M items.",
    "Our Low-Rank Adaptation (LoRA) variant and a Mixture-of-Experts (MoE) router 🚀 cut memory.",
    "Code: https://github.com/example/repo (MIT) — see Table 3 (a)–(c) and Eq. (7) [12].",
    "Zero\u200bwidth and control\x0bcharacters\u2028survive copy-paste from PDFs (sic).",
    "We define the Retrieval-Augmented Generation (RAG) setting and the (ε, δ)-DP budget.",
]
# Papers from fields no reader follows.
UNMATCHED_SUBJECTS = [
    "Glacial Sediment Transport",
    "Pollen Records of Holocene Lakes",
    "Coral Reef Bleaching Thresholds",
    "Basalt Weathering Rates",
    "Migratory Songbird Stopovers",
    "Peatland Methane Fluxes",
    "Lichen Growth on Granite",
    "Tidal Marsh Accretion",
]
UNMATCHED_PLACES = [
    "Alpine Fjords",
    "the Patagonian Steppe",
    "Boreal Wetlands",
    "Volcanic Islands",
    "the Baltic Coast",
    "Karst Plateaus",
]


@functools.cache
def sample_papers() -> tuple[PaperRecord, ...]:
    """The sample dumps' papers, one per title, in dump order (parsed once per process)."""
    papers: dict[str, PaperRecord] = {}
    for path in sorted((PROJECT_DIR / "samples" / "dumps").glob("*.txt")):
        with path.open(encoding="utf-8") as lines:
            for item in parse_daily_text(lines):
                if isinstance(item, PaperRecord) and item.abstract:
                    papers.setdefault(item.title_key, item)
    return tuple(papers.values())


@dataclass
class ListedPaper:
    arxiv_id: str
    title: str
    abstract: str
    upvotes: int

    def entry(self, day: date) -> dict:
        return {
            "paper": {
                "id": self.arxiv_id,
                "title": self.title,
                "summary": self.abstract,
                "authors": [{"name": "Ada Lovelace"}, {"name": "Ibn al-Haytham"}],
                "upvotes": self.upvotes,
                "publishedAt": f"{day.isoformat()}T00:00:00.000Z",
            }
        }


@dataclass
class Listings:
    """Generates one listing a day; remembers every paper it listed."""

    seed: int = 2026
    rng: random.Random = field(init=False)
    listed: dict[str, ListedPaper] = field(default_factory=dict)  # by arXiv id
    by_day: list[list[str]] = field(default_factory=list)
    unmatched_titles: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._samples = list(sample_papers())
        self._fragment = 0

    def _new_id(self, day_number: int, serial: int) -> str:
        return f"2603.{day_number:02d}{serial:03d}"

    def _real_world(self, abstract: str) -> str:
        fragment = REAL_WORLD_FRAGMENTS[self._fragment % len(REAL_WORLD_FRAGMENTS)]
        self._fragment += 1
        sentences = abstract.split(". ")
        at = self.rng.randrange(len(sentences) + 1)
        return ". ".join([*sentences[:at], fragment.rstrip("."), *sentences[at:]])

    def day(
        self, day_number: int, day: date, *, relist: tuple[str, ...] = (), duplicate_of: str = ""
    ) -> list[dict]:
        """The listing for `day`: new sample papers, unmatched ones, re-listed ones (those named in
        `relist` plus a few at random), the duplicate of `duplicate_of` (another id, a retitled
        copy) and a record without a title."""
        serial = iter(range(1, 1000))
        papers: list[ListedPaper] = []
        start = day_number * NEW_SAMPLES_PER_DAY
        for number, record in enumerate(self._samples[start : start + NEW_SAMPLES_PER_DAY]):
            abstract = record.abstract
            if number % 3 == 0:
                abstract = self._real_world(abstract)
            if number == 7 and day_number % 4 == 1:
                abstract = " ".join([abstract] * 8)  # a long one, ~10,000 characters
            papers.append(
                ListedPaper(
                    self._new_id(day_number, next(serial)),
                    record.title,
                    abstract,
                    self.rng.randrange(0, 300),
                )
            )
        for _ in range(UNMATCHED_PER_DAY):
            papers.append(self._unmatched(day_number, next(serial)))
        earlier = [arxiv_id for ids in self.by_day[-3:] for arxiv_id in ids]
        again = list(relist) + self.rng.sample(earlier, min(RELISTED_PER_DAY, len(earlier)))
        relisted = []
        for arxiv_id in dict.fromkeys(again):
            paper = self.listed[arxiv_id]
            paper.upvotes += self.rng.randrange(1, 50)
            relisted.append(paper)
        if duplicate_of:
            original = self.listed[duplicate_of]
            papers.append(
                ListedPaper(
                    self._new_id(day_number, next(serial)),
                    f"{original.title} (Extended Version)",
                    f"{original.abstract} An appendix adds proofs and further experiments.",
                    original.upvotes,
                )
            )
        for paper in papers:
            self.listed[paper.arxiv_id] = paper
        self.by_day.append([paper.arxiv_id for paper in papers])
        entries = [paper.entry(day) for paper in [*papers, *relisted]]
        self.rng.shuffle(entries)
        entries.append({"paper": {"id": "2603.99999", "summary": "This entry lost its title."}})
        return entries

    def _unmatched(self, day_number: int, serial: int) -> ListedPaper:
        while True:
            subject = self.rng.choice(UNMATCHED_SUBJECTS)
            place = self.rng.choice(UNMATCHED_PLACES)
            title = f"{subject} in {place}, Season {day_number}"
            if title not in self.unmatched_titles:
                break
        self.unmatched_titles.add(title)
        abstract = (
            f"We survey {subject.lower()} across {place} with field cores (n = 212) and "
            f"radiocarbon dating ($^{{14}}$C). Rates rose 3.1 (%) per decade; δ¹⁸O values "
            "track the seasons (±0.2‰)."
        )
        return ListedPaper(
            self._new_id(day_number, serial), title, abstract, self.rng.randrange(0, 20)
        )

    def write(self, entries: list[dict], path: Path) -> Path:
        path.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
        return path
