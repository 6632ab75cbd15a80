"""The semantic engine on the real shipped model (all-MiniLM-L6-v2 int8, 23 MB, installed by
`make install` from the pinned package): vectors, the sha256 check, and the unavailable path."""

import logging
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.matching import semantic
from tests.unicode_text import any_text


@pytest.fixture(scope="module")
def model():
    return semantic.load_model(None, semantic.PINNED_MODEL_SHA256)


def test_vectors_are_unit_rows_and_close_texts_are_closer(model):
    vectors = semantic.embed_texts(
        [
            "mixture of experts",
            "Sparse expert layers route each token to a few feed-forward networks.",
            "A 2.4% determination of the local value of the Hubble constant.",
        ],
        model=model,
    )

    assert vectors.shape == (3, semantic.DIMENSIONS) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


@settings(max_examples=60, deadline=None)
@given(st.lists(any_text, max_size=4))
def test_any_text_embeds_without_raising_to_unit_or_zero_rows(model, texts):
    vectors = semantic.embed_texts(texts, model=model)

    norms = np.linalg.norm(vectors, axis=1)
    assert vectors.shape == (len(texts), semantic.DIMENSIONS)
    assert np.all(np.isclose(norms, 1, atol=1e-4) | (norms == 0))


def test_a_huge_text_is_read_only_up_to_its_bound(model):
    start = "Speculative decoding drafts tokens with a small model. "
    huge, short = semantic.embed_texts(
        [start * 40 + "x" * 1_000_000, (start * 40)[: semantic.MAX_CHARACTERS]], model=model
    )

    assert np.allclose(huge, short, atol=1e-5)


def test_a_model_file_with_another_sha256_is_unavailable_with_one_warning(tmp_path, caplog):
    corrupt = tmp_path / "model.onnx"
    shutil.copyfile(semantic.pinned_model_path(), corrupt)
    with corrupt.open("r+b") as file:
        file.seek(1000)
        file.write(b"\x00" * 16)
    semantic.model_for.cache_clear()

    with caplog.at_level(logging.WARNING, logger="digest.matching.semantic"):
        first = semantic.model_for(str(corrupt), semantic.PINNED_MODEL_SHA256)
        second = semantic.model_for(str(corrupt), semantic.PINNED_MODEL_SHA256)

    assert first is None and second is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "sha256" in warnings[0].getMessage()


def test_a_missing_model_file_makes_embed_texts_return_none(tmp_path, settings, caplog):
    settings.EMBEDDING_MODEL = str(tmp_path / "nowhere.onnx")
    semantic.model_for.cache_clear()

    with caplog.at_level(logging.WARNING, logger="digest.matching.semantic"):
        vectors = semantic.embed_texts(["anything"])

    assert vectors is None
    assert "does not exist" in caplog.text
    semantic.model_for.cache_clear()


def test_the_settings_default_is_the_pinned_package_checked(settings):
    settings.EMBEDDING_MODEL, settings.EMBEDDING_SHA256 = "", ""
    semantic.model_for.cache_clear()

    vectors = semantic.embed_texts(["diffusion models"])

    assert vectors is not None and vectors.shape == (1, semantic.DIMENSIONS)
