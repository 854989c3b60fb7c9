"""Question: what does searching with the conversation cost a question that needs no history?

    python benchmarks/follow_up.py [--collections cranfield-beir cisi-beir] [--split test]

A chat's last question may lean on earlier turns, and `follow_up` (rag/conversation.py) chooses
what is searched: the question alone (`last`), the earlier user turns with it (`turns`), or the
question with an LLM's standalone rewrite (`rewrite`; `rewrite only` searches the rewrite
alone). No collection here holds conversations, so this measures the other half: every judged
test query of a BEIR folder asked after another judged query of the same collection, either one
that shares no relevant document (the user changed the subject) or the one that shares the most
(a related question before it). The question needs no history in both, so `last` is the ceiling
and every other mode can only lose; the loss is what a mode costs where it does not help.
Retrievers: the bundled MiniLM (Flat) and BM25; rewrites by the bundled SmolLM2 (greedy, cached
under TESSERA_CACHE_DIR/benchmarks/follow-up), asked with no worked example (`zero-shot`) and
with the two of `rag.conversation.REWRITE_EXAMPLES` (`two-examples`). nDCG@10; ratio to `last` and the paired
difference ± its standard error over queries.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.data.datasets import EvalDataset, load_eval_dataset
from tessera.eval.evaluate import per_query_scores
from tessera.indexing.builder import build_index
from tessera.rag.conversation import (
    REWRITE_EXAMPLES,
    REWRITE_TOKENS,
    TURNS,
    clean_rewrite,
    rewrite_chat,
    with_rewrite,
    words_of,
)
from tessera.rag.generators import open_generator
from tessera.retrieval.index import Index

PROMPTS = {"zero-shot": (), "two-examples": REWRITE_EXAMPLES}  # the rewriter's worked examples
MODES = (
    "last",
    "turns",
    *(f"{mode} ({prompt})" for mode in ("rewrite", "rewrite only") for prompt in PROMPTS),
)


def open_index(folder: Path, encoder: str, work: Path) -> Index:
    target = work / f"{folder.name}-{encoder}"
    if not target.is_dir():
        build_index(str(folder), target, encoder=encoder)
    return Index.load(target)


def previous_questions(test: EvalDataset, pool: EvalDataset, seed: int) -> dict[str, dict[str, str]]:
    """For each test query: an unrelated earlier question (no relevant document shared, seeded
    choice) and the related one (the largest Jaccard overlap of relevant documents, if any)."""
    relevant = {qid: {d for d, g in judged.items() if g > 0} for qid, judged in pool.qrels.items()}
    relevant.update({qid: {d for d, g in judged.items() if g > 0} for qid, judged in test.qrels.items()})
    questions = {**pool.queries, **test.queries}
    rng = random.Random(seed)
    chosen: dict[str, dict[str, str]] = {}
    for qid in test.queries:
        others = sorted(q for q in questions if q != qid and q in relevant)
        unrelated = [q for q in others if not relevant[q] & relevant.get(qid, set())]
        overlap = {q: len(relevant[q] & relevant[qid]) / len(relevant[q] | relevant[qid]) for q in others}
        best = max(others, key=lambda q: (overlap[q], q))
        chosen[qid] = {"unrelated": questions[rng.choice(unrelated)]}
        if overlap[best] > 0:
            chosen[qid]["related"] = questions[best]
    return chosen


def rewrites(name: str, conversations: dict[str, list[dict]], work: Path, prompt: str) -> dict[str, str]:
    """SmolLM2's rewrite of each conversation, cached (greedy, so a rerun gives the same)."""
    path = work / "rewrites" / f"{name}-{prompt}.json"
    done = json.loads(path.read_text()) if path.is_file() else {}
    missing = [key for key in conversations if key not in done]
    if missing:
        generator = open_generator("local")
        for start in range(0, len(missing), 8):
            keys = missing[start : start + 8]
            chats = [rewrite_chat(conversations[key], PROMPTS[prompt]) for key in keys]
            done.update(zip(keys, generator.generate_batch(chats, REWRITE_TOKENS), strict=True))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(done))
            print(f"  {name}: {len(done)}/{len(conversations)} rewrites", flush=True)
    return done


def search_text(mode: str, previous: str, question: str, raw: dict[str, str]) -> str:
    if mode == "last":
        return question
    if mode == "turns":
        return "\n".join([previous, question][-TURNS:])
    kind, prompt = mode.rstrip(")").split(" (")
    if kind == "rewrite":
        return with_rewrite(question, raw[prompt])
    return clean_rewrite(raw[prompt]) or question


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="+", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = config.cache_dir() / "benchmarks" / "follow-up"
    console = Console(width=120)
    for name in args.collections:
        folder = config.data_dir() / name
        test = load_eval_dataset(folder, args.split)
        pool = load_eval_dataset(folder, "train")
        previous = previous_questions(test, pool, args.seed)
        conversations = {
            f"{qid}/{kind}": [
                {"role": "user", "content": before},
                {"role": "user", "content": test.queries[qid]},
            ]
            for qid, kinds in previous.items()
            for kind, before in kinds.items()
        }
        raw = {
            prompt: rewrites(f"{name}-{args.split}-{args.seed}", conversations, work, prompt)
            for prompt in PROMPTS
        }
        table = Table(title=f"{name} ({args.split}): nDCG@10 of a question asked after another")
        for column in ("retriever", "asked after", "n", "mode", "nDCG@10", "x last", "diff ± se"):
            table.add_column(column)
        for encoder in ("minilm", "bm25"):
            index = open_index(folder, encoder, work)
            for kind in ("unrelated", "related"):
                qids = [qid for qid in test.queries if kind in previous[qid]]
                if len(qids) < 2:  # MEDLINE's queries share no relevant document
                    continue
                subset = EvalDataset(
                    test.name, {q: test.queries[q] for q in qids}, {q: test.qrels[q] for q in qids}
                )
                scores = {}
                for mode in MODES:
                    texts = [
                        search_text(
                            mode,
                            previous[q][kind],
                            test.queries[q],
                            {p: r[f"{q}/{kind}"] for p, r in raw.items()},
                        )
                        for q in qids
                    ]
                    run = dict(zip(qids, index.batch_search(texts, k=10), strict=True))
                    values = per_query_scores(run, subset, ["nDCG@10"])["nDCG@10"]
                    scores[mode] = np.array([values[q] for q in qids])
                for mode in MODES:
                    diff = scores[mode] - scores["last"]
                    se = diff.std(ddof=1) / np.sqrt(len(diff))
                    table.add_row(
                        encoder,
                        kind,
                        str(len(qids)),
                        mode,
                        f"{scores[mode].mean():.3f}",
                        f"{scores[mode].mean() / scores['last'].mean():.3f}",
                        "" if mode == "last" else f"{diff.mean():+.3f}±{se:.3f}",
                    )
        console.print(table)
        console.print(copying(conversations, raw))
    console.print(by_hand())


def copying(conversations: dict[str, list[dict]], raw: dict[str, dict[str, str]]) -> Table:
    """How often each prompt's rewrite repeats the question word for word, and how often it
    brings in a word of the earlier question that the question lacks (always a mistake here:
    no question needs its history)."""
    table = Table(title="what the rewrites are")
    for column in ("prompt", "n", "repeats the question", "borrows an earlier word"):
        table.add_column(column)
    for prompt, rewrites in raw.items():
        same = borrowed = 0
        for key, turns in conversations.items():
            before, question = turns[0]["content"], turns[-1]["content"]
            rewrite = clean_rewrite(rewrites[key])
            same += words_of(rewrite) == words_of(question)
            borrowed += bool(set(words_of(rewrite)) & (set(words_of(before)) - set(words_of(question))))
        n = len(conversations)
        table.add_row(prompt, str(n), f"{same / n:.2f}", f"{borrowed / n:.2f}")
    return table


BY_HAND = [  # follow-ups that do need their history, written for this check (not a test set)
    "and how does it change with angle of attack",
    "how does it change with angle of attack?",
    "what about at supersonic speeds?",
]


def by_hand() -> Table:
    """The two-example rewriter on a few follow-ups that need the earlier turn to be understood."""
    before = [
        {"role": "user", "content": "what is the heat transfer to a blunt body in hypersonic flow"},
        {"role": "assistant", "content": "It is highest at the stagnation point."},
    ]
    generator = open_generator("local")
    chats = [rewrite_chat([*before, {"role": "user", "content": text}]) for text in BY_HAND]
    table = Table(title=f"rewrites of follow-ups after: {before[0]['content']}")
    table.add_column("follow-up")
    table.add_column("rewrite (two examples)")
    for text, raw in zip(BY_HAND, generator.generate_batch(chats, REWRITE_TOKENS), strict=True):
        table.add_row(text, clean_rewrite(raw))
    return table


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
