"""The M2 sequence mixer: gated short and long convolutions in place of attention.

Cost is O(L log L) in the sequence length (FFT convolutions), which is what lets one
document of 32k tokens be embedded in one pass. Every convolution input has its padded
positions zeroed first, so a real token's output never depends on how much padding the
batch added (the published code has no mask; this is the only behavioural difference, and it
changes nothing for unpadded inputs). Submodule names follow the published checkpoints.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from tessera.models.m2.filters import ImplicitLongFilter, fft_long_conv

# Sequence lengths are rounded up to a multiple of this before the long convolutions: it
# changes nothing in the result (the extra positions are zeros and the kernel at a lag does
# not depend on the length) but lets batches of nearby lengths share one cached filter FFT.
LENGTH_BUCKET = 64


class MonarchMixerSequenceMixer(nn.Module):
    """in-projection to (x1, x2, v) -> causal depthwise conv (kernel 3) -> v * x1 ->
    bidirectional long conv (+ skip) -> * x2 [+ long conv of the input] -> out-projection."""

    def __init__(
        self,
        hidden: int,
        l_max: int,
        filter_order: int = 128,
        filter_emb_dim: int = 5,
        filter_w: float = 10.0,
        filter_w_mod: float = 1.0,
        short_kernel: int = 3,
        bidirectional: bool = True,
        residual_long_conv: bool = True,
        pre_norm: bool = False,
        dropout: float = 0.0,
        layer_norm_eps: float = 1e-12,
        fft_cache_bytes: int = 256 * 2**20,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.l_max = l_max
        self.residual_long_conv = residual_long_conv
        self.pre_norm = pre_norm
        self.fft_cache_bytes = fft_cache_bytes
        filter_kwargs = dict(
            channels=hidden,
            l_max=l_max,
            emb_dim=filter_emb_dim,
            order=filter_order,
            w=filter_w,
            w_mod=filter_w_mod,
            bidirectional=bidirectional,
        )
        self.filter_fn = ImplicitLongFilter(**filter_kwargs)
        if residual_long_conv:
            self.filter_fn2 = ImplicitLongFilter(**filter_kwargs)
        self.in_linear = nn.Linear(hidden, 3 * hidden)
        self.out_linear = nn.Linear(hidden, hidden)
        width = 3 * hidden
        # Kept as the published Conv1d (padding k-1, first L outputs: causal, depthwise) for its
        # parameter layout; `_short_conv` computes the same channels-last, without transposes.
        self.short_filter = nn.Conv1d(
            width, width, kernel_size=short_kernel, groups=width, padding=short_kernel - 1
        )
        if pre_norm:  # the published `hyena_training_additions` option
            self.layernorm = nn.LayerNorm(hidden, eps=layer_norm_eps)
            self.drop = nn.Dropout(dropout)
        self._fft_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    # -- filter FFT cache -------------------------------------------------------------------
    def train(self, mode: bool = True) -> MonarchMixerSequenceMixer:
        self._fft_cache.clear()
        return super().train(mode)

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self._fft_cache.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def _kernel_fft(self, filt: ImplicitLongFilter, name: str, length: int) -> torch.Tensor:
        """The filter's FFT for this length, (L+1, C); cached at inference, since filters do not depend
        on the input. The key holds the parameters' version counters, so any in-place update
        (optimizer step, load, copy_) misses the cache. Least recently used entries go first
        once the cache holds more than `fft_cache_bytes` (one 32k-token entry of a 384-wide
        filter is 100 MB)."""
        if self.training or torch.is_grad_enabled() or self.fft_cache_bytes <= 0:
            return filt.kernel_fft(length).transpose(0, 1)
        versions = tuple(t._version for t in (*filt.parameters(), *filt.buffers()))
        key = (name, length, filt.bias.device, versions)
        cached = self._fft_cache.get(key)
        if cached is not None:
            self._fft_cache.move_to_end(key)
            return cached
        spectrum = filt.kernel_fft(length).transpose(0, 1).contiguous()
        size = spectrum.numel() * spectrum.element_size()
        if size <= self.fft_cache_bytes:
            self._fft_cache[key] = spectrum
            while sum(t.numel() * t.element_size() for t in self._fft_cache.values()) > self.fft_cache_bytes:
                self._fft_cache.popitem(last=False)
        return spectrum

    def _long_conv(self, filt: ImplicitLongFilter, name: str, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, C), padding already zeroed."""
        length = x.shape[1]
        bucket = min(-(-length // LENGTH_BUCKET) * LENGTH_BUCKET, self.l_max)
        if bucket > length:
            x = nn.functional.pad(x, (0, 0, 0, bucket - length))
        k_fft = self._kernel_fft(filt, name, bucket)
        y = fft_long_conv(x, None, filt.bias, k_fft=k_fft, channels_last=True)
        return y[:, :length]

    def _short_conv(self, z: torch.Tensor) -> torch.Tensor:
        """The depthwise causal convolution of `short_filter` on z (B, L, C), as shifted
        multiply-adds along L (what Conv1d(padding=k-1)[..., :L] computes, without transposes)."""
        weight = self.short_filter.weight[:, 0, :]  # (C, k)
        size = weight.shape[-1]
        length = z.shape[1]
        padded = nn.functional.pad(z, (0, 0, size - 1, 0))
        out = self.short_filter.bias.to(z.dtype).expand_as(z)
        for j in range(size):
            out = torch.addcmul(out, padded[:, j : j + length], weight[:, j].to(z.dtype))
        return out

    # -- forward ----------------------------------------------------------------------------
    def forward(self, u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """u (B, L, H), mask (B, L) with 1 for real tokens; returns (B, L, H)."""
        length = u.shape[1]
        if length > self.l_max:
            raise ValueError(f"sequence length {length} exceeds the model's maximum {self.l_max}")
        keep = None if mask is None else mask[:, :, None].to(u.dtype)  # (B, L, 1)
        if self.pre_norm:
            u = self.layernorm(u)
        u_in = u
        z = self.in_linear(u)  # (B, L, 3H)
        if keep is not None:
            z = z * keep
        x1, x2, v = self._short_conv(z).split(self.hidden, dim=-1)
        v = v * x1
        if self.pre_norm:
            v = self.drop(v)
        if keep is not None:
            v = v * keep
        y = self._long_conv(self.filter_fn, "filter_fn", v)
        y = y * x2
        if self.residual_long_conv:
            w = u_in if keep is None else u_in * keep
            y = y + self._long_conv(self.filter_fn2, "filter_fn2", w)
        if self.pre_norm:
            y = self.drop(y)
        return self.out_linear(y)
