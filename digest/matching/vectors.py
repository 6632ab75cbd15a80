"""Sentence embeddings in the database: each paper's, once per version of its title and abstract
and per model, each distinct topic line's, and the mean of the papers each reader liked.

Vectors are float32 bytes, unit length, tagged with the sha256 of the model that made them, so a
new model makes every old vector stale and `embed_missing_papers` redoes them. Writes commit one
batch at a time: a killed run loses one batch at most and the next run carries on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction

from digest.matching import semantic
from digest.matching.semantic import (
    DIMENSIONS,
    PINNED_MODEL_SHA256,
    configured_model,
    embed_texts,
    paper_text,
    unit_rows,
)
from digest.models import Paper, PaperEmbedding, Rating, TopicEmbedding

PAPER_BATCH = 64
QUERY_CHUNK = 30_000  # ids per IN (...) clause: under SQLite's 32,766 parameters
MAX_LIKED = 50  # the latest papers rated up make a reader's liked vector


@dataclass
class EmbedCounts:
    embedded: int = 0
    fresh: int = 0  # already embedded from the same text by the same model
    available: bool = True  # False: no model, nothing was embedded


def model_key() -> str:
    """Which model makes vectors now, and how it reads: a sha256 of the model file's sha256 and
    of the tokens it reads (semantic.MAX_TOKENS), so either change makes old vectors stale."""
    model_sha256 = str(settings.EMBEDDING_SHA256 or PINNED_MODEL_SHA256).lower()
    return hashlib.sha256(f"{model_sha256}:{semantic.MAX_TOKENS}".encode()).hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def to_vector(stored: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(stored), dtype=np.float32)


def _stale_papers(*, everything: bool) -> list[tuple[int, str, str]]:
    """(paper id, text, its hash) of the papers without a vector of this model for their text."""
    key = model_key()
    stale = []
    rows = Paper.objects.order_by("id").values_list(
        "id", "title", "abstract", "embedding__model", "embedding__text_hash"
    )
    for paper_id, title, abstract, model, stored_hash in rows.iterator(chunk_size=2000):
        text = paper_text(title, abstract)
        digest = text_hash(text)
        if everything or model != key or stored_hash != digest:
            stale.append((paper_id, text, digest))
    return stale


def embed_missing_papers(
    *,
    batch: int = PAPER_BATCH,
    everything: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> EmbedCounts:
    """Embed the papers whose vector is missing, made by another model or from another text
    (every paper with `everything`), `batch` papers per transaction. `progress(done, total)`
    is called after each batch."""
    if configured_model() is None:
        return EmbedCounts(available=False)
    stale = _stale_papers(everything=everything)
    total = Paper.objects.count()
    counts = EmbedCounts(fresh=total - len(stale))
    key = model_key()
    for start in range(0, len(stale), batch):
        chunk = stale[start : start + batch]
        vectors = embed_texts([text for _, text, _ in chunk])
        if vectors is None:  # the model went away mid-run
            counts.available = False
            return counts
        rows = [
            PaperEmbedding(paper_id=paper_id, model=key, text_hash=digest, vector=vector.tobytes())
            for (paper_id, _, digest), vector in zip(chunk, vectors, strict=True)
        ]
        with transaction.atomic():
            # A paper deleted (merged away) since it was read has no row to point at.
            alive = set(
                Paper.objects.filter(id__in=[row.paper_id for row in rows]).values_list(
                    "id", flat=True
                )
            )
            PaperEmbedding.objects.bulk_create(
                [row for row in rows if row.paper_id in alive],
                update_conflicts=True,
                unique_fields=["paper"],
                update_fields=["model", "text_hash", "vector", "embedded_at"],
            )
        counts.embedded += len(chunk)
        if progress is not None:
            progress(counts.fresh + counts.embedded, total)
    return counts


def embed_topic_lines(lines: Iterable[str]) -> int:
    """Embed the distinct topic lines that have no vector of this model yet; how many were."""
    key = model_key()
    by_hash = {text_hash(line): line for line in dict.fromkeys(lines)}
    if not by_hash:
        return 0
    known = set(
        TopicEmbedding.objects.filter(text_hash__in=list(by_hash), model=key).values_list(
            "text_hash", flat=True
        )
    )
    # In one order everywhere: planners of concurrent slices upserting shared lines lock their
    # rows in the same order, so neither waits for the other in a cycle (a deadlock).
    missing = sorted((digest, line) for digest, line in by_hash.items() if digest not in known)
    if not missing:
        return 0
    vectors = embed_texts([line for _, line in missing])
    if vectors is None:
        return 0
    TopicEmbedding.objects.bulk_create(
        [
            TopicEmbedding(text_hash=digest, model=key, vector=vector.tobytes())
            for (digest, _), vector in zip(missing, vectors, strict=True)
        ],
        update_conflicts=True,
        unique_fields=["text_hash", "model"],
        update_fields=["vector", "embedded_at"],
    )
    return len(missing)


def load_paper_vectors(paper_ids: Sequence[int]) -> np.ndarray:
    """len(paper_ids) × DIMENSIONS, in their order; a zero row for a paper without a vector of
    this model."""
    position = {paper_id: row for row, paper_id in enumerate(paper_ids)}
    matrix = np.zeros((len(paper_ids), DIMENSIONS), dtype=np.float32)
    key = model_key()
    for start in range(0, len(paper_ids), QUERY_CHUNK):
        rows = PaperEmbedding.objects.filter(
            paper_id__in=paper_ids[start : start + QUERY_CHUNK], model=key
        ).values_list("paper_id", "vector")
        for paper_id, vector in rows.iterator(chunk_size=2000):
            values = to_vector(vector)
            if len(values) == DIMENSIONS:
                matrix[position[paper_id]] = values
    return matrix


def load_topic_vectors(lines: Iterable[str]) -> dict[str, np.ndarray]:
    """The stored vector of each of these topic lines that has one (of this model)."""
    by_hash = {text_hash(line): line for line in dict.fromkeys(lines)}
    found: dict[str, np.ndarray] = {}
    hashes = list(by_hash)
    for start in range(0, len(hashes), QUERY_CHUNK):
        rows = TopicEmbedding.objects.filter(
            text_hash__in=hashes[start : start + QUERY_CHUNK], model=model_key()
        ).values_list("text_hash", "vector")
        for digest, vector in rows:
            found[by_hash[digest]] = to_vector(vector)
    return found


def topic_vectors_for(lines: Iterable[str]) -> dict[str, np.ndarray]:
    """Every one of these lines' vectors, embedding (and storing) the distinct lines that have
    none yet: a reader who saved topics a moment ago is ranked on meaning too."""
    lines = list(dict.fromkeys(lines))
    found = load_topic_vectors(lines)
    if len(found) < len(lines) and embed_topic_lines(line for line in lines if line not in found):
        found = load_topic_vectors(lines)
    return found


def liked_vectors(subscriber_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """Each reader's mean vector of the papers they rated up (ticked at sign-up, or from a
    digest), unit length; readers with none are left out."""
    liked: dict[int, list[int]] = {}
    for start in range(0, len(subscriber_ids), QUERY_CHUNK):
        rows = (
            Rating.objects.filter(
                subscriber_id__in=subscriber_ids[start : start + QUERY_CHUNK],
                value=Rating.Value.MORE,
            )
            .order_by("subscriber_id", "-rated_at", "-id")
            .values_list("subscriber_id", "paper_id")
        )
        for subscriber_id, paper_id in rows:
            papers = liked.setdefault(subscriber_id, [])
            if len(papers) < MAX_LIKED:
                papers.append(paper_id)
    if not liked:
        return {}
    every = list(dict.fromkeys(p for papers in liked.values() for p in papers))
    matrix = load_paper_vectors(every)
    row = {paper_id: i for i, paper_id in enumerate(every)}
    means = {}
    for subscriber_id, papers in liked.items():
        mean = unit_rows(matrix[[row[p] for p in papers]].mean(axis=0, keepdims=True))[0]
        if mean.any():
            means[subscriber_id] = mean
    return means
