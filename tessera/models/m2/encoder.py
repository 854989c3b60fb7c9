"""The M2 model as a Tessera encoder: a saved M2 sentence-transformers folder, read in full.

Documents are encoded in full up to the architecture's `max_length` (32k tokens by default,
not the shorter length a model was trained at), so one vector covers a whole long document.
sentence-transformers sorts texts by length before batching, and the mixer masks padding,
so batching neither wastes much compute nor changes a text's vector.
"""

from __future__ import annotations

import contextlib
import json
from functools import partial
from pathlib import Path
from typing import Any

from tessera.errors import EncoderError
from tessera.models.dense import DenseEncoder
from tessera.models.loading import load_sentence_transformers

M2_MODULE_TYPE = "tessera.models.m2.model.M2Transformer"


def check_m2_folder(spec: str, folder: str | Path) -> Path:
    """The folder, if it is a saved M2 model; an EncoderError naming the problem otherwise.

    Besides our M2Transformer first, modules.json may name only sentence-transformers' own
    classes: loading needs `trust_remote_code=True` (sentence-transformers 6 asks it for any
    class outside its package), and this check keeps that from importing anything else."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        what = "is a file, not a model folder" if path.exists() else "no such model folder"
        raise EncoderError(f"'{spec}': {what} '{path}'", file=path, field="encoder")
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        why = f"'{spec}': {path} is not a saved M2 model (no modules.json; `tessera train m2` writes one)"
        raise EncoderError(why, file=path, field="encoder")
    try:
        types = [str(entry.get("type")) for entry in json.loads(modules_file.read_text())]
    except (OSError, ValueError, AttributeError, TypeError):
        types = []
    if not types or types[0] != M2_MODULE_TYPE:
        raise EncoderError(
            f"'{spec}': {path} is not a saved M2 model (modules.json's first module is "
            f"{types[0] if types else None!r}, expected '{M2_MODULE_TYPE}')",
            file=modules_file,
            field="encoder",
        )
    foreign = [kind for kind in types[1:] if not kind.startswith("sentence_transformers.")]
    if foreign:
        raise EncoderError(
            f"'{spec}': modules.json names classes outside sentence-transformers: {', '.join(foreign)}",
            file=modules_file,
            field="encoder",
        )
    return path


def load_m2_sentence_transformer(folder: str | Path, device: str | None = None) -> Any:
    """`SentenceTransformer(folder, trust_remote_code=True)` for a checked M2 folder."""
    from sentence_transformers import SentenceTransformer

    path = check_m2_folder(f"m2:{folder}", folder)
    loader = partial(SentenceTransformer, trust_remote_code=True)
    return load_sentence_transformers(loader, path, device, "M2 model")  # type: ignore[arg-type]


class M2Encoder(DenseEncoder):
    """DenseEncoder over an M2 folder; small batches because documents can be 32k tokens."""

    def __init__(self, spec: str, folder: str | Path, batch_size: int = 8, device: str | None = None):
        check_m2_folder(spec, folder)
        self.model = load_m2_sentence_transformer(folder, device)
        # Whole documents, up to the architecture's length (32k by default), whatever length
        # the model was trained at: reading a long document in one piece is M2's point.
        self.model.max_seq_length = self.model[0].config.max_length
        # fp32 only: the registry refuses runtimes for m2 (its FFT convolutions need fp32).
        self.runtime_context = contextlib.nullcontext
        self.spec = spec
        self.batch_size = batch_size
        self.dim = int(self.model.get_embedding_dimension())
