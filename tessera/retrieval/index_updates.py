"""`Index`'s updates: each publishes a new index directory atomically (indexing/updates.py),
then the object opens it and swaps it in (retrieval/swap.py), closing the old files once no
search of another thread still reads them. Other objects of the same directory keep the
version they opened until their `refresh`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tessera.indexing.manifest import Manifest

if TYPE_CHECKING:
    from tessera.indexing.sync import SyncPlan
    from tessera.retrieval.index import Index


class IndexUpdates:
    """add, delete, sync, compact, refresh and close of an `Index`."""

    def add(self: Index, corpus: str | Path, batch_size: int = 256, show_progress: bool = False) -> int:
        """Encode and add the documents of `corpus` (ids must be new); returns how many."""
        from tessera.indexing.updates import add_documents

        added = add_documents(self.root, corpus, batch_size, self.encoder, show_progress)
        self._reopen()
        return added

    def delete(self: Index, ids: Sequence[str]) -> int:
        """Delete documents by id (every id must be in the index); returns how many."""
        from tessera.indexing.updates import delete_documents

        deleted = delete_documents(self.root, ids)
        self._reopen()
        return deleted

    def sync(
        self: Index,
        corpus: str | Path,
        dry_run: bool = False,
        show_progress: bool = False,
        reread: bool = False,
    ) -> SyncPlan:
        """Make the index hold exactly `corpus`'s documents now: new ones added, changed ones
        re-encoded, gone ones deleted (`indexing/sync.py`); returns the `SyncPlan`. `reread`: read
        every file of a folder, not only those whose size or modification time changed."""
        from tessera.indexing.sync import sync_index

        plan = sync_index(self.root, corpus, dry_run, self.encoder, show_progress, reread)
        if not dry_run:
            self._reopen()
        return plan

    def compact(self: Index) -> int:
        """Rewrite the index without tombstones; returns how many were dropped."""
        from tessera.indexing.updates import compact

        dropped = compact(self.root)
        self._reopen()
        return dropped

    def refresh(self: Index) -> bool:
        """Open the version another object or process published since this one was opened (this
        object's own updates do it at once); returns whether there was a newer one."""
        if Manifest.read(self.root, verify=False) == self.manifest:
            return False
        self._reopen()
        return True

    def _reopen(self: Index) -> None:
        """The directory's current version opened, then swapped in; the old one's files closed."""
        encoder, search_params, mmap = self._given
        fresh = type(self).load(self.root, encoder or self.encoder, search_params=search_params, mmap=mmap)
        with self._swap.swapping():
            old = vars(self).copy()
            vars(self).update({name: value for name, value in vars(fresh).items() if name != "_swap"})
            _close_files(old)

    def close(self: Index) -> None:
        """Close the files, once no search reads them; searching after this raises."""
        with self._swap.swapping():
            if not self._closed:
                self._closed = True
                _close_files(vars(self))


def _close_files(state: dict) -> None:
    state["docstore"].close()
    if state["manifest"].backend == "lucene" and hasattr(state["backend"].searcher, "close"):
        state["backend"].searcher.close()
