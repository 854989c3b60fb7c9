"""Write any dataset Tessera reads as a BEIR folder with train/test query splits.

Collections such as LISA come with one set of judged queries; learned components need a
train split that never touches the test queries. The split is by a hash of the query id
(`int(sha256(id), 16) % 2`: 1 train, 0 test), the rule the BEIR copies in the shared data
were written with, so a collection split here and one split there agree query for query,
and adding queries never moves an existing one. K-fold splits (`tessera.data.folds`) use the
same hash.

The folder is written beside the target and renamed onto it (`tessera.data.beir_folder`): it
is absent or complete.
"""

from __future__ import annotations

import json
from pathlib import Path

from tessera.data.beir_folder import durable_open, new_target, publish_folder, write_qrels
from tessera.data.corpus import open_corpus
from tessera.data.datasets import Qrels
from tessera.data.folds import query_bucket
from tessera.errors import DatasetError, TesseraError
from tessera.progress import progress_bar

SPLITS = ("train", "test")


def query_split(query_id: str) -> str:
    """`train` or `test` for a query id (see the module docstring)."""
    return "train" if query_bucket(query_id, 2) == 1 else "test"


def _read_source(source: str) -> tuple[dict[str, str], Qrels]:
    """Every query (judged or not) and every judgment of an ir_datasets id."""
    from tessera.data import irds

    if not irds.is_known(source):
        raise DatasetError(f"'{source}' is not a known ir_datasets id", field="dataset")
    dataset = irds.load(source)
    if not (dataset.has_queries() and dataset.has_qrels()):
        raise DatasetError(f"ir_datasets id '{source}' has no queries or no qrels", field="dataset")
    qrels: Qrels = {}
    with irds.offline_read(source, "dataset"):
        queries = {q.query_id: q.default_text() for q in dataset.queries_iter()}
        for qrel in dataset.qrels_iter():
            qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    return queries, qrels


def write_beir(
    source: str, output: str | Path, *, overwrite: bool = False, show_progress: bool = True
) -> Path:
    """Write `source` (an ir_datasets id with docs, queries and qrels) as a BEIR folder with
    `qrels/all.tsv`, `train.tsv` and `test.tsv`; return its path."""
    target = new_target(output, overwrite, inputs=(source,))
    queries, qrels = _read_source(source)
    corpus = open_corpus(source)

    def write(stage: Path) -> None:
        doc_ids: set[str] = set()
        with durable_open(stage / "corpus.jsonl") as handle, progress_bar(show_progress) as bar:
            task = bar.add_task(f"writing {source}", total=corpus.size_hint) if bar else None
            for doc in corpus:
                record = {"_id": doc.id, "title": doc.title, "text": doc.text}
                if doc.metadata:
                    record["metadata"] = doc.metadata
                handle.write(json.dumps(record) + "\n")
                doc_ids.add(doc.id)
                if bar:
                    bar.update(task, advance=1)
        missing = sorted({d for judged in qrels.values() for d in judged} - doc_ids)
        if missing:
            raise TesseraError(f"{len(missing)} judged documents are not in the corpus, e.g. '{missing[0]}'")
        with durable_open(stage / "queries.jsonl") as handle:
            handle.writelines(json.dumps({"_id": qid, "text": text}) + "\n" for qid, text in queries.items())
        write_qrels(stage / "qrels" / "all.tsv", qrels)
        for split in SPLITS:
            write_qrels(
                stage / "qrels" / f"{split}.tsv", {q: j for q, j in qrels.items() if query_split(q) == split}
            )

    publish_folder(write, target, overwrite, "beir")
    return target
