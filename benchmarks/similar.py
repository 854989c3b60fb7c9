"""Are `tessera similar`'s neighbours related documents, and which index finds them better?

Relatedness judged by the collections' own judgments (the cluster hypothesis: documents relevant
to the same query are alike): for every document judged relevant to some query of the four
original collections, its 5 nearest documents by `retrieval.similar` from BM25 (its first 256
words as a query) and from MiniLM flat (its stored vector), and the share of them judged
relevant to a query it is relevant to (P@1, P@5), ± standard error over documents; the
baseline is the chance of a random other judged document (the same share over all pairs).

    TESSERA_DATA_DIR=../shared/data python benchmarks/similar.py [--work DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.data.datasets import load_eval_dataset
from tessera.eval.significance import mean_se
from tessera.retrieval.index import Index
from tessera.retrieval.similar import similar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rerank import built_indexes  # noqa: E402  (the BM25 and MiniLM indexes every such benchmark shares)

K = 5


def co_relevant(collection: str) -> tuple[dict[str, set[str]], float]:
    """Each judged-relevant document's queries, and the chance that two of them share one."""
    data = load_eval_dataset(collection)
    queries: dict[str, set[str]] = defaultdict(set)
    for qid, judged in data.qrels.items():
        for doc, grade in judged.items():
            if grade > 0:
                queries[doc].add(qid)
    docs = list(queries)
    pairs = sum(len(queries[a] & queries[b]) > 0 for i, a in enumerate(docs) for b in docs[i + 1 :])
    return dict(queries), pairs / max(1, len(docs) * (len(docs) - 1) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--collections", nargs="+", default=["cranfield", "glasgow/cisi", "glasgow/medline", "glasgow/lisa"]
    )
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "similar")
    args = parser.parse_args()
    console = Console(width=160)
    table = Table(title=f"neighbours judged relevant to a query their document is relevant to (top {K})")
    columns = (
        "collection (judged docs)",
        "index",
        "P@1 ± SE",
        "P@5 ± SE",
        "/ chance",
        "Δ P@5 vs BM25 ± paired SE",
    )
    for column in (*columns, "ms/doc"):
        table.add_column(column, justify="left" if column.startswith(("coll", "index")) else "right")
    for collection in args.collections:
        queries, chance = co_relevant(collection)
        root = args.work / collection.replace("/", "-")
        per_doc: dict[str, np.ndarray] = {}
        paths = built_indexes(collection, root, console)
        for n, (name, path) in enumerate((("BM25", paths["BM25"]), ("MiniLM flat", paths["MiniLM"]))):
            index = Index.load(path)
            docs = [d for d in queries if index.document(d) is not None]
            started = time.perf_counter()
            found = {d: similar(index, d, K) for d in docs}
            ms = 1000 * (time.perf_counter() - started) / len(docs)
            hits = {d: [bool(queries[d] & queries.get(h.doc_id, set())) for h in found[d]] for d in docs}
            # a document with no neighbours (no words to search with) counts as a miss
            p1 = mean_se(np.array([float(h[0]) if h else 0.0 for h in hits.values()]))
            per_doc[name] = np.array([sum(hits[d]) / K for d in sorted(hits)])
            p5 = mean_se(per_doc[name])
            label = f"{collection} ({len(docs)}; chance {chance:.3f})" if n == 0 else ""
            cells = [f"{p1[0]:.3f} ± {p1[1]:.3f}", f"{p5[0]:.3f} ± {p5[1]:.3f}", f"{p5[0] / chance:.1f}x"]
            delta = mean_se(per_doc[name] - per_doc["BM25"]) if n else None
            cells.append(f"{delta[0]:+.3f} ± {delta[1]:.3f}" if delta else "")
            table.add_row(label, name, *cells, f"{ms:.1f}")
    console.print(table)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
