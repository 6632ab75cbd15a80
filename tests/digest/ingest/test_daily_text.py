import re
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.ingest.daily_text import LONG_LINE_CHARS, parse_daily_text
from digest.ingest.records import PaperRecord, Rejection, clean_text
from tests.unicode_text import any_text

SURROGATE = re.compile("[\ud800-\udfff]")

DUMPS = Path(__file__).resolve().parents[3] / "samples" / "dumps"


def parse(text: str) -> tuple[list[PaperRecord], list[Rejection]]:
    items = list(parse_daily_text(text.splitlines()))
    return (
        [item for item in items if isinstance(item, PaperRecord)],
        [item for item in items if isinstance(item, Rejection)],
    )


def parse_file(path: Path) -> tuple[list[PaperRecord], list[Rejection]]:
    return parse(path.read_text(encoding="utf-8"))


ABSTRACT = "We study a problem. " * 20  # 400 characters, as long as real abstracts


def test_the_five_sample_dumps_hold_555_records_456_papers_33_with_metadata():
    records, rejections = [], []
    for path in sorted(DUMPS.glob("*.txt")):
        got, rejected = parse_file(path)
        records += got
        rejections += rejected
    assert rejections == []
    assert len(records) == 555
    assert len({record.title for record in records}) == 456
    assert len({record.title_key for record in records}) == 456
    assert sum(1 for record in records if record.author_count is not None) == 33
    assert all(len(record.abstract) > LONG_LINE_CHARS for record in records)


def test_glued_subscribe_layout_reads_the_first_title_without_subscribe():
    records, _ = parse_file(next(DUMPS.glob("000_*.txt")))
    assert (
        records[0].title == "Tree Search-Based Policy Optimization under Stochastic Execution Delay"
    )
    assert records[0].abstract.startswith("The standard formulation of Markov decision processes")
    assert records[0].where == "line 3"
    assert len(records) == 197


def test_page_header_layout_skips_the_header_and_blank_lines():
    records, _ = parse_file(next(DUMPS.glob("001_*.txt")))
    assert records[0].title.startswith("SURGE: On the Potential of Large Language Models")
    assert records[0].where == "line 13"
    assert not any(record.title in {"new", "Daily Papers", "Aug 20"} for record in records)
    assert len(records) == 83


def test_metadata_layout_reads_author_count_date_and_upvotes():
    records, _ = parse_file(next(DUMPS.glob("003_*.txt")))
    assert len(records) == 33
    paging, benchmarking = records[0], records[1]
    assert paging.title == "Paging with Succinct Predictions"
    assert (paging.author_count, paging.published_on, paging.upvotes) == (8, date(2022, 10, 6), 0)
    assert benchmarking.title == "Benchmarking Neural Network Training Algorithms"
    assert (benchmarking.author_count, benchmarking.published_on, benchmarking.upvotes) == (
        25,
        date(2023, 6, 12),
        1,
    )


def test_mixed_layouts_in_one_dump_are_all_read():
    text = "\n".join(
        [
            "Get trending papers in your email inbox!",
            "SubscribeFirst Glued Title",
            ABSTRACT,
            "Second Paired Title",
            ABSTRACT,
            "",
            "Daily Papers",
            "Aug 20",
            "",
            "Third Spaced Title",
            "",
            ABSTRACT,
            "",
            "  • 3 authors",
            "·",
            "Mar 1, 2024 12",
        ]
    )
    records, rejections = parse(text)
    assert [record.title for record in records] == [
        "First Glued Title",
        "Second Paired Title",
        "Third Spaced Title",
    ]
    assert (records[2].author_count, records[2].upvotes) == (3, 12)
    assert rejections == []


def test_title_with_no_abstract_is_reported_and_its_neighbours_kept():
    records, rejections = parse(f"First Title\n{ABSTRACT}\nLonely Title\nThird Title\n{ABSTRACT}")
    assert [record.title for record in records] == ["First Title", "Third Title"]
    assert rejections == [Rejection("line 3", "title with no abstract (another title follows)")]


def test_truncated_last_record_is_reported_and_the_others_kept():
    records, rejections = parse(f"First Title\n{ABSTRACT}\nCut Off Here")
    assert [record.title for record in records] == ["First Title"]
    assert rejections == [
        Rejection("line 3", "title with no abstract at the end (truncated dump?)")
    ]


def test_truncated_abstract_at_the_end_still_pairs_with_its_title():
    records, rejections = parse(f"First Title\n{ABSTRACT}\nSecond Title\nWe study a pro")
    assert [record.abstract for record in records][-1] == "We study a pro"
    assert rejections == []


def test_short_abstracts_pair_with_their_titles():
    records, rejections = parse("Title A\nShort abstract A.\nTitle B\nShort abstract B.")
    assert [(r.title, r.abstract) for r in records] == [
        ("Title A", "Short abstract A."),
        ("Title B", "Short abstract B."),
    ]
    assert rejections == []


def test_abstract_split_over_two_lines_is_reported_not_taken_for_a_title():
    text = f"First Title\n{ABSTRACT}\nthe abstract's stray tail.\nSecond Title\n{ABSTRACT}"
    records, rejections = parse(text)
    assert [record.title for record in records] == ["First Title", "Second Title"]
    assert rejections == [Rejection("line 3", "title with no abstract (another title follows)")]


def test_long_line_with_no_title_is_reported():
    records, rejections = parse(f"{ABSTRACT}\nA Title\n{ABSTRACT}")
    assert [record.title for record in records] == ["A Title"]
    assert rejections == [Rejection("line 1", "a long line with no title before it")]


def test_html_in_a_title_is_kept_as_text():
    records, _ = parse(f"<script>alert('x')</script> &amp; Friends\n{ABSTRACT}")
    assert records[0].title == "<script>alert('x')</script> &amp; Friends"


# Property-based: generated dumps in any of the three layouts, with junk lines between records.

title_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Zs", "S"]),
    min_size=1,
    max_size=150,
).map(lambda text: " ".join(text.split()))
PAGE_CHROME = {"new", "subscribe", "daily papers", "byak and the research community"}
DATE_LINE = re.compile(
    r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? \d{1,2}(, \d{4}( \d+)?)?$"
)


def is_well_formed_title(title: str) -> bool:
    """Has a letter or digit, and is not a line of page chrome or paper metadata."""
    return (
        any(char.isalnum() for char in title)
        and title.lower() not in PAGE_CHROME
        and not title.lower().startswith("get trending papers in your email inbox")
        and not title.startswith(("•", "·"))
        and not DATE_LINE.match(title)
    )


well_formed_title = title_text.filter(is_well_formed_title)
abstract_text = (
    st.text(
        alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]),
        min_size=LONG_LINE_CHARS + 1,
        max_size=2 * LONG_LINE_CHARS,
    )
    .map(lambda text: " ".join(text.split()))
    .filter(lambda text: len(text) > LONG_LINE_CHARS)
)
paper = st.tuples(well_formed_title, abstract_text)


def render(papers: list[tuple[str, str]], layout: int, metadata: bool) -> str:
    if layout == 0:
        head = ["Get trending papers in your email inbox once a day!", "Subscribe"]
        lines = [line for title, abstract in papers for line in (title, abstract)]
        return "\n".join(head[:1] + ["Subscribe" + lines[0], *lines[1:]] if lines else head)
    head = ["new", "", "Subscribe", "", "Daily Papers", "", "Aug 20", ""]
    lines = list(head)
    for title, abstract in papers:
        lines += [title, "", abstract, ""]
        if metadata:
            lines += ["  • 4 authors", "·", "Jun 12, 2023 3", ""]
    return "\n".join(lines)


@settings(max_examples=150, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    papers=st.lists(paper, max_size=8),
    layout=st.sampled_from([0, 1]),
    metadata=st.booleans(),
    line_end=st.sampled_from(["\n", "\r\n"]),
)
def test_generated_dumps_never_lose_a_well_formed_record(papers, layout, metadata, line_end):
    text = render(papers, layout, metadata).replace("\n", line_end)
    records, rejections = parse(text)
    assert [(record.title, record.abstract) for record in records] == papers
    assert rejections == []


@settings(max_examples=300)
@given(st.lists(st.text(max_size=400), max_size=30))
def test_arbitrary_lines_never_crash_the_parser(lines):
    items = list(parse_daily_text(lines))
    assert all(isinstance(item, PaperRecord | Rejection) for item in items)
    assert all(item.where.startswith("line ") for item in items)


@settings(max_examples=150, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    papers=st.lists(paper, min_size=1, max_size=6),
    junk=st.lists(st.sampled_from(["", "Subscribe", "Daily Papers", "·", "new"]), max_size=4),
    position=st.integers(min_value=0),
)
def test_page_chrome_anywhere_between_records_loses_nothing(papers, junk, position):
    blocks = [[title, abstract] for title, abstract in papers]
    at = position % (len(blocks) + 1)
    lines = [line for block in blocks[:at] for line in block] + junk
    lines += [line for block in blocks[at:] for line in block]
    records, _ = parse("\n".join(lines))
    assert [(record.title, record.abstract) for record in records] == papers


# Property-based: any unicode at all, and the real dumps with any lines between their records.


@settings(max_examples=400, deadline=None)
@given(st.lists(any_text, max_size=25))
def test_any_unicode_lines_give_clean_records_and_rejections_saying_which_line(lines):
    items = list(parse_daily_text(lines))

    for item in items:
        assert isinstance(item, PaperRecord | Rejection)
        assert 1 <= int(item.where.removeprefix("line ")) <= len(lines)
    for record in (item for item in items if isinstance(item, PaperRecord)):
        assert record.title and clean_text(record.title) == record.title
        assert (
            len(record.title) <= LONG_LINE_CHARS and clean_text(record.abstract) == record.abstract
        )
        assert not SURROGATE.search(record.title + record.abstract)


def sample_dump(name: str) -> tuple[list[str], list[tuple[int, str, str]]]:
    """A real dump's lines and its records as (title line index, title, abstract)."""
    lines = (DUMPS / name).read_text(encoding="utf-8").splitlines()
    records = [
        (int(item.where.removeprefix("line ")) - 1, item.title, item.abstract)
        for item in parse_daily_text(lines)
        if isinstance(item, PaperRecord)
    ]
    return lines, records


SAMPLE_DUMPS = {path.name: sample_dump(path.name) for path in sorted(DUMPS.glob("*.txt"))}


def insertion_points(records: list[tuple[int, str, str]]) -> list[int]:
    """Line indexes between two records that both have a long abstract: arbitrary lines there
    cannot be taken for either record's title or abstract."""
    return [
        later[0]
        for earlier, later in zip(records, records[1:], strict=False)
        if len(earlier[2]) > LONG_LINE_CHARS and len(later[2]) > LONG_LINE_CHARS
    ]


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(sorted(SAMPLE_DUMPS)),
    insertions=st.lists(
        st.tuples(st.integers(min_value=0), st.lists(any_text, min_size=1, max_size=4)),
        min_size=1,
        max_size=5,
    ),
)
def test_every_record_of_a_real_dump_survives_any_lines_between_records(name, insertions):
    lines, records = SAMPLE_DUMPS[name]
    points = insertion_points(records)
    at = {points[position % len(points)]: junk for position, junk in insertions}
    mixed = [new for index, line in enumerate(lines) for new in (*at.get(index, []), line)]

    kept = [
        (item.title, item.abstract)
        for item in parse_daily_text(mixed)
        if isinstance(item, PaperRecord)
    ]

    expected = iter(kept)
    assert all(
        any(pair == (title, abstract) for pair in expected) for _, title, abstract in records
    )
