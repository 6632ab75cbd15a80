"""The semantic part of a topic line's relevance: its embedding's cosine with each paper's.

One dense product, distinct topic lines × papers (in chunks of lines), scores every line every
reader typed, so readers who share a line share its cosines and nothing loops over readers. A
paper the line's words matched gains SEMANTIC_WEIGHT × cosine; a paper they did not match comes
in on its meaning alone from a cosine of SEMANTIC_FLOOR (with SEMANTIC_WEIGHT × cosine). The
result stays sparse: below the floor, a paper without the words is not an entry. Exclusions and
the other masks apply after this, to the blended score, so they stay strict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import sparse

# Tuned on the tuning half of bench/judged_queries.json (bench/ranking_quality.py --semantic).
SEMANTIC_WEIGHT = 0.3
SEMANTIC_FLOOR = 0.3
LINE_CHUNK = 2048  # lines scored together: 2048 × 2,000 papers is 16 MB per dense block
# A reader's liked papers (rated up, or ticked at sign-up) join the ranking as one more topic
# line of theirs, whose vector is the mean of those papers' vectors. Its text has no word the
# lexical index reads (the reader's id spelled in "_" and "~"), so only its meaning counts.
LIKED_LINE_MARK = "\x00♥"


def liked_line(subscriber_id: int) -> str:
    """The topic line standing for a reader's liked papers."""
    return LIKED_LINE_MARK + format(subscriber_id, "b").replace("0", "_").replace("1", "~")


def is_liked_line(topic: str) -> bool:
    return topic.startswith(LIKED_LINE_MARK)


def line_matrix(
    topics: Sequence[str], topic_vectors: Mapping[str, np.ndarray], dimensions: int
) -> np.ndarray:
    """len(topics) × dimensions: each line's vector, zero for a line without one."""
    lines = np.zeros((len(topics), dimensions), dtype=np.float32)
    for row, topic in enumerate(topics):
        vector = topic_vectors.get(topic)
        if vector is not None and len(vector) == dimensions:
            lines[row] = vector
    return lines


def semantic_relevance(
    relevance: sparse.csr_matrix,
    topics: Sequence[str],
    paper_vectors: np.ndarray,
    topic_vectors: Mapping[str, np.ndarray],
    *,
    weight: float = SEMANTIC_WEIGHT,
    floor: float | None = None,
) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """(the blended relevance, the meaning's part of it), both shaped like `relevance`, whose
    first len(topics) rows are the topic lines (any further row is left as it is). `floor`:
    SEMANTIC_FLOOR when None."""
    floor = SEMANTIC_FLOOR if floor is None else floor
    papers = np.asarray(paper_vectors, dtype=np.float32)
    lines = line_matrix(topics, topic_vectors, papers.shape[1])
    blended, parts = [], []
    for start in range(0, len(topics), LINE_CHUNK):
        stop = min(start + LINE_CHUNK, len(topics))
        words = relevance[start:stop].toarray()
        cosine = lines[start:stop] @ papers.T
        meaning = weight * np.maximum(cosine, 0)
        meaning[(words <= 0) & (cosine < floor)] = 0
        blended.append(sparse.csr_matrix(words + meaning))
        parts.append(sparse.csr_matrix(meaning))
    rest = relevance[len(topics) :]
    blended.append(rest)
    parts.append(sparse.csr_matrix(rest.shape, dtype=np.float32))
    return (
        sparse.vstack(blended, format="csr").astype(np.float32),
        sparse.vstack(parts, format="csr").astype(np.float32),
    )
