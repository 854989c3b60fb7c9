"""The Typer app, its console and the helpers every command module shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tessera.errors import TesseraError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # a docstring's paragraphs rewrap to the terminal
    help="Tessera: index a corpus, search it, answer from it, evaluate it.",
)
# No markup: what is printed holds users' text (ids, titles, queries, paths), where `[/i]` is text.
out = Console(markup=False)
state = {"debug": False}
MULTI_VALUE_OPTIONS = ("--metrics",)

# Options of every command that fuses several indexes (eval, search --fuse): one wording, one default.
FusionOption = Annotated[
    str, typer.Option(help="How several indexes are fused: rrf (ranks) or wsum (normalised scores).")
]
WeightsOption = Annotated[
    str | None, typer.Option(help="wsum: one weight per index, in order, e.g. 0.3,0.7 (default: equal).")
]
FuseOption = Annotated[
    list[Path],
    typer.Option(help="Another index to fuse with (hybrid search, e.g. BM25 + dense); repeatable."),
]
DepthOption = Annotated[int, typer.Option(help="With --fuse: hits taken from each index.")]
RemoveQueryOption = Annotated[
    bool,
    typer.Option(
        "--remove-query",
        help="Drop a hit whose document id is the query's id (BEIR's evaluation, pyserini's option; "
        "for sets whose queries are corpus documents, e.g. ArguAna, Quora).",
    ),
]
ParamOption = Annotated[
    list[str],
    typer.Option(
        help="Search parameter over the stored ones, e.g. nprobe=16, mode=xtr, prf=rocchio (BM25); "
        "with --fuse each goes to the indexes of its kind."
    ),
]
RerankOption = Annotated[
    str | None,
    typer.Option(
        help="Rerank the top --rerank-depth hits: an encoder spec (minilm, colbert:PATH, ...), "
        "cross-encoder:NAME_OR_PATH, or qlm[:LLM] (query likelihood, UPR)."
    ),
]
RerankDepthOption = Annotated[int, typer.Option(help="With --rerank: hits reranked per query.")]
MmrOption = Annotated[
    float | None,
    typer.Option(
        "--mmr",
        help="Maximal marginal relevance: pick the k hits from the top --mmr-depth for relevance "
        "(weight 1: the ranking as it is) against likeness to those picked (0: novelty alone); "
        "LangChain's lambda_mult, e.g. 0.5.",
    ),
]
MmrDepthOption = Annotated[int | None, typer.Option(help="With --mmr: candidates per query (default 4 x k).")]
PerDocumentOption = Annotated[
    int | None,
    typer.Option(
        help="Chunked indexes: up to N passages of one document, each its own hit (search default 1: "
        "documents by their best passage; rag default: 1 while the index or filter holds k documents, "
        "else enough to fill k)."
    ),
]
FilterOption = Annotated[
    str | None,
    typer.Option(
        "--filter",
        help='Only documents whose metadata match this JSON filter, e.g. \'{"year": {"$gte": 1960}}\' '
        "($eq $ne $gt $gte $lt $lte $in $nin $exists, $and/$or).",
    ),
]


def parse_weights(text: str | None) -> list[float] | None:
    """`0.3,0.7` -> [0.3, 0.7]; None stays None (equal weights)."""
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise TesseraError(f"expected numbers separated by commas, got '{text}'", field="weights") from None


def metric_names(items: list[str]) -> list[str]:
    """`--metrics` as given: repeated, or several in one separated by commas or spaces, except
    inside a metric's brackets (`nDCG(gains={0:0,1:1,2:3})@10` is one metric)."""
    names: list[str] = []
    for item in items:
        depth, name = 0, ""
        for char in item + ",":
            depth += (char in "([{") - (char in ")]}")
            if depth <= 0 and (char == "," or char.isspace()):
                names += [name] if name else []
                depth, name = 0, ""
            else:
                name += char
    return names


def hits_table(hits, title: str) -> Table:
    """Rank, id, score and the start of the text; a metadata column when any hit has metadata."""
    table = Table(title=title)
    with_metadata = any(hit.metadata for hit in hits)
    for column in ("rank", "doc id", "score", "text", *(["metadata"] if with_metadata else [])):
        table.add_column(column, overflow="fold")
    for hit in hits:
        snippet = " ".join(part for part in (hit.title, hit.passage or hit.text) if part)[:160]
        fields = " · ".join(f"{key}: {value}" for key, value in (hit.metadata or {}).items())[:100]
        table.add_row(
            str(hit.rank), hit.doc_id, f"{hit.score:.4f}", snippet, *([fields] if with_metadata else [])
        )
    return table


@app.callback()
def _options(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    state["debug"] = debug
