"""A query tower's frozen document route, run once per document instead of once per row.

`train dense --freeze-documents` trains a sentence-transformers `Router` whose document route
is the base model, frozen. Left alone, every step still runs that route over its rows'
positives and hard negatives (a full forward pass of 256-token documents, the bulk of a step)
and runs it in training mode, so the documents the query tower learns against carry dropout
noise that the index, encoded in eval mode, never has. Memoizing the route fixes both: a
document's embedding is computed once, in eval mode, exactly as `tessera index` will compute it,
and every later row holding that document reads it back.
"""

from __future__ import annotations

from typing import Any

DOCUMENT_ROUTE = "document"


def memoize_route(router: Any, route: str = DOCUMENT_ROUTE) -> dict[bytes, Any]:
    """Serve `route`'s sentence embeddings from a cache keyed by each row's unpadded token ids.

    Patches `router.forward` on this instance only (nothing saved changes); rows the cache
    lacks run through the route in eval mode without gradients. Returns the cache (for tests
    and for counting what was computed)."""
    import torch

    modules = router.sub_modules[route]
    if any(p.requires_grad for m in modules for p in m.parameters()):
        raise ValueError(f"route '{route}' has trainable parameters; only a frozen route can be memoized")
    cache: dict[bytes, torch.Tensor] = {}
    forward = router.forward

    def memoized(features: dict[str, Any], task: str | None = None, modality: Any = None, **kwargs: Any):
        resolved = router._resolve_route(
            task=features.get("task") if task is None else task,
            modality=features.get("modality") if modality is None else modality,
        )
        if resolved != route:
            return forward(features, task=task, modality=modality, **kwargs)
        ids, mask = features["input_ids"], features["attention_mask"].bool()
        keys = [row[keep].cpu().numpy().tobytes() for row, keep in zip(ids, mask, strict=True)]
        first: dict[bytes, int] = {}  # each missing document once, at its first row
        for i, key in enumerate(keys):
            if key not in cache:
                first.setdefault(key, i)
        missing = list(first.values())
        if missing:
            rows = torch.tensor(missing, device=ids.device)
            subset = {
                name: value.index_select(0, rows)
                if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == len(keys)
                else value
                for name, value in features.items()
            }
            modes = [m.training for m in modules]
            for m in modules:
                m.eval()
            try:
                with torch.no_grad():
                    out = forward(subset, task=task, modality=modality, **kwargs)["sentence_embedding"]
            finally:
                for m, mode in zip(modules, modes, strict=True):
                    m.train(mode)
            for i, embedding in zip(missing, out, strict=True):
                cache[keys[i]] = embedding.detach()
        return {**features, "sentence_embedding": torch.stack([cache[key] for key in keys])}

    router.forward = memoized
    return cache
