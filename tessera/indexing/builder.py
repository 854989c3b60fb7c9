"""Streaming, resumable index builds: corpus -> docstore (+ vectors) -> backend -> manifest."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tessera.data.corpus import Corpus, open_corpus
from tessera.data.document import Document
from tessera.data.readers import read_query_texts
from tessera.errors import CorpusError, TesseraError, TesseraWarning
from tessera.indexing import staging
from tessera.indexing.chunking import Chunking, PassageMap, PassageSplitter, beyond_window
from tessera.indexing.docstore import DocStore
from tessera.indexing.lucene_backend import build_lucene_index
from tessera.indexing.manifest import FORMAT_VERSION, Manifest
from tessera.indexing.search_params import check_params
from tessera.models.bm25 import parse_bm25, with_settings
from tessera.models.encoder import Encoder
from tessera.models.registry import canonical_spec, is_lexical, load_encoder
from tessera.progress import progress_bar

if TYPE_CHECKING:
    from tessera.indexing.backends import Params

# faiss (backends, token_backend) is imported where a vector index is built: a BM25 build
# never needs it (0.1 s of a 2 s `tessera index --encoder bm25`).
PARTIAL_VECTORS = "vectors.f32.partial"
ENCODE_SLICE = 256  # texts per encoder call inside a checkpoint batch (the progress bar's step)
DEFAULT_BATCH = 2048  # documents per checkpoint: sorted by length together, written in one commit


def batches(documents: Iterator[Document], size: int) -> Iterator[list[Document]]:
    """Consecutive lists of `size` documents (the last may be shorter)."""
    while batch := list(islice(documents, size)):
        yield batch


def encode_sorted(model: Encoder, texts: list[str], advance: Callable[[int], None]):
    """Encode a checkpoint batch longest first, `ENCODE_SLICE` texts per call, and return the
    vectors in input order. Sorting the whole batch (not each call's texts, as the library does)
    gives each forward pass texts of near-equal length, so little of it is padding; the slices
    let the progress bar move within a batch."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    dense: np.ndarray | None = None
    tokens: list = [None] * len(texts)
    for start in range(0, len(order), ENCODE_SLICE):
        chosen = order[start : start + ENCODE_SLICE]
        vectors = model.encode_docs([texts[i] for i in chosen])
        if isinstance(vectors, np.ndarray):
            if dense is None:
                dense = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            dense[chosen] = vectors
        else:
            for i, matrix in zip(chosen, vectors, strict=True):
                tokens[i] = matrix
        advance(len(chosen))
    return dense if dense is not None else tokens


def _fingerprint(corpus: Corpus, encoder: str, factory: str, batch_size: int) -> str:
    stamp = f"{FORMAT_VERSION}|{corpus.fingerprint}|{encoder}|{factory}|{batch_size}"
    return hashlib.sha256(stamp.encode()).hexdigest()[:16]


class DenseSink:
    """One vector per document, appended to one float32 file; a resume truncates it."""

    def __init__(
        self, dim: int, factory: str, params: Params, show_progress: bool, tune_queries: np.ndarray | None
    ):
        from tessera.indexing.backends import check_tune_queries, kind_of, validate_factory

        validate_factory(factory, dim)
        if tune_queries is not None:  # before the corpus is encoded
            check_tune_queries(factory)
        self.dim, self.factory, self.params, self.show_progress = dim, factory, params, show_progress
        self.kind = kind_of(factory)
        self.tune_queries = tune_queries

    def rewind(self, root: Path, done: int) -> None:
        """Drop vectors written after the last checkpoint (a batch that was cut off)."""
        if (root / PARTIAL_VECTORS).exists():
            with (root / PARTIAL_VECTORS).open("r+b") as handle:
                handle.truncate(done * self.dim * 4)

    def append(self, root: Path, vectors: np.ndarray) -> None:
        with (root / PARTIAL_VECTORS).open("ab") as handle:
            handle.write(vectors.astype(np.float32, copy=False).tobytes())
            handle.flush()
            os.fsync(handle.fileno())

    def finish(self, root: Path, count: int) -> tuple[Params, dict]:
        """Build and save the backend; returns its search defaults and their tuning record."""
        from tessera.indexing.backends import build_vector_backend

        vectors = np.memmap(root / PARTIAL_VECTORS, dtype=np.float32, mode="r", shape=(count, self.dim))
        backend = build_vector_backend(
            vectors, self.factory, self.params, self.show_progress, tune_queries=self.tune_queries
        )
        backend.save(root)
        del vectors
        (root / PARTIAL_VECTORS).unlink()
        return getattr(backend, "search_params", self.params), getattr(backend, "tuning", {})


def _splitter(model: Encoder | None, chunk: str | Chunking | None) -> PassageSplitter | None:
    """The passage splitter of a chunked build: single-vector encoders with a tokenizer only."""
    if chunk is None:
        return None
    chunking = chunk if isinstance(chunk, Chunking) else Chunking.parse(chunk)
    if model is None or getattr(model, "multi_vector", False) or not hasattr(model, "tokenizer"):
        what = "bm25" if model is None else model.spec
        raise TesseraError(
            f"--chunk needs a single-vector sentence-transformers encoder; '{what}' is not one",
            field="chunk",
        )
    return PassageSplitter(chunking, model.tokenizer, model.max_tokens)


def _sink(
    model: Encoder,
    factory: str,
    params: Params,
    doc_vectors: str,
    show_progress: bool,
    tune_queries: list[str] | None = None,
):
    """Where a batch's vectors go: one per document (dense) or one per token (multi-vector)."""
    if getattr(model, "multi_vector", False):
        from tessera.indexing.token_backend import TokenSink

        if tune_queries is not None:
            raise TesseraError(
                "token indexes are not tuned (k' sets their depth); drop --tune-queries", field="tune_queries"
            )
        return TokenSink(model.dim, factory, params, doc_vectors)
    if doc_vectors != "float16":
        raise TesseraError(
            "only multi-vector (token) indexes store document token vectors", field="doc_vectors"
        )
    vectors = None if tune_queries is None else model.encode_queries(tune_queries)
    return DenseSink(model.dim, factory, params, show_progress, vectors)


def write_docids(root: Path, store: DocStore) -> None:
    """`docids.txt`: the id of every vector label, so search never queries SQLite per hit."""
    with (root / "docids.txt").open("w", encoding="utf-8") as handle:
        handle.writelines(f"{doc_id}\n" for doc_id in store.ids())


def publish_build(root: Path, target: Path, store: DocStore, manifest: Manifest, overwrite: bool) -> None:
    """The end of every build (single-process or distributed): close the doc store, checksum
    every file into the manifest, write it last and rename the staging directory into place."""
    store.close()
    manifest.record_files(root, exclude=frozenset({staging.PROGRESS}))
    manifest.write(root)
    staging.publish(root, target, overwrite)


def share(part: int, whole: int) -> str:
    """A percentage that does not round a few documents away: 0.4%, not 0%."""
    fraction = part / whole
    return f"{fraction:.1%}" if 0 < fraction < 0.1 else f"{fraction:.0%}"


def warn_empty(store: DocStore, start: int = 0) -> None:
    """Say how many documents have no text: they are indexed (their ids stay, as judgments may
    name them), and no query finds them (BM25 has no term of theirs; dense encoders give them the
    zero vector)."""
    count, first = store.empty(start)
    if count:
        warnings.warn(
            TesseraWarning(
                f"{count} {'document has' if count == 1 else 'documents have'} neither title nor text: "
                f"indexed empty (first: {', '.join(first)})",
                field="text",
            ),
            stacklevel=3,
        )


def _warn_truncation(model, store: DocStore, spec: str) -> None:
    """Say how many documents the encoder's window cut short: their tails are not indexed."""
    longer, total, window = beyond_window(model, store.documents())
    if longer:
        warnings.warn(
            TesseraWarning(
                f"{longer} of {total} documents ({share(longer, total)}) are longer than {spec}'s "
                f"{window}-token input and are indexed by their first {window} tokens; `--chunk "
                f"{Chunking.suggested(window).spec}` indexes all of their text (passages, each document "
                "scored by its best)",
                field="chunk",
            ),
            stacklevel=3,
        )


def build_index(
    corpus: str | Path,
    output: str | Path,
    encoder: str = "minilm",
    factory: str = "Flat",
    batch_size: int = DEFAULT_BATCH,
    search_params: Params | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    doc_vectors: str = "float16",
    chunk: str | Chunking | None = None,
    tune_queries: str | Path | None = None,
) -> Path:
    """Index `corpus` into the directory `output` and return its path.

    Interrupted builds resume from the last completed batch when run again with the same
    arguments; bad input removes the staging directory and raises a `TesseraError`.
    `doc_vectors` (token indexes only): `float16` or `residual:BITS` storage for ColBERT MaxSim.
    `chunk` (`TOKENS[:OVERLAP]`, dense encoders): one vector per passage; search scores a
    document by its best passage (MaxP) and names that passage in the hit.
    `tune_queries` (.jsonl/.tsv of sample queries): IVF/HNSW defaults are tuned on them instead
    of on perturbed corpus vectors (indexing/tuning.py).
    """
    target = staging.new_target(output, overwrite, inputs=(corpus, *([tune_queries] if tune_queries else ())))
    if batch_size < 1:
        raise TesseraError("must be at least 1", field="batch_size")
    source = open_corpus(corpus)
    spec = canonical_spec(encoder)
    lexical = is_lexical(spec)
    tune_texts = None if tune_queries is None else read_query_texts(tune_queries, "tune_queries")
    if lexical and tune_texts is not None:
        raise TesseraError("BM25 indexes have no search parameter to tune", field="tune_queries")
    model = None if lexical else load_encoder(spec)
    params = dict(search_params or {})
    check_params(params)
    if lexical:  # BM25's settings are its spec, which the manifest stores (models/bm25.py)
        spec, params = with_settings(parse_bm25(spec), params).spec, {}
    if getattr(model, "multi_vector", False):
        from tessera.indexing.token_backend import DEFAULT_K_PRIME

        params = {"k_prime": DEFAULT_K_PRIME, **params}
        factory_key = f"{factory}|{doc_vectors}"
    else:
        factory_key = factory
    splitter = _splitter(model, chunk)
    if splitter is not None:
        factory_key = f"{factory}|chunk={splitter.chunking.spec}"
    sink = None if model is None else _sink(model, factory, params, doc_vectors, show_progress, tune_texts)
    root, progress = staging.stage(target, _fingerprint(source, spec, factory_key, batch_size))
    store = DocStore(root / DocStore.FILE)
    try:
        store.truncate(progress.done)
        passages = PassageMap(root) if splitter else None
        rows = passages.rewind(progress.done) if passages else progress.done
        if sink is not None:
            sink.rewind(root, rows)
        what = f" in passages of {splitter.chunking.tokens} tokens" if splitter else ""
        with progress_bar(show_progress) as bar, ThreadPoolExecutor(1) as writer:
            task = (
                bar.add_task(f"indexing {source.name}{what}", total=source.size_hint, completed=progress.done)
                if bar
                else None
            )

            def advance(documents: float) -> None:
                if bar:
                    bar.advance(task, documents)

            def write(start: int, batch: list[Document], vectors, spans) -> None:
                """One checkpoint: vectors, passages and documents durable, then progress.json."""
                if sink is not None:
                    sink.append(root, vectors)
                if passages is not None:
                    passages.append(start, spans)
                store.add(start, batch)
                progress.done = start + len(batch)
                progress.save(root)

            pending: Future | None = None
            done = progress.done
            for batch in batches(islice(iter(source), progress.done, None), batch_size):
                spans = splitter.spans(batch) if splitter else None
                vectors = None
                if spans is not None:
                    texts = splitter.texts(batch, spans)
                    share = len(batch) / max(1, len(texts))  # the bar counts documents, not passages
                    vectors = encode_sorted(model, texts, lambda n, share=share: advance(n * share))
                    rows += len(texts)
                elif sink is not None:
                    vectors = encode_sorted(model, [doc.contents for doc in batch], advance)
                    rows += len(batch)
                else:
                    advance(len(batch))
                if pending is not None:
                    pending.result()  # checkpoints stay in order; a writer's error surfaces here
                pending = writer.submit(write, done, batch, vectors, spans)
                done += len(batch)
            if pending is not None:
                pending.result()
            if bar:  # the documents read: a folder's empty files were counted in its size hint
                bar.update(task, total=progress.done, completed=progress.done)
        if progress.done == 0:
            raise CorpusError(
                "corpus has no documents", file=source.name if source.kind != "ir_datasets" else None
            )
        manifest = Manifest(
            backend="lucene" if sink is None else sink.kind,
            encoder=spec,
            doc_count=progress.done,
            corpus=source.name,
        )
        if sink is None:
            build_lucene_index(store.documents(), root, len(store))
        else:
            manifest.dim, manifest.factory, manifest.search_params = model.dim, factory, params
            tuned = sink.finish(root, rows)
            if tuned is not None:  # dense: IVF/HNSW defaults tuned on the corpus (indexing/tuning.py)
                manifest.search_params, manifest.tuning = tuned
            if passages is not None:
                manifest.chunking = {
                    "tokens": splitter.chunking.tokens,
                    "overlap": splitter.chunking.overlap,
                    "passages": passages.finish(),
                }
            write_docids(root, store)
            if passages is None:
                _warn_truncation(model, store, spec)
        warn_empty(store)
        publish_build(root, target, store, manifest, overwrite)
    except TesseraError:
        store.close()
        staging.discard(root)
        raise
    return target
