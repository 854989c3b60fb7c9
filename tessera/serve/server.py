"""Run the service under uvicorn; `--workers N` starts N processes, each loading the indexes."""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

import uvicorn

from tessera.errors import TesseraError
from tessera.serve.metrics import MULTIPROCESS_ENV
from tessera.serve.settings import ServeSettings


def run(settings: ServeSettings, workers: int = 1, log_level: str = "info") -> None:
    """Serve until interrupted. Settings travel through the environment so every worker
    process builds the same app; with several workers, so does the folder where each writes
    its metrics (a fresh one, removed at exit, unless the user set one)."""
    given = os.environ.get(MULTIPROCESS_ENV)
    if given and not Path(given).is_dir():
        raise TesseraError(f"${MULTIPROCESS_ENV} names no folder: {given}", field=MULTIPROCESS_ENV)
    settings.to_env()
    with ExitStack() as stack:
        if workers > 1 and not os.environ.get(MULTIPROCESS_ENV):
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="tessera-metrics-"))
            os.environ[MULTIPROCESS_ENV] = folder
            stack.callback(os.environ.pop, MULTIPROCESS_ENV, None)
        uvicorn.run(
            "tessera.serve.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level=log_level,
        )
