"""The OpenAI-compatible client that the RAG generator, the remote encoder and the remote reranker
share: the base-URL rule, errors of the caller's class naming the endpoint, JSON bodies read."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tessera.errors import EncoderError
from tessera.openai_http import OpenAIClient, normalize_base_url


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://localhost:8080", "http://localhost:8080/v1"),
        ("http://localhost:8080/", "http://localhost:8080/v1"),
        ("http://localhost:8080/v1", "http://localhost:8080/v1"),
        ("HTTPS://api.example.com/v1/", "https://api.example.com/v1"),
        ("http://gateway/ollama", "http://gateway/ollama/v1"),
    ],
)
def test_base_url_gets_v1_unless_it_ends_in_it(url: str, base: str) -> None:
    assert normalize_base_url(url) == base


def test_a_bad_base_url_is_the_callers_error_naming_its_field() -> None:
    for bad in ("ftp://host/v1", "http://", "http://host/v1?x=1", "http://[::1", "http://127.0.0.1:abc"):
        with pytest.raises(EncoderError) as caught:
            normalize_base_url(bad, "encoder", EncoderError)
        assert caught.value.field == "encoder"


class Answers(BaseHTTPRequestHandler):
    """`/json` answers a JSON object, `/text` a body that is not JSON, `/short` fewer bytes than
    it announced, `/embeddings` vectors whose first number is the `NUMBER` of the base path
    (`/v1/nan/embeddings`: NaN, which JSON cannot carry but Python's reader takes)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"ok": true}' if self.path.endswith("/json") else b"<html>proxy error</html>"
        if self.path.endswith("/embeddings"):
            first = self.path.split("/")[1]
            body = f'{{"data": [{{"index": 0, "embedding": [{first}, 1.0, 2.0]}}]}}'.encode()
        announced = len(body) + (100 if self.path.endswith("/short") else 0)
        self.send_response(200)
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=http.serve_forever, args=(0.05,), daemon=True).start()
    yield normalize_base_url(f"http://127.0.0.1:{http.server_address[1]}")
    http.shutdown()


def test_json_bodies_and_a_body_that_is_not_json(server: str) -> None:
    client = OpenAIClient(server, "test endpoint", EncoderError, timeout=5, retries=0)
    assert client.post_json("/json", {"x": 1}) == {"ok": True}
    with pytest.raises(
        EncoderError, match=r"test endpoint http://127.0.0.1:\d+/v1 answered a body that is not JSON"
    ):
        client.post_json("/text", {"x": 1})


def test_a_body_cut_short_is_an_error_naming_the_endpoint(server: str) -> None:
    client = OpenAIClient(server, "test endpoint", EncoderError, timeout=5, retries=0)
    with pytest.raises(EncoderError, match=r"test endpoint .* stopped answering: IncompleteRead"):
        client.post_json("/short", {"x": 1})


def test_an_endpoint_that_answers_no_http_is_an_error_naming_it() -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def garbage() -> None:
        for _ in range(2):
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.sendall(b"GARBAGE\r\n\r\n")
            connection.close()

    threading.Thread(target=garbage, daemon=True).start()
    client = OpenAIClient(
        f"http://127.0.0.1:{listener.getsockname()[1]}/v1", "test endpoint", EncoderError, 5, 1, 0
    )
    with pytest.raises(EncoderError, match=r"answered no HTTP after 2 tries: BadStatusLine"):
        client.post_json("/json", {"x": 1})
    listener.close()


@pytest.mark.parametrize(
    ("first", "says"),
    [
        ("NaN", "NaN, null or infinite"),
        ("null", "NaN, null or infinite"),
        ("1e400", "NaN, null or infinite"),  # beyond float32
        ("1" + "0" * 400, "unexpected body"),  # beyond any float
    ],
)
def test_remote_vectors_an_index_could_not_use_are_refused(server: str, first: str, says: str) -> None:
    """NaN vectors made an index that found nothing, and `tessera info --verify` passed it."""
    from tessera.models.remote import RemoteEncoder

    base = server.removesuffix("/v1")
    with pytest.raises(EncoderError, match=says):
        RemoteEncoder(f"{base}/{first}#m")
