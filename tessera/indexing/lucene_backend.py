"""BM25 over a Lucene index built and searched by Anserini (Porter stemming, English stopwords),
so Tessera's BM25 is exactly pyserini's BM25.

Tessera calls the Java classes pyserini wraps (`SimpleIndexer`, `SimpleSearcher`) directly:
importing pyserini's Python wrappers (`pyserini.search.lucene`) also imports torch and
transformers for its neural searchers, about 13 s before a one-shot BM25 query could start.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tessera.data.document import Document
from tessera.indexing.jvm import java_class
from tessera.models.encoder import BM25

FOLDER = "lucene"
THREADED_FROM = 100_000  # documents


def indexing_threads(count: int) -> int:
    """One Lucene writer thread below `THREADED_FROM` documents: its index is one segment, like
    pyserini's one-thread IndexCollection build, and searches it as fast (two threads wrote two
    segments, and LISA's queries took 1.22x as long); larger corpora gain more from parallel
    indexing than they lose to the extra segments, which Lucene's merge policy then merges."""
    return 1 if count < THREADED_FROM else max(1, min(4, os.cpu_count() or 1))


def build_lucene_index(documents: Iterable[Document], root: Path, count: int, batch: int = 1000) -> None:
    """Index `contents` (title + text) of `count` documents under their ids; raw text stays in
    the docstore."""
    threads = indexing_threads(count)
    indexer = java_class("io.anserini.index.SimpleIndexer")(str(root / FOLDER), False, threads)
    make = java_class("io.anserini.collection.JsonCollection$Document").fromFields
    pending: list = []
    for doc in documents:
        pending.append(make(doc.id, doc.contents))
        if len(pending) == batch:
            indexer.addJsonDocuments(pending)
            pending = []
    if pending:
        indexer.addJsonDocuments(pending)
    indexer.close()


class LuceneBackend:
    supports_remove = False
    on_gpu = False

    def __init__(self, root: Path, params: BM25):
        self.searcher = java_class("io.anserini.search.SimpleSearcher")(str(root / FOLDER))
        self.searcher.set_bm25(float(params.k1), float(params.b))

    def search(self, queries: list[str], k: int) -> list[list[tuple[str, float]]]:
        """Ranked (doc id, score) lists, one per query, in query order."""
        if len(queries) == 1:  # a thread pool costs more than it saves for one query
            return [[(hit.docid, float(hit.score)) for hit in self.searcher.search(queries[0], int(k))]]
        array_list = java_class("java.util.ArrayList")
        texts, qids = array_list(), array_list()
        for qid, query in enumerate(queries):
            texts.add(query)
            qids.add(str(qid))
        threads = max(1, min(8, os.cpu_count() or 1))
        found = self.searcher.batch_search(texts, qids, int(k), threads)
        results = {entry.getKey(): entry.getValue() for entry in found.entrySet().toArray()}
        return [
            [(hit.docid, float(hit.score)) for hit in results.get(str(qid), [])]
            for qid in range(len(queries))
        ]
