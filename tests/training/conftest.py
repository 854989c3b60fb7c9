"""Fixtures of the encoder trainers' tests: one torch thread, and a tiny real training set."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread, here and in CLI subprocesses: on a small shared machine two threads
    spinning against other processes make these tiny steps several times slower."""
    import torch

    threads, saved = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(threads)
    if saved is None:
        os.environ.pop("OMP_NUM_THREADS")
    else:
        os.environ["OMP_NUM_THREADS"] = saved


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEIR folder: 8 Cranfield training queries, one relevant document each, 8 other documents."""
    source = Path(os.environ["TESSERA_DATA_DIR"]) / "cranfield-beir"
    if not (source / "corpus.jsonl").is_file():
        pytest.skip(f"cranfield-beir not found in {source.parent}")
    root = tmp_path_factory.mktemp("tiny")
    lines = (source / "qrels" / "train.tsv").read_text().splitlines()[1:]
    pairs: dict[str, str] = {}
    for query, doc, grade in (line.split("\t") for line in lines):
        if int(grade) > 0 and query not in pairs and doc not in pairs.values() and len(pairs) < 8:
            pairs[query] = doc
    docs = [json.loads(line) for line in (source / "corpus.jsonl").open()]
    kept = [d for d in docs if d["_id"] in pairs.values()] + [d for d in docs[:40] if d["text"]][:8]
    with (root / "corpus.jsonl").open("w") as sink:
        for doc in kept:
            sink.write(json.dumps({**doc, "text": " ".join(doc["text"].split()[:60])}) + "\n")
    queries = [json.loads(line) for line in (source / "queries.jsonl").open()]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries if q["_id"] in pairs))
    (root / "qrels").mkdir()
    rows = "".join(f"{query}\t{doc}\t1\n" for query, doc in pairs.items())
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return root
