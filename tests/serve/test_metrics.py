"""`GET /metrics`: Prometheus' text format, parsed with prometheus_client's own parser. Requests
are counted by route template and status, queries and micro-batches per index, documents per
index; with `--workers 2` every scrape adds up both processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tessera.retrieval.index import Index
from tessera.serve.auth import digest
from tests.conftest import free_port, run_cli
from tests.serve.conftest import wait_ready


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_queries_and_documents_are_counted(client: TestClient, loaded: dict[str, Index]) -> None:
    before = samples(client.get("/metrics").text)
    for q in ("boundary layer", "heat transfer"):
        assert client.get("/v1/search", params={"q": q, "index": "head-minilm"}).status_code == 200
    body = {"queries": ["wing flutter", "shock waves", "jet noise"], "k": 5, "index": "head-minilm"}
    assert client.post("/v1/search", json=body).status_code == 200
    assert client.get("/v1/doc/no-such-doc").status_code == 404
    assert client.get("/nowhere").status_code == 404
    assert client.request("BREW", "/v1/search").status_code == 405  # an invented method: one label
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "tessera_http_requests_total"
    assert grew(requests, method="GET", route="/v1/search", status="200") == 2
    assert grew(requests, method="POST", route="/v1/search", status="200") == 1
    assert grew(requests, method="GET", route="/v1/doc/{doc_id:path}", status="404") == 1  # no raw ids
    assert grew(requests, method="GET", route="unmatched", status="404") == 1
    assert grew(requests, method="other", route="/v1/search", status="405") == 1
    assert grew("tessera_http_request_duration_seconds_count", route="/v1/search") == 4  # 405 too
    assert grew("tessera_search_queries_total", index="head-minilm") == 5
    batches = grew("tessera_search_batch_queries_count", index="head-minilm")
    assert 1 <= batches <= 3 and grew("tessera_search_batch_queries_sum", index="head-minilm") == 5
    for name, index in loaded.items():
        assert value(after, "tessera_index_documents", index=name) == len(index)


def test_metrics_need_a_key_when_the_service_has_keys(make_app) -> None:
    key = "metrics-scraper-key-0001"
    with TestClient(make_app(api_key_digests=[digest(key)])) as client:
        wait_ready(client.get)
        assert client.get("/metrics").status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert scraped.status_code == 200 and "tessera_http_requests_total" in scraped.text


def test_two_workers_are_summed_in_every_scrape(serve_indexes: dict[str, Path], tmp_path: Path) -> None:
    """A real `tessera serve --workers 2`: both processes write their samples to the folder, and
    whichever worker answers a scrape reports the requests both served."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    command = [sys.executable, "-m", "tessera", "serve", str(serve_indexes["head-bm25"]), "--workers", "2"]
    server = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while len({p.name.split("_")[-1] for p in folder.glob("gauge_*.db")}) < 2:  # both loaded
            assert server.poll() is None and time.time() < deadline, server.stderr.read().decode()
            time.sleep(0.2)
        for i in range(20):
            with httpx.Client(base_url=url) as fresh:  # a new connection each: either worker takes it
                response = fresh.get("/v1/search", params={"q": f"wing {i}", "k": 3})
                assert response.status_code == 200, response.text
        for _ in range(6):
            with httpx.Client(base_url=url) as fresh:
                scraped = samples(fresh.get("/metrics").text)
            requests = {"method": "GET", "route": "/v1/search", "status": "200"}
            assert value(scraped, "tessera_http_requests_total", **requests) == 20
            assert value(scraped, "tessera_search_queries_total", index="head-bm25") == 20
            assert value(scraped, "tessera_index_documents", index="head-bm25") == 150
    finally:
        server.terminate()
        server.wait(timeout=30)
    if server.returncode not in (0, -15):
        pytest.fail(server.stderr.read().decode())


def test_a_metrics_folder_that_is_not_there_is_refused(
    serve_indexes: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "absent"))
    result = run_cli("serve", str(serve_indexes["head-bm25"]), "--workers", "2", check=False)
    assert result.returncode == 1 and "$PROMETHEUS_MULTIPROC_DIR names no folder" in result.stderr
