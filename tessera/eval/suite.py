"""`tessera eval-suite`: every (system x dataset) pair of a suite, resumable, into one report.

A thin layer over `build_index`, `retrieve` and `score`: the numbers are the ones `tessera eval`
gives for the same index and dataset. Each pair's outcome is saved under REPORT_DIR/pairs/ with
the checksums of what it was computed from (the index manifest, the TREC run, a fusion's input
runs), so a re-run skips every pair whose inputs are unchanged and an interrupted suite resumes
at the next pair (an interrupted index build resumes inside `build_index`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tessera.data.corpus import open_corpus
from tessera.data.datasets import EvalDataset
from tessera.errors import TesseraError
from tessera.eval.evaluate import metric_list, per_query_scores, score, warn_shallow
from tessera.eval.runs import read_trec, retrieve, write_trec
from tessera.eval.sampling import sample_corpus
from tessera.eval.significance import compare_to_baseline
from tessera.eval.suite_files import (
    check_report_folder,
    index_bytes,
    judgments_sha256,
    read_json,
    total,
    write_json,
)
from tessera.eval.suites import Collection, QuerySet, judged_sets, resolve_suite
from tessera.eval.systems import DEFAULT_FACTORY, System, parse_systems, slug
from tessera.indexing.builder import build_index
from tessera.indexing.manifest import sha256_file
from tessera.indexing.reindex import reindex
from tessera.models.registry import is_lexical
from tessera.retrieval.fusion import Run, fuse
from tessera.retrieval.index import Index

SUITE_METRICS = ("nDCG@10", "R@100", "RR@10")
RRF_K = 60
Log = Callable[[str], None]


@dataclass
class SuiteRun:
    """Everything one suite run needs to decide, compute and save a pair."""

    output: Path
    systems: list[System]
    metrics: tuple[str, ...] | None  # None: each query set's own, else SUITE_METRICS
    depth: int
    max_docs: int | None
    log: Log

    def metrics_for(self, query_set: QuerySet) -> tuple[str, ...]:
        return self.metrics or query_set.metrics or SUITE_METRICS

    def pair_path(self, query_set: QuerySet, system: System) -> Path:
        return self.output / "pairs" / slug(query_set.name) / f"{system.slug}.json"

    def run_path(self, query_set: QuerySet, system: System) -> Path:
        return self.output / "runs" / slug(query_set.name) / f"{system.slug}.trec"

    # --- indexes ------------------------------------------------------------------------------

    def corpus_for(self, collection: Collection, datasets: dict[str, EvalDataset]) -> tuple[str, str]:
        """(corpus spec, label): the collection's corpus, or its sample under --max-docs."""
        if not self.max_docs:
            return collection.corpus, ""
        judged = {doc_id for data in datasets.values() for judged in data.qrels.values() for doc_id in judged}
        target = self.output / "corpora" / f"{collection.name}.max{self.max_docs}.jsonl"
        path, kept, total = sample_corpus(collection.corpus, judged, self.max_docs, target)
        return str(path), f"{kept} of {total} documents"

    def index_for(self, system: System, collection: Collection, corpus: str) -> tuple[Path, dict]:
        """Build the system's index on the collection (or reuse the one built from the same spec
        and corpus); (index directory, {seconds: None for an index built elsewhere, vectors_from})."""
        if system.prebuilt:
            root = Path(system.index_dir(collection.name)).expanduser()
            if not (root / "manifest.json").is_file():
                raise TesseraError(f"no index for collection '{collection.name}'", file=root)
            return root, {"seconds": None, "vectors_from": None}
        plain = self._plain_sibling(system)
        if plain is not None:  # search parameters do not change the index: search the sibling's
            return self.index_for(plain, collection, corpus)
        suffix = f".max{self.max_docs}" if self.max_docs else ""
        root = self.output / "indexes" / f"{collection.name}{suffix}" / system.slug
        record_path = root.with_name(root.name + ".build.json")
        fingerprint = open_corpus(corpus).fingerprint  # an edited corpus file is indexed again
        wanted = {
            "encoder": system.encoder,
            "factory": system.factory,
            "corpus": corpus,
            "input": fingerprint,
        }
        record = read_json(record_path)
        rebuild = (root / "manifest.json").is_file()
        same = bool(record) and record.get("key") == wanted
        if rebuild and same and record.get("manifest_sha256") == sha256_file(root / "manifest.json"):
            return root, {"seconds": record["seconds"], "vectors_from": record.get("vectors_from")}
        note = " (spec or index changed: rebuilding)" if rebuild else ""
        source = self._exact_sibling(system, root, wanted)
        started = time.perf_counter()
        if source is None:
            self.log(f"indexing {collection.name} with {system.name}{note}")
            build_index(corpus, root, encoder=system.encoder, factory=system.factory, overwrite=rebuild)
        else:
            self.log(f"indexing {collection.name} with {system.name} from {source.name}'s vectors{note}")
            reindex(source, root, system.factory, overwrite=rebuild)
        seconds = time.perf_counter() - started
        record = {
            "key": wanted,
            "seconds": seconds,
            "manifest_sha256": sha256_file(root / "manifest.json"),
            "vectors_from": source.name if source else None,
        }
        write_json(record_path, record)
        return root, {"seconds": seconds, "vectors_from": record["vectors_from"]}

    def _plain_sibling(self, system: System) -> System | None:
        """For a system with search parameters, the suite's system of the same index without them."""
        if not (system.params or system.second_stage):
            return None
        same = [
            other
            for other in self.systems
            if not (other.params or other.second_stage or other.fuse or other.prebuilt)
            and (other.encoder, other.factory) == (system.encoder, system.factory)
        ]
        return same[0] if same else None

    def _exact_sibling(self, system: System, root: Path, wanted: dict) -> Path | None:
        """A Flat index of the same encoder and corpus already built in this suite: another faiss
        kind is then trained on its stored vectors (`reindex`) instead of encoding the corpus again."""
        if system.factory == DEFAULT_FACTORY or is_lexical(system.encoder):
            return None
        for other in self.systems:
            sibling = root.with_name(other.slug)
            record = read_json(sibling.with_name(sibling.name + ".build.json"))
            exact = other.encoder == system.encoder and other.factory == DEFAULT_FACTORY
            same_input = bool(record) and record["key"] == {**wanted, "factory": DEFAULT_FACTORY}
            if exact and same_input and (sibling / "manifest.json").is_file():
                return sibling
        return None

    # --- pairs --------------------------------------------------------------------------------

    def pair_key(self, system: System, query_set: QuerySet, data: EvalDataset, **inputs: object) -> dict:
        """What a saved pair was computed from; `inputs` names the index or the fused runs."""
        return {
            "system": system.spec,
            "dataset": [query_set.spec, query_set.split],
            "judgments_sha256": judgments_sha256(data),
            **({"remove_query": True} if query_set.remove_query else {}),  # older keys stay valid
            "metrics": list(self.metrics_for(query_set)),
            "depth": self.depth,
            "max_docs": self.max_docs,
            **inputs,
        }

    def saved(self, query_set: QuerySet, system: System, key: dict, data: EvalDataset) -> dict | None:
        """The saved pair when it was computed from exactly these inputs; when only the metrics
        differ, the saved run scored again (no retrieval, and its timings kept)."""
        path = self.pair_path(query_set, system)
        pair = read_json(path)
        run = self.run_path(query_set, system)
        if not pair or not run.is_file() or pair.get("run_sha256") != sha256_file(run):
            return None
        if pair.get("key") == key:
            return pair
        if not isinstance(pair.get("key"), dict) or {**pair["key"], "metrics": key["metrics"]} != key:
            return None
        metrics, saved_run = self.metrics_for(query_set), read_trec(run)
        pair |= {
            "key": key,
            "metrics": score(saved_run, data, metrics),
            "per_query": per_query_scores(saved_run, data, metrics),
        }
        write_json(path, pair)
        return pair

    def save(
        self, query_set: QuerySet, system: System, key: dict, run: Run, data: EvalDataset, **extra: object
    ) -> dict:
        metrics = self.metrics_for(query_set)
        run_path = self.run_path(query_set, system)
        write_trec(run, run_path, tag=system.slug)
        pair = {
            "key": key,
            "metrics": score(run, data, metrics),
            "per_query": per_query_scores(run, data, metrics),
            "queries": len(data.queries),
            "run_sha256": sha256_file(run_path),
            **extra,
        }
        write_json(self.pair_path(query_set, system), pair)
        return pair

    def indexed_pair(
        self, system: System, query_set: QuerySet, data: EvalDataset, root: Path, build: dict
    ) -> tuple[dict, bool]:
        """(pair, reused) for a system with an index."""
        manifest_sha256 = sha256_file(root / "manifest.json")
        key = self.pair_key(system, query_set, data, index_manifest_sha256=manifest_sha256)
        pair = self.saved(query_set, system, key, data)
        if pair is not None:
            return pair, True
        index = Index.load(root, search_params=system.search_params)
        warm_up = [next(iter(data.queries.values()))]
        index.batch_search(warm_up, self.depth)  # one-time costs (JVM, first call) stay out of ms/query
        started = time.perf_counter()
        run = retrieve(index, data, self.depth, show_progress=False, remove_query=query_set.remove_query)
        run = system.second_stages(data.queries, run, index)
        seconds = time.perf_counter() - started
        return self.save(
            query_set,
            system,
            key,
            run,
            data,
            ms_per_query=1000 * seconds / max(1, len(data.queries)),
            index_bytes=index_bytes(root, index.manifest),
            doc_count=index.manifest.doc_count,
            build_seconds=build["seconds"],
            vectors_from=build["vectors_from"],
            index=str(root),
        ), False

    def fused_pair(
        self, system: System, query_set: QuerySet, data: EvalDataset, parts: dict[str, dict]
    ) -> tuple[dict, bool]:
        """(pair, reused) for a fusion of the parts' saved runs (as `tessera eval A B` fuses)."""
        by_name = {s.name: s for s in self.systems}
        runs = {name: parts[name]["run_sha256"] for name in system.fuse}
        how = {"rrf_k": RRF_K} if system.fusion == "rrf" else {"weights": list(system.weights or ())}
        key = self.pair_key(system, query_set, data, **how, parts=runs)
        pair = self.saved(query_set, system, key, data)
        if pair is not None:
            return pair, True
        runs = [read_trec(self.run_path(query_set, by_name[name])) for name in system.fuse]
        started = time.perf_counter()
        fused = fuse(runs, system.fusion, system.weights, rrf_k=RRF_K, depth=self.depth, top=self.depth)
        if system.second_stage:  # the first part's index gives the text
            fused = system.second_stages(data.queries, fused, Index.load(parts[system.fuse[0]]["index"]))
        ms = (
            1000 * (time.perf_counter() - started) / max(1, len(data.queries)) if system.second_stage else 0.0
        )
        return self.save(
            query_set,
            system,
            key,
            fused,
            data,
            ms_per_query=ms + sum(parts[name]["ms_per_query"] for name in system.fuse),
            index_bytes=sum(parts[name]["index_bytes"] for name in system.fuse),
            doc_count=parts[system.fuse[0]]["doc_count"],
            build_seconds=total(parts[name]["build_seconds"] for name in system.fuse),
        ), False

    def collection(self, collection: Collection) -> tuple[dict, dict, dict]:
        """Pairs of one collection: ({dataset: {system: pair}}, {dataset: {system: why}}, dataset info)."""
        pairs: dict[str, dict[str, dict]] = {q.name: {} for q in collection.query_sets}
        missing: dict[str, dict[str, str]] = {q.name: {} for q in collection.query_sets}
        info = {q.name: {"collection": collection.name, "group": q.group} for q in collection.query_sets}
        datasets, why = judged_sets(collection)
        if why:
            for query_set in collection.query_sets:
                info[query_set.name]["missing"] = why
            return pairs, missing, info
        corpus, sampled = self.corpus_for(collection, datasets)
        for query_set in collection.query_sets:
            info[query_set.name] |= {"queries": len(datasets[query_set.name].queries), "sampled": sampled}
        exact_first = sorted(self.systems, key=lambda system: system.factory != DEFAULT_FACTORY)
        for system in exact_first:  # so that other faiss kinds can reuse a Flat index's vectors
            if system.fuse:
                continue
            try:
                root, build = self.index_for(system, collection, corpus)
            except TesseraError as exc:  # one system's failure is a row of the report, not the end of it
                self.log(f"not run: {collection.name} x {system.name}: {exc}")
                for query_set in collection.query_sets:
                    missing[query_set.name][system.name] = str(exc)
                continue
            for query_set in collection.query_sets:
                data = datasets[query_set.name]
                try:
                    pair, reused = self.indexed_pair(system, query_set, data, root, build)
                except TesseraError as exc:  # e.g. a query id a TREC run cannot hold
                    self.log(f"not run: {query_set.name} x {system.name}: {exc}")
                    missing[query_set.name][system.name] = str(exc)
                    continue
                pairs[query_set.name][system.name] = pair
                self._report(query_set, system, pair, reused)
        for system in self.systems:
            for query_set in collection.query_sets if system.fuse else ():
                done = pairs[query_set.name]
                absent = [name for name in system.fuse if name not in done]
                if absent:
                    missing[query_set.name][system.name] = f"needs {', '.join(absent)}"
                    continue
                try:
                    pair, reused = self.fused_pair(system, query_set, datasets[query_set.name], done)
                except TesseraError as exc:
                    self.log(f"not run: {query_set.name} x {system.name}: {exc}")
                    missing[query_set.name][system.name] = str(exc)
                    continue
                pairs[query_set.name][system.name] = pair
                self._report(query_set, system, pair, reused)
        for query_set in collection.query_sets:
            info[query_set.name]["docs"] = next(
                (p["doc_count"] for p in pairs[query_set.name].values() if p.get("doc_count")), None
            )
        return pairs, missing, info

    def _report(self, query_set: QuerySet, system: System, pair: dict, reused: bool) -> None:
        first = self.metrics_for(query_set)[0]
        state = "saved" if reused else f"{pair['ms_per_query']:.1f} ms/query"
        self.log(f"{query_set.name} x {system.name}: {first} {pair['metrics'][first]:.4f} ({state})")


def run_suite(
    suite: str,
    systems: Sequence[str | System],
    output: str | Path,
    metrics: Sequence[str] | None = None,
    max_docs: int | None = None,
    depth: int = 1000,
    alpha: float = 0.05,
    command: str | None = None,
    log: Log | None = None,
    plots: bool = True,
) -> dict:
    """Run (or resume) a suite and write results.json, report.md and the plots under `output`.

    Returns the results as written to results.json. The first system is the baseline of the
    significance tests.
    """
    from tessera.eval.report import write_report

    parsed = parse_systems(systems)
    metrics = None if metrics is None else metric_list(metrics)
    if max_docs is not None and max_docs < 1:
        raise TesseraError("must be at least 1", field="max_docs")
    if depth < 1:
        raise TesseraError("must be at least 1", field="depth")
    if not 0 < alpha < 1:
        raise TesseraError(f"alpha must be between 0 and 1, got {alpha}", field="alpha")
    if metrics is not None:
        warn_shallow(metrics, depth)
    root = Path(output)
    check_report_folder(root)
    chosen = tuple(metrics) if metrics else None
    runner = SuiteRun(root, parsed, chosen, depth, max_docs, log or (lambda _: None))
    results: dict = {
        "suite": suite,
        "command": command,
        "baseline": parsed[0].name,
        "depth": depth,
        "max_docs": max_docs,
        "alpha": alpha,
        "systems": {s.name: {"spec": s.spec, "kind": s.kind} for s in parsed},
        "datasets": {},
        "results": {},
        "per_query": {},
        "efficiency": {},
        "unavailable": {},
    }
    for collection in resolve_suite(suite):
        pairs, missing, info = runner.collection(collection)
        results["datasets"] |= info
        for dataset, done in pairs.items():
            if not done:
                continue
            by_system = {s.name: done[s.name] for s in parsed if s.name in done}  # the user's order
            results["results"][dataset] = {name: pair["metrics"] for name, pair in by_system.items()}
            results["per_query"][dataset] = {name: pair["per_query"] for name, pair in by_system.items()}
            results["efficiency"][dataset] = {
                name: {
                    field: pair.get(field)
                    for field in ("index_bytes", "doc_count", "build_seconds", "ms_per_query", "vectors_from")
                }
                for name, pair in by_system.items()
            }
        for dataset, why in missing.items():
            if why:
                results["unavailable"][dataset] = why
    names = sorted({m for by_system in results["results"].values() for v in by_system.values() for m in v})
    results["metrics"] = (
        list(metrics)
        if metrics
        else [m for m in SUITE_METRICS if m in names] + [m for m in names if m not in SUITE_METRICS]
    )
    results["significance"] = compare_to_baseline(
        results["per_query"], parsed[0].name, results["metrics"], alpha
    )
    write_json(root / "results.json", results)
    write_report(results, root, with_plots=plots)
    return results
