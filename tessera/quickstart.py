"""The embedded-default demo: index the bundled sample with the bundled model and search it."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from tessera import config
from tessera.errors import IndexFormatError, TesseraError
from tessera.indexing.builder import build_index
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index, check_search

SAMPLE = files("tessera.data") / "sample" / "sample.jsonl"
DEFAULT_QUERY = "how do vaccines train the immune system"


def quickstart(
    query: str = DEFAULT_QUERY, output: str | Path | None = None, k: int = 5, show_progress: bool = True
) -> tuple[Path, list[Hit]]:
    """Build (or reuse) the sample index and return its path with the hits for `query`. The
    cache's own sample index is built again when it is damaged; a folder of other files there
    is named, never replaced."""
    check_search([query], k)  # before a build, not after it
    target = Path(output) if output else config.cache_dir() / "quickstart-minilm"
    if target.exists() and not target.is_dir():
        raise TesseraError("is a file, not the sample index: move it away", file=target)
    if (target / "manifest.json").exists():
        try:
            return target, Index.load(target).search(query, k=k, with_text=True)
        except IndexFormatError:
            if output is not None:  # a folder the caller named: told, not rebuilt
                raise
    elif target.is_dir() and any(target.iterdir()):
        raise TesseraError("holds files that are not a Tessera index: move them away", file=target)
    build_index(
        Path(str(SAMPLE)),
        target,
        encoder="minilm",
        batch_size=64,
        overwrite=True,
        show_progress=show_progress,
    )
    return target, Index.load(target).search(query, k=k, with_text=True)
