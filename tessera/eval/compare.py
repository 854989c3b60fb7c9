"""`tessera eval-runs`: runs made anywhere (TREC files from pyserini, Anserini, PyTerrier, another
Tessera), scored on one dataset's judgments and compared with the first, as trec_eval and ranx
users compare them.

A judged query a run has no hit for scores 0 (trec_eval's `-c`), so runs answering different
query sets are compared on the same ones; a run that answers none of them is refused (a wrong
dataset or split is the usual cause). Significance is `eval.significance`: ranx's paired t-test
and Fisher's randomization test of every run against the first, Holm-corrected over the runs
of a metric. With `fusion`, the runs fused (RRF, or wsum with `weights`) join the table.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ir_measures.measures.base import SumAgg

from tessera.data.datasets import EvalDataset, load_eval_dataset, read_qrels_file
from tessera.durable import check_outputs, write_text_atomic
from tessera.errors import TesseraError, TesseraWarning, distinct_paths, path_list
from tessera.eval.evaluate import DEFAULT_METRICS, metric_list, parse_metrics, per_query_scores, warn_shallow
from tessera.eval.runs import read_trec, write_trec
from tessera.eval.significance import compare_to_baseline, mean_se
from tessera.retrieval.fusion import Run, check_depth, check_fusion, fuse

SAMPLE_IDS = 3  # query ids named in a mismatch error


@dataclass
class RunScores:
    name: str
    source: str  # the run file, or how the fused run was made
    means: dict[str, float]  # each metric as `tessera eval` gives it: a mean, or a sum for counts (NumRet)
    errors: dict[str, float]  # standard error of each mean over the judged queries
    answered: int  # judged queries with at least one hit
    per_query: dict[str, dict[str, float]] = field(repr=False, default_factory=dict)


@dataclass
class Comparison:
    dataset: str
    queries: int  # judged queries
    metrics: list[str]
    runs: list[RunScores]  # the baseline first
    significance: dict[str, Any]  # {metric: {test: {run: {p, p_holm, significant, delta}}}}, against runs[0]
    alpha: float

    def against_baseline(self, run: RunScores, metric: str) -> dict[str, int]:
        """Judged queries on which `run` scores above, level with, and below the first run."""
        base = self.runs[0].per_query[metric]
        differences = [run.per_query[metric][qid] - base[qid] for qid in base]
        return {
            "better": sum(d > 1e-9 for d in differences),
            "tied": sum(abs(d) <= 1e-9 for d in differences),
            "worse": sum(d < -1e-9 for d in differences),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "queries": self.queries,
            "baseline": self.runs[0].name,
            "alpha": self.alpha,
            "runs": {
                r.name: {
                    "source": r.source,
                    "answered_queries": r.answered,
                    "metrics": {m: {"mean": r.means[m], "se": r.errors[m]} for m in self.metrics},
                    "against_baseline": {m: self.against_baseline(r, m) for m in self.metrics},
                    "per_query": r.per_query,  # trec_eval -q's table: metric -> query id -> value
                }
                for r in self.runs
            },
            "significance": self.significance,
        }


def run_names(paths: Sequence[Path]) -> list[str]:
    """Each run's file name without its suffix, or its whole path where two names would clash."""
    stems = [path.stem for path in paths]
    return [stem if stems.count(stem) == 1 else str(path) for stem, path in zip(stems, paths, strict=True)]


def _aggregate(measure: Any, values: list[float]) -> tuple[float, float]:
    """A metric over the judged queries as `tessera eval` and trec_eval give it, with its standard
    error: the mean, or for counts (NumRet, NumRel, NumQ: ir_measures' SumAgg) the sum."""
    mean, se = mean_se(values)
    if isinstance(measure.aggregator(), SumAgg):
        return mean * len(values), se * len(values)
    return mean, se


def _scored(name: str, source: str, run: Run, data: EvalDataset, metrics: Sequence[str]) -> RunScores:
    answered = sum(1 for qid in data.qrels if run.get(qid))
    if answered == 0:
        in_run = ", ".join(f"'{q}'" for q in sorted(run)[:SAMPLE_IDS]) or "none"
        judged = ", ".join(f"'{q}'" for q in sorted(data.qrels)[:SAMPLE_IDS])
        raise TesseraError(
            f"the run answers none of {data.name}'s judged queries (its query ids: {in_run}, ...; "
            f"judged: {judged}, ...): is it the right dataset and split?",
            file=source,
        )
    if answered < len(data.qrels):
        warnings.warn(
            TesseraWarning(
                f"{name} has no hit for {len(data.qrels) - answered} of {len(data.qrels)} judged queries; "
                "they score 0",
                file=source,
            ),
            stacklevel=3,
        )
    per_query = per_query_scores(run, data, metrics)
    summary = {
        m: _aggregate(measure, list(per_query[m].values()))
        for m, measure in zip(metrics, parse_metrics(metrics), strict=True)
    }
    return RunScores(
        name,
        source,
        {m: mean for m, (mean, _) in summary.items()},
        {m: se for m, (_, se) in summary.items()},
        answered,
        per_query,
    )


def compare_runs(
    paths: Sequence[str | Path],
    dataset: str | Path | EvalDataset,
    split: str = "test",
    metrics: Sequence[str] = DEFAULT_METRICS,
    fusion: str | None = None,
    weights: Sequence[float] | None = None,
    depth: int = 1000,
    alpha: float = 0.05,
    run_path: str | Path | None = None,
    json_path: str | Path | None = None,
) -> Comparison:
    """Score each TREC run file on the dataset's judged queries (or a TREC or BEIR qrels file's)
    and test it against the first;
    with `fusion` (rrf, wsum), the runs fused join them (and `run_path` receives that run)."""
    paths = [Path(p) for p in path_list(paths, "runs")]
    metrics = metric_list(metrics)
    if not paths:
        raise TesseraError("at least one run file is needed", field="runs")
    distinct_paths(paths, "runs")
    if fusion is not None:
        check_fusion(fusion, weights, len(paths))
        check_depth(depth)
        if len(paths) < 2:
            raise TesseraError("fusion needs at least two runs", field="fusion")
        warn_shallow(metrics, depth)
    elif run_path is not None or weights is not None:
        raise TesseraError("--run and --weights belong to a fusion (--fusion rrf|wsum)", field="fusion")
    if not 0 < alpha < 1:
        raise TesseraError(f"alpha must be between 0 and 1, got {alpha}", field="alpha")
    parse_metrics(metrics)
    given = [dataset] if isinstance(dataset, (str, Path)) else []
    check_outputs({"run": run_path, "json": json_path}, inputs=[*paths, *given])
    if isinstance(dataset, EvalDataset):
        data = dataset
    elif Path(dataset).expanduser().is_file():  # a qrels file, as trec_eval takes one
        data = read_qrels_file(Path(dataset).expanduser())
    else:
        data = load_eval_dataset(dataset, split)
    runs = [read_trec(path) for path in paths]
    names = run_names(paths)
    scored = [
        _scored(name, str(path), run, data, metrics)
        for name, path, run in zip(names, paths, runs, strict=True)
    ]
    if fusion is not None:
        fused = fuse(runs, fusion, weights, depth=depth, top=depth)
        label = f"{fusion}({'+'.join(names)})"
        scored.append(_scored(label, f"{fusion} fusion of the runs above", fused, data, metrics))
        if run_path is not None:
            write_trec(fused, run_path, tag=f"tessera-{fusion}")
    tested = compare_to_baseline(
        {data.name: {r.name: r.per_query for r in scored}}, scored[0].name, metrics, alpha
    )
    significance = {
        metric: {test: by_dataset.get(data.name, {}) for test, by_dataset in tests.items()}
        for metric, tests in tested.items()
    }
    comparison = Comparison(data.name, len(data.qrels), list(metrics), scored, significance, alpha)
    if json_path is not None:
        write_text_atomic(Path(json_path), json.dumps(comparison.to_json(), indent=2) + "\n")
    return comparison
