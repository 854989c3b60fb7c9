"""Sentence embeddings from a decoder-only LLM: PromptEOL, Token Prepending, mean pooling.

    llm:MODEL[+tp][,pool=last|mean][,layer=N][,start=N,exit=N,pst=token|random|mean][,maxlen=N]

- `pool=last` (PromptEOL, Jiang et al. 2023): the text goes into
  `This sentence : "TEXT" means in one word:"` and the embedding is the last token's hidden state
  at `layer` (an index into the model's hidden states: 0 = embeddings, -1 = final normed output).
- `+tp` (Token Prepending, Fu et al. 2025): a placeholder token before the quoted text whose state,
  at the input of layers [start, exit), is replaced by the previous layer's last-token state
  (`prepending.py`). Only with `pool=last`; `start`/`exit`/`pst` exist only with `+tp`.
  `pst` is the placeholder's input embedding, which only layers before `start` see: `token` an
  existing token (the unknown token, `<|endoftext|>` in SmolLM2), `random` a fixed N(0, 1) vector
  (seed 0) as the reference code's new `<PST>` row, `mean` the mean token embedding (what
  transformers gives a new row). Neither of the last two resizes the shared model: the vector
  goes in through `inputs_embeds`.
- `pool=mean`: the mean of `layer`'s hidden states over the text's own tokens, no prompt.

MODEL is `smollm2` (bundled), a folder, or a hub name. The canonical spec names every option, so
the index manifest reloads exactly this encoder. Rows are left padded with position ids counted
from each row's first real token, so a text's vector does not depend on its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tessera.errors import EncoderError
from tessera.models.causal_lm import load_causal_lm, load_tokenizer
from tessera.models.encoder import blank_as_zero

PREFIX = "llm:"
PROMPT_HEAD, PROMPT_TAIL = 'This sentence : "', '" means in one word:"'
# Chosen on the train qrels of cranfield-beir and cisi-beir with SmolLM2-135M, on samples of 600
# documents of 64 words with every judged query (docs/results.md section 6, "Second sweep"):
# layer -2 was best for PromptEOL and TP, the final one for mean pooling; TP best with exit 2 and
# a random placeholder vector (the paper's own choices: layer -2, a new random `<PST>` row).
DEFAULT_LAYER = {"last": -2, "mean": -1}
DEFAULT_START, DEFAULT_EXIT = 1, 2
DEFAULT_MAXLEN = 512
PLACEHOLDERS = ("token", "random", "mean")
DEFAULT_PLACEHOLDER = "random"
LEGACY_PLACEHOLDER = "token"  # what a `+tp` spec written before `pst` existed used
BATCH_SIZE = 16
_INT_OPTIONS = ("layer", "start", "exit", "maxlen")


@dataclass(frozen=True)
class LLMSpec:
    model: str
    tp: bool = False
    pool: str = "last"
    layer: int = DEFAULT_LAYER["last"]
    start: int = DEFAULT_START
    exit: int = DEFAULT_EXIT
    maxlen: int = DEFAULT_MAXLEN
    placeholder: str = DEFAULT_PLACEHOLDER

    @property
    def spec(self) -> str:
        options = [f"pool={self.pool}", f"layer={self.layer}"]
        if self.tp:
            options += [f"start={self.start}", f"exit={self.exit}", f"pst={self.placeholder}"]
        options.append(f"maxlen={self.maxlen}")
        return f"{PREFIX}{self.model}{'+tp' if self.tp else ''},{','.join(options)}"


def is_llm_spec(spec: str) -> bool:
    return spec.startswith(PREFIX)


def with_legacy_placeholder(spec: str) -> str:
    """A stored `+tp` spec from before `pst` existed, with the placeholder it was built with
    spelled out, so an old index's queries are encoded as its documents were."""
    if not is_llm_spec(spec) or "+tp" not in spec.split(",", 1)[0] or ",pst=" in spec:
        return spec
    return f"{spec},pst={LEGACY_PLACEHOLDER}"


def _bad(spec: str, why: str) -> EncoderError:
    return EncoderError(
        f"'{spec}': {why} (expected "
        "llm:MODEL[+tp][,pool=last|mean][,layer=N][,start=N,exit=N,pst=token|random|mean][,maxlen=N])",
        field="encoder",
    )


def parse_llm_spec(spec: str) -> LLMSpec:
    """`llm:...` -> LLMSpec with every default filled in; a bad option raises EncoderError."""
    if not is_llm_spec(spec):
        raise _bad(spec, "not an llm: spec")
    head, *items = spec[len(PREFIX) :].split(",")
    tp = head.endswith("+tp")
    model = head[: -len("+tp")] if tp else head
    if not model:
        raise _bad(spec, "no model named")
    path = Path(model).expanduser()
    if path.exists():
        model = str(path.resolve())
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or key not in ("pool", "pst", *_INT_OPTIONS):
            raise _bad(spec, f"unknown option '{item}'")
        if key in values:
            raise _bad(spec, f"option '{key}' given twice")
        if key == "pool":
            if value not in DEFAULT_LAYER:
                raise _bad(spec, f"pool must be last or mean, not '{value}'")
            values[key] = value
            continue
        if key == "pst":
            if value not in PLACEHOLDERS:
                raise _bad(spec, f"pst must be one of {', '.join(PLACEHOLDERS)}, not '{value}'")
            values[key] = value
            continue
        try:
            values[key] = int(value)
        except ValueError:
            raise _bad(spec, f"option '{key}' must be an integer, not '{value}'") from None
    pool = values.get("pool", "last")
    if tp and pool != "last":
        raise _bad(spec, "+tp needs the PromptEOL prompt (pool=last)")
    if not tp and any(key in values for key in ("start", "exit", "pst")):
        raise _bad(spec, "start/exit/pst are Token Prepending options: add +tp to the model")
    result = LLMSpec(
        model=model,
        tp=tp,
        pool=pool,
        layer=values.get("layer", DEFAULT_LAYER[pool]),
        start=values.get("start", DEFAULT_START),
        exit=values.get("exit", DEFAULT_EXIT),
        maxlen=values.get("maxlen", DEFAULT_MAXLEN),
        placeholder=values.get("pst", DEFAULT_PLACEHOLDER),
    )
    if tp and not 0 <= result.start < result.exit:
        raise _bad(spec, f"need 0 <= start < exit, got start={result.start}, exit={result.exit}")
    if result.maxlen < 1:
        raise _bad(spec, f"maxlen must be positive, got {result.maxlen}")
    return result


def _leading_specials(tokenizer: Any) -> list[int]:
    """The ids a tokenizer puts before any text (e.g. BOS); trailing ones (EOS) are left out."""
    plain = tokenizer("x", add_special_tokens=False).input_ids
    full = tokenizer("x").input_ids
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start])
    return []


class _Stop(Exception):
    """Raised by a forward hook once the deepest requested layer has run (skips the rest)."""


class LLMEncoder:
    """A causal LM as a dense encoder; queries and documents are encoded alike."""

    multi_vector = False

    def __init__(self, spec: str | LLMSpec, batch_size: int = BATCH_SIZE):
        self.options = spec if isinstance(spec, LLMSpec) else parse_llm_spec(spec)
        self.spec = self.options.spec
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(self.options.model)
        self.model = load_causal_lm(self.options.model)
        self.n_layers = int(self.model.config.num_hidden_layers)
        self.dim = int(self.model.config.hidden_size)
        self.layer = self._layer_index(self.options.layer)
        if self.options.tp and self.options.exit > self.n_layers:
            raise EncoderError(
                f"'{self.spec}': exit={self.options.exit} is past the model's {self.n_layers} layers",
                field="encoder",
            )
        tok = self.tokenizer
        # Special tokens the tokenizer adds in front (BOS for Llama 2/3, none for SmolLM2).
        self._specials = _leading_specials(tok)
        self._head = tok(PROMPT_HEAD, add_special_tokens=False).input_ids
        self._tp_head = tok(PROMPT_HEAD[:-2], add_special_tokens=False).input_ids
        self._tp_quote = tok(PROMPT_HEAD[-2:], add_special_tokens=False).input_ids
        self._tail = tok(PROMPT_TAIL, add_special_tokens=False).input_ids
        # The placeholder is an existing token (no new embedding row in the shared model); unless
        # pst=token its input embedding is swapped for the `pst` vector. From layer `start` on its
        # state is overwritten anyway.
        self._placeholder = tok.unk_token_id if tok.unk_token_id is not None else tok.eos_token_id
        self._placeholder_vector = self._placeholder_embedding()

    def _placeholder_embedding(self) -> Any:
        """The `pst` vector put in at the placeholder, or None to keep the token's own embedding."""
        import torch

        how = self.options.placeholder if self.options.tp else "token"
        table = self.model.get_input_embeddings().weight
        if how == "random":
            generator = torch.Generator().manual_seed(0)
            return torch.randn(self.dim, generator=generator).to(table.dtype)
        if how == "mean":
            return table.detach().float().mean(0).to(table.dtype)
        return None

    def _layer_index(self, layer: int) -> int:
        count = self.n_layers + 1
        if not -count <= layer < count:
            raise EncoderError(
                f"'{self.spec}': layer={layer} is outside the model's hidden states "
                f"(-{count}..{count - 1}; 0 = embeddings)",
                field="encoder",
            )
        return layer % count

    def _row(self, text: str) -> tuple[list[int], int, int, int]:
        """Token ids of one text, with (placeholder index or -1, first and end index to pool)."""
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        opts = self.options
        if opts.pool == "mean":
            ids = self._specials + ids[: max(1, opts.maxlen - len(self._specials))]
            if not ids:  # an empty text: one pad token to run, nothing to pool (a zero vector)
                return [self.tokenizer.pad_token_id], -1, 1, 1
            return ids, -1, len(self._specials), len(ids)
        if opts.tp:
            head = self._specials + self._tp_head + [self._placeholder] + self._tp_quote
            placeholder = len(self._specials) + len(self._tp_head)
        else:
            head, placeholder = self._specials + self._head, -1
        room = max(1, opts.maxlen - len(head) - len(self._tail))
        ids = head + ids[:room] + self._tail
        return ids, placeholder, len(ids) - 1, len(ids)

    def _forward(self, texts: Sequence[str], layers: Sequence[int]) -> dict[int, Any]:
        """Pooled hidden states of one batch at each requested layer index (0..n_layers)."""
        import torch

        from tessera.models.prepending import decoder_layers, token_prepending

        rows = [self._row(t) for t in texts]
        width = max(len(ids) for ids, *_ in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        pool = torch.zeros((len(rows), width), dtype=torch.float32)
        placeholders = torch.zeros(len(rows), dtype=torch.long)
        for r, (ids, placeholder, first, end) in enumerate(rows):
            offset = width - len(ids)
            input_ids[r, offset:] = torch.tensor(ids)
            mask[r, offset:] = 1
            pool[r, offset + first : offset + end] = 1
            placeholders[r] = offset + placeholder
        # Left padding: positions count from each row's first real token, as if it were alone.
        positions = (mask.cumsum(1) - 1).clamp(min=0)

        wanted = sorted(set(layers))
        captured: dict[int, Any] = {}
        stack = decoder_layers(self.model)
        deepest = wanted[-1]

        def capture(index: int):
            def hook(module: Any, args: tuple, output: Any) -> None:
                captured[index] = output[0] if isinstance(output, tuple) else output
                if index == deepest:
                    raise _Stop

            return hook

        # hidden_states[i] is layer i-1's output; the last one (n_layers) is the final norm's.
        handles = [stack[i - 1].register_forward_hook(capture(i)) for i in wanted if 0 < i < self.n_layers]
        base = self.model.base_model
        try:
            with torch.inference_mode():
                context = (
                    token_prepending(self.model, placeholders, self.options.start, self.options.exit)
                    if self.options.tp
                    else nullcontext()
                )
                with context:
                    try:
                        tokens: dict[str, Any] = {"input_ids": input_ids}
                        if self._placeholder_vector is not None:
                            embeds = self.model.get_input_embeddings()(input_ids)
                            embeds[torch.arange(len(rows)), placeholders] = self._placeholder_vector
                            tokens = {"inputs_embeds": embeds}
                        out = base(
                            **tokens,
                            attention_mask=mask,
                            position_ids=positions,
                            output_hidden_states=0 in wanted,
                            use_cache=False,
                        )
                        if 0 in wanted:
                            captured[0] = out.hidden_states[0]
                        captured[self.n_layers] = out.last_hidden_state
                    except _Stop:
                        pass
        finally:
            for handle in handles:
                handle.remove()
        result = {}
        for index in wanted:
            hidden = captured[index].float()
            if self.options.pool == "last":
                result[index] = hidden[:, -1]
            else:
                weights = pool.unsqueeze(-1)
                result[index] = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return result

    def embed(self, texts: Sequence[str], layers: Sequence[int] | None = None) -> dict[int, np.ndarray]:
        """Unit vectors per requested layer (spec-style indices, default: the spec's layer).

        Texts go through in length order to cut padding; results come back in input order.
        """
        requested = list(layers) if layers is not None else [self.options.layer]
        index = {layer: self._layer_index(layer) for layer in requested}
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = {layer: np.zeros((len(texts), self.dim), dtype=np.float32) for layer in requested}
        for begin in range(0, len(order), self.batch_size):
            chunk = order[begin : begin + self.batch_size]
            pooled = self._forward([texts[i] for i in chunk], list(index.values()))
            for layer in requested:
                vectors = pooled[index[layer]].numpy()
                out[layer][chunk] = vectors
        for layer, matrix in out.items():
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            out[layer] = np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)
        return out

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        return blank_as_zero(texts, self.dim, lambda wanted: self.embed(wanted)[self.options.layer])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_docs(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)
