from __future__ import annotations

from tessera.indexing.lucene_backend import field_weights
from tessera.models.bm25 import BM25, new_index_settings


def test_the_title_field_is_searched_only_with_a_weight() -> None:
    """title=0 is Anserini's one-field search; a weight adds the title field beside contents."""
    assert field_weights(new_index_settings("bm25:title=0")) == {"contents": 1.0}
    assert field_weights(new_index_settings("bm25")) == {"contents": 1.0, "title": 0.25}
    assert field_weights(BM25(title=0.5)) == {"contents": 1.0, "title": 0.5}
