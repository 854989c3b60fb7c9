"""One index directory as a framework's vector store needs it: created by the first add, ids
replaced when added again, emptied by deleting its last documents. LangChain's and LlamaIndex's
vector stores are translations of this class.

The directory is an ordinary index (`tessera search`, `serve`, RAG read it). The first add builds
it (`build_index`, with `encoder` and `factory`); later adds and deletes are the index's updates
(indexing/updates.py: each one atomic, so batch them). An id already stored is replaced: a delete
and then an add, two updates (a crash between them loses the old version; adding again finishes
it); replacing every document is one build. Deleting the last documents removes the directory,
since an index is never empty: the store is empty again, and the next add builds anew. Texts are
encoded by the index's own encoder. Metadata is kept as given when it is flat (strings, numbers,
booleans, null, lists of those: what filters select by); anything else is refused, never dropped.
A write starts from the directory's current version, another object's or process's updates
included (replacing every document rebuilds under the updates' lock, and only if nothing changed
meanwhile); searches see this object's updates, and another's after a write or `refresh`."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tessera.data.corpus import records_file
from tessera.data.document import Document, id_problem
from tessera.data.metadata import Filter, strict_metadata
from tessera.errors import TesseraError, string_list
from tessera.indexing.builder import build_index
from tessera.indexing.chunking import Chunking
from tessera.indexing.manifest import MANIFEST, Manifest
from tessera.indexing.staging import locked
from tessera.models.registry import canonical_spec, is_single_vector
from tessera.retrieval.diversify import DEFAULT_ENCODER
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index, check_search
from tessera.retrieval.query_set import check_option_names, search_one

STORE_RECORDS = "documents added through a vector store"  # the manifest's corpus
REPLACE_ATTEMPTS = 5  # rebuilds of every document tried while other writers change the directory


class IndexStore:
    """An index directory that may not exist yet, with upserts and deletes down to empty."""

    def __init__(
        self,
        path: str | Path,
        encoder: str | None = None,
        factory: str = "Flat",
        search_params: dict[str, float | str] | None = None,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        self.factory, self.search_params = factory, search_params
        built = (self.path / MANIFEST).is_file()
        if not built:
            _check_new_store(self.path)
        built_with = Manifest.read(self.path, verify=False).encoder if built else None
        if encoder and built_with and canonical_spec(encoder) != canonical_spec(built_with):
            raise TesseraError(f"{self.path} was built with '{built_with}', not '{encoder}'", field="encoder")
        self.encoder_spec = built_with or encoder or DEFAULT_ENCODER
        self.index = Index.load(self.path, search_params=search_params) if built else None

    def __len__(self) -> int:
        return 0 if self.index is None else len(self.index.docstore)

    @property
    def single_vector(self) -> bool:
        """Whether the encoder makes one vector a text: scores are cosines, and MMR compares hits
        by the index's own vectors (BM25 and token indexes: neither)."""
        return is_single_vector(self.encoder_spec)

    @property
    def likeness_encoder(self) -> str:
        """The encoder MMR compares hits with: the index's own, else MiniLM."""
        return self.encoder_spec if self.single_vector else DEFAULT_ENCODER

    # Writing.

    def upsert(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Add corpus records (from `record`); those whose id is stored replace it."""
        if not records:
            return
        ids = [r["_id"] for r in records]
        if len(set(ids)) < len(ids):
            twice = next(doc_id for doc_id in ids if ids.count(doc_id) > 1)
            raise TesseraError(f"id '{twice}' is given twice", field="ids")
        for _ in range(REPLACE_ATTEMPTS):
            self.refresh()
            stored = self.stored(ids)
            if self.index is None:
                if self._build_first(records):
                    return
                continue  # another writer built it meanwhile: add to that index
            if len(stored) < len(self):
                break
            if self._replace_every(records):
                return
        else:
            raise TesseraError(f"{self.path} changed during each of {REPLACE_ATTEMPTS} tries: nothing added")
        if stored:
            self.index.delete(stored)
        with records_file(records, self.path.parent, f".{self.path.name}.add-", STORE_RECORDS) as corpus:
            self.index.add(corpus)

    def _build_first(self, records: Sequence[Mapping[str, Any]]) -> bool:
        """The first add's build, under the updates' lock, if no other writer built the index
        meanwhile (False: one did, and these records are added to it)."""
        with locked(self.path):
            if (self.path / MANIFEST).is_file():
                return False
            self._build(records, overwrite=self.path.is_dir())  # an empty folder given for the store
        return True

    def _replace_every(self, records: Sequence[Mapping[str, Any]]) -> bool:
        """A rebuild replacing every stored document, under the updates' lock, if the directory
        still holds the version this object read (False: another writer changed it meanwhile)."""
        with locked(self.path):
            if Manifest.read(self.path, verify=False) != self.index.manifest:
                return False
            self._build(records, overwrite=True)
        return True

    def refresh(self) -> None:
        """Open the directory's current version: another object's or process's updates, the
        index it built, or none when it removed the directory."""
        built = (self.path / MANIFEST).is_file()
        if self.index is not None and not built:
            self._close()
        elif self.index is None and built:
            self.index = Index.load(self.path, search_params=self.search_params)
        elif self.index is not None:
            self.index.refresh()

    def _build(self, records: Sequence[Mapping[str, Any]], overwrite: bool) -> None:
        """The first add builds with the store's factory; replacing every document rebuilds the
        same kind of index (the manifest's factory and chunking), not a new default one."""
        factory, chunk = self.factory, None
        if self.index is not None:
            manifest = self.index.manifest
            factory = manifest.factory
            chunking = manifest.chunking
            chunk = Chunking(chunking["tokens"], chunking["overlap"]) if chunking else None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with records_file(records, self.path.parent, f".{self.path.name}.build-", STORE_RECORDS) as corpus:
            build_index(
                corpus,
                self.path,
                self.encoder_spec,
                factory,
                overwrite=overwrite,
                show_progress=False,
                chunk=chunk,
            )
        self._close()
        self.index = Index.load(self.path, search_params=self.search_params)

    def delete(self, ids: Sequence[str] | None = None) -> int:
        """Delete these ids (ids not stored are passed over), or every document with None;
        returns how many were deleted."""
        self.refresh()
        if self.index is None:
            return 0
        gone = self.ids() if ids is None else self.stored(string_list(ids, "ids"))
        if len(gone) == len(self):
            self._remove()
        elif gone:
            self.index.delete(gone)
        return len(gone)

    def _remove(self) -> None:
        """The index directory gone at once (renamed away, then removed): the store is empty."""
        self._close()
        parting = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.deleted-", dir=self.path.parent))
        self.path.rename(parting / self.path.name)
        shutil.rmtree(parting)

    def _close(self) -> None:
        if self.index is not None:
            self.index.close()
            self.index = None

    # Reading.

    def ids(self) -> list[str]:
        return [] if self.index is None else list(self.index.docstore.ids())

    def stored(self, ids: Sequence[str]) -> list[str]:
        """Those of `ids` the store holds, once each, in order."""
        if self.index is None:
            return []
        found = self.index.docstore.ordinals(ids)
        return [doc_id for doc_id in dict.fromkeys(ids) if doc_id in found]

    def get(self, ids: Sequence[str]) -> list[Document]:
        """The stored documents among `ids`, in that order."""
        if self.index is None:
            return []
        found = self.index.docstore.get(ids)
        return [found[doc_id] for doc_id in dict.fromkeys(ids) if doc_id in found]

    def matching(self, filter: Filter) -> list[str]:
        """The ids a metadata filter selects."""
        return [] if self.index is None else sorted(self.index.allowed(filter, None))

    def search(self, query: str, k: int, filter: Filter | None = None, **options: Any) -> list[Hit]:
        """The top k with their text; `options` are `search_one`'s (`reranker`, `mmr`, ...)."""
        check_option_names(options)
        check_search([query], k)  # an MMR search's first stage is deeper than k: k is checked here
        if self.index is None:
            return []
        return search_one([self.index], query, min(k, len(self)), filter=filter, **options)

    def search_vector(self, vector: Sequence[float] | np.ndarray, k: int) -> list[Hit]:
        """The top k for a vector of the index's own space (an index of one vector a document)."""
        check_search([], k)
        if self.index is None:
            return []
        vectors = np.asarray([vector], dtype=np.float32)
        return self.index.with_text(self.index.search_vectors(vectors, min(k, len(self))))[0]


def _check_new_store(path: Path) -> None:
    """A store's directory is an index or nothing yet: not a file, not another folder's files."""
    if path.is_file() or (path.is_dir() and any(path.iterdir())):
        kind = "a file" if path.is_file() else "a folder that is not a Tessera index"
        raise TesseraError(f"{path} is {kind}: a vector store's directory holds one index", field="path")
    above = next(parent for parent in path.parents if parent.exists())
    if not above.is_dir():
        raise TesseraError(f"{path}: {above} is a file, not a folder", field="path")


def record(doc_id: object, text: object, metadata: object, where: str) -> dict[str, Any]:
    """A corpus record; `where` names the item in the caller's terms (`metadatas[3]`) in errors.
    Metadata a filter could not select by is refused, never dropped."""
    for field, value in (("id", doc_id), ("text", text)):
        if not isinstance(value, str):
            raise TesseraError(f"must be a string, got {type(value).__name__}", field=f"{where}.{field}")
    if problem := id_problem(doc_id):
        raise TesseraError(problem, field=f"{where}.id")
    return {"_id": doc_id, "title": "", "text": text, "metadata": strict_metadata(metadata, where)}
