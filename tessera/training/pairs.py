"""Training pairs for query-side fine-tuning: (query text, positive document id).

Judged queries (supervised) and a document's title split from its body (self-supervised);
`examples.py` turns them into training examples beside the other sources.
"""

from __future__ import annotations

from tessera.data.datasets import EvalDataset
from tessera.data.document import Document
from tessera.errors import DatasetError


def qrels_pairs(dataset: EvalDataset) -> list[tuple[str, str]]:
    """One pair per judgment with grade > 0, in the dataset's order (stable for seeding)."""
    pairs: list[tuple[str, str]] = []
    for query_id, judged in dataset.qrels.items():
        relevant = [doc_id for doc_id, grade in judged.items() if grade > 0]
        if relevant and query_id not in dataset.queries:
            raise DatasetError(f"judged query '{query_id}' has no text", file=dataset.name, field="queries")
        pairs.extend((dataset.queries[query_id], doc_id) for doc_id in relevant)
    return pairs


def _squash(text: str) -> str:
    return " ".join(text.split())


def title_body(doc: Document) -> tuple[str, str] | None:
    """(title, body without the title) of a document, or None when either is empty.

    Whitespace is collapsed (Cranfield titles wrap lines). Bodies that start with the title
    verbatim (as Cranfield's do) lose that prefix; a body that only repeats the title leaves
    nothing for the title to point at.
    """
    title = _squash(doc.title)
    if not title:
        return None
    body = _squash(doc.text)
    rest = (body[len(title) :] if body.startswith(title) else body).strip()
    return (title, rest) if rest else None
