"""Sentence splitting: Cranfield's spaced full stops, blank lines, no empty sentences."""

from __future__ import annotations

from tessera.data.sentences import split_sentences


def test_sentences_split_on_cranfield_style_periods():
    text = "experimental study of a wing .\n  the results were intended as a basis .  lift rises."
    assert split_sentences(text) == [
        "experimental study of a wing .",
        "the results were intended as a basis .",
        "lift rises.",
    ]


def test_blank_lines_end_sentences_and_empty_ones_are_dropped():
    assert split_sentences("Heading without stop\n\n  Body one? Body two!  \n\n") == [
        "Heading without stop",
        "Body one?",
        "Body two!",
    ]
