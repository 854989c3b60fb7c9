"""Markdown and HTML to the title and plain text an index should see.

Markup characters, link targets, scripts and menus are not words a reader searches for, and a
`#` or `<td>` in the text shifts BM25's lengths and an encoder's tokens. Markdown is parsed by
markdown-it-py (CommonMark, tables on); HTML by the standard library's tolerant parser, so
broken real-world pages still give their text. Both return `Extracted`: the title, the text
(one block per line), and metadata (a Markdown front matter's flat fields).
"""

from __future__ import annotations

import codecs
import contextlib
import datetime
import re
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt

from tessera.data.metadata import filterable
from tessera.errors import CorpusError, TesseraWarning


@dataclass(frozen=True)
class Extracted:
    """What a file holds for an index: title (may be empty), text, and flat metadata."""

    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- Markdown

# Lines end in \n or \r\n (Windows): `$` matches before the \n only, so the \r is matched first.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*\r?$\n?", re.DOTALL | re.MULTILINE)


def _json_value(value: Any) -> Any:
    """YAML dates as ISO text (they compare as text in filters); other values as they are."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def front_matter(source: str, path: Path) -> tuple[dict[str, Any], str]:
    """A Markdown file's YAML front matter (Jekyll, Hugo, Obsidian) and the body after it.
    Only the fields filters can select by are kept; bad YAML is an error naming its line."""
    match = _FRONT_MATTER.match(source)
    if not match:
        return {}, source
    try:
        fields = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:  # a rule and a line with a colon, or front matter gone wrong
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 2}" if mark is not None else ""  # +1 for the opening ---, +1 from 0
        warnings.warn(
            TesseraWarning(
                f"the block between the first two '---' lines is not YAML ({getattr(exc, 'problem', exc)}): "
                "read as text, not as front matter",
                file=f"{path}{line}",
            ),
            stacklevel=2,
        )
        return {}, source
    if not isinstance(fields, dict):  # a `---` rule opening the text (slides), not front matter
        return {}, source
    values = {str(key): _json_value(value) for key, value in fields.items()}
    kept = {key: value for key, value in values.items() if key and '"' not in key and filterable(value)}
    return kept, source[match.end() :]


def _inline_text(token: Any) -> str:
    """An inline token's readable text: words, code, image alt text; no URLs, no inline HTML."""
    parts = []
    for child in token.children or ():
        if child.type in ("text", "code_inline", "image"):  # an image's content is its alt text
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return " ".join("".join(parts).split())


def markdown_to_text(source: str, path: Path) -> Extracted:
    """Title: the front matter's `title`, else the first level-1 heading (then not repeated in
    the text). Text: one line per paragraph, heading, list item, code block or table row."""
    metadata, body = front_matter(source, path)
    given = metadata.pop("title", "") or ""
    title = " ".join((", ".join(map(str, given)) if isinstance(given, list) else str(given)).split())
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    blocks: list[str] = []
    row: list[str] | None = None
    heading = ""
    for token in tokens:
        if token.type == "heading_open":
            heading = token.tag
        elif token.type == "inline":
            text = _inline_text(token)
            if heading == "h1" and not title:
                title, text = text, ""
            if row is not None:
                row.append(text)
            elif text:
                blocks.append(text)
            heading = ""
        elif token.type in ("fence", "code_block"):
            blocks.append(token.content.strip())
        elif token.type == "html_block":
            blocks.append(html_to_text(token.content).text)
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            blocks.append(" | ".join(cell for cell in row or () if cell))
            row = None
    return Extracted(title, "\n".join(block for block in blocks if block), metadata)


# -------------------------------------------------------------------- HTML

# Elements whose content is never text a reader searches for.
_SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "math", "nav", "iframe", "object"})
# Elements that end a line of text (the rest flow inline).
_BLOCKS = frozenset(
    {"address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl", "dt", "figcaption"}
    | {"figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "ol"}
    | {"p", "pre", "section", "table", "tbody", "td", "th", "thead", "tr", "ul"}
)
# `<meta charset>` or `<meta http-equiv ... content="...; charset=...">`, or an XHTML file's XML
# declaration (`<?xml version="1.0" encoding="iso-8859-1"?>`).
_CHARSET = re.compile(
    rb"""(?:<meta[^>]+charset|<\?xml[^>]+encoding)\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skipping = 0
        self.in_title = False
        self.title_parts: list[str] = []
        self.h1_parts: list[str] | None = None
        self.first_h1 = ""

    def _end_line(self) -> None:
        line = " ".join("".join(self.current).split())
        if line:
            self.lines.append(line)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag == "title":
            self.in_title = True
        elif tag in _BLOCKS:
            self._end_line()
        if tag == "h1" and not self.first_h1 and self.h1_parts is None:
            self.h1_parts = []

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in _BLOCKS:
            self._end_line()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "title":
            self.in_title = False
        elif tag in _BLOCKS:
            self._end_line()
        if tag == "h1" and self.h1_parts is not None:
            self.first_h1 = " ".join("".join(self.h1_parts).split())
            self.h1_parts = None

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.in_title:
            self.title_parts.append(data)
            return
        self.current.append(data)
        if self.h1_parts is not None:
            self.h1_parts.append(data)


def html_to_text(source: str) -> Extracted:
    """Title: `<title>`, else the first `<h1>`. Text: the body's words, one line per block
    element; scripts, styles and navigation menus left out, entities decoded."""
    parser = _TextParser()
    parser.feed(source)
    parser.close()
    parser._end_line()
    title = " ".join("".join(parser.title_parts).split())
    lines = parser.lines
    if not title and parser.first_h1:
        title = parser.first_h1
        lines = [line for i, line in enumerate(lines) if i != lines.index(title)] if title in lines else lines
    return Extracted(title, "\n".join(lines))


def decode_html(raw: bytes, path: Path) -> str:
    """An HTML file's text in the encoding its `<meta charset>` declares (UTF-8 otherwise)."""
    match = _CHARSET.search(raw[:4096])
    encoding, unknown = "utf-8", ""
    if match:
        unknown = f" (its declared charset '{match.group(1).decode('ascii')}' is unknown: read as UTF-8)"
        with contextlib.suppress(LookupError):  # an unknown name: read it as UTF-8
            codec = codecs.lookup(match.group(1).decode("ascii"))
            unknown = ""
            # As browsers do: a page whose <meta> can be read byte by byte is not UTF-16 (WHATWG
            # reads that declaration as UTF-8), and codecs that are not text encodings (hex,
            # base64) are unknown names.
            if codec._is_text_encoding and not codec.name.startswith(("utf-16", "utf-32")):
                encoding = codec.name
    try:
        return raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        name = "UTF-8" if encoding == "utf-8" else encoding
        raise CorpusError(f"not valid {name} at byte {exc.start}{unknown}", file=path, line=line) from None
