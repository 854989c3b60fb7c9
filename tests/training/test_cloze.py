"""Inverse cloze pairs on real Cranfield: the query sentence never reaches its positive."""

from __future__ import annotations

from pathlib import Path

from tessera.data.corpus import open_corpus
from tessera.data.document import Document
from tessera.training.cloze import cloze_pairs


def test_cloze_pairs_never_leak_the_query_sentence(data_dir: Path) -> None:
    docs = list(open_corpus(data_dir / "cranfield-beir"))
    pairs = cloze_pairs(docs, seed=3)
    assert pairs == cloze_pairs(docs, seed=3) and pairs != cloze_pairs(docs, seed=4)
    assert len(pairs) == 1255  # the other 145 abstracts have fewer than three sentences
    by_id = {doc.id: doc for doc in docs}
    for pair in pairs:
        assert pair.query not in pair.positive
        assert len(pair.query.split()) >= 5
        assert pair.query in " ".join(by_id[pair.doc_id].text.split())
        assert pair.positive.startswith(" ".join(by_id[pair.doc_id].title.split()))


def test_cloze_skips_short_documents_and_repeated_sentences() -> None:
    repeated = "the wing stalls at high angles of attack."
    docs = [
        Document("short", "one sentence only. and a second one here."),
        Document(
            "rep", f"{repeated} {repeated} a third sentence with five words. a fourth sentence of five words."
        ),
        Document(
            "title",
            "some other text of words here. boundary layers grow fast here. a last sentence here now. "
            "and one more sentence for luck.",
            title="boundary layers grow fast here.",
        ),
    ]
    pairs = {p.doc_id: p for p in cloze_pairs(docs)}
    assert "short" not in pairs
    for pair in pairs.values():
        assert pair.query not in pair.positive
    assert pairs["rep"].query != repeated or repeated not in pairs["rep"].positive  # removed everywhere
    assert pairs["title"].query != "boundary layers grow fast here."  # it is also the title
