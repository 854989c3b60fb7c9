"""Adding and deleting documents in a built index; `compact` drops tombstones.

Every update writes a whole new index directory beside the old one and publishes it with the
same stage-then-rename as a build (`staging.write_derived`): unchanged files are copied, the
doc store is copied and changed, the vector file is rewritten, the manifest (doc count,
checksums) is written last. A crash leaves the old index or the new one, and a reader that
opened the old one keeps searching it (it holds the open files; the renamed-away directory is
only unlinked). A lock file beside the index (`DIR.lock`) serialises updaters, so two updates
never both start from the same old state. An update costs a copy of the index: batch them.

Labels stay doc-store ordinals and lines of `docids.txt`, as after a build:
- kinds that can remove vectors (faiss Flat/PQ/SQ codes, every IVF kind, `binary`, `bebr`)
  remove them and renumber the survivors 0..n-1 in order, so the index equals a build of the
  final corpus in the same order (IVF: same lists, no retraining);
- kinds that cannot (HNSW, and any faiss kind without `remove_ids`) keep the vectors and list
  the deleted labels in `tombstones.npy` (manifest `tombstones`); search skips them, and
  `compact` rebuilds the vector index without them;
- BM25 (`lucene`) rebuilds its Lucene index from the updated doc store, which gives exactly
  the statistics of a fresh build;
- chunked (`--chunk`) indexes split added documents with the index's chunking and append
  their passages to `passages.npy`; a deletion removes every passage of the document (kinds
  that cannot remove vectors are rebuilt from the surviving vectors: passage labels cannot
  carry tombstones, since the document store is renumbered underneath them);
- token (ColBERT/XTR) indexes append the added documents' token vectors and remove every
  token of a deleted document (token_edits.py), renumbering the survivors as above;
- sharded (`--layout sharded`) indexes get added documents as one new shard and lose deleted
  ones from the shards that hold them; untouched shards are hard-linked, not copied
  (shard_edits.py).
Added documents get new labels after the last one; a duplicate id is a `CorpusError` at its
file and line. IVF centroids and PQ codebooks are not retrained by updates, and tuned search
parameters are not re-measured: see docs/architecture.md for when to rebuild instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from tessera.data.corpus import open_corpus
from tessera.data.document import Document
from tessera.errors import CorpusError, EncoderError, IndexFormatError, TesseraError, string_list
from tessera.indexing import staging
from tessera.indexing.builder import batches, warn_empty
from tessera.indexing.chunking import PASSAGES, Chunking, PassageSplitter, load_passages
from tessera.indexing.docstore import DocStore
from tessera.indexing.faiss_backend import FaissBackend
from tessera.indexing.lucene_backend import FOLDER as LUCENE
from tessera.indexing.lucene_backend import build_lucene_index
from tessera.indexing.manifest import MANIFEST, Manifest
from tessera.indexing.shard_edits import add_shard, link_untouched, remove_from_shards
from tessera.indexing.sharded_backend import FOLDER as SHARDS
from tessera.indexing.token_edits import EDITED as TOKEN_FILES
from tessera.indexing.token_edits import add_doc_tokens, remove_doc_tokens
from tessera.indexing.tombstones import TOMBSTONES, read_tombstones
from tessera.indexing.vector_edits import add_vectors, read_faiss, rebuilt, reconstruct, remove_vectors
from tessera.progress import progress_bar

DOCIDS = "docids.txt"
ADDED = "vectors.add.partial"
VECTOR_FILES = (
    "vectors.faiss",
    "codes.faiss",
    DOCIDS,
    TOMBSTONES,
    PASSAGES,
    *TOKEN_FILES,
)  # what an update may rewrite

Where = Mapping[str, tuple[str, int]]  # id -> (file, line) it was read from


def read_ids_file(path: str | Path) -> tuple[list[str], dict[str, tuple[str, int]]]:
    """Ids one per line, exactly as the corpus gave them (spaces kept; blank lines skipped), with
    where each was read for error messages."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TesseraError(f"cannot read the ids file: {exc}", file=path) from None
    where = {}
    for number, line in enumerate(lines, 1):
        if line.strip():
            where.setdefault(line, (str(path), number))
    return list(where), where


# ---------------------------------------------------------------------------------------------
# Public API


def _from_origins(
    documents: Iterable[Document], origins: Mapping[str, tuple[str, int | None]] | None
) -> Iterator[Document]:
    """The documents, each named by where it was first read when `origins` knows it."""
    for doc in documents:
        origin = origins.get(doc.id) if origins else None
        yield doc if origin is None else replace(doc, file=origin[0], line=origin[1])


def add_documents(
    index: str | Path,
    corpus: str | Path,
    batch_size: int = 256,
    encoder=None,
    show_progress: bool = True,
    stamps: Mapping[str, str] | None = None,
    origins: Mapping[str, tuple[str, int | None]] | None = None,
    label: str | None = None,
) -> int:
    """Encode and add every document of `corpus`; returns how many were added. `stamps`: files'
    size:mtime_ns by document id, recorded in the same update (a sync's, data/files.py);
    `origins`: where documents were read before being copied into `corpus` (a sync's pending
    file), which messages and the doc store name instead; `label`: the progress bar's."""
    root = _root(index)
    added = 0

    def update(manifest: Manifest, stage: Path, store: DocStore, labels: int) -> Manifest:
        nonlocal added
        source = open_corpus(corpus)
        model = None if manifest.backend == "lucene" else _doc_encoder(manifest, encoder, root)
        splitter = _splitter(manifest, model)
        spans: list[tuple[int, int, int]] = []  # (document ordinal, start, end) of added passages
        lengths: list[int] = []  # token counts of added documents (token indexes)
        with progress_bar(show_progress) as bar:
            task = bar.add_task(f"adding {label or source.name}", total=source.size_hint) if bar else None
            if batch_size < 1:
                raise TesseraError("must be at least 1", field="batch_size")
            for batch in batches(_from_origins(source, origins), batch_size):
                store.add(labels + added, batch, stored=labels)  # a duplicate id fails here, before encoding
                if splitter is not None:
                    cut = splitter.spans(batch)
                    texts = splitter.texts(batch, cut)
                    _append(stage / ADDED, model.encode_docs(texts))
                    first = labels + added
                    spans += [(first + i, *span) for i, row in enumerate(cut) for span in row]
                elif model is not None:
                    encoded = model.encode_docs([doc.contents for doc in batch])
                    if manifest.backend == "tokens":
                        lengths += [len(tokens) for tokens in encoded]
                        encoded = np.concatenate(encoded)
                    _append(stage / ADDED, encoded)
                added += len(batch)
                if bar:
                    bar.update(task, completed=added)
        if added == 0:
            raise CorpusError(
                "corpus has no documents", file=source.name if source.kind != "ir_datasets" else None
            )
        warn_empty(store, start=labels)
        if stamps:
            store.set_stamps(stamps)
        if splitter is not None:
            rows = np.concatenate([_passages(root, manifest), np.asarray(spans, dtype=np.int64)])
            np.save(stage / PASSAGES, rows)
            manifest = replace(manifest, chunking={**manifest.chunking, "passages": len(rows)})
        if model is not None:
            vectors = np.fromfile(stage / ADDED, dtype=np.float32).reshape(-1, manifest.dim)
            if manifest.backend == "tokens":
                add_doc_tokens(root, stage, vectors, np.asarray(lengths, dtype=np.int64))
            elif manifest.backend == "sharded":
                manifest = add_shard(root, stage, manifest, vectors)
            else:
                add_vectors(root, stage, manifest, vectors)
            (stage / ADDED).unlink()
            _copy_unchanged(root, stage, manifest, (DOCIDS,))
            with (stage / DOCIDS).open("a", encoding="utf-8") as handle:
                handle.writelines(f"{doc_id}\n" for doc_id in store.ids(start=labels))
        return replace(manifest, doc_count=manifest.doc_count + added)

    _update(root, update)
    return added


def delete_documents(index: str | Path, ids: Iterable[str], where: Where | None = None) -> int:
    """Delete the documents `ids` (each known to the index); returns how many were deleted.

    `where` names the file and line an id came from (`--ids-file`), for the error message."""
    root = _root(index)
    wanted = list(dict.fromkeys(string_list(ids, "ids")))
    if not wanted:
        raise TesseraError("no document ids to delete", field="id")

    def update(manifest: Manifest, stage: Path, store: DocStore, labels: int) -> Manifest:
        found = store.ordinals(wanted)
        unknown = [doc_id for doc_id in wanted if doc_id not in found]
        if unknown:
            file, line = (where or {}).get(unknown[0], (None, None))
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise TesseraError(
                f"unknown document id '{unknown[0]}'{more} in {root}", file=file, line=line, field="id"
            )
        if len(found) == manifest.doc_count:
            raise TesseraError("deleting every document would leave the index empty", file=root, field="ids")
        gone = np.array(sorted(found.values()), dtype=np.int64)
        store.delete(gone)
        return _drop_labels(root, stage, manifest, store, gone, labels)

    _update(root, update)
    return len(wanted)


def compact(index: str | Path) -> int:
    """Rewrite the index without tombstones (and the doc store without free pages); returns
    how many tombstoned vectors were dropped."""
    root = _root(index)
    dropped = 0

    def update(manifest: Manifest, stage: Path, store: DocStore, labels: int) -> Manifest:
        nonlocal dropped
        dead = read_tombstones(root, manifest)
        dropped = len(dead)
        if dropped:
            live = np.setdiff1d(np.arange(labels, dtype=np.int64), dead)
            index = read_faiss(root)
            fresh = rebuilt(index, manifest, reconstruct(index, live))
            FaissBackend(fresh, manifest.search_params).save(stage)
            ids = (root / DOCIDS).read_text(encoding="utf-8").splitlines()
            _write_docids(stage, [ids[label] for label in live])
            store.renumber()
        else:
            store.renumber()  # ordinals already dense: this only vacuums
        return replace(manifest, tombstones=0)

    _update(root, update)
    return dropped


# ---------------------------------------------------------------------------------------------
# The update transaction


def _root(index: str | Path) -> Path:
    return Path(index).expanduser().resolve()


def _update(root: Path, change) -> None:
    """Run `change(manifest, stage, store, labels)` on a staged copy and publish it.

    The doc store and every file but the vector/label files come over unchanged; `change`
    edits the store and writes the vector/label files it changes, the rest are copied after."""
    Manifest.read(root, verify=False)  # an index at all, before a lock file is made beside it
    with staging.locked(root):
        manifest = Manifest.read(root)
        _check_updatable(root, manifest)
        rewritten = (f"{LUCENE}/", f"{SHARDS}/")  # written by `change` or the Lucene rebuild
        carried = [
            name for name in manifest.files if name not in VECTOR_FILES and not name.startswith(rewritten)
        ]

        def fill(stage: Path) -> Manifest:
            store = DocStore(stage / DocStore.FILE)
            try:
                new = change(manifest, stage, store, manifest.doc_count + manifest.tombstones)
                if manifest.backend == "lucene":
                    build_lucene_index(store.documents(), stage, len(store))
                if manifest.backend == "sharded":
                    link_untouched(root, stage, new)
            finally:
                store.close()
            kept = [n for n in VECTOR_FILES if n != TOMBSTONES or new.tombstones]
            _copy_unchanged(root, stage, manifest, kept)
            return new

        staging.write_derived(root, root, carried, fill, overwrite=True)


def _check_updatable(root: Path, manifest: Manifest) -> None:
    if manifest.backend not in ("faiss", "binary", "bebr", "lucene", "tokens", "sharded"):
        raise IndexFormatError(f"unknown backend '{manifest.backend}'", file=root / MANIFEST, field="backend")


# ---------------------------------------------------------------------------------------------
# Vectors


def _append(path: Path, vectors: np.ndarray) -> None:
    with path.open("ab") as handle:
        handle.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())


def _doc_encoder(manifest: Manifest, given, root: Path):
    """The index's document encoder (not a JPQ query encoder): `given` when it is that one and,
    for a chunked index, has the tokenizer that cuts passages (the query-time light and traced
    encoders of `models/runtimes` do not)."""
    from tessera.models.registry import load_encoder

    usable = given is not None and not manifest.query_encoder
    usable = usable and (not manifest.chunking or hasattr(given, "tokenizer"))
    model = given if usable else load_encoder(manifest.encoder)
    tokens = manifest.backend == "tokens"
    if bool(getattr(model, "multi_vector", False)) != tokens or model.dim != manifest.dim:
        raise EncoderError(
            f"encoder '{model.spec}' does not make the index's {manifest.dim}-d "
            f"{'token' if tokens else 'document'} vectors",
            file=root / MANIFEST,
            field="encoder",
        )
    return model


def _drop_labels(
    root: Path, stage: Path, manifest: Manifest, store: DocStore, gone: np.ndarray, labels: int
) -> Manifest:
    """Remove (and renumber) or tombstone the vectors of the documents `gone` (their doc store
    rows are already gone); in a chunked index, the vectors of all their passages."""
    live_count = manifest.doc_count - len(gone)
    if manifest.backend == "lucene":
        store.renumber()
        return replace(manifest, doc_count=live_count)
    ids = (root / DOCIDS).read_text(encoding="utf-8").splitlines()
    if manifest.backend == "tokens":
        remove_doc_tokens(root, stage, manifest, gone)
    elif manifest.backend == "sharded":
        manifest = remove_from_shards(root, stage, manifest, gone)
    elif manifest.chunking:
        rows = _passages(root, manifest)
        dead = np.isin(rows[:, 0], gone)
        remove_vectors(root, stage, manifest, np.flatnonzero(dead), rebuild=True)
        kept = rows[~dead]
        kept[:, 0] -= np.searchsorted(gone, kept[:, 0])  # documents renumbered as the store is
        np.save(stage / PASSAGES, kept)
        manifest = replace(manifest, chunking={**manifest.chunking, "passages": len(kept)})
    elif not remove_vectors(root, stage, manifest, gone, rebuild=False):
        # tombstones: vectors and labels stay, search skips them
        dead = np.union1d(read_tombstones(root, manifest), gone)
        np.save(stage / TOMBSTONES, dead)
        return replace(manifest, doc_count=live_count, tombstones=len(dead))
    store.renumber()
    dead = set(gone.tolist())
    _write_docids(stage, [doc_id for label, doc_id in enumerate(ids) if label not in dead])
    return replace(manifest, doc_count=live_count, tombstones=0)


def _splitter(manifest: Manifest, model) -> PassageSplitter | None:
    """The passage splitter a chunked index was built with (same tokenizer, same windows)."""
    if not manifest.chunking or model is None:
        return None
    chunking = Chunking(int(manifest.chunking["tokens"]), int(manifest.chunking["overlap"]))
    return PassageSplitter(chunking, model.tokenizer, model.max_tokens)


def _passages(root: Path, manifest: Manifest) -> np.ndarray:
    return load_passages(root, int(manifest.chunking["passages"]), manifest.doc_count)


def _write_docids(stage: Path, ids: Sequence[str]) -> None:
    with (stage / DOCIDS).open("w", encoding="utf-8") as handle:
        handle.writelines(f"{doc_id}\n" for doc_id in ids)


def _copy_unchanged(root: Path, stage: Path, manifest: Manifest, names: Iterable[str]) -> None:
    """Copy those of `names` the index has and the stage does not (yet)."""
    for name in names:
        if name in manifest.files and not (stage / name).exists():
            shutil.copy2(root / name, stage / name)


__all__ = ["add_documents", "compact", "delete_documents", "read_ids_file"]
