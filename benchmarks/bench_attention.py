"""Scaled dot-product attention with a causal mask, forward plus backward, dlhw against
torch's scaled_dot_product_attention (with a boolean attn_mask) and autograd.

(16, 4, 128, 64): 16 sequences, 4 heads, 128 positions, 64 features per head. The (128, 128)
score matrices (1M entries in all) make the softmax and its backward memory-bound passes, the
four batched matmuls are the arithmetic.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import Case
from dlhw.nn.attention import attention_backward, attention_forward

N, HEADS, T, D = 16, 4, 128, 64


def cases() -> list[Case]:
    rng = np.random.default_rng(0)
    q, k, v, dout = (rng.standard_normal((N, HEADS, T, D)) for _ in range(4))
    mask = np.tril(np.ones((T, T), dtype=bool))

    def run_dlhw():
        out, cache = attention_forward(q, k, v, mask)
        return attention_backward(dout, cache)

    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    maskt = torch.tensor(mask)
    doutt = torch.tensor(dout)

    def run_torch():
        out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=maskt)
        return torch.autograd.grad(out, (qt, kt, vt), doutt)

    return [Case(f"attention fwd+bwd causal {N}x{HEADS}x{T}x{D}", run_dlhw, run_torch, goal=1.2)]
