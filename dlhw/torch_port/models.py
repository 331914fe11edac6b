"""PyTorch models for assignment 09: the ConvNet and the tiny transformer of assignments 06 and 08.

They are ordinary ``torch.nn.Module``s, so they run on any device (``model.to(device)``) and
in any dtype. Scores come in PyTorch's layout for ``CrossEntropyLoss``: (N, C) for the ConvNet,
(N, C, T) for the transformer (one label per position).

``TinyTransformer(attention=...)`` takes the attention function, ``(q, k, v, mask) -> out`` on
tensors of shape (N, heads, T, d): the student's ``attention_torch`` trains the model through
autograd, or PyTorch's ``scaled_dot_product_attention`` (the default) for comparison.
``positional_encoding=`` takes the function of the positions, ``(T, D) -> (T, D)`` array:
assignment 08's (which assignment 09 receives in blocks.py), or the reference
``dlhw.nn.attention.positional_encoding`` where the full package is installed. There is no
default: the student kit ships no positional encoding (it is assignment 08's exercise).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ConvNet", "TinyTransformer", "count_parameters"]


class ConvNet(nn.Module):
    """[conv 3x3 - batchnorm - relu - 2x2 max-pool] x 2, then a linear classifier.

    Input (N, 1, 8, 8) digits (or (N, C, H, W) with ``in_channels`` = C and H, W divisible by
    4); output scores (N, num_classes).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels=(16, 32), image_size: int = 8):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(c2 * (image_size // 4) ** 2, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class _SelfAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, attention: Callable):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"TinyTransformer: d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.h, self.attention = num_heads, attention
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x, mask=None):
        N, T, D = x.shape
        # (N, T, 3D) -> three (N, heads, T, D / heads) tensors
        q, k, v = self.qkv(x).reshape(N, T, 3, self.h, D // self.h).permute(2, 0, 3, 1, 4)
        mixed = self.attention(q, k, v, mask)                     # (N, heads, T, D / heads)
        return self.out(mixed.transpose(1, 2).reshape(N, T, D))


class _Block(nn.Module):
    """Pre-LN transformer block: x + attention(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, d_model: int, num_heads: int, attention: Callable):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = _SelfAttention(d_model, num_heads, attention)
        self.ffn = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.ReLU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x, mask=None):
        x = x + self.attn(self.ln1(x), mask)
        return x + self.ffn(self.ln2(x))


def _sdpa(q, k, v, mask=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class TinyTransformer(nn.Module):
    """Token embedding + sinusoidal positions, pre-LN blocks, a final layer norm, a read-out.

    Input tokens (N, T) int64 (T <= max_len); output scores (N, num_classes, T).
    """

    def __init__(self, vocab_size: int, num_classes: int, d_model: int = 32, num_heads: int = 2,
                 num_layers: int = 1, max_len: int = 64, attention: Optional[Callable] = None,
                 causal: bool = False, positional_encoding: Optional[Callable] = None):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        if positional_encoding is None:   # no reference default: the student kit has none
            raise ValueError("TinyTransformer: pass positional_encoding=, a function (T, D) -> (T, D) "
                             "array, e.g. assignment 08's positional_encoding from blocks.py")
        pe = positional_encoding(max_len, d_model)
        pe = pe.detach().cpu().double() if torch.is_tensor(pe) else torch.as_tensor(np.asarray(pe, dtype=np.float64))
        if tuple(pe.shape) != (max_len, d_model):
            raise ValueError(f"TinyTransformer: positional_encoding({max_len}, {d_model}) returned shape "
                             f"{tuple(pe.shape)}; expected ({max_len}, {d_model})")
        self.register_buffer("pe", pe.float(), persistent=False)
        attention = attention or _sdpa
        self.blocks = nn.ModuleList(_Block(d_model, num_heads, attention) for _ in range(num_layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)
        self.causal = causal

    def forward(self, tokens):
        T = tokens.shape[1]
        if T > self.pe.shape[0]:
            raise ValueError(f"TinyTransformer: sequences of length {T} exceed max_len {self.pe.shape[0]}")
        x = self.embed(tokens) + self.pe[:T].to(self.embed.weight.dtype)
        mask = (torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril() if self.causal else None)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln(x)).transpose(1, 2)             # (N, C, T), CrossEntropyLoss's layout


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
