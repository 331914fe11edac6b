"""Shared timing machinery of the benchmarks: dlhw against PyTorch, same process, float64.

A benchmark module defines ``cases() -> list[Case]``; ``benchmarks/run.py`` times each case's
two callables alternately (so that a noisy neighbour hits both alike) and prints the median
ratio dlhw / torch against the goal.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass
class Case:
    name: str                      # what is measured, e.g. "conv_fast fwd+bwd 64x3x32x32, 32 3x3"
    dlhw: Callable[[], object]     # one forward plus backward in dlhw (numpy)
    torch: Callable[[], object]    # the same work in PyTorch (CPU, float64, autograd)
    goal: Optional[float] = None   # the ratio dlhw/torch to stay under, if any
    repeats: int = 15
    # torch's threads for this case (None: the run's setting). numpy runs elementwise ufuncs
    # and reductions on one thread whatever BLAS may use, so a kernel without matrix products
    # is compared with torch on one thread: otherwise the ratio measures threading.
    torch_threads: Optional[int] = None


def time_pair(case: Case, warmup: int = 2) -> tuple[float, float]:
    """Median seconds of ``case.dlhw`` and ``case.torch``, run alternately."""
    import torch
    threads = torch.get_num_threads()
    if case.torch_threads:
        torch.set_num_threads(case.torch_threads)
    try:
        for _ in range(warmup):
            case.dlhw()
            case.torch()
        t_d, t_t = [], []
        for _ in range(case.repeats):
            t0 = time.perf_counter(); case.dlhw(); t1 = time.perf_counter()
            case.torch(); t2 = time.perf_counter()
            t_d.append(t1 - t0)
            t_t.append(t2 - t1)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(t_d), statistics.median(t_t)
