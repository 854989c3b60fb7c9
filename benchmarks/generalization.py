"""Do the learned components hold on collections their defaults were not chosen on?

Question (issue 11): with the README's defaults, does every trained system beat its untrained
baseline on the test queries of collections nobody tuned on, and by more than the noise?

Collections come in two sets: `--choose` (defaults may be picked on them) and `--confirm`
(only reported). A collection is a BEIR folder name in TESSERA_DATA_DIR or an ir_datasets id
with qrels (e.g. `glasgow/lisa`), which is written once as a BEIR folder with hash-split
train/test queries by `tessera.data.beir_writer` (the same rule the shared copies use).

Per collection and seed, on the `test` queries (never trained on): BM25, MiniLM flat, their
RRF (the anchor of the trained dense rows), OPQ48/OPQ24, JPQ48/JPQ24 trained on each pair
recipe, BEBR 1/2-bit, a query tower (`train dense --freeze-documents`), full fine-tuning,
ColBERT and XTR (`train colbert|xtr`, searched through their token index) per pair recipe,
and each of those fused with BM25. `--jpq-settings` compares JPQ's training settings (learning
rates, negatives, epochs) the same way, so its defaults can be chosen on one set of collections
and confirmed on the other. nDCG@10 is given with its standard error across queries; every
ratio's baseline is in the same table. Results are saved under `--work/results` as they come:
rerunning skips what is done, so an interrupted run resumes.
The tables, the overview plot and `--paired` are `generalization_report.py`.

    TESSERA_DATA_DIR=../shared/data python benchmarks/generalization.py \\
        --choose cranfield-beir cisi-beir --confirm medline-beir glasgow/lisa --work /tmp/gen
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from tessera import config
from tessera.cli import at_least
from tessera.data.beir_writer import write_beir
from tessera.data.datasets import EvalDataset, load_eval_dataset
from tessera.eval.evaluate import per_query_scores
from tessera.eval.runs import retrieve
from tessera.eval.significance import mean_se
from tessera.indexing.builder import build_index
from tessera.indexing.reindex import reindex
from tessera.retrieval.fusion import reciprocal_rank_fusion
from tessera.retrieval.index import Index
from tessera.training.dense import train_dense
from tessera.training.jpq import train_jpq
from tessera.training.multivector import train_multivector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generalization_report import compare, overview, report  # noqa: E402

METRIC = "nDCG@10"
COMPRESSED = {
    "OPQ48": ("OPQ48,PQ48", {}),
    "OPQ24": ("OPQ24,PQ24", {}),
    "BEBR1": ("bebr:1", {}),
    "BEBR2": ("bebr:2", {}),
}


def collection_folder(name: str, work: Path) -> Path:
    """A BEIR folder for `name`: one in the data directory, or one written from an ir_datasets id."""
    local = config.data_dir() / name
    if (local / "corpus.jsonl").is_file():
        return local
    target = work / "data" / name.replace("/", "-")
    return target if target.is_dir() else write_beir(name, target, show_progress=False)


def keyword_options(
    function, setting: str, fixed: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> dict[str, float | int]:
    """Numeric keywords of `function` from `lr=1e-3,epochs=20` ("" = its defaults), less the
    `fixed` ones the caller sets itself, plus `optional` numeric ones that default to None;
    ValueError names the item that is not one of them."""
    known = {
        name
        for name, p in inspect.signature(function).parameters.items()
        if type(p.default) in (int, float) and name not in fixed
    } | set(optional)
    options: dict[str, float | int] = {}
    for item in filter(None, setting.split(",")):
        key, _, value = (part.strip() for part in item.partition("="))
        if key not in known:
            raise ValueError(f"'{item}': unknown setting '{key}' (one of {', '.join(sorted(known))})")
        try:
            options[key] = int(value) if value.isdigit() else float(value)
        except ValueError:
            raise ValueError(f"'{item}': '{value}' is not a number") from None
    return options


def jpq_options(setting: str) -> dict[str, float | int]:
    """`train_jpq` keywords of a `--jpq-settings` item (the seed and synthetic documents are the script's)."""
    return keyword_options(train_jpq, setting, ("seed", "synthetic_docs"))


def per_query(run, test: EvalDataset) -> dict[str, float]:
    """nDCG@10 of every judged test query (0 for a query the run has no hit for)."""
    return per_query_scores(run, test, [METRIC])[METRIC]


class Bench:
    """One collection's systems; every result is a JSON file, so nothing is measured twice."""

    def __init__(self, name: str, work: Path, args: argparse.Namespace, console: Console):
        self.name, self.args, self.console = name, args, console
        self.folder = collection_folder(name, work)
        self.work = work / name.replace("/", "-")
        self.results = self.work / "results"
        self.results.mkdir(parents=True, exist_ok=True)
        self.test = load_eval_dataset(self.folder, "test")
        self.runs: dict[str, dict] = {}
        self.paths: dict[str, Path] = {}

    def index(self, label: str, make) -> Path:
        path = self.work / label
        if not path.is_dir() and not self.args.saved_only:
            start = time.perf_counter()
            make(path)
            self.console.log(f"{self.name}: {escape(label)} built in {time.perf_counter() - start:.0f} s")
        return path

    def measure(self, system: str, path: Path | None = None, make_run=None) -> dict[str, float] | None:
        """Per-query nDCG@10 of a system, computed once and saved; `path` is its index."""
        if path is not None:
            self.paths[system] = path
        saved = self.results / f"{system}.json"
        if saved.is_file():
            return json.loads(saved.read_text())
        if self.args.saved_only:
            return None
        start = time.perf_counter()
        scores = per_query(make_run() if make_run else self.run(system), self.test)
        saved.write_text(json.dumps(scores))
        seconds = time.perf_counter() - start
        mean = mean_se(list(scores.values()))[0]
        self.console.log(f"{self.name}: {escape(system)} {mean:.4f} ({seconds:.0f} s)")
        return scores

    def run(self, system: str):
        """The system's run over the test queries, retrieved on first need (fusions need runs)."""
        if system not in self.runs:
            index = Index.load(self.paths[system])
            self.runs[system] = retrieve(index, self.test, 1000, show_progress=False)
        return self.runs[system]

    def fused(self, first: str, second: str) -> tuple[str, dict[str, float]]:
        system = f"RRF({first}, {second})"
        return system, self.measure(
            system, make_run=lambda: reciprocal_rank_fusion([self.run(first), self.run(second)])
        )

    def trained(self, label: str, train, kind: str = "") -> Path:
        """Train a model once (`train(path)`), then index the corpus with it (`kind:` + its path)."""
        model = self.index(f"model_{label}".replace(" ", "_"), train)
        return self.index(
            f"index_{label}".replace(" ", "_"),
            lambda p: build_index(self.folder, p, encoder=f"{kind}{model}", show_progress=False),
        )

    def common(self, pairs: str, seed: int) -> dict:
        """The training options every trainer here gets."""
        return dict(pairs=pairs, seed=seed, synthetic_docs=self.args.synthetic_docs, show_progress=False)

    def trained_dense(self, label: str, pairs: str, seed: int, freeze: bool) -> Path:
        a = self.args
        options = dict(epochs=a.epochs, learning_rate=a.lr if freeze else None, freeze_documents=freeze)
        return self.trained(
            label, lambda p: train_dense(self.folder, p, **options, **self.common(pairs, seed))
        )

    def trained_late(self, label: str, scoring: str, pairs: str, seed: int) -> Path:
        """ColBERT or XTR with `train colbert|xtr`'s defaults but the pair recipe and seed."""
        options = dict(scoring=scoring, epochs=self.args.late_epochs)
        return self.trained(
            label,
            lambda p: train_multivector(self.folder, p, **options, **self.common(pairs, seed)),
            f"{scoring}:",
        )

    def all(self) -> dict[str, dict[str, float]]:
        a = self.args
        out: dict[str, dict[str, float]] = {}
        bm25 = self.index("bm25", lambda p: build_index(self.folder, p, encoder="bm25", show_progress=False))
        flat = self.index(
            "flat", lambda p: build_index(self.folder, p, encoder="minilm", show_progress=False)
        )
        out["BM25"] = self.measure("BM25", bm25)
        out["MiniLM flat"] = self.measure("MiniLM flat", flat)
        name, out[name] = self.fused("BM25", "MiniLM flat")
        built: dict[str, Path] = {}
        if not a.no_compressed:
            for label, (factory, params) in COMPRESSED.items():
                built[label] = self.index(
                    label, lambda p, f=factory, q=params: reindex(flat, p, f, q, show_progress=False)
                )
                out[label] = self.measure(label, built[label])
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            for pairs, setting in [(p, s) for p in a.jpq_pairs for s in a.jpq_settings] if built else ():
                for m, base in [(m, f"OPQ{m}") for m in a.jpq_sizes]:
                    label = f"JPQ{m} [{pairs}]{f' {{{setting}}}' if setting else ''} s{seed}"
                    path = self.index(
                        label.replace(" ", "_"),
                        lambda p, b=base, pr=pairs, s=seed, st=setting: train_jpq(
                            built[b],
                            self.folder,
                            p,
                            pairs=pr,
                            seed=s,
                            synthetic_docs=a.synthetic_docs,
                            show_progress=False,
                            **jpq_options(st),
                        ),
                    )
                    out[label] = self.measure(label, path)
            for kind, recipes in (("query tower", a.tower_pairs), ("dense", a.dense_pairs)):
                for pairs in recipes:
                    label = f"{kind} [{pairs}] s{seed}"
                    out[label] = self.measure(
                        label, self.trained_dense(label, pairs, seed, kind == "query tower")
                    )
                    name, out[name] = self.fused("BM25", label)
            for scoring, kind in (("colbert", "ColBERT"), ("xtr", "XTR")):
                for pairs in a.late_pairs:
                    label = f"{kind} [{pairs}] s{seed}"
                    out[label] = self.measure(label, self.trained_late(label, scoring, pairs, seed))
                    name, out[name] = self.fused("BM25", label)
        return {system: scores for system, scores in out.items() if scores is not None}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--choose", nargs="*", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--confirm", nargs="*", default=["medline-beir", "glasgow/lisa"])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "generalization")
    parser.add_argument("--seeds", type=at_least(1), default=1)
    parser.add_argument(
        "--first-seed", type=at_least(0), default=0, help="Seeds first-seed .. first-seed+seeds-1."
    )
    parser.add_argument("--tower-pairs", nargs="*", default=["qrels,titles", "qrels,ict", "qrels,synthetic"])
    parser.add_argument("--jpq-pairs", nargs="*", default=["qrels", "qrels,synthetic"])
    parser.add_argument(
        "--jpq-settings",
        nargs="*",
        default=[""],
        help='train_jpq settings to compare, e.g. "" "lr_centroids=1e-3" "negatives=30" ("": its defaults).',
    )
    parser.add_argument("--jpq-sizes", nargs="*", default=["48", "24"], choices=["48", "24"])
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--synthetic-docs", type=at_least(1), default=300)
    parser.add_argument("--dense-pairs", nargs="*", default=[], help="Full fine-tuning recipes (lr 2e-5).")
    parser.add_argument("--late-pairs", nargs="*", default=[], help="ColBERT and XTR recipes.")
    parser.add_argument("--late-epochs", type=float, default=1.0)
    parser.add_argument("--no-compressed", action="store_true", help="Skip OPQ, JPQ and BEBR.")
    parser.add_argument("--saved-only", action="store_true", help="Report what is saved; train nothing.")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the per-collection ratios.")
    parser.add_argument(
        "--paired",
        nargs=2,
        action="append",
        default=[],
        metavar=("A", "B"),
        help='Recipe A - recipe B per collection, e.g. --paired "XTR [qrels,synthetic]" "XTR [qrels,titles]"',
    )
    args = parser.parse_args()
    for setting in args.jpq_settings:  # before hours of training, not after
        try:
            jpq_options(setting)
        except ValueError as exc:
            parser.error(f"--jpq-settings {exc}")
    console = Console(width=160)
    config.apply_offline_defaults()
    sets: dict[str, dict] = {"choice": {}, "confirmation": {}}
    for group, names in (("choice", args.choose), ("confirmation", args.confirm)):
        for name in names:
            console.rule(f"{name} ({group} set)")
            sets[group][name] = Bench(name, args.work, args, console).all()
            report(name, sets[group][name], console)
    overview(sets, console, args.plot)
    if args.paired:
        compare(sets, args.paired, console)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
