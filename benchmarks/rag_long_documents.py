"""RAG over long documents: whole documents, each document's best passage, or the best passages?

Question: a RAG prompt built from a chunked index (`tessera index --chunk`) can hold each
retrieved document whole (what `tessera rag` did before passages reached the prompt), each
document's best passage (`per_document=1`), or the k best passages with up to N from one
document (`per_document=N`). Which puts more of the judged-relevant text into the prompt, and
at what length?

Tasks: `tessera data longdoc` over judged BEIR folders (mix: the corpus packed into long
documents; needle: each judged document alone among fillers), 2048 MiniLM tokens a document;
index: MiniLM over passages of 256 tokens overlapping by 32 (`--chunk 256:32`, the README's
recipe when section 24 was measured; section 35 later chose `128:32`). Per test query, a
judged-relevant original document (a member of a long document,
located by `members.tsv`) is **in the prompt** when at least half of its characters lie inside
the context's passages; recall is the share of the query's relevant members in the prompt
(micro-averaged over members; ± the standard error over queries of the per-query share;
"paired diff." the mean per-query difference from `per_document=1`, ± its standard error).
Context length in SmolLM2 tokens (the bundled generator's), passages' text only. The
whole-document row at the same length as the passages ("cut") keeps documents best first,
whole, then the next document's first words, up to the word count of the `per_document=1` context.
The last two rows ask one document (a user's one report or book): the long document holding the
query's first relevant member, searched alone (`doc_ids`) for its 3 best passages (ten would
hold all of its ~9), recall over the relevant members inside it; they compare with each
other, not with the rows above.

    TESSERA_DATA_DIR=../shared/data python benchmarks/rag_long_documents.py \\
        --collections cranfield-beir cisi-beir medline-beir

`--chunks 256:32 128:32` measures each passage setting and prints them side by side (one passage
a document, at k and 2k passages, paired against the first setting at k): results section 35.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.data.datasets import load_eval_dataset
from tessera.indexing.builder import build_index
from tessera.models.causal_lm import DEFAULT_LLM
from tessera.rag import prepare
from tessera.rag.tokens import token_counter
from tessera.retrieval.index import Index

K = 10
PER_DOCUMENT = (1, 2, 3, K)
CHUNK = "256:32"
TOKENS = 2048
ONE_DOCUMENT_K = 3  # passages asked of one document (of about 9): ten would hold all of it
NEEDLE_DOCS = 300  # long documents of a needle task (its judged ones first in the seeded order)


def task(collection: str, mode: str, work: Path) -> Path:
    folder = work / "tasks" / f"{collection}-{mode}-{TOKENS}"
    if not folder.is_dir():
        source = config.data_dir() / collection
        cap = ["--docs", str(NEEDLE_DOCS)] if mode == "needle" else []
        command = ["tessera", "data", "longdoc", str(source), "--tokens", str(TOKENS), "--mode", mode, *cap]
        subprocess.run([*command, "-o", str(folder)], check=True, capture_output=True)
    return folder


def chunk_suffix(chunk: str) -> str:
    """File-name suffix of a passage setting (none for section 24's `256:32`: its files keep their names)."""
    return "" if chunk == CHUNK else f"-{chunk.replace(':', '_')}"


def chunked_index(folder: Path, work: Path, chunk: str = CHUNK) -> Index:
    target = work / "indexes" / f"{folder.name}{chunk_suffix(chunk)}"
    if not (target / "manifest.json").is_file():
        build_index(folder, target, "minilm", chunk=chunk, show_progress=True)
    return Index.load(target)


def relevant_members(folder: Path, source: Path) -> dict[str, list[tuple[str, int, int]]]:
    """query -> the (long document, start, end) of each member it judges relevant (test split)."""
    places: dict[str, list[tuple[str, int, int]]] = {}
    with (folder / "members.tsv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["role"] != "filler":  # fillers are never judged relevant (needle); mix: all members
                places.setdefault(row["member-id"], []).append(
                    (row["long-id"], int(row["start"]), int(row["end"]))
                )
    qrels = load_eval_dataset(source, "test").qrels
    return {
        qid: [place for member, grade in judged.items() if grade > 0 for place in places.get(member, [])]
        for qid, judged in qrels.items()
        if any(grade > 0 and member in places for member, grade in judged.items())
    }


def covered(spans: dict[str, list[tuple[int, int]]], place: tuple[str, int, int]) -> bool:
    doc, start, end = place
    inside = 0
    for lo, hi in merge(spans.get(doc, [])):
        inside += max(0, min(hi, end) - max(lo, start))
    return inside * 2 >= end - start


def merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def whole_documents_cut(hits: list, words: int) -> tuple[dict[str, list[tuple[int, int]]], str]:
    """Documents best first, whole, until `words` words; the last one cut at a word boundary."""
    spans: dict[str, list[tuple[int, int]]] = {}
    parts, left = [], words
    for hit in hits:
        if left <= 0:
            break
        text = hit.text or ""
        tokens = text.split()
        if len(tokens) <= left:
            spans[hit.doc_id] = [(0, len(text))]
            parts.append(text)
            left -= len(tokens)
            continue
        end = list(re.finditer(r"\S+", text))[left - 1].end()  # just after the `left`-th word
        spans[hit.doc_id] = [(0, end)]
        parts.append(text[:end])
        left = 0
    return spans, "\n\n".join(parts)


def task_inputs(collection: str, mode: str, work: Path) -> tuple[Path, dict, dict[str, str]]:
    """A task's folder, each test query's relevant members (where they lie) and its text."""
    folder = task(collection, mode, work)
    judged = relevant_members(folder, config.data_dir() / collection)
    return folder, judged, load_eval_dataset(folder, "test").queries


def record(rows: dict, name: str, spans: dict, context: str, places: list) -> None:
    """One query's row for one context: relevant members in the prompt, and its tokens."""
    row = rows.setdefault(name, {"recall": [], "kept": [], "total": [], "tokens": []})
    kept = sum(covered(spans, place) for place in places)
    row["recall"].append(kept / len(places))
    row["kept"].append(kept)
    row["total"].append(len(places))
    row["tokens"].append(token_counter(DEFAULT_LLM).count(context))


def saved_result(path: Path, compute: Callable[[], dict]) -> dict:
    """A measurement computed once and saved (renamed into place whole), so a rerun reads it."""
    if path.is_file():
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(result))
    partial.replace(path)
    return result


def measure(collection: str, mode: str, work: Path, console: Console, chunk: str = CHUNK) -> dict:
    """Chunked MiniLM retrieval of a task: whole documents, passages, one document alone."""
    return saved_result(
        work / "results" / f"{collection}-{mode}{chunk_suffix(chunk)}.json",
        lambda: measure_chunked(collection, mode, work, console, chunk),
    )


def passage_context(hits: list) -> tuple[dict[str, list[tuple[int, int]]], str]:
    """The passages' spans per document and the context they make, joined as RAG joins them."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for hit in hits:
        spans.setdefault(hit.doc_id, []).append(hit.offsets)
    return spans, "\n\n".join(hit.passage or "" for hit in hits)


def measure_chunked(collection: str, mode: str, work: Path, console: Console, chunk: str = CHUNK) -> dict:
    folder, judged, queries = task_inputs(collection, mode, work)
    index = chunked_index(folder, work, chunk)
    rows: dict[str, dict[str, list[float]]] = {}
    for qid, places in judged.items():
        question = queries[qid]
        documents = index.search(question, K, with_text=True)
        whole = {hit.doc_id: [(0, len(hit.text or ""))] for hit in documents}
        record(rows, f"whole documents, k={K}", whole, "\n\n".join(h.text or "" for h in documents), places)
        words = 0
        for per_document in PER_DOCUMENT:
            hits = index.search(question, K, with_text=True, per_document=per_document)
            spans, text = passage_context(hits)
            record(rows, f"passages, per_document={per_document}", spans, text, places)
            if per_document == 1:
                words = len(text.split())
        spans, text = passage_context(index.search(question, 2 * K, with_text=True, per_document=1))
        record(rows, f"passages, per_document=1, k={2 * K}", spans, text, places)  # twice the passages
        cut_spans, cut_text = whole_documents_cut(documents, words)
        record(rows, "whole documents, cut to per_document=1's words", cut_spans, cut_text, places)
        # Asking one document (a report, a book): the long document holding the query's first
        # relevant member, searched alone (`doc_ids`), its relevant members the ones that count.
        alone = places[0][0]
        inside = [place for place in places if place[0] == alone]
        for per_document in (1, ONE_DOCUMENT_K):
            hits = index.search(
                question, ONE_DOCUMENT_K, with_text=True, doc_ids=[alone], per_document=per_document
            )
            spans, text = passage_context(hits)  # every hit is `alone`'s
            name = f"one document alone, k={ONE_DOCUMENT_K}, per_document={per_document}"
            record(rows, name, spans, text, inside)
    result = {
        "queries": len(judged),
        "documents": len(index),
        "passages": int(len(index.passages)),
        "rows": rows,
    }
    console.log(f"{collection} {mode} ({chunk}): {len(judged)} queries")
    return result


def bm25_index(folder: Path, work: Path) -> Index:
    target = work / "indexes" / f"{folder.name}-bm25"
    if not (target / "manifest.json").is_file():
        build_index(folder, target, "bm25", show_progress=False)
    return Index.load(target)


def measure_bm25(collection: str, mode: str, work: Path, console: Console) -> dict:
    """The same tasks through a BM25 index, which retrieves whole long documents: the prompt
    with each whole, with each cut to its best window (`rag.windows`, what `prepare` does), and
    whole documents cut to the windows' words."""
    return saved_result(
        work / "results" / f"{collection}-{mode}-bm25.json",
        lambda: measure_whole_documents(collection, mode, work, console),
    )


def measure_whole_documents(collection: str, mode: str, work: Path, console: Console) -> dict:
    folder, judged, queries = task_inputs(collection, mode, work)
    index = bm25_index(folder, work)
    rows: dict[str, dict[str, list[float]]] = {}
    for qid, places in judged.items():
        question = queries[qid]
        documents = index.search(question, K, with_text=True)
        prompt = prepare(index, question, k=K)
        windows: dict[str, list[tuple[int, int]]] = {}
        for passage in prompt.passages:
            windows.setdefault(passage.doc_id, []).append(passage.offsets or (0, len(passage.text)))
        text = "\n\n".join(p.text for p in prompt.passages)
        whole = {hit.doc_id: [(0, len(hit.text or ""))] for hit in documents}
        cut_spans, cut_text = whole_documents_cut(documents, len(text.split()))
        for name, spans, context in (
            (f"BM25, whole documents, k={K}", whole, "\n\n".join(h.text or "" for h in documents)),
            (f"BM25, each document's best window, k={K}", windows, text),
            ("BM25, whole documents cut to the windows' words", cut_spans, cut_text),
        ):
            record(rows, name, spans, context, places)
    console.log(f"{collection} {mode} BM25: {len(judged)} queries")
    return {"queries": len(judged), "documents": len(index), "passages": 0, "rows": rows}


def se(values: list[float]) -> float:
    return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0


def table(collection: str, mode: str, result: dict) -> Table:
    out = Table(
        title=f"{collection} {mode} {TOKENS}: {result['queries']} test queries, {result['documents']} long "
        f"documents" + (f", {result['passages']} passages" if result["passages"] else " (BM25, no passages)")
    )
    columns = (
        "context",
        "relevant in prompt",
        "recall ± se",
        "ratio",
        "paired diff. ± se",
        "tokens",
        "ratio",
    )
    for column in columns:
        out.add_column(column, justify="left" if column == "context" else "right")
    base = result["rows"].get(f"passages, per_document={PER_DOCUMENT[0]}") or next(
        iter(result["rows"].values())
    )
    # (the one-document rows count only the members inside that document: compare them together)
    base_recall = sum(base["kept"]) / sum(base["total"])
    base_tokens = statistics.mean(base["tokens"])
    for name, row in result["rows"].items():
        recall = sum(row["kept"]) / sum(row["total"])
        tokens = statistics.mean(row["tokens"])
        paired = ""
        if not name.startswith("one document"):  # the same queries and members
            diffs = [a - b for a, b in zip(row["recall"], base["recall"], strict=True)]
            paired = f"{statistics.mean(diffs):+.3f} ± {se(diffs):.3f}"
        out.add_row(
            name,
            f"{sum(row['kept'])}/{sum(row['total'])}",
            f"{recall:.3f} ± {se(row['recall']):.3f}",
            f"{recall / base_recall:.3f}x" if base_recall else "-",
            paired,
            f"{tokens:.0f}",
            f"{tokens / base_tokens:.2f}x",
        )
    return out


def compare_chunks(results: dict[str, dict[str, dict]]) -> Table:
    """Per task, each passage setting's prompt recall (one passage a document) and tokens, at k
    and at 2k passages, against the first setting at k (paired over the same queries)."""
    out = Table(title=f"Passage settings for RAG: recall of judged members in the prompt, k={K} and {2 * K}")
    for column in ("task", "--chunk", "k", "recall ± se", "paired diff. ± se", "tokens", "tokens ratio"):
        out.add_column(column, justify="left" if column in ("task", "--chunk") else "right")
    for name, by_chunk in results.items():
        base = next(iter(by_chunk.values()))["rows"]["passages, per_document=1"]
        for chunk, result in by_chunk.items():
            for k, row_name in (
                (K, "passages, per_document=1"),
                (2 * K, f"passages, per_document=1, k={2 * K}"),
            ):
                row = result["rows"][row_name]
                diffs = [a - b for a, b in zip(row["recall"], base["recall"], strict=True)]
                out.add_row(
                    name,
                    chunk,
                    str(k),
                    f"{statistics.mean(row['recall']):.3f} ± {se(row['recall']):.3f}",
                    f"{statistics.mean(diffs):+.3f} ± {se(diffs):.3f}",
                    f"{statistics.mean(row['tokens']):.0f}",
                    f"{statistics.mean(row['tokens']) / statistics.mean(base['tokens']):.2f}x",
                )
        out.add_section()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="+", default=["cranfield-beir", "cisi-beir", "medline-beir"])
    parser.add_argument("--modes", nargs="+", default=["mix", "needle"])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "rag-long-documents")
    parser.add_argument(
        "--chunks", nargs="+", default=[CHUNK], help="passage settings; the first is the baseline"
    )
    parser.add_argument("--skip-bm25", action="store_true", help="only the chunked MiniLM tables")
    args = parser.parse_args()
    console = Console(width=150)
    compared: dict[str, dict[str, dict]] = {}
    for collection in args.collections:
        for mode in args.modes:
            for chunk in args.chunks:
                result = measure(collection, mode, args.work, console, chunk)
                compared.setdefault(f"{collection} {mode}", {})[chunk] = result
                console.print(table(collection, mode, result))
            if not args.skip_bm25:
                console.print(table(collection, mode, measure_bm25(collection, mode, args.work, console)))
    if len(args.chunks) > 1:
        console.print(compare_chunks(compared))


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
