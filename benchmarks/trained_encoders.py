"""Question: do encoders trained on a collection's own training queries beat the untrained
anchors, and what do ColBERT and XTR late interaction cost?

    python benchmarks/trained_encoders.py [--collections cranfield-beir cisi-beir] [--work DIR]

For each BEIR folder in TESSERA_DATA_DIR: BM25, the bundled MiniLM (Flat) and their RRF hybrid
(the anchor every ratio is taken against); MiniLM fine-tuned with `train dense` on each pair
source (judged `train` queries, titles, Contriever crops) or, for a `query:` variant, only its
query tower (`train dense --freeze-documents`); ColBERT and XTR trained with `train
colbert|xtr` on `--late-pairs` (default: the first variant's); each indexed and evaluated on
the `test` split (queries never trained on); the RRF of the best trained models with BM25. For
comparison, JPQ (issue 4): the MiniLM query encoder trained alone against fixed OPQ48 document
codes, on the same judged queries + titles.
Models and indexes are kept in --work, so a rerun only evaluates.

The scoring-stage table runs ColBERT's exact MaxSim and XTR's imputation over the very same
token-retrieval candidates of every test query and reports wall time and multiply-adds.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.data.datasets import load_eval_dataset
from tessera.eval.evaluate import score
from tessera.eval.runs import retrieve
from tessera.indexing.builder import build_index
from tessera.indexing.reindex import reindex
from tessera.retrieval.fusion import reciprocal_rank_fusion
from tessera.retrieval.index import Index
from tessera.retrieval.late_interaction import colbert_rerank, xtr_score
from tessera.training.dense import train_dense
from tessera.training.jpq import train_jpq
from tessera.training.multivector import train_multivector

METRICS = ["nDCG@10", "R@100"]
DEPTH = 1000
DENSE_SOURCES = ["qrels,titles", "qrels", "qrels,crop", "titles,crop"]  # first: also ColBERT's and XTR's
K_PRIMES = (100, 400, 1000, 4000)


def directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def once(path: Path, make) -> tuple[Path, float]:
    """Build `path` with `make(path)` unless a previous run left it; (path, minutes it took)."""
    record = path.with_name(f"{path.name}.minutes")
    if not path.exists():
        start = time.perf_counter()
        make(path)
        record.write_text(f"{(time.perf_counter() - start) / 60:.2f}")
    return path, float(record.read_text()) if record.exists() else 0.0


def scoring_cost(index: Index, queries: list[str], k_prime: int) -> dict[str, float]:
    """ColBERT MaxSim vs XTR imputation over the same candidates: seconds and multiply-adds.

    Token retrieval runs first for every query; then each scorer runs over all queries in its
    own loop, as `search` runs one mode, so neither works in caches the other just evicted.
    """
    search = index.backend
    encoded = index.encoder.encode_queries(queries)
    hits = search.retrieve_tokens(encoded, k_prime)
    candidates = [h.candidates() for h in hits]
    start = time.perf_counter()
    for query, chosen in zip(encoded, candidates, strict=True):
        colbert_rerank(query, chosen, search.tokens)
    colbert_s = time.perf_counter() - start
    start = time.perf_counter()
    for h in hits:
        xtr_score(h.scores, h.doc_ids)
    xtr_s = time.perf_counter() - start
    doc_lengths = np.diff(search.tokens.offsets)  # tokens per document, without reading them
    colbert_madds = sum(
        query.size * int(doc_lengths[chosen].sum()) for query, chosen in zip(encoded, candidates, strict=True)
    )
    return {
        "candidates": sum(map(len, candidates)) / len(queries),
        "colbert_ms": 1000 * colbert_s / len(queries),
        "xtr_ms": 1000 * xtr_s / len(queries),
        "colbert_madds": colbert_madds / len(queries),
        "xtr_ops": sum(h.scores.size for h in hits) / len(queries),  # one max per retrieved score
    }


def parse_variant(variant: str, epochs: float) -> tuple[str, float, float | None, bool]:
    """`[query:]SOURCES[@EPOCHS[@LR]]` -> (sources, epochs, learning rate or None for the
    default, whether only a query tower trains: `train dense --freeze-documents`)."""
    spec, *rest = variant.split("@")
    query_only = spec.startswith("query:")
    sources = spec.removeprefix("query:")
    return sources, float(rest[0]) if rest else epochs, float(rest[1]) if len(rest) > 1 else None, query_only


def variant_key(variant: str, epochs: float) -> str:
    """The variant with every default filled in: names its model in --work, so a run with other
    epochs or learning rate trains anew instead of reusing a model trained otherwise."""
    sources, variant_epochs, lr, query_only = parse_variant(variant, epochs)
    return f"{'query:' if query_only else ''}{sources}@{variant_epochs:g}{f'@{lr:g}' if lr else ''}"


def variant_name(variant: str, epochs: float) -> str:
    sources, variant_epochs, lr, query_only = parse_variant(variant, epochs)
    what = "MiniLM query tower, documents frozen" if query_only else "MiniLM fine-tuned"
    return f"{what} ({sources}, {variant_epochs:g} ep{f', lr {lr:g}' if lr else ''})"


def bench(
    collection: str,
    work: Path,
    console: Console,
    epochs: float,
    late_epochs: float,
    dense_sources: list[str],
    late_pairs: str | None,
    with_jpq: bool,
) -> None:
    folder = config.data_dir() / collection
    test = load_eval_dataset(folder, "test")
    work = work / collection
    work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, dict, float | None, float]] = []  # name, run, index MB, train minutes

    def evaluate(name: str, index_dir: Path, minutes: float, params: dict | None = None) -> dict:
        run = retrieve(Index.load(index_dir, search_params=params), test, DEPTH, show_progress=False)
        rows.append((name, run, directory_mb(index_dir), minutes))
        console.log(f"{collection} {name}: {score(run, test, METRICS)}")
        return run

    def index_of(name: str, encoder: str, factory: str = "Flat") -> Path:
        return once(
            work / f"index-{name}",
            lambda p: build_index(folder, p, encoder=encoder, factory=factory, show_progress=False),
        )[0]

    bm25 = evaluate("BM25", index_of("bm25", "bm25"), 0.0)
    minilm_dir = index_of("minilm", "minilm")
    minilm = evaluate("MiniLM flat (untrained)", minilm_dir, 0.0)
    hybrid = reciprocal_rank_fusion([bm25, minilm], depth=DEPTH, top=DEPTH)
    rows.append(("RRF(BM25, MiniLM)  [anchor]", hybrid, None, 0.0))
    # Train first (the slow part, each model kept in --work), then index and evaluate.
    models: dict[str, tuple[Path, float]] = {}
    for i, variant in enumerate(dense_sources):
        sources, variant_epochs, lr, query_only = parse_variant(variant, epochs)
        models[f"dense {variant}"] = once(
            work / f"dense-{variant_key(variant, epochs)}",
            lambda p, s=sources, e=variant_epochs, lr=lr, q=query_only: train_dense(
                folder, p, pairs=s.split(","), epochs=e, learning_rate=lr, freeze_documents=q
            ),
        )
        if i == 0:
            pairs = (late_pairs or sources).split(",")
            for scoring in ("colbert", "xtr"):
                models[scoring] = once(
                    work / f"{scoring}-{','.join(pairs)}@{late_epochs:g}",
                    lambda p, s=scoring, chosen=pairs: train_multivector(
                        folder, p, scoring=s, pairs=chosen, epochs=late_epochs
                    ),
                )
    trained: dict[str, dict] = {}
    for variant in dense_sources:
        model, minutes = models[f"dense {variant}"]
        name = variant_name(variant, epochs)
        trained[name] = evaluate(name, index_of(model.name, str(model)), minutes)
    if with_jpq:  # issue 4's JPQ: the query encoder trained alone against fixed OPQ48 document codes
        opq, _ = once(
            work / "index-opq48", lambda p: reindex(minilm_dir, p, "OPQ48,PQ48", show_progress=False)
        )
        jpq, minutes = once(
            work / "index-jpq48-titles",
            lambda p: train_jpq(opq, folder, p, split="train", pairs="qrels,titles", show_progress=False),
        )
        trained["JPQ48 (qrels,titles)"] = evaluate(
            "JPQ48 query encoder (qrels,titles), 48 B/doc", jpq, minutes
        )
    for scoring in ("colbert", "xtr"):
        model, minutes = models[scoring]
        index_dir = index_of(model.name, f"{scoring}:{model}")
        if scoring == "colbert":
            trained["ColBERT"] = evaluate("ColBERT (MaxSim)", index_dir, minutes)
            continue
        for k_prime in K_PRIMES:
            name = f"XTR k'={k_prime}"
            trained[name] = evaluate(name, index_dir, minutes, {"mode": "xtr", "k_prime": k_prime})
        evaluate("XTR model, ColBERT MaxSim", index_dir, minutes, {"mode": "colbert"})
    anchor = score(hybrid, test, METRICS)

    def ndcg(name: str) -> float:
        return score(trained[name], test, METRICS)["nDCG@10"]

    best = max(trained, key=ndcg)
    best_encoder = max((name for name in trained if not name.startswith("JPQ")), key=ndcg)
    for name in dict.fromkeys([best, best_encoder]):
        fused = reciprocal_rank_fusion([bm25, trained[name]], depth=DEPTH, top=DEPTH)
        rows.append((f"RRF(BM25, {name})", fused, None, 0.0))

    table = Table(title=f"{collection}: {len(test.queries)} test queries (never trained on), depth {DEPTH}")
    for column in ("system", *METRICS, "nDCG@10 / anchor", "R@100 / anchor", "index MB", "train min"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for name, run, size, minutes in rows:
        values = score(run, test, METRICS)
        table.add_row(
            name,
            *(f"{values[m]:.4f}" for m in METRICS),
            f"{values['nDCG@10'] / anchor['nDCG@10']:.3f}",
            f"{values['R@100'] / anchor['R@100']:.3f}",
            "-" if size is None else f"{size:.1f}",
            f"{minutes:.1f}" if minutes else "-",
        )
    console.print(table)

    cost = Table(title=f"{collection}: scoring stage over the same candidates (XTR model's token index)")
    for column in (
        "k'",
        "candidates",
        "ColBERT ms/query",
        "XTR ms/query",
        "time ratio",
        "ColBERT madds",
        "XTR ops",
        "op ratio",
    ):
        cost.add_column(column, justify="right")
    index = Index.load(work / f"index-{models['xtr'][0].name}")
    queries = list(test.queries.values())
    for k_prime in K_PRIMES:
        c = scoring_cost(index, queries, k_prime)
        cost.add_row(
            str(k_prime),
            f"{c['candidates']:.0f}",
            f"{c['colbert_ms']:.2f}",
            f"{c['xtr_ms']:.3f}",
            f"{c['colbert_ms'] / c['xtr_ms']:.0f}x",
            f"{c['colbert_madds']:.3g}",
            f"{c['xtr_ops']:.3g}",
            f"{c['colbert_madds'] / c['xtr_ops']:.0f}x",
        )
    console.print(cost)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="+", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "bench-trained")
    parser.add_argument("--epochs", type=float, default=1.0, help="dense fine-tuning epochs")
    parser.add_argument("--late-epochs", type=float, default=1.0, help="ColBERT and XTR training epochs")
    parser.add_argument(
        "--dense-pairs",
        nargs="+",
        default=DENSE_SOURCES,
        help="one model per value: [query:]SOURCES[@EPOCHS[@LR]] (query: trains a query tower only)",
    )
    parser.add_argument("--late-pairs", help="ColBERT's and XTR's pair sources (default: the first one's)")
    parser.add_argument("--no-jpq", action="store_true", help="leave out the JPQ comparison rows")
    parser.add_argument("--fresh", action="store_true", help="retrain and reindex everything")
    args = parser.parse_args()
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    console = Console(width=150)
    for collection in args.collections:
        bench(
            collection,
            args.work,
            console,
            args.epochs,
            args.late_epochs,
            args.dense_pairs,
            args.late_pairs,
            not args.no_jpq,
        )


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
