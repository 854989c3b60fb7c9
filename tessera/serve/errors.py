"""Every failure as `{"error": "..."}` with a status a client can act on, never a traceback.

400 bad parameter (TesseraError from the shared validation, pydantic's), 401 no or wrong API key,
404 unknown document or route, 413 oversized request, 502 the generator's LLM endpoint failed
(GeneratorError: down, timing out, answering errors), 503 loading or overloaded, 500 (logged
here) for bugs. The OpenAI-compatible routes answer in OpenAI's shape instead,
`{"error": {"message", "type", "param", "code"}}`, which is where OpenAI clients look for the
message (they show only "Error code: 400" otherwise); as OpenAI's, `param` names the field at
fault and `code` is a string or null."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.errors import GeneratorError, TesseraError
from tessera.serve.batching import Overloaded

log = logging.getLogger("tessera.serve")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


OPENAI_ROUTES = ("/v1/chat/completions", "/v1/embeddings", "/v1/models")
OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
OPENAI_CODES = {
    401: "invalid_api_key",
    404: "not_found",
    413: "request_too_large",
    429: "rate_limit_exceeded",
}
_FIELD = re.compile(r"field '([^']+)'")  # how every message about a field begins


def error(status: int, message: str, path: str = "", headers: dict[str, str] | None = None) -> JSONResponse:
    """The error response for a request to `path` (`headers`: a 405's Allow, a 401's WWW-Authenticate)."""
    if not path.startswith(OPENAI_ROUTES):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    kind = OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    field = _FIELD.match(message)
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": kind,
                "param": field.group(1) if field else None,
                "code": OPENAI_CODES.get(status),
            }
        },
        status_code=status,
        headers=headers,
    )


# What pydantic puts in an error's location for the member of a union that failed (`str`,
# `list[str]`): a type, not a field, so left out of the field's name.
_UNION_MEMBERS = {"str", "int", "float", "bool", "bytes", "none", "list", "dict"}


def _validation_message(exc: RequestValidationError) -> str:
    """pydantic's errors as `field 'documents[0].id': ...`, one part per field: a union's members
    are read as one (`field 'input': Input should be a valid string or a valid list`)."""
    parts: dict[str, list[str]] = {}
    for problem in exc.errors():
        loc = list(problem.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path"):  # where it was: only the first element says
            loc = loc[1:]
        message = problem.get("msg", "invalid")
        if problem.get("type") == "json_invalid":  # its location is a character offset, not a field
            reason = (problem.get("ctx") or {}).get("error", "")
            where = f"malformed JSON at character {loc[0] if loc else 0}" + (f": {reason}" if reason else "")
            parts.setdefault(where, [])
            continue
        loc = [p for p in loc if isinstance(p, int) or not (p in _UNION_MEMBERS or "[" in p)]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")  # a[0].b
        said = parts.setdefault(f"field '{where}'" if where else "", [])
        if message not in said:
            said.append(message)
    return "; ".join(_joined(where, said) for where, said in parts.items()) or "invalid request"


def _joined(where: str, messages: list[str]) -> str:
    """`where: first or second`, sharing pydantic's 'Input should be ' once."""
    lead = "Input should be "
    if len(messages) > 1 and all(m.startswith(lead) for m in messages):
        messages = [messages[0], *(m[len(lead) :] for m in messages[1:])]
    said = " or ".join(messages)
    return f"{where}: {said}" if where and said else where or said


def _allowed(request: Request) -> str:
    """Every method some route of the request's path takes (`GET, POST` for /v1/search)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        pattern, taken = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if pattern is not None and taken and pattern.match(request.url.path):
            methods |= taken
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.message, request.url.path)

    async def tessera_error(request: Request, exc: TesseraError) -> JSONResponse:
        upstream = isinstance(exc, GeneratorError)  # the service's own LLM endpoint failed, not the request
        return error(502 if upstream else 400, str(exc), request.url.path)

    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, _validation_message(exc), request.url.path)

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:  # starlette's Allow names the first route of the path only
            headers = {**(headers or {}), "Allow": _allowed(request)}
        return error(exc.status_code, str(exc.detail), request.url.path, headers)

    async def overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return error(503, f"overloaded: {exc}; retry shortly", request.url.path)

    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return error(500, f"internal error ({type(exc).__name__}); see the server log", request.url.path)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(TesseraError, tessera_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Overloaded, overloaded)
    app.add_exception_handler(Exception, bug)


class BodyTooLarge(HTTPException):
    """Raised from inside the body stream; an HTTPException so FastAPI's body parsing passes it on
    (it turns any other exception there into a 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class BodyLimit:
    """ASGI middleware: refuse a body over `limit` bytes with 413, by its Content-Length before
    reading anything, or while it streams in when there is none."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await error(413, f"request body over {self.limit} bytes", scope["path"])(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge(f"request body over {self.limit} bytes")
            return message

        await self.app(scope, counted, send)
