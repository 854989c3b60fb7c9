"""Question: how many prompt tokens does each context compressor save, and what does it keep?

    python benchmarks/rag.py [--collections cranfield-beir cisi-beir] [--queries 24] \
        [--semantic-queries 8] [--answer-queries 4] [--plot docs/rag.png] [--only LABEL ...] [--split test]

For each BEIR folder in TESSERA_DATA_DIR: a MiniLM Flat index; the first `--queries` judged
queries of `--split` (test by default; the compressors train on nothing, so on a collection none
of their settings was chosen on, `--split all` measures every judged query); top k=10 passages.
Each compressor at its default settings, beside the truncation baseline cut to the same tokens
per query (the `truncation_*` columns of `tessera eval-rag`). Tokens are SmolLM2's. Each
measurement is saved under `--work`/results, so an interrupted run resumes and collections can
run in separate processes (then one run over all of them prints every table and the plot from
the saved results). CRAG's k is also fixed at 1 and 2 to show what the silhouette choice buys,
and its two other sentence selectors (score and balanced fills) are compared with the default
query by query (paired differences ± se; TCRA summary's score fill against TCRA summary).
TCRA-semantic runs on `--semantic-queries` (it embeds every word deletion). Answer agreement
(MiniLM cosine between the answers from the compressed and the plain prompt, SmolLM2 greedy, 64
tokens) on the first `--answer-queries` queries. Standard errors are over queries. "token ratio"
is against the plain prompt with its whitespace collapsed as the compressors write theirs (words
left out); "raw ratio" against the plain prompt as `--compress none` sends it, the documents'
line breaks and indents included.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tessera import config  # noqa: E402
from tessera.cli import at_least
from tessera.data.datasets import load_eval_dataset  # noqa: E402
from tessera.indexing.builder import build_index  # noqa: E402
from tessera.rag import prepare  # noqa: E402
from tessera.rag.evaluate import evaluate_rag  # noqa: E402
from tessera.rag.generators import open_generator  # noqa: E402
from tessera.retrieval.index import Index  # noqa: E402

# (label, compressor, options)
METHODS = [
    ("plain (no compression)", "none", {}),
    ("CRAG (silhouette k)", "crag", {}),
    *[(f"CRAG k={k}", "crag", {"clusters": k}) for k in (1, 2)],
    ("CRAG (score fill)", "crag", {"fill": "score"}),
    ("CRAG (balanced fill)", "crag", {"fill": "balanced"}),
    ("TCRA summary", "tcra-summary", {}),
    ("TCRA summary (score fill)", "tcra-summary", {"fill": "score"}),
    ("TCRA semantic", "tcra-semantic", {}),
]

# The paired columns compare each method with the default run before it, query by query.
DEFAULTS = ("plain (no compression)", "CRAG (silhouette k)", "TCRA summary")


def stderr(values: list[float]) -> float:
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def cached(path: Path, measure) -> dict:
    """A measurement saved once: an interrupted run resumes; delete --work/results to measure again."""
    if path.is_file():
        return json.loads(path.read_text())
    result = measure()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def per_query_retention(rows: list[dict], kept: str) -> list[float]:
    return [r[kept] / r["relevant_in_top_k"] for r in rows if r["relevant_in_top_k"]]


def paired(rows: list[dict], baseline: list[dict] | None, kept: str) -> str:
    """Mean per-query retention difference against a default on the same queries, ± its se."""
    if baseline is None or [r["query_id"] for r in rows] != [r["query_id"] for r in baseline]:
        return ""
    differences = [
        a - b
        for a, b in zip(per_query_retention(rows, kept), per_query_retention(baseline, kept), strict=True)
    ]
    return f"{np.mean(differences):+.3f} ± {stderr(differences):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="+", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--queries", type=at_least(1), default=24)
    parser.add_argument("--semantic-queries", type=at_least(1), default=8)
    parser.add_argument("--answer-queries", type=at_least(0), default=4)
    parser.add_argument("--k", type=at_least(1), default=10)
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "rag")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--only", nargs="+", default=None, help="method labels to run (default: all)")
    parser.add_argument("--split", default="test", help="the judged queries: test, train or all")
    args = parser.parse_args()
    methods = [m for m in METHODS if args.only is None or m[0] in args.only]
    console = Console(width=220)
    generator = open_generator("local") if args.answer_queries else None
    points: dict[str, list[tuple[float, float, str]]] = {}
    for collection in args.collections:
        folder = config.data_dir() / collection
        index_dir = args.work / f"{collection}-minilm"
        if not index_dir.exists():
            build_index(str(folder), index_dir, encoder="minilm")
        index = Index.load(index_dir)
        title = f"{collection} {args.split}, k={args.k}: compressed vs truncated to the same tokens"
        table = Table(title=title)
        for column in (
            "method",
            "queries",
            "token ratio",
            "raw ratio",
            "retention",
            "± se",
            "truncation",
            "ratio",
            "semantic ret.",
            "truncation",
            "ratio",
            "ms/query",
            "answer agreement",
            "vs default: retention",
            "semantic",
        ):
            table.add_column(column, justify="right" if column != "method" else "left")
        default_rows = None
        saved = args.work / "results" / (collection if args.split == "test" else f"{collection}.{args.split}")
        layout = cached(
            saved / f"layout plain.q{args.queries}.json", partial(_layout_tokens, index, folder, args)
        )
        for label, compress, options in methods:
            queries = args.semantic_queries if compress == "tcra-semantic" else args.queries
            common = {"dataset": folder, "split": args.split, "k": args.k, "compress": compress}
            measure = partial(evaluate_rag, index, **common, compressor_options=options, max_queries=queries)
            result = cached(saved / f"{label}.q{queries}.json", measure)
            agreement = ""
            if generator is not None and not options and compress != "none":
                measure = partial(
                    evaluate_rag,
                    index,
                    **common,
                    generator=generator,
                    max_queries=args.answer_queries,
                    max_new_tokens=64,
                )
                answered = cached(saved / f"{label}.answers{args.answer_queries}.json", measure)
                agreement = f"{answered['answer_agreement']:.3f} (n={args.answer_queries})"
            rows = result["queries"]
            if label in DEFAULTS:
                default_rows = rows
            kept = per_query_retention(rows, "kept")
            table.add_row(
                label,
                str(len(rows)),
                f"{result['token_ratio']:.3f}",
                f"{np.mean([r['prompt_tokens'] / layout[r['query_id']] for r in rows]):.3f}",
                f"{result['retention']:.3f}",
                f"{stderr(kept):.3f}",
                f"{result['truncation_retention']:.3f}",
                f"{result['retention'] / result['truncation_retention']:.3f}x",
                f"{result['semantic_retention']:.3f}",
                f"{result['truncation_semantic_retention']:.3f}",
                f"{result['semantic_retention'] / result['truncation_semantic_retention']:.3f}x",
                f"{result['compress_ms']:.0f}",
                agreement,
                "" if label in DEFAULTS else paired(rows, default_rows, "kept"),
                "" if label in DEFAULTS else paired(rows, default_rows, "semantic_kept"),
            )
            points.setdefault(label, []).append((result["token_ratio"], result["retention"], collection))
            points.setdefault(f"truncation at {label}'s tokens", []).append(
                (result["truncation_token_ratio"], result["truncation_retention"], collection)
            )
        console.print(table)
    if args.plot:
        plot(points, args.plot)
        console.print(f"plot written to {args.plot}")


def _layout_tokens(index: Index, folder: Path, args: argparse.Namespace) -> dict[str, int]:
    """Each query's plain prompt tokens as `--compress none` sends it (layout kept)."""
    data = load_eval_dataset(folder, args.split)
    qids = list(data.queries)[: args.queries]
    return {qid: prepare(index, data.queries[qid], args.k).plain_tokens for qid in qids}


def plot(points: dict[str, list[tuple[float, float, str]]], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 5))
    shown = [(label, values) for label, values in points.items() if "k=" not in label]
    for number, (label, values) in enumerate(shown):
        truncation = label.startswith("truncation")
        axis.scatter(
            [v[0] for v in values],
            [v[1] for v in values],
            marker="x" if truncation else "o",
            label=label,
            alpha=0.6 if truncation else 1.0,
            color=plt.get_cmap("tab20")(number % 20),  # the default cycle repeats after ten
        )
        for ratio, retention, collection in values:
            axis.annotate(collection.split("-")[0], (ratio, retention), fontsize=7)
    axis.set_xlabel("prompt tokens / plain RAG prompt tokens (its whitespace collapsed)")
    axis.set_ylabel("retention (relevant passages kept, TF-IDF terms)")
    axis.set_title("Context compression: CRAG / TCRA vs truncation at the same tokens")
    axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
