"""`tessera train bebr`: retrain the binarizer of a BEBR index, or train a compatible successor.

A BEBR index keeps no float vectors, so the documents are re-encoded from the doc store.
- plain retraining writes new codes for every document;
- `compatible=True` trains the successor against the old binarizer (BEBR's compatible
  training) and keeps the old document codes: only queries use the new binarizer, so an
  upgraded model serves the existing index without re-indexing its documents.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from tessera.errors import TesseraError
from tessera.indexing import staging
from tessera.indexing.binary_backend import BebrBackend
from tessera.indexing.chunking import refuse_chunked
from tessera.indexing.docstore import DocStore
from tessera.indexing.manifest import Manifest
from tessera.models.bebr import MAX_BITS
from tessera.models.registry import load_encoder
from tessera.progress import quiet_bar
from tessera.training.bebr import TRAIN_EPOCHS, check_epochs, train_binarizer

BATCH = 256


def _document_vectors(root: Path, manifest: Manifest, show_progress: bool) -> np.ndarray:
    encoder = load_encoder(manifest.encoder)
    store = DocStore(root / DocStore.FILE, readonly=True)
    chunks, batch = [], []
    with quiet_bar(show_progress, transient=False) as bar:
        task = bar.add_task("re-encoding documents", total=manifest.doc_count)
        for doc in store.documents():
            batch.append(doc.contents)
            if len(batch) == BATCH:
                chunks.append(encoder.encode_docs(batch))
                bar.update(task, advance=len(batch))
                batch = []
        if batch:
            chunks.append(encoder.encode_docs(batch))
            bar.update(task, advance=len(batch))
    store.close()
    return np.concatenate(chunks)


def retrain_bebr_index(
    index_dir: str | Path,
    output: str | Path,
    bits: int | None = None,
    compatible: bool = False,
    overwrite: bool = False,
    show_progress: bool = True,
    epochs: int = TRAIN_EPOCHS,
) -> Path:
    """Write `output`: the index of `index_dir` with a retrained (or successor) binarizer."""
    source = Path(index_dir).expanduser().resolve()
    target = staging.new_target(output, overwrite)
    manifest = Manifest.read(source)
    if manifest.backend != "bebr":
        raise TesseraError(f"not a BEBR index (backend '{manifest.backend}')", file=source, field="backend")
    refuse_chunked(manifest, source, "train bebr")
    old = BebrBackend.load(source)
    bits = old.binarizer.bits if bits is None else bits
    if not 1 <= bits <= MAX_BITS:  # before every document is encoded again
        raise TesseraError(f"bits per dimension must be 1..{MAX_BITS}, got {bits}", field="bits")
    if compatible and bits != old.binarizer.bits:
        raise TesseraError("a compatible successor keeps the old number of bits", field="bits")
    check_epochs(epochs, compatible)  # before re-encoding every document
    vectors = _document_vectors(source, manifest, show_progress)
    new, _ = train_binarizer(
        vectors,
        bits,
        epochs=epochs,
        previous=old.binarizer if compatible else None,
        show_progress=show_progress,
    )

    def fill(root: Path) -> Manifest:
        if compatible:
            backend = BebrBackend(old.binarizer, old.codes, query_binarizer=new)
        else:
            backend = BebrBackend.build(new, vectors)
        backend.save(root)
        return replace(manifest, factory=f"bebr:{bits}")

    return staging.write_derived(source, target, (DocStore.FILE, "docids.txt"), fill, overwrite)
