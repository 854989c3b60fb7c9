"""The result-list snippet: the window with the query's terms."""

from __future__ import annotations

from tessera.serve.snippets import query_terms, snippet


def test_short_text_is_whole() -> None:
    assert snippet("a boundary layer", "layer") == "a boundary layer"


def test_window_holds_the_terms() -> None:
    text = " ".join(["filler"] * 100 + ["the", "boundary", "layers", "grow"] + ["filler"] * 100)
    cut = snippet(text, "boundary layer", width=10)
    assert "boundary layers" in cut and cut.startswith("… ") and cut.endswith(" …")


def test_no_match_starts_at_the_top() -> None:
    assert snippet(" ".join(map(str, range(100))), "nothing", width=5) == "0 1 2 3 4 …"


def test_terms_skip_short_words() -> None:
    assert query_terms("What is a Boundary layer?") == {"what", "boundary", "layer"}
