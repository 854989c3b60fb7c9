"""`POST /v1/chat/completions`: RAG behind OpenAI's chat API. The context is what `/v1/rag`
retrieves for the last user message (or, as `follow_up` asks, with the earlier turns or the
generator's rewrite), earlier turns stay in the conversation, streaming sends OpenAI's chunks and
`[DONE]`, and requests it cannot answer are JSON 400s."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tessera.errors import GeneratorError
from tessera.rag import prepare
from tessera.rag.prompt import with_conversation
from tessera.rag.tokens import token_counter
from tessera.retrieval.index import Index
from tessera.serve.chat import ChatBody
from tests.serve.conftest import Recording, wait_ready

QUESTION = "what is the effect of a propeller slipstream on wing lift"


@pytest.fixture
def chatting(make_app) -> Iterator[tuple[TestClient, Recording]]:
    with TestClient(make_app()) as client:
        wait_ready(client.get)
        generator = Recording()
        client.app.state.rag.generator = generator
        yield client, generator


def test_a_chat_completion_answers_from_the_index(chatting, loaded: dict[str, Index]) -> None:
    client, generator = chatting
    body = {
        "model": "head-minilm",
        "messages": [
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "what is a slipstream"},
            {"role": "assistant", "content": "The air a propeller pushes back."},
            {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
        ],
        "temperature": 0.2,
        "k": 3,
    }
    got = client.post("/v1/chat/completions", json=body).json()
    assert got["object"] == "chat.completion" and got["model"] == "head-minilm"
    assert got["choices"][0]["message"] == {"role": "assistant", "content": "The slipstream raises lift [1]."}
    expected = prepare(loaded["head-minilm"], QUESTION, k=3)
    assert [s["doc_id"] for s in got["sources"]] == [s["doc_id"] for s in expected.sources]
    sent = generator.seen[-1]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[0]["content"].endswith("\n\nAnswer in one sentence.")
    assert sent[1:3] == [
        {"role": "user", "content": "what is a slipstream"},
        {"role": "assistant", "content": "The air a propeller pushes back."},
    ]
    assert sent[-1] == expected.messages[-1]  # the context and the question, retrieved for the last turn
    usage = got["usage"]
    assert usage["prompt_tokens"] == token_counter().count_messages(sent) and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert got["choices"][0]["finish_reason"] == "stop"
    cut = client.post("/v1/chat/completions", json={**body, "max_tokens": 3}).json()
    assert cut["choices"][0]["finish_reason"] == "length"  # the answer reached max_tokens
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["head-minilm", "head-bm25"]


def test_a_streamed_chat_completion_sends_openai_chunks(chatting) -> None:
    client, _ = chatting
    body = {"messages": [{"role": "user", "content": QUESTION}], "stream": True, "k": 2}
    lines = [line for line in client.post("/v1/chat/completions", json=body).text.split("\n\n") if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert (
        chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        and len(chunks[0]["sources"]) == 2
    )
    assert (
        "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        == "The slipstream raises lift [1]."
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"messages": [{"role": "assistant", "content": "hello"}]},
            "last message must be the user's question",
        ),
        (
            {"messages": [{"role": "user", "content": "  "}]},
            "the last message, the user's question, is empty",
        ),
        ({"messages": [{"role": "user", "content": "lift"}], "model": "gpt-4o"}, "unknown index 'gpt-4o'"),
        ({"messages": [{"role": "user", "content": "lift"}], "n": 2}, "field 'n'"),
        ({"messages": []}, "field 'messages'"),
    ],
)
def test_what_a_chat_cannot_answer_is_refused(chatting, body: dict, message: str) -> None:
    client, _ = chatting
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and message in response.json()["error"]["message"]


def test_without_a_generator_a_chat_says_how_to_start_one(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]})
    assert response.status_code == 400 and "--generator local" in response.json()["error"]["message"]


def test_the_conversation_keeps_turns_around_the_context() -> None:
    body = ChatBody(
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "q"}, {"type": "image_url", "image_url": {}}],
            },
        ]
    )
    rag = [{"role": "system", "content": "SYSTEM"}, {"role": "user", "content": "Context: ... Question: q"}]
    assert body.conversation()[-1] == {"role": "user", "content": "q"}
    assert with_conversation(rag, body.conversation()) == [
        {"role": "system", "content": "SYSTEM\n\nBe brief."},
        {"role": "user", "content": "Context: ... Question: q"},
    ]


def test_a_follow_up_is_searched_as_follow_up_asks(chatting, loaded: dict[str, Index]) -> None:
    client, generator = chatting
    messages = [
        {"role": "user", "content": "what is a propeller slipstream"},
        {"role": "assistant", "content": "The air a propeller pushes back."},
        {"role": "user", "content": "what does it do to the wing"},
    ]
    index = loaded["head-minilm"]
    own = client.post("/v1/chat/completions", json={"messages": messages, "k": 3}).json()
    assert own["search_query"] == "what does it do to the wing"
    turns = client.post(
        "/v1/chat/completions", json={"messages": messages, "k": 3, "follow_up": "turns"}
    ).json()
    searched = "what is a propeller slipstream\nwhat does it do to the wing"
    assert turns["search_query"] == searched
    expected = prepare(index, "what does it do to the wing", k=3, search_query=searched)
    assert turns["sources"] == expected.sources and generator.seen[-1][-1] == expected.messages[-1]
    body = {"messages": messages, "k": 3, "follow_up": "rewrite", "stream": True}
    lines = [line for line in client.post("/v1/chat/completions", json=body).text.split("\n\n") if line]
    first = json.loads(lines[0].removeprefix("data: "))
    rewritten = "what does it do to the wing\npropeller slipstream effect on wing lift"
    assert first["search_query"] == rewritten
    assert first["sources"] == prepare(index, "x", k=3, search_query=rewritten).sources
    assert (
        "Last message: what does it do to the wing" in generator.seen[-2][-1]["content"]
    )  # the rewrite's chat
    client.app.state.chat.follow_up = "turns"  # `tessera serve --follow-up turns`: a request naming none
    assert client.post("/v1/chat/completions", json={"messages": messages}).json()["search_query"] == searched
    wrong = client.post("/v1/chat/completions", json={"messages": messages, "follow_up": "history"})
    assert wrong.status_code == 400 and "unknown follow_up 'history'" in wrong.json()["error"]["message"]


class Down(Recording):
    """A generator whose LLM endpoint is down, as `OpenAIGenerator` reports it."""

    def generate(self, messages, max_new_tokens=256):
        raise GeneratorError("LLM endpoint http://127.0.0.1:9/v1 is unreachable", field="generator")

    def generate_batch(self, chats, max_new_tokens=256):
        return [self.generate(chat) for chat in chats]


def test_a_failing_llm_endpoint_is_a_502_not_the_client_s_fault(chatting) -> None:
    client, _ = chatting
    client.app.state.rag.generator = Down()
    question = {"messages": [{"role": "user", "content": QUESTION}]}
    follow_up = {
        "messages": [*question["messages"], {"role": "user", "content": "why?"}],
        "follow_up": "rewrite",
    }
    for body in (question, follow_up):  # the answer, then a follow-up's rewrite
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 502
        assert response.json()["error"]["message"].endswith(
            "LLM endpoint http://127.0.0.1:9/v1 is unreachable"
        )
    rag = client.post("/v1/rag", json={"query": QUESTION, "k": 2})
    assert rag.status_code == 502 and "unreachable" in rag.json()["error"]


def test_a_chat_over_several_indexes_retrieves_them_fused(chatting) -> None:
    client, _ = chatting
    body = {"model": "ignored", "messages": [{"role": "user", "content": QUESTION}], "k": 4}
    fused = client.post("/v1/chat/completions", json={**body, "indexes": ["head-minilm", "head-bm25"]}).json()
    rag = client.post(
        "/v1/rag", json={"query": QUESTION, "k": 4, "indexes": ["head-minilm", "head-bm25"]}
    ).json()
    assert fused["sources"] == rag["sources"] and fused["model"] == "head-minilm"
    alone = client.post("/v1/rag", json={"query": QUESTION, "k": 4, "index": "head-minilm"}).json()
    assert fused["sources"] != alone["sources"]
    # every RAG option of /v1/rag reaches the chat's retrieval, checked as /v1/rag checks it
    weighted = {
        **body,
        "indexes": ["head-minilm", "head-bm25"],
        "fusion": "wsum",
        "weights": [0, 1],
        "depth": 20,
    }
    chat = client.post("/v1/chat/completions", json=weighted).json()
    options = {key: weighted[key] for key in ("k", "indexes", "fusion", "weights", "depth")}
    rag = client.post("/v1/rag", json={"query": QUESTION, **options}).json()
    assert chat["sources"] == rag["sources"] != fused["sources"]
    wrong = client.post("/v1/chat/completions", json={**weighted, "fusion": "nonsense"})
    assert wrong.status_code == 400 and "unknown fusion 'nonsense'" in wrong.json()["error"]["message"]
