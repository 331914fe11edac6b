"""One Adam step on a 4M-parameter float64 layer: dlhw.optim.adam against torch.optim.Adam.

An update rule is pure memory traffic (a dozen elementwise passes over 32 MB arrays), so
this measures how few passes and new arrays a step makes. torch's default on CPU is the
single-tensor implementation (foreach is only the default on GPUs).
"""
from __future__ import annotations

import numpy as np
import torch

from benchmarks.common import Case
from dlhw.optim import adam

N_PARAMS = 4_000_000


def cases() -> list[Case]:
    rng = np.random.default_rng(0)
    w = rng.standard_normal(N_PARAMS)
    dw = rng.standard_normal(N_PARAMS)
    config = {"learning_rate": 1e-3}

    def dlhw_step():
        # next_w is discarded so that both sides keep stepping from comparable states.
        return adam(w, dw, config)

    p = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor(dw, dtype=torch.float64)
    opt = torch.optim.Adam([p], lr=1e-3)

    def torch_step():
        opt.step()

    return [Case(f"adam step, {N_PARAMS // 1_000_000}M float64 parameters", dlhw_step, torch_step,
                 goal=1.2)]
