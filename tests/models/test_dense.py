"""The sentence-transformers dense encoder: unit vectors, and the zero vector for a blank text."""

from __future__ import annotations

import numpy as np

from tessera.models.registry import load_encoder


def test_a_blank_text_gets_the_zero_vector_and_the_rest_are_unchanged() -> None:
    """MiniLM's vector of an empty text is a little like everything (cosine 0.29 to "wings"):
    an empty document ranked above most real ones for any query."""
    encoder = load_encoder("minilm")
    texts = ["lift of a wing in a slipstream", "", "heat transfer to a blunt body", " \n\t"]
    vectors = encoder.encode_docs(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (4, 384) and vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), [1.0, 0.0, 1.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(vectors[[0, 2]], encoder.encode_docs([texts[0], texts[2]]), atol=1e-5)
    assert encoder.encode_docs([]).shape == (0, 384)
    assert float(encoder.encode_queries(["wings"])[0] @ vectors[1]) == 0.0
