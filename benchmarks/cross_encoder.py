"""Does a cross-encoder trained here rerank better than the untrained second stages?

No cross-encoder checkpoint can be had offline. `tessera train cross-encoder` gives the bundled
MiniLM a fresh one-logit head and trains it on each collection's training split with the
README's defaults (pairs qrels + titles, one BM25 hard negative; the learning rates were chosen
from Cranfield's training loss, no test query read). On the
test queries (never trained on), per collection and seed:
- BM25, MiniLM flat and their RRF, the anchor every trained model is held against;
- BM25 > MiniLM@100: the untrained reranker a user without training data reaches for;
- BM25 > CE@100 and RRF > CE@100: the trained cross-encoder over each first stage's top 100.
Tables as `rerank.py` (nDCG@10, R@100, AP ± SE; / first stage, / anchor; paired Δ with
Fisher's p; reranking ms a query), training minutes, then the mean ratios over each set.

    TESSERA_DATA_DIR=../shared/data python benchmarks/cross_encoder.py --work /tmp/ce [--seeds 0 1 2]

`--split train --max-queries 30` scores the same rows on training queries instead: how well a
model fits what it was trained on. Models, indexes and every (query, passage) score are kept
under --work, so a rerun trains and scores nothing twice. LISA's train/test split is written by
`tessera.data.beir_writer`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from tessera import config
from tessera.cli import at_least
from tessera.data.datasets import EvalDataset, load_eval_dataset
from tessera.eval.evaluate import per_query_scores
from tessera.eval.runs import retrieve
from tessera.retrieval.fusion import fuse
from tessera.retrieval.index import Index
from tessera.retrieval.query_set import rerank_run
from tessera.training.cross_encoder import train_cross_encoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generalization import collection_folder  # noqa: E402
from rerank import ANCHOR, DEPTH, METRICS, Memo, built_indexes, summary, table_of  # noqa: E402

RERANK_DEPTH = 100


def trained(folder: Path, model: Path, seed: int, console: Console) -> float:
    """Train the cross-encoder once (README defaults, this seed); the minutes training took."""
    record = model.with_name(model.name + ".minutes")
    if not model.is_dir():
        console.print(f"training {model}")
        started = time.perf_counter()
        train_cross_encoder(folder, model, seed=seed, show_progress=False)
        record.write_text(f"{(time.perf_counter() - started) / 60:.1f}")
    return float(record.read_text()) if record.is_file() else float("nan")


def judged(folder: Path, split: str, limit: int | None) -> EvalDataset:
    """The split's judged queries, or the first `limit` of them by id."""
    data = load_eval_dataset(folder, split)
    if limit is None:
        return data
    kept = sorted(data.queries)[:limit]
    return EvalDataset(
        f"{data.name} ({len(kept)})", {q: data.queries[q] for q in kept}, {q: data.qrels[q] for q in kept}
    )


def collection_rows(
    name: str, work: Path, seeds: list[int], console: Console, split: str = "test", limit: int | None = None
):
    """{system: per-metric per-query scores} on the split's queries, reranking ms and the first stages."""
    folder = collection_folder(name, work)
    root = work / name.replace("/", "-")
    test = judged(folder, split, limit)
    indexes = {n: Index.load(path) for n, path in built_indexes(str(folder), root, console).items()}
    runs = {n: retrieve(index, test, DEPTH, False) for n, index in indexes.items()}
    runs[ANCHOR] = fuse([runs["BM25"], runs["MiniLM"]], "rrf", depth=DEPTH, top=DEPTH)
    ms, firsts, minutes = {}, {}, {}
    rerankers = [("minilm", {"BM25 > MiniLM@100": "BM25"})]  # spec, {row: first stage}
    for seed in seeds:
        model = root / f"cross-encoder-s{seed}"
        minutes[seed] = trained(folder, model, seed, console)
        rows = {f"{first} > CE s{seed}@{RERANK_DEPTH}": first for first in ("BM25", ANCHOR)}
        rerankers.append((f"cross-encoder:{model}", rows))
    for spec, rows in rerankers:
        memo = Memo(spec, root / f"scores-{Path(spec).name}.jsonl")
        for row, first in rows.items():
            console.print(f"{name}: {row}")
            runs[row] = rerank_run(memo, test.queries, runs[first], indexes["BM25"], RERANK_DEPTH)
        # candidates the two first stages share were scored once, for both
        ms.update(dict.fromkeys(rows, 1000 * memo.seconds / len(test.queries)))
        firsts.update(rows)
    scores = {n: per_query_scores(run, test, METRICS) for n, run in runs.items()}
    return scores, ms, firsts, minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--choose", nargs="+", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--confirm", nargs="*", default=["medline-beir", "glasgow/lisa"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "cross-encoder")
    parser.add_argument(
        "--split",
        default="test",
        help="queries to score: test, or train to see how well a model fits its own",
    )
    parser.add_argument("--max-queries", type=at_least(1), default=None, help="the first N queries by id")
    args = parser.parse_args()
    console = Console(width=220)
    ratios = {}
    for name in [*args.choose, *args.confirm]:
        scores, ms, firsts, minutes = collection_rows(
            name, args.work, args.seeds, console, args.split, args.max_queries
        )
        console.print(table_of(name, scores, ms, firsts))
        console.print(f"{name}: training minutes by seed {json.dumps(minutes)}")
        ndcg = {n: np.mean(list(by_metric["nDCG@10"].values())) for n, by_metric in scores.items()}
        ratios[name] = {n: (ndcg[n] / ndcg[first], ndcg[n] / ndcg[ANCHOR]) for n, first in firsts.items()}
    console.print(summary(ratios, args.choose, args.confirm))


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
