"""`tessera eval` as one Python call: retrieve, fuse, score with ir_measures, write reports."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ir_measures

from tessera.data.datasets import EvalDataset, Qrels, load_eval_dataset
from tessera.data.metadata import Filter, parse_filter
from tessera.durable import check_outputs, write_text_atomic
from tessera.errors import TesseraError, TesseraWarning, distinct_paths, path_list
from tessera.eval.runs import retrieve, trec_order, write_trec
from tessera.retrieval.diversify import Mmr, as_mmr
from tessera.retrieval.fusion import Run, check_depth, check_fusion, fuse
from tessera.retrieval.index import load_indexes
from tessera.retrieval.query_set import diversify_run, rerank_run
from tessera.retrieval.rerank import RERANK_DEPTH, check_rerank_depth, load_reranker

DEFAULT_METRICS = ("nDCG@10", "R@100", "RR@10", "AP")
MMR_PAGE = 10  # `evaluate(mmr=)` picks a first page of this many (nDCG@10's)


def metric_list(metrics: str | Sequence[str]) -> list[str]:
    """Metric names as a list: one name given alone is one metric, not its letters."""
    return [metrics] if isinstance(metrics, str) else list(metrics)


def parse_metrics(names: str | Sequence[str]) -> list:
    """ir_measures' measures for metric names, refused by name before any retrieval: unknown,
    a cutoff below one, bad parameters, or no installed evaluator that computes it."""
    names = metric_list(names)
    if not names:
        raise TesseraError("at least one metric is needed", field="metrics")
    measures = []
    for name in names:
        try:
            measure = ir_measures.parse_measure(name)
        except (ValueError, NameError, SyntaxError, TypeError):
            raise TesseraError(f"unknown ir_measures metric '{name}'", field="metrics") from None
        cutoff = measure.params.get("cutoff")
        if cutoff is not None and not (cutoff >= 1 and cutoff == int(cutoff)):  # trec_eval aborts on 0
            raise TesseraError(f"metric '{name}': the cutoff must be a whole number >= 1", field="metrics")
        try:
            measure.validate_params()  # ir_measures asserts; otherwise only after the retrieval
        except (AssertionError, ValueError) as exc:
            raise TesseraError(f"metric '{name}': {exc or 'invalid parameters'}", field="metrics") from None
        providers = [p for p in ir_measures.DefaultPipeline.providers if p.supports(measure)]
        if not any(provider.is_available() for provider in providers):
            needs = ", ".join(provider.NAME for provider in providers)
            why = f"needs ir_measures' {needs} provider, not installed" if needs else "no evaluator has it"
            raise TesseraError(f"metric '{name}': {why}", field="metrics")
        measures.append(measure)
    return measures


def warn_shallow(metrics: Sequence[str], depth: int) -> None:
    """A metric whose cutoff is deeper than the retrieval is computed on fewer hits than it names
    (`R@100` over 20 hits): said, since the number looks like the deeper one."""
    for name, measure in zip(metrics, parse_metrics(metrics), strict=True):
        cutoff = measure.params.get("cutoff")
        if cutoff is not None and cutoff > depth:
            why = f"metric '{name}' counts {int(cutoff)} hits, but at most {depth} are retrieved (--depth)"
            warnings.warn(TesseraWarning(why, field="depth"), stacklevel=3)


def _scorable(run: Run, qrels: Qrels) -> tuple[dict, dict, list[str]]:
    """The run and judgments as every ir_measures provider reads them alike: each query's hits
    ordered as trec_eval orders them (score down, ties by document id down) and scored by that
    order alone, since providers break ties differently (`RR@10` is computed by another than `RR`);
    query ids numbered, since gdeval (`ERR@k`) reads only numbers. Returns (qrels, run, query ids
    by number)."""
    names = list(dict.fromkeys([*qrels, *run]))
    number = {qid: str(i) for i, qid in enumerate(names)}
    scores = {}
    for qid, hits in run.items():
        ordered = trec_order((hit.doc_id, hit.score) for hit in hits)
        scores[number[qid]] = {doc_id: float(len(ordered) - i) for i, (doc_id, _) in enumerate(ordered)}
    judged = {number[qid]: dict(grades) for qid, grades in qrels.items()}
    return judged, scores, names


def score(run: Run, dataset: EvalDataset, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Each metric over the judged queries (ir_measures' aggregates), keyed as the caller spelled
    it: ir_measures names `P(rel=1)@1` P@1 and `NumRelRet` NumRet(rel=1)."""
    metrics = metric_list(metrics)
    measures = parse_metrics(metrics)
    qrels, scores, _ = _scorable(run, dataset.qrels)
    values = ir_measures.calc_aggregate(list(dict.fromkeys(measures)), qrels, scores)
    return {name: float(values[measure]) for name, measure in zip(metrics, measures, strict=True)}


def per_query_scores(run: Run, dataset: EvalDataset, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """{metric: {query id: value}} over every judged query (0 where the run has no score for it)."""
    metrics = metric_list(metrics)
    values = {name: dict.fromkeys(dataset.qrels, 0.0) for name in metrics}
    measures = parse_metrics(metrics)
    spellings: dict[str, list[str]] = {}  # ir_measures' name -> every spelling given of it
    for measure, name in zip(measures, metrics, strict=True):
        spellings.setdefault(str(measure), []).append(name)
    qrels, scores, names = _scorable(run, dataset.qrels)
    for row in ir_measures.iter_calc(list(dict.fromkeys(measures)), qrels, scores):
        query_id = names[int(row.query_id)]
        if query_id in dataset.qrels:
            for name in spellings[str(row.measure)]:
                values[name][query_id] = float(row.value)
    return values


@dataclass
class Evaluation:
    dataset: str
    metrics: dict[str, float]
    inputs: dict[str, dict[str, float]] = field(default_factory=dict)
    run: Run = field(default_factory=dict, repr=False)


def evaluate(
    indexes: Sequence[str | Path],
    dataset: str | Path | EvalDataset,
    split: str = "test",
    metrics: Sequence[str] = DEFAULT_METRICS,
    fusion: str = "rrf",
    depth: int = 1000,
    rrf_k: int = 60,
    weights: Sequence[float] | None = None,
    run_path: str | Path | None = None,
    json_path: str | Path | None = None,
    show_progress: bool = True,
    search_params: dict[str, float | str] | None = None,
    remove_query: bool = False,
    rerank: str | None = None,
    rerank_depth: int = RERANK_DEPTH,
    mmr: Mmr | float | None = None,
    filter: Filter | None = None,
) -> Evaluation:
    """Score one index, or several fused into one run, on a dataset's judged queries.

    `fusion` is rrf or wsum (`weights`: one per index, equal when None; retrieval.fusion).
    `search_params` override the indexes' stored ones (nprobe, mode/k_prime of a token index, BM25's
    k1 or prf, ...: `retrieval.params.route_params` gives each index those of its kind).
    `remove_query` drops each query's own id from every run (BEIR's `ignore_identical_ids`, for
    ArguAna- or Quora-like sets whose queries are corpus documents).
    `rerank` (a `retrieval.rerank` spec) scores the final run's top `rerank_depth` again; the
    first stage's metrics are then among `inputs`, as "first stage". `mmr` (a weight, or
    `retrieval.diversify.Mmr`) then orders each query's top `mmr.pool(10)` for a page of 10.
    `filter` (a metadata filter, data/metadata.py, matched in the first index's doc store)
    evaluates the task on the sub-collection it selects: every index searches among its
    documents, judgments of the others are dropped, and so are the queries left with no relevant
    document (the dataset's name says how many remain).
    """
    indexes = path_list(indexes, "indexes")
    metrics = metric_list(metrics)
    if not indexes:
        raise TesseraError("at least one index directory is needed", field="indexes")
    distinct_paths(indexes, "indexes")
    check_fusion(fusion, weights, len(indexes))
    check_depth(depth)
    data = dataset if isinstance(dataset, EvalDataset) else load_eval_dataset(dataset, split)
    warn_shallow(metrics, depth)
    check_rerank_depth(rerank_depth)
    given = [dataset] if isinstance(dataset, (str, Path)) else []
    check_outputs({"run": run_path, "json": json_path}, inputs=[*indexes, *given])
    mmr = as_mmr(mmr)
    if rerank is not None:
        load_reranker(rerank)  # a bad spec fails before retrieval
    filter = parse_filter(filter)
    opened = load_indexes(indexes, search_params)
    if filter is not None:
        data = data.within(opened[0].allowed(filter, None))
        if not data.queries:
            raise TesseraError(
                f"{data.name}: no query has a relevant document the filter keeps", field="filter"
            )
    runs = {
        str(path): retrieve(index, data, depth, show_progress, remove_query, filter)
        for path, index in zip(indexes, opened, strict=True)
    }
    inputs = {name: score(run, data, metrics) for name, run in runs.items()} if len(runs) > 1 else {}
    final = fuse(list(runs.values()), fusion, weights, rrf_k=rrf_k, depth=depth, top=depth)
    if rerank is not None or mmr is not None:
        inputs["first stage"] = score(final, data, metrics)
    if rerank is not None:
        final = rerank_run(rerank, data.queries, final, opened, rerank_depth, show_progress)
    if mmr is not None:
        final = diversify_run(mmr, final, opened, MMR_PAGE, show_progress)
    result = Evaluation(data.name, score(final, data, metrics), inputs, final)
    if run_path:
        write_trec(final, run_path)
    if json_path:
        write_text_atomic(Path(json_path), json.dumps(result.metrics, indent=2) + "\n")
    return result
