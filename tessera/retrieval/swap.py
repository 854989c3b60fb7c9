"""Searches of one `Index` object kept apart from the swap to an updated version.

`Index.add` (delete, sync, compact) publishes a new directory, opens it, and then swaps it in
and closes the old files. A search running on another thread meanwhile must not read a file
being closed: on a BM25 index a closed Lucene reader crashed the JVM (SIGSEGV), on every kind
the doc store raised sqlite's "closed database". Searches share the object; the swap waits for
those running, and searches starting meanwhile wait for the swap (it only exchanges attributes
and closes files: the new version is opened before). A thread already searching enters again
without waiting (a filtered search calls the object's own search), so it never deadlocks on a
waiting swap."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SwapLock:
    """Many searches at once, or one swap; a waiting swap goes before searches that start after it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._searches = 0
        self._swapping = False
        self._waiting = 0
        self._depth = threading.local()

    @contextmanager
    def searching(self) -> Iterator[None]:
        depth = getattr(self._depth, "value", 0)
        if depth == 0:
            with self._changed:
                self._changed.wait_for(lambda: not self._swapping and not self._waiting)
                self._searches += 1
        self._depth.value = depth + 1
        try:
            yield
        finally:
            self._depth.value = depth
            if depth == 0:
                with self._changed:
                    self._searches -= 1
                    self._changed.notify_all()

    @contextmanager
    def swapping(self) -> Iterator[None]:
        with self._changed:
            self._waiting += 1
            self._changed.wait_for(lambda: not self._swapping and not self._searches)
            self._waiting -= 1
            self._swapping = True
        try:
            yield
        finally:
            with self._changed:
                self._swapping = False
                self._changed.notify_all()
