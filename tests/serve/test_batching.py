"""Micro-batching on its own: merging, exact per-k answers, errors, the bounded queue."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tessera.retrieval.hits import Hit
from tessera.serve.batching import MicroBatcher, Overloaded


class Recorder:
    """A fake batch_search that records each call and answers `query:k` hits."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[list[str], int]] = []
        self.gate = gate

    def __call__(self, queries: list[str], k: int, with_text: bool) -> list[list[Hit]]:
        if self.gate is not None:
            self.gate.wait(5)
        if "boom" in queries:
            raise ValueError("boom")
        self.calls.append((list(queries), k))
        return [[Hit(f"{q}:{k}", 1.0, 1)] for q in queries]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_one_call() -> None:
    search = Recorder()

    async def main():
        batcher = MicroBatcher(search, ThreadPoolExecutor(1), window_s=0.05, max_batch=64, sub_batch=64)
        got = await asyncio.gather(*(batcher.search([f"q{i}"], 5) for i in range(20)))
        await batcher.close()
        return got

    got = run(main())
    assert [rows[0][0].doc_id for rows in got] == [f"q{i}:5" for i in range(20)]
    assert len(search.calls) == 1 and len(search.calls[0][0]) == 20


def test_sub_batches_by_length_keep_each_callers_answer() -> None:
    search = Recorder()
    words = ["a" * n for n in (9, 1, 5, 3, 7, 2, 8, 4, 6)]

    async def main():
        batcher = MicroBatcher(search, ThreadPoolExecutor(1), window_s=0.05, sub_batch=4)
        got = await asyncio.gather(*(batcher.search([w], 5) for w in words))
        await batcher.close()
        return got

    got = run(main())
    assert [rows[0][0].doc_id for rows in got] == [f"{w}:5" for w in words]
    assert [[len(q) for q in call] for call, _ in search.calls] == [[1, 2, 3, 4], [5, 6, 7, 8], [9]]


def test_different_k_never_mixed() -> None:
    search = Recorder()

    async def main():
        batcher = MicroBatcher(search, ThreadPoolExecutor(1), window_s=0.05)
        got = await asyncio.gather(
            batcher.search(["a"], 3), batcher.search(["b", "c"], 7), batcher.search(["d"], 3)
        )
        await batcher.close()
        return got

    got = run(main())
    assert [[row[0].doc_id for row in rows] for rows in got] == [["a:3"], ["b:7", "c:7"], ["d:3"]]
    assert sorted(search.calls) == [(["a", "d"], 3), (["b", "c"], 7)]


def test_max_batch_one_is_one_at_a_time() -> None:
    search = Recorder()

    async def main():
        batcher = MicroBatcher(search, ThreadPoolExecutor(1), window_s=0.05, max_batch=1)
        await asyncio.gather(*(batcher.search([f"q{i}"], 5) for i in range(5)))
        await batcher.close()

    run(main())
    assert [len(q) for q, _ in search.calls] == [1] * 5


def test_a_failing_batch_fails_its_requests_only() -> None:
    search = Recorder()

    async def main():
        batcher = MicroBatcher(search, ThreadPoolExecutor(1), window_s=0.05)
        bad = await asyncio.gather(
            batcher.search(["boom"], 5), batcher.search(["x"], 5), return_exceptions=True
        )
        good = await batcher.search(["later"], 5)  # the consumer survived
        await batcher.close()
        return bad, good

    bad, good = run(main())
    assert all(isinstance(b, ValueError) for b in bad)
    assert good[0][0].doc_id == "later:5"


def test_full_queue_is_refused() -> None:
    gate = threading.Event()
    search = Recorder(gate)

    async def main():
        batcher = MicroBatcher(search, ThreadPoolExecutor(1), window_s=0, max_batch=1, queue_limit=2)
        first = asyncio.ensure_future(batcher.search(["running"], 5))
        await asyncio.sleep(0.05)  # taken off the queue; blocked in the search
        waiting = [asyncio.ensure_future(batcher.search([f"w{i}"], 5)) for i in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await batcher.search(["one too many"], 5)
        gate.set()
        await asyncio.gather(first, *waiting)
        await batcher.close()

    run(main())
    assert len(search.calls) == 3
