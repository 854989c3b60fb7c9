"""Query folds for cross-validation: `--split fold2of3-test` on any BEIR folder.

A train/test split scores a trained model on half the judged queries; on MEDLINE or LISA that
is 11 or 12 queries, whose standard error (0.05-0.1 nDCG@10) hides every difference worth
finding. K-fold cross-validation scores every judged query with a model that never saw it:
fold i's model trains on `foldIofK-train` and is scored on `foldIofK-test`, and the K test
sets together are every judged query once.

Folds are virtual: nothing is written, so read-only collections work as they are. A query's
fold is `int(sha256(id), 16) % K` (fold `I` holds bucket `I - 1`), the hash the BEIR copies'
train/test split uses, so `fold1of2-test` is the `test` split and `fold1of2-train` the `train`
split, query for query. The judged queries are `qrels/all.tsv`, or where a folder has none,
its `train.tsv` and `test.tsv` together.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from tessera.errors import DatasetError

_NAME = re.compile(r"fold(\d+)of(\d+)-(train|test)")


def query_bucket(query_id: str, buckets: int) -> int:
    """The query's bucket in 0 .. buckets-1: stable, and unmoved when other queries are added."""
    return int(hashlib.sha256(query_id.encode()).hexdigest(), 16) % buckets


@dataclass(frozen=True)
class Fold:
    """Fold `index` (1-based) of `folds`, and which side of it: `train` or `test`."""

    index: int
    folds: int
    side: str

    @classmethod
    def parse(cls, split: str) -> Fold | None:
        """The fold a split name denotes, None for any other name; an impossible fold raises."""
        match = _NAME.fullmatch(split)
        if not match:
            return None
        index, folds = int(match.group(1)), int(match.group(2))
        if folds < 2 or not 1 <= index <= folds:
            raise DatasetError(
                f"fold '{split}' does not exist: use foldIofK with K >= 2 and 1 <= I <= K", field="split"
            )
        return cls(index, folds, match.group(3))

    def holds(self, query_id: str) -> bool:
        """Whether the query is on this side of the fold."""
        in_test = query_bucket(query_id, self.folds) == self.index - 1
        return in_test == (self.side == "test")

    def name(self) -> str:
        return f"fold{self.index}of{self.folds}-{self.side}"


def judged_files(qrels_dir: Path) -> list[Path]:
    """The qrels files that together judge every query of a BEIR folder (see the module docstring)."""
    every = qrels_dir / "all.tsv"
    if every.is_file():
        return [every]
    halves = [qrels_dir / f"{split}.tsv" for split in ("train", "test")]
    if not all(path.is_file() for path in halves):
        raise DatasetError(
            "folds need every judged query: qrels/all.tsv, or qrels/train.tsv and test.tsv",
            file=qrels_dir,
            field="split",
        )
    return halves
