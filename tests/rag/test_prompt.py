"""Prompt building, block order and token counts in the bundled LLM's tokenizer."""

from __future__ import annotations

import pytest

from tessera.errors import TesseraError
from tessera.rag.passages import Block
from tessera.rag.prompt import build_messages, order_blocks, render_context
from tessera.rag.tokens import token_counter


def test_orders_put_the_best_blocks_where_asked():
    blocks = list("123456")
    assert order_blocks(blocks, "rank") == list("123456")
    assert order_blocks(blocks, "reverse") == list("654321")
    assert order_blocks(blocks, "sandwich") == list("135642")  # best at both ends, weakest in the middle
    with pytest.raises(TesseraError, match="unknown order 'middle'"):
        order_blocks(blocks, "middle")


def test_messages_number_the_blocks_and_name_their_documents():
    blocks = [Block("shock waves bend.", ("12",)), Block("wings stall.", ("7", "9"))]
    messages = build_messages("why do wings stall?", blocks)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert render_context(blocks) == "[1] (doc 12) shock waves bend.\n\n[2] (doc 7, 9) wings stall."
    assert user.startswith("Context:\n[1] (doc 12)") and user.endswith(
        "Question: why do wings stall?\nAnswer:"
    )


def test_token_counts_are_the_tokenizers_own():
    counter = token_counter()
    text = "the boundary layer transition on a flat plate at Mach 2.5"
    ids = counter.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert counter.count(text) == len(ids) > 5
    messages = build_messages("what is lift?", [Block(text, ("1",))])
    templated = counter.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    templated = templated["input_ids"] if hasattr(templated, "keys") else templated
    assert counter.count_messages(messages) == len(templated)


@pytest.mark.parametrize("budget", [1, 4, 9])
def test_truncate_keeps_a_prefix_within_the_budget(budget):
    counter = token_counter()
    text = "the boundary layer transition on a flat plate at Mach 2.5"
    cut = counter.truncate(text, budget)
    assert text.startswith(cut) and counter.count(cut) == budget
    assert counter.truncate(text, 1000) == text and counter.truncate(text, 0) == ""
