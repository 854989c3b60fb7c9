"""Implicit long-convolution filters (Hyena style) and the FFT convolution M2 mixes tokens with.

Instead of storing one weight per channel and lag (which ties the model to one length), a tiny
MLP maps positional features of each lag to a value per channel; an exponential decay keeps
far lags small. The features are precomputed for `l_max` lags and sliced, so the kernel value
at lag t is the same whatever the sequence length: a text's embedding does not change when
it is padded inside a longer batch. Parameter names follow the published M2-BERT checkpoints
(`pos_emb.z`, `implicit_filter.N`, `modulation.deltas`, `bias`) so those load one-to-one.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def fft_long_conv(
    u: torch.Tensor,
    k: torch.Tensor | None,
    bias: torch.Tensor | None,
    k_fft: torch.Tensor | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """Exact linear convolution of u (B, C, L) with k (C, K), plus the skip term `u * bias`.

    Zero-padding both to n = 2L before the FFT makes the circular convolution linear: with
    K = L the result is the causal convolution `y[t] = sum_{s<=t} k[t-s] u[s]`; a length-2L
    kernel whose second half holds a reversed filter adds the anti-causal part (future tokens).
    `k_fft`, the kernel's `rfft(n=2L)` (C, L+1), can be passed instead of k to reuse it.
    `channels_last`: u is (B, L, C) and a given k_fft is (L+1, C), which saves the
    transposes around the projections (at 32k tokens those copies cost more than the FFTs).
    Runs in float32 even under bf16/fp16 autocast (FFT round-off grows with length); the
    result has u's dtype.
    """
    dim = -2 if channels_last else -1
    length = u.shape[dim]
    n = 2 * length
    with torch.autocast(device_type=u.device.type, enabled=False):
        u32 = u.float()
        if k_fft is None:
            if k is None:
                raise ValueError("fft_long_conv needs k or k_fft")
            if k.shape[-1] > n:
                raise ValueError(f"kernel length {k.shape[-1]} exceeds 2 * sequence length {n}")
            k_fft = torch.fft.rfft(k.float(), n=n)
            if channels_last:
                k_fft = k_fft.transpose(0, 1)
        elif k_fft.shape[dim] != length + 1:
            raise ValueError(f"k_fft has {k_fft.shape[dim]} frequencies, expected {length + 1}")
        spectrum = torch.fft.rfft(u32, n=n, dim=dim)
        spectrum.mul_(k_fft)
        y = torch.fft.irfft(spectrum, n=n, dim=dim)
        y = y[:, :length] if channels_last else y[..., :length]
        if bias is not None:
            y = y + u32 * (bias.float() if channels_last else bias.float().reshape(-1, 1))
    return y.to(u.dtype)


class Sine(nn.Module):
    """sin(w_mod * freq * x) with a learned per-unit frequency: smooth, high-frequency-capable
    filters from a small MLP (a plain ReLU MLP is biased towards low frequencies)."""

    def __init__(self, width: int, w: float = 1.0, w_mod: float = 1.0) -> None:
        super().__init__()
        self.freq = nn.Parameter(w * torch.ones(1, width))
        self.w_mod = w_mod

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w_mod * self.freq * x)


class PositionalFeatures(nn.Module):
    """Features of each lag 0..l_max-1: t in [0, 1] and `bands` cos/sin pairs of one period over
    l_max. Stored for l_max and sliced, never recomputed per length."""

    def __init__(self, emb_dim: int, l_max: int) -> None:
        super().__init__()
        if emb_dim < 3 or emb_dim % 2 == 0:
            raise ValueError("emb_dim must be odd and >= 3 (time plus cos/sin pairs)")
        bands = (emb_dim - 1) // 2
        t = torch.linspace(0, 1, l_max)[None, :, None]
        angle = 2 * math.pi * torch.arange(l_max, dtype=torch.float32)[None, :, None] / l_max
        freqs = torch.linspace(1e-4, bands - 1, bands)[None, None]
        z = torch.cat([t, torch.cos(freqs * angle), -torch.sin(freqs * angle)], dim=-1)
        # The published checkpoints train z (with a tiny learning rate) and keep t fixed.
        self.z = nn.Parameter(z)
        self.register_buffer("t", t)

    def forward(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        if length > self.z.shape[1]:
            raise ValueError(f"sequence length {length} exceeds the filter's l_max {self.z.shape[1]}")
        return self.z[:, :length], self.t[:, :length]


class ExponentialDecay(nn.Module):
    """Multiplies channel c's filter by exp(-t * |delta_c|): channels range from fast decay
    (local mixing) to slow decay (document-wide mixing)."""

    def __init__(
        self,
        channels: int,
        fast_decay_pct: float = 0.3,
        slow_decay_pct: float = 1.5,
        target: float = 1e-2,
        shift: float = 0.0,
    ) -> None:
        super().__init__()
        max_decay = math.log(target) / fast_decay_pct
        min_decay = math.log(target) / slow_decay_pct
        self.shift = shift
        self.register_buffer("deltas", torch.linspace(min_decay, max_decay, channels)[None, None])

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return h * (torch.exp(-t * self.deltas.abs()) + self.shift)


def _implicit_mlp(emb_dim: int, order: int, channels: int, act: nn.Module, inner: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(emb_dim, order), act]
    for _ in range(inner):
        layers += [nn.Linear(order, order), act]
    layers.append(nn.Linear(order, channels, bias=False))
    return nn.Sequential(*layers)


class ImplicitLongFilter(nn.Module):
    """One kernel per channel, as long as the sequence, produced by an MLP over lag features.

    With `bidirectional`, a second MLP (`implicit_filter_rev`) gives the filter applied to
    future tokens. Both MLPs share one Sine module, as in the published M2 code (so its
    frequency appears under several state-dict names but is one tensor).
    """

    def __init__(
        self,
        channels: int,
        l_max: int,
        emb_dim: int = 5,
        order: int = 128,
        w: float = 10.0,
        w_mod: float = 1.0,
        bidirectional: bool = True,
        inner_layers: int = 2,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.l_max = l_max
        self.bidirectional = bidirectional
        self.bias = nn.Parameter(torch.randn(channels))
        self.pos_emb = PositionalFeatures(emb_dim, l_max)
        act = Sine(order, w=w, w_mod=w_mod)
        self.implicit_filter = _implicit_mlp(emb_dim, order, channels, act, inner_layers)
        if bidirectional:
            self.implicit_filter_rev = _implicit_mlp(emb_dim, order, channels, act, inner_layers)
        self.modulation = ExponentialDecay(channels)

    def _kernel(self, mlp: nn.Module, length: int) -> torch.Tensor:
        with torch.autocast(device_type=self.bias.device.type, enabled=False):
            z, t = self.pos_emb(length)
            h = self.modulation(t, mlp(z))  # (1, L, C)
        return h[0].transpose(0, 1)  # (C, L)

    def kernel(self, length: int) -> torch.Tensor:
        """The causal kernel (channels, length); lag 0 first."""
        return self._kernel(self.implicit_filter, length)

    def kernel_rev(self, length: int) -> torch.Tensor:
        """The anti-causal kernel (channels, length); entry j weighs the token j+1 ahead."""
        if not self.bidirectional:
            raise ValueError("this filter is causal only")
        return self._kernel(self.implicit_filter_rev, length)

    def conv_kernel(self, length: int) -> torch.Tensor:
        """What `fft_long_conv` takes: (C, L) causal, or (C, 2L) = [forward | reversed rev].

        The second half placed at lags -L..-1 of the 2L-periodic buffer is how the M2 code
        sums the forward filter over the sequence with the reverse filter over the flipped
        sequence in a single FFT.
        """
        forward = self.kernel(length)
        if not self.bidirectional:
            return forward
        return torch.cat([forward, self.kernel_rev(length).flip(-1)], dim=-1)

    def kernel_fft(self, length: int) -> torch.Tensor:
        """rfft(n=2L) of `conv_kernel(length)`, float32 (C, L+1)."""
        return torch.fft.rfft(self.conv_kernel(length).float(), n=2 * length)
