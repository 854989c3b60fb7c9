"""Generators: the LLM at the end of the RAG pipeline, local or behind an OpenAI-compatible URL.

| spec | generator |
|---|---|
| `none` | no generator (the pipeline stops at the prompt) |
| `local`, `local:MODEL` | `LocalGenerator`: a Hugging Face causal LM (`smollm2`, a folder, `org/name`) |
| `http(s)://HOST[:PORT][/PATH][#MODEL]` | `OpenAIGenerator`: llama.cpp server, vLLM, Ollama, ... |

Both decode greedily (temperature 0) so answers are reproducible and comparable across methods.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from tessera.errors import EncoderError, GeneratorError, TesseraError
from tessera.models.causal_lm import DEFAULT_LLM, load_causal_lm
from tessera.openai_http import DEFAULT_MODEL, OpenAIClient, is_url, normalize_base_url, snippet
from tessera.rag.messages import content_text
from tessera.rag.tokens import Message, TokenCounter, token_counter


class Generator(Protocol):
    """What the pipeline needs from an LLM: a name, its token counter, and text for a chat."""

    name: str
    tokens: TokenCounter

    def stream(self, messages: Sequence[Message], max_new_tokens: int = 256) -> Iterator[str]: ...

    def generate(self, messages: Sequence[Message], max_new_tokens: int = 256) -> str: ...

    def generate_batch(self, chats: Sequence[Sequence[Message]], max_new_tokens: int = 256) -> list[str]: ...


def check_max_new_tokens(max_new_tokens: int) -> None:
    """An answer's length cap, checked before retrieval (transformers refuses 0 only when asked
    to generate; an endpoint may answer an empty string)."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise TesseraError(f"must be at least 1 token, got {max_new_tokens!r}", field="max_new_tokens")


def open_generator(spec: str | None) -> Generator | None:
    """The generator a spec names (see the module table); None for `none`."""
    if spec is None or spec == "none":
        return None
    if is_url(spec):
        return OpenAIGenerator(spec)
    if spec == "local" or (spec.startswith("local:") and spec != "local:"):
        try:
            return LocalGenerator(spec.removeprefix("local").removeprefix(":") or DEFAULT_LLM)
        except EncoderError as exc:  # the user typed a generator spec, so name that field
            raise GeneratorError(exc.message, field="generator") from None
    raise GeneratorError(
        f"unknown generator '{spec}': use none, local, local:MODEL or http(s)://HOST/v1[#MODEL]",
        field="generator",
    )


class LocalGenerator:
    """A chat LLM run in-process by transformers; greedy, so the same prompt gives the same answer."""

    def __init__(self, model: str = DEFAULT_LLM, repetition_penalty: float = 1.1, device: str | None = None):
        self.model_spec = model
        self.name = f"local:{model}"
        self.tokens = token_counter(model)
        self.repetition_penalty = repetition_penalty  # keeps a 135M model from looping
        self.device = device
        if not getattr(self.tokens.tokenizer, "chat_template", None):
            raise GeneratorError(
                f"LLM '{model}' has no chat template; use an instruction-tuned model", field="generator"
            )

    @property
    def model(self) -> Any:
        """Loaded on first use (cached per process): building prompts needs only the tokenizer."""
        return load_causal_lm(self.model_spec, self.device)

    def encode(self, messages: Sequence[Message]) -> Any:
        """The model's input for a chat: the chat template with the assistant turn opened."""
        return self.tokens.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_dict=True, return_tensors="pt"
        ).to(self.model.device)

    def _generate_kwargs(self, messages: Sequence[Message], max_new_tokens: int) -> dict[str, Any]:
        return {
            **self.encode(messages),
            "max_new_tokens": max_new_tokens,
            "do_sample": False,
            "repetition_penalty": self.repetition_penalty,
            "pad_token_id": self.tokens.tokenizer.pad_token_id,
        }

    def generate(self, messages: Sequence[Message], max_new_tokens: int = 256) -> str:
        kwargs = self._generate_kwargs(messages, max_new_tokens)
        output = self.model.generate(**kwargs)
        prompt_length = kwargs["input_ids"].shape[1]
        return self.tokens.tokenizer.decode(output[0, prompt_length:], skip_special_tokens=True)

    def generate_batch(self, chats: Sequence[Sequence[Message]], max_new_tokens: int = 256) -> list[str]:
        """Answers to many chats in one left-padded forward per token: on a CPU, 8-16 short
        generations cost little more than one, which is what bulk jobs (synthetic queries) need."""
        if not chats:
            return []
        tokenizer = self.tokens.tokenizer
        texts = [
            tokenizer.apply_chat_template(list(c), add_generation_prompt=True, tokenize=False) for c in chats
        ]
        inputs = tokenizer(
            texts, padding=True, padding_side="left", add_special_tokens=False, return_tensors="pt"
        ).to(self.model.device)
        output = self.model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            repetition_penalty=self.repetition_penalty,
            pad_token_id=tokenizer.pad_token_id,
        )
        prompt_length = inputs["input_ids"].shape[1]
        return tokenizer.batch_decode(output[:, prompt_length:], skip_special_tokens=True)

    def stream(self, messages: Sequence[Message], max_new_tokens: int = 256) -> Iterator[str]:
        """Text pieces as they are decoded; `generate` runs in a thread feeding a streamer.

        Closing the iterator early stops the decoding at the next token; an error in the thread
        is raised here.
        """
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = threading.Event()

        class _StopWhenClosed(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), stop.is_set(), device=input_ids.device)

        streamer = TextIteratorStreamer(self.tokens.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = self._generate_kwargs(messages, max_new_tokens)
        kwargs.update(streamer=streamer, stopping_criteria=StoppingCriteriaList([_StopWhenClosed()]))
        failures: list[BaseException] = []

        def run() -> None:
            try:
                self.model.generate(**kwargs)
            except BaseException as exc:  # re-raised in the consumer's thread
                failures.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, name="tessera-generate", daemon=True)
        thread.start()
        try:
            yield from (piece for piece in streamer if piece)
        finally:
            stop.set()
            thread.join()
        if failures:
            raise failures[0]


class OpenAIGenerator:
    """Any OpenAI-compatible chat endpoint (`POST {base}/chat/completions`), temperature 0.

    `url` may carry the model as a fragment (`http://host:8080/v1#qwen2.5`; default `default`,
    which single-model servers such as llama.cpp ignore). `Authorization: Bearer $OPENAI_API_KEY`
    is sent when that variable is set. Connection errors, timeouts and HTTP 408/429/500/502/503/504 are
    retried `retries` times, waiting `backoff`, 2x`backoff`, ... seconds.

    Token counts (budgets, ratios) use the bundled LLM's tokenizer: the endpoint's tokenizer is
    not visible from here, so counts are approximate for its model but comparable across methods.
    """

    def __init__(
        self,
        url: str,
        model: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 0.5,
        api_key: str | None = None,
    ):
        base, _, fragment = url.partition("#")
        self.base_url = normalize_base_url(base, "generator", GeneratorError)
        self.model = model or fragment or DEFAULT_MODEL
        self.name = f"{self.base_url}#{self.model}"
        self.tokens = token_counter()
        self.client = OpenAIClient(
            self.base_url, "LLM endpoint", GeneratorError, timeout, retries, backoff, api_key
        )

    def generate(self, messages: Sequence[Message], max_new_tokens: int = 256) -> str:
        with self._post(messages, max_new_tokens, stream=False) as response:
            return self._content(self.client.body(response))

    def generate_batch(self, chats: Sequence[Sequence[Message]], max_new_tokens: int = 256) -> list[str]:
        """One request per chat, in order (the server batches concurrent requests itself)."""
        return [self.generate(chat, max_new_tokens) for chat in chats]

    def stream(self, messages: Sequence[Message], max_new_tokens: int = 256) -> Iterator[str]:
        """`choices[0].delta.content` of each server-sent event until `data: [DONE]`.

        A server that ignores `stream` and answers one body (JSON, under any content type)
        yields its content whole; a stream that ends before `[DONE]` is an error, not a shorter
        answer.
        """
        with self._post(messages, max_new_tokens, stream=True) as response:
            if response.headers.get_content_type() != "text/event-stream":
                yield self._content(self.client.body(response))
                return
            for line in self.client.event_lines(response):
                try:
                    data = line.decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise self.client.error(f"sent an event that is not UTF-8: {snippet(line)}") from None
                if not data.startswith("data:"):
                    continue  # blank separators, comments, `event:` lines
                data = data.removeprefix("data:").strip()
                if data == "[DONE]":
                    return
                if piece := self._piece(data):
                    yield piece
            raise self.client.error("stopped answering before the end of its answer (no `data: [DONE]`)")

    def _piece(self, data: str) -> str:
        """The text of one streamed event (usage-only events carry none)."""
        try:
            event = json.loads(data)
            if event.get("error"):
                raise self.client.error(f"answered an error: {snippet(data)}")
            choices = event["choices"] or [{}]
            return content_text((choices[0].get("delta") or {}).get("content"))
        except (ValueError, LookupError, AttributeError, TypeError):
            raise self.client.error(f"sent an unexpected event: {snippet(data)}") from None

    def _content(self, body: bytes) -> str:
        """The answer in a non-streamed chat completion."""
        try:
            return content_text(json.loads(body)["choices"][0]["message"]["content"])
        except (ValueError, LookupError, TypeError):
            raise self.client.error(f"answered an unexpected body: {snippet(body)}") from None

    def _post(self, messages: Sequence[Message], max_new_tokens: int, stream: bool) -> Any:
        payload = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_new_tokens,
            "temperature": 0,
            "stream": stream,
        }
        return self.client.post("/chat/completions", payload)
