"""retrieve -> compress -> generate, as one call: `tessera.rag.answer(index, question, ...)`."""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from tessera.data.metadata import Filter, parse_filter
from tessera.errors import TesseraError, TesseraWarning
from tessera.models.causal_lm import DEFAULT_LLM
from tessera.rag.compressors import Tools, make_compressor
from tessera.rag.compressors.base import check_budget
from tessera.rag.conversation import DEFAULT_FOLLOW_UP
from tessera.rag.conversation import search_query as follow_up_query
from tessera.rag.generators import Generator, check_max_new_tokens, open_generator
from tessera.rag.messages import chat_messages
from tessera.rag.passages import Block, Passage, cite_numbers, passage_blocks
from tessera.rag.prompt import (
    build_messages,
    conversation_tokens,
    order_blocks,
    recent_turns,
    with_conversation,
)
from tessera.rag.tokens import Message, token_counter
from tessera.rag.windows import context_budget, context_window, fit_passages
from tessera.retrieval.diversify import Mmr, as_mmr
from tessera.retrieval.fusion import check_distinct, check_retrieval
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index, Params, check_search, load_indexes
from tessera.retrieval.query_set import check_per_document, passages_per_document, search_one
from tessera.retrieval.rerank import RERANK_DEPTH, Reranker, check_rerank_depth, load_reranker


@dataclass
class RagPrompt:
    """Everything about one question's prompt, before generation."""

    question: str
    passages: list[Passage]  # best first
    blocks: list[Block]  # as the prompt places and numbers them (`order`)
    messages: list[Message]
    plain_tokens: int  # prompt tokens of the uncompressed context
    prompt_tokens: int  # prompt tokens after compression
    timings: dict[str, float] = field(default_factory=dict)
    search_query: str | None = None  # what was searched, where not the question (a follow-up)

    @property
    def sources(self) -> list[dict[str, Any]]:
        """The passages best first, each with `cite`: the number of the prompt's block that holds
        it, which the answer cites as [n] (not its rank once `order` or a compressor moved it;
        None when a compressor left it out)."""
        cites = cite_numbers(self.passages, self.blocks)
        return [
            {"doc_id": p.doc_id, "title": p.title, "rank": p.rank, "score": p.score, "cite": cite}
            | ({"offsets": list(p.offsets)} if p.offsets is not None else {})
            | ({"page": p.page} if p.page is not None else {})
            for p, cite in zip(self.passages, cites, strict=True)
        ]


@dataclass
class RagAnswer:
    prompt: RagPrompt
    answer: str | None  # None without a generator


def open_indexes(
    index: Index | str | Path, fuse: Sequence[Index | str | Path] = (), search_params: Params | None = None
) -> list[Index]:
    """The retriever's indexes, `index` first. Paths open with `search_params` routed to each
    index by kind (`retrieval.index.load_indexes`); an `Index` given open keeps its own."""
    given = [index, *fuse]
    check_distinct(
        [item.root if isinstance(item, Index) else Path(item).expanduser().resolve() for item in given]
    )
    if not search_params:
        return [item if isinstance(item, Index) else Index.load(item) for item in given]
    if any(isinstance(item, Index) for item in given):
        raise TesseraError(
            "search parameters apply to index paths; load an open Index with them instead",
            field="search_params",
        )
    return load_indexes(given, search_params)


def retrieve(
    index: Index,
    question: str,
    k: int = 10,
    fuse: Sequence[Index] = (),
    fusion: str = "rrf",
    weights: Sequence[float] | None = None,
    depth: int = 100,
    reranker: Reranker | str | None = None,
    rerank_depth: int = RERANK_DEPTH,
    filter: Filter | None = None,
    mmr: Mmr | float | None = None,
    per_document: int | None = None,
) -> list[Hit]:
    """The top k hits, with their text, of `index` alone or fused with the `fuse` indexes (hybrid
    retrieval: each hit's text from the first index holding it; each index searched `depth` deep);
    with a `reranker` (`retrieval.rerank`), the k best of the first stage's `rerank_depth` by its
    scores; with a metadata `filter`, among the documents it selects; with `mmr`, the k picked for
    relevance and novelty (`retrieval.diversify`). A chunked index gives passages: the k best, at
    most `per_document` of one document (None: `query_set.passages_per_document`, one a document
    while k documents are there to fill the context)."""
    check_retrieval(len(fuse), fusion, weights)
    check_search([question], k)
    if per_document is None:
        per_document = passages_per_document(index, k, filter, fused=bool(fuse))
    return search_one(
        [index, *fuse], question, k, depth, fusion, weights, reranker, rerank_depth, filter, mmr, per_document
    )


def compression_tools(index: Index | None, generator: Generator | None) -> Tools:
    """Budgets in the generator's tokens (the bundled LLM's without one); passages embedded by the
    index's own dense encoder, or by the bundled MiniLM for BM25 and token indexes (and without
    an index: passages a framework retrieved)."""
    from tessera.models.registry import load_encoder

    encoder = index.encoder if index is not None else None
    if encoder is None or getattr(encoder, "multi_vector", False):
        encoder = load_encoder("minilm")
    tokens = generator.tokens if generator is not None else token_counter(DEFAULT_LLM)
    return Tools(tokens, encoder.encode_docs, encoder.encode_queries, generator)


def prepare(
    index: Index | str | Path,
    question: str,
    k: int = 10,
    compress: str = "none",
    budget: int | None = None,
    order: str = "rank",
    generator: Generator | str | None = None,
    compressor_options: dict[str, Any] | None = None,
    *,
    fuse: Sequence[Index | str | Path] = (),
    fusion: str = "rrf",
    weights: Sequence[float] | None = None,
    depth: int = 100,
    search_params: Params | None = None,
    retrieved: Sequence[Hit] | None = None,
    rerank: Reranker | str | None = None,
    rerank_depth: int = RERANK_DEPTH,
    filter: Filter | None = None,
    mmr: Mmr | float | None = None,
    per_document: int | None = None,
    search_query: str | None = None,
    conversation: Sequence[Message] = (),
) -> RagPrompt:
    """Retrieve `k` passages (from `index`, or `index` fused with the `fuse` indexes by `fusion`),
    compress them, and build the chat prompt. `search_params` (nprobe, prf, ...) apply to indexes
    given as paths. `rerank` (a `retrieval.rerank` spec or reranker) picks the k passages from
    the first stage's `rerank_depth`. `filter`: a metadata filter (data/metadata.py) the
    passages must satisfy. `mmr` (an MMR weight, or `retrieval.diversify.Mmr`) picks the k for
    relevance and novelty. The passages fit the generator's window (`rag.windows`): when they
    would not, the longest are cut to their windows that best match the question. A
    chunked index (`index --chunk`) puts passages in the prompt, not whole documents: the k
    best, at most `per_document` of one document (None: one a document while the index, or
    what `filter` selects, holds k documents; more when it holds fewer).
    `retrieved`: hits already searched (and reranked, diversified), with text (the HTTP
    service searches through its own index threads). `search_query`: what to search, pick
    windows and compress by, where it is not the question (a follow-up in a conversation,
    `rag.conversation`); the prompt still asks the question. `conversation`: the chat the
    question ends (`prepare_chat`), its earlier turns put before the context turn: they take at
    most half the context budget (the earliest left out, with a warning, beyond it) and the
    passages fit what they leave; both token counts include them."""
    if not isinstance(question, str):
        raise TesseraError(f"must be text, got {type(question).__name__}", field="question")
    fuse = [fuse] if isinstance(fuse, str | PathLike | Index) else list(fuse)
    if not question.strip():
        raise TesseraError("the question is empty", field="question")
    check_budget(budget)
    if budget is not None and compress == "none":  # it was ignored: the whole passages went in
        why = "a budget is a compressor's; 'none' keeps every passage (truncation cuts them to it)"
        raise TesseraError(why, field="budget")
    check_retrieval(len(fuse), fusion, weights)
    check_rerank_depth(rerank_depth)
    if per_document is not None:
        check_per_document(per_document, 1 + len(fuse))
    if search_query is not None and not search_query.strip():
        raise TesseraError("the search query is empty", field="search_query")
    query = search_query or question
    filter = parse_filter(filter)
    reranker = load_reranker(rerank) if isinstance(rerank, str) else rerank
    mmr = as_mmr(mmr)
    index, *others = open_indexes(index, fuse, search_params)
    generator = open_generator(generator) if isinstance(generator, str) or generator is None else generator
    tools = compression_tools(index, generator)
    compressor = make_compressor(compress, tools, **(compressor_options or {}))

    started = time.perf_counter()
    if retrieved is None:
        retrieved = retrieve(
            index,
            query,
            k,
            others,
            fusion,
            weights,
            depth,
            reranker,
            rerank_depth,
            filter,
            mmr,
            per_document,
        )
    searched = time.perf_counter()
    if not retrieved:  # the generator then answers from nothing: say so
        why = "no passage was retrieved" + (" (no document matches the filter)" if filter else "")
        warnings.warn(TesseraWarning(why + ": the prompt holds no context"), stacklevel=2)
    conversation, spent = _earlier_turns(conversation, tools)
    passages = fit_passages([Passage.from_hit(hit) for hit in retrieved], query, tools, spent)
    plain = passage_blocks(passages)
    blocks = plain if compressor is None else compressor.compress(query, passages, budget)
    compressed = time.perf_counter()
    placed = order_blocks(blocks, order)

    def chat_prompt(context: list[Block]) -> list[Message]:
        messages = build_messages(question, context)
        return with_conversation(messages, conversation) if conversation else messages

    messages = chat_prompt(placed)
    prompt_tokens = tools.tokens.count_messages(messages)
    if prompt_tokens > (window := context_window(tools)):  # a question or system text that long
        warnings.warn(
            TesseraWarning(
                f"the prompt takes {prompt_tokens} tokens, more than the generator's {window}: its "
                "question or system messages are too long for the context to fit"
            ),
            stacklevel=2,
        )
    return RagPrompt(
        question,
        passages,
        placed,
        messages,
        plain_tokens=tools.tokens.count_messages(chat_prompt(order_blocks(plain, order))),
        prompt_tokens=prompt_tokens,
        timings={"retrieve_s": searched - started, "compress_s": compressed - searched},
        search_query=None if query == question else query,
    )


def _earlier_turns(conversation: Sequence[Message], tools: Tools) -> tuple[list[Message], int]:
    """The conversation as the prompt holds it (the earliest turns left out beyond half the
    context budget) and the tokens it takes there."""
    if not conversation:
        return [], 0
    kept, dropped = recent_turns(conversation, tools.tokens, context_budget(tools) // 2)
    if dropped:
        warnings.warn(
            TesseraWarning(
                f"the conversation's earliest {dropped} {'turn was' if dropped == 1 else 'turns were'} left "
                "out of the prompt: with them it would not fit the generator's window"
            ),
            stacklevel=3,
        )
    return kept, conversation_tokens(kept, tools.tokens)


def answer(
    index: Index | str | Path,
    question: str,
    generator: Generator | str | None = "local",
    max_new_tokens: int = 256,
    **options: Any,
) -> RagAnswer:
    """Answer a question from an index: retrieve, compress, generate (no generator: prompt only).

    `options` are `prepare`'s: k, compress, budget, order, compressor_options, search_params,
    rerank and rerank_depth, filter, mmr, per_document, and fuse, fusion, weights, depth for
    hybrid retrieval."""
    check_options(options)
    check_max_new_tokens(max_new_tokens)
    generator = open_generator(generator) if isinstance(generator, str) or generator is None else generator
    return generated(prepare(index, question, generator=generator, **options), generator, max_new_tokens)


def check_options(options: dict[str, Any]) -> None:
    """`answer`'s and `chat`'s keywords are `prepare`'s: an unknown one named up front."""
    unknown = sorted(set(options) - set(inspect.signature(prepare).parameters))
    if unknown:
        raise TypeError(
            f"unknown option {', '.join(map(repr, unknown))} (prepare's keywords are the options; "
            f"a compressor's own go in compressor_options={{{unknown[0]!r}: ...}})"
        )


def prepare_chat(
    index: Index | str | Path,
    messages: Sequence[Message],
    generator: Generator | str | None = None,
    follow_up: str = DEFAULT_FOLLOW_UP,
    **options: Any,
) -> RagPrompt:
    """The prompt of the next answer in a conversation (`messages`: system, user and assistant
    turns, oldest first, the last one the user's question): the question searched as
    `follow_up` says (`rag.conversation`), asked after the earlier turns (`prepare`'s
    `conversation`: both token counts include them). `options` are `prepare`'s."""
    generator = open_generator(generator) if isinstance(generator, str) or generator is None else generator
    messages = chat_messages(messages)
    turns = [m for m in messages if m["role"] in ("user", "assistant")]
    query = follow_up_query(turns, follow_up, generator)
    return prepare(
        index, turns[-1]["content"], generator=generator, search_query=query, conversation=messages, **options
    )


def chat(
    index: Index | str | Path,
    messages: Sequence[Message],
    generator: Generator | str | None = "local",
    max_new_tokens: int = 256,
    follow_up: str = DEFAULT_FOLLOW_UP,
    **options: Any,
) -> RagAnswer:
    """The next answer in a conversation (`prepare_chat`'s prompt, generated)."""
    check_options(options)
    check_max_new_tokens(max_new_tokens)
    generator = open_generator(generator) if isinstance(generator, str) or generator is None else generator
    prompt = prepare_chat(index, messages, generator, follow_up, **options)
    return generated(prompt, generator, max_new_tokens)


def generated(prompt: RagPrompt, generator: Generator | None, max_new_tokens: int) -> RagAnswer:
    """The prompt's answer, timed (no generator: none)."""
    if generator is None:
        return RagAnswer(prompt, None)
    started = time.perf_counter()
    text = generator.generate(prompt.messages, max_new_tokens=max_new_tokens)
    prompt.timings["generate_s"] = time.perf_counter() - started
    if not text.strip():
        _warn_empty(generator)
    return RagAnswer(prompt, text)


def _warn_empty(generator: Generator) -> None:
    name = getattr(generator, "name", "the generator")
    warnings.warn(TesseraWarning(f"{name} answered nothing (an empty answer)"), stacklevel=3)


def stream_answer(prompt: RagPrompt, generator: Generator, max_new_tokens: int = 256) -> Iterator[str]:
    """The answer to a prepared prompt, piece by piece."""
    said = False
    for piece in generator.stream(prompt.messages, max_new_tokens=max_new_tokens):
        said = said or bool(piece.strip())
        yield piece
    if not said:
        _warn_empty(generator)
