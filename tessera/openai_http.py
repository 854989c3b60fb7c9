"""A client for OpenAI-compatible HTTP APIs (llama.cpp server, vLLM, Ollama, TEI, OpenAI): the
base URL rule, JSON posts with retries, and errors that say which endpoint failed and how. The
RAG generator (`rag/generators.py`) and the remote encoder (`models/remote.py`) both use it.

The standard library's urllib, no client package: one request at a time, which both callers
make (the servers batch concurrent requests themselves)."""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from tessera.errors import TesseraError

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})  # busy, overloaded or restarting
CHUNK = 1 << 16

# the model a client asks for when its spec names none (single-model servers ignore it)
DEFAULT_MODEL = "default"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the error it is here: urllib follows 301/302 with a GET, which an
    API then refuses with a 405 that names neither the redirect nor where it pointed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def is_url(spec: str) -> bool:
    return spec.lower().startswith(("http://", "https://"))


def normalize_base_url(url: str, field: str = "generator", error: type[TesseraError] = TesseraError) -> str:
    """The API root of an OpenAI-compatible server: `/v1` is appended unless the path ends in it.

    `http://host:8080`, `http://host:8080/` and `http://host:8080/v1/` all give
    `http://host:8080/v1`; `http://host/proxy` gives `http://host/proxy/v1`.
    """
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - a port that is not a number raises here, not at the first request
    except ValueError as exc:
        raise error(f"not an http(s) base URL: '{url}' ({exc})", field=field) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or parts.query:
        raise error(f"not an http(s) base URL: '{url}'", field=field)
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return f"{parts.scheme.lower()}://{parts.netloc}{path}"


class OpenAIClient:
    """POSTs JSON to `{base_url}{path}`. `Authorization: Bearer KEY` is sent with a key (default
    `$OPENAI_API_KEY`). Connection errors, timeouts and HTTP 408/429/500/502/503/504 are retried
    `retries` times, waiting `backoff`, 2x`backoff`, ... seconds; other HTTP errors are not.
    Failures raise `error` (a TesseraError class) as "`label` URL what happened"."""

    def __init__(
        self,
        base_url: str,
        label: str,
        error: type[TesseraError] = TesseraError,
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 0.5,
        api_key: str | None = None,
    ) -> None:
        self.base_url, self.label, self.error_type = base_url, label, error
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        """The open HTTP response, after retrying what a busy or restarting server may recover from."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            f"{self.base_url}{path}", json.dumps(payload).encode(), headers, method="POST"
        )
        tries = self.retries + 1
        for attempt in range(tries):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return _OPENER.open(request, timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                with exc:
                    cause = f"HTTP {exc.code}: {snippet(exc.read())}"
                if 300 <= exc.code < 400:
                    where = exc.headers.get("Location") or "nowhere said"
                    why = f"answered HTTP {exc.code}, a redirect to {where}: give that URL"
                    raise self.error(why) from None
                if exc.code not in RETRY_STATUS:
                    raise self.error(f"answered {cause}") from None
                failure = f"failed after {tries} tries: {cause}"
            except (urllib.error.URLError, OSError) as exc:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                how = "failed" if isinstance(reason, TimeoutError) else "unreachable"  # it did connect
                failure = f"{how} after {tries} tries: {self._cause(exc)}"
            except http.client.HTTPException as exc:  # an answer that is not HTTP (BadStatusLine)
                failure = f"answered no HTTP after {tries} tries: {type(exc).__name__} {snippet(str(exc))}"
        raise self.error(failure)

    def post_json(self, path: str, payload: dict[str, Any]) -> Any:
        """The decoded JSON body of a POST."""
        with self.post(path, payload) as response:
            body = self.body(response)
        try:
            return json.loads(body)
        except ValueError:
            raise self.error(f"answered a body that is not JSON: {snippet(body)}") from None

    def body(self, response: Any) -> bytes:
        """A response's whole body, within `timeout` of its headers: the socket's timeout bounds
        each read only, so a server trickling a byte at a time held a caller forever."""
        parts, deadline = [], time.monotonic() + self.timeout
        while chunk := self.read(lambda: response.read1(CHUNK)):
            parts.append(chunk)
            if time.monotonic() > deadline:
                raise self.error(f"stopped answering: no whole answer within {self.timeout:g} s")
        if getattr(response, "length", None):  # read1 ends quietly where the server closed early
            raise self.error("stopped answering: IncompleteRead")
        return b"".join(parts)

    def event_lines(self, response: Any) -> Iterator[bytes]:
        """A server-sent event stream's lines as they come (ended by CR, LF or CRLF, as the
        format allows; a leading byte-order mark dropped), each `data:` or `event:` line within
        `timeout` of the one before: keep-alive comments (`: ping`) are no progress."""
        pending, deadline, first = b"", time.monotonic() + self.timeout, True
        while chunk := self.read(lambda: response.read1(CHUNK)):
            *complete, pending = re.split(rb"\r\n|\r|\n", pending + chunk)
            for line in complete:
                if first:
                    line, first = line.removeprefix(b"\xef\xbb\xbf"), False
                if line.strip() and not line.startswith(b":"):
                    deadline = time.monotonic() + self.timeout
                yield line
            if time.monotonic() > deadline:
                raise self.error(f"stopped answering: no event within {self.timeout:g} s")
        if pending:
            yield pending.removeprefix(b"\xef\xbb\xbf") if first else pending

    def read(self, read: Callable[[], bytes]) -> bytes:
        """One read of an open response; a server that stalls or drops mid-answer is not retried."""
        try:
            return read()
        except OSError as exc:
            raise self.error(f"stopped answering: {self._cause(exc)}") from None
        except http.client.HTTPException as exc:  # IncompleteRead: the connection closed mid-body
            raise self.error(f"stopped answering: {type(exc).__name__}") from None

    def _cause(self, exc: OSError) -> str:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            return f"no answer within {self.timeout:g} s"
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        return str(reason) or type(reason).__name__

    def error(self, what: str) -> TesseraError:
        return self.error_type(f"{self.label} {self.base_url} {what}")


def snippet(body: bytes | str, limit: int = 300) -> str:
    """The start of a server's answer, on one line, for an error message."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
