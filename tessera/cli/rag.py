"""`tessera rag` and `tessera eval-rag`: answer from an index, and measure context compression."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tessera.cli.app import (
    DepthOption,
    FilterOption,
    FuseOption,
    FusionOption,
    MmrDepthOption,
    MmrOption,
    ParamOption,
    PerDocumentOption,
    RerankDepthOption,
    RerankOption,
    WeightsOption,
    app,
    out,
    parse_weights,
)
from tessera.retrieval.params import parse_params

if TYPE_CHECKING:
    from tessera.rag.generators import Generator
    from tessera.rag.pipeline import RagPrompt

Compress = Annotated[str, typer.Option(help="none | truncation | crag | tcra-summary | tcra-semantic.")]
Budget = Annotated[
    int | None, typer.Option(help="Context tokens after compression (default: the method's own).")
]
Order = Annotated[str, typer.Option(help="Where the best passages sit: rank | reverse | sandwich.")]
K = Annotated[int, typer.Option("-k", help="Passages retrieved.")]
Option = Annotated[
    list[str],
    typer.Option(help="Compressor option, e.g. ratio=0.4, floor=0.85, summarizer=generator, fill=score."),
]
MaxNewTokens = Annotated[int, typer.Option(help="Answer length cap in tokens.")]


def _options(items: list[str]) -> dict[str, float | str]:
    """Compressor options; whole numbers become ints (max_clusters=4)."""
    return {
        key: int(v) if isinstance(v, float) and v.is_integer() else v
        for key, v in parse_params(items, field="option").items()
    }


@app.command()
def rag(
    index_dir: Annotated[Path, typer.Argument(help="Index directory.")],
    question: Annotated[str, typer.Argument(help="The question.")],
    k: K = 10,
    compress: Compress = "none",
    budget: Budget = None,
    order: Order = "rank",
    generator: Annotated[
        str, typer.Option(help="local | local:MODEL | http(s)://HOST/v1[#MODEL] | none.")
    ] = "local",
    max_new_tokens: MaxNewTokens = 256,
    option: Option = [],  # noqa: B006
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of streaming.")
    ] = False,
    fuse: FuseOption = [],  # noqa: B006
    fusion: FusionOption = "rrf",
    weights: WeightsOption = None,
    depth: DepthOption = 100,
    param: ParamOption = [],  # noqa: B006
    rerank: RerankOption = None,
    rerank_depth: RerankDepthOption = 100,
    filter: FilterOption = None,
    mmr: MmrOption = None,
    mmr_depth: MmrDepthOption = None,
    per_document: PerDocumentOption = None,
    chat: Annotated[
        bool, typer.Option("--chat", help="Then read follow-up questions, one a line, until an empty one.")
    ] = False,
    follow_up: Annotated[
        str | None, typer.Option(help="With --chat, what a follow-up searches: last | turns | rewrite.")
    ] = None,
) -> None:
    """Answer a question: retrieve, compress the context, generate (streamed).

    Retrieval from one index, or several fused; --filter: among documents whose metadata match;
    --mmr: passages unlike each other; a chunked index: passages, not whole documents. --chat
    goes on as a conversation: each follow-up is answered after the earlier turns."""
    from tessera.data.metadata import parse_filter
    from tessera.errors import TesseraError
    from tessera.rag.conversation import DEFAULT_FOLLOW_UP, check_follow_up
    from tessera.rag.generators import check_max_new_tokens, open_generator
    from tessera.rag.pipeline import open_indexes, prepare_chat
    from tessera.retrieval.diversify import as_mmr
    from tessera.retrieval.fusion import check_retrieval
    from tessera.retrieval.rerank import load_reranker

    chosen = parse_weights(weights)
    check_retrieval(len(fuse), fusion, chosen)
    where = parse_filter(filter)
    diversity = as_mmr(mmr, mmr_depth)
    if chat and as_json:
        raise TesseraError("--chat streams a conversation; it does not combine with --json", field="chat")
    if follow_up is not None and not chat:  # it was ignored
        raise TesseraError("says how --chat searches follow-up questions: add --chat", field="follow-up")
    follow_up = follow_up or DEFAULT_FOLLOW_UP
    if not question.strip():
        raise TesseraError("the question is empty", field="question")
    check_max_new_tokens(max_new_tokens)
    llm = open_generator(generator)
    check_follow_up(follow_up, llm is not None)
    opened, *others = open_indexes(index_dir, fuse, parse_params(param))
    options = {
        "k": k,
        "compress": compress,
        "budget": budget,
        "order": order,
        "compressor_options": _options(option),
        "fuse": others,
        "fusion": fusion,
        "weights": chosen,
        "depth": depth,
        "rerank": load_reranker(rerank) if rerank else None,
        "rerank_depth": rerank_depth,
        "filter": where,
        "mmr": diversity,
        "per_document": per_document,
    }
    conversation = [{"role": "user", "content": question}]
    prompt = prepare_chat(opened, conversation, llm, follow_up, **options)
    if as_json:
        answer = llm.generate(prompt.messages, max_new_tokens=max_new_tokens) if llm else None
        print(
            json.dumps(
                {
                    "question": question,
                    "indexes": [str(path) for path in [index_dir, *fuse]],
                    "fusion": fusion if fuse else None,
                    "rerank": rerank,
                    "filter": where,
                    "mmr": asdict(diversity) if diversity else None,
                    "k": k,
                    "compress": compress,
                    "budget": budget,
                    "order": order,
                    "compressor_options": options["compressor_options"],
                    "generator": llm.name if llm else None,
                    "answer": answer,
                    "sources": prompt.sources,
                    "context": [{"text": b.text, "sources": list(b.sources)} for b in prompt.blocks],
                    "plain_tokens": prompt.plain_tokens,
                    "prompt_tokens": prompt.prompt_tokens,
                },
                indent=2,
            )
        )
        return
    while True:
        answer = _show(prompt, compress, llm, max_new_tokens)
        if not chat or not (question := _next_question()):
            return
        conversation += [{"role": "assistant", "content": answer}] if answer else []
        conversation.append({"role": "user", "content": question})
        prompt = prepare_chat(opened, conversation, llm, follow_up, **options)


def _next_question() -> str:
    """The next line of standard input ('' at its end); a prompt where a person types it."""
    if sys.stdin.isatty():
        sys.stdout.write("> ")
        sys.stdout.flush()
    return sys.stdin.readline().strip()


def _show(prompt: RagPrompt, compress: str, llm: Generator | None, max_new_tokens: int) -> str | None:
    """The sources and token counts, then the answer as it streams; the answer."""
    from tessera.rag.pipeline import stream_answer

    if prompt.search_query is not None:
        out.print(f"searched: {' '.join(prompt.search_query.split())}", highlight=False, soft_wrap=True)
    # As the prompt numbers them, so the answer's [n] names the line marked [n] (a compressor's
    # block may hold several passages; one it left out is marked [-]).
    cited = sorted(prompt.sources, key=lambda source: (source["cite"] is None, source["cite"] or 0))
    for source in cited:
        title = " ".join((source["title"] or "").split())
        where = " (characters {}-{})".format(*source["offsets"]) if "offsets" in source else ""
        where = f" (page {source['page']})" if "page" in source else where
        number = "-" if source["cite"] is None else source["cite"]
        line = f"[{number}] {source['doc_id']}{where}  {title}".rstrip()
        out.print(line, highlight=False, soft_wrap=True)
    ratio = prompt.prompt_tokens / prompt.plain_tokens
    out.print(
        f"prompt tokens: {prompt.plain_tokens} plain, {prompt.prompt_tokens} after '{compress}' "
        f"({ratio:.0%})",
        highlight=False,
        soft_wrap=True,
    )
    if llm is None:
        return None
    pieces = []
    try:
        for piece in stream_answer(prompt, llm, max_new_tokens):
            pieces.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
    finally:  # an error after part of the answer goes on a line of its own
        sys.stdout.write("\n")
        sys.stdout.flush()
    return "".join(pieces)


@app.command("eval-rag")
def eval_rag(
    index_dir: Annotated[Path, typer.Argument(help="Index directory.")],
    dataset: Annotated[str, typer.Option(help="ir_datasets id or BEIR folder.")],
    compress: Compress = "crag",
    split: Annotated[str, typer.Option(help="Qrels split.")] = "test",
    k: K = 10,
    budget: Budget = None,
    order: Order = "rank",
    generator: Annotated[
        str, typer.Option(help="none | local | local:MODEL | URL (adds answer agreement).")
    ] = "none",
    max_queries: Annotated[int | None, typer.Option(help="Only the first N judged queries.")] = None,
    max_new_tokens: MaxNewTokens = 128,
    option: Option = [],  # noqa: B006
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json", help="Write the summary and per-query rows here (a rerun resumes an interrupted one)."
        ),
    ] = None,
    fuse: FuseOption = [],  # noqa: B006
    fusion: FusionOption = "rrf",
    weights: WeightsOption = None,
    depth: DepthOption = 100,
    param: ParamOption = [],  # noqa: B006
    rerank: RerankOption = None,
    rerank_depth: RerankDepthOption = 100,
    mmr: MmrOption = None,
    mmr_depth: MmrDepthOption = None,
    per_document: PerDocumentOption = None,
) -> None:
    """Measure a compressor over judged queries.

    Token ratio, retention, the truncation baseline, recall of the context."""
    from tessera.rag.evaluate import evaluate_rag
    from tessera.retrieval.diversify import as_mmr

    result = evaluate_rag(
        index_dir,
        dataset,
        split=split,
        k=k,
        compress=compress,
        budget=budget,
        order=order,
        generator=generator,
        max_queries=max_queries,
        max_new_tokens=max_new_tokens,
        compressor_options=_options(option),
        json_path=json_path,
        fuse=fuse,
        fusion=fusion,
        weights=parse_weights(weights),
        depth=depth,
        search_params=parse_params(param),
        rerank=rerank,
        rerank_depth=rerank_depth,
        mmr=as_mmr(mmr, mmr_depth),
        per_document=per_document,
    )
    table = Table(title=f"{result['dataset']}: {compress} over {result['query_count']} queries")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name in (
        "token_ratio",
        "retention",
        "semantic_retention",
        "truncation_retention",
        "truncation_semantic_retention",
        "recall",
        "kept_recall",
        "truncation_kept_recall",
        "answer_agreement",
        "compress_ms",
    ):
        if result[name] is not None:
            table.add_row(name, f"{result[name]:.4f}")
    out.print(table)
