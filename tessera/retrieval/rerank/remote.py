"""Rerank through a rerank endpoint in Cohere's and Jina's shape (`POST {base}/rerank`: query,
documents; results of index and relevance_score), which vLLM, Infinity, Jina, Cohere and
`tessera serve --rerank` answer: a cross-encoder served on a GPU machine, or one Tessera cannot
load here.

    tessera search INDEX "q" --rerank cross-encoder:http://127.0.0.1:8000/v1#bge-reranker-base

Documents go `BATCH` a request (a cross-encoder scores each pair alone, so batching changes no
score); `Authorization: Bearer $OPENAI_API_KEY` when set; busy servers are retried and every
failure names the endpoint (`openai_http.OpenAIClient`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tessera.errors import EncoderError
from tessera.openai_http import DEFAULT_MODEL, OpenAIClient, normalize_base_url, snippet

BATCH = 32  # documents a request: under every server's limit (tessera serve's --max-k is 100)


class RemoteReranker:
    def __init__(self, url: str, spec: str, timeout: float = 120.0, retries: int = 2) -> None:
        base, _, model = url.partition("#")
        self.model = model or DEFAULT_MODEL
        base = normalize_base_url(base, "rerank", EncoderError)
        self.client = OpenAIClient(base, "rerank endpoint", EncoderError, timeout, retries)
        self.spec = spec

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        scores = np.zeros(len(texts), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            batch = list(texts[start : start + BATCH])
            scores[start : start + len(batch)] = self._request(query, batch)
        return scores

    def _request(self, query: str, texts: list[str]) -> np.ndarray:
        payload = {"model": self.model, "query": query, "documents": texts, "top_n": len(texts)}
        body = self.client.post_json("/rerank", payload)
        try:
            pairs = [(int(row["index"]), float(row["relevance_score"])) for row in body["results"]]
        except (LookupError, TypeError, ValueError):
            raise self.client.error(f"answered an unexpected body: {snippet(str(body))}") from None
        if sorted(index for index, _ in pairs) != list(range(len(texts))):
            raise self.client.error(f"answered {len(pairs)} scores for {len(texts)} documents")
        scores = np.zeros(len(texts), dtype=np.float32)
        for index, score in pairs:
            scores[index] = score
        return scores
