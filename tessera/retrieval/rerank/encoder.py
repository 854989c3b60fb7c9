"""Rerank with any vector encoder of the registry: a dense model by the dot product of its
normalised vectors, a multi-vector one (`colbert:PATH`, `xtr:PATH`) by exact MaxSim, as PyLate's
`rank.rerank` does. Over the hits of an index built with the same encoder, the scores are that
index's own (exact search); over BM25's hits it is the classic "BM25, then a dense re-scorer"."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from tessera.models.encoder import Encoder
from tessera.retrieval.late_interaction import maxsim

CACHED_DOCS = 20_000  # document vectors kept across queries (a query set shares many candidates)


class EncoderReranker:
    def __init__(self, encoder: Encoder, cached_docs: int = CACHED_DOCS):
        self.encoder = encoder
        self.spec = encoder.spec
        self.cached_docs = cached_docs
        self._docs: OrderedDict[str, np.ndarray] = OrderedDict()

    def doc_vectors(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Vectors by text: a document's vector depends on nothing else, so the cache is right
        whatever index or corpus the text came from (ids repeat across collections)."""
        missing = list(dict.fromkeys(text for text in texts if text not in self._docs))
        if missing:
            self._docs.update(zip(missing, self.encoder.encode_docs(missing), strict=True))
        vectors = []
        for text in texts:
            self._docs.move_to_end(text)
            vectors.append(self._docs[text])
        while len(self._docs) > max(self.cached_docs, len(texts)):
            self._docs.popitem(last=False)
        return vectors

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        docs = self.doc_vectors(texts)
        query_vector = self.encoder.encode_queries([query])[0]
        if not getattr(self.encoder, "multi_vector", False):
            return np.stack(docs).astype(np.float32) @ query_vector.astype(np.float32)
        lengths = np.array([len(d) for d in docs], dtype=np.int64)
        dim = query_vector.shape[1]
        tokens = np.concatenate([d.reshape(-1, dim) for d in docs]).astype(np.float32, copy=False)
        return maxsim(query_vector, tokens, lengths)
