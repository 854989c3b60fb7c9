"""Durable publication shared by every layer that writes folders (data outputs, indexes)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under `root` so a rename publishes durable bytes."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
