"""Block-diagonal linear maps: the Monarch factor M2 uses in place of dense MLP matrices.

A dense (out, in) matrix costs out*in multiply-adds per token; splitting both sides into
`blocks` groups and mixing only within a group cuts that by `blocks` while keeping the
parameter layout of the published M2-BERT checkpoints: weight (blocks, out/blocks, in/blocks).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class BlockDiagonalLinear(nn.Module):
    """`y = x @ blockdiag(W_1..W_b).T + bias`, computed as one batched einsum over the blocks."""

    def __init__(self, in_features: int, out_features: int, blocks: int, bias: bool = True) -> None:
        super().__init__()
        if in_features % blocks or out_features % blocks:
            raise ValueError(
                f"BlockDiagonalLinear({in_features}, {out_features}): both sizes must be "
                f"divisible by blocks={blocks}"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.blocks = blocks
        self.weight = nn.Parameter(torch.empty(blocks, out_features // blocks, in_features // blocks))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform as for a dense layer, rescaled for the block's smaller fan-in."""
        bound = 1.0 / math.sqrt(self.in_features // self.blocks)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            bias_bound = 1.0 / math.sqrt(self.out_features)
            nn.init.uniform_(self.bias, -bias_bound, bias_bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        grouped = x.reshape(-1, self.blocks, self.in_features // self.blocks)
        out = torch.einsum("nbi,boi->nbo", grouped, self.weight.to(x.dtype))
        out = out.reshape(*lead, self.out_features)
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        return out

    def dense_weight(self) -> torch.Tensor:
        """The equivalent dense (out, in) matrix (for tests and for export to dense layers)."""
        return torch.block_diag(*self.weight.unbind(0))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"blocks={self.blocks}, bias={self.bias is not None}"
        )
