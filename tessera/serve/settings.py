"""What a service instance serves and the caps it enforces, as one JSON-able record.

JSON-able because `--workers N` starts N processes, each building its app from the environment."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tessera.data.document import id_problem
from tessera.errors import TesseraError

ENV = "TESSERA_SERVE_SETTINGS"


@dataclass
class ServeSettings:
    indexes: dict[str, str] = field(default_factory=dict)  # name -> index directory, in order
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8000
    max_k: int = 1000
    max_queries: int = 256  # queries in one POST /v1/search (more: 413)
    max_body_bytes: int = 1 << 20  # request body (more: 413)
    batch_window_ms: float = 2.0  # how long a batch waits for more queries after its first
    max_batch: int = 64  # queries per micro-batch; 1 turns micro-batching off
    sub_batch: int = 8  # queries per encoder call inside a micro-batch, sorted by length
    queue_limit: int = 1024  # requests waiting per index before 503
    generator: str = "none"  # RAG generator spec (tessera.rag.generators)
    rerank: str | None = None  # reranker spec (tessera.retrieval.rerank) requests may ask for
    follow_up: str = (
        "last"  # what a chat's follow-up searches when the request names none (rag/conversation.py)
    )
    mmap: bool = False  # map faiss index files (Index.load): workers share one copy in the page cache
    # How often to look for an index updated on disk (add, delete, sync) and reopen it; 0: never.
    reload_seconds: float = 5.0
    # POST /v1/indexes/{name}/documents and /delete (serve/documents.py)
    writable: bool = False
    # SHA-256 digests of the API keys every /v1/ request must bear (serve/auth.py); none: open
    api_key_digests: list[str] = field(default_factory=list)
    # Origins whose pages may call the API from a browser (CORS); none: same origin only
    cors_origins: list[str] = field(default_factory=list)

    @classmethod
    def from_specs(cls, specs: list[str], **options) -> ServeSettings:
        """`DIR` (named by its folder) or `NAME=DIR`; names must be unique."""
        indexes: dict[str, str] = {}
        for spec in specs:
            name, sep, path = spec.partition("=")
            if not sep or not name or Path(spec).exists():
                name, path = Path(spec).name, spec
            if name in indexes:
                raise TesseraError(f"two indexes named '{name}': use NAME=DIR", field="index")
            if "/" in name or name in (".", "..") or id_problem(name):  # routes address it by name
                raise TesseraError(
                    f"index name '{name}' cannot be one segment of a URL path (/v1/indexes/NAME/...): "
                    "name it NAME=DIR, without '/'",
                    field="index",
                )
            indexes[name] = str(Path(path).expanduser().resolve())
        if not indexes:
            raise TesseraError("no index to serve", field="index")
        return cls(indexes=indexes, **options)

    def to_env(self) -> None:
        os.environ[ENV] = json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        return cls(**json.loads(os.environ[ENV]))
