"""Adding and deleting a served index's documents over HTTP, for a service started `--writable`.

`POST /v1/indexes/{name}/documents` and `POST /v1/indexes/{name}/delete` are `Index.add` and
`Index.delete` (indexing/updates.py): each request is one atomic update, published as a new
version of the index directory and swapped in before the response, so the next search sees it
while searches already running finish on the version they started with. Requests are checked
whole before anything is written (ids, texts, metadata, ids already in the index), and errors
name the request's field (`documents[3].id`). Updates run one at a time on a writer thread of
their own, never on the index's search thread: an update copies the index, so a request should
carry many documents, not one. Off by default, since the service has no authentication.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from tessera.data.corpus import records_file
from tessera.data.document import id_problem
from tessera.data.metadata import strict_metadata
from tessera.errors import TesseraError
from tessera.indexing.manifest import MANIFEST, Manifest
from tessera.indexing.updates import add_documents, delete_documents
from tessera.models.registry import is_lexical, load_encoder
from tessera.serve.errors import ApiError
from tessera.serve.pool import IndexPool, Served
from tessera.serve.schemas import JsonObject, RequestBody


class DocumentIn(JsonObject):
    model_config = ConfigDict(extra="forbid")
    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] | None = None  # flat fields filters select by (data/metadata.py)


class DocumentsBody(RequestBody):
    """`POST /v1/indexes/{name}/documents`: documents to add, ids new to the index."""

    model_config = ConfigDict(extra="forbid")
    documents: list[DocumentIn] = Field(min_length=1)


class DeleteBody(RequestBody):
    """`POST /v1/indexes/{name}/delete`: ids of documents in the index."""

    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(min_length=1)


def _records(documents: list[DocumentIn]) -> list[dict[str, Any]]:
    """The documents as corpus records, checked: a bad one is a 400 naming its field."""
    seen: dict[str, int] = {}
    records = []
    for number, doc in enumerate(documents):
        where = f"documents[{number}]"
        if problem := id_problem(doc.id):
            raise ApiError(400, f"field '{where}.id': {problem}")
        if doc.id in seen:
            raise ApiError(400, f"field '{where}.id': '{doc.id}' is also documents[{seen[doc.id]}]")
        seen[doc.id] = number
        if not (doc.title + doc.text).strip():
            raise ApiError(400, f"field '{where}.text': no text")
        metadata = strict_metadata(doc.metadata, where)  # nested values refused (a 400), not dropped
        records.append({"_id": doc.id, "title": doc.title, "text": doc.text, "metadata": metadata})
    return records


class DocumentService:
    """The write routes' work: checks on the index's thread, updates on the writer thread."""

    def __init__(self, pool: IndexPool, writable: bool) -> None:
        self.pool = pool
        self.writable = writable
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="index-writer")
        self.encoders: dict[str, Any] = {}  # document encoders by spec, used on the writer thread only

    def _served(self, name: str) -> Served:
        if not self.writable:
            raise ApiError(403, "this service is read-only: start it with `tessera serve --writable`")
        return self.pool.get(name)

    async def add(self, name: str, body: DocumentsBody) -> dict[str, Any]:
        started = time.perf_counter()
        served = self._served(name)
        records = _records(body.documents)
        taken = await self.pool.documents(name, [record["_id"] for record in records])
        if taken:
            first = next(r for r in records if r["_id"] in taken)["_id"]
            raise ApiError(
                409, f"field 'documents': id '{first}' is already in index '{name}' ({len(taken)} taken)"
            )
        added = await self._update(served, self._add, records)
        return {"index": name, "added": added, **await self._after(served, started)}

    async def delete(self, name: str, body: DeleteBody) -> dict[str, Any]:
        started = time.perf_counter()
        served = self._served(name)
        ids = list(dict.fromkeys(body.ids))
        for number, doc_id in enumerate(ids):
            if problem := id_problem(doc_id):
                raise ApiError(400, f"field 'ids[{number}]': {problem}")
        unknown = set(ids) - set(await self.pool.documents(name, ids))
        if unknown:
            raise ApiError(404, f"field 'ids': not in index '{name}': {', '.join(sorted(unknown)[:5])}")
        deleted = await self._update(served, delete_documents, ids)
        return {"index": name, "deleted": deleted, **await self._after(served, started)}

    async def _update(self, served: Served, update, argument) -> int:
        """One update on the writer thread; an error it raises (a race with another writer, an
        index that would be left empty) is a 409 with its message, an id another writer deleted
        meanwhile a 404, as one this service's copy already lacked (the index named, not its path)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.writer, update, served.path, argument)
        except TesseraError as exc:
            message = exc.message.replace(f" in {served.path.resolve()}", f" in index '{served.name}'")
            raise ApiError(404 if exc.field == "id" else 409, message) from None

    async def _after(self, served: Served, started: float) -> dict[str, Any]:
        """Swap the new version in now, not at the next watch; the response says what is served."""
        await self.pool.reload(served, (served.path / MANIFEST).read_bytes())
        return {"documents": len(served.index), "took_ms": round((time.perf_counter() - started) * 1000, 3)}

    def close(self) -> None:
        self.writer.shutdown(wait=True)

    def _add(self, root: Path, records: list[dict[str, Any]]) -> int:
        """`add_documents` from a JSONL file beside the index (`records_file`), with the index's
        document encoder loaded once per service (a model load a request otherwise)."""
        spec = Manifest.read(root, verify=False).encoder
        if spec not in self.encoders and not is_lexical(spec):
            self.encoders[spec] = load_encoder(spec)
        with records_file(
            records, root.parent, f".{root.name}.add-", "documents posted to the service"
        ) as corpus:
            return add_documents(root, corpus, encoder=self.encoders.get(spec), show_progress=False)
