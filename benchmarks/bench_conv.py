"""Convolution and max pooling, forward plus backward, dlhw against torch's conv2d /
max_pool2d and autograd.

The convolution is a first CIFAR-sized layer: 64 images of 3 x 32 x 32, 32 filters of 3 x 3,
stride 1, padding 1 ("same"). Both sides do im2col and matrix products (PyTorch's float64 CPU
convolution is im2col + GEMM too), so the ratio measures how well one batched numpy matmul
and a loop over the 9 kernel offsets keep up. The max-pool case (2 x 2, stride 2, on the
conv's 64 x 32 x 32 x 32 output) has no goal: it is there to show the cost of the windows copy
and of routing the gradient with one masked slice per window offset.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import Case
from dlhw.nn.conv_fast import conv_backward_fast, conv_forward_fast
from dlhw.nn.pooling import max_pool_backward, max_pool_forward

N, C, H, W = 64, 3, 32, 32
FILTERS, K = 32, 3


def cases() -> list[Case]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((FILTERS, C, K, K))
    b = rng.standard_normal(FILTERS)
    dout = rng.standard_normal((N, FILTERS, H, W))
    conv_param = {"stride": 1, "pad": 1}

    def conv_dlhw():
        out, cache = conv_forward_fast(x, w, b, conv_param)
        return conv_backward_fast(dout, cache)

    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    doutt = torch.tensor(dout)

    def conv_torch():
        out = F.conv2d(xt, wt, bt, stride=1, padding=1)
        return torch.autograd.grad(out, (xt, wt, bt), doutt)

    a = rng.standard_normal((N, FILTERS, H, W))
    dpool = rng.standard_normal((N, FILTERS, H // 2, W // 2))
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

    def pool_dlhw():
        out, cache = max_pool_forward(a, pool_param)
        return max_pool_backward(dpool, cache)

    at = torch.tensor(a, requires_grad=True)
    dpoolt = torch.tensor(dpool)

    def pool_torch():
        out = F.max_pool2d(at, 2, stride=2)
        return torch.autograd.grad(out, (at,), dpoolt)

    return [
        Case(f"conv_fast fwd+bwd {N}x{C}x{H}x{W}, {FILTERS} {K}x{K}, stride 1 pad 1",
             conv_dlhw, conv_torch, goal=1.5),
        Case(f"max_pool fwd+bwd {N}x{FILTERS}x{H}x{W}, 2x2 stride 2", pool_dlhw, pool_torch),
    ]
