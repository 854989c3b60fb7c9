"""API keys: every /v1/ route needs `Authorization: Bearer KEY` when the service has keys, the page
and /health stay open (naming no index to a stranger), the settings carry digests only, and the
real OpenAI client works against the service with its `api_key`."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tessera.errors import TesseraError, TesseraWarning
from tessera.retrieval.index import Index
from tessera.serve import ServeSettings
from tessera.serve.auth import check_origin, digest, is_loopback, key_digests, read_key_file
from tests.serve.conftest import live_server, wait_ready

KEY = "k7Qx-2mTz9_vR4pLw8sNc1"
OTHER = "rotated-key-000000000000"
QUERY = "boundary layer flow"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def guarded(make_app) -> Iterator[TestClient]:
    with TestClient(make_app(api_key_digests=[digest(KEY), digest(OTHER)])) as client:
        wait_ready(client.get)
        yield client


def test_a_v1_route_needs_a_valid_key(guarded: TestClient, loaded: dict[str, Index]) -> None:
    missing = guarded.get("/v1/search", params={"q": QUERY})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer KEY" in missing.json()["error"]
    for headers in (bearer("wrong-key-but-long-enough"), {"Authorization": f"Basic {KEY}"}, bearer("")):
        refused = guarded.get("/v1/search", params={"q": QUERY}, headers=headers)
        assert refused.status_code == 401, headers
    assert guarded.get("/v1/search", params={"q": QUERY}, headers=bearer("x" * 30)).json() == {
        "error": "invalid API key"
    }
    expected = [h.doc_id for h in loaded["head-minilm"].search(QUERY, k=5)]
    for key in (KEY, OTHER):  # either key of a rotation
        got = guarded.get("/v1/search", params={"q": QUERY, "k": 5}, headers=bearer(key))
        assert got.status_code == 200 and [h["doc_id"] for h in got.json()["results"][0]["hits"]] == expected
    assert guarded.get("/v1/models").json() == {  # OpenAI's routes answer in OpenAI's error shape
        "error": {
            "message": "this server needs an API key: send 'Authorization: Bearer KEY'",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",  # OpenAI's codes are strings (it had the status, 401)
        }
    }
    lower = guarded.get("/v1/indexes", headers={"authorization": f"bearer {KEY}"})
    assert lower.status_code == 200  # header name and scheme are case-insensitive


def test_the_key_is_checked_before_the_body(guarded: TestClient) -> None:
    """A stranger's oversized or malformed request is a 401, not a 413 or 400: nothing is read."""
    assert guarded.post("/v1/search", content=b"x" * (2 << 20)).status_code == 401
    assert guarded.post("/v1/search", content=b"{not json").status_code == 401
    assert guarded.post("/v1/indexes/head-minilm/delete", json={"ids": ["1"]}).status_code == 401
    assert guarded.post("/v1/nowhere", headers=bearer(KEY)).status_code == 404


def test_the_page_and_health_stay_open(guarded: TestClient) -> None:
    assert guarded.get("/").status_code == 200 and guarded.get("/static/app.js").status_code == 200
    assert guarded.get("/health").json() == {"status": "ok", "auth": True}  # no index named
    known = guarded.get("/health", headers=bearer(KEY)).json()
    assert known["auth"] is True and [i["name"] for i in known["indexes"]] == ["head-minilm", "head-bm25"]


def test_without_keys_everything_is_open(client: TestClient) -> None:
    assert client.get("/v1/search", params={"q": QUERY}).status_code == 200
    health = client.get("/health").json()
    assert health["auth"] is False and len(health["indexes"]) == 2


def test_key_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# rotation: the new key first\n{KEY}\n\n  {OTHER}  \n")
    keys.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # owner-only: no warning
        assert read_key_file(keys) == [KEY, OTHER]
    keys.chmod(0o644)
    with pytest.warns(TesseraWarning, match="other users may read these keys \\(mode 644\\): chmod 600"):
        read_key_file(keys)
    keys.chmod(0o600)
    both = key_digests(keys, "from-the-environment-1")
    assert set(both) == {digest(KEY), digest(OTHER), digest("from-the-environment-1")}
    assert key_digests(None, None) == []
    settings = ServeSettings(api_key_digests=both)
    monkeypatch.setenv("TESSERA_SERVE_SETTINGS", "{}")  # restored after the test
    settings.to_env()
    assert KEY not in json.dumps(ServeSettings.from_env().__dict__)  # workers get digests, never keys


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("# only a comment\n\n", "holds no key", None),
        ("short\n", "at least 16 characters, this one has 5", 1),
        (f"{KEY}\nhas a space inside it ok\n", "cannot contain whitespace", 2),
    ],
)
def test_a_bad_key_file_names_its_line(tmp_path: Path, text: str, message: str, line: int | None) -> None:
    keys = tmp_path / "keys"
    keys.write_text(text)
    with pytest.raises(TesseraError, match=message) as caught:
        read_key_file(keys)
    assert caught.value.file == str(keys) and caught.value.line == line
    with pytest.raises(TesseraError, match="cannot read the API key file"):
        read_key_file(tmp_path / "absent")
    with pytest.raises(TesseraError, match=r"\$TESSERA_API_KEY: an API key needs at least 16"):
        key_digests(None, "short")


def test_loopback_hosts() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.5", "example.org"]))


def test_the_openai_client_authenticates_with_its_api_key(make_app, loaded: dict[str, Index]) -> None:
    """The client users already have: `api_key` is the service's key; a wrong one raises the
    client's AuthenticationError; the service's own errors reach it as they are."""
    openai = pytest.importorskip("openai")
    with live_server(make_app(api_key_digests=[digest(KEY)])) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        assert [m.id for m in client.models.list()] == ["head-minilm", "head-bm25"]
        got = client.embeddings.create(model="head-minilm", input=[QUERY])
        expected = loaded["head-minilm"].encoder.encode_docs([QUERY])
        np.testing.assert_allclose(np.array([got.data[0].embedding]), expected, atol=1e-5)
        with pytest.raises(openai.BadRequestError, match="--generator local"):
            client.chat.completions.create(model="head-minilm", messages=[{"role": "user", "content": "hi"}])
        stranger = openai.OpenAI(base_url=f"{url}/v1", api_key="not-the-key-0000000", max_retries=0)
        with pytest.raises(openai.AuthenticationError, match="invalid API key"):
            stranger.models.list()


def test_cors_lets_named_origins_call_from_a_browser(make_app) -> None:
    """A named origin's preflight is answered without a key (browsers send none there), and its
    responses, a 401 included, carry the header that lets its page read them; another origin's
    preflight is refused; with no origins named, no CORS header at all."""
    app = make_app(api_key_digests=[digest(KEY)], cors_origins=["https://app.example.org"])
    preflight = {
        "Origin": "https://app.example.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    with TestClient(app) as client:
        wait_ready(client.get)
        allowed = client.options("/v1/search", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.org"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        other = client.options("/v1/search", headers={**preflight, "Origin": "https://evil.example"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        origin = {"Origin": "https://app.example.org"}
        refused = client.get("/v1/search", params={"q": QUERY}, headers=origin)
        assert (
            refused.status_code == 401 and refused.headers["access-control-allow-origin"] == origin["Origin"]
        )
        served = client.get("/v1/search", params={"q": QUERY}, headers={**origin, **bearer(KEY)})
        assert served.status_code == 200 and served.headers["access-control-allow-origin"] == origin["Origin"]
    with TestClient(make_app()) as client:
        wait_ready(client.get)
        plain = client.get("/v1/search", params={"q": QUERY}, headers={"Origin": "https://app.example.org"})
        assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


@pytest.mark.parametrize(
    "origin", ["https://app.example.org/", "app.example.org", "ftp://x.org", "https://a.org/p"]
)
def test_a_bad_cors_origin_is_refused(origin: str) -> None:
    with pytest.raises(TesseraError, match="is not an origin"):
        check_origin(origin)
    assert check_origin("http://localhost:3000") == "http://localhost:3000" and check_origin("*") == "*"
