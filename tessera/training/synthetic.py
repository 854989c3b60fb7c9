"""Synthetic training queries: an LLM writes a query for a document, a retriever checks it.

After doc2query, InPars (Bonifacio et al. 2022) and Promptagator (Dai et al. 2022): a chat LLM
(the bundled SmolLM2-135M-Instruct by default, any `Generator`) reads a document and writes one
short query it answers. The prompt is few-shot when the split has judged training queries
(a few (document, query) pairs as earlier chat turns, so the LLM copies the collection's own
query style), zero-shot otherwise. A generated query is kept only if its source document
comes back in the top `top_k` for it from a retriever of the corpus (round-trip consistency,
Promptagator's filter): a query the retriever cannot map back to its document is either too
vague or wrong.

Generation is slow, so every answer is appended to a JSONL cache (one per corpus, generator
and prompt) as soon as its batch finishes: an interrupted run resumes where it stopped, and a
second training on the same corpus costs nothing. Documents are taken in a fixed hash order,
so asking for more documents later extends the same sample.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tessera import config
from tessera.data.corpus import Corpus
from tessera.data.datasets import EvalDataset
from tessera.data.document import Document
from tessera.durable import JsonLines, check_outputs, write_text_atomic
from tessera.errors import DatasetError, TesseraError, TesseraWarning
from tessera.openai_http import is_url
from tessera.progress import progress_bar

if TYPE_CHECKING:
    from tessera.rag.generators import Generator
    from tessera.retrieval.index import Index

PROMPT_VERSION = 1  # part of the cache key: a changed prompt never reuses old answers
SYSTEM = "You write search queries. Reply with one short query and nothing else."
INSTRUCTION = "Write a short search query that this document answers.\n\nDocument: "
DOCUMENT_WORDS = 100  # words of the target document shown: prefill dominates the cost on a CPU
SHOT_WORDS = 40  # words of each example document
MAX_SHOTS = 3
MIN_DOCUMENT_WORDS = 8  # shorter documents give no query worth training on
MIN_QUERY_WORDS, MAX_QUERY_WORDS = 2, 32
MAX_NEW_TOKENS = 24  # a query is short; a 135M model that has not stopped by then is rambling
_SENTENCE_END = re.compile(r"[?;!]|\.(?:\s|$)")
_PREFIX = re.compile(r"^\s*(?:(?:search\s+)?query\s*\d*\s*[:\-]\s*)+", re.IGNORECASE)


@dataclass(frozen=True)
class SyntheticQuery:
    doc_id: str
    query: str


def _words(text: str, limit: int) -> str:
    return " ".join(text.split()[:limit])


def few_shot_examples(
    data: EvalDataset | None, texts: dict[str, str], shots: int = MAX_SHOTS
) -> list[tuple[str, str]]:
    """Up to `shots` (document excerpt, query) pairs from judged queries, in a fixed order.

    Queries are taken by the hash of their id, each with its first relevant document whose
    text is known; no document or query is used twice.
    """
    if data is None or shots < 1:
        return []
    chosen: list[tuple[str, str]] = []
    used: set[str] = set()
    for query_id in sorted(data.qrels, key=lambda qid: hashlib.sha256(qid.encode()).hexdigest()):
        judged = data.qrels[query_id]
        relevant = [d for d, grade in judged.items() if grade > 0 and d in texts and d not in used]
        if not relevant or query_id not in data.queries:
            continue
        used.add(relevant[0])
        chosen.append((_words(texts[relevant[0]], SHOT_WORDS), " ".join(data.queries[query_id].split())))
        if len(chosen) == shots:
            break
    return chosen


def build_chat(document: str, shots: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """The chat the LLM answers: system line, each shot as a user/assistant turn, the document."""
    messages = [{"role": "system", "content": SYSTEM}]
    for text, query in shots:
        messages += [
            {"role": "user", "content": INSTRUCTION + text},
            {"role": "assistant", "content": query},
        ]
    messages.append({"role": "user", "content": INSTRUCTION + _words(document, DOCUMENT_WORDS)})
    return messages


def clean_query(raw: str, shots: Sequence[tuple[str, str]] = ()) -> str | None:
    """The query in an LLM answer: its first sentence of its first non-empty line, without
    `Query:` labels or quotes. None when that is too short or too long to be a query, or is
    an example query copied back (small models do)."""
    line = next((part.strip() for part in raw.splitlines() if part.strip()), "")
    line = _PREFIX.sub("", line).strip()
    end = _SENTENCE_END.search(line)
    if end:  # small models run on into a second sentence or a repeated list
        line = line[: end.start() + (1 if line[end.start()] == "?" else 0)]
    words = line.strip().strip("\"'`*").split()
    query = " ".join(words)
    copied = {" ".join(q.split()).rstrip(" .?").lower() for _, q in shots}
    if not MIN_QUERY_WORDS <= len(words) <= MAX_QUERY_WORDS or query.rstrip(" .?").lower() in copied:
        return None
    return query


def sample_documents(documents: Iterable[Document], max_docs: int | None) -> list[Document]:
    """Documents long enough to query, in sha256-of-id order, at most `max_docs` of them.

    The order does not depend on the corpus order or size, so a larger `max_docs` later keeps
    every document of the smaller sample (and its cached query).
    """
    usable = [doc for doc in documents if len(doc.contents.split()) >= MIN_DOCUMENT_WORDS]
    usable.sort(key=lambda doc: hashlib.sha256(doc.id.encode()).hexdigest())
    return usable if max_docs is None else usable[:max_docs]


class QueryCache:
    """Generated queries of one (corpus, generator, prompt), appended as they are made.

    A line is `{"doc_id": ..., "query": ... | null}` (null: the answer held no usable query, so
    the document is not asked again). A last line cut off by a crash is dropped on open.
    """

    def __init__(self, path: Path):
        self.path = path
        self.journal = JsonLines(path)
        self.answers: dict[str, str | None] = {}
        for number, row in enumerate(self.journal.read(), start=1):
            try:
                self.answers[str(row["doc_id"])] = row["query"]
            except KeyError:
                raise DatasetError("not a synthetic-query line", file=path, line=number) from None

    def add(self, answers: dict[str, str | None]) -> None:
        self.journal.append({"doc_id": doc_id, "query": query} for doc_id, query in answers.items())
        self.answers.update(answers)


def cache_path(corpus: Corpus, generator_name: str, shots: Sequence[tuple[str, str]]) -> Path:
    """TESSERA_CACHE_DIR/synthetic/<corpus>-<fingerprint>-<generator>-<prompt hash>.jsonl"""
    prompt = json.dumps([PROMPT_VERSION, SYSTEM, INSTRUCTION, DOCUMENT_WORDS, list(shots)])
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(corpus.name).name or corpus.name)
    generator = re.sub(r"[^A-Za-z0-9._-]+", "_", generator_name)
    return config.cache_dir() / "synthetic" / f"{stem}-{corpus.fingerprint}-{generator}-{digest}.jsonl"


def generate_queries(
    documents: Sequence[Document],
    generator: Generator,
    cache: QueryCache,
    shots: Sequence[tuple[str, str]] = (),
    *,
    batch_size: int = 16,
    show_progress: bool = True,
) -> list[SyntheticQuery]:
    """One query per document (those whose answer held one), generating only what `cache` lacks."""
    todo = [doc for doc in documents if doc.id not in cache.answers]
    with progress_bar(show_progress) as bar:
        task = bar.add_task("synthetic queries", total=len(documents)) if bar else None
        if bar:
            bar.update(task, advance=len(documents) - len(todo))
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            chats = [build_chat(doc.contents, shots) for doc in batch]
            answers = generator.generate_batch(chats, MAX_NEW_TOKENS)
            cache.add({doc.id: clean_query(text, shots) for doc, text in zip(batch, answers, strict=True)})
            if bar:
                bar.update(task, advance=len(batch))
    return [
        SyntheticQuery(doc.id, query) for doc in documents if (query := cache.answers.get(doc.id)) is not None
    ]


def round_trip_filter(queries: Sequence[SyntheticQuery], index: Index, top_k: int) -> list[SyntheticQuery]:
    """The queries whose own document `index` ranks in its top `top_k` for them."""
    if top_k < 1:
        raise TesseraError("must be at least 1", field="synthetic_top_k")
    kept: list[SyntheticQuery] = []
    for start in range(0, len(queries), 512):
        chunk = queries[start : start + 512]
        for item, hits in zip(chunk, index.batch_search([q.query for q in chunk], top_k), strict=True):
            if any(hit.doc_id == item.doc_id for hit in hits):
                kept.append(item)
    return kept


def read_query_file(path: Path) -> list[SyntheticQuery]:
    """Queries written by `tessera data synth-queries` (JSONL of doc_id and query)."""
    found: list[SyntheticQuery] = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                doc_id, query = str(row["doc_id"]), row["query"]
            except (ValueError, KeyError, TypeError):
                what = "expected a JSON object with doc_id and query"
                raise DatasetError(what, file=path, line=number) from None
            if not isinstance(query, str) or not query.strip():
                raise DatasetError("query must be a non-empty string", file=path, line=number, field="query")
            found.append(SyntheticQuery(doc_id, query))
    return found


@dataclass(frozen=True)
class SyntheticSettings:
    """How the synthetic pair source makes its queries (TrainOptions carries these)."""

    generator: str = "local"  # a generator spec (local, local:MODEL, URL) or a synth-queries file
    max_docs: int | None = 300  # documents asked (a hash-ordered sample; the measured default); None: all
    top_k: int = 10  # round-trip: the document must be in the filter's top k for its query
    filter: str = "bm25"  # bm25[:k1=..,b=..] | minilm | INDEX_DIR | none
    batch_size: int = 16

    def __post_init__(self) -> None:  # before the generation, which takes minutes
        if self.max_docs is not None and self.max_docs < 1:
            raise TesseraError(
                f"must be at least 1, or None for all documents (0 on the command line), got {self.max_docs}",
                field="synthetic_docs",
            )
        if self.top_k < 1:
            raise TesseraError("must be at least 1", field="synthetic_top_k")


def check_synthetic_spec(spec: str) -> None:
    """The synthetic source's generator or query file, checked where the source is used, before
    the generation (a missing file read as a generator's name was "unknown generator")."""
    generator = spec in ("none", "local") or (spec.startswith("local:") and spec != "local:") or is_url(spec)
    if not generator and not Path(spec).expanduser().is_file():
        raise TesseraError(
            f"'{spec}' is no file of queries (tessera data synth-queries), nor a generator: "
            "none, local, local:MODEL or http(s)://HOST/v1[#MODEL]",
            field="synthetic",
        )


def synthetic_queries(
    corpus: Corpus,
    documents: Sequence[Document],
    data: EvalDataset | None,
    texts: dict[str, str],
    settings: SyntheticSettings = SyntheticSettings(),
    show_progress: bool = True,
) -> tuple[list[SyntheticQuery], int]:
    """(kept queries, generated queries) for `documents` of `corpus`; see the module docstring.

    `data` and `texts` (judged documents' texts) give the few-shot examples; a file written by
    `tessera data synth-queries` is used as it is, neither generated nor filtered again.
    """
    path = Path(settings.generator).expanduser()
    if path.is_file():
        known = {doc.id for doc in documents}
        read = read_query_file(path)
        queries = [q for q in read if q.doc_id in known]
        if len(queries) < len(read):
            missing = next(q.doc_id for q in read if q.doc_id not in known)
            warnings.warn(
                TesseraWarning(
                    f"{len(read) - len(queries)} of {len(read)} queries are of documents not in the corpus "
                    f"(e.g. '{missing}'); left out",
                    file=path,
                ),
                stacklevel=2,
            )
        return queries, len(read)  # a file's queries were filtered when it was written
    from tessera.rag.generators import open_generator
    from tessera.training.negatives import check_negatives, negatives_index

    check_negatives(settings.filter)
    generator = open_generator(settings.generator)
    if generator is None:
        raise TesseraError("the synthetic source needs a generator, not 'none'", field="synthetic")
    if hasattr(generator, "repetition_penalty"):
        generator.repetition_penalty = 1.0  # a query should repeat the document's own terms
    sample = sample_documents(documents, settings.max_docs)
    if not sample:  # not "0 of 0 queries kept", which reads as a run that worked
        why = f"no document of the corpus has the {MIN_DOCUMENT_WORDS} words a query is written from"
        raise TesseraError(why, field="corpus")
    shots = few_shot_examples(data, texts)
    cache = QueryCache(cache_path(corpus, generator.name, shots))
    generated = generate_queries(
        sample,
        generator,
        cache,
        shots,
        batch_size=settings.batch_size,
        show_progress=show_progress,
    )
    index_path = negatives_index(settings.filter, corpus, show_progress)
    if index_path is None:
        return generated, len(generated)
    from tessera.retrieval.index import Index

    return round_trip_filter(generated, Index.load(index_path), settings.top_k), len(generated)


def write_query_file(
    corpus_spec: str | Path,
    output: str | Path,
    *,
    dataset: str | Path | None = None,
    split: str = "train",
    settings: SyntheticSettings | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> tuple[Path, int, int]:
    """`tessera data synth-queries`: the kept queries of a corpus as a JSONL file a training's
    `synthetic` option can read back; (path, kept, generated). `dataset` (with `split`) gives
    the few-shot examples."""
    from tessera.data.corpus import open_corpus
    from tessera.training.examples import judged_split

    target = Path(output).expanduser()
    # before the LLM loads: never the corpus read, a folder or a file inside an index
    check_outputs({"output": target}, inputs=[corpus_spec, *([dataset] if dataset is not None else [])])
    if target.exists() and not overwrite:
        raise TesseraError("already exists (use --overwrite to replace it)", file=target)
    check_synthetic_spec((settings or SyntheticSettings()).generator)
    corpus = open_corpus(corpus_spec)
    documents = list(corpus)
    data = judged_split(dataset, split, ("synthetic",)) if dataset is not None else None
    wanted = {doc_id for judged in data.qrels.values() for doc_id in judged} if data else set()
    texts = {doc.id: doc.contents for doc in documents if doc.id in wanted}
    kept, generated = synthetic_queries(
        corpus, documents, data, texts, settings or SyntheticSettings(), show_progress
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        target, "".join(json.dumps({"doc_id": q.doc_id, "query": q.query}) + "\n" for q in kept)
    )
    return target, len(kept), generated
