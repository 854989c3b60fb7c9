"""Token Prepending (Fu et al., 2025) as forward pre-hooks on any Hugging Face causal LM.

A decoder-only LM reads left to right, so a sentence's early tokens never see the sentence.
Token Prepending puts a placeholder token (`<PST>`) just before the sentence and, before each
decoder layer i in [start, exit), overwrites the placeholder's hidden state with the previous
layer's last-token state: a summary of the whole sentence, which every later sentence token can
then attend to. No weights change and no modeling file is copied: the hooks only edit the input of
the chosen layers at one position per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tessera.errors import EncoderError


def decoder_layers(model: Any) -> Any:
    """The decoder's list of layers, found without knowing the architecture.

    Tries the usual homes (`model.model.layers` for Llama/Qwen/Mistral/Gemma, `transformer.h` for
    GPT-2 style, `model.decoder.layers` for OPT), then any ModuleList as long as the config's
    layer count.
    """
    import torch

    base = getattr(model, "base_model", model)
    for owner in (base, getattr(base, "decoder", None), getattr(model, "transformer", None)):
        for name in ("layers", "h", "blocks"):
            layers = getattr(owner, name, None) if owner is not None else None
            if isinstance(layers, torch.nn.ModuleList) and len(layers) > 0:
                return layers
    wanted = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == wanted:
            return module
    raise EncoderError(f"cannot find the decoder layers of {type(model).__name__}", field="encoder")


@contextmanager
def token_prepending(model: Any, positions: Any, start: int, exit: int) -> Iterator[None]:
    """Within the block, layers start..exit-1 see row r's `positions[r]` replaced by its last token.

    `positions`: a (batch,) long tensor, the placeholder's index in each row of the padded input
    (left padding, so every row's last token is at index -1). Layer i's input is layer i-1's output
    (the embeddings for i = 0), so the placeholder carries the previous layer's sentence summary.
    """
    import torch

    layers = decoder_layers(model)
    if not 0 <= start < exit <= len(layers):
        raise EncoderError(
            f"Token Prepending layers [{start}, {exit}) are outside the model's {len(layers)} layers",
            field="encoder",
        )

    def replace(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        positional = bool(args)
        hidden = args[0] if positional else kwargs["hidden_states"]
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        hidden = hidden.clone()  # the previous layer's output may be kept by others (hidden_states)
        hidden[rows, positions.to(hidden.device)] = hidden[:, -1].clone()
        if positional:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": hidden}

    handles = [layers[i].register_forward_pre_hook(replace, with_kwargs=True) for i in range(start, exit)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
