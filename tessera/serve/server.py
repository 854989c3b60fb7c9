"""Run the service under uvicorn; `--workers N` starts N processes, each loading the indexes."""

from __future__ import annotations

import uvicorn

from tessera.serve.settings import ServeSettings


def run(settings: ServeSettings, workers: int = 1, log_level: str = "info") -> None:
    """Serve until interrupted. Settings travel through the environment so every worker
    process builds the same app."""
    settings.to_env()
    uvicorn.run(
        "tessera.serve.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=log_level,
    )
