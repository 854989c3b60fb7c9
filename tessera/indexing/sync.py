"""Bring an index up to date with its corpus as it is now: add the new documents, re-encode the
changed ones, delete the ones gone (what LlamaIndex's `refresh` does for a folder of notes).

A document is unchanged when the stored one has its id, title, text and metadata; a folder's
documents carry their file's `modified` time, so an edited file counts as changed. A folder's file
whose size and modification time (to the nanosecond) are those stored when it was read is not read
again, rsync's quick check: a sync of a folder of PDFs that did not change parses none of them
(`reread` reads every file, for a tool that rewrites files and restores their times). A file
touched but not changed is read at each sync until one that changes something stores its new
stamp. The plan is
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
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tessera.data.corpus import open_corpus
from tessera.data.document import Document
from tessera.data.files import document_id, file_stamp, read_folder
from tessera.errors import CorpusError, TesseraError
from tessera.indexing import staging
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
    unread: int = 0  # of the unchanged: files passed over by their size and modification time
    # size:mtime_ns of the files read whose stored stamp is missing or old, recorded by the sync
    stamps: dict[str, str] = field(default_factory=dict, repr=False)
    # where each added or changed document was read (file, line), which its pending copy is not
    origins: dict[str, tuple[str, int | None]] = field(default_factory=dict, repr=False)

    @property
    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "deleted": len(self.deleted),
            "unchanged": self.unchanged,
            "unread": self.unread,
        }

    @property
    def report(self) -> dict:
        """The ids and counts, as `tessera sync --json` prints them."""
        return {"added": self.added, "changed": self.changed, "deleted": self.deleted} | {
            name: count for name, count in self.summary.items() if name in ("unchanged", "unread")
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


def _unread_files(folder: tuple[Path, tuple[Path, ...]], store: DocStore, plan: SyncPlan, seen: set[str]):
    """A folder's files that must be read: those with no stored stamp or another one now. The
    others are counted unchanged (and seen) without being opened."""
    root, files = folder
    for start in range(0, len(files), BATCH):
        chunk = files[start : start + BATCH]
        ids = [document_id(path, root) for path in chunk]
        stored, now = store.stamps(ids), time.time_ns()
        for path, doc_id in zip(chunk, ids, strict=True):
            if doc_id in stored and _stamp_now(path, now) == stored[doc_id]:
                seen.add(doc_id)
                plan.unchanged += 1
                plan.unread += 1
            else:
                yield path


def _stamp_now(path: Path, now: int) -> str | None:
    """A file's stamp now; None for one deleted since the folder was listed (then read_folder
    names it, and the sync deletes its document as gone)."""
    try:
        return file_stamp(path.stat(), now)
    except FileNotFoundError:
        return None


def plan_sync(
    root: Path, corpus: str | Path, pending: dict[str, Path] | None = None, reread: bool = False
) -> SyncPlan:
    """Compare `corpus` with the index at `root`. With `pending` ({"added": FILE, "changed":
    FILE}), the new and the changed documents are written there as JSONL, in corpus order. A
    repeated id is an error naming where it repeats. A folder's files unchanged by their stamp
    are not read unless `reread`."""
    plan = SyncPlan()
    seen: set[str] = set()
    store = DocStore(root / DocStore.FILE, readonly=True)
    outs = {kind: path.open("w", encoding="utf-8") for kind, path in (pending or {}).items()}
    try:
        source = open_corpus(corpus)
        if source.folder is None or reread:
            documents = iter(source)
        else:
            documents = read_folder(source.folder[0], _unread_files(source.folder, store, plan, seen))
        for batch in _batches(documents):
            stored = store.get(doc.id for doc in batch)
            for doc in batch:
                if doc.id in seen:
                    raise CorpusError(
                        f"document id '{doc.id}' repeated", file=doc.file, line=doc.line, field="id"
                    )
                seen.add(doc.id)
                if doc.stamp is not None and (doc.id not in stored or stored[doc.id].stamp != doc.stamp):
                    plan.stamps[doc.id] = doc.stamp
                if doc.id in stored and _same(stored[doc.id], doc):
                    plan.unchanged += 1
                    continue
                kind = "changed" if doc.id in stored else "added"
                getattr(plan, kind).append(doc.id)
                if kind in outs:
                    record = {"_id": doc.id, "title": doc.title, "text": doc.text, "metadata": doc.metadata}
                    outs[kind].write(json.dumps(record, ensure_ascii=False) + "\n")
                    if doc.file:
                        plan.origins[doc.id] = (doc.file, doc.line)
        plan.deleted = [doc_id for doc_id in store.ids() if doc_id not in seen]
    finally:
        store.close()
        for out in outs.values():
            out.close()
    return plan


def _check_possible(plan: SyncPlan, manifest: Manifest, root: Path) -> None:
    """An index is never empty: with no new document to hold meanwhile, one whose every
    document changed or went cannot be updated in place."""
    gone = plan.changed + plan.deleted
    if gone and not plan.added and len(gone) == manifest.doc_count:
        raise TesseraError(
            "every document changed or went: rebuild the index (tessera index CORPUS -o DIR --overwrite)",
            file=root,
            field="corpus",
        )


def sync_index(
    index: str | Path,
    corpus: str | Path,
    dry_run: bool = False,
    encoder=None,
    show_progress: bool = False,
    reread: bool = False,
) -> SyncPlan:
    """Make the index at `index` hold exactly `corpus`'s documents; returns what changed.
    `encoder`: an already loaded document encoder for the added documents (as `Index.add`).
    New documents are added first, so an index whose every old document changed or went keeps
    documents throughout; one with no new document to hold meanwhile cannot be, and says rebuild.
    The files' stamps ride with the last add, which holds every document they belong to."""
    root = Path(index).expanduser().resolve()
    # Checked whole: a sync that finds nothing to change said "synced" of a damaged index, and one
    # whose doc store was damaged failed in SQLite's words.
    manifest = Manifest.read(root)
    if dry_run:
        plan = plan_sync(root, corpus, reread=reread)
        _check_possible(plan, manifest, root)  # a dry run promises only what the sync will do
        return plan
    _discard_abandoned(root)
    pending = {kind: _temporary(root, kind) for kind in ("added", "changed")}
    try:
        plan = plan_sync(root, corpus, pending, reread)
        _check_possible(plan, manifest, root)
        gone = plan.changed + plan.deleted
        shown = {"encoder": encoder, "show_progress": show_progress, "origins": plan.origins}
        if plan.added:
            label = f"{len(plan.added)} new documents of {corpus}"
            add_documents(
                root, pending["added"], stamps=None if plan.changed else plan.stamps, label=label, **shown
            )
        if gone:
            delete_documents(root, gone)
        if plan.changed:
            label = f"{len(plan.changed)} changed documents of {corpus}"
            add_documents(root, pending["changed"], stamps=plan.stamps, label=label, **shown)
    finally:
        for path in pending.values():
            path.unlink(missing_ok=True)
    return plan


def _temporary(root: Path, kind: str) -> Path:
    """A pending file named by this process, so a later sync can tell an abandoned one."""
    prefix = f".{root.name}.sync-{kind}-{os.getpid()}-"
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=".jsonl", dir=root.parent)
    os.close(handle)
    return Path(name)


def _discard_abandoned(root: Path) -> None:
    """Pending files of syncs that were killed (full copies of documents' text, beside the index)."""
    pattern = re.compile(rf"^\.{re.escape(root.name)}\.sync-(?:added|changed)-(\d+)-.*\.jsonl$")
    for path in root.parent.glob(f".{root.name}.sync-*.jsonl"):
        found = pattern.match(path.name)
        if found and not staging.pid_alive(int(found.group(1))):
            path.unlink(missing_ok=True)
