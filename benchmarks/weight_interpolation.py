"""Does weight-space interpolation (WiSE-FT) make `train dense` hold better out of fold?

Question: WiSE-FT (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022) averages a
fine-tuned model's weights with its base's, theta = a * fine-tuned + (1 - a) * base, and reports
that the average keeps the fine-tuning's in-domain gain while recovering the base's robustness to
distribution shift. Issue 11's trained models fall short on collections their defaults were not
chosen on; if WiSE-FT helped there it would be a cheap post-training step (no retraining).

Per collection, on benchmarks/cross_validation.py's 2-fold splits and `train dense` fold models
(trained by it when missing, the saved ones read otherwise): each fold's model interpolated with
the bundled MiniLM at every `--alphas` value (a = 1 is `train dense` itself, a = 0 MiniLM), indexed
flat, scored on its fold's test queries, pooled; alone and fused with BM25, against `train dense`
and the RRF(BM25, MiniLM) anchor with paired standard errors.

    TESSERA_DATA_DIR=../shared/data python benchmarks/weight_interpolation.py \\
        --collections medline-beir glasgow/lisa --work /tmp/cv --alphas 0.5 0.75
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.eval.significance import mean_se
from tessera.indexing.builder import build_index
from tessera.models.bundled import bundled_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validation import ANCHOR, CrossValidation, delta  # noqa: E402

WEIGHTS = "model.safetensors"


def interpolate(fine_tuned: Path, base: Path, alpha: float, output: Path) -> None:
    """Write `fine_tuned`'s folder to `output` with its weights moved to alpha * own + (1 - alpha) * base."""
    from safetensors.torch import load_file, save_file

    tuned, original = load_file(str(fine_tuned / WEIGHTS)), load_file(str(base / WEIGHTS))
    if missing := set(tuned) - set(original):
        raise SystemExit(f"{fine_tuned}: weights the base lacks: {sorted(missing)[:5]}")
    mixed = {
        name: (alpha * tensor + (1 - alpha) * original[name].to(tensor.dtype)).contiguous()
        if tensor.is_floating_point()
        else tensor
        for name, tensor in tuned.items()
    }
    stage = output.with_name(output.name + ".tmp")
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(fine_tuned, stage)
    save_file(mixed, str(stage / WEIGHTS))
    stage.rename(output)


def add_interpolated(cv: CrossValidation, results: dict, alpha: float, base: Path, seed: int) -> None:
    """Each fold's `train dense` model interpolated at `alpha`, indexed, scored alone and fused."""
    system = f"WiSE-FT a={alpha:g}"
    models = [
        cv.built(
            f"model {system} {split} s{seed}",
            lambda p, s=split: interpolate(cv.work / f"model_dense_{s}_s{seed}", base, alpha, p),
        )
        for split in cv.splits
    ]
    cv.indexes[system] = [
        cv.built(
            f"{system} {split} s{seed}",
            lambda p, m=model: build_index(cv.folder, p, encoder=str(m), show_progress=False),
        )
        for split, model in zip(cv.splits, models, strict=True)
    ]
    results[system] = cv.measure(system)
    cv.fusions[f"RRF(BM25, {system})"] = ("BM25", system)
    results[f"RRF(BM25, {system})"] = cv.measure(f"RRF(BM25, {system})")


def print_table(name: str, results: dict[str, dict[str, float]], console: Console) -> None:
    queries = len(results[ANCHOR])
    table = Table(title=f"{name}: WiSE-FT of `train dense` with MiniLM, {queries} queries out of fold")
    for column in ("system", "nDCG@10", "/ anchor", "Δ anchor ± paired SE", "Δ train dense ± paired SE"):
        table.add_column(column, justify="left" if column == "system" else "right")
    anchor = mean_se(list(results[ANCHOR].values()))[0]
    for system, scores in results.items():
        same_kind = "RRF(BM25, dense)" if system.startswith("RRF(BM25, ") else "dense"
        mean = mean_se(list(scores.values()))[0]
        cells = [delta(scores, results[ANCHOR]), delta(scores, results[same_kind])]
        table.add_row(
            system, f"{mean:.4f}", f"{mean / anchor:.3f}", *(f"{d:+.4f} ± {se:.4f}" for d, se in cells)
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="*", default=["medline-beir", "glasgow/lisa"])
    parser.add_argument("--alphas", nargs="*", type=float, default=[0.5])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "cross_validation")
    args = parser.parse_args()
    if not all(0 <= a <= 1 for a in args.alphas):
        parser.error("--alphas must lie in [0, 1]")
    console = Console(width=160)
    config.apply_offline_defaults()
    base = bundled_path("minilm")
    for name in args.collections:
        cv_args = argparse.Namespace(
            work=args.work, folds=2, seed=args.seed, compressed=False, trained=["dense"]
        )
        cv = CrossValidation(name, cv_args, console)
        results = cv.all()
        for alpha in args.alphas:
            add_interpolated(cv, results, alpha, base, args.seed)
        print_table(name, results, console)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
