"""What a follow-up question searches for (`rag.conversation`), and `rag.chat` over a real
Cranfield index: the search query is chosen from the conversation, the prompt asks the question
after the earlier turns."""

from __future__ import annotations

import pytest

from tessera.errors import TesseraError
from tessera.rag import chat, prepare
from tessera.rag.conversation import (
    HISTORY_WORDS,
    REWRITE_EXAMPLES,
    TURNS,
    clean_rewrite,
    rewrite_chat,
    search_queries,
    search_query,
    with_rewrite,
)
from tessera.rag.generators import open_generator
from tessera.rag.tokens import token_counter
from tessera.retrieval.index import Index

EARLIER = "what is the heat transfer to a blunt body in hypersonic flow"
FOLLOW_UP = "and how does it change with angle of attack"


def conversation(*users: str) -> list[dict[str, str]]:
    """User turns with an assistant turn between each two."""
    turns: list[dict[str, str]] = []
    for number, text in enumerate(users):
        if number:
            turns.append({"role": "assistant", "content": f"answer {number}"})
        turns.append({"role": "user", "content": text})
    return turns


class Rewriter:
    """A scripted generator: one rewrite per chat, and the chats it was given."""

    name = "scripted"

    def __init__(self, rewrite: str) -> None:
        self.rewrite = rewrite
        self.tokens = token_counter()
        self.chats: list[list[dict]] = []

    def generate_batch(self, chats, max_new_tokens=256):
        self.chats.extend(chats)
        return [self.rewrite for _ in chats]

    def generate(self, messages, max_new_tokens=256):
        return self.generate_batch([messages], max_new_tokens)[0]


@pytest.fixture(scope="module")
def index(cranfield_dense) -> Index:
    return Index.load(cranfield_dense)


def test_each_mode_searches_what_it_says():
    turns = conversation("first", "second", EARLIER, FOLLOW_UP)
    assert search_query(turns, "last") == FOLLOW_UP
    assert search_query(turns, "turns") == "\n".join(["second", EARLIER, FOLLOW_UP][-TURNS:])
    llm = Rewriter('Query: "heat transfer to a blunt body at angle of attack"')
    assert (
        search_query(turns, "rewrite", llm)
        == f"{FOLLOW_UP}\nheat transfer to a blunt body at angle of attack"
    )
    asked = llm.chats[0][-1]["content"]
    assert f"User: {EARLIER}\nAssistant: answer 3" in asked and asked.endswith(
        f"Last message: {FOLLOW_UP}\n\nStandalone search query:"
    )


def test_a_first_question_is_searched_as_asked_and_never_rewritten():
    llm = Rewriter("something else")
    for mode in ("last", "turns", "rewrite"):
        assert search_query(conversation(EARLIER), mode, llm) == EARLIER
    assert llm.chats == []


def test_an_empty_rewrite_falls_back_to_the_question_and_rewrites_are_batched():
    many = [conversation(EARLIER, FOLLOW_UP), conversation(EARLIER), conversation("a", "b")]
    llm = Rewriter("\n  \n")
    assert search_queries(many, "rewrite", llm) == [FOLLOW_UP, EARLIER, "b"]
    assert len(llm.chats) == 2  # one batch of the two follow-ups


def test_a_rewrite_that_repeats_the_question_adds_nothing():
    assert with_rewrite("How is lift measured?", 'Query: "how is lift measured"') == "How is lift measured?"
    assert (
        with_rewrite("How is it measured?", "how is lift measured")
        == "How is it measured?\nhow is lift measured"
    )
    assert with_rewrite("How is it measured?", "\n") == "How is it measured?"


def test_clean_rewrite_keeps_the_first_line_without_labels_or_quotes():
    assert clean_rewrite('\n Standalone search query: "drag of cones"\nExplanation: ...') == "drag of cones"
    assert clean_rewrite("  \n\n") == ""


def test_the_rewriter_is_shown_worked_examples_before_the_conversation():
    chat = rewrite_chat(conversation(EARLIER, FOLLOW_UP))
    assert [m["role"] for m in chat] == ["system", *["user", "assistant"] * len(REWRITE_EXAMPLES), "user"]
    assert (
        chat[2]["content"] == REWRITE_EXAMPLES[0][2]
        and "Last message: when was it built?" in chat[1]["content"]
    )
    assert [m["role"] for m in rewrite_chat(conversation(EARLIER, FOLLOW_UP), examples=())] == [
        "system",
        "user",
    ]


def test_the_rewriter_sees_only_the_most_recent_history():
    long = conversation("old " * HISTORY_WORDS, "recent question", FOLLOW_UP)
    shown = rewrite_chat(long)[-1]["content"]
    assert "recent question" in shown and shown.count("old") < HISTORY_WORDS


@pytest.mark.parametrize(
    ("turns", "mode", "generator", "message"),
    [
        (conversation(EARLIER, FOLLOW_UP), "history", None, "unknown follow_up 'history'"),
        (conversation(EARLIER, FOLLOW_UP), "rewrite", None, "needs a generator"),
        (
            [{"role": "user", "content": EARLIER}, {"role": "assistant", "content": "x"}],
            "last",
            None,
            "last message",
        ),
        (conversation(EARLIER, "   "), "last", None, "last message"),
    ],
)
def test_what_cannot_be_searched_is_refused(turns, mode, generator, message):
    with pytest.raises(TesseraError, match=message):
        search_query(turns, mode, generator)


def test_a_search_query_retrieves_while_the_prompt_asks_the_question(index):
    prompt = prepare(index, FOLLOW_UP, k=3, search_query=EARLIER)
    assert [s["doc_id"] for s in prompt.sources] == [h.doc_id for h in index.search(EARLIER, k=3)]
    assert prompt.messages[-1]["content"].endswith(f"Question: {FOLLOW_UP}\nAnswer:")
    assert prompt.search_query == EARLIER and prepare(index, EARLIER, k=3).search_query is None
    with pytest.raises(TesseraError, match="search query is empty"):
        prepare(index, FOLLOW_UP, search_query=" ")


def test_chat_answers_the_last_turn_after_the_history(index):
    messages = [{"role": "system", "content": "Be brief."}, *conversation(EARLIER, FOLLOW_UP)]
    turns = chat(index, messages, generator=None, follow_up="turns", k=3)
    assert turns.answer is None and turns.prompt.search_query == f"{EARLIER}\n{FOLLOW_UP}"
    expected = prepare(index, FOLLOW_UP, k=3, search_query=f"{EARLIER}\n{FOLLOW_UP}")
    assert turns.prompt.sources == expected.sources
    sent = turns.prompt.messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[0]["content"].endswith("\n\nBe brief.") and sent[1]["content"] == EARLIER
    assert sent[-1] == expected.messages[-1]
    last = chat(index, messages, generator=None, k=3)  # the default searches the question's own words
    assert last.prompt.search_query is None and last.prompt.sources == prepare(index, FOLLOW_UP, k=3).sources


def test_a_conversation_must_end_with_the_users_question(index):
    """An assistant's last turn was called "empty"."""
    for messages, said in [
        (conversation(EARLIER) + [{"role": "assistant", "content": "a"}], "not the assistant's"),
        ([{"role": "user", "content": " "}], "the user's question, is empty"),
        ([], "holds no question of the user's"),  # "not none"
        ([{"role": "system", "content": "be brief"}], "holds no question of the user's"),
    ]:
        with pytest.raises(TesseraError, match=said):
            chat(index, messages, generator=None, k=3)


def test_a_long_conversation_still_fits_the_generators_window(index):
    """The passages were fitted to the window as if there were no earlier turns, and the token
    counts left the turns out: six long turns and 60 passages made a prompt of 10,353 tokens
    (SmolLM2 reads 8,192) that said 6,291."""
    tokens = token_counter()
    said = " ".join(["the boundary layer separates where the pressure gradient is adverse"] * 60)
    long = [{"role": role, "content": said} for _ in range(6) for role in ("user", "assistant")]
    messages = [*long, {"role": "user", "content": FOLLOW_UP}]
    with pytest.warns(
        UserWarning, match=r"the conversation's earliest \d+ turns were left out of the prompt"
    ):
        prompt = chat(index, messages, generator=None, k=60).prompt
    assert prompt.prompt_tokens == tokens.count_messages(prompt.messages) <= 8192 - 256
    history = [m for m in prompt.messages[1:-1]]
    assert history and all(m["content"] == said for m in history) and len(history) < len(long)
    assert prompt.messages[-2]["role"] == "assistant"  # the most recent turns kept
    assert prompt.messages[1]["role"] == "user"  # exchanges left out whole: never an assistant first
    huge = " ".join(["boundary"] * 9000)  # a question alone over the window: said, not sent silently
    with pytest.warns(UserWarning, match=r"the prompt takes \d+ tokens, more than the generator's 8192"):
        prepare(index, huge, k=1)
    short = chat(index, conversation(EARLIER, FOLLOW_UP), generator=None, k=3).prompt
    alone = prepare(index, FOLLOW_UP, k=3)
    assert short.prompt_tokens > alone.prompt_tokens  # the earlier turns are counted


def test_messages_as_openai_clients_write_them(index):
    """`content: null` (an assistant turn that called tools) was an AttributeError; parts are text."""
    messages = [
        {"role": "system", "content": None},
        {"role": "user", "content": [{"type": "text", "text": EARLIER}]},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": FOLLOW_UP},
    ]
    sent = chat(index, messages, generator=None, k=3).prompt.messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"] and sent[1][
        "content"
    ] == EARLIER
    for bad, field in [
        ([{"role": "user", "content": 5}], "messages[0].content"),
        ([{"role": "tool", "content": "x"}], "messages[0]"),
        ("what is a wing", "messages"),
    ]:
        with pytest.raises(TesseraError) as info:
            chat(index, bad, generator=None, k=3)
        assert info.value.field == field


def test_the_bundled_llm_rewrites_a_follow_up_end_to_end(index):
    """The real model through the rewrite path: one rewrite, then the answer. (SmolLM2-135M
    mostly gives the follow-up back unchanged, docs/results.md section 34, so the search query is
    the question, or the question and a rewrite after it.)"""
    llm, rewrites = open_generator("local"), []
    batch = llm.generate_batch
    llm.generate_batch = lambda chats, max_new_tokens=256: (
        rewrites.append(chats) or batch(chats, max_new_tokens)
    )
    result = chat(index, conversation(EARLIER, FOLLOW_UP), llm, max_new_tokens=16, follow_up="rewrite", k=3)
    assert len(rewrites) == 1 and rewrites[0][0][-1]["content"].endswith("Standalone search query:")
    searched = result.prompt.search_query
    assert searched is None or searched.startswith(f"{FOLLOW_UP}\n")
    assert result.answer and len(result.prompt.sources) == 3
