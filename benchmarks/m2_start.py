"""Question: does a fresh M2 model retrieve anything before training, and which start should
training begin from? (Why the first `train m2` collapsed: docs/results.md section 8.)

    python benchmarks/m2_start.py [--dataset cranfield-beir] [--trained M2_FOLDER ...]

nDCG@10 on the split's test queries over the collection's documents (256 tokens), for:
- the bag: the mean of the model's own input embeddings (MiniLM's word embeddings; 0 layers);
- a fresh 6-layer M2 with the published initialisation, and the same with its long filters'
  output layers zeroed (the published start's long mixing removed, nothing else);
- a fresh 6-layer M2 started by `init_near_identity` (what `train m2` trains from);
- any trained M2 folders given. Ratios are to the bag.
"""

from __future__ import annotations

import argparse

import ir_measures
import numpy as np
import torch
from ir_measures import nDCG
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.data.corpus import open_corpus
from tessera.data.datasets import load_eval_dataset
from tessera.models.m2 import (
    M2Config,
    build_sentence_transformer,
    init_from_minilm,
    init_near_identity,
    load_m2_sentence_transformer,
)
from tessera.models.m2.model import as_m2_model


def fresh(layers: int, start: str):
    torch.manual_seed(0)
    model = build_sentence_transformer(M2Config(layers=layers), max_seq_length=256)
    init_from_minilm(model)
    if start == "near-identity":
        init_near_identity(model)
    elif start == "zeroed filters":
        with torch.no_grad():
            for layer in as_m2_model(model).layers:
                for filt in (layer.mixer.filter_fn, layer.mixer.filter_fn2):
                    filt.implicit_filter[-1].weight.zero_()
                    filt.implicit_filter_rev[-1].weight.zero_()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="cranfield-beir", help="A BEIR folder under TESSERA_DATA_DIR.")
    parser.add_argument("--trained", nargs="*", default=[], help="Trained M2 folders to add.")
    args = parser.parse_args()
    torch.set_num_threads(2)
    folder = config.data_dir() / args.dataset
    docs = list(open_corpus(folder))
    ids, texts = [d.id for d in docs], [d.contents for d in docs]
    test = load_eval_dataset(folder, "test")
    queries, qrels = test.queries, test.qrels
    qids = sorted(qrels)

    def ndcg(model) -> float:
        with torch.inference_mode():
            d = model.encode(texts, batch_size=32, normalize_embeddings=True)
            q = model.encode([queries[x] for x in qids], batch_size=64, normalize_embeddings=True)
        scores = q @ d.T
        run = {
            x: {ids[j]: float(scores[i, j]) for j in np.argsort(-scores[i])[:100]} for i, x in enumerate(qids)
        }
        return ir_measures.calc_aggregate([nDCG @ 10], qrels, run)[nDCG @ 10]

    systems = {
        "bag (0 layers)": lambda: fresh(0, "published"),
        "6 layers, published start": lambda: fresh(6, "published"),
        "6 layers, published, filters zeroed": lambda: fresh(6, "zeroed filters"),
        "6 layers, near-identity start": lambda: fresh(6, "near-identity"),
    }
    for path in args.trained:
        systems[f"trained {path}"] = lambda path=path: load_m2_sentence_transformer(path)
    table = Table(title=f"M2 starts on {args.dataset} ({len(qids)} test queries, {len(ids)} documents)")
    for column in ("model", "nDCG@10", "/ bag"):
        table.add_column(column)
    base = None
    for name, make in systems.items():
        value = ndcg(make())
        base = base or value
        table.add_row(name, f"{value:.4f}", f"{value / base:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
