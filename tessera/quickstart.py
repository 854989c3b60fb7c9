"""The embedded-default demo: index the bundled sample with the bundled model and search it."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from tessera import config
from tessera.indexing.builder import build_index
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index

SAMPLE = files("tessera.data") / "sample" / "sample.jsonl"
DEFAULT_QUERY = "how do vaccines train the immune system"


def quickstart(
    query: str = DEFAULT_QUERY, output: str | Path | None = None, k: int = 5, show_progress: bool = True
) -> tuple[Path, list[Hit]]:
    """Build (or reuse) the sample index and return its path with the hits for `query`."""
    target = Path(output) if output else config.cache_dir() / "quickstart-minilm"
    if not (target / "manifest.json").exists():
        build_index(
            Path(str(SAMPLE)),
            target,
            encoder="minilm",
            batch_size=64,
            overwrite=True,
            show_progress=show_progress,
        )
    return target, Index.load(target).search(query, k=k, with_text=True)
