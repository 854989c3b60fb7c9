"""Recurrent binarization of float embeddings (BEBR, Gan et al., KDD 2023).

A float embedding x (dim d) becomes u binary vectors b_1..b_u in {-1, +1}^d, u = bits per
dimension. Step s encodes what steps 1..s-1 left unexplained: its input is the residual
x - x̂_{s-1}, turned by a residual MLP block into pre-activations whose signs are b_s (a
straight-through estimator passes gradients through the sign in training).

The encoder works in a code space: v = (x - c) @ R, c the corpus centre, R an orthogonal
rotation fitted when training starts (it spreads variance evenly over the sign bits).

Decoder, and why it is affine rather than an MLP: retrieval scores are inner products of
reconstructions, and Symmetric Distance Calculation (SDC) needs that score to be a sum over
small chunks of dimensions, each looked up in a table indexed by the two chunk codes. An MLP
decoder would mix every bit with every other; so the decoder is

    y = m + sum_s alpha_s * b_s        (code space: per-dimension scales alpha_s, offset m)
    x̂ = y @ R.T                        (back to the embedding space)

and because R is orthogonal, <x̂_q, x̂_d> = <y_q, y_d> = sum_j y_q[j] * y_d[j]: each code-space
dimension j depends on its own u bits only, so the score decomposes over any grouping of
dimensions. This is the most general linear decoder with that property (orthogonal times
diagonal). The nonlinearity lives in the encoder, which may choose bits non-greedily.

The offset m is learned for ranking, not fixed to the centre c: it carries each document's
alignment with the corpus centre into the score (a per-document bias <m, y_d - m>). Estimated
from few bits that bias is noisy, and at full strength it hurt (1 bit, Cranfield train
queries: nDCG@10 0.31 with it, 0.34 without, 0.36 at half). Training starts m at half the
centre and settles near 0.5 / 0.8 / 0.9 of it for u = 1 / 2 / 4. So `decode` is the
reconstruction the scores use, which for small u is not centred like x.

Bit order of the packed codes (`encode`): one little-endian bit stream per vector of exactly
u*d bits; bit number j*u + s (byte (j*u+s)//8, bit (j*u+s)%8, least significant first) is
step s's sign of code-space dimension j, 1 meaning +1. Any c consecutive dimensions
form a run of c*u bits, which faiss' product quantizer reads as one sub-code (its bit streams
are LSB-first too): the SDC search hands the packed codes to faiss unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from tessera.errors import IndexFormatError, TesseraError

WEIGHTS = "binarizer.safetensors"
CONFIG = "binarizer.json"
FORMAT = "tessera-bebr-binarizer"
FORMAT_VERSION = 1
MAX_BITS = 4


def ste_sign(values: torch.Tensor) -> torch.Tensor:
    """+1/-1 forward (0 counts as +1), tanh's gradient backward.

    The identity estimator pulls every bit toward its continuous value and so flips confident
    bits that should stay; tanh's gradient fades away from the threshold, where flips are cheap."""
    signs = torch.where(values >= 0, 1.0, -1.0).to(values.dtype)
    soft = torch.tanh(values)
    return soft + (signs - soft).detach()


class ResidualBlock(nn.Module):
    """v + MLP(LayerNorm(v)) with v at unit scale; a fresh block (zero output layer) is the identity.

    Only the sign of the output is kept, so scaling v to unit RMS changes no bit; it puts the
    MLP's correction on the same scale as v whatever the residual's magnitude at this step."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        unit = values * values.pow(2).mean(dim=-1, keepdim=True).clamp_min(1e-12).rsqrt()
        return unit + self.fc2(nn.functional.gelu(self.fc1(self.norm(unit))))


class RecurrentBinarizer(nn.Module):
    """Float embeddings -> u*d bits -> reconstructions whose inner products decompose per dimension."""

    def __init__(self, dim: int, bits: int, hidden: int | None = None):
        super().__init__()
        if not 1 <= bits <= MAX_BITS:
            raise TesseraError(f"bits per dimension must be 1..{MAX_BITS}, got {bits}", field="bits")
        if dim <= 0 or dim % 8:
            raise TesseraError(
                f"embedding dimension must be a positive multiple of 8, got {dim}", field="dim"
            )
        self.dim = dim
        self.bits = bits
        self.hidden = hidden or dim // 2
        self.register_buffer("center", torch.zeros(dim))
        self.register_buffer("rotation", torch.eye(dim))
        self.offset = nn.Parameter(torch.zeros(dim))
        self.scales = nn.Parameter(torch.full((bits, dim), dim**-0.5))
        self.steps = nn.ModuleList(ResidualBlock(dim, self.hidden) for _ in range(bits))

    @property
    def code_bytes(self) -> int:
        return self.dim * self.bits // 8

    # -- torch path (training and encoding) ---------------------------------------------------

    def to_code_space(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.center) @ self.rotation

    def to_embedding_space(self, code_space: torch.Tensor) -> torch.Tensor:
        return code_space @ self.rotation.T

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Signs [n, d, u] (+-1, straight-through) and their sum sum_s alpha_s * b_s [n, d]."""
        target = self.to_code_space(x)
        approx = torch.zeros_like(target)
        signs = []
        for step, block in enumerate(self.steps):
            sign = ste_sign(block(target - approx))
            approx = approx + self.scales[step] * sign
            signs.append(sign)
        return torch.stack(signs, dim=-1), approx

    def decode_signs(self, signs: torch.Tensor) -> torch.Tensor:
        """Code-space reconstructions y [n, d] of +-1 signs [n, d, u] (differentiable)."""
        return self.offset + torch.einsum("nds,sd->nd", signs, self.scales)

    # -- numpy path (indexes) -----------------------------------------------------------------

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Packed codes uint8 [n, u*d/8] in the bit order the module docstring describes."""
        x = self._check_vectors(x)
        with torch.no_grad():
            # torch cannot wrap a read-only array (vectors mapped from an index file): copy those only
            signs, _ = self(torch.as_tensor(np.array(x, copy=not x.flags.writeable)))
        bits = (signs > 0).numpy().reshape(len(x), self.dim * self.bits)
        return np.packbits(bits, axis=1, bitorder="little")

    def code_space(self, codes: np.ndarray) -> np.ndarray:
        """Code-space reconstructions y [n, d]: the vectors SDC and Hamming rescoring compare."""
        with torch.no_grad():
            return self.decode_signs(torch.from_numpy(self._unpack(codes))).numpy()

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Reconstructions [n, d] in the embedding space; inner products equal code-space ones."""
        with torch.no_grad():
            return self.to_embedding_space(torch.from_numpy(self.code_space(codes))).numpy()

    def query_space(self, x: np.ndarray) -> np.ndarray:
        """Float queries for asymmetric scoring: m + (x - c) @ R, the code-space reconstruction a
        query would have with no bits lost, so its inner products with `code_space(codes)` are
        SDC's with the query exact (the offset's per-document bias included, as SDC has it)."""
        with torch.no_grad():
            exact = self.offset + self.to_code_space(torch.from_numpy(self._check_vectors(x)))
        return np.ascontiguousarray(exact.numpy())

    def chunk_tables(self, chunk_dims: int) -> np.ndarray:
        """[d/c, 2^(c*u), c]: the code-space values of every possible code of c dimensions.

        These are product-quantizer centroids: a chunk's share of <y_q, y_d> is the inner
        product of two rows of its table, so a query's scores are table look-ups."""
        c, u = chunk_dims, self.bits
        if c < 1 or self.dim % c:
            raise TesseraError(f"chunks of {c} dimensions do not tile {self.dim}", field="chunk_dims")
        values = np.arange(1 << (c * u))
        signs = (((values[:, None] >> np.arange(c * u)) & 1) * 2 - 1).reshape(-1, c, u).astype(np.float32)
        with torch.no_grad():
            offset = self.offset.numpy().reshape(-1, c)
            scales = self.scales.numpy().reshape(u, -1, c).transpose(1, 2, 0)  # [chunks, c, u]
        return offset[:, None, :] + np.einsum("kcs,mcs->mkc", signs, scales)

    def _unpack(self, codes: np.ndarray) -> np.ndarray:
        if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != self.code_bytes:
            raise TesseraError(
                f"codes must be uint8 [n, {self.code_bytes}], got {codes.dtype} {list(codes.shape)}",
                field="codes",
            )
        bits = np.unpackbits(codes, axis=1, count=self.dim * self.bits, bitorder="little")
        return (bits.reshape(len(codes), self.dim, self.bits).astype(np.float32) * 2) - 1

    def _check_vectors(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise TesseraError(
                f"dimension mismatch: binarizer takes {self.dim}-d vectors, got shape {list(x.shape)}",
                field="dim",
            )
        return np.ascontiguousarray(x, dtype=np.float32)

    # -- files --------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """`binarizer.safetensors` (every tensor) and `binarizer.json` (the shape to rebuild)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {name: value.detach().contiguous() for name, value in self.state_dict().items()}
        save_file(tensors, str(folder / WEIGHTS))
        config = {"format": FORMAT, "version": FORMAT_VERSION, "dim": self.dim, "bits": self.bits}
        (folder / CONFIG).write_text(json.dumps({**config, "hidden": self.hidden}, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> RecurrentBinarizer:
        folder = Path(folder)
        config = _read_config(folder / CONFIG)
        model = cls(config["dim"], config["bits"], config["hidden"])
        path = folder / WEIGHTS
        if not path.is_file():
            raise IndexFormatError("binarizer weights are missing", file=path)
        try:
            model.load_state_dict(load_file(str(path)))
        except (RuntimeError, OSError, SafetensorError) as exc:
            raise IndexFormatError(
                f"cannot load binarizer weights (corrupt, or not for this config): {exc}", file=path
            ) from None
        return model.eval()


def _read_config(path: Path) -> dict[str, int]:
    if not path.is_file():
        raise IndexFormatError("binarizer config is missing", file=path)
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"binarizer config is not valid JSON: {exc}", file=path) from None
    if config.get("format") != FORMAT or config.get("version") != FORMAT_VERSION:
        raise IndexFormatError(f"not a {FORMAT} v{FORMAT_VERSION} config", file=path, field="format")
    for name in ("dim", "bits", "hidden"):
        if not isinstance(config.get(name), int):
            raise IndexFormatError("missing or not an integer", file=path, field=name)
    return config
