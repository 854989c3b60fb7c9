"""The folder tree is the architecture: each package imports only the rooms below it
(docs/architecture.md, "imports from tessera"). Read from the source, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import tessera

ROOT = Path(tessera.__file__).parent
# The top-level modules every room may use.
BASE = {"errors", "config", "progress", "durable", "lazy", "openai_http"}
ALLOWED = {
    "data": BASE,
    "models": BASE,
    "indexing": BASE | {"data", "models"},
    "retrieval": BASE | {"data", "models", "indexing"},
    "training": BASE | {"data", "models", "indexing", "retrieval", "rag.generators"},
    "rag": BASE | {"data", "models", "retrieval", "indexing.jvm", "indexing.manifest"},
    "eval": BASE | {"data", "models", "indexing", "retrieval"},
    "integrations": BASE | {"data", "models", "indexing", "retrieval", "rag"},
    "serve": BASE
    | {
        "data",
        "retrieval",
        "rag",
        "models.registry",
        "indexing.info",
        "indexing.manifest",
        "indexing.updates",
    },
}


def imported(path: Path) -> set[str]:
    """The `tessera.X[.Y]` names a module imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tessera."):
            names.add(node.module.removeprefix("tessera."))
        elif isinstance(node, ast.Import):
            names |= {a.name.removeprefix("tessera.") for a in node.names if a.name.startswith("tessera.")}
    return names


def allowed(name: str, room: str) -> bool:
    return any(name == rule or name.startswith(f"{rule}.") for rule in ALLOWED[room] | {room})


def test_each_room_imports_only_the_rooms_below_it() -> None:
    breaches = []
    for room in ALLOWED:
        for path in sorted((ROOT / room).rglob("*.py")):
            breaches += [
                f"{path.relative_to(ROOT)} imports tessera.{n}"
                for n in imported(path)
                if not allowed(n, room)
            ]
    assert breaches == []
