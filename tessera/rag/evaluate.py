"""`tessera eval-rag`: compression measured over a dataset's judged queries.

Per query: the plain prompt (top k passages), the compressed one, and the truncation baseline cut
to the compressed context's tokens; JSON top level `token_ratio` (compressed / plain prompt
tokens, mean over queries; the plain prompt's whitespace collapsed as every compressor writes
its output, so the ratio counts words left out: `raw_token_ratio` is against the plain prompt as
`--compress none` sends it, line breaks and indents included), `retention`,
`semantic_retention` (over queries with a judged-relevant passage in the top k, micro-averaged
over those passages; `retention.py` defines both), `truncation_retention` and
`truncation_semantic_retention`, and with a generator `answer_agreement` (mean MiniLM cosine
between the answers from the compressed and plain prompts).
Retention is relative to what retrieval found; `recall` (judged-relevant documents in the top k /
all judged relevant, mean over queries with one) and `kept_recall` (the same for those the
compressed context keeps) measure the whole chain, so retrievers can be compared
(`fuse`: hybrid retrieval; `search_params`: nprobe, BM25's prf, ... routed by index kind). With a
JSON path, an interrupted run resumes from its finished queries (measured under the same settings).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tessera.data.datasets import EvalDataset, load_eval_dataset
from tessera.durable import JsonLines, check_outputs, write_text_atomic
from tessera.errors import TesseraError
from tessera.indexing.manifest import sha256_file
from tessera.models.registry import load_encoder
from tessera.progress import quiet_bar
from tessera.rag.compressors.truncation import TruncationCompressor
from tessera.rag.generators import Generator, check_max_new_tokens, open_generator
from tessera.rag.passages import context_text, passage_blocks
from tessera.rag.pipeline import compression_tools, open_indexes, prepare
from tessera.rag.prompt import build_messages, order_blocks
from tessera.rag.retention import TermRetention, content_terms, semantic_kept
from tessera.retrieval.diversify import Mmr, as_mmr
from tessera.retrieval.fusion import check_retrieval
from tessera.retrieval.index import Index
from tessera.retrieval.rerank import RERANK_DEPTH, check_rerank_depth, load_reranker


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate_rag(
    index: Index | str | Path,
    dataset: str | Path | EvalDataset,
    split: str = "test",
    k: int = 10,
    compress: str = "crag",
    budget: int | None = None,
    order: str = "rank",
    generator: Generator | str | None = None,
    max_queries: int | None = None,
    max_new_tokens: int = 128,
    compressor_options: dict[str, Any] | None = None,
    json_path: str | Path | None = None,
    show_progress: bool = True,
    fuse: Sequence[Index | str | Path] = (),
    fusion: str = "rrf",
    weights: Sequence[float] | None = None,
    depth: int = 100,
    search_params: dict[str, float | str] | None = None,
    rerank: str | None = None,
    rerank_depth: int = RERANK_DEPTH,
    mmr: Mmr | float | None = None,
    per_document: int | None = None,
) -> dict[str, Any]:
    """Compress every judged query's context and measure what it kept (see the module doc);
    `rerank` picks each query's k passages from the first stage's `rerank_depth`, `mmr` for
    relevance and novelty (`retrieval.diversify`); a chunked index's context is its best
    passages, at most `per_document` of one document (None: RAG's default, one a document while
    k documents are there)."""
    check_retrieval(len(fuse), fusion, weights)
    check_rerank_depth(rerank_depth)
    check_max_new_tokens(max_new_tokens)
    if max_queries is not None and max_queries < 1:  # a slice would count from the end
        raise TesseraError(f"must be at least 1, got {max_queries}", field="max_queries")
    if json_path is not None:  # a folder there failed only after every query was measured
        check_outputs({"json": json_path}, inputs=[] if isinstance(dataset, EvalDataset) else [dataset])
    reranker = load_reranker(rerank) if rerank is not None else None
    mmr = as_mmr(mmr)
    index, *others = open_indexes(index, fuse, search_params)
    data = dataset if isinstance(dataset, EvalDataset) else load_eval_dataset(dataset, split)
    if not any(grade > 0 for judged in data.qrels.values() for grade in judged.values()):
        raise TesseraError(
            f"no judgment of split '{split}' marks a document relevant (every grade is 0 or less): "
            "nothing can be measured",
            field="split",
        )
    generator = open_generator(generator) if isinstance(generator, str) or generator is None else generator
    tools = compression_tools(index, generator)
    truncation = TruncationCompressor(tools)
    minilm = load_encoder("minilm").encode_docs
    terms = TermRetention(doc.title + "\n" + doc.text for doc in index.docstore.documents())
    qids = list(data.queries)[:max_queries]
    settings = {
        "indexes": [sha256_file(i.root / "manifest.json") for i in [index, *others]],
        "dataset": data.name,
        "options": [
            k,
            compress,
            budget,
            order,
            compressor_options,
            fusion,
            weights,
            depth,
            search_params or {},
            *([rerank, rerank_depth] if rerank else []),  # journals from before reranking stay valid
            *([asdict(mmr)] if mmr else []),
            *([{"per_document": per_document}] if per_document is not None else []),
        ],
        "generator": [getattr(generator, "name", None), max_new_tokens],
    }
    journal, done = _resume(json_path, json.loads(json.dumps(settings, default=repr)))
    rows = []
    with quiet_bar(show_progress) as bar:
        task = bar.add_task(f"eval-rag {compress}", total=len(qids), completed=sum(q in done for q in qids))
        for qid in qids:
            if qid in done:
                rows.append(done[qid])
                continue
            question = data.queries[qid]
            prompt = prepare(
                index,
                question,
                k,
                compress,
                budget,
                order,
                generator,
                compressor_options,
                fuse=others,
                fusion=fusion,
                weights=weights,
                depth=depth,
                rerank=reranker,
                rerank_depth=rerank_depth,
                mmr=mmr,
                per_document=per_document,
            )
            context = context_text(prompt.blocks)
            cut = truncation.compress(question, prompt.passages, tools.tokens.count(context))
            cut_context = context_text(cut)
            relevant = [p.full_text for p in prompt.passages if data.qrels[qid].get(p.doc_id, 0) > 0]
            relevant_vectors = minilm(relevant) if relevant else np.empty((0, 0))  # once, for both contexts
            context_terms, cut_terms = set(content_terms(context)), set(content_terms(cut_context))
            row = {
                "query_id": qid,
                "plain_tokens": prompt.plain_tokens,
                "flat_plain_tokens": tools.tokens.count_messages(
                    build_messages(question, order_blocks(passage_blocks(prompt.passages, flat=True), order))
                ),
                "prompt_tokens": prompt.prompt_tokens,
                "truncation_tokens": tools.tokens.count_messages(
                    build_messages(question, order_blocks(cut, order))
                ),
                "relevant_judged": sum(grade > 0 for grade in data.qrels[qid].values()),
                "relevant_in_top_k": len(relevant),
                "kept": sum(terms.kept(p, context_terms) for p in relevant),
                "semantic_kept": sum(semantic_kept(minilm, relevant_vectors, context)),
                "truncation_kept": sum(terms.kept(p, cut_terms) for p in relevant),
                "truncation_semantic_kept": sum(semantic_kept(minilm, relevant_vectors, cut_context)),
                "compress_ms": 1000 * prompt.timings["compress_s"],
                "blocks": len(prompt.blocks),
            }
            if generator is not None:
                plain_messages = build_messages(
                    question, order_blocks(passage_blocks(prompt.passages), order)
                )
                started = time.perf_counter()
                compressed_answer = generator.generate(prompt.messages, max_new_tokens=max_new_tokens)
                row["generate_ms"] = 1000 * (time.perf_counter() - started)
                plain_answer = _plain_answer(generator, plain_messages, max_new_tokens)
                vectors = minilm([compressed_answer or " ", plain_answer or " "])
                row.update(
                    answer=compressed_answer,
                    plain_answer=plain_answer,
                    answer_agreement=float(vectors[0] @ vectors[1]),
                )
            rows.append(row)
            if journal is not None:
                journal.append([row])
            bar.update(task, advance=1)
    summary = summarize_rows(rows)
    summary.update(
        dataset=data.name,
        index=str(index.root),
        fuse=[str(other.root) for other in others],
        fusion=fusion if others else None,
        weights=list(weights) if weights is not None else None,
        search_params=search_params or {},
        rerank=rerank,
        mmr=asdict(mmr) if mmr else None,
        per_document=per_document,
        compress=compress,
        k=k,
        budget=budget,
        order=order,
        generator=getattr(generator, "name", None),
        queries=rows,
    )
    if json_path is not None and journal is not None:
        write_text_atomic(Path(json_path), json.dumps(summary, indent=2))
        journal.remove()
    return summary


def _resume(json_path: str | Path | None, settings: dict) -> tuple[JsonLines | None, dict[str, dict]]:
    """Rows already measured for these settings, kept in `JSON.rows.jsonl` beside the summary
    until it is written: a rerun of an interrupted evaluation measures only the queries left.
    Rows of other settings (another index, dataset, compressor, generator...) are discarded."""
    if json_path is None:
        return None, {}
    path = Path(json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    journal = JsonLines(path.with_name(f"{path.name}.rows.jsonl"))
    rows = journal.read()
    if rows and rows[0] == {"settings": settings}:
        return journal, {row["query_id"]: row for row in rows[1:]}
    journal.remove()
    journal.append([{"settings": settings}])
    return journal, {}


_PLAIN_ANSWERS: dict[tuple[str, str, int], str] = {}


def _plain_answer(generator: Generator, messages: list, max_new_tokens: int) -> str:
    """Greedy answers to the plain prompt are the same for every compressor: generate each once."""
    key = (generator.name, json.dumps(messages), max_new_tokens)
    if key not in _PLAIN_ANSWERS:
        _PLAIN_ANSWERS[key] = generator.generate(messages, max_new_tokens=max_new_tokens)
    return _PLAIN_ANSWERS[key]


def summarize_rows(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON top level: ratios averaged over queries, retention over relevant passages."""
    judged = [r for r in rows if r["relevant_in_top_k"]]
    relevant = sum(r["relevant_in_top_k"] for r in judged)

    def share(key: str) -> float | None:
        return sum(r[key] for r in judged) / relevant if relevant else None

    agreement = [r["answer_agreement"] for r in rows if "answer_agreement" in r]
    with_relevant = [r for r in rows if r["relevant_judged"]]

    def recall(key: str) -> float | None:
        return _mean([r[key] / r["relevant_judged"] for r in with_relevant])

    return {
        "token_ratio": _mean([r["prompt_tokens"] / r["flat_plain_tokens"] for r in rows]),
        "raw_token_ratio": _mean([r["prompt_tokens"] / r["plain_tokens"] for r in rows]),
        "truncation_token_ratio": _mean([r["truncation_tokens"] / r["flat_plain_tokens"] for r in rows]),
        "retention": share("kept"),
        "semantic_retention": share("semantic_kept"),
        "truncation_retention": share("truncation_kept"),
        "truncation_semantic_retention": share("truncation_semantic_kept"),
        "recall": recall("relevant_in_top_k"),
        "kept_recall": recall("kept"),
        "truncation_kept_recall": recall("truncation_kept"),
        "answer_agreement": _mean(agreement),
        "compress_ms": _mean([r["compress_ms"] for r in rows]),
        "query_count": len(rows),
        "judged_query_count": len(judged),
        "relevant_passages": relevant,
    }
