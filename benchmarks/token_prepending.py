"""Question: does Token Prepending lift PromptEOL sentence embeddings of a small decoder-only LLM
(SmolLM2-135M) for retrieval, and where do they stand beside MiniLM and plain mean pooling?

    python benchmarks/token_prepending.py                      # the table (test qrels)
    python benchmarks/token_prepending.py --sweep --out s.json # every config, train and test qrels
    python benchmarks/token_prepending.py --report s.json      # the defaults' rows of that sweep

A whole collection through a 135M-parameter LLM is too slow for two CPU cores, so each collection
is a fixed sample (seed 0): two relevant documents of each of randomly drawn train and test
queries (while 80% of `--docs` lasts), filled with random other documents up to `--docs`, each
document cut to its first `--words` words (all encoders see the same text). The defaults (600
documents of 64 words) keep every judged query of Cranfield, CISI and MEDLINE; the first sweep
used 120 of 32 words (docs/results.md section 6). The same sample serves the sweep
(train qrels) and the table (test qrels). nDCG@10 from ir_measures over every judged query;
± is the standard error over queries.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import ir_measures
import numpy as np
from rich.console import Console
from rich.table import Table

from tessera import build_index, config, evaluate
from tessera.cli import at_least
from tessera.data.datasets import load_eval_dataset
from tessera.models.llm import (
    DEFAULT_EXIT,
    DEFAULT_LAYER,
    DEFAULT_PLACEHOLDER,
    DEFAULT_START,
    PLACEHOLDERS,
    LLMEncoder,
    LLMSpec,
)

METRIC = ir_measures.parse_measure("nDCG@10")


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _read_qrels(path: Path) -> dict[str, dict[str, str]]:
    qrels: dict[str, dict[str, str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        row = line.split("\t")
        if number == 0 and row[0] == "query-id":
            continue
        qrels.setdefault(row[0], {})[row[1]] = row[2]
    return qrels


def sample_collection(
    source: Path, target: Path, n_docs: int, words: int, per_query: int = 2, seed: int = 0
) -> Path:
    """A BEIR folder: up to `per_query` relevant documents of drawn train/test queries, random
    fill, texts cut; the qrels keep every judgment whose document is in the sample."""
    rng = random.Random(seed)
    docs = {d["_id"]: d for d in _read_jsonl(source / "corpus.jsonl")}
    splits = {s: _read_qrels(source / "qrels" / f"{s}.tsv") for s in ("train", "test")}
    order = {s: rng.sample(sorted(q), len(q)) for s, q in splits.items()}
    kept: set[str] = set()
    chosen: dict[str, list[str]] = {"train": [], "test": []}
    budget = int(0.8 * n_docs)
    while any(order.values()):
        for split in ("train", "test"):
            if order[split]:
                qid = order[split].pop()
                relevant = sorted(d for d, g in splits[split][qid].items() if d in docs and int(g) > 0)
                judged = set(rng.sample(relevant, min(per_query, len(relevant))))
                if judged and len(kept | judged) <= budget:
                    kept |= judged
                    chosen[split].append(qid)
    others = sorted(set(docs) - kept)
    kept |= set(rng.sample(others, max(0, min(len(others), n_docs - len(kept)))))
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    with (target / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc_id in sorted(kept):
            doc = docs[doc_id]
            text = " ".join(doc.get("text", "").split()[:words])
            handle.write(json.dumps({"_id": doc_id, "title": doc.get("title", ""), "text": text}) + "\n")
    wanted = set(chosen["train"]) | set(chosen["test"])
    with (target / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for query in _read_jsonl(source / "queries.jsonl"):
            if query["_id"] in wanted:
                handle.write(json.dumps({"_id": query["_id"], "text": query["text"]}) + "\n")
    for split, qids in chosen.items():
        lines = ["query-id\tcorpus-id\tscore"]
        lines += [f"{q}\t{d}\t{g}" for q in qids for d, g in splits[split][q].items() if d in kept]
        (target / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def per_query(run: dict[str, dict[str, float]], qrels) -> np.ndarray:
    values = {m.query_id: m.value for m in ir_measures.iter_calc([METRIC], qrels, run)}
    return np.array([values.get(q, 0.0) for q in qrels], dtype=float)


def fmt(values: np.ndarray) -> str:
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return f"{values.mean():.4f} ± {se:.4f}"


# ---------------------------------------------------------------- sweep (train qrels)


def sweep(
    folders: dict[str, Path],
    layers: list[int],
    exits: list[int],
    placeholders: list[str],
    console: Console,
    out: Path | None,
) -> None:
    """One encoding pass per (collection, config) gives every output layer and both splits.

    The train rows choose the defaults; the test rows of the same pass confirm them. MiniLM goes
    through `build_index` + `evaluate` as the anchor.
    """
    configs = [("PromptEOL", LLMSpec("smollm2"))]
    configs += [
        (tp_label(e, p), LLMSpec("smollm2", tp=True, exit=e, placeholder=p))
        for p in placeholders
        for e in exits
    ]
    configs.append(("mean pooling", LLMSpec("smollm2", pool="mean")))
    results: dict[str, dict[str, dict[str, list[float]]]] = {"train": {}, "test": {}}
    for name, folder in folders.items():
        corpus = _read_jsonl(folder / "corpus.jsonl")
        ids = [d["_id"] for d in corpus]
        texts = [f"{d['title']} {d['text']}" if d["title"] else d["text"] for d in corpus]
        splits = {split: load_eval_dataset(folder, split) for split in results}
        with tempfile.TemporaryDirectory() as tmp:
            index = build_index(folder, Path(tmp) / "minilm", encoder="minilm", show_progress=False)
            for split, data in splits.items():
                run = evaluate([index], data, metrics=["nDCG@10"], show_progress=False).run
                scored = {q: {h.doc_id: h.score for h in hits} for q, hits in run.items()}
                results[split].setdefault("MiniLM (minilm)", {})[name] = per_query(
                    scored, data.qrels
                ).tolist()
        for label, options in configs:
            encoder = LLMEncoder(options)
            start = time.perf_counter()
            doc_vectors = encoder.embed(texts, layers)
            for split, data in splits.items():
                qids = list(data.queries)
                query_vectors = encoder.embed([data.queries[q] for q in qids], layers)
                for layer in layers:
                    scores = query_vectors[layer] @ doc_vectors[layer].T
                    run = {
                        q: {ids[j]: float(row[j]) for j in range(len(ids))}
                        for q, row in zip(qids, scores, strict=True)
                    }
                    values = per_query(run, data.qrels).tolist()
                    results[split].setdefault(f"{label} | layer={layer}", {})[name] = values
            seconds = time.perf_counter() - start
            console.print(f"{name} {label}: {len(texts)} docs + queries in {seconds:.0f} s", highlight=False)
            if out is not None:
                out.write_text(json.dumps(results))
    for split, rows in results.items():
        table = Table(title=f"nDCG@10 on the {split} qrels (± standard error over queries)")
        for column in ["config", *folders, "mean"]:
            table.add_column(column, justify="left" if column == "config" else "right")
        for label, by_name in rows.items():
            means = [np.mean(by_name[n]) for n in folders if n in by_name]
            cells = [fmt(np.array(by_name[n])) if n in by_name else "-" for n in folders]
            table.add_row(label, *cells, f"{np.mean(means):.4f}")
        console.print(table)


def tp_label(exit: int, placeholder: str) -> str:
    """Sweep row label; the original placeholder keeps the label earlier sweeps used."""
    suffix = "" if placeholder == "token" else f" pst={placeholder}"
    return f"TP start={DEFAULT_START} exit={exit}{suffix}"


def report(path: Path, console: Console) -> None:
    """The four systems at the chosen defaults, from a sweep's per-query values."""
    results = json.loads(path.read_text())
    chosen = {
        "MiniLM (minilm)": "MiniLM (minilm)",
        "SmolLM2 mean pooling": f"mean pooling | layer={DEFAULT_LAYER['mean']}",
        "PromptEOL": f"PromptEOL | layer={DEFAULT_LAYER['last']}",
        "PromptEOL + TP": f"{tp_label(DEFAULT_EXIT, DEFAULT_PLACEHOLDER)} | layer={DEFAULT_LAYER['last']}",
    }
    for split, rows in results.items():
        names = list(rows["MiniLM (minilm)"])
        table = Table(title=f"nDCG@10 ± se, {split} qrels; ratio vs PromptEOL; TP - PromptEOL paired")
        table.add_column("system")
        for name in names:
            table.add_column(name, justify="right")
            table.add_column("ratio", justify="right")
        for label, key in chosen.items():
            cells = []
            for name in names:
                values, base = np.array(rows[key][name]), np.array(rows[chosen["PromptEOL"]][name])
                cells += [fmt(values), f"{values.mean() / base.mean():.3f}"]
            table.add_row(label, *cells)
        diffs = [
            np.array(rows[chosen["PromptEOL + TP"]][n]) - np.array(rows[chosen["PromptEOL"]][n])
            for n in names
        ]
        table.add_row("TP - PromptEOL (paired)", *[c for d in diffs for c in (fmt(d), "")])
        console.print(table)


# ---------------------------------------------------------------- table (test qrels)


def systems() -> list[tuple[str, str]]:
    return [
        ("MiniLM (minilm)", "minilm"),
        ("SmolLM2 mean pooling", f"llm:smollm2,pool=mean,layer={DEFAULT_LAYER['mean']}"),
        ("PromptEOL", "llm:smollm2"),
        ("PromptEOL + Token Prepending", "llm:smollm2+tp"),
    ]


def bench(name: str, folder: Path, work: Path, console: Console) -> None:
    rows = []
    for label, spec in systems():
        start = time.perf_counter()
        index = build_index(folder, work / label.replace(" ", "_"), encoder=spec, show_progress=False)
        build_s = time.perf_counter() - start
        result = evaluate([index], folder, split="test", metrics=["nDCG@10"], show_progress=False)
        run = {q: {h.doc_id: h.score for h in hits} for q, hits in result.run.items()}
        values = per_query(run, load_eval_dataset(folder, "test").qrels)
        manifest = json.loads((Path(index) / "manifest.json").read_text())
        rows.append((label, manifest["encoder"], values, build_s))
    base = next(values for label, _, values, _ in rows if label == "PromptEOL").mean()
    docs = sum(1 for _ in (folder / "corpus.jsonl").open())
    table = Table(title=f"{name} (sample: {docs} docs, {len(rows[0][2])} judged test queries)")
    for column in ["system", "encoder spec (manifest)", "nDCG@10 ± se", "ratio vs PromptEOL", "index s"]:
        table.add_column(column, justify="left" if column.startswith(("system", "encoder")) else "right")
    for label, spec, values, build_s in rows:
        table.add_row(label, spec, fmt(values), f"{values.mean() / base:.3f}", f"{build_s:.0f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="+", default=["cranfield-beir", "cisi-beir", "medline-beir"])
    parser.add_argument("--docs", type=at_least(1), default=600, help="documents per collection sample")
    parser.add_argument("--words", type=at_least(1), default=64, help="words kept of each document")
    parser.add_argument("--sweep", action="store_true", help="layer/exit sweep on the train qrels")
    parser.add_argument("--layers", nargs="+", type=int, default=[-1, -2, -4, 15])
    parser.add_argument("--exits", nargs="+", type=at_least(1), default=[2, 4, 8])
    parser.add_argument(
        "--placeholders", nargs="+", choices=PLACEHOLDERS, default=[DEFAULT_PLACEHOLDER], help="TP pst values"
    )
    parser.add_argument("--out", type=Path, help="sweep: per-query values as JSON")
    parser.add_argument("--report", type=Path, help="print the defaults' table from a sweep's JSON")
    args = parser.parse_args()
    console = Console(width=160)
    if args.report:
        report(args.report, console)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folders = {
            c: sample_collection(config.data_dir() / c, work / "samples" / c, args.docs, args.words)
            for c in args.collections
        }
        if args.sweep:
            sweep(folders, args.layers, args.exits, args.placeholders, console, args.out)
            return
        for name, folder in folders.items():
            bench(name, folder, work / name, console)
    console.print(
        f"defaults: layer={DEFAULT_LAYER}, start={DEFAULT_START}, exit={DEFAULT_EXIT}, "
        f"pst={DEFAULT_PLACEHOLDER}"
    )


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
