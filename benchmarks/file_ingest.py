"""Folders of documents: what reading Markdown, HTML and PDF files costs, and whether it changes
what retrieval finds.

Question: a user points `tessera index` at a folder of files instead of a JSONL corpus. How
many documents a second does each reader give (markup removed, PDF text layers extracted), and
does the same collection, written as files, rank the same (BM25 nDCG@10 on the judged test
queries, against the JSONL corpus)?

Each collection's documents are written once per format under `--work`: Markdown (title as the
first heading), HTML (title in <title>, text in <p>) and PDF (through matplotlib's PDF backend
with the standard fonts: the title as the document's Title entry, the text wrapped at 90
characters, a page per 3,000 characters). Reading is timed over the whole folder (best of
`--repeats`, on a warm file cache), the JSONL reader beside it; each folder is indexed with BM25
and evaluated on the test split.

    TESSERA_DATA_DIR=../shared/data python benchmarks/file_ingest.py --collections cranfield-beir cisi-beir
"""

from __future__ import annotations

import argparse
import html
import json
import textwrap
import time
from pathlib import Path

import ir_measures
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.cli import at_least
from tessera.data.datasets import load_eval_dataset
from tessera.data.files import read_folder
from tessera.data.readers import read_jsonl
from tessera.eval.runs import retrieve
from tessera.indexing.builder import build_index
from tessera.retrieval.index import Index

FORMATS = ("jsonl", "markdown", "html", "pdf")
PAGE_CHARS = 3000
NDCG = ir_measures.parse_measure("nDCG@10")


def write_pdf(path: Path, title: str, text: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    lines = textwrap.wrap(" ".join(text.split()), 90, break_on_hyphens=False) or [""]
    per_page = PAGE_CHARS // 90
    with (
        matplotlib.rc_context({"pdf.use14corefonts": True}),
        PdfPages(path, metadata={"Title": title}) as pdf,
    ):
        for start in range(0, len(lines), per_page):
            figure = plt.figure(figsize=(8.27, 11.69))
            page = "\n".join(lines[start : start + per_page])
            figure.text(0.05, 0.95, page, va="top", fontsize=9, family="Helvetica", fontweight="medium")
            pdf.savefig(figure)
            plt.close(figure)


def write_folders(collection: Path, work: Path) -> dict[str, Path]:
    """The collection once per format (written once; a finished folder has a `.done` mark)."""
    folders = {"jsonl": collection / "corpus.jsonl"}
    docs = [json.loads(line) for line in (collection / "corpus.jsonl").open(encoding="utf-8")]
    for kind in FORMATS[1:]:
        folder = work / "folders" / f"{collection.name}-{kind}"
        folders[kind] = folder
        if (folder / ".done").is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for doc in docs:
            title, text = " ".join(doc.get("title", "").split()), doc["text"]
            if kind == "markdown":
                (folder / f"{doc['_id']}.md").write_text(
                    f"# {title}\n\n{text}\n" if title else text, encoding="utf-8"
                )
            elif kind == "html":
                head = f"<title>{html.escape(title)}</title>" if title else ""
                page = f"<html><head>{head}</head><body><p>{html.escape(text)}</p></body></html>"
                (folder / f"{doc['_id']}.html").write_text(page, encoding="utf-8")
            else:
                write_pdf(folder / f"{doc['_id']}.pdf", title, text)
        (folder / ".done").write_text("")
    return folders


def read_rate(kind: str, source: Path, repeats: int) -> tuple[float, int]:
    """Documents a second through the reader (best of `repeats`), and how many it gave."""
    best, count = float("inf"), 0
    for _ in range(repeats):
        started = time.perf_counter()
        count = sum(1 for _ in (read_jsonl(source) if kind == "jsonl" else read_folder(source)))
        best = min(best, time.perf_counter() - started)
    return count / best, count


def measure(collection: str, work: Path, repeats: int, console: Console) -> list[dict]:
    saved = work / "results" / f"{collection}.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    source = config.data_dir() / collection
    folders = write_folders(source, work)
    test = load_eval_dataset(source, "test")
    rows = []
    for kind, folder in folders.items():
        rate, count = read_rate(kind, folder, repeats)
        index_dir = work / "indexes" / f"{collection}-{kind}"
        if not (index_dir / "manifest.json").is_file():
            build_index(folder, index_dir, "bm25", show_progress=False)
        run = retrieve(Index.load(index_dir), test, 10, show_progress=False)
        scores = {qid: {hit.doc_id: hit.score for hit in hits} for qid, hits in run.items()}
        per_query = dict.fromkeys(test.qrels, 0.0)
        per_query.update({m.query_id: m.value for m in ir_measures.iter_calc([NDCG], test.qrels, scores)})
        size = sum(p.stat().st_size for p in ([folder] if folder.is_file() else folder.iterdir()))
        rows.append(
            {"format": kind, "documents": count, "docs_per_s": rate, "bytes": size, "per_query": per_query}
        )
        console.log(f"{collection} {kind}: {rate:,.0f} docs/s")
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(rows))
    return rows


def table(collection: str, rows: list[dict]) -> Table:
    out = Table(title=f"{collection}: reading a folder of files, and BM25 on its test queries")
    for column in ("format", "documents", "MB", "docs/s", "ratio", "nDCG@10", "ratio", "queries that differ"):
        out.add_column(column, justify="left" if column == "format" else "right")
    base = rows[0]
    base_ndcg = sum(base["per_query"].values()) / len(base["per_query"])
    for row in rows:
        ndcg = sum(row["per_query"].values()) / len(row["per_query"])
        differ = sum(abs(row["per_query"][q] - v) > 1e-9 for q, v in base["per_query"].items())
        out.add_row(
            row["format"],
            str(row["documents"]),
            f"{row['bytes'] / 1e6:.1f}",
            f"{row['docs_per_s']:,.0f}",
            f"{row['docs_per_s'] / base['docs_per_s']:.3f}x",
            f"{ndcg:.4f}",
            f"{ndcg / base_ndcg:.4f}x",
            f"{differ} of {len(base['per_query'])}",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="+", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "file-ingest")
    parser.add_argument("--repeats", type=at_least(1), default=3)
    args = parser.parse_args()
    console = Console(width=150)
    for collection in args.collections:
        console.print(table(collection, measure(collection, args.work, args.repeats, console)))


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
