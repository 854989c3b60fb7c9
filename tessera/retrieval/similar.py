"""More like this: the documents of an index nearest one of its own documents (Elasticsearch's
`more_like_this`, Lucene's MoreLikeThis, a "similar documents" link under a result).

- a faiss index of one vector a document: its stored vector searched as the query, so the
  neighbours are those of the index's own space (exact on Flat, as approximate as the kind's
  search otherwise; PQ kinds: the decoded vector);
- every other kind (BM25, token, chunked, binary): the document's first `SIMILAR_WORDS` words
  (title and body) searched as a query (a long query is cut, as MoreLikeThis keeps a few terms;
  a ColBERT-style encoder reads only its own query length of them); a document without words
  (Cranfield has two), or with none BM25 keeps (stopwords, punctuation), has no neighbours
  there, with a warning.
The document itself is left out."""

from __future__ import annotations

import warnings
from dataclasses import replace

from tessera.errors import TesseraError, TesseraWarning
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index, check_search

SIMILAR_WORDS = 256


def similar(index: Index, doc_id: str, k: int = 10, with_text: bool = False) -> list[Hit]:
    """The k documents nearest `doc_id`, best first (ranks 1..k)."""
    check_search([], k)  # k alone: an empty id is an unknown document, below
    doc = index.document(doc_id)
    if doc is None:
        raise TesseraError(f"no document '{doc_id}' in {index.root}", field="doc_id")
    words = doc.contents.split()[:SIMILAR_WORDS]
    if not words:  # its stored vector is the zero vector (or a PQ code of it): like nothing
        warnings.warn(TesseraWarning(f"document '{doc_id}' has no words to search by"), stacklevel=2)
        found = []
    elif (vector := index.stored_vectors([doc_id]) if index.manifest.metric == "ip" else None) is not None:
        found = index.search_vectors(vector, k + 1)[0]
    else:
        found = index.search(" ".join(words), k + 1)
        if not found:  # not even itself: BM25 kept no term of it (stopwords, punctuation)
            warnings.warn(
                TesseraWarning(f"document '{doc_id}' has no words to search by (none but stopwords)"),
                stacklevel=2,
            )
    hits = [replace(h, rank=rank) for rank, h in enumerate((h for h in found if h.doc_id != doc_id), 1)][:k]
    return index.with_text([hits])[0] if with_text else hits
