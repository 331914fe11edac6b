"""LSTM over a sequence, forward plus backward through time, dlhw against torch.nn.LSTM.

N=64 sequences of T=32 steps, D=64 inputs, H=128 hidden units: a small language-model layer.
The time goes into T sequential steps of (64, 512) elementwise work plus one (64, 128) x
(128, 512) matmul each, so per-step overhead matters as much as arithmetic.
"""
from __future__ import annotations

import numpy as np
import torch

from benchmarks.common import Case
from dlhw.nn.lstm import lstm_backward, lstm_forward

N, T, D, H = 64, 32, 64, 128


def cases() -> list[Case]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((N, H))
    Wx = rng.standard_normal((D, 4 * H)) / np.sqrt(D)
    Wh = rng.standard_normal((H, 4 * H)) / np.sqrt(H)
    b = np.zeros(4 * H)
    dh = rng.standard_normal((N, T, H))

    def run_dlhw():
        h, cache = lstm_forward(x, h0, Wx, Wh, b)
        return lstm_backward(dh, cache)

    # torch's gates are i, f, g, o; dlhw's i, f, o, g. The same work either way.
    p = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]
    lstm = torch.nn.LSTM(D, H, batch_first=True).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(Wx[:, p].T))
        lstm.weight_hh_l0.copy_(torch.tensor(Wh[:, p].T))
        lstm.bias_ih_l0.copy_(torch.tensor(b[p]))
        lstm.bias_hh_l0.zero_()
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    c0t = torch.zeros_like(h0t)
    dht = torch.tensor(dh)
    params = [xt, h0t] + list(lstm.parameters())

    def run_torch():
        h, _ = lstm(xt, (h0t, c0t))
        return torch.autograd.grad(h, params, dht)

    return [Case(f"lstm fwd+bwd N={N} T={T} D={D} H={H}", run_dlhw, run_torch, goal=1.5)]
