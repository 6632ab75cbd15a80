"""Ranking papers for subscribers, and the explanation of each match.

    text          words, stems, topic lines, the acronyms a text defines
    paper_index   papers as sparse matrices, and the relevance of topic lines to them
    ranking       every interest's picks in one vectorized pass
    profile       the reader profile learned from their ratings, and how it scores papers
    profile_ranking  the day's profiles in a ranking pass: centroids, remembered papers
    explanations  which topic and which of the paper's words matched, or which rated paper
    matched_words  the same words for every (paper, topic line) of a ranking at once
    selection     the only part that reads the database: candidates, already sent, digests

Every name other modules import from `digest.matching` is re-exported here. The settings (upper
case) are read where they are defined: patch them on their own module, not on this package.
"""

from digest.matching.explanations import MAX_MATCHED_TERMS, Match, explain, to_matches
from digest.matching.paper_index import (
    COVERAGE_POWER,
    COVERAGE_THRESHOLD,
    FEEDBACK_MIN_PAPERS,
    FEEDBACK_PAPERS,
    FEEDBACK_WEIGHT,
    FEEDBACK_WORDS,
    K1,
    PAPER_WORDS_FOR_FEEDBACK,
    PHRASE_WEIGHT,
    RELEVANCE_THRESHOLD,
    TOPIC_CHUNK,
    WORD_MARK,
    B,
    PaperIndex,
    keep_row_top,
    row_sums,
    segment_runs,
)
from digest.matching.ranking import (
    PIN_BONUS,
    SUBSCRIBER_CHUNK,
    TREND_WEIGHT,
    Interest,
    Picks,
    rank,
    top_k,
    trend,
)
from digest.matching.selection import (
    FIRST_DIGEST_WINDOW,
    QUERY_CHUNK,
    embed_new_topic_lines,
    not_again,
    profiles_of,
    search_papers,
    search_papers_for,
    select_papers,
    window_starts,
)
from digest.matching.text import (
    ACRONYM,
    END,
    KEEP_WHOLE,
    PARENTHESIS,
    SEGMENT,
    START,
    STEM,
    STOPWORDS,
    TITLE_WEIGHT,
    TOKEN,
    Token,
    analyze,
    find_acronyms,
    parse_topic_lines,
    stem,
    topic_stems,
)

__all__ = [
    "ACRONYM",
    "B",
    "COVERAGE_POWER",
    "COVERAGE_THRESHOLD",
    "END",
    "FEEDBACK_MIN_PAPERS",
    "FEEDBACK_PAPERS",
    "FEEDBACK_WEIGHT",
    "FEEDBACK_WORDS",
    "FIRST_DIGEST_WINDOW",
    "Interest",
    "K1",
    "KEEP_WHOLE",
    "MAX_MATCHED_TERMS",
    "Match",
    "PAPER_WORDS_FOR_FEEDBACK",
    "PARENTHESIS",
    "PHRASE_WEIGHT",
    "PIN_BONUS",
    "PaperIndex",
    "Picks",
    "QUERY_CHUNK",
    "RELEVANCE_THRESHOLD",
    "SEGMENT",
    "START",
    "STEM",
    "STOPWORDS",
    "SUBSCRIBER_CHUNK",
    "TITLE_WEIGHT",
    "TOKEN",
    "TOPIC_CHUNK",
    "TREND_WEIGHT",
    "Token",
    "WORD_MARK",
    "analyze",
    "embed_new_topic_lines",
    "explain",
    "find_acronyms",
    "keep_row_top",
    "parse_topic_lines",
    "rank",
    "row_sums",
    "profiles_of",
    "not_again",
    "search_papers",
    "search_papers_for",
    "segment_runs",
    "select_papers",
    "stem",
    "to_matches",
    "top_k",
    "topic_stems",
    "trend",
    "window_starts",
]
