from __future__ import annotations

import pytest

from tessera.errors import EncoderError
from tessera.models.bm25 import BM25, TITLE_WEIGHT, new_index_settings, parse_bm25, with_settings
from tessera.models.registry import canonical_spec


def test_the_spec_names_only_the_settings_in_use_and_round_trips() -> None:
    assert canonical_spec("bm25") == "bm25:k1=0.9,b=0.4,title=0.25"
    rm3 = canonical_spec("bm25:prf=rm3")
    assert rm3 == "bm25:k1=0.9,b=0.4,title=0.25,prf=rm3,fb_terms=10,fb_docs=10,original_query_weight=0.5"
    rocchio = canonical_spec("bm25:b=0.75,title=0,prf=rocchio,fb_docs=5,beta=0.5")
    assert rocchio == "bm25:k1=0.9,b=0.75,title=0,prf=rocchio,fb_terms=10,fb_docs=5,alpha=1,beta=0.5"
    for spec in (rm3, rocchio):
        assert parse_bm25(spec).spec == spec
        assert canonical_spec(spec) == spec  # a stored spec names every setting, so it is a fixed point


def test_a_new_index_weighs_titles_unless_told_and_an_old_spec_keeps_its_meaning() -> None:
    """A spec stored before titles were indexed names no weight and reads as 0 (its index has no
    title field); a new index gets TITLE_WEIGHT unless its spec names one."""
    assert parse_bm25("bm25:k1=0.9,b=0.4").title == 0
    assert new_index_settings("bm25:k1=1.2").title == TITLE_WEIGHT == 0.25
    assert new_index_settings("bm25:title=0.5").title == 0.5
    assert new_index_settings("bm25:title=0").title == 0
    with pytest.raises(EncoderError, match="'title' must be at least 0"):
        parse_bm25("bm25:title=-1")


def test_search_settings_override_the_stored_ones() -> None:
    stored = parse_bm25("bm25:k1=1.2,prf=rm3,fb_terms=20")
    assert with_settings(stored, {"fb_docs": 5.0}) == BM25(k1=1.2, prf="rm3", fb_terms=20, fb_docs=5)
    # Another expansion starts from its own defaults; `none` turns expansion off.
    assert with_settings(stored, {"prf": "rocchio"}) == BM25(k1=1.2, prf="rocchio")
    assert with_settings(stored, {"prf": "none"}) == BM25(k1=1.2)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"nprobe": 16.0}, "not nprobe"),
        ({"prf": "rm4"}, "prf must be rm3, rocchio or none"),
        ({"fb_docs": 5.0}, "'fb_docs' needs prf=rm3 or prf=rocchio"),
        ({"prf": "rm3", "alpha": 1.0}, "'alpha' needs prf=rocchio"),
        ({"prf": "rm3", "fb_terms": 2.5}, "positive whole number"),
        ({"prf": "rm3", "original_query_weight": 1.5}, "between 0 and 1"),
        ({"k1": "high"}, "not a number"),
        ({"b": "nan"}, "finite"),
        ({"b": -0.1}, "between 0 and 1"),
        ({"b": 1.5}, "between 0 and 1"),
        ({"k1": -1}, "at least 0"),
    ],
)
def test_bad_settings_are_refused_by_name(given: dict, message: str) -> None:
    with pytest.raises(EncoderError, match=message) as caught:
        with_settings(BM25(), given)
    assert caught.value.field == "search_params"


def test_a_bad_spec_item_names_the_encoder_field() -> None:
    with pytest.raises(EncoderError, match="bad BM25 parameter 'rm3'") as caught:
        parse_bm25("bm25:rm3")
    assert caught.value.field == "encoder"
