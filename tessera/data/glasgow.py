"""CISI, MEDLINE, LISA and CACM as ir_datasets datasets, read offline from local copies.

ir_datasets lacks these Glasgow collections, so `register()` adds `glasgow/cisi`,
`glasgow/medline`, `glasgow/lisa` and `glasgow/cacm` to its own registry, built from its own base classes:
everything that takes an ir_datasets id (`ir_datasets.load`, ir_measures, the evaluation code)
then works on them unchanged. Files are parsed by `tessera.data.smart`; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import ir_datasets
from ir_datasets.datasets.base import Dataset
from ir_datasets.formats import BaseDocs, BaseQrels, BaseQueries, GenericQuery, TrecQrel
from ir_datasets.indices import DEFAULT_DOCSTORE_OPTIONS, PickleLz4FullStore

from tessera import config
from tessera.data import smart
from tessera.data.smart import TitledDoc
from tessera.errors import DatasetError

QREL_DEFS = {1: "relevant"}


@dataclass(frozen=True)
class _Layout:
    """Which files of a collection folder hold what, and how to parse them."""

    docs_glob: str
    read_docs: Callable[[Sequence[Path]], Iterator[TitledDoc]]
    queries_file: str
    read_queries: Callable[[Path], Iterator[tuple[str, str]]]
    qrels_file: str
    read_qrels: Callable[[Path], Iterator[tuple[str, str]]]


def _smart_docs(paths: Sequence[Path]) -> Iterator[TitledDoc]:
    for path in paths:
        yield from smart.read_smart_docs(path)


LAYOUTS = {
    "cisi": _Layout(
        "CISI.ALL", _smart_docs, "CISI.QRY", smart.read_smart_queries, "CISI.REL", smart.read_cisi_qrels
    ),
    "medline": _Layout(
        "MED.ALL", _smart_docs, "MED.QRY", smart.read_smart_queries, "MED.REL", smart.read_medline_qrels
    ),
    # CACM as Glasgow distributes it: cacm.all (SMART, .T/.W/.B/.A/.N/.X), query.text, qrels.text.
    "cacm": _Layout(
        "cacm.all", _smart_docs, "query.text", smart.read_smart_queries, "qrels.text", smart.read_cacm_qrels
    ),
    "lisa": _Layout(
        smart.LISA_DOC_GLOB,
        smart.read_lisa_docs,
        "LISA.QUE",
        smart.read_lisa_queries,
        "LISARJ.NUM",
        smart.read_lisa_qrels,
    ),
}


class _Source:
    """One collection's folder; mutable so that a later `register()` can point it elsewhere."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = folder
        self.layout = LAYOUTS[name]

    @property
    def dataset_id(self) -> str:
        return f"glasgow/{self.name}"

    def _require(self, pattern: str) -> list[Path]:
        """The files matching `pattern`, or a DatasetError naming what is missing (checked on use)."""
        if not self.folder.is_dir():
            raise DatasetError(f"{self.dataset_id}: folder not found", file=self.folder)
        files = sorted(self.folder.glob(pattern))
        if not files:
            raise DatasetError(f"{self.dataset_id}: no file matching {pattern}", file=self.folder / pattern)
        return files

    def doc_files(self) -> list[Path]:
        return self._require(self.layout.docs_glob)

    def queries_file(self) -> Path:
        return self._require(self.layout.queries_file)[0]

    def qrels_file(self) -> Path:
        return self._require(self.layout.qrels_file)[0]

    def docs_cache(self, files: Sequence[Path]) -> Path:
        """Docstore folder keyed by the source files' path, size and mtime: an edited file is re-read."""
        digest = hashlib.sha256()
        for path in files:
            stat = path.stat()
            digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        folder = config.cache_dir() / "ir_datasets" / "glasgow" / self.name
        return folder / f"docs-{digest.hexdigest()[:16]}.pklz4"


class GlasgowDocs(BaseDocs):
    def __init__(self, source: _Source) -> None:
        super().__init__()
        self._source = source

    def _parse(self) -> Iterator[TitledDoc]:
        return self._source.layout.read_docs(self._source.doc_files())

    @ir_datasets.util.use_docstore
    def docs_iter(self) -> Iterator[TitledDoc]:
        return self._parse()

    def docs_store(self, field: str = "doc_id", options=DEFAULT_DOCSTORE_OPTIONS) -> PickleLz4FullStore:
        return PickleLz4FullStore(
            path=str(self._source.docs_cache(self._source.doc_files())),
            init_iter_fn=self._parse,
            data_cls=TitledDoc,
            lookup_field=field,
            index_fields=["doc_id"],
            options=options,
        )

    def docs_count(self) -> int:
        store = self.docs_store()
        return store.count() if store.built() else sum(1 for _ in self._parse())

    def docs_cls(self) -> type[TitledDoc]:
        return TitledDoc

    def docs_namespace(self) -> str:
        return self._source.dataset_id

    def docs_lang(self) -> str:
        return "en"


class GlasgowQueries(BaseQueries):
    def __init__(self, source: _Source) -> None:
        super().__init__()
        self._source = source

    def queries_iter(self) -> Iterator[GenericQuery]:
        path = self._source.queries_file()  # checked now, not on the first next()
        return (GenericQuery(qid, text) for qid, text in self._source.layout.read_queries(path))

    def queries_cls(self) -> type[GenericQuery]:
        return GenericQuery

    def queries_namespace(self) -> str:
        return self._source.dataset_id

    def queries_lang(self) -> str:
        return "en"


class GlasgowQrels(BaseQrels):
    def __init__(self, source: _Source) -> None:
        self._source = source

    def qrels_iter(self) -> Iterator[TrecQrel]:
        path = self._source.qrels_file()  # checked now, not on the first next()
        return (TrecQrel(qid, did, 1, "0") for qid, did in self._source.layout.read_qrels(path))

    def qrels_cls(self) -> type[TrecQrel]:
        return TrecQrel

    def qrels_defs(self) -> dict[int, str]:
        return QREL_DEFS


_SOURCES: dict[str, _Source] = {}


def register(data_dir: Path) -> None:
    """Register glasgow/cisi, glasgow/medline, glasgow/lisa and glasgow/cacm from `data_dir/<name>/`.

    Safe to call many times: ir_datasets refuses a second registration of an id, so a repeat call
    only points the already-registered datasets at `data_dir`. Absent folders are not an error
    here; reading that collection's docs, queries or qrels raises `DatasetError` naming them.
    """
    for name in LAYOUTS:
        folder = Path(data_dir) / name
        if name in _SOURCES:
            _SOURCES[name].folder = folder
            continue
        source = _Source(name, folder)
        dataset = Dataset(GlasgowDocs(source), GlasgowQueries(source), GlasgowQrels(source))
        ir_datasets.registry.register(source.dataset_id, dataset)
        _SOURCES[name] = source
