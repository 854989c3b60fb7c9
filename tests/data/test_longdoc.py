"""Long-document tasks from Cranfield's real judgments: every judgment carried exactly, counts
printed by the CLI equal counts computed here, same seed same bytes (LoCoV1: test_loco.py)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from tessera.data.datasets import load_eval_dataset
from tessera.data.longdoc import build_longdoc
from tessera.errors import DatasetError, TesseraError
from tests.conftest import read_corpus, read_qrels, run_cli

SPLITS = ("all", "test", "train")


def words(text: str) -> int:
    return len(text.split())


def read_members(folder: Path) -> list[dict]:
    with (folder / "members.tsv").open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def printed_counts(stdout: str) -> tuple[int, dict[str, tuple[int, int, int, int, int]]]:
    """Long documents, and per split: queries, judgments, source judgments, carried, lost."""
    documents = int(re.search(r": (\d+) long documents", stdout).group(1))
    pattern = r"  (\w+): (\d+) queries, (\d+) judgments \((\d+) source judgments: (\d+) carried, (\d+) lost\)"
    splits = {m[0]: tuple(map(int, m[1:])) for m in re.findall(pattern, stdout)}
    return documents, splits


@pytest.fixture(scope="module")
def source(data_dir: Path) -> Path:
    return data_dir / "cranfield-beir"


@pytest.fixture(scope="module")
def source_qrels(source: Path) -> dict[str, dict[str, dict[str, int]]]:
    return {split: read_qrels(source / "qrels" / f"{split}.tsv") for split in SPLITS}


@pytest.fixture(scope="module")
def minilm_count():
    """The CLI's counter, batched: tokens of the bundled MiniLM wordpiece, no special tokens."""
    import transformers

    from tessera.models.bundled import bundled_path

    tokenizer = transformers.AutoTokenizer.from_pretrained(bundled_path("minilm"))
    tokenizer.model_max_length = 1 << 30
    return lambda texts: [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def check_token_bounds(folder: Path, budget: int, count) -> None:
    """Every long document holds at most `budget` tokens (recounted in its joined text) unless it
    is a single member longer than that; the stored member counts add up to the recount."""
    corpus = read_corpus(folder)
    members: dict[str, list[dict]] = {}
    for row in read_members(folder):
        members.setdefault(row["long-id"], []).append(row)
    ids = list(corpus)
    for long_id, recount in zip(ids, count([corpus[i]["text"] for i in ids]), strict=True):
        assert recount == sum(int(r["tokens"]) for r in members[long_id]), long_id
        assert recount <= budget or len(members[long_id]) == 1, long_id


def test_longdoc_keeps_every_judgment_exactly(
    source: Path, source_qrels, tmp_path: Path, minilm_count, cranfield_docs
) -> None:
    output = tmp_path / "mix"
    result = run_cli("data", "longdoc", str(source), "--tokens", "2048", "--mode", "mix", "-o", str(output))
    documents, printed = printed_counts(result.stdout)
    corpus = read_corpus(output)
    members = read_members(output)
    assert documents == len(corpus) and set(printed) == set(SPLITS)

    # every Cranfield document is a member of exactly one long document, at the stated place
    home = {row["member-id"]: row["long-id"] for row in members}
    assert len(home) == len(members) == len(cranfield_docs) == 1400 and set(home) == set(cranfield_docs)
    assert {row["long-id"] for row in members} == set(corpus)
    for row in members:
        text = corpus[row["long-id"]]["text"][int(row["start"]) : int(row["end"])]
        original = cranfield_docs[row["member-id"]]
        assert text in (original["text"], f"{original['title']}\n{original['text']}")

    for split in SPLITS:
        source_split, written = source_qrels[split], read_qrels(output / "qrels" / f"{split}.tsv")
        expected: dict[str, dict[str, int]] = {}
        for query_id, judged in source_split.items():
            for doc_id, grade in judged.items():
                long_grades = expected.setdefault(query_id, {})
                long_grades[home[doc_id]] = max(long_grades.get(home[doc_id], grade), grade)
        assert written == expected, split  # the long-doc grade is the highest member grade
        judgments = sum(len(j) for j in source_split.values())
        assert printed[split] == (
            len(written),
            sum(len(j) for j in written.values()),
            judgments,
            judgments,
            0,
        )
    queries = [json.loads(line)["_id"] for line in (output / "queries.jsonl").read_text().splitlines()]
    assert sorted(queries) == sorted(source_qrels["all"])
    assert (output / "lost.tsv").read_text().count("\n") == 1  # the header only
    check_token_bounds(output, 2048, minilm_count)

    test = load_eval_dataset(output, "test")
    assert len(test.queries) == printed["test"][0] == 114
    run_cli("index", str(output), "-o", str(tmp_path / "index"), "--encoder", "bm25")
    assert (tmp_path / "index").is_dir()


def test_needle_holds_exactly_one_judged_document(
    source: Path, source_qrels, tmp_path: Path, minilm_count
) -> None:
    output = tmp_path / "needle"
    result = run_cli(
        "data", "longdoc", str(source), "--tokens", "2048", "--mode", "needle", "-o", str(output)
    )
    documents, printed = printed_counts(result.stdout)
    corpus, members = read_corpus(output), read_members(output)
    assert documents == len(corpus)

    relevant = {d for qrels in source_qrels.values() for j in qrels.values() for d, g in j.items() if g > 0}
    judged_in: dict[str, list[str]] = {long_id: [] for long_id in corpus}
    fillers_in: dict[str, list[str]] = {long_id: [] for long_id in corpus}
    for row in members:
        if row["member-id"] in relevant:
            assert row["role"] == "needle"
            judged_in[row["long-id"]].append(row["member-id"])
        else:
            assert row["role"] == "filler"  # fillers are never judged relevant, in any split
            fillers_in[row["long-id"]].append(row["member-id"])
    needle_of = {long_id: judged[0] for long_id, judged in judged_in.items() if judged}
    # the needle's slot is uniform among the fillers: first, last and in between, about mid-way on average
    slots = [(int(r["position"]), len(fillers_in[r["long-id"]])) for r in members if r["role"] == "needle"]
    assert {0} < {p for p, _ in slots} and sum(p == n for p, n in slots) > 0
    assert 0.4 < sum(p / n for p, n in slots if n) / sum(1 for _, n in slots if n) < 0.6
    assert all(len(judged) <= 1 for judged in judged_in.values())
    assert sorted(needle_of.values()) == sorted(relevant)  # each judged document is a needle once
    assert all(len(set(f)) == len(f) for f in fillers_in.values())  # no filler twice in a document
    distractors = len(corpus) - len(needle_of)
    assert distractors > 0 and f"({len(needle_of)} with a needle, {distractors} distractors)" in result.stdout

    home = {needle: long_id for long_id, needle in needle_of.items()}
    for split in SPLITS:
        written = read_qrels(output / "qrels" / f"{split}.tsv")
        expected = {
            q: {home[d]: g for d, g in judged.items() if d in home}
            for q, judged in source_qrels[split].items()
        }
        assert written == expected, split  # a needle's grade, unchanged
        judgments = sum(len(j) for j in source_qrels[split].values())
        assert printed[split] == (len(written), judgments, judgments, judgments, 0)
    check_token_bounds(output, 2048, minilm_count)


def test_same_seed_same_bytes_and_a_cap_is_a_prefix(source: Path, tmp_path: Path) -> None:
    def build(name: str, **options) -> Path:
        build_longdoc(source, tmp_path / name, tokens=700, count_tokens=words, **options)
        return tmp_path / name

    files = ("corpus.jsonl", "queries.jsonl", "members.tsv", "lost.tsv", "qrels/test.tsv", "qrels/train.tsv")
    for mode in ("mix", "needle"):
        first, again = build(f"{mode}-a", mode=mode, seed=3), build(f"{mode}-b", mode=mode, seed=3)
        for name in files:
            assert (first / name).read_bytes() == (again / name).read_bytes(), (mode, name)
        other = build(f"{mode}-c", mode=mode, seed=4)
        assert (first / "corpus.jsonl").read_bytes() != (other / "corpus.jsonl").read_bytes()

    capped = build("capped", mode="needle", seed=3, docs=40)
    full_lines = (tmp_path / "needle-a" / "corpus.jsonl").read_text().splitlines()
    assert (capped / "corpus.jsonl").read_text().splitlines() == full_lines[:40]
    stats = json.loads((capped / "longdoc.json").read_text())["counts"]
    lost = list(csv.DictReader((capped / "lost.tsv").open(), delimiter="\t"))
    assert stats["documents"] == 40 and len(lost) == sum(stats["lost"].values()) > 0
    assert {row["reason"] for row in lost} == {"capped"}
    kept = {row["member-id"] for row in read_members(capped)}
    for split in ("test", "train"):
        written = read_qrels(capped / "qrels" / f"{split}.tsv")
        assert all(judged for judged in written.values())  # queries left without judgments drop
        assert stats["carried"][split] + stats["lost"][split] == stats["source_judgments"][split]
        assert sum(1 for row in lost if row["split"] == split and row["corpus-id"] in kept) == 0
    with pytest.raises(TesseraError, match="already exists"):
        build("capped", mode="needle", seed=3, docs=40)
    build_longdoc(source, capped, tokens=700, count_tokens=words, docs=5, overwrite=True)
    assert len(read_corpus(capped)) == 5


def test_bad_inputs_name_the_field(source: Path, tmp_path: Path) -> None:
    output = str(tmp_path / "out")
    for args, field in (
        (["--tokens", "0"], "tokens"),
        (["--tokens", "100", "--mode", "haystack"], "mode"),
        (["--tokens", "100", "--docs", "-2"], "docs"),
        (["--tokens", "100", "--distractors", "3"], "distractors"),  # mix has no distractors
    ):
        result = run_cli("data", "longdoc", str(source), *args, "-o", output, check=False)
        assert result.returncode != 0 and f"field '{field}'" in result.stderr, (args, result.stderr)

    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("data", "longdoc", str(empty), "--tokens", "100", "-o", output, check=False)
    assert result.returncode != 0 and "corpus.jsonl, field 'folder'" in result.stderr
    for name in ("corpus.jsonl", "queries.jsonl"):
        (empty / name).write_text('{"_id": "d1", "text": "a b c"}\n')
    result = run_cli("data", "longdoc", str(empty), "--tokens", "100", "-o", output, check=False)
    assert result.returncode != 0 and "qrels, field 'qrels'" in result.stderr
    (empty / "qrels").mkdir()
    (empty / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nd1\td1\t1\nd1\td2\t1\n")
    with pytest.raises(DatasetError, match=r"test.tsv:3, field 'corpus-id'"):
        build_longdoc(empty, output, tokens=100, count_tokens=words)
    assert not Path(output).exists()
    with pytest.raises(DatasetError, match="field 'output'"):
        build_longdoc(source, source / "inside", tokens=100, count_tokens=words)
