"""The served indexes: each with its own thread, micro-batcher and search-parameter variants.

Every call into an `Index` runs on that index's single thread: the event loop never waits on an
encoder, and the doc store and Lucene's JVM are only ever used from one thread at a time."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tessera.data.metadata import parse_filter
from tessera.indexing.info import describe
from tessera.indexing.manifest import MANIFEST
from tessera.retrieval.fusion import fuse, with_passages, with_stored_text
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index
from tessera.retrieval.params import route_params
from tessera.serve import metrics
from tessera.serve.batching import MicroBatcher
from tessera.serve.errors import ApiError
from tessera.serve.settings import ServeSettings

log = logging.getLogger("tessera.serve")
Loader = Callable[[Path], Index]
MAX_VARIANTS = 4  # re-opened copies per index for per-request search parameters
Restriction = dict[str, Any]  # Index.batch_search's `filter` and `doc_ids`, as given


@dataclass
class Served:
    name: str
    path: Path
    index: Index
    executor: ThreadPoolExecutor
    batcher: MicroBatcher
    variants: OrderedDict[tuple, MicroBatcher] = field(default_factory=OrderedDict)
    stamp: bytes = b""  # the manifest the loaded index was opened from

    def summary(self) -> dict[str, Any]:
        """What `tessera info` says of the index's manifest, with its name and live document count."""
        return {"name": self.name, "documents": len(self.index), **describe(self.index.manifest)}


def _manifest(root: Path) -> bytes:
    """The manifest's bytes (b"" when it cannot be read): every update publishes a new one."""
    try:
        return (root / MANIFEST).read_bytes()
    except OSError:
        return b""


class IndexPool:
    """Loaded once (`load_all`, from the lifespan); until then `ready` is False."""

    def __init__(self, settings: ServeSettings, load: Loader | None = None) -> None:
        self.settings = settings
        self.load = load or partial(Index.load, mmap=settings.mmap)
        self.served: dict[str, Served] = {}
        self.ready = False
        self.failure: str | None = None
        self.retiring: set[asyncio.Task] = set()  # batchers of replaced index versions, draining

    async def load_all(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for name, path in self.settings.indexes.items():
                executor = ThreadPoolExecutor(1, thread_name_prefix=f"index-{name}")
                stamp = _manifest(Path(path))
                index = await loop.run_in_executor(executor, self.load, Path(path))
                served = Served(
                    name, Path(path), index, executor, self._batcher(name, index, executor), stamp=stamp
                )
                self.served[name] = served
                metrics.DOCUMENTS.labels(name).set(len(index))
                log.info("loaded index '%s' (%d documents)", name, len(index))
        except Exception as exc:  # the service stays up and says why in /health
            self.failure = f"loading failed: {exc}"
            log.error("%s", self.failure)
            return
        self.ready = True

    async def watch(self) -> None:
        """Every `reload_seconds`, reopen each index whose manifest changed on disk (`tessera add`,
        `delete`, `sync`, `compact`, a rebuild published over it) and swap it in. Requests already
        running finish on the version they started with (its files stay open); a version that
        fails to open leaves the served one in place, and the failure is logged."""
        while self.settings.reload_seconds > 0:
            await asyncio.sleep(self.settings.reload_seconds)
            for served in list(self.served.values()):
                stamp = _manifest(served.path)
                if stamp and stamp != served.stamp:
                    await self.reload(served, stamp)

    async def reload(self, served: Served, stamp: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            index = await loop.run_in_executor(served.executor, self.load, served.path)
        except Exception as exc:
            log.error("index '%s' changed on disk but could not be reopened: %s", served.name, exc)
            served.stamp = stamp  # not retried until it changes again
            return
        retired = [served.batcher, *served.variants.values()]
        served.index, served.stamp = index, stamp
        served.batcher = self._batcher(served.name, index, served.executor)
        served.variants = OrderedDict()
        for batcher in retired:  # each closes once the requests it already holds are answered
            task = loop.create_task(batcher.retire())
            self.retiring.add(task)
            task.add_done_callback(self.retiring.discard)
        metrics.RELOADS.labels(served.name).inc()
        metrics.DOCUMENTS.labels(served.name).set(len(index))
        log.info("reloaded index '%s' (%d documents)", served.name, len(index))

    def _batcher(self, name: str, index: Index, executor: ThreadPoolExecutor) -> MicroBatcher:
        s = self.settings
        return MicroBatcher(
            index.batch_search,
            executor,
            s.batch_window_ms / 1000,
            s.max_batch,
            s.queue_limit,
            s.sub_batch,
            on_batch=partial(metrics.searched, name),
        )

    def get(self, name: str | None) -> Served:
        if not self.ready:
            raise ApiError(503, self.failure or "indexes are still loading")
        if name is None:
            return next(iter(self.served.values()))
        if name not in self.served:
            raise ApiError(400, f"unknown index '{name}': serving {', '.join(self.served)}")
        return self.served[name]

    def names(self, index: str | None, indexes: list[str] | None) -> list[str]:
        """The indexes a request names: `index` (default: the first served), or `indexes` to fuse."""
        if index and indexes:
            raise ApiError(400, "give index or indexes, not both")
        names = indexes or [self.get(index).name]
        if len(set(names)) != len(names):
            raise ApiError(400, "field 'indexes': an index named twice")
        for name in names:
            self.get(name)
        return names

    async def run(self, served: Served, fn: Callable, *args: Any) -> Any:
        """`fn(*args)` on the index's own thread."""
        return await asyncio.get_running_loop().run_in_executor(served.executor, partial(fn, *args))

    async def _variant(self, served: Served, params: dict[str, float | str]) -> MicroBatcher:
        """A batcher over the index re-opened with these search parameters (cached, a few per index)."""
        if not params:
            return served.batcher
        key = tuple(sorted(params.items()))
        if key not in served.variants:
            opened = await self.run(
                served, Index.load, served.path, served.index.encoder, False, dict(params), self.settings.mmap
            )
            served.variants[key] = self._batcher(served.name, opened, served.executor)
            if len(served.variants) > MAX_VARIANTS:
                await served.variants.popitem(last=False)[1].close()
        served.variants.move_to_end(key)
        return served.variants[key]

    async def search(
        self,
        name: str | None,
        queries: list[str],
        k: int,
        with_text: bool = False,
        params: dict[str, float | str] | None = None,
        restrict: Restriction | None = None,
        per_document: int = 1,
    ) -> list[list[Hit]]:
        """Micro-batched with the index's other traffic; a `restrict`ed search (`filter`,
        `doc_ids`: `Index.batch_search`'s restriction, exact) or one for several passages of a
        document (`per_document`) runs alone."""
        batcher = await self._variant(self.get(name), params or {})
        if restrict or per_document > 1:
            return await batcher.alone(queries, k, with_text, per_document=per_document, **(restrict or {}))
        return await batcher.search(queries, k, with_text)

    async def restriction(
        self, name: str, metadata_filter: dict[str, Any] | str | None, doc_ids: list[str] | None
    ) -> Restriction | None:
        """A request's `filter` (an object, or JSON text in a URL; checked: a bad one is a 400 naming
        its key) and `doc_ids` (every
        id must be in the index `name`), as `search`'s `restrict`; None when it gives neither."""
        restrict: Restriction = {}
        if metadata_filter is not None:
            restrict["filter"] = parse_filter(metadata_filter)
        if doc_ids is not None:
            unknown = set(doc_ids) - set(await self.documents(name, doc_ids))
            if unknown:
                raise ApiError(400, f"field 'doc_ids': unknown ids {', '.join(sorted(unknown)[:5])}")
            restrict["doc_ids"] = set(doc_ids)
        return restrict or None

    async def fused(
        self,
        names: list[str],
        queries: list[str],
        k: int,
        depth: int,
        rrf_k: int = 60,
        with_text: bool = False,
        params: dict[str, float | str] | None = None,
        fusion: str = "rrf",
        weights: list[float] | None = None,
        restrict: Restriction | None = None,
    ) -> list[list[Hit]]:
        """Several indexes fused, as `retrieval.fusion.hybrid_search` computes it; each index's
        part micro-batched with its other traffic (or restricted, alone), all searched at once."""
        for name in names:
            self.get(name)
        routed = route_params([self.served[n].index.manifest.backend for n in names], params or {})
        parts = await asyncio.gather(
            *(
                self.search(n, queries, depth, False, part, restrict)
                for n, part in zip(names, routed, strict=True)
            )
        )
        keys = [str(i) for i in range(len(queries))]
        runs = [dict(zip(keys, rows, strict=True)) for rows in parts]
        first = self.served[names[0]]
        fused = await self.run(first, partial(fuse, runs, fusion, weights, rrf_k=rrf_k, depth=depth, top=k))
        rows = with_passages(runs, fused, keys)
        return await self.with_text(names, rows) if with_text else rows

    async def with_text(self, names: list[str], rows: list[list[Hit]]) -> list[list[Hit]]:
        """Hits given their stored title and text by the first of the named indexes that holds
        them (fused hits come without)."""
        indexes = [self.get(name).index for name in names]
        return await self.run(self.get(names[0]), with_stored_text, indexes, rows)

    async def documents(self, name: str | None, ids: list[str]) -> dict:
        served = self.get(name)
        return await self.run(served, served.index.docstore.get, ids)

    def summaries(self) -> list[dict[str, Any]]:
        self.get(None)
        return [s.summary() for s in self.served.values()]

    async def close(self) -> None:
        for task in list(self.retiring):
            task.cancel()
        for served in self.served.values():
            for batcher in [served.batcher, *served.variants.values()]:
                await batcher.close()
            served.executor.shutdown(wait=False, cancel_futures=True)
