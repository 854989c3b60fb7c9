"""`Index`: the user-facing object joining manifest, encoder, backend and doc store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from functools import partial, wraps
from pathlib import Path

import numpy as np

from tessera.data.document import Document, text_problem
from tessera.data.metadata import Filter, parse_filter
from tessera.errors import EncoderError, IndexFormatError, TesseraError, string_list, whole_number
from tessera.indexing.backends import Params, open_vector_backend
from tessera.indexing.chunking import load_passages
from tessera.indexing.docstore import DocStore
from tessera.indexing.lucene_backend import LuceneBackend
from tessera.indexing.manifest import Manifest
from tessera.indexing.tombstones import with_tombstones
from tessera.models.bm25 import parse_bm25, with_settings
from tessera.models.encoder import Encoder
from tessera.models.registry import load_query_encoder
from tessera.retrieval.fusion import check_distinct
from tessera.retrieval.hits import Hit
from tessera.retrieval.index_updates import IndexUpdates
from tessera.retrieval.maxp import maxp_search
from tessera.retrieval.params import route_params
from tessera.retrieval.restrict import SELECTIVE_MAX, Ranked, exhaustive_search, restricted_search
from tessera.retrieval.swap import SwapLock
from tessera.retrieval.vector_prf import VectorPrf, split_vector_prf

Span = tuple[int, int]
LOAD_ATTEMPTS = 5  # opens retried when an update replaces the index meanwhile
FILTERS_KEPT = 8  # metadata filters whose matching ids an Index keeps


def _manifest_bytes(root: Path) -> bytes | None:
    try:
        return (root / "manifest.json").read_bytes()
    except OSError:
        return None


def check_search(queries: Sequence[str], k: int) -> None:
    """The one check of a search request, shared by Python, the CLI and the HTTP service (which
    runs it before queueing, so one bad query never fails a micro-batch of others)."""
    if whole_number(k, "k") < 1:
        raise TesseraError(f"k must be at least 1, got {k}", field="k")
    for number, query in enumerate(queries, 1):
        if not isinstance(query, str):
            raise TesseraError(
                f"query {number} of {len(queries)} is a {type(query).__name__}, not text", field="query"
            )
    empty = next((n for n, q in enumerate(queries, 1) if not q.strip()), None)
    if empty is not None:
        raise TesseraError(f"query {empty} of {len(queries)} is empty", field="query")
    for number, query in enumerate(queries, 1):
        if problem := text_problem(query):
            raise TesseraError(f"query {number} of {len(queries)} {problem}", field="query")


def load_indexes(
    paths: Sequence[str | Path], search_params: Params | None = None, mmap: bool = False
) -> list[Index]:
    """Open indexes searched together, each given the parameters `route_params` routes to it."""
    roots = [Path(path).expanduser().resolve() for path in paths]
    check_distinct(roots)
    backends = [Manifest.read(root, verify=False).backend for root in roots]
    parts = route_params(backends, search_params or {})
    return [Index.load(root, search_params=part, mmap=mmap) for root, part in zip(roots, parts, strict=True)]


def _with_document(hit: Hit, doc: Document) -> Hit:
    span = hit.offsets
    passage = doc.text[span[0] : span[1]] if span else None
    return replace(hit, title=doc.title, text=doc.text, passage=passage, metadata=doc.metadata)


def _guarded(method: Callable) -> Callable:
    """A read of the object's files: never beside the swap to an updated version (retrieval/swap.py),
    never after `close`."""

    @wraps(method)
    def guarded(self: Index, *args, **kwargs):
        with self._swap.searching():
            if self._closed:
                raise TesseraError("this Index was closed: load it again", file=self.root)
            return method(self, *args, **kwargs)

    return guarded


class Index(IndexUpdates):
    """Open with `Index.load(path)`; then `search(query)` or `batch_search(queries)`. One object
    may be searched from many threads, also while one of them updates it."""

    def __init__(
        self,
        root: Path,
        manifest: Manifest,
        encoder: Encoder | None = None,
        search_params: Params | None = None,
        mmap: bool = False,
    ):
        self.root = root
        self.manifest = manifest
        self._swap, self._closed = SwapLock(), False
        self._given = (encoder, search_params, mmap)  # kept for reopening after an update
        self.docstore = DocStore(root / DocStore.FILE, readonly=True)
        self._filters: dict[str, frozenset[str]] = {}  # filter JSON -> matching ids (`_matching`)
        self.passages = None
        self.prf: VectorPrf | None = None
        params = {**manifest.search_params, **(search_params or {})}
        if manifest.backend == "lucene":
            self.encoder = None
            self.backend = LuceneBackend(root, with_settings(parse_bm25(manifest.encoder), params))
            return
        query_spec = str(root / manifest.query_encoder) if manifest.query_encoder else manifest.encoder
        if manifest.query_encoder and manifest.backend == "tokens":
            query_spec = f"colbert:{query_spec}"  # a multi-vector folder; the prefix only names the kind
        self.encoder = encoder or load_query_encoder(query_spec)
        tokens = manifest.backend == "tokens"
        if getattr(self.encoder, "multi_vector", False) != tokens:
            raise EncoderError(
                f"encoder '{self.encoder.spec}' makes "
                f"{'token' if not tokens else 'single'} vectors; this is a {manifest.backend} index",
                file=root / "manifest.json",
                field="encoder",
            )
        if self.encoder.dim != manifest.dim:
            raise EncoderError(
                f"dimension mismatch: index holds {manifest.dim}-d vectors, encoder "
                f"'{self.encoder.spec}' makes {self.encoder.dim}-d vectors",
                file=root / "manifest.json",
                field="dim",
            )
        self.prf, params = split_vector_prf(params)
        if self.prf is not None and (manifest.backend != "faiss" or manifest.chunking):
            kind = "a chunked" if manifest.chunking else f"a {manifest.backend}"
            raise TesseraError(
                f"prf_depth (vector feedback) needs a faiss index of one vector a document, not {kind} index",
                field="prf_depth",
            )
        if tokens:
            from tessera.retrieval.late_interaction import open_late_interaction

            self.backend = open_late_interaction(root, manifest, params, mmap)
        else:
            self.backend = open_vector_backend(root, manifest, params, mmap)
        # Labels = live documents + deleted ones still in the vector index (indexing/updates.py).
        vectors = manifest.chunking.get("passages", manifest.doc_count + manifest.tombstones)
        if self.backend.dim != manifest.dim or self.backend.ntotal != vectors:
            raise IndexFormatError(
                f"the {manifest.backend} backend holds {self.backend.ntotal} {self.backend.dim}-d vectors; "
                f"manifest says {vectors} {manifest.dim}-d",
                file=root / "manifest.json",
            )
        self.passages = load_passages(root, vectors, manifest.doc_count) if manifest.chunking else None
        self.doc_ids = (root / "docids.txt").read_text(encoding="utf-8").splitlines()
        if len(self.doc_ids) != manifest.doc_count + manifest.tombstones:
            raise IndexFormatError(
                f"{len(self.doc_ids)} ids for {manifest.doc_count} documents"
                + (f" and {manifest.tombstones} tombstones" if manifest.tombstones else ""),
                file=root / "docids.txt",
            )
        self._stored = self.backend  # the stored vectors, tombstones or not (feedback reads them)
        if manifest.tombstones:
            self.backend = with_tombstones(root, manifest, self.backend)

    @classmethod
    def load(
        cls,
        path: str | Path,
        encoder: Encoder | None = None,
        verify: bool = True,
        search_params: Params | None = None,
        mmap: bool = False,
    ) -> Index:
        """Open an index directory; `verify` checks every file against the manifest's checksums.

        `mmap` maps the faiss files of vector, sharded and token indexes instead of reading them
        (codes, re-scoring rows, graphs; faiss_backend.read_faiss): memory holds the pages searches
        touch, so an index larger than RAM can be searched and `serve --workers N` shares one copy.
        Results are the same. (Checksums are still read: `verify=False` skips them.)

        An update published while this opens (indexing/updates.py) makes it start again, so
        the object holds one version's files, never a mix: the manifest must read the same
        before and after every file is open (a version's manifest is never seen twice)."""
        root = Path(path).expanduser().resolve()
        for attempt in range(1, LOAD_ATTEMPTS + 1):
            stamp = _manifest_bytes(root)
            try:
                index = cls(root, Manifest.read(root, verify=verify), encoder, search_params, mmap)
            except (TesseraError, OSError):
                if attempt < LOAD_ATTEMPTS and _manifest_bytes(root) != stamp:
                    continue
                raise
            if _manifest_bytes(root) == stamp:
                return index
            encoder = encoder or index.encoder
            index.close()
        raise IndexFormatError(f"changed while being opened, {LOAD_ATTEMPTS} times in a row", file=root)

    def __len__(self) -> int:
        return self.manifest.doc_count

    def search(
        self,
        query: str,
        k: int = 10,
        with_text: bool = False,
        filter: Filter | None = None,
        doc_ids: Iterable[str] | None = None,
        per_document: int = 1,
    ) -> list[Hit]:
        if not isinstance(query, str):
            raise TesseraError(f"must be text, got {type(query).__name__}", field="query")
        return self.batch_search([query], k, with_text, filter, doc_ids, per_document)[0]

    @_guarded
    def batch_search(
        self,
        queries: Sequence[str],
        k: int = 10,
        with_text: bool = False,
        filter: Filter | None = None,
        doc_ids: Iterable[str] | None = None,
        per_document: int = 1,
    ) -> list[list[Hit]]:
        """Top-k hits per query, best first. `filter` (a metadata filter, data/metadata.py) and
        `doc_ids` rank only the documents they select (both: those both select). A chunked
        index gives each document once, by its best passage, or with `per_document` > 1 up to
        that many of its best passages as hits of their own (the same id, other offsets): the
        top k passages, as a RAG context over long documents wants them. Other kinds hold one
        entry a document and ignore it."""
        queries = string_list(queries, "queries")
        check_search(queries, k)
        k = int(k)
        if per_document < 1:
            raise TesseraError(f"must be at least 1, got {per_document}", field="per_document")
        per_document = per_document if self.passages is not None else 1
        if not queries:
            return []
        k = min(k, max(len(self) if per_document == 1 else len(self.passages), 1))  # rows sized by k
        if filter is not None or doc_ids is not None:
            rows = self._restricted(queries, k, self.allowed(filter, doc_ids), per_document)
            return self.with_text(rows) if with_text else rows
        spans: list[list[Span | None]] = [[None] * k for _ in queries]
        if self.encoder is None:
            ranked = self.backend.search(queries, k)
        elif self.passages is not None:
            ranked, spans = self._maxp(queries, k, per_document)
        else:
            vectors = self.encoder.encode_queries(queries)
            if self.prf is not None:
                _, top = self.backend.search(vectors, self.prf.depth)
                vectors = self.prf.expand(vectors, self._stored.vectors_of(top), top >= 0)
            ranked = self._ids(*self.backend.search(vectors, k))
        texts = self.docstore.get(d for row in ranked for d, _ in row) if with_text else {}
        return [
            [
                self._hit(doc_id, score, rank, span, texts.get(doc_id))
                for rank, ((doc_id, score), span) in enumerate(zip(row, row_spans, strict=False), start=1)
            ]
            for row, row_spans in zip(ranked, spans, strict=True)
        ]

    def _restricted(
        self, queries: list[str], k: int, allowed: set[str], per_document: int = 1
    ) -> list[list[Hit]]:
        """Top k among `allowed` (retrieval/restrict.py): through the index's own restricted
        search where it has one; otherwise its ranking, searched deep enough."""
        if per_document > 1:  # passages: as many as the allowed documents hold, among all passages
            counts = np.bincount(self.passages[:, 0], minlength=len(self.doc_ids))
            ordinals = list(self.docstore.ordinals(allowed).values())
            search = partial(self.batch_search, with_text=False, per_document=per_document)
            held = int(np.minimum(counts[ordinals], per_document).sum()) if ordinals else 0
            return restricted_search(search, queries, k, allowed, len(self.passages), held)
        if allowed and (found := self._within(queries, k, allowed)) is not None:
            return [[Hit(doc, score, rank) for rank, (doc, score) in enumerate(row, 1)] for row in found]
        return restricted_search(partial(self.batch_search, with_text=False), queries, k, allowed, len(self))

    def _within(self, queries: list[str], k: int, allowed: set[str]) -> Ranked | None:
        """BM25: a filter clause on the ids (scores unchanged), for at most `SELECTIVE_MAX`
        documents. A faiss index of one vector a document: at most `SELECTIVE_MAX` documents
        scored one by one from their stored vectors (PQ kinds: decoded), so no IVF probe or HNSW
        walk misses one; more through faiss' IDSelector, which keeps the walk's and the probes'
        recall that a deep search filtered afterwards loses. None where neither applies (RM3 or
        Rocchio, token, binary, chunked indexes; kinds faiss cannot restrict)."""
        selective = len(allowed) <= SELECTIVE_MAX
        if self.manifest.backend == "lucene":
            expands = self.backend.expands
            return self.backend.search_within(queries, k, allowed) if selective and not expands else None
        one_vector = self.manifest.backend == "faiss" and self.passages is None and self.prf is None
        if not one_vector or self.manifest.metric != "ip":
            return None
        labels = np.asarray(sorted(self.docstore.ordinals(allowed).values()), dtype=np.int64)
        ids = [self.doc_ids[n] for n in labels]
        vectors = self.encoder.encode_queries(queries)
        if selective:
            try:
                return exhaustive_search(vectors, self._stored.vectors_of(labels), ids, k)
            except TesseraError:  # a kind that cannot give its vectors back: try the selector
                pass
        found = self._stored.search_within(vectors, k, labels)
        return None if found is None else self._ids(*found)

    def _ids(self, scores: np.ndarray, labels: np.ndarray) -> Ranked:
        """faiss' (scores, labels) as (doc id, score) rows; -1 labels (nothing found) dropped."""
        return [
            [(self.doc_ids[n], float(score)) for score, n in zip(row_s, row_l, strict=True) if n >= 0]
            for row_s, row_l in zip(scores, labels, strict=True)
        ]

    def _maxp(
        self, queries: list[str], k: int, per_document: int = 1
    ) -> tuple[list[list[tuple[str, float]]], list[list[Span]]]:
        """Documents by their best passage (or their best `per_document` passages), with the
        passages' offsets."""
        vectors = self.encoder.encode_queries(queries)
        found = maxp_search(self.backend.search, vectors, self.passages[:, 0], k, per_document)
        ranked = [[(self.doc_ids[doc], score) for doc, score, _ in row] for row in found]
        spans = [[tuple(int(x) for x in self.passages[label, 1:]) for _, _, label in row] for row in found]
        return ranked, spans

    @_guarded
    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        """Top-k hits for vectors of this index's own space (a faiss index of one vector a
        document; deleted documents never found), best first."""
        check_search([], k)
        if self.encoder is None or self.manifest.backend == "tokens" or self.passages is not None:
            kind = "a chunked" if self.passages is not None else f"a {self.manifest.backend}"
            raise TesseraError(
                f"a search by vector needs one vector a document, not {kind} index", field="vectors"
            )
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.manifest.dim:
            why = f"vectors of {self.manifest.dim} numbers are searched, got shape {vectors.shape}"
            raise TesseraError(why, field="vectors")
        if not np.isfinite(vectors).all():
            raise TesseraError("a vector holds NaN or infinite numbers", field="vectors")
        ranked = self._ids(*self.backend.search(vectors, int(k)))
        return [[Hit(doc, score, rank) for rank, (doc, score) in enumerate(row, 1)] for row in ranked]

    @_guarded
    def stored_vectors(self, doc_ids: Sequence[str]) -> np.ndarray | None:
        """The vectors this index holds for `doc_ids` (PQ kinds: decoded), in that order; None
        where it holds no one vector a document (BM25, token, chunked, binary) or lacks an id."""
        if self.manifest.backend != "faiss" or self.passages is not None:
            return None
        ordinals = self.docstore.ordinals(doc_ids)
        if any(doc not in ordinals for doc in doc_ids):
            return None
        try:
            return self._stored.vectors_of(np.asarray([ordinals[d] for d in doc_ids], dtype=np.int64))
        except TesseraError:
            return None

    @_guarded
    def allowed(self, filter: Filter | None, doc_ids: Iterable[str] | None) -> set[str]:
        """The ids a metadata filter and an id list select (either may be None: no limit)."""
        chosen = set(string_list(doc_ids, "doc_ids")) if doc_ids is not None else None
        if filter is not None:
            matched = self._matching(parse_filter(filter))
            chosen = matched if chosen is None else chosen & matched
        return chosen or set()

    def _matching(self, checked: dict) -> set[str]:
        """The doc store's answer to a filter, kept for the last few filters: a query set runs
        its batches, and a service its requests, with the same filter, and this object's doc
        store never changes (an update reopens it)."""
        key = json.dumps(checked, sort_keys=True)
        if key not in self._filters:
            if len(self._filters) >= FILTERS_KEPT:
                self._filters.pop(next(iter(self._filters)))
            self._filters[key] = frozenset(self.docstore.matching(checked))
        return set(self._filters[key])

    @staticmethod
    def _hit(doc_id: str, score: float, rank: int, span: Span | None, doc: Document | None) -> Hit:
        hit = Hit(doc_id, score, rank, offsets=span)
        return _with_document(hit, doc) if doc is not None else hit

    @_guarded
    def with_text(self, rows: Sequence[Sequence[Hit]]) -> list[list[Hit]]:
        """Hits (fused ones come without) given their stored title, text and metadata (and a
        chunked hit its passage); ids this index does not store stay as they are."""
        docs = self.docstore.get(h.doc_id for row in rows for h in row)
        return [[_with_document(h, d) if (d := docs.get(h.doc_id)) else h for h in row] for row in rows]

    @_guarded
    def document(self, doc_id: str):
        """The raw stored document, or None."""
        return self.docstore.get([doc_id]).get(doc_id)
