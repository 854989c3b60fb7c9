"""Long-document retrieval tasks built from real judgments, written as BEIR folders.

Any judged BEIR collection becomes a long-document task with `build_longdoc` (LoCoV1, a
benchmark of long documents, is converted by `tessera.data.loco`):

- `mix`: the corpus, shuffled with the seed, is packed greedily into long documents of at
  most `tokens` tokens (a member is added while the sum stays within the budget; a single
  member longer than the budget stands alone). A long document's grade for a query is the
  highest grade the query gives any of its members. Every member is in exactly one long
  document, so every original judgment maps to exactly one long document.
- `needle`: the needles are the documents some query in some split judges relevant
  (grade > 0); the fillers are all other documents. Each long document holds exactly one
  needle at a uniformly random position among fillers, and every needle is in exactly one
  long document; filler-only distractors are added (by default about as many as the filler
  pool fills once, `round(filler tokens / tokens)`). A query's grade for a long document is
  its grade for the needle in it, so relevance stays exact by construction, including a 0 a
  query gives a needle. Judgments of fillers (grade <= 0 by definition) vanish: a filler is
  used in many long documents. They are listed in `lost.tsv`.

Fillers are drawn from one stream of seeded permutations of the filler pool, so each is used
about equally often, and reused across long documents only once the pool is spent; a filler
never appears twice in one long document. A filler that does not fit the room left (or is
already in the document) is carried to the next document; a document stops after
`MAX_MISSES` such misses or when no filler is small enough. Fillers longer than `tokens` are
never used. Long documents are ordered by the seed (needles and distractors interleaved,
their ids `needle-000001`, ... say nothing about which is which).

A member's text is its text, preceded by its title when the text does not already start
with it (Cranfield's texts repeat their titles); members are joined by a blank line, the
long document's title is empty. Token counts come from `count_tokens`, once per member; a
long document's count is the sum of its members' (for a tokenizer that splits on whitespace,
as wordpiece does, that is the count of the joined text).

`docs` caps the number of long documents (small smoke tasks): whole long documents are
dropped from the end of the seeded order (the capped output is a prefix of the uncapped
one), the judgments on their members are listed in `lost.tsv`, and a query left without
judgments drops from that split's qrels.

The output is a BEIR folder: `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (every
query judged in some output split), `qrels/SPLIT.tsv` for every split of the source (train,
test, and all when present), plus `members.tsv` (where each member lies: long-document id,
position, member id, role, character start and end in the text, tokens), `lost.tsv`
(split, query, member, grade and why, for judgments that could not be carried) and
`longdoc.json` (parameters and counts). It is written beside the target and renamed onto it,
so the target is absent or complete; the same inputs and seed give identical bytes.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tessera.data.beir_folder import durable_open, new_target, publish_folder, tsv_writer, write_qrels
from tessera.data.beir_source import BeirSource, read_beir_source
from tessera.data.datasets import Qrels
from tessera.errors import DatasetError, TesseraError

MODES = ("mix", "needle")
SEPARATOR = "\n\n"
MAX_MISSES = 8
TokenCounter = Callable[[str], int]


# --- planning long documents ----------------------------------------------------------------


@dataclass
class _LongDoc:
    id: str
    members: list[str]
    roles: list[str]  # member | needle | filler


def _plan_mix(ids: list[str], counts: dict[str, int], budget: int, rng: random.Random) -> list[_LongDoc]:
    order = list(ids)
    rng.shuffle(order)
    groups: list[list[str]] = []
    current: list[str] = []
    used = 0
    for doc_id in order:
        if current and used + counts[doc_id] > budget:
            groups.append(current)
            current, used = [], 0
        current.append(doc_id)
        used += counts[doc_id]
    if current:
        groups.append(current)
    return [_LongDoc(f"mix-{n:06d}", g, ["member"] * len(g)) for n, g in enumerate(groups, start=1)]


class _FillerStream:
    """Fillers in successive seeded permutations of the pool (see the module docstring)."""

    def __init__(self, pool: list[str], counts: dict[str, int], rng: random.Random) -> None:
        self.pool, self.counts, self.rng = pool, counts, rng
        self.queue: deque[str] = deque()
        self.carry: list[str] = []
        self.smallest = min((counts[f] for f in pool), default=0)

    def _next(self) -> str:
        if not self.queue:
            batch = list(self.pool)
            self.rng.shuffle(batch)
            self.queue.extend(batch)
        return self.queue.popleft()

    def fill(self, room: int) -> list[str]:
        if not self.pool:
            return []
        chosen: list[str] = []
        inside: set[str] = set()
        carried, missed = deque(self.carry), []
        while room >= self.smallest and len(missed) < MAX_MISSES:
            filler = carried.popleft() if carried else self._next()
            if filler in inside or self.counts[filler] > room:
                missed.append(filler)
                continue
            chosen.append(filler)
            inside.add(filler)
            room -= self.counts[filler]
        self.carry = missed + list(carried)
        return chosen


def _relevant(splits: dict[str, Qrels]) -> set[str]:
    return {d for qrels in splits.values() for judged in qrels.values() for d, g in judged.items() if g > 0}


def _plan_needle(
    source: BeirSource,
    counts: dict[str, int],
    budget: int,
    distractors: int | None,
    cap: int | None,
    rng: random.Random,
) -> tuple[list[_LongDoc], int]:
    relevant = _relevant(source.splits)
    needles = [d for d in source.docs if d in relevant]
    rng.shuffle(needles)
    fillers = [d for d in source.docs if d not in relevant and counts[d] <= budget]
    if distractors is None:
        distractors = round(sum(counts[f] for f in fillers) / budget) if fillers else 0
    elif distractors and not fillers:
        raise DatasetError(
            f"no fillers for {distractors} distractors: every document of at most {budget} tokens is "
            "judged relevant",
            field="distractors",
        )
    slots: list[str | None] = [*needles, *([None] * distractors)]
    rng.shuffle(slots)
    if cap is not None:
        slots = slots[:cap]
    stream = _FillerStream(fillers, counts, rng)
    plan: list[_LongDoc] = []
    for number, needle in enumerate(slots, start=1):
        chosen = stream.fill(budget - (counts[needle] if needle else 0))
        members, roles = list(chosen), ["filler"] * len(chosen)
        if needle is not None:
            at = rng.randint(0, len(chosen))
            members.insert(at, needle)
            roles.insert(at, "needle")
        plan.append(_LongDoc(f"needle-{number:06d}", members, roles))
    return plan, sum(1 for s in slots if s is None)


# --- long-document tasks --------------------------------------------------------------------


@dataclass(frozen=True)
class LongDocStats:
    """What `build_longdoc` wrote. Per-split dicts are keyed by the qrels file stem."""

    output: Path
    mode: str
    tokens: int
    seed: int
    documents: int  # long documents written
    needles: int  # needle mode: long documents holding a needle (the rest are distractors)
    distractors: int
    members: int  # member slots over all long documents (fillers repeat in needle mode)
    queries: int  # queries.jsonl: queries judged in some output split
    split_queries: dict[str, int]  # queries in qrels/SPLIT.tsv
    judgments: dict[str, int]  # rows (query, long document) in qrels/SPLIT.tsv
    source_judgments: dict[str, int]  # rows (query, document) in the source's qrels/SPLIT.tsv
    carried: dict[str, int]  # source judgments that map to a written long document
    lost: dict[str, int]  # source judgments that do not (capped, or grade <= 0 on a filler)
    mean_tokens: float
    max_tokens: int
    over_budget: int  # long documents over `tokens` (a single member longer than the budget)

    def lines(self) -> list[str]:
        head = (
            f"{self.mode} @ {self.tokens} tokens, seed {self.seed}: {self.documents} long documents"
            + (
                f" ({self.needles} with a needle, {self.distractors} distractors)"
                if self.mode == "needle"
                else ""
            )
            + f", {self.members} members, mean {self.mean_tokens:.1f} / max {self.max_tokens} tokens"
            + f", {self.over_budget} over budget; {self.queries} queries"
        )
        rows = [
            f"  {split}: {self.split_queries[split]} queries, {self.judgments[split]} judgments "
            f"({self.source_judgments[split]} source judgments: {self.carried[split]} carried, "
            f"{self.lost[split]} lost)"
            for split in self.judgments
        ]
        return [head, *rows, f"written to {self.output}"]


def _check_parameters(mode: str, tokens: int, docs: int | None, distractors: int | None) -> None:
    if mode not in MODES:
        raise DatasetError(f"unknown mode '{mode}' (expected {' or '.join(MODES)})", field="mode")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        raise DatasetError(f"must be a whole number >= 1, got {tokens!r}", field="tokens")
    if docs is not None and docs < 1:
        raise DatasetError(f"must be >= 1 (or absent: every long document), got {docs}", field="docs")
    if distractors is not None and distractors < 0:
        raise DatasetError(f"must be >= 0, got {distractors}", field="distractors")
    if distractors is not None and mode != "needle":
        raise DatasetError("only the needle mode has distractors", field="distractors")


def build_longdoc(
    source: str | Path,
    output: str | Path,
    *,
    tokens: int,
    count_tokens: TokenCounter,
    mode: str = "mix",
    docs: int | None = None,
    distractors: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    counter_name: str = "",
) -> LongDocStats:
    """Write a long-document task built from the judged BEIR folder `source` (see the module
    docstring) at `output`. `count_tokens(text)` counts a text's tokens (no special tokens);
    `docs` caps the long documents written; `distractors` (needle mode) sets how many
    filler-only long documents there are; `counter_name` is recorded in `longdoc.json`."""
    _check_parameters(mode, tokens, docs, distractors)
    target = new_target(output, overwrite, inputs=(source,))
    data = read_beir_source(source)
    if target == data.folder.resolve() or data.folder.resolve() in target.parents:
        raise DatasetError("must not be the source folder or inside it", file=target, field="output")
    counts = {doc_id: count_tokens(text) for doc_id, text in data.docs.items()}
    rng = random.Random(seed)
    if mode == "mix":
        plan, n_distractors = _plan_mix(list(data.docs), counts, tokens, rng), 0
        if docs is not None:
            plan = plan[:docs]
    else:
        plan, n_distractors = _plan_needle(data, counts, tokens, distractors, docs, rng)

    home: dict[str, str] = {}  # judged member -> its long document (mix: all; needle: needles)
    for long_doc in plan:
        for member, role in zip(long_doc.members, long_doc.roles, strict=True):
            if role != "filler":
                if member in home:
                    raise TesseraError(f"internal: '{member}' is in two long documents")
                home[member] = long_doc.id
    relevant = _relevant(data.splits)
    out_splits: dict[str, Qrels] = {}
    lost_rows: list[tuple[str, str, str, int, str]] = []
    carried: dict[str, int] = {}
    for split, qrels in data.splits.items():
        mapped: Qrels = {}
        carried[split] = 0
        for query_id, judged in qrels.items():
            for doc_id, grade in judged.items():
                long_id = home.get(doc_id)
                if long_id is None:
                    why = "filler" if mode == "needle" and doc_id not in relevant else "capped"
                    lost_rows.append((split, query_id, doc_id, grade, why))
                    continue
                grades = mapped.setdefault(query_id, {})
                grades[long_id] = max(grades.get(long_id, grade), grade)
                carried[split] += 1
        out_splits[split] = mapped
    source_counts = {s: sum(len(j) for j in q.values()) for s, q in data.splits.items()}
    lost = {s: sum(1 for row in lost_rows if row[0] == s) for s in data.splits}
    for split in data.splits:
        if carried[split] + lost[split] != source_counts[split]:
            raise TesseraError(f"internal: judgments of split '{split}' were not all accounted for")
    judged_queries = {q for qrels in out_splits.values() for q in qrels}
    lengths = [sum(counts[m] for m in d.members) for d in plan]
    stats = LongDocStats(
        output=target,
        mode=mode,
        tokens=tokens,
        seed=seed,
        documents=len(plan),
        needles=len(plan) - n_distractors if mode == "needle" else 0,
        distractors=n_distractors,
        members=sum(len(d.members) for d in plan),
        queries=len(judged_queries),
        split_queries={s: len(q) for s, q in out_splits.items()},
        judgments={s: sum(len(j) for j in q.values()) for s, q in out_splits.items()},
        source_judgments=source_counts,
        carried=carried,
        lost=lost,
        mean_tokens=round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
        max_tokens=max(lengths, default=0),
        over_budget=sum(1 for n in lengths if n > tokens),
    )

    def write(stage: Path) -> None:
        with (
            durable_open(stage / "corpus.jsonl") as corpus,
            durable_open(stage / "members.tsv") as members_file,
        ):
            members = tsv_writer(members_file)
            members.writerow(["long-id", "position", "member-id", "role", "start", "end", "tokens"])
            for long_doc in plan:
                parts, start = [], 0
                for position, (member, role) in enumerate(zip(long_doc.members, long_doc.roles, strict=True)):
                    if position:
                        start += len(SEPARATOR)
                    text = data.docs[member]
                    members.writerow(
                        [long_doc.id, position, member, role, start, start + len(text), counts[member]]
                    )
                    parts.append(text)
                    start += len(text)
                record = {"_id": long_doc.id, "title": "", "text": SEPARATOR.join(parts)}
                corpus.write(json.dumps(record, ensure_ascii=False) + "\n")
        with durable_open(stage / "queries.jsonl") as handle:
            for query_id, text in data.queries.items():
                if query_id in judged_queries:
                    handle.write(json.dumps({"_id": query_id, "text": text}, ensure_ascii=False) + "\n")
        for split, qrels in out_splits.items():
            write_qrels(stage / "qrels" / f"{split}.tsv", qrels)
        with durable_open(stage / "lost.tsv") as handle:
            rows = tsv_writer(handle)
            rows.writerow(["split", "query-id", "corpus-id", "score", "reason"])
            rows.writerows(lost_rows)
        provenance = {
            "source": str(data.folder.resolve()),
            "mode": mode,
            "tokens": tokens,
            "seed": seed,
            "docs": docs,
            "distractors_requested": distractors,
            "counter": counter_name,
            "counts": {
                key: value
                for key, value in vars(stats).items()
                if key not in ("output", "mode", "tokens", "seed")
            },
        }
        with durable_open(stage / "longdoc.json") as handle:
            handle.write(json.dumps(provenance, indent=2, sort_keys=True) + "\n")

    publish_folder(write, target, overwrite, "longdoc")
    return stats
