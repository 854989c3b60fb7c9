"""Streaming, resumable index builds: corpus -> docstore (+ vectors) -> backend -> manifest."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from tessera.data.corpus import Corpus, open_corpus
from tessera.data.document import Document
from tessera.errors import CorpusError, TesseraError
from tessera.indexing import staging
from tessera.indexing.backends import Params, build_vector_backend, kind_of, validate_factory
from tessera.indexing.docstore import DocStore
from tessera.indexing.lucene_backend import build_lucene_index
from tessera.indexing.manifest import FORMAT_VERSION, Manifest
from tessera.models.registry import canonical_spec, is_lexical, load_encoder
from tessera.progress import progress_bar

PARTIAL_VECTORS = "vectors.f32.partial"


def _batches(documents: Iterator[Document], size: int) -> Iterator[list[Document]]:
    while batch := list(islice(documents, size)):
        yield batch


def _fingerprint(corpus: Corpus, encoder: str, factory: str, batch_size: int) -> str:
    stamp = f"{FORMAT_VERSION}|{corpus.fingerprint}|{encoder}|{factory}|{batch_size}"
    return hashlib.sha256(stamp.encode()).hexdigest()[:16]


def _rewind_vectors(path: Path, done: int, dim: int) -> None:
    """Drop vectors written after the last checkpoint (a batch that was cut off)."""
    if path.exists():
        with path.open("r+b") as handle:
            handle.truncate(done * dim * 4)


def build_index(
    corpus: str | Path,
    output: str | Path,
    encoder: str = "minilm",
    factory: str = "Flat",
    batch_size: int = 256,
    search_params: Params | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Path:
    """Index `corpus` into the directory `output` and return its path.

    Interrupted builds resume from the last completed batch when run again with the same
    arguments; bad input removes the staging directory and raises a `TesseraError`.
    """
    target = Path(output).expanduser().resolve()
    if target.exists() and not overwrite:
        raise TesseraError("already exists (use --overwrite to replace it)", file=target)
    if batch_size < 1:
        raise TesseraError("must be at least 1", field="batch_size")
    source = open_corpus(corpus)
    spec = canonical_spec(encoder)
    lexical = is_lexical(spec)
    model = None if lexical else load_encoder(spec)
    if model is not None:
        validate_factory(factory, model.dim)
    root, progress = staging.stage(target, _fingerprint(source, spec, factory, batch_size))
    store = DocStore(root / DocStore.FILE)
    try:
        store.truncate(progress.done)
        if model is not None:
            _rewind_vectors(root / PARTIAL_VECTORS, progress.done, model.dim)
        with progress_bar(show_progress) as bar:
            task = (
                bar.add_task(f"indexing {source.name}", total=source.size_hint, completed=progress.done)
                if bar
                else None
            )
            documents = islice(iter(source), progress.done, None)
            for batch in _batches(documents, batch_size):
                if model is not None:
                    vectors = model.encode_docs([doc.contents for doc in batch])
                    with (root / PARTIAL_VECTORS).open("ab") as handle:
                        handle.write(vectors.astype(np.float32, copy=False).tobytes())
                        handle.flush()
                        os.fsync(handle.fileno())
                store.add(progress.done, batch)
                progress.done += len(batch)
                progress.save(root)
                if bar:
                    bar.update(task, completed=progress.done)
        if progress.done == 0:
            raise CorpusError(
                "corpus has no documents", file=source.name if source.kind != "ir_datasets" else None
            )
        manifest = Manifest(
            backend="lucene" if lexical else kind_of(factory),
            encoder=spec,
            doc_count=progress.done,
            corpus=source.name,
        )
        if lexical:
            build_lucene_index(store.documents(), root)
        else:
            manifest.dim, manifest.factory = model.dim, factory
            manifest.search_params = dict(search_params or {})
            vectors = np.memmap(
                root / PARTIAL_VECTORS, dtype=np.float32, mode="r", shape=(progress.done, model.dim)
            )
            build_vector_backend(vectors, factory, manifest.search_params, show_progress).save(root)
            del vectors
            (root / PARTIAL_VECTORS).unlink()
            with (root / "docids.txt").open("w", encoding="utf-8") as handle:
                handle.writelines(f"{doc_id}\n" for doc_id in store.ids())
        store.close()
        manifest.record_files(root, exclude=frozenset({staging.PROGRESS}))
        manifest.write(root)
        staging.publish(root, target, overwrite)
    except TesseraError:
        store.close()
        staging.discard(root)
        raise
    return target
