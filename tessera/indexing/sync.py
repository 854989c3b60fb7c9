"""Bring an index up to date with its corpus as it is now: add the new documents, re-encode the
changed ones, delete the ones gone (what LlamaIndex's `refresh` does for a folder of notes).

A document is unchanged when the stored one has its id, title, text and metadata; a folder's
documents carry their file's `modified` time, so an edited file counts as changed. The plan is
one streaming pass over the corpus against the doc store (ids are held, documents are not: the
new and changed ones are written to JSONL files beside the index as they are found). Then an
add (new), a delete (changed and gone) and an add (changed), each published atomically by
`updates`. A crash between them leaves some of it done, and running the sync again finishes
it (the changed documents deleted and not yet added back count as new): a sync resumes by
being run again. Unchanged documents are never re-encoded.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tessera.data.corpus import open_corpus
from tessera.data.document import Document
from tessera.errors import CorpusError, TesseraError
from tessera.indexing.docstore import DocStore
from tessera.indexing.manifest import Manifest
from tessera.indexing.updates import add_documents, delete_documents

BATCH = 500  # documents compared with the doc store per query


@dataclass
class SyncPlan:
    """What a sync does (or, dry, would do): ids added, changed (re-encoded), deleted."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "deleted": len(self.deleted),
            "unchanged": self.unchanged,
        }


def _same(stored: Document, current: Document) -> bool:
    return (stored.title, stored.text, stored.metadata) == (current.title, current.text, current.metadata)


def _batches(documents: Iterator[Document]) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for document in documents:
        batch.append(document)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def plan_sync(root: Path, corpus: str | Path, pending: dict[str, Path] | None = None) -> SyncPlan:
    """Compare `corpus` with the index at `root`. With `pending` ({"added": FILE, "changed":
    FILE}), the new and the changed documents are written there as JSONL, in corpus order. A
    repeated id is an error naming where it repeats."""
    plan = SyncPlan()
    seen: set[str] = set()
    store = DocStore(root / DocStore.FILE, readonly=True)
    outs = {kind: path.open("w", encoding="utf-8") for kind, path in (pending or {}).items()}
    try:
        for batch in _batches(iter(open_corpus(corpus))):
            stored = store.get(doc.id for doc in batch)
            for doc in batch:
                if doc.id in seen:
                    raise CorpusError(
                        f"document id '{doc.id}' repeated", file=doc.file, line=doc.line, field="id"
                    )
                seen.add(doc.id)
                if doc.id in stored and _same(stored[doc.id], doc):
                    plan.unchanged += 1
                    continue
                kind = "changed" if doc.id in stored else "added"
                getattr(plan, kind).append(doc.id)
                if kind in outs:
                    record = {"_id": doc.id, "title": doc.title, "text": doc.text, "metadata": doc.metadata}
                    outs[kind].write(json.dumps(record, ensure_ascii=False) + "\n")
        plan.deleted = [doc_id for doc_id in store.ids() if doc_id not in seen]
    finally:
        store.close()
        for out in outs.values():
            out.close()
    return plan


def sync_index(
    index: str | Path, corpus: str | Path, dry_run: bool = False, encoder=None, show_progress: bool = False
) -> SyncPlan:
    """Make the index at `index` hold exactly `corpus`'s documents; returns what changed.
    `encoder`: an already loaded document encoder for the added documents (as `Index.add`).
    New documents are added first, so an index whose every old document changed or went keeps
    documents throughout; one with no new document to hold meanwhile cannot be, and says rebuild."""
    root = Path(index).expanduser().resolve()
    manifest = Manifest.read(root, verify=False)  # a clear error for a folder that is not an index
    if dry_run:
        return plan_sync(root, corpus)
    pending = {kind: _temporary(root, kind) for kind in ("added", "changed")}
    try:
        plan = plan_sync(root, corpus, pending)
        gone = plan.changed + plan.deleted
        if gone and not plan.added and len(gone) == manifest.doc_count:
            raise TesseraError(
                "every document changed or went: rebuild the index (tessera index CORPUS -o DIR --overwrite)",
                file=root,
                field="corpus",
            )
        if plan.added:
            add_documents(root, pending["added"], encoder=encoder, show_progress=show_progress)
        if gone:
            delete_documents(root, gone)
        if plan.changed:
            add_documents(root, pending["changed"], encoder=encoder, show_progress=show_progress)
    finally:
        for path in pending.values():
            path.unlink(missing_ok=True)
    return plan


def _temporary(root: Path, kind: str) -> Path:
    handle, name = tempfile.mkstemp(prefix=f".{root.name}.sync-{kind}-", suffix=".jsonl", dir=root.parent)
    os.close(handle)
    return Path(name)
