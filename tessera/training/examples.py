"""Training examples for contrastive encoders: (query text, positive text, documents to avoid).

Three pair sources, chosen by name: `qrels` (the judged queries of a split), `titles`
(a document's title as the query for its body) and `crop` (two random spans of a document,
see `crops.py`). Each example remembers which documents must never be its negative: every
judged-relevant document of its query, or the document its pair was cut from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tessera import config
from tessera.data import irds
from tessera.data.corpus import Corpus, open_corpus
from tessera.data.datasets import EvalDataset
from tessera.data.document import Document
from tessera.errors import TesseraError
from tessera.training.crops import crop_pairs
from tessera.training.pairs import qrels_pairs, title_body

PAIR_SOURCES = ("qrels", "titles", "crop")


@dataclass(frozen=True)
class TrainExample:
    query: str
    positive: str
    exclude: frozenset[str]  # document ids never to be drawn as this example's negative
    source: str  # one of PAIR_SOURCES


def parse_sources(sources: str | Iterable[str]) -> tuple[str, ...]:
    """`"qrels,crop"` or `["qrels", "crop"]` -> ("qrels", "crop"), in the given order, no repeats."""
    items = sources.replace(",", " ").split() if isinstance(sources, str) else list(sources)
    names = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    unknown = [name for name in names if name not in PAIR_SOURCES]
    if unknown or not names:
        what = f"unknown pair source '{unknown[0]}'" if unknown else "no pair source given"
        raise TesseraError(f"{what} (expected some of {', '.join(PAIR_SOURCES)})", field="pairs")
    return names


def dataset_corpus(dataset: str | Path, split: str, corpus: str | Path | None = None) -> Corpus:
    """The documents a dataset's qrels point into: `corpus` if given, else the dataset's own.

    Mirrors `load_eval_dataset`'s resolution: a BEIR folder (path, `NAME` or `beir/NAME` in
    TESSERA_DATA_DIR) holds corpus.jsonl; an ir_datasets id (`ID/SPLIT` when that exists)
    has its docs.
    """
    if corpus is not None:
        return open_corpus(corpus)
    text = str(dataset)
    path = Path(text).expanduser()
    if path.is_dir():
        return open_corpus(path)
    local = config.data_dir()
    parts = text.split("/")
    if parts[0] == "beir" and len(parts) >= 2 and (local / parts[1] / "corpus.jsonl").is_file():
        return open_corpus(local / parts[1])
    if (local / text / "corpus.jsonl").is_file():
        return open_corpus(local / text)
    if irds.is_known(f"{text}/{split}"):
        return open_corpus(f"{text}/{split}")
    return open_corpus(text)


def _qrels_examples(data: EvalDataset, texts: dict[str, str]) -> tuple[list[TrainExample], int]:
    """One example per judged-relevant document; (examples, pairs whose document is missing)."""
    pairs = qrels_pairs(data)
    relevant: dict[str, set[str]] = {}
    for query, doc_id in pairs:
        relevant.setdefault(query, set()).add(doc_id)  # merged by text: same text, same avoid-list
    examples = [
        TrainExample(query, texts[doc_id], frozenset(relevant[query]), "qrels")
        for query, doc_id in pairs
        if doc_id in texts
    ]
    return examples, len(pairs) - len(examples)


def build_examples(
    sources: Sequence[str], corpus: Corpus, data: EvalDataset | None, seed: int = 0
) -> tuple[list[TrainExample], dict[str, int]]:
    """Examples of every source, in source order, and how many each source gave.

    The corpus is read once; only the positives' texts are kept unless a self-supervised
    source needs every document. Judged documents missing from the corpus are skipped
    (counted as `qrels_missing`); a source that gives nothing is an error.
    """
    wanted = {doc_id for judged in data.qrels.values() for doc_id in judged} if data else set()
    everything = any(source != "qrels" for source in sources)
    documents: list[Document] = []
    texts: dict[str, str] = {}
    for doc in corpus:
        if doc.id in wanted:
            texts[doc.id] = doc.contents
        if everything:
            documents.append(doc)
    examples: list[TrainExample] = []
    counts: dict[str, int] = {}
    for source in sources:
        if source == "qrels":
            if data is None:
                raise TesseraError("the qrels source needs a dataset with judgments", field="pairs")
            found, counts["qrels_missing"] = _qrels_examples(data, texts)
        elif source == "titles":
            found = [
                TrainExample(pair[0], pair[1], frozenset([doc.id]), "titles")
                for doc in documents
                if (pair := title_body(doc))
            ]
        else:
            found = [
                TrainExample(crop.query, crop.positive, frozenset([crop.doc_id]), "crop")
                for crop in crop_pairs(documents, seed=seed)
            ]
        if not found:
            where = data.name if source == "qrels" and data else corpus.name
            raise TesseraError(f"pair source '{source}' gives no training pair", file=where, field="pairs")
        counts[source] = len(found)
        examples += found
    return examples, counts
