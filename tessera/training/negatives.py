"""Hard negatives mined with Tessera's own indexes (BM25 or dense) of the training corpus.

In-batch negatives are mostly easy; a document that a first-stage retriever ranks high for
the query but that is not relevant teaches the encoder what it still confuses. Negatives come
from a rank window (ranks `skip`+1 .. `skip`+`depth`, judged-relevant documents removed) and
are drawn at random within it: the very top ranks of an incompletely judged collection hold
unjudged relevant documents, which `skip` avoids. A document an example must avoid (its
query's judged-relevant documents; the source document of a self-supervised pair) is never
drawn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tessera import config
from tessera.data.corpus import Corpus
from tessera.errors import TesseraError
from tessera.models.bundled import BUNDLED
from tessera.models.registry import canonical_spec, is_lexical
from tessera.progress import progress_bar
from tessera.training.examples import TrainExample

if TYPE_CHECKING:
    from tessera.retrieval.index import Index

SEARCH_BATCH = 512


def _cache_name(corpus: Corpus, spec: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(corpus.name).name or corpus.name)
    return f"{stem}-{corpus.fingerprint}-{re.sub(r'[^A-Za-z0-9._=-]+', '_', spec)}"


def check_negatives(spec: str) -> None:
    """Refuse a `negatives` value that names neither `none`, an index directory, nor a model
    an index can be built with (before any slow work starts)."""
    if spec == "none" or Path(spec).expanduser().is_dir():
        return
    if is_lexical(spec):
        canonical_spec(spec)  # bad BM25 parameters raise here
    elif spec not in BUNDLED:
        raise TesseraError(
            f"'{spec}' is not an index directory, 'none', 'bm25[:k1=..,b=..]' or one of {', '.join(BUNDLED)}",
            field="negatives",
        )


def negatives_index(spec: str, corpus: Corpus, show_progress: bool = True) -> Path | None:
    """The index negatives come from: None for `none`, an existing index directory, or an
    index of `corpus` built once into TESSERA_CACHE_DIR/negatives for `bm25[:k1=..,b=..]`
    or a bundled encoder name (`minilm`)."""
    check_negatives(spec)
    if spec == "none":
        return None
    path = Path(spec).expanduser()
    if path.is_dir():
        return path.resolve()
    from tessera.indexing.builder import build_index

    spec = canonical_spec(spec)
    cached = config.cache_dir() / "negatives" / _cache_name(corpus, spec)
    if not cached.is_dir():
        build_index(corpus.name, cached, encoder=spec, show_progress=show_progress)
    return cached


def mine_negatives(
    index: Index,
    examples: Sequence[TrainExample],
    *,
    skip: int = 0,
    depth: int = 30,
    seed: int = 0,
    show_progress: bool = True,
) -> list[str | None]:
    """One negative document id per example (None when its window holds no allowed document).

    Each distinct query is searched once; draws are seeded and made in example order, so the
    same examples, index and seed give the same negatives.
    """
    if skip < 0 or depth < 1:
        raise TesseraError("skip must be >= 0 and depth >= 1", field="negatives")
    queries = list(dict.fromkeys(example.query for example in examples))
    k = skip + depth + max((len(example.exclude) for example in examples), default=0)
    ranked: dict[str, list[str]] = {}
    with progress_bar(show_progress, transient=True) as bar:
        task = bar.add_task("mining negatives", total=len(queries)) if bar else None
        for start in range(0, len(queries), SEARCH_BATCH):
            chunk = queries[start : start + SEARCH_BATCH]
            for query, hits in zip(chunk, index.batch_search(chunk, k), strict=True):
                ranked[query] = [hit.doc_id for hit in hits]
            if bar:
                bar.update(task, advance=len(chunk))
    rng = np.random.default_rng(seed)
    chosen: list[str | None] = []
    for example in examples:
        window = [doc_id for doc_id in ranked[example.query][skip:] if doc_id not in example.exclude][:depth]
        chosen.append(window[int(rng.integers(len(window)))] if window else None)
    return chosen


def document_texts(index: Index, doc_ids: Sequence[str | None]) -> dict[str, str]:
    """id -> the text an encoder sees (title + body), read from the index's doc store."""
    found = index.docstore.get(doc_id for doc_id in doc_ids if doc_id is not None)
    return {doc_id: doc.contents for doc_id, doc in found.items()}
