"""`--max-docs`: a deterministic sample of a corpus for smoke runs of a suite.

Judged documents are kept first, so the sample still has answers to find; the rest are chosen by
a hash of their id (the same sample on every machine and every run), in one streaming pass that
holds at most `max_docs` documents. Numbers from a sample are labelled as such in the report.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterable
from pathlib import Path

from tessera.data.corpus import open_corpus
from tessera.durable import write_text_atomic


def _rank(doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "big")


def sample_corpus(corpus: str, judged: Iterable[str], max_docs: int, target: Path) -> tuple[Path, int, int]:
    """Write at most `max_docs` documents of `corpus` as JSONL at `target`; (path, kept, total).

    Reused when `target` and its `.json` count file exist (both are written atomically) and were
    made from the same corpus file and judged documents; an edited corpus is sampled again.
    """
    counts = target.with_suffix(".json")
    wanted = set(judged)
    made_from = {
        "input": open_corpus(corpus).fingerprint,
        "judged": hashlib.sha256("\n".join(sorted(wanted)).encode()).hexdigest()[:16],
    }
    if target.is_file() and counts.is_file():
        stored = json.loads(counts.read_text())
        if all(stored.get(key) == value for key, value in made_from.items()):
            return target, int(stored["kept"]), int(stored["total"])
    heap: list[tuple[int, int, int, dict[str, str]]] = []  # (-priority, -rank, ordinal, record): a max-heap
    total = 0
    for ordinal, doc in enumerate(open_corpus(corpus)):
        total += 1
        key = (0 if doc.id in wanted else 1, _rank(doc.id))
        item = (-key[0], -key[1], ordinal, {"_id": doc.id, "title": doc.title, "text": doc.text})
        if len(heap) < max_docs:
            heapq.heappush(heap, item)
        elif item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)
    kept = sorted(heap, key=lambda entry: entry[2])  # corpus order
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, "".join(json.dumps(entry[3], ensure_ascii=False) + "\n" for entry in kept))
    done = {"kept": len(kept), "total": total, **made_from}
    write_text_atomic(counts, json.dumps(done) + "\n")  # last: marks it done
    return target, len(kept), total
