"""Batch normalization, forward plus backward in train mode, dlhw against PyTorch.

512 x 1024 float64 is a wide fully connected layer's activations for a typical minibatch:
large enough that the time is in the passes over memory, not in Python overhead. Both sides
run on one thread (numpy's elementwise ufuncs and reductions use one; torch's batch_norm
kernel would otherwise split the features over all cores).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import Case
from dlhw.nn.normalization import batchnorm_backward, batchnorm_forward

N, D = 512, 1024


def cases() -> list[Case]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D)) * 2.0 + 0.5
    gamma = rng.standard_normal(D)
    beta = rng.standard_normal(D)
    dout = rng.standard_normal((N, D))
    bn_param = {"mode": "train"}

    def run_dlhw():
        out, cache = batchnorm_forward(x, gamma, beta, bn_param)
        return batchnorm_backward(dout, cache)

    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    doutt = torch.tensor(dout)
    running_mean = torch.zeros(D, dtype=torch.float64)
    running_var = torch.ones(D, dtype=torch.float64)

    def run_torch():
        # torch's momentum 0.1 weighs the new batch: the same update as dlhw's 0.9
        out = F.batch_norm(xt, running_mean, running_var, gt, bt, training=True,
                           momentum=0.1, eps=1e-5)
        return torch.autograd.grad(out, (xt, gt, bt), doutt)

    return [Case(f"batchnorm fwd+bwd train {N}x{D} (1 thread)", run_dlhw, run_torch, goal=2.0, torch_threads=1)]
