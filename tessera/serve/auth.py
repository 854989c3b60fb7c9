"""Who may call `tessera serve`: API keys, and the origins whose pages may call it (CORS).

With keys, every `/v1/` route and `/metrics` need `Authorization: Bearer KEY`: Bearer because that is what
OpenAI clients send with their `api_key`, so a chat or embeddings client needs no adapter. The
settings hold SHA-256 digests of the keys, never the keys: settings reach `--workers` processes
through the environment. A presented key is hashed and compared with every digest in constant
time. The page, its static files, `/docs` and `/health` stay open (a load balancer's probe has no
key); `/health` then names no index to a client without a key."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import warnings
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.errors import TesseraError, TesseraWarning
from tessera.serve.errors import error

ENV_KEY = "TESSERA_API_KEY"  # read by config.api_key
MIN_KEY_CHARS = 16
PROTECTED = ("/v1/", "/metrics")
HOW = "Authorization: Bearer KEY"
MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _checked(key: str, file: str | Path, line: int | None) -> str:
    if any(c.isspace() for c in key):
        raise TesseraError("an API key cannot contain whitespace", file=file, line=line)
    if len(key) < MIN_KEY_CHARS:
        raise TesseraError(
            f"an API key needs at least {MIN_KEY_CHARS} characters, this one has {len(key)} "
            f"(make one with: {MAKE_ONE})",
            file=file,
            line=line,
        )
    return key


def read_key_file(path: Path) -> list[str]:
    """One key per line (several: rotate keys without a gap); blank lines and `#` comments skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TesseraError(f"cannot read the API key file: {exc}", file=path, field="api-key-file") from None
    keys = [
        _checked(text.strip(), path, number)
        for number, text in enumerate(lines, 1)
        if text.strip() and not text.strip().startswith("#")
    ]
    if not keys:
        raise TesseraError("the API key file holds no key", file=path, field="api-key-file")
    if path.stat().st_mode & 0o077:
        warnings.warn(
            TesseraWarning(
                f"other users may read these keys (mode {path.stat().st_mode & 0o777:o}): chmod 600 {path}",
                file=path,
            ),
            stacklevel=2,
        )
    return keys


def key_digests(key_file: Path | None, env_key: str | None) -> list[str]:
    """The digests of the keys in `key_file` and of `env_key` ($TESSERA_API_KEY); none: no
    authentication."""
    keys = read_key_file(key_file) if key_file is not None else []
    if env_key:
        keys.append(_checked(env_key.strip(), f"${ENV_KEY}", None))
    return sorted({digest(key) for key in keys})


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the service on this machine (a host name other than
    localhost counts as exposed: it may resolve to anything)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_origin(origin: str) -> str:
    """A CORS origin as browsers send it: `*`, or scheme://host[:port] with no path."""
    parts = urlsplit(origin)
    if origin == "*" or (
        parts.scheme in ("http", "https") and parts.netloc and origin == f"{parts.scheme}://{parts.netloc}"
    ):
        return origin
    raise TesseraError(
        f"'{origin}' is not an origin: give scheme://host[:port] with no path or trailing slash "
        "(https://app.example.org), or *",
        field="cors-origin",
    )


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def accepts(digests: list[str], headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """No digests: everyone; otherwise a presented key whose digest is one of them."""
    if not digests:
        return True
    key = presented_key(headers)
    if key is None:
        return False
    mine = digest(key)
    return any([hmac.compare_digest(mine, d) for d in digests])  # a list: every digest compared


class ApiKeyGuard:
    """ASGI middleware: a `/v1/` or `/metrics` request without a valid key gets 401 and a JSON
    error, before any route, body parsing or index work."""

    def __init__(self, app: ASGIApp, digests: list[str]) -> None:
        self.app = app
        self.digests = digests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.digests
            and scope["path"].startswith(PROTECTED)
            and not accepts(self.digests, scope["headers"])
        ):
            given = presented_key(scope["headers"]) is not None
            message = "invalid API key" if given else f"this server needs an API key: send '{HOW}'"
            response = error(401, message, scope["path"])
            response.headers["www-authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
