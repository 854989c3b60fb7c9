"""A short window of a document around the query's terms, for a result list.

The page highlights the terms itself; this only chooses which words to send, so a long document
costs the client a few hundred bytes per hit instead of its whole text."""

from __future__ import annotations

import re

WORD = re.compile(r"\w+")


def query_terms(query: str) -> set[str]:
    """Lower-cased query words of three letters or more (stop words rarely are)."""
    return {t for t in WORD.findall(query.lower()) if len(t) > 2}


def snippet(text: str, query: str, width: int = 40) -> str:
    """The `width`-word window holding the most query-term matches (a term matches a word it
    starts: `layer` matches `layers`), with ellipses where text is cut."""
    words = text.split()
    if len(words) <= width:
        return " ".join(words)
    terms = query_terms(query)
    matches = [any(w.lower().lstrip("(\"'").startswith(t) for t in terms) for w in words]
    best, best_count, count = 0, -1, 0
    for end, hit in enumerate(matches):
        count += hit
        if end >= width:
            count -= matches[end - width]
        start = max(0, end - width + 1)
        if end >= width - 1 and count > best_count:
            best, best_count = start, count
    first = next((i for i in range(best, len(words)) if matches[i]), 0) if best_count > 0 else 0
    start = max(0, min(first - 3, len(words) - width))  # a little context before the first match
    window = " ".join(words[start : start + width])
    return ("… " if start else "") + window + (" …" if start + width < len(words) else "")
