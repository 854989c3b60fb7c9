"""`POST /v1/embeddings`: OpenAI's embeddings API over the served indexes' encoders. The vectors
are the index's own (documents, or queries with `input_type`), base64 decodes to the same
floats, and what cannot be embedded is a JSON 400 or 413 naming the field."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tessera.retrieval.index import Index
from tessera.serve import ServeSettings, create_app
from tests.serve.conftest import wait_ready

TEXTS = ["boundary layer transition at supersonic speeds", "heat transfer to a blunt body"]


def test_document_and_query_vectors_are_the_index_encoders(
    client: TestClient, loaded: dict[str, Index]
) -> None:
    encoder = loaded["head-minilm"].encoder
    got = client.post("/v1/embeddings", json={"input": TEXTS, "model": "head-minilm"}).json()
    assert got["object"] == "list" and got["model"] == "head-minilm"
    assert [row["index"] for row in got["data"]] == [0, 1]
    vectors = np.array([row["embedding"] for row in got["data"]], dtype=np.float32)
    np.testing.assert_allclose(vectors, encoder.encode_docs(TEXTS), atol=1e-6)
    assert vectors.shape == (2, 384) and got["usage"]["prompt_tokens"] == got["usage"]["total_tokens"] > 10
    query = client.post("/v1/embeddings", json={"input": TEXTS[0], "model": "minilm", "input_type": "query"})
    assert query.json()["model"] == "head-minilm"  # named by its encoder spec
    np.testing.assert_allclose(
        query.json()["data"][0]["embedding"], encoder.encode_queries(TEXTS[:1])[0], atol=1e-6
    )
    packed = client.post(
        "/v1/embeddings", json={"input": TEXTS, "model": "head-minilm", "encoding_format": "base64"}
    )
    unpacked = [
        np.frombuffer(base64.b64decode(row["embedding"]), dtype="<f4") for row in packed.json()["data"]
    ]
    np.testing.assert_array_equal(np.stack(unpacked), vectors)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"input": TEXTS, "model": "head-bm25"}, 400, "a BM25 index has no vectors"),
        ({"input": TEXTS, "model": "text-embedding-3-small"}, 400, "indexes: head-minilm, head-bm25"),
        ({"input": TEXTS, "model": "head-minilm", "dimensions": 256}, 400, "makes 384-d vectors"),
        ({"input": ["fine", " "], "model": "head-minilm"}, 400, "input 1 is empty"),
        ({"input": [], "model": "head-minilm"}, 400, "no text to embed"),
        ({"input": [[101, 2023]], "model": "head-minilm"}, 400, "input"),
        ({"input": ["a", "b", "c"], "model": "head-minilm"}, 413, "at most 2 per request"),
        ({"input": TEXTS, "model": "head-minilm", "dimensions": "384"}, 400, "field 'dimensions'"),
        ({"input": TEXTS, "model": "head-minilm", "dimensions": True}, 400, "field 'dimensions'"),
        (  # the union's members were named as fields: 'input.str', 'input.list[str]'
            {"input": 7, "model": "head-minilm"},
            400,
            "field 'input': Input should be a valid string or a valid list",
        ),
        (
            {"input": ["a", 1], "model": "head-minilm"},
            400,
            "field 'input[1]': Input should be a valid string",
        ),
    ],
)
def test_what_cannot_be_embedded_is_refused(make_app, body: dict, status: int, message: str) -> None:
    with TestClient(make_app(max_queries=2)) as client:
        wait_ready(client.get)
        response = client.post("/v1/embeddings", json=body)
    assert response.status_code == status and message in response.json()["error"]["message"]


def test_errors_name_the_field_and_code_as_openai_does(make_app) -> None:
    """`param` was always null and `code` the status, an int: OpenAI's clients type it a string."""
    with TestClient(make_app(max_queries=2)) as client:
        wait_ready(client.get)
        wide = client.post("/v1/embeddings", json={"input": 7, "model": "head-minilm"}).json()["error"]
        many = client.post("/v1/embeddings", json={"input": ["a", "b", "c"], "model": "head-minilm"})
    assert (wide["type"], wide["param"], wide["code"]) == ("invalid_request_error", "input", None)
    assert many.status_code == 413 and many.json()["error"]["code"] == "request_too_large"
    assert many.json()["error"]["param"] is None


def test_a_token_index_gives_no_embeddings(cranfield_tokens: Path) -> None:
    with TestClient(create_app(ServeSettings(indexes={"tokens": str(cranfield_tokens)}))) as client:
        wait_ready(client.get)
        response = client.post("/v1/embeddings", json={"input": TEXTS})
    assert response.status_code == 400 and "one vector per token" in response.json()["error"]["message"]


def test_without_a_model_the_first_index_with_vectors_embeds(make_app) -> None:
    """A BM25 index served first no longer answers every model-less request with a 400;
    `null` for an optional field is the same as leaving it out."""
    with TestClient(make_app(("head-bm25", "head-minilm"))) as client:
        wait_ready(client.get)
        nulls = {"model": None, "encoding_format": None, "input_type": None, "dimensions": None}
        got = client.post("/v1/embeddings", json={"input": TEXTS, **nulls})
        assert got.status_code == 200 and got.json()["model"] == "head-minilm"
        # what Tessera's own endpoint encoder asks for without #MODEL
        asked = client.post("/v1/embeddings", json={"input": TEXTS, "model": "default"})
        assert asked.status_code == 200 and asked.json()["model"] == "head-minilm"
