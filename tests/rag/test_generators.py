"""Generators against a stub OpenAI-compatible server on 127.0.0.1, and the bundled SmolLM2 for real."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tessera.errors import GeneratorError, TesseraError
from tessera.rag.generators import LocalGenerator, OpenAIGenerator, open_generator
from tests.conftest import free_port

QUESTION = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
PIECES = ["The capital", " of France", " is Paris."]


class StubServer(ThreadingHTTPServer):
    """Answers chat completions like an OpenAI-compatible server; scripted failures first."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StubHandler)
        self.requests: list[dict[str, Any]] = []
        self.failures: list[int] = []  # HTTP statuses to answer before succeeding
        self.delay = 0.0
        self.ignore_stream = False  # answer one JSON body even when asked to stream
        self.raw: tuple[str, bytes] | None = None  # (content type, body) to answer as it is
        self.drip = False  # the body a byte at a time, 0.2 s apart
        self.redirect: str | None = None  # answer 302 to this location
        self.keepalive = False  # a stream of `: ping` comments, 0.1 s apart, for 3 s

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class StubHandler(BaseHTTPRequestHandler):
    server: StubServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        time.sleep(self.server.delay)
        try:
            if self.server.failures:
                self._send(self.server.failures.pop(0), "application/json", b'{"error": {"message": "boom"}}')
            elif self.server.redirect:
                self.send_response(302)
                self.send_header("Location", self.server.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.server.keepalive:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for _ in range(30):
                    self.wfile.write(b": ping\n\n")
                    self.wfile.flush()
                    time.sleep(0.1)
            elif self.server.raw:
                self._send(200, *self.server.raw)
            elif body["stream"] and not self.server.ignore_stream:
                events = [{"choices": [{"delta": {"role": "assistant"}}]}]
                events += [{"choices": [{"delta": {"content": piece}}]} for piece in PIECES]
                sse = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
                self._send(200, "text/event-stream", sse.encode())
            else:
                answer = {"choices": [{"message": {"role": "assistant", "content": "".join(PIECES)}}]}
                self._send(200, "application/json", json.dumps(answer).encode())
        except OSError:  # the client gave up (timeout test)
            pass

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        for start in range(0, len(payload), 1 if self.server.drip else len(payload) or 1):
            self.wfile.write(payload[start : start + (1 if self.server.drip else len(payload))])
            self.wfile.flush()
            time.sleep(0.2 if self.server.drip else 0)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_generate_sends_the_chat_and_returns_the_content(stub, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llm = open_generator(f"{stub.url}#tiny-model")
    assert llm.name == f"{stub.url}/v1#tiny-model"
    assert llm.generate(QUESTION, max_new_tokens=7) == "The capital of France is Paris."
    [request] = stub.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["body"] == {
        "model": "tiny-model",
        "messages": QUESTION,
        "max_tokens": 7,
        "temperature": 0,
        "stream": False,
    }


def test_stream_yields_the_server_sent_pieces_in_order(stub, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm = OpenAIGenerator(stub.url + "/v1/")
    assert list(llm.stream(QUESTION)) == PIECES
    [request] = stub.requests
    assert request["body"]["stream"] is True and request["body"]["model"] == "default"
    assert "Authorization" not in request["headers"]


def test_stream_from_a_server_that_ignores_stream_yields_the_whole_answer(stub):
    stub.ignore_stream = True
    assert list(OpenAIGenerator(stub.url).stream(QUESTION)) == ["".join(PIECES)]


def test_a_server_error_is_retried(stub):
    stub.failures = [500]
    llm = OpenAIGenerator(stub.url, backoff=0.01)
    assert llm.generate(QUESTION) == "The capital of France is Paris."
    assert len(stub.requests) == 2


def test_a_client_error_is_not_retried_and_shows_the_server_message(stub):
    stub.failures = [400]
    with pytest.raises(GeneratorError, match=r"answered HTTP 400: .*boom"):
        OpenAIGenerator(stub.url, backoff=0.01).generate(QUESTION)
    assert len(stub.requests) == 1


def test_a_server_that_is_down_fails_fast_naming_the_url():
    port = free_port()
    llm = OpenAIGenerator(f"http://127.0.0.1:{port}", timeout=2, retries=2, backoff=0.01)
    started = time.perf_counter()
    with pytest.raises(GeneratorError) as caught:
        llm.generate(QUESTION)
    assert time.perf_counter() - started < 5
    assert str(caught.value) == (
        f"LLM endpoint http://127.0.0.1:{port}/v1 unreachable after 3 tries: connection refused"
    )


def test_a_server_slower_than_the_timeout_fails(stub):
    stub.delay = 1.5
    llm = OpenAIGenerator(stub.url, timeout=0.3, retries=1, backoff=0.01)
    with pytest.raises(GeneratorError, match=r"failed after 2 tries: no answer within 0.3 s"):
        llm.generate(QUESTION)
    assert len(stub.requests) == 2


def test_specs():
    assert open_generator(None) is None
    assert open_generator("none") is None
    for bad in ("gpt4", "local:", "ftp://host/v1", "http://"):
        with pytest.raises(GeneratorError, match="field 'generator'"):
            open_generator(bad)
    with pytest.raises(TesseraError, match="no folder '/nonexistent/llm' here, and as a Hugging Face"):
        open_generator("local:/nonexistent/llm")  # it gave the hub's "Repo id must use alphanumeric chars"


def test_local_smollm2_answers_and_streams_the_same_text():
    llm = open_generator("local")
    assert isinstance(llm, LocalGenerator) and llm.name == "local:smollm2"
    answer = llm.generate(QUESTION, max_new_tokens=24)
    assert "Paris" in answer
    pieces = list(llm.stream(QUESTION, max_new_tokens=24))
    assert len(pieces) > 1 and "".join(pieces) == answer
    assert llm.tokens.count_messages(QUESTION) == llm.encode(QUESTION)["input_ids"].shape[1]


def _events(*events: object, done: bool = True) -> bytes:
    lines = [f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n" for event in events]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


def test_content_in_parts_or_of_the_wrong_type(stub):
    """A list of parts (newer APIs) is text; a number was written to stdout (TypeError) or
    returned as the answer (`answer == 5`)."""
    parts = {"choices": [{"delta": {"content": [{"type": "text", "text": "Paris"}, {"type": "image"}]}}]}
    stub.raw = ("text/event-stream", _events(parts))
    assert list(OpenAIGenerator(stub.url).stream(QUESTION)) == ["Paris"]
    stub.raw = ("text/event-stream", _events({"choices": [{"delta": {"content": 5}}]}))
    with pytest.raises(GeneratorError, match="sent an unexpected event"):
        list(OpenAIGenerator(stub.url).stream(QUESTION))
    stub.raw = ("application/json", json.dumps({"choices": [{"message": {"content": 5}}]}).encode())
    with pytest.raises(GeneratorError, match="answered an unexpected body"):
        OpenAIGenerator(stub.url).generate(QUESTION)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (("text/event-stream", b'data: {"caf\xe9": 1}\n\n'), "sent an event that is not UTF-8"),
        (("text/event-stream", _events({"id": "no choices"})), "sent an unexpected event"),
        (
            ("text/event-stream", _events({"choices": [{"delta": {"content": "Par"}}]}, done=False)),
            "no `data: \\[DONE\\]`",
        ),
        (("text/html", b"<html>proxy login</html>"), "answered an unexpected body: <html>proxy login"),
    ],
)
def test_a_stream_that_is_broken_is_an_error_not_a_blank_or_short_answer(stub, raw, says):
    stub.raw = raw
    with pytest.raises(GeneratorError, match=says):
        list(OpenAIGenerator(stub.url, retries=0).stream(QUESTION))


def test_a_completion_sent_as_plain_text_is_read_when_streaming(stub):
    answer = {"choices": [{"message": {"role": "assistant", "content": "Paris."}}]}
    stub.raw = ("text/plain", json.dumps(answer).encode())
    assert list(OpenAIGenerator(stub.url).stream(QUESTION)) == ["Paris."]


def test_a_server_trickling_bytes_is_given_up_after_the_timeout(stub):
    """Each byte came within the socket's timeout, so the call waited forever."""
    answer = {"choices": [{"message": {"role": "assistant", "content": "x" * 40}}]}
    stub.raw, stub.drip = ("application/json", json.dumps(answer).encode()), True
    started = time.perf_counter()
    with pytest.raises(GeneratorError, match="stopped answering: no whole answer within 1 s"):
        OpenAIGenerator(stub.url, timeout=1, retries=0).generate(QUESTION)
    assert time.perf_counter() - started < 4


def test_a_redirect_is_named_not_followed_as_a_get(stub):
    stub.redirect = "https://elsewhere.example/v1/chat/completions"
    with pytest.raises(
        GeneratorError, match="answered HTTP 302, a redirect to https://elsewhere.example/v1/chat"
    ):
        OpenAIGenerator(stub.url, retries=0).generate(QUESTION)
    assert len(stub.requests) == 1


def test_keep_alive_comments_are_no_progress(stub):
    """The deadline was reset by every line, comments too: a server pinging forever held the CLI."""
    stub.keepalive = True
    started = time.perf_counter()
    with pytest.raises(GeneratorError, match="stopped answering: no event within 1 s"):
        list(OpenAIGenerator(stub.url, timeout=1, retries=0).stream(QUESTION))
    assert time.perf_counter() - started < 2.5


def test_event_lines_end_in_cr_lf_or_both_and_a_byte_order_mark_is_dropped(stub):
    pieces = [{"choices": [{"delta": {"content": piece}}]} for piece in PIECES]
    sse = "".join(f"data: {json.dumps(event)}\r\r" for event in pieces) + "data: [DONE]\r\r"
    stub.raw = ("text/event-stream", b"\xef\xbb\xbf" + sse.encode())
    assert list(OpenAIGenerator(stub.url).stream(QUESTION)) == PIECES
