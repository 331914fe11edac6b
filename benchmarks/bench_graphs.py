"""The notes' message-passing layer (node to edge, edge to node, node update), forward plus
backward, dlhw against the same layer in torch with autograd (index gather, index_add for the
sum, scatter_reduce for mean and max), and dlhw's scatter alone against index_add.

2,000 nodes, 20,000 directed edges (mean in-degree 10), 32 node and 16 edge features, 64 hidden
on edges and nodes: the two matmuls over the E rows are the arithmetic; the gathers, the sort by
target and the reductions are memory-bound passes.
"""
from __future__ import annotations

import numpy as np
import torch

from benchmarks.common import Case
from dlhw.nn.graphs import (init_message_passing_params, message_passing_backward,
                            message_passing_forward, scatter_backward, scatter_forward)

V, E, DV, DE, H = 2000, 20000, 32, 16, 64


def _torch_scatter(src, dst, num_nodes, reduce):
    if reduce == "sum":
        return torch.zeros(num_nodes, src.shape[1], dtype=src.dtype).index_add(0, dst, src)
    idx = dst[:, None].expand_as(src)
    return torch.zeros(num_nodes, src.shape[1], dtype=src.dtype).scatter_reduce(
        0, idx, src, {"mean": "mean", "max": "amax"}[reduce], include_self=False)


def cases() -> list[Case]:
    rng = np.random.default_rng(0)
    edges = rng.integers(0, V, size=(E, 2))
    h, e = rng.standard_normal((V, DV)), rng.standard_normal((E, DE))
    params = init_message_passing_params(DV, DE, H, H, rng)
    dh_new = rng.standard_normal((V, H))
    src, dst = torch.tensor(edges[:, 0]), torch.tensor(edges[:, 1])
    ht, et = torch.tensor(h, requires_grad=True), torch.tensor(e, requires_grad=True)
    pt = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    dh_new_t = torch.tensor(dh_new)
    out = []
    for reduce in ("sum", "mean", "max"):
        def run_dlhw(reduce=reduce):
            h_new, _, cache = message_passing_forward(h, e, edges, params, reduce)
            return message_passing_backward(dh_new, None, cache)

        def run_torch(reduce=reduce):
            z_e = torch.cat([ht[src], et, ht[dst]], dim=1)
            e_new = torch.relu(z_e @ pt["We"] + pt["be"])
            m = _torch_scatter(e_new, dst, V, reduce)
            h_new = torch.relu(torch.cat([m, ht], dim=1) @ pt["Wv"] + pt["bv"])
            return torch.autograd.grad(h_new, (ht, et, *pt.values()), dh_new_t)

        out.append(Case(f"message passing fwd+bwd {reduce} V={V} E={E} {DV}/{DE}->{H}",
                        run_dlhw, run_torch, goal=2.0))

    values, dvals = rng.standard_normal((E, H)), rng.standard_normal((V, H))
    vt, index_t = torch.tensor(values, requires_grad=True), torch.tensor(edges[:, 1])

    def scatter_dlhw():
        return scatter_backward(dvals, scatter_forward(values, edges[:, 1], V, "sum")[1])

    def scatter_torch():
        o = torch.zeros(V, H, dtype=torch.float64).index_add(0, index_t, vt)
        return torch.autograd.grad(o, vt, torch.tensor(dvals))

    out.append(Case(f"scatter sum fwd+bwd E={E} F={H} -> V={V}", scatter_dlhw, scatter_torch, goal=2.0))
    return out
