"""Cranfield's BM25 and MiniLM flat indexes, opened once per module (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.retrieval.index import Index


@pytest.fixture(scope="module")
def bm25(cranfield_bm25: Path) -> Index:
    return Index.load(cranfield_bm25)


@pytest.fixture(scope="module")
def dense(cranfield_dense: Path) -> Index:
    return Index.load(cranfield_dense)
