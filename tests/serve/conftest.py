"""Serve fixtures: apps over the small real indexes of tests/conftest.py (`serve_indexes`, the
first 150 Cranfield documents, MiniLM and BM25), loaded once and shared by every app a test
builds, and a real uvicorn server on a loopback port."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tessera.rag.tokens import token_counter
from tessera.retrieval.index import Index
from tessera.serve import ServeSettings, create_app


class Recording:
    """A scripted generator that keeps the conversations it was given (no LLM in the test)."""

    name = "scripted"

    def __init__(self) -> None:
        self.tokens = token_counter()
        self.seen: list[list[dict]] = []

    def stream(self, messages, max_new_tokens=256):
        self.seen.append(list(messages))
        yield from ["The slipstream ", "raises lift [1]."]

    def generate(self, messages, max_new_tokens=256):
        self.seen.append(list(messages))
        return "The slipstream raises lift [1]."

    def generate_batch(self, chats, max_new_tokens=256):
        self.seen.extend(list(chat) for chat in chats)
        return ["propeller slipstream effect on wing lift" for _ in chats]


@pytest.fixture(scope="session")
def queries(data_dir: Path) -> list[str]:
    """Cranfield's real queries."""
    lines = (data_dir / "cranfield-beir" / "queries.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines]


@pytest.fixture
def make_app(serve_indexes: dict[str, Path], loaded: dict[str, Index]) -> Callable[..., FastAPI]:
    """An app over the shared indexes (not re-loaded); options are ServeSettings fields."""
    by_path = {path.resolve(): loaded[name] for name, path in serve_indexes.items()}

    def make(names: tuple[str, ...] = ("head-minilm", "head-bm25"), **options) -> FastAPI:
        settings = ServeSettings.from_specs([f"{n}={serve_indexes[n]}" for n in names], **options)
        return create_app(settings, load=lambda path: by_path[Path(path).resolve()])

    return make


def wait_ready(get: Callable[[str], object], timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if get("/health").status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError("the service never became ready")


@pytest.fixture
def client(make_app) -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        wait_ready(c.get)
        yield c


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """The app under a real uvicorn on 127.0.0.1 (a free port), in a thread; yields its URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        import httpx

        deadline = time.time() + 30
        while not server.started and time.time() < deadline:
            time.sleep(0.02)
        with httpx.Client(base_url=url) as probe:
            wait_ready(probe.get)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
