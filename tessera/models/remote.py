"""An encoder behind an OpenAI-compatible embeddings endpoint (`POST {base}/embeddings`): TEI,
vLLM, Ollama, llama.cpp server, OpenAI, or another `tessera serve`.

    tessera index CORPUS -o DIR --encoder http://127.0.0.1:8080/v1#bge-small-en-v1.5

The spec is the endpoint's base URL (`/v1` added unless the path ends in it) and the model as a
fragment (default `default`, which single-model servers ignore); it is what the manifest keeps,
so searching the index calls the same endpoint for its queries. The key is never in the spec:
`Authorization: Bearer $OPENAI_API_KEY` is sent when that variable is set. Texts go
`BATCH` a request, in order; vectors are L2-normalised here (every Tessera encoder's vectors are,
so inner product is cosine), and an empty text gets the zero vector without a request (the API
refuses empty inputs). Queries and documents are embedded alike: the API has no query side, so
a model that wants a prefix ("query: ") needs it in the texts. Failures (server down, an HTTP
error, a malformed answer, a vector of the wrong width) are `EncoderError`s naming the endpoint;
busy and restarting servers are retried (`openai_http.OpenAIClient`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tessera.errors import EncoderError
from tessera.models.encoder import blank_as_zero
from tessera.openai_http import DEFAULT_MODEL, OpenAIClient, is_url, normalize_base_url, snippet

BATCH = 64  # texts a request: below every server's input limit (OpenAI's is 2048)
PROBE = "dimension probe"


def is_remote_spec(spec: str) -> bool:
    return is_url(spec)


def canonical_remote_spec(spec: str) -> str:
    """`http://host:8080#m` -> `http://host:8080/v1#m`; no fragment -> `#default`."""
    base, _, model = spec.partition("#")
    return f"{normalize_base_url(base, 'encoder', EncoderError)}#{model or DEFAULT_MODEL}"


class RemoteEncoder:
    """One vector a text from an OpenAI-compatible embeddings endpoint; the width is asked of
    the endpoint once, with a probe text, when the encoder is made."""

    multi_vector = False

    def __init__(
        self, spec: str, timeout: float = 120.0, retries: int = 2, api_key: str | None = None
    ) -> None:
        self.spec = canonical_remote_spec(spec)
        base, _, self.model = self.spec.partition("#")
        self.client = OpenAIClient(base, "embeddings endpoint", EncoderError, timeout, retries, 0.5, api_key)
        self.dim = 0  # any width, for the probe's answer
        self.dim = int(self._request([PROBE]).shape[1])

    def encode_docs(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        def batched(wanted: list[str]) -> np.ndarray:
            starts = range(0, len(wanted), BATCH)
            return np.concatenate([self._request(wanted[at : at + BATCH]) for at in starts])

        vectors = blank_as_zero(texts, self.dim, batched)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=vectors, where=norms > 0)

    def _request(self, texts: list[str]) -> np.ndarray:
        payload = {"model": self.model, "input": texts, "encoding_format": "float"}
        body = self.client.post_json("/embeddings", payload)
        try:
            data = sorted(body["data"], key=lambda row: row["index"])
            matrix = np.asarray([row["embedding"] for row in data], dtype=np.float32)
        except (LookupError, TypeError, ValueError, OverflowError):
            raise self.client.error(f"answered an unexpected body: {snippet(str(body))}") from None
        if matrix.ndim != 2 or matrix.shape[1] == 0:
            raise self.client.error(
                f"answered embeddings that are not lists of numbers: {snippet(str(body))}"
            )
        if len(matrix) != len(texts):
            raise self.client.error(f"answered {len(matrix)} vectors for {len(texts)} texts")
        if not np.isfinite(matrix).all():  # null, NaN or beyond float32: an index that finds nothing
            raise self.client.error("answered vectors with NaN, null or infinite values")
        if self.dim and matrix.shape[1] != self.dim:
            raise self.client.error(f"answered {matrix.shape[1]}-d vectors, not {self.dim}-d ones")
        return matrix
