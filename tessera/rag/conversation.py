"""The search query of a question asked in a conversation.

A follow-up ("and at higher Mach numbers?") names its topic in an earlier turn, so its own words
retrieve poorly. Three ways to search for the last user turn, as `follow_up` names them:

- `last`: the last user turn alone, the question's own words.
- `turns`: the earlier user turns, most recent last, then the last one, at most `TURNS` turns
  (TREC CAsT's "all utterances" baseline).
- `rewrite`: the generator rewrites the last turn as a standalone question from the
  conversation (LangChain's history-aware retriever, LlamaIndex's condense-question engine);
  the search runs on the last turn followed by that rewrite (the turn alone where the rewrite
  only repeats it), so a question that needs no history keeps all of its own words.

With no earlier user turn every mode searches the question itself, and `rewrite` without a
generator is refused. docs/results.md section 34 measures what each costs on questions that need
no history.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tessera.errors import TesseraError
from tessera.rag.generators import Generator
from tessera.rag.tokens import Message

FOLLOW_UPS = ("last", "turns", "rewrite")
DEFAULT_FOLLOW_UP = "last"  # section 34: chosen by what the others cost where no history is needed
TURNS = 3  # the last turn and the two before it: older topics mostly add noise
HISTORY_WORDS = 400  # the conversation shown to the rewriter, most recent words kept
REWRITE_TOKENS = 64
# Two worked examples shown to the rewriter as earlier chat turns: one follow-up that needs its
# subject from the history, one change of subject that needs none. A small model copies their
# form (a short query) instead of answering the question.
REWRITE_EXAMPLES: tuple[tuple[tuple[Message, ...], str, str], ...] = (
    (
        (
            {"role": "user", "content": "who designed the eiffel tower?"},
            {"role": "assistant", "content": "Gustave Eiffel's engineering company designed it."},
        ),
        "when was it built?",
        "when was the Eiffel Tower built",
    ),
    (
        (
            {"role": "user", "content": "what is the boiling point of water at sea level?"},
            {"role": "assistant", "content": "100 degrees Celsius."},
        ),
        "how do vaccines train the immune system?",
        "how do vaccines train the immune system",
    ),
)
REWRITE_SYSTEM = (
    "You turn the user's last message in a conversation into one standalone search query. "
    "Replace pronouns and references with the names and topics from the earlier turns they "
    "refer to, keep every word of the last message that carries meaning, and answer with the "
    "query alone, on one line."
)


def check_follow_up(mode: str, has_generator: bool) -> None:
    if mode not in FOLLOW_UPS:
        raise TesseraError(
            f"unknown follow_up '{mode}' (expected one of {', '.join(FOLLOW_UPS)})", field="follow_up"
        )
    if mode == "rewrite" and not has_generator:
        raise TesseraError("follow_up 'rewrite' needs a generator", field="follow_up")


def transcript(history: Sequence[Message], words: int = HISTORY_WORDS) -> str:
    """The turns as `Role: text` lines, the most recent `words` words of them (an older turn
    that does not fit whole keeps its last words)."""
    lines: list[str] = []
    for message in reversed(history):
        text = message["content"].split()[-words:] if words > 0 else []
        if not text:
            break
        lines.append(f"{message['role'].capitalize()}: {' '.join(text)}")
        words -= len(text)
    return "\n".join(reversed(lines))


def _rewrite_request(history: Sequence[Message], last: str) -> Message:
    text = (
        f"Conversation:\n{transcript(history)}\n\n"
        f"Last message: {' '.join(last.split())}\n\nStandalone search query:"
    )
    return {"role": "user", "content": text}


def rewrite_chat(
    turns: Sequence[Message], examples: Sequence[tuple[Sequence[Message], str, str]] = REWRITE_EXAMPLES
) -> list[Message]:
    """The rewriter's prompt: the worked examples, then the conversation so far as a transcript
    and its last message."""
    *history, last = turns
    shots: list[Message] = []
    for shown, question, rewrite in examples:
        shots += [_rewrite_request(shown, question), {"role": "assistant", "content": rewrite}]
    return [{"role": "system", "content": REWRITE_SYSTEM}, *shots, _rewrite_request(history, last["content"])]


def clean_rewrite(raw: str) -> str:
    """The rewrite's first non-empty line, without a label or quotes a small model adds."""
    for line in raw.splitlines():
        line = line.strip().strip('"').strip()
        for label in ("standalone search query:", "search query:", "query:"):
            if line.lower().startswith(label):
                line = line[len(label) :].strip().strip('"').strip()
        if line:
            return line
    return ""


def with_rewrite(question: str, raw: str) -> str:
    """The question followed by the generator's rewrite of it (`raw`, cleaned), or the question
    alone where the rewrite is empty or repeats its words."""
    rewrite = clean_rewrite(raw)
    return question if not rewrite or words_of(rewrite) == words_of(question) else f"{question}\n{rewrite}"


def words_of(text: str) -> list[str]:
    """Lower-cased words: what decides whether a rewrite only repeats its question."""
    return re.findall(r"\w+", text.lower())


def search_query(
    turns: Sequence[Message], follow_up: str = DEFAULT_FOLLOW_UP, generator: Generator | None = None
) -> str:
    """What to search for the last user turn of `turns` (user and assistant messages, oldest
    first), as `follow_up` says (the module's list)."""
    return search_queries([turns], follow_up, generator)[0]


def search_queries(
    conversations: Sequence[Sequence[Message]],
    follow_up: str = DEFAULT_FOLLOW_UP,
    generator: Generator | None = None,
) -> list[str]:
    """`search_query` of each conversation; the rewrites in one batch (`Generator.generate_batch`)."""
    check_follow_up(follow_up, generator is not None)
    queries: list[str] = []
    pending: list[int] = []
    for number, turns in enumerate(conversations):
        users = [m["content"] for m in turns if m["role"] == "user"]
        if not turns or turns[-1]["role"] != "user":  # it said "not empty" of an assistant's last turn
            if not turns:
                raise TesseraError("the conversation holds no question of the user's", field="messages")
            why = f"the last message must be the user's question, not the {turns[-1]['role']}'s"
            raise TesseraError(why, field="messages")
        if not users[-1].strip():
            raise TesseraError("the last message, the user's question, is empty", field="messages")
        queries.append(users[-1])
        if len(users) > 1 and follow_up == "turns":
            queries[-1] = "\n".join(users[-TURNS:])
        elif len(users) > 1 and follow_up == "rewrite":
            pending.append(number)
    if pending:
        chats = [rewrite_chat(conversations[number]) for number in pending]
        for number, raw in zip(pending, generator.generate_batch(chats, REWRITE_TOKENS), strict=True):
            queries[number] = with_rewrite(queries[number], raw)
    return queries
