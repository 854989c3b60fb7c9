"""Training examples for contrastive encoders: (query text, positive text, documents to avoid).

Pair sources, chosen by name: `qrels` (the judged queries of a split), `titles` (a document's
title as the query for its body), `crop` (two random spans of a document, `crops.py`), `ict`
(a sentence as the query for the rest of its document, `cloze.py`) and `synthetic` (an LLM's
query for a document, filtered by round trip, `synthetic.py`). Only `qrels` needs judgments.
Each example remembers which documents must never be its negative: every judged-relevant
document of its query, or the document its pair was made from.

A source that gives nothing on a corpus (titles on a corpus without titles) is skipped with a
warning, so one recipe runs on every corpus; only when every source is empty is it an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tessera import config
from tessera.data import irds
from tessera.data.corpus import Corpus, open_corpus
from tessera.data.datasets import EvalDataset, load_eval_dataset
from tessera.data.document import Document
from tessera.errors import DatasetError, TesseraError, TesseraWarning
from tessera.training.cloze import cloze_pairs
from tessera.training.crops import crop_pairs
from tessera.training.pairs import qrels_pairs, title_body
from tessera.training.synthetic import SyntheticSettings, synthetic_queries

PAIR_SOURCES = ("qrels", "titles", "crop", "ict", "synthetic")


@dataclass(frozen=True)
class TrainExample:
    query: str
    positive: str
    exclude: frozenset[str]  # document ids never to be drawn as this example's negative
    source: str  # one of PAIR_SOURCES
    doc_id: str  # the document the positive is (or was cut from)


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


def judged_split(dataset: str | Path | EvalDataset, split: str, sources: Sequence[str]) -> EvalDataset | None:
    """The split's judgments: needed by `qrels`; for `synthetic` without `qrels` they only give
    few-shot examples, so a dataset without that split means zero-shot instead of an error
    (and the test queries of a dataset without splits are never used as examples)."""
    if isinstance(dataset, EvalDataset):
        return dataset
    if "qrels" in sources:
        try:
            data = load_eval_dataset(dataset, split)
            if not data.name.endswith(f"/{split}"):  # an id without splits: every query, test ones too
                raise DatasetError(
                    f"'{dataset}' has no '{split}' split (its qrels judge every query, test queries "
                    "included); name one: ID/SPLIT, or a BEIR folder with qrels/SPLIT.tsv",
                    field="split",
                )
        except DatasetError as exc:
            others = ",".join(source for source in sources if source != "qrels")
            bare = exc.field == "dataset" and Path(dataset).expanduser().is_dir()  # a typo is no folder
            if others and bare:  # a folder holding a corpus only, no judgments: the others train
                message = f"pair source 'qrels' gives no training pair ({exc.message}); skipped"
                warnings.warn(TesseraWarning(message, file=exc.file, field="pairs"), stacklevel=2)
                return None
            if others and exc.field == "split":  # judgments, not of this split: a typo is not skipped
                hint = f"{exc.message}; or train without judgments: --pairs {others}"
                raise DatasetError(hint, file=exc.file, field="split") from None
            raise
        return data
    if "synthetic" not in sources:
        return None
    try:
        data = load_eval_dataset(dataset, split)
    except DatasetError as exc:
        if exc.field != "split":  # an unknown id or a broken file is the user's to know, not zero-shot
            raise
        return None
    return data if data.name.endswith(f"/{split}") else None


def _qrels_examples(data: EvalDataset, texts: dict[str, str]) -> tuple[list[TrainExample], int]:
    """One example per judged-relevant document; (examples, pairs whose document is missing)."""
    pairs = qrels_pairs(data)
    relevant: dict[str, set[str]] = {}
    for query, doc_id in pairs:
        relevant.setdefault(query, set()).add(doc_id)  # merged by text: same text, same avoid-list
    examples = [
        TrainExample(query, texts[doc_id], frozenset(relevant[query]), "qrels", doc_id)
        for query, doc_id in pairs
        if doc_id in texts
    ]
    return examples, len(pairs) - len(examples)


def _source_examples(
    source: str,
    corpus: Corpus,
    documents: list[Document],
    data: EvalDataset | None,
    texts: dict[str, str],
    seed: int,
    synthetic: SyntheticSettings,
    show_progress: bool,
) -> tuple[list[TrainExample], dict[str, int]]:
    """The examples of one self-supervised source, and extra counts worth recording."""
    if source == "titles":
        found = [
            TrainExample(pair[0], pair[1], frozenset([doc.id]), source, doc.id)
            for doc in documents
            if (pair := title_body(doc))
        ]
        return found, {}
    if source == "crop":
        crops = crop_pairs(documents, seed=seed)
        return [TrainExample(c.query, c.positive, frozenset([c.doc_id]), source, c.doc_id) for c in crops], {}
    if source == "ict":
        pairs = cloze_pairs(documents, seed=seed)
        return [TrainExample(p.query, p.positive, frozenset([p.doc_id]), source, p.doc_id) for p in pairs], {}
    kept, generated = synthetic_queries(corpus, documents, data, texts, synthetic, show_progress)
    by_id = {doc.id: doc.contents for doc in documents}
    found = [TrainExample(q.query, by_id[q.doc_id], frozenset([q.doc_id]), source, q.doc_id) for q in kept]
    return found, {"synthetic_generated": generated}


def build_examples(
    sources: Sequence[str],
    corpus: Corpus,
    data: EvalDataset | None,
    seed: int = 0,
    synthetic: SyntheticSettings | None = None,
    show_progress: bool = True,
) -> tuple[list[TrainExample], dict[str, int]]:
    """Examples of every source, in source order, and how many each source gave.

    The corpus is read once; only the judged documents' texts are kept unless a
    self-supervised source needs every document. Judged documents missing from the corpus
    are skipped (counted as `qrels_missing`). A source that gives nothing warns and is
    skipped; nothing at all is an error. `data` is also where `synthetic` takes its few-shot
    examples from, so it may be given without the `qrels` source.
    """
    if tuple(sources) == ("qrels",) and data is None:
        raise TesseraError("the qrels source needs a dataset with judgments", field="pairs")
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
    settings = synthetic or SyntheticSettings()
    for source in sources:
        if source == "qrels" and data is None:  # judged_split said why
            counts[source] = 0
            continue
        if source == "qrels":
            found, counts["qrels_missing"] = _qrels_examples(data, texts)
            if lost := counts["qrels_missing"]:
                missing = next(doc for _, doc in qrels_pairs(data) if doc not in texts)
                message = (
                    f"{lost} of {lost + len(found)} judged pairs are of documents not in the corpus "
                    f"(e.g. '{missing}'); left out"
                )
                warnings.warn(TesseraWarning(message, file=data.name, field="pairs"), stacklevel=2)
        else:
            found, extra = _source_examples(
                source, corpus, documents, data, texts, seed, settings, show_progress
            )
            counts.update(extra)
        counts[source] = len(found)
        if not found:
            where = data.name if source == "qrels" and data else corpus.name
            message = f"pair source '{source}' gives no training pair; skipped"
            warnings.warn(TesseraWarning(message, file=where, field="pairs"), stacklevel=2)
        examples += found
    if not examples:
        raise TesseraError(
            f"no pair source gives a training pair ({', '.join(sources)})", file=corpus.name, field="pairs"
        )
    return examples, counts
