"""Loading a sentence-transformers model folder (or hub name) as an encoder's backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tessera.errors import EncoderError


def load_sentence_transformers(
    model_class: type, model_path: str | Path, device: str | None, what: str
) -> Any:
    """`model_class(model_path)` (SentenceTransformer or MultiVectorEncoder) with the library's
    own download/progress bars off (Tessera draws one bar per long step), and a load failure
    turned into an error that names the `--encoder` field and the folder."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return model_class(str(model_path), device=device)
    except (OSError, ValueError) as exc:
        raise EncoderError(
            f"cannot load {what} '{model_path}': {why_not(model_path, exc)}", field="encoder"
        ) from None


def why_not(model: str | Path, exc: Exception) -> str:
    """A load failure's reason; for a name that is no folder here, said first, since the
    library's words are then about the hub ("We couldn't connect to 'https://huggingface.co'")
    when the user meant a folder they have not made yet."""
    if Path(model).expanduser().exists():
        return str(exc)
    return f"no folder '{model}' here, and as a Hugging Face hub name: {exc}"
