"""BM25 over a Lucene index built and searched by pyserini (Anserini's defaults: Porter
stemming, English stopwords), so Tessera's BM25 is exactly pyserini's BM25."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tessera.data.document import Document
from tessera.indexing.jvm import pyserini
from tessera.models.encoder import BM25

FOLDER = "lucene"


def build_lucene_index(documents: Iterable[Document], root: Path, batch: int = 1000) -> None:
    """Index `contents` (title + text) under the document id; raw text stays in the docstore."""
    pyserini()
    from pyserini.index.lucene import LuceneIndexer

    indexer = LuceneIndexer(str(root / FOLDER), threads=max(1, min(4, os.cpu_count() or 1)))
    pending: list[dict[str, str]] = []
    for doc in documents:
        pending.append({"id": doc.id, "contents": doc.contents})
        if len(pending) == batch:
            indexer.add_batch_dict(pending)
            pending = []
    if pending:
        indexer.add_batch_dict(pending)
    indexer.close()


class LuceneBackend:
    supports_remove = False
    on_gpu = False

    def __init__(self, root: Path, params: BM25):
        pyserini()
        from pyserini.search.lucene import LuceneSearcher

        self.searcher = LuceneSearcher(str(root / FOLDER))
        self.searcher.set_bm25(params.k1, params.b)

    def search(self, queries: list[str], k: int) -> list[list[tuple[str, float]]]:
        """Ranked (doc id, score) lists, one per query, in query order."""
        if len(queries) == 1:  # a thread pool costs more than it saves for one query
            return [[(hit.docid, float(hit.score)) for hit in self.searcher.search(queries[0], k=k)]]
        qids = [str(i) for i in range(len(queries))]
        threads = max(1, min(8, os.cpu_count() or 1))
        results = self.searcher.batch_search(queries, qids, k=k, threads=threads)
        return [[(hit.docid, float(hit.score)) for hit in results.get(qid, [])] for qid in qids]
