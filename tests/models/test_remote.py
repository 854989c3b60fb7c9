"""The remote encoder against a real OpenAI-compatible embeddings endpoint: another Tessera
service (`/v1/embeddings` over MiniLM) on 127.0.0.1. An index built through it with the CLI
searches like the MiniLM index of the same documents; the spec the manifest keeps is the
endpoint's URL and model; empty texts, errors and a server that is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import EncoderError
from tessera.indexing.manifest import Manifest
from tessera.models.registry import canonical_spec, is_single_vector, load_encoder
from tessera.models.remote import RemoteEncoder
from tessera.retrieval.index import Index
from tessera.serve import ServeSettings, create_app
from tests.conftest import free_port, run_cli
from tests.serve.conftest import live_server

QUERIES = ["boundary layer flow", "heat transfer to a blunt body at hypersonic speeds"]


@pytest.fixture(scope="module")
def endpoint(serve_indexes: dict[str, Path], loaded: dict[str, Index]) -> Iterator[str]:
    """A Tessera service of the MiniLM head index: its embeddings route is the endpoint."""
    settings = ServeSettings.from_specs([f"head-minilm={serve_indexes['head-minilm']}"])
    app = create_app(settings, load=lambda path: loaded["head-minilm"])
    with live_server(app) as url:
        yield url


def test_an_index_built_through_the_endpoint_searches_like_the_local_encoder(
    endpoint: str, cranfield_head: Path, loaded: dict[str, Index], tmp_path: Path
) -> None:
    spec = f"{endpoint}#head-minilm"
    out = tmp_path / "remote"
    run_cli("index", str(cranfield_head / "corpus.jsonl"), "-o", str(out), "--encoder", spec)
    assert Manifest.read(out).encoder == f"{endpoint}/v1#head-minilm" == canonical_spec(spec)
    remote, local = Index.load(out), loaded["head-minilm"]
    for query in QUERIES:
        got, expected = remote.search(query, k=10), local.search(query, k=10)
        assert [h.doc_id for h in got] == [h.doc_id for h in expected]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in expected], atol=1e-5)
    searched = run_cli("search", str(out), QUERIES[0], "-k", "3", "--json")
    assert searched.returncode == 0 and expected_first(local, QUERIES[0]) in searched.stdout


def expected_first(index: Index, query: str) -> str:
    return f'"{index.search(query, k=1)[0].doc_id}"'


def test_vectors_are_the_endpoints_normalised_and_empty_texts_are_zero(
    endpoint: str, loaded: dict[str, Index]
) -> None:
    encoder = load_encoder(f"{endpoint}#head-minilm")
    assert isinstance(encoder, RemoteEncoder) and encoder.dim == 384 and is_single_vector(encoder.spec)
    texts = ["", *QUERIES, "   "]
    vectors = encoder.encode_docs(texts)
    np.testing.assert_allclose(vectors[1:3], loaded["head-minilm"].encoder.encode_docs(QUERIES), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors[1:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[0].any() and not vectors[3].any()
    many = [f"query number {i}" for i in range(150)]  # three requests of at most 64 texts
    np.testing.assert_allclose(
        encoder.encode_queries(many)[140], encoder.encode_queries(many[140:141])[0], atol=1e-5
    )


def test_errors_name_the_endpoint_and_what_happened(
    endpoint: str, tmp_path: Path, cranfield_head: Path
) -> None:
    with pytest.raises(EncoderError, match=r"endpoint .*/v1 answered HTTP 400: .*indexes: head-minilm"):
        RemoteEncoder(f"{endpoint}#text-embedding-3-small")
    with pytest.raises(EncoderError, match="not an http\\(s\\) base URL"):
        canonical_spec("http://#model")
    down = f"http://127.0.0.1:{free_port()}"
    failed = run_cli(
        "index",
        str(cranfield_head / "corpus.jsonl"),
        "-o",
        str(tmp_path / "x"),
        "--encoder",
        down,
        check=False,
    )
    assert failed.returncode != 0 and not (tmp_path / "x").exists()
    assert f"embeddings endpoint {down}/v1 unreachable after 3 tries: connection refused" in failed.stderr
    assert "Traceback" not in failed.stderr
