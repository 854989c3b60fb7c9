"""Suite definitions: which corpora a suite indexes and which judged query sets it scores.

A collection is indexed once per system and may carry several query sets (MS MARCO's dev/small
and the TREC DL years share one corpus). A collection that cannot be read here stays in the
suite with the reason, so the report shows it instead of silently dropping it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from tessera import config
from tessera.data.corpus import open_corpus
from tessera.data.datasets import EvalDataset, load_eval_dataset
from tessera.errors import TesseraError

SUITES = ("classic", "beir", "msmarco-passage", "folders:PATH,PATH,...")
TREC_DL_METRICS = ("nDCG@10", "R(rel=2)@1000", "RR(rel=2)@10")


@dataclass(frozen=True)
class QuerySet:
    name: str  # the report's row
    spec: str  # what load_eval_dataset takes
    split: str = "test"
    metrics: tuple[str, ...] = ()  # the suite's own metrics for this set; () = the run's
    group: str = ""  # rows averaged into one report row (CQADupStack's forums)
    remove_query: bool = False  # drop a hit whose id is the query's (BEIR's ignore_identical_ids)


@dataclass(frozen=True)
class Collection:
    name: str  # folder name under the report's indexes/
    corpus: str  # what build_index takes
    query_sets: tuple[QuerySet, ...]
    missing: str = ""  # why it cannot be run here; "" when it can


# --- classic --------------------------------------------------------------------------------------

# name -> ir_datasets id of the original (cranfield ships in ir_datasets, the rest in tessera.data.glasgow)
CLASSIC = {
    "cranfield": "cranfield",
    "cisi": "glasgow/cisi",
    "medline": "glasgow/medline",
    "lisa": "glasgow/lisa",
    "cacm": "glasgow/cacm",
    "vaswani": "vaswani",
}


def _is_beir_folder(folder: Path) -> bool:
    return (folder / "queries.jsonl").is_file() and (folder / "qrels").is_dir()


def _beir_collection(folder: Path, name: str, split: str = "test") -> Collection:
    """A BEIR folder scored on `split` (or its only split)."""
    splits = sorted(path.stem for path in (folder / "qrels").glob("*.tsv")) if folder.is_dir() else []
    if split not in splits and len(splits) == 1:
        split = splits[0]
    query_set = QuerySet(f"{folder.name}/{split}", str(folder), split)
    if not folder.is_dir():
        return Collection(name, str(folder), (query_set,), missing=f"folder not found: {folder}")
    if not (folder / "corpus.jsonl").is_file():
        why = "corpus.jsonl absent (queries and qrels only)"
        return Collection(name, str(folder), (query_set,), missing=why)
    if split not in splits:
        why = f"no qrels/{split}.tsv (splits: {', '.join(splits) or 'none'})"
        return Collection(name, str(folder), (query_set,), missing=why)
    return Collection(name, str(folder), (query_set,))


def classic(data_dir: Path) -> list[Collection]:
    """The classic collections, each once: its BEIR copy's test split when `NAME-beir/` has one (so
    systems trained on the train split are scored on held-out queries), else the original with all
    its queries; then any other BEIR folder in the data directory."""
    collections: list[Collection] = []
    claimed: set[str] = set()
    for name, dataset_id in CLASSIC.items():
        beir = data_dir / f"{name}-beir"
        if _is_beir_folder(beir) and (beir / "qrels" / "test.tsv").is_file():
            collections.append(_beir_collection(beir, name))
            claimed |= {beir.name, name}
            continue
        query_set = QuerySet(dataset_id, dataset_id, "test")
        missing = "" if (data_dir / name).is_dir() else f"no local copy ({data_dir / name} not found)"
        collections.append(Collection(name, dataset_id, (query_set,), missing))
        claimed.add(name)
    others = sorted(p for p in data_dir.iterdir() if p.is_dir()) if data_dir.is_dir() else []
    others = [folder for folder in others if folder.name not in claimed]
    collections += [_beir_collection(folder, folder.name) for folder in others if _is_beir_folder(folder)]
    return collections


# --- BEIR -----------------------------------------------------------------------------------------

CQADUPSTACK = (
    "android", "english", "gaming", "gis", "mathematica", "physics",
    "programmers", "stats", "tex", "unix", "webmasters", "wordpress",
)  # fmt: skip
# name -> (corpus id, query set id); None: not in ir_datasets (BEIR cannot redistribute it).
BEIR = {
    "msmarco": ("beir/msmarco", "beir/msmarco/dev"),
    "trec-covid": ("beir/trec-covid", "beir/trec-covid"),
    "nfcorpus": ("beir/nfcorpus", "beir/nfcorpus/test"),
    "bioasq": None,
    "nq": ("beir/nq", "beir/nq"),
    "hotpotqa": ("beir/hotpotqa", "beir/hotpotqa/test"),
    "fiqa": ("beir/fiqa", "beir/fiqa/test"),
    "signal1m": None,
    "trec-news": None,
    "robust04": None,
    "arguana": ("beir/arguana", "beir/arguana"),
    "webis-touche2020": ("beir/webis-touche2020/v2", "beir/webis-touche2020/v2"),
    "quora": ("beir/quora", "beir/quora/test"),
    "dbpedia-entity": ("beir/dbpedia-entity", "beir/dbpedia-entity/test"),
    "scidocs": ("beir/scidocs", "beir/scidocs"),
    "fever": ("beir/fever", "beir/fever/test"),
    "climate-fever": ("beir/climate-fever", "beir/climate-fever"),
    "scifact": ("beir/scifact", "beir/scifact/test"),
}


def beir() -> list[Collection]:
    """The BEIR datasets by ir_datasets id; CQADupStack is twelve forums averaged into one row.
    Every query set drops a hit whose id is the query's, as BEIR's own evaluation does by default
    (`ignore_identical_ids`) and pyserini's BEIR runs (`--remove-query`): the published numbers
    are measured that way (ArguAna's and Quora's queries are corpus documents)."""
    collections = []
    for name, ids in BEIR.items():
        if ids is None:
            why = "not in ir_datasets (BEIR may not redistribute it; build it from the original source)"
            collections.append(Collection(name, "", (QuerySet(name, "", remove_query=True),), missing=why))
        else:
            collections.append(Collection(name, ids[0], (QuerySet(ids[1], ids[1], remove_query=True),)))
        if name == "quora":  # BEIR's table order: CQADupStack sits before Quora
            collections[-1:-1] = [
                Collection(f"cqadupstack-{forum}", f"beir/cqadupstack/{forum}",
                           (QuerySet(f"beir/cqadupstack/{forum}", f"beir/cqadupstack/{forum}",
                                     group="beir/cqadupstack", remove_query=True),))
                for forum in CQADUPSTACK
            ]  # fmt: skip
    return collections


def msmarco_passage() -> list[Collection]:
    """MS MARCO passage: dev/small (RR@10, R@1000) and TREC DL 2019/2020 (graded; relevance >= 2
    counts as relevant for the binary measures), all against one index of the passage corpus."""
    query_sets = (
        QuerySet("msmarco-passage/dev/small", "msmarco-passage/dev/small", metrics=("RR@10", "R@1000")),
        QuerySet("trec-dl-2019", "msmarco-passage/trec-dl-2019/judged", metrics=TREC_DL_METRICS),
        QuerySet("trec-dl-2020", "msmarco-passage/trec-dl-2020/judged", metrics=TREC_DL_METRICS),
    )
    return [Collection("msmarco-passage", "msmarco-passage", query_sets)]


def folders(paths: str) -> list[Collection]:
    """Any BEIR folders, scored on their `test` split (or their only one)."""
    folders_ = [Path(part).expanduser() for part in paths.split(",") if part]
    if not folders_:
        raise TesseraError("folders: needs at least one path (folders:PATH,PATH)", field="suite")
    collections = [_beir_collection(folder.resolve(), folder.resolve().name) for folder in folders_]
    if len({c.name for c in collections}) < len(collections):  # folders of one name: numbered apart,
        collections = [  # their query sets too, since those key saved runs and report rows
            replace(
                c,
                name=f"{i}-{c.name}",
                query_sets=tuple(replace(q, name=f"{i}-{q.name}") for q in c.query_sets),
            )
            for i, c in enumerate(collections, start=1)
        ]
    return collections


@contextmanager
def _quiet_ir_datasets() -> Iterator[None]:
    """ir_datasets logs each failed download attempt; the suite reports one line per dataset."""
    logger = logging.getLogger("ir_datasets")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def judged_sets(collection: Collection) -> tuple[dict[str, EvalDataset], str]:
    """({query set: judged queries}, "") when the collection can be run here, else ({}, why):
    an offline ir_datasets id fails in one short line instead of mid-suite."""
    if collection.missing:
        return {}, collection.missing
    try:
        with _quiet_ir_datasets():
            next(iter(open_corpus(collection.corpus)))
            return {q.name: load_eval_dataset(q.spec, q.split) for q in collection.query_sets}, ""
    except (TesseraError, OSError, StopIteration) as exc:
        return {}, "empty corpus" if isinstance(exc, StopIteration) else str(exc).splitlines()[0][:300]


def resolve_suite(suite: str, data_dir: Path | None = None) -> list[Collection]:
    """The suite's collections (whether each can be run here is found when it is opened)."""
    data_dir = Path(os.path.abspath(data_dir or config.data_dir()))  # the same keys from any cwd
    if suite == "classic":
        collections = classic(data_dir)
    elif suite == "beir":
        collections = beir()
    elif suite == "msmarco-passage":
        collections = msmarco_passage()
    elif suite.startswith("folders:"):
        collections = folders(suite[len("folders:") :])
    else:
        raise TesseraError(f"unknown suite '{suite}' (known: {', '.join(SUITES)})", field="suite")
    return collections
