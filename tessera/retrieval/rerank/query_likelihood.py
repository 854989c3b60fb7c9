"""Rerank by query likelihood under a decoder-only LLM: a passage's score is the mean log
probability of the query's tokens when the LLM is asked to write a question about the passage.
This is UPR (Sachan et al., "Improving Passage Retrieval with Zero-Shot Question Generation",
EMNLP 2022), there with T0; here the bundled SmolLM2-135M-Instruct, or any causal LM. It needs no
training and no judged queries, so it runs on any corpus; it costs one LLM forward pass per
candidate (about 0.3 s for SmolLM2 on two cores), so give it a small depth (10-20). Measured on
four collections, it does not help with SmolLM2-135M (docs/results.md section 17)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tessera.models.causal_lm import DEFAULT_LLM, chat_prompt_ids, load_causal_lm, load_tokenizer
from tessera.models.runtimes import auto_runtime

PASSAGE_TOKENS = 256  # a passage is cut to this many LLM tokens (UPR read passages of 100 words)
BATCH_SIZE = 8
INSTRUCTION = "Passage: {passage}\n\nWrite a question that this passage answers."


class QueryLikelihoodReranker:
    def __init__(
        self,
        model: str = DEFAULT_LLM,
        spec: str | None = None,
        passage_tokens: int = PASSAGE_TOKENS,
        batch_size: int = BATCH_SIZE,
    ):
        self.model_name = model
        self.spec = spec or f"qlm:{model}"
        self.passage_tokens = passage_tokens
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(model)
        # bf16 where the CPU multiplies it natively (AMX, AVX512-BF16): 1.5x here, scores within
        # 0.02 of fp32's and the same order on the queries checked
        self.bf16 = auto_runtime() == "bf16"

    @property
    def model(self) -> Any:
        return load_causal_lm(self.model_name)

    def _prompt_ids(self, passage: str) -> list[int]:
        """The chat prompt up to where the assistant's answer (the query) starts."""
        cut = self.tokenizer(passage, add_special_tokens=False)["input_ids"][: self.passage_tokens]
        message = INSTRUCTION.format(passage=self.tokenizer.decode(cut))
        ids = chat_prompt_ids(self.tokenizer, [{"role": "user", "content": message}])
        if ids is not None:
            return ids
        return self.tokenizer(message + "\nQuestion:", add_special_tokens=True)["input_ids"]

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:

        if not texts:
            return np.zeros(0, dtype=np.float32)
        query_ids = self.tokenizer(" " + query.strip(), add_special_tokens=False)["input_ids"] or [
            self.tokenizer.eos_token_id
        ]
        rows = [self._prompt_ids(text) + query_ids for text in texts]
        order = np.argsort([len(row) for row in rows], kind="stable")  # batches of like lengths pad less
        scores = np.empty(len(texts), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            scores[chosen] = self._mean_log_probs([rows[i] for i in chosen], query_ids)
        return scores

    def _mean_log_probs(self, rows: list[list[int]], query_ids: list[int]) -> np.ndarray:
        """Each row ends with `query_ids`: the mean log probability of those tokens. Rows are
        padded on the left with explicit positions, so a row scores the same in any batch, and
        only the query's logits are computed (the vocabulary projection is a fifth of the work)."""
        import torch

        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            # logits at position t predict token t + 1: keep those that predict the query
            logits = (
                self.model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=positions,
                    logits_to_keep=len(query_ids) + 1,
                )
                .logits[:, :-1]
                .float()
            )
        target = torch.tensor(query_ids).expand(len(rows), -1)
        log_probs = torch.log_softmax(logits, dim=-1).gather(2, target[..., None])[..., 0]
        return log_probs.mean(dim=1).numpy()
