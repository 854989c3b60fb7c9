"""Token counts in one tokenizer, so budgets and ratios mean the same for every method.

The counter is the generator's own tokenizer; with no generator (or an HTTP endpoint, whose
tokenizer Tessera cannot see) it is the bundled LLM's, so ratios stay comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from tessera.models.causal_lm import DEFAULT_LLM, chat_prompt_ids, load_tokenizer

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}


class TokenCounter:
    """Counts and cuts text in one LLM tokenizer's tokens."""

    def __init__(self, llm: str = DEFAULT_LLM):
        self.llm = llm
        self.tokenizer = load_tokenizer(llm)

    def count(self, text: str) -> int:
        """Tokens of plain text (no special tokens)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

    def count_messages(self, messages: Sequence[Message]) -> int:
        """Tokens of a whole chat prompt as the model sees it (chat template, generation prompt)."""
        ids = chat_prompt_ids(self.tokenizer, list(messages))
        if ids is not None:
            return len(ids)
        return sum(self.count(m["content"]) for m in messages)

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of `text` that has at most `max_tokens` tokens."""
        if max_tokens <= 0:
            return ""
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text
        return text[: offsets[max_tokens - 1][1]]


@cache
def token_counter(llm: str = DEFAULT_LLM) -> TokenCounter:
    """One counter per tokenizer and process."""
    return TokenCounter(llm)
