"""Chat messages as OpenAI-style APIs write them, read into the plain `{"role", "content"}` text
the RAG pipeline prompts with: one reading for the Python API, the service and an endpoint's
answers alike."""

from __future__ import annotations

from collections.abc import Sequence

from tessera.errors import TesseraError
from tessera.rag.tokens import Message

ROLES = ("system", "developer", "user", "assistant")


def content_text(content: object) -> str:
    """A message's content as text: a string, null (an assistant turn that called tools), or a
    list of parts (`[{"type": "text", "text": ...}]`, other parts such as images not read);
    anything else raises TypeError."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        return "".join(str(part.get("text", "")) for part in content if part.get("type") == "text")
    raise TypeError(f"content is a {type(content).__name__}")


def chat_messages(messages: Sequence[object]) -> list[Message]:
    """`messages` as text messages; one that is not a message is refused naming its place."""
    if isinstance(messages, str | bytes | dict):
        raise TesseraError(f"must be a list of messages, not a {type(messages).__name__}", field="messages")
    plain = []
    for number, message in enumerate(messages):
        field = f"messages[{number}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise TesseraError(f"expected {{'role': one of {', '.join(ROLES)}, 'content': ...}}", field=field)
        try:
            plain.append({"role": message["role"], "content": content_text(message.get("content"))})
        except TypeError as exc:
            why = f"{exc}: expected text, null or a list of parts"
            raise TesseraError(why, field=f"{field}.content") from None
    return plain
