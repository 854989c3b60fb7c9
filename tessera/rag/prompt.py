"""The RAG prompt: where each context block sits, and the chat messages around it.

`order` follows "Long-Context LLMs Meet RAG" (Jin et al., 2024): LLMs attend best to the start
and the end of a long context, so besides rank order (best first) the best blocks can go last,
nearest the question (`reverse`), or at both ends with the weakest in the middle (`sandwich`:
1st, 3rd, 5th, ..., 6th, 4th, 2nd).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from tessera.errors import TesseraError
from tessera.rag.passages import Block
from tessera.rag.tokens import Message, TokenCounter

ORDERS = ("rank", "reverse", "sandwich")
SYSTEM = (
    "You answer questions from the numbered context passages. Use only facts stated in them, "
    "cite passages as [n], and say so when the context does not contain the answer."
)
T = TypeVar("T")


def order_blocks(blocks: Sequence[T], order: str = "rank") -> list[T]:
    """Blocks given best first, placed as `order` says."""
    blocks = list(blocks)
    if order == "rank":
        return blocks
    if order == "reverse":
        return blocks[::-1]
    if order == "sandwich":
        return blocks[0::2] + blocks[1::2][::-1]
    raise TesseraError(f"unknown order '{order}' (expected one of {', '.join(ORDERS)})", field="order")


def render_context(blocks: Sequence[Block]) -> str:
    """Numbered blocks, each with the ids it came from."""
    return "\n\n".join(
        f"[{number}] (doc {', '.join(block.sources)}) {block.text}" for number, block in enumerate(blocks, 1)
    )


def build_messages(question: str, blocks: Sequence[Block]) -> list[Message]:
    """System instruction, then the context and the question in one user turn."""
    user = f"Context:\n{render_context(blocks)}\n\nQuestion: {question}\nAnswer:"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def with_conversation(rag_messages: Sequence[Message], conversation: Sequence[Message]) -> list[Message]:
    """A RAG prompt inside a conversation: the system instruction (the conversation's system
    and developer messages appended to it), the earlier user and assistant turns, then the
    context turn, which asks the last question. A follow-up is so answered with its history."""
    system, context = rag_messages[0], rag_messages[-1]
    extra = [
        m["content"] for m in conversation if m["role"] in ("system", "developer") and m["content"].strip()
    ]
    turns = [m for m in conversation if m["role"] in ("user", "assistant")]
    history = [{"role": m["role"], "content": m["content"]} for m in turns[:-1]]
    return [{"role": "system", "content": "\n\n".join([system["content"], *extra])}, *history, context]


def conversation_tokens(conversation: Sequence[Message], tokens: TokenCounter) -> int:
    """Tokens the conversation adds to a RAG prompt (`with_conversation`): its earlier turns and
    its system text, as the chat template lays them out."""
    bare = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ""}]
    return tokens.count_messages(with_conversation(bare, conversation)) - tokens.count_messages(bare)


def recent_turns(
    conversation: Sequence[Message], tokens: TokenCounter, budget: int
) -> tuple[list[Message], int]:
    """The conversation without its earliest exchanges (a user turn and the answer to it), as
    many as it takes for the rest to add at most `budget` tokens (the question, its last message,
    always stays), and how many turns were left out: a long conversation otherwise overflowed the
    generator's window."""
    kept, dropped = list(conversation), 0

    def earliest() -> int | None:
        return next((i for i, m in enumerate(kept[:-1]) if m["role"] in ("user", "assistant")), None)

    while conversation_tokens(kept, tokens) > budget and (first := earliest()) is not None:
        del kept[first]
        dropped += 1
        # An exchange goes whole: a history opening with an assistant turn is one that chat
        # templates requiring alternating roles (Mistral's, Gemma's) refuse.
        if (first := earliest()) is not None and kept[first]["role"] == "assistant":
            del kept[first]
            dropped += 1
    return kept, dropped
