"""Reranking through a rerank endpoint: another Tessera service started with `--rerank minilm`
answers `POST /v1/rerank`, and `cross-encoder:URL` gives the scores and the reranked search that
`--rerank minilm` gives here; a service without a reranker and one that is down are errors
naming the endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import EncoderError
from tessera.retrieval.index import Index
from tessera.retrieval.rerank import load_reranker
from tessera.retrieval.rerank.base import hit_text
from tessera.retrieval.rerank.remote import RemoteReranker
from tessera.serve import ServeSettings, create_app
from tests.conftest import free_port, run_cli
from tests.serve.conftest import live_server

QUERY = "boundary layer flow"


def served(serve_indexes: dict[str, Path], loaded: dict[str, Index], rerank: str | None) -> Iterator[str]:
    settings = ServeSettings.from_specs([f"head-bm25={serve_indexes['head-bm25']}"], rerank=rerank)
    with live_server(create_app(settings, load=lambda path: loaded["head-bm25"])) as url:
        yield url


@pytest.fixture(scope="module")
def endpoint(serve_indexes: dict[str, Path], loaded: dict[str, Index]) -> Iterator[str]:
    yield from served(serve_indexes, loaded, "minilm")


def test_the_endpoints_scores_are_the_served_rerankers(endpoint: str, loaded: dict[str, Index]) -> None:
    texts = [hit_text(h) for h in loaded["head-bm25"].search(QUERY, k=40, with_text=True)]
    remote = load_reranker(f"cross-encoder:{endpoint}#minilm")
    assert isinstance(remote, RemoteReranker) and remote.spec == f"cross-encoder:{endpoint}#minilm"
    np.testing.assert_allclose(
        remote.score(QUERY, texts), load_reranker("minilm").score(QUERY, texts), atol=1e-5
    )
    assert remote.score(QUERY, []).shape == (0,)


def test_search_reranked_through_the_endpoint(endpoint: str, serve_indexes: dict[str, Path]) -> None:
    def ids(*rerank: str) -> list[str]:
        out = run_cli("search", str(serve_indexes["head-bm25"]), QUERY, "-k", "5", *rerank, "--json")
        return [hit["doc_id"] for hit in json.loads(out.stdout)]

    reranked = ids("--rerank", f"cross-encoder:{endpoint}#minilm")
    assert reranked == ids("--rerank", "minilm") != ids()


def test_errors_name_the_endpoint(serve_indexes: dict[str, Path], loaded: dict[str, Index]) -> None:
    for url in served(serve_indexes, loaded, None):
        with pytest.raises(EncoderError, match=r"rerank endpoint .*/v1 answered HTTP 400: .*no reranker"):
            RemoteReranker(url, "cross-encoder:" + url).score(QUERY, ["a text"])
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EncoderError, match=f"rerank endpoint {down}/v1 unreachable after 3 tries"):
        RemoteReranker(down, "cross-encoder:" + down).score(QUERY, ["a text"])
