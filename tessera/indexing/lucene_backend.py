"""BM25 over a Lucene index built and searched by Anserini (Porter stemming, English stopwords),
so Tessera's BM25 is exactly pyserini's BM25.

The index stores document vectors (term frequencies per document), which RM3 and Rocchio
expansion read, as pyserini's prebuilt `msmarco-v1-passage` index does for `--rm3`.

Tessera calls the Java classes pyserini wraps (`SimpleIndexer`, `SimpleSearcher`) directly:
importing pyserini's Python wrappers (`pyserini.search.lucene`) also imports torch and
transformers for its neural searchers, about 13 s before a one-shot BM25 query could start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable
from pathlib import Path

from tessera.data.document import Document
from tessera.errors import IndexFormatError
from tessera.indexing.jvm import java_class
from tessera.models.bm25 import BM25

FOLDER = "lucene"
CONTENTS_FIELD, TITLE_FIELD = "contents", "title"
THREADED_FROM = 100_000  # documents
# Lucene refuses a query of more than 1,024 clauses, and each distinct query term is one clause a
# field searched: a pasted paragraph of ~500 distinct words failed. A static JVM setting, raised
# again (at no cost) by every backend opened.
MAX_CLAUSES = 1 << 16


def indexing_threads(count: int) -> int:
    """One Lucene writer thread below `THREADED_FROM` documents: its index is one segment, like
    pyserini's one-thread IndexCollection build, and searches it as fast (two threads wrote two
    segments, and LISA's queries took 1.22x as long); larger corpora gain more from parallel
    indexing than they lose to the extra segments, which Lucene's merge policy then merges."""
    return 1 if count < THREADED_FROM else max(1, min(4, os.cpu_count() or 1))


def _indexer_args(root: Path, count: int):
    """Anserini's indexing arguments: one field per document part (`contents`, and `title`
    alone for weighting at search time), document vectors stored. Parsed from a command line,
    as Anserini's own indexer does, since the Java bridge cannot assign the `fields` array."""
    args = java_class("io.anserini.index.IndexCollection$Args")()
    line = java_class("java.util.ArrayList")()
    for item in (
        *("-input", str(root), "-collection", "JsonCollection"),  # required by the parser, unused
        *("-index", str(root / FOLDER), "-threads", str(indexing_threads(count))),
        *("-storeDocvectors", "-fields", TITLE_FIELD),
    ):
        line.add(item)
    java_class("org.kohsuke.args4j.CmdLineParser")(args).parseArgument(line)
    return args


def build_lucene_index(documents: Iterable[Document], root: Path, count: int, batch: int = 1000) -> None:
    """Index `contents` (title + text) of `count` documents under their ids, and the title
    again as its own field, which `BM25.title` weights at search time; raw text stays in the
    docstore."""
    indexer = java_class("io.anserini.index.SimpleIndexer")(_indexer_args(root, count))
    make = java_class("io.anserini.collection.JsonCollection$Document").fromString
    pending: list = []
    for doc in documents:
        pending.append(
            make(json.dumps({"id": doc.id, "contents": doc.contents, TITLE_FIELD: doc.title or ""}))
        )
        if len(pending) == batch:
            indexer.addJsonDocuments(pending)
            pending = []
    if pending:
        indexer.addJsonDocuments(pending)
    indexer.close()


def field_weights(settings: BM25) -> dict[str, float]:
    """Lucene field -> the weight of its BM25 score in a document's score."""
    return {CONTENTS_FIELD: 1.0, **({TITLE_FIELD: settings.title} if settings.title else {})}


class LuceneBackend:
    supports_remove = False
    on_gpu = False

    def __init__(self, root: Path, settings: BM25):
        java_class("org.apache.lucene.search.IndexSearcher").setMaxClauseCount(MAX_CLAUSES)
        from jnius import JavaException

        try:
            self.searcher = java_class("io.anserini.search.SimpleSearcher")(str(root / FOLDER))
        except JavaException as exc:  # segment files of two versions, opened while an update publishes
            detail = " ".join(str(exc).split())[:300]
            raise IndexFormatError(f"Lucene cannot open the index ({detail})", file=root / FOLDER) from None
        self.searcher.set_bm25(float(settings.k1), float(settings.b))
        self.expands = bool(settings.prf)
        self.fields = None  # one contents field: Anserini's plain search
        if settings.title:
            self._weigh_title(root, settings)
        if settings.prf:
            self._expand(root, settings)

    def _weigh_title(self, root: Path, settings: BM25) -> None:
        """Search the contents and title fields with their weights (Anserini's `search_fields`,
        which RM3 and Rocchio expand as pyserini's `search(q, fields=...)` does)."""
        indexed = java_class("org.apache.lucene.index.FieldInfos").getIndexedFields(self.searcher.reader)
        if TITLE_FIELD not in set(indexed):
            self.searcher.close()
            raise IndexFormatError(
                f"title={settings.title:g} weighs the title field, which this BM25 index does not have "
                "(built before Tessera indexed it): rebuild it with `tessera index`",
                file=root / FOLDER,
                field="title",
            )
        weights = java_class("java.util.HashMap")()
        for name, weight in field_weights(settings).items():
            weights.put(name, java_class("java.lang.Float")(float(weight)))
        self.fields = weights

    def _expand(self, root: Path, settings: BM25) -> None:
        """Turn on RM3 or Rocchio; both read the feedback documents' stored term vectors."""
        if self.searcher.reader.maxDoc() and self.searcher.reader.getTermVectors(0) is None:
            self.searcher.close()
            raise IndexFormatError(
                f"prf={settings.prf} reads document vectors, which this BM25 index does not store "
                "(built before Tessera stored them): rebuild it with `tessera index`",
                file=root / FOLDER,
            )
        terms, docs = int(settings.fb_terms), int(settings.fb_docs)
        if settings.prf == "rm3":  # (collection class, terms, docs, weight, debug, filter terms)
            self.searcher.set_rm3(None, terms, docs, float(settings.original_query_weight), False, True)
        else:  # top terms/docs, bottom terms/docs (unused without negatives), alpha, beta, gamma
            self.searcher.set_rocchio(
                None, terms, docs, terms, docs, float(settings.alpha), float(settings.beta), 0.0, False, False
            )

    def search(self, queries: list[str], k: int) -> list[list[tuple[str, float]]]:
        """Ranked (doc id, score) lists, one per query, in query order."""
        if len(queries) == 1:  # a thread pool costs more than it saves for one query
            if self.fields is not None:
                hits = self.searcher.search_fields(queries[0], self.fields, int(k))
            else:
                hits = self.searcher.search(queries[0], int(k))
            return [[(hit.docid, float(hit.score)) for hit in hits]]
        array_list = java_class("java.util.ArrayList")
        texts, qids = array_list(), array_list()
        for qid, query in enumerate(queries):
            texts.add(query)
            qids.add(str(qid))
        threads = max(1, min(8, os.cpu_count() or 1))
        if self.fields is not None:
            found = self.searcher.batch_search_fields(texts, qids, int(k), threads, self.fields)
        else:
            found = self.searcher.batch_search(texts, qids, int(k), threads)
        results = {entry.getKey(): entry.getValue() for entry in found.entrySet().toArray()}
        return [
            [(hit.docid, float(hit.score)) for hit in results.get(str(qid), [])]
            for qid in range(len(queries))
        ]

    def search_within(
        self, queries: list[str], k: int, ids: Collection[str]
    ) -> list[list[tuple[str, float]]]:
        """Ranked (doc id, score) lists among `ids` only: the bag-of-words query `search` runs, AND
        a filter clause on the id field (Lucene's TermInSetQuery; a filter clause does not score,
        so scores equal `search`'s). Without expansion: RM3 and Rocchio run on query strings."""
        if self.expands:
            raise ValueError("search_within runs without RM3/Rocchio expansion")
        bytes_ref, terms = java_class("org.apache.lucene.util.BytesRef"), java_class("java.util.ArrayList")()
        for doc_id in ids:
            terms.add(bytes_ref(doc_id.encode()))
        only = java_class("org.apache.lucene.search.TermInSetQuery")("id", terms)
        occur = java_class("org.apache.lucene.search.BooleanClause$Occur")
        builder = java_class("org.apache.lucene.search.BooleanQuery$Builder")
        words = java_class("io.anserini.search.query.BagOfWordsQueryGenerator")()
        analyzer = java_class("io.anserini.analysis.DefaultEnglishAnalyzer").newDefaultInstance()
        found = []
        for text in queries:
            query = builder()
            words_query = (
                words.buildQuery(CONTENTS_FIELD, analyzer, text)
                if self.fields is None
                else words.buildQuery(self.fields, analyzer, text)
            )
            query.add(words_query, occur.MUST)
            query.add(only, occur.FILTER)
            found.append(
                [(hit.docid, float(hit.score)) for hit in self.searcher.search(query.build(), int(k))]
            )
        return found
